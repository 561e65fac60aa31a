package metricstore

import (
	"math"
	"slices"
	"time"

	"github.com/tripcap/tripcap"
)

// History is how a host's recent metrics move between stores: an agent
// keeps its own host's history in a Store and, when a server attaches the
// host (after a handoff or a gap), sends what the server lacks, which the
// server Backfills.

// RawPoint is one second of a series: the point stamped Sec (unix seconds).
type RawPoint struct {
	Sec   int64
	Value float64
}

// RollupBucket is one minute of a series reduced: Minute is the unix second
// the minute starts, and the bucket holds the points of seconds
// (Minute, Minute+60], as the store's rollups do.
type RollupBucket struct {
	Minute        int64
	Sum, Min, Max float64
	Count         uint32
}

// SeriesHistory is what a store holds of one series: its 1-second points,
// oldest first, and the rollups of the minutes before them, oldest first.
type SeriesHistory struct {
	Key     Key
	Raw     []RawPoint
	Rollups []RollupBucket
}

// History returns what the store holds for host at or after since: per
// series the raw points in the raw window, and the rollup buckets of minutes
// that end before the raw window starts. Raw and rollups overlap in one
// minute only: when the raw window starts inside a minute, that minute's
// rollup comes too, whole, so a receiver's windows that reach into it
// answer as this store's do (Backfill takes the rollup over the minute it
// built from those raw seconds). Series are sorted by key; a bucket is
// listed when its minute ends at or after since.
func (s *Store) History(host string, since time.Time) []SeriesHistory {
	from := since.Unix()
	type entry struct {
		k   Key
		ser *series
	}
	var mine []entry
	s.mu.RLock()
	if h := s.hosts[host]; h != nil {
		h.each(s.metricIDs, func(k Key, ser *series) { mine = append(mine, entry{k, ser}) })
	}
	s.mu.RUnlock()
	slices.SortFunc(mine, func(a, b entry) int { return compareKeys(a.k, b.k) })
	var out []SeriesHistory
	for _, e := range mine {
		k, ser := e.k, e.ser
		ser.mu.Lock()
		h := ser.history(from)
		ser.mu.Unlock()
		if len(h.Raw) == 0 && len(h.Rollups) == 0 {
			continue
		}
		h.Key = k
		out = append(out, h)
	}
	return out
}

// Backfill adds history the store lacks: a second it has no point for, a
// minute it has no rollup for. It never overwrites a second or minute it
// has (those count as Duplicates), keeps raw seconds and rollups consistent
// (a backfilled second older than the raw window lands in its minute's
// rollup when the store had none of that minute), takes rollup minutes as
// given, counts what falls outside its windows or limits as Append does,
// and calls the OnAppend hooks as Append does. AppendResult counts a raw
// point or a rollup bucket as one each. Every series must be the host's
// (an empty Key.Host is the host); invalid history is refused whole with
// EINVALID, naming the entry and field.
func (s *Store) Backfill(host string, h []SeriesHistory) (AppendResult, error) {
	var res AppendResult
	if host == "" {
		return res, tripcap.Errorf(tripcap.EINVALID, "host: required")
	}
	for i := range h {
		if err := validateHistory(host, i, &h[i]); err != nil {
			return res, err
		}
	}
	now := s.cfg.Now().Unix()
	maxSec := now + int64(s.cfg.MaxFuture/time.Second)
	minSec := now - s.rollupLen*rollupStep // points at or before it are too old
	var newest int64
	for i := range h {
		sh := &h[i]
		k := sh.Key
		k.Host = host
		if !anyWithin(sh, minSec, maxSec) {
			// Nothing to keep: count it without making a series.
			for _, p := range sh.Raw {
				if p.Sec > maxSec {
					res.TooNew++
				} else {
					res.TooOld++
				}
			}
			for _, b := range sh.Rollups {
				if b.Minute+1 > maxSec {
					res.TooNew++
				} else {
					res.TooOld++
				}
			}
			continue
		}
		ser, err := s.seriesFor(k)
		if err != nil {
			res.OverLimit += len(sh.Raw) + len(sh.Rollups)
			continue
		}
		ser.mu.Lock()
		var ed editor
		had := ser.heldBuckets()
		for _, p := range sh.Raw {
			switch {
			case p.Sec > maxSec:
				res.TooNew++
			case p.Sec <= minSec:
				res.TooOld++
			default:
				switch ser.backfillPoint(p.Sec, p.Value, &had, &ed) {
				case addStored:
					res.Stored++
					newest = max(newest, p.Sec)
				case addDuplicate:
					res.Duplicates++
				case addTooOld:
					res.TooOld++
				}
			}
		}
		for _, b := range sh.Rollups {
			end := b.Minute + rollupStep
			switch {
			case b.Minute+1 > maxSec:
				res.TooNew++
			case end <= minSec:
				res.TooOld++
			default:
				switch ser.backfillBucket(b, &had, &ed) {
				case addStored:
					res.Stored++
					newest = max(newest, end)
				case addDuplicate:
					res.Duplicates++
				case addTooOld:
					res.TooOld++
				}
			}
		}
		ed.flush(ser)
		ser.raw.trim()
		ser.roll.trim()
		ser.resized = true
		ser.account()
		ser.mu.Unlock()
	}
	if newest == 0 {
		return res, nil
	}
	s.appends.Add(1)
	s.mu.RLock()
	hs := s.hosts[host]
	var at int64
	if hs != nil {
		at = hs.raiseNewest(newest)
	}
	hooks := s.hooks
	s.mu.RUnlock()
	if hs != nil {
		for _, fn := range hooks {
			fn(host, time.Unix(at, 0).UTC())
		}
	}
	return res, nil
}

