package alerting

import (
	"math"
	"slices"
	"time"

	"github.com/tripcap/tripcap"
)

// Dynamic thresholds learn, per alert instance (rule, criterion, host,
// interface), what the metric's window value usually is, and flag windows
// far from it. The method, documented in docs/alerting.md:
//
//   - Every completed period (a windowSize-long window aligned to
//     windowSize) with data is learned, once, after it was judged. Periods
//     before ignoreDataBefore are not learned.
//   - Recent baseline: the last recentCap period values. Seasonal baseline:
//     per hour of day (UTC), the last seasonalCap values of that hour, used
//     once the instance has learned for two days and the hour holds at least
//     minSeasonal values, so a daily cycle is judged against the same hour
//     of earlier days.
//   - Band: median ± k·σ, σ = max(1.4826·MAD, 5% of |median|, 1) — the MAD
//     is a robust spread that a spike does not inflate; the floors keep a
//     perfectly flat series from alerting on the smallest wobble (1 is the
//     quantum of the counted metrics). k is 3 for High sensitivity, 4.5 for
//     Medium, 6 for Low.
//   - A criterion is met when at least minFailingPeriodsToAlert of the last
//     numberOfEvaluationPeriods periods (windows ending at the evaluation
//     time, then one windowSize earlier each) are outside the band on the
//     operator's side. Until minRecent periods are learned the criterion has
//     no baseline and is treated like missing data: no fire, no resolve.
const (
	recentCap   = 120
	seasonalCap = 128
	minRecent   = 12
	minSeasonal = 8
	seasonSpan  = 48 * time.Hour
	relFloor    = 0.05
	absFloor    = 1.0
	madScale    = 1.4826
)

// SensitivityK is the band's half-width in robust standard deviations.
func SensitivityK(s tripcap.Sensitivity) float64 {
	switch s {
	case tripcap.SensitivityHigh:
		return 3
	case tripcap.SensitivityLow:
		return 6
	}
	return 4.5
}

type ring struct {
	vals []float64
	next int
	full bool
}

func (r *ring) add(v float64, capacity int) {
	if r.vals == nil {
		r.vals = make([]float64, 0, capacity)
	}
	if len(r.vals) < capacity {
		r.vals = append(r.vals, v)
		return
	}
	r.vals[r.next] = v
	r.next = (r.next + 1) % capacity
	r.full = true
}

// baseline is one instance's learned history.
type baseline struct {
	recent ring
	hours  [24]ring
	// first and last are the end times of the first and last learned periods.
	first, last int64
	learned     int
	// cursor is the end of the last period considered for learning.
	cursor  int64
	scratch []float64
	// The last band computed, reused while nothing new was learned: an
	// evaluation asks for the band of every failing period.
	cached     bool
	cacheKey   bandKey
	cacheLower float64
	cacheUpper float64
}

type bandKey struct {
	hour    int // -1 for the recent baseline
	learned int
	sens    tripcap.Sensitivity
}

// learn adds a completed period's value; end is the period's end (unix s).
func (b *baseline) learn(end int64, v float64) {
	if b.learned == 0 {
		b.first = end
	}
	b.last = end
	b.learned++
	b.recent.add(v, recentCap)
	b.hours[hourOf(end)].add(v, seasonalCap)
}

func hourOf(unix int64) int { return int((unix % 86400) / 3600) }

// band returns the bounds for a period ending at end, and whether the
// baseline has learned enough to give one.
func (b *baseline) band(end int64, s tripcap.Sensitivity) (lower, upper float64, seasonal, ok bool) {
	vals := b.recent.vals
	if h := b.hours[hourOf(end)].vals; b.last-b.first >= int64(seasonSpan/time.Second) && len(h) >= minSeasonal {
		vals, seasonal = h, true
	}
	if !seasonal && len(vals) < minRecent {
		return 0, 0, false, false
	}
	key := bandKey{hour: -1, learned: b.learned, sens: s}
	if seasonal {
		key.hour = hourOf(end)
	}
	if b.cached && b.cacheKey == key {
		return b.cacheLower, b.cacheUpper, seasonal, true
	}
	b.scratch = append(b.scratch[:0], vals...)
	med := median(b.scratch)
	for i, v := range b.scratch {
		b.scratch[i] = math.Abs(v - med)
	}
	mad := median(b.scratch)
	sigma := max(madScale*mad, relFloor*math.Abs(med), absFloor)
	k := SensitivityK(s)
	b.cached, b.cacheKey, b.cacheLower, b.cacheUpper = true, key, med-k*sigma, med+k*sigma
	return b.cacheLower, b.cacheUpper, seasonal, true
}

// median sorts xs in place.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// outside reports whether v breaches the band on the operator's side.
func outside(op tripcap.Operator, v, lower, upper float64) bool {
	switch op {
	case tripcap.OperatorGreaterThan:
		return v > upper
	case tripcap.OperatorLessThan:
		return v < lower
	case tripcap.OperatorGreaterOrLessThan:
		return v > upper || v < lower
	}
	return false
}