// anyWithin reports whether any of a series' history falls in the
// store's windows (after minSec, by maxSec).
func anyWithin(sh *SeriesHistory, minSec, maxSec int64) bool {
	for _, p := range sh.Raw {
		if p.Sec > minSec && p.Sec <= maxSec {
			return true
		}
	}
	for _, b := range sh.Rollups {
		if b.Minute+rollupStep > minSec && b.Minute+1 <= maxSec {
			return true
		}
	}
	return false
}

// validateHistory checks one series of a backfill: a metric that exists,
// the host's own, valid interface, finite values, whole minutes.
func validateHistory(host string, i int, sh *SeriesHistory) error {
	k := sh.Key
	if k.Host != "" && k.Host != host {
		return tripcap.Errorf(tripcap.EINVALID, "history[%d].key.host: %q is not the host %q", i, clipString(k.Host), clipString(host))
	}
	// The same checks as a batch's points, so history cannot make a series
	// a live batch could not.
	probe := tripcap.MetricBatch{Points: []tripcap.MetricPoint{{Host: host, Metric: k.Metric, Interface: k.Interface, Time: time.Unix(1, 0)}}}
	if err := probe.Validate(); err != nil {
		return tripcap.Errorf(tripcap.EINVALID, "history[%d].key: %s", i, tripcap.ErrorMessage(err))
	}
	for j, p := range sh.Raw {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			return tripcap.Errorf(tripcap.EINVALID, "history[%d].raw[%d].value: must be a finite number", i, j)
		}
		if p.Sec <= 0 {
			return tripcap.Errorf(tripcap.EINVALID, "history[%d].raw[%d].sec: %d is not a time", i, j, p.Sec)
		}
	}
	for j, b := range sh.Rollups {
		switch {
		case b.Minute <= 0 || b.Minute%rollupStep != 0:
			return tripcap.Errorf(tripcap.EINVALID, "history[%d].rollups[%d].minute: %d does not start a minute", i, j, b.Minute)
		case b.Count == 0:
			return tripcap.Errorf(tripcap.EINVALID, "history[%d].rollups[%d].count: must be at least 1", i, j)
		case !finite(b.Sum) || !finite(b.Min) || !finite(b.Max):
			return tripcap.Errorf(tripcap.EINVALID, "history[%d].rollups[%d]: sum, min and max must be finite numbers", i, j)
		case b.Min > b.Max:
			return tripcap.Errorf(tripcap.EINVALID, "history[%d].rollups[%d].min: %g is above max %g", i, j, b.Min, b.Max)
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func clipString(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
