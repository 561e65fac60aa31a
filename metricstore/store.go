// Package metricstore keeps hosts' metrics in memory, bounded: for each
// series (host, metric, interface) a ring of 1-second points over a recent
// window and a ring of 1-minute rollups (count, sum, minimum, maximum) over a
// longer one. Any window a rule asks for is answered from memory at once:
// whole minutes from the rollups, the ragged edges from the 1-second ring.
// Missing data stays missing: a second without a point is absent, never 0,
// and every answer says how many points it rests on.
package metricstore

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tripcap/tripcap"
)

// Defaults of Config.
const (
	DefaultRaw            = time.Hour
	DefaultRollup         = 24 * time.Hour
	DefaultMaxSeries      = 1 << 20
	DefaultMaxInterfaces  = 32
	DefaultMaxFuture      = time.Minute
	DefaultMaxQueryPoints = 10_000
	rollupStep            = 60 // seconds per rollup bucket
	// What a series of moving integer-valued data takes, as
	// BenchmarkHostMemory measures it (docs/performance.md): millibytes per
	// 1-second point and per rollup bucket, and bytes for the series itself
	// (its plain head minute, block indexes, key and map entry).
	estRawMilliBytes    = 700
	estRollupMilliBytes = 2800
	seriesOverheadBytes = 1700
	defaultPruneEvery   = time.Minute
)

// Config bounds the store.
type Config struct {
	// Raw is how long 1-second points are kept (default 1 h; whole minutes).
	Raw time.Duration
	// Rollup is how long 1-minute rollups are kept (default 24 h; at least Raw).
	Rollup time.Duration
	// MaxSeries bounds the number of series; Append refuses points that
	// would create more (ELIMIT).
	MaxSeries int
	// MaxInterfaces bounds per-interface series per host and metric, so an
	// agent on a host with churning container interfaces cannot grow the
	// store without bound; Prune drops those that went quiet.
	MaxInterfaces int
	// MaxFuture refuses points stamped further ahead of Now (clock skew).
	MaxFuture time.Duration
	// Now is the clock; time.Now by default.
	Now    func() time.Time
	Logger *slog.Logger
	// SnapshotPath, when set, keeps the store across restarts: New reads
	// the snapshot there, Run writes one every SnapshotEvery (default a
	// minute) and when it ends.
	SnapshotPath  string
	SnapshotEvery time.Duration
}

func (c *Config) applyDefaults() error {
	if c.Raw == 0 {
		c.Raw = DefaultRaw
	}
	if c.Rollup == 0 {
		c.Rollup = DefaultRollup
	}
	if c.Raw < time.Minute || c.Raw%time.Minute != 0 {
		return tripcap.Errorf(tripcap.EINVALID, "raw: %s must be a whole number of minutes, at least one", c.Raw)
	}
	if c.Rollup < c.Raw || c.Rollup%time.Minute != 0 {
		return tripcap.Errorf(tripcap.EINVALID, "rollup: %s must be whole minutes and at least raw (%s)", c.Rollup, c.Raw)
	}
	if c.Rollup > 400*24*time.Hour {
		return tripcap.Errorf(tripcap.EINVALID, "rollup: %s is longer than 400 days", c.Rollup)
	}
	if c.MaxSeries == 0 {
		c.MaxSeries = DefaultMaxSeries
	}
	if c.MaxInterfaces == 0 {
		c.MaxInterfaces = DefaultMaxInterfaces
	}
	if c.MaxFuture == 0 {
		c.MaxFuture = DefaultMaxFuture
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Logger = c.Logger.With("component", "metricstore")
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = DefaultSnapshotEvery
	}
	return nil
}

// Key names a series. Interface "" is the host's own series.
type Key struct {
	Host      string
	Metric    tripcap.MetricID
	Interface string
}

// Store is the in-memory metric store. It is safe for concurrent use.
type Store struct {
	cfg       Config
	rawLen    int64 // seconds in the raw ring
	rollupLen int64 // buckets in the rollup ring

	// metrics indexes the metrics (tripcap.MetricDefinitions), so a host
	// holds its series in slices by metric.
	metrics   map[tripcap.MetricID]int
	metricIDs []tripcap.MetricID

	// mu guards the hosts' tables (not the series, which have their own
	// locks): an append takes it once per batch, for reading.
	mu      sync.RWMutex
	hosts   map[string]*hostState
	nSeries int
	hooks   []func(host string, newest time.Time)
	// appends counts batches that stored a point, so Run writes a
	// snapshot only when there is something new to keep.
	appends atomic.Int64
	// seriesBytes is what the series hold (series.bytes), kept as they
	// change, so Stats does not visit them.
	seriesBytes atomic.Int64
}

// hostState is a host's series table: its own series by metric index and
// its interfaces' by interface slot and metric index, so a batch finds its
// series by one lookup of the host and small indexes, not a map of every
// series keyed by three strings.
type hostState struct {
	name   string
	newest atomic.Int64 // unix second of the host's newest point
	own    []*series    // by metric index
	ifaces []hostIface
	// perIface counts the interface series per metric index (MaxInterfaces).
	perIface []int
	n        int // series
}

// hostIface is one interface's series by metric index.
type hostIface struct {
	name string
	ser  []*series
}

func (s *Store) newHostState(name string) *hostState {
	return &hostState{name: name, own: make([]*series, len(s.metricIDs)), perIface: make([]int, len(s.metricIDs))}
}

// get returns the host's series of metric index mi and interface iface, nil if none.
func (h *hostState) get(mi int, iface string) *series {
	if iface == "" {
		return h.own[mi]
	}
	for i := range h.ifaces {
		if h.ifaces[i].name == iface {
			return h.ifaces[i].ser[mi]
		}
	}
	return nil
}

// put installs ser, which the host has none of yet; the store's mu is held.
func (h *hostState) put(mi int, iface string, ser *series) {
	h.n++
	if iface == "" {
		h.own[mi] = ser
		return
	}
	h.perIface[mi]++
	for i := range h.ifaces {
		if h.ifaces[i].name == iface {
			h.ifaces[i].ser[mi] = ser
			return
		}
	}
	f := hostIface{name: iface, ser: make([]*series, len(h.own))}
	f.ser[mi] = ser
	h.ifaces = append(h.ifaces, f)
}

// raiseNewest makes sec the host's newest second if it is newer.
func (h *hostState) raiseNewest(sec int64) int64 {
	for {
		cur := h.newest.Load()
		if sec <= cur {
			return cur
		}
		if h.newest.CompareAndSwap(cur, sec) {
			return sec
		}
	}
}

// each calls fn for each of the host's series, with its key.
func (h *hostState) each(metrics []tripcap.MetricID, fn func(k Key, ser *series)) {
	for mi, ser := range h.own {
		if ser != nil {
			fn(Key{h.name, metrics[mi], ""}, ser)
		}
	}
	for _, f := range h.ifaces {
		for mi, ser := range f.ser {
			if ser != nil {
				fn(Key{h.name, metrics[mi], f.name}, ser)
			}
		}
	}
}

// drop removes the host's series for which fn says so (the store's mu is
// held) and returns how many it removed.
func (h *hostState) drop(s *Store, fn func(ser *series) bool) int {
	n := 0
	for mi, ser := range h.own {
		if ser != nil && fn(ser) {
			s.detach(ser)
			h.own[mi] = nil
			n++
		}
	}
	kept := h.ifaces[:0]
	for _, f := range h.ifaces {
		left := false
		for mi, ser := range f.ser {
			if ser == nil {
				continue
			}
			if fn(ser) {
				s.detach(ser)
				f.ser[mi] = nil
				h.perIface[mi]--
				n++
			} else {
				left = true
			}
		}
		if left {
			kept = append(kept, f)
		}
	}
	clear(h.ifaces[len(kept):])
	h.ifaces = kept
	h.n -= n
	s.nSeries -= n
	return n
}

// New returns an empty store.
func New(cfg Config) (*Store, error) {
	if err := cfg.applyDefaults(); err != nil {
		return nil, err
	}
	s := &Store{
		cfg:       cfg,
		rawLen:    int64(cfg.Raw / time.Second),
		rollupLen: int64(cfg.Rollup / time.Minute),
		metrics:   map[tripcap.MetricID]int{},
		hosts:     map[string]*hostState{},
	}
	for i, d := range tripcap.MetricDefinitions() {
		s.metrics[d.ID] = i
		s.metricIDs = append(s.metricIDs, d.ID)
	}
	if cfg.SnapshotPath != "" {
		// A damaged snapshot costs the history, not the start.
		if err := s.LoadSnapshot(cfg.SnapshotPath); err != nil {
			cfg.Logger.Error("metric history not restored", "err", err)
		} else if st := s.Stats(); st.Series > 0 {
			cfg.Logger.Info("metric history restored", "hosts", st.Hosts, "series", st.Series)
		}
	}
	return s, nil
}

// Config returns the store's configuration with defaults applied.
func (s *Store) Config() Config { return s.cfg }

// BytesPerSeries estimates the memory one series takes once its windows
// are full of moving integer-valued data (network counts per second), as
// BenchmarkHostMemory measures it. It is an estimate: series are encoded,
// so a constant series takes less and one of arbitrary floating-point
// values more (up to about 9 bytes a point); Stats reports what is held.
func BytesPerSeries(cfg Config) int64 {
	if err := cfg.applyDefaults(); err != nil {
		return 0
	}
	return (int64(cfg.Raw/time.Second)*estRawMilliBytes+int64(cfg.Rollup/time.Minute)*estRollupMilliBytes)/1000 + seriesOverheadBytes
}

// OnAppend registers fn to be called after each Append, once per host the
// batch had points for, with the host's newest point time. It runs on the
// appending goroutine: fn must be quick (queue work, do not evaluate).
func (s *Store) OnAppend(fn func(host string, newest time.Time)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, fn)
}

// AppendResult says what became of a batch's points.
type AppendResult struct {
	Stored int `json:"stored"`
	// Duplicates repeated a second a series already had; the first is kept.
	Duplicates int `json:"duplicates"`
	// TooOld fell before the rollup window; TooNew after Now+MaxFuture.
	TooOld int `json:"tooOld"`
	TooNew int `json:"tooNew"`
	// OverLimit would have created series beyond MaxSeries or MaxInterfaces.
	OverLimit int `json:"overLimit"`
}

// Append stores a batch. Every point must name its host (the server sets it
// from the agent's credential); invalid batches are refused whole with
// EINVALID. Points the store cannot keep are counted, not refused, so one
// late point does not cost an agent its batch.
func (s *Store) Append(b tripcap.MetricBatch) (AppendResult, error) {
	if err := b.Validate(); err != nil {
		return AppendResult{}, err
	}
	return s.appendValid(b)
}

// touchedHost is a host a batch stored points of, and its newest second.
type touchedHost struct {
	h   *hostState
	sec int64
}

// appendValid stores a batch that passed MetricBatch.Validate.
func (s *Store) appendValid(b tripcap.MetricBatch) (AppendResult, error) {
	var res AppendResult
	for i := range b.Points {
		if b.Points[i].Host == "" {
			return res, tripcap.Errorf(tripcap.EINVALID, "points[%d].host: required", i)
		}
	}
	now := s.cfg.Now().Unix()
	maxSec := now + int64(s.cfg.MaxFuture/time.Second)
	// A batch is one host's, nearly always: its table is looked up once.
	var touchedBuf [2]touchedHost
	touched := touchedBuf[:0]
	var h *hostState
	lastMetric, mi := tripcap.MetricID(""), -1
	s.mu.RLock()
	for i := range b.Points {
		p := &b.Points[i]
		sec := p.Time.Unix()
		if sec > maxSec {
			res.TooNew++
			continue
		}
		if sec <= now-s.rollupLen*rollupStep {
			res.TooOld++
			continue
		}
		if h == nil || h.name != p.Host {
			h = s.hosts[p.Host]
		}
		if mi < 0 || p.Metric != lastMetric {
			var ok bool
			if mi, ok = s.metrics[p.Metric]; !ok {
				mi = -1
				res.OverLimit++ // Validate refuses it: not reached
				continue
			}
			lastMetric = p.Metric
		}
		var ser *series
		if h != nil {
			ser = h.get(mi, p.Interface)
		}
		if ser == nil {
			// A new series: the tables change under the write lock.
			s.mu.RUnlock()
			var err error
			ser, err = s.seriesFor(Key{p.Host, p.Metric, p.Interface})
			s.mu.RLock()
			h = s.hosts[p.Host]
			if err != nil || h == nil {
				res.OverLimit++
				continue
			}
		}
		switch ser.add(sec, p.Value) {
		case addStored:
			res.Stored++
			j := 0
			for j < len(touched) && touched[j].h != h {
				j++
			}
			if j == len(touched) {
				touched = append(touched, touchedHost{h, sec})
			} else if sec > touched[j].sec {
				touched[j].sec = sec
			}
		case addDuplicate:
			res.Duplicates++
		case addTooOld:
			res.TooOld++
		}
	}
	if len(touched) == 0 {
		s.mu.RUnlock()
		return res, nil
	}
	for i := range touched {
		// A host deleted meanwhile is not announced.
		if s.hosts[touched[i].h.name] != touched[i].h {
			touched[i].h = nil
			continue
		}
		touched[i].sec = touched[i].h.raiseNewest(touched[i].sec)
	}
	hooks := s.hooks
	s.mu.RUnlock()
	s.appends.Add(1)
	for _, t := range touched {
		if t.h == nil {
			continue
		}
		at := time.Unix(t.sec, 0).UTC()
		for _, fn := range hooks {
			fn(t.h.name, at)
		}
	}
	return res, nil
}

var errOverLimit = fmt.Errorf("series limit reached")

// lookupLocked returns series k, nil if the store has none; mu is held.
func (s *Store) lookupLocked(k Key) *series {
	h := s.hosts[k.Host]
	if h == nil {
		return nil
	}
	mi, ok := s.metrics[k.Metric]
	if !ok {
		return nil
	}
	return h.get(mi, k.Interface)
}

func (s *Store) lookup(k Key) *series {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lookupLocked(k)
}

// seriesFor returns series k, making it if the limits let it.
func (s *Store) seriesFor(k Key) (*series, error) {
	if ser := s.lookup(k); ser != nil {
		return ser, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ser := s.lookupLocked(k); ser != nil {
		return ser, nil
	}
	ser := newSeries(s.rawLen, s.rollupLen)
	if !s.installLocked(k, ser) {
		return nil, errOverLimit
	}
	return ser, nil
}

// installLocked adds ser as series k, which the store has none of, unless
// MaxSeries or MaxInterfaces refuse it. s.mu is held.
func (s *Store) installLocked(k Key, ser *series) bool {
	mi, ok := s.metrics[k.Metric]
	if !ok || s.nSeries >= s.cfg.MaxSeries {
		return false
	}
	h := s.hosts[k.Host]
	if k.Interface != "" && h != nil && h.perIface[mi] >= s.cfg.MaxInterfaces {
		return false
	}
	if h == nil {
		h = s.newHostState(k.Host)
		s.hosts[k.Host] = h
	}
	h.put(mi, k.Interface, ser)
	s.nSeries++
	s.attach(ser)
	return true
}

// attach counts a series' bytes in the store's total from now on.
func (s *Store) attach(ser *series) {
	ser.mu.Lock()
	defer ser.mu.Unlock()
	ser.acct = &s.seriesBytes
	ser.held, ser.resized = 0, true
	ser.account()
}

// detach stops counting a series removed from the store (an append may
// still hold it, and change it, unseen).
func (s *Store) detach(ser *series) {
	ser.mu.Lock()
	defer ser.mu.Unlock()
	if ser.acct != nil {
		ser.acct.Add(-ser.held)
	}
	ser.acct, ser.held = nil, 0
}

// Newest returns the time of the host's newest point.
func (s *Store) Newest(host string) (time.Time, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := s.hosts[host]
	if h == nil || h.newest.Load() == 0 {
		return time.Time{}, false
	}
	return time.Unix(h.newest.Load(), 0).UTC(), true
}

// Hosts lists the hosts the store has series of.
func (s *Store) Hosts() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.hosts))
	for h := range s.hosts {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// Interfaces lists the interfaces a host has series of for a metric.
func (s *Store) Interfaces(host string, metric tripcap.MetricID) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := s.hosts[host]
	mi, ok := s.metrics[metric]
	if h == nil || !ok {
		return nil
	}
	var out []string
	for _, f := range h.ifaces {
		if f.ser[mi] != nil {
			out = append(out, f.name)
		}
	}
	sort.Strings(out)
	return out
}

// DeleteHost forgets every series of a host.
func (s *Store) DeleteHost(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hosts[host]; h != nil {
		h.drop(s, func(*series) bool { return true })
		delete(s.hosts, host)
	}
}

// Prune drops series with no point inside the rollup window, freeing the
// memory of interfaces and hosts that went away. It returns how many it dropped.
func (s *Store) Prune() int {
	cutoff := s.cfg.Now().Unix() - s.rollupLen*rollupStep
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for host, h := range s.hosts {
		n += h.drop(s, func(ser *series) bool { return ser.newest() <= cutoff })
		if h.n == 0 && h.newest.Load() <= cutoff {
			delete(s.hosts, host)
		}
	}
	return n
}

// Run prunes every minute and, with a SnapshotPath, saves a snapshot every
// SnapshotEvery and once more when ctx ends, before it returns.
func (s *Store) Run(ctx context.Context) {
	prune := time.NewTicker(defaultPruneEvery)
	defer prune.Stop()
	var snap <-chan time.Time
	if s.cfg.SnapshotPath != "" {
		t := time.NewTicker(s.cfg.SnapshotEvery)
		defer t.Stop()
		snap = t.C
	}
	// A snapshot costs what the store holds: an idle server writes none.
	saved := int64(-1)
	save := func() {
		n := s.appends.Load()
		if n == saved {
			return
		}
		if err := s.SaveSnapshot(s.cfg.SnapshotPath); err != nil {
			s.cfg.Logger.Error("saving metric history", "err", err)
			return
		}
		saved = n
	}
	for {
		select {
		case <-ctx.Done():
			if snap != nil {
				save()
			}
			return
		case <-snap:
			save()
		case <-prune.C:
			if n := s.Prune(); n > 0 {
				s.cfg.Logger.Debug("pruned quiet series", "series", n)
			}
		}
	}
}

// Stats describe the store's size.
type Stats struct {
	Hosts  int `json:"hosts"`
	Series int `json:"series"`
	// Bytes is the memory the series hold: their encoded blocks (with the
	// room their buffers have), plain head minutes, the minutes kept
	// decoded for rules, indexes, and the hosts' series tables and names.
	// BytesPerHost is its average over the hosts.
	Bytes        int64 `json:"bytes"`
	BytesPerHost int64 `json:"bytesPerHost"`
}

// seriesEntryBytes is what a series costs in its host's table beyond
// the series: its slot in a slice by metric.
const seriesEntryBytes = int64(unsafe.Sizeof(uintptr(0)))

// Stats returns the store's size now. It visits the hosts, not the series
// (their bytes are kept as they change).
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := Stats{Hosts: len(s.hosts), Series: s.nSeries, Bytes: s.seriesBytes.Load()}
	for name, h := range s.hosts {
		// The table: the host's map entry, state and slices, and names.
		st.Bytes += int64(unsafe.Sizeof(*h)) + 2*int64(len(name)+int(unsafe.Sizeof(name))+int(unsafe.Sizeof(h))) +
			int64(len(h.own)+len(h.perIface))*seriesEntryBytes
		for _, f := range h.ifaces {
			st.Bytes += int64(unsafe.Sizeof(f)+uintptr(len(f.name))) + int64(len(f.ser))*seriesEntryBytes
		}
	}
	if st.Hosts > 0 {
		st.BytesPerHost = st.Bytes / int64(st.Hosts)
	}
	return st
}

// Window is the summary of a series over a window (Start, End]: the points
// it has and how many seconds it spans, so a caller can tell a full window
// from a sparse one.
type Window struct {
	Start, End time.Time
	tripcap.Summary
	// Seconds is the window's length in seconds: a full window has one point per second.
	Seconds int64
}

// Coverage is the share of the window's seconds that have a point.
func (w Window) Coverage() float64 {
	if w.Seconds <= 0 {
		return 0
	}
	return float64(w.Count) / float64(w.Seconds)
}

// Grained is a window summarized at a time grain longer than the points'
// second (SummarizeGrain): the embedded Window holds the 1-second points,
// Grains the grain-long intervals that had any, reduced to one value each.
type Grained struct {
	Window
	Grain                        time.Duration
	Grains                       int64
	GrainSum, GrainMin, GrainMax float64
}

// Value aggregates the window as Azure does at the grain: Average, Minimum
// and Maximum over the grains' values, Total over every point, Count of the
// points. At a 1-second grain it is the points' own summary.
func (g Grained) Value(a tripcap.Aggregation) (float64, bool) {
	if g.Grain <= time.Second {
		return g.Summary.Value(a)
	}
	if g.Grains == 0 {
		return 0, false
	}
	switch a {
	case tripcap.AggregationAverage:
		return g.GrainSum / float64(g.Grains), true
	case tripcap.AggregationMinimum:
		return g.GrainMin, true
	case tripcap.AggregationMaximum:
		return g.GrainMax, true
	}
	return g.Summary.Value(a)
}

// Summarize reduces a series over (end-window, end]. Whole minutes come from
// the rollups, the rest from 1-second points; seconds older than the raw
// ring that do not fill a whole minute are not counted (Count says so).
func (s *Store) Summarize(k Key, end time.Time, window time.Duration) Window {
	e := end.Unix()
	w := Window{Start: time.Unix(e-int64(window/time.Second), 0).UTC(), End: time.Unix(e, 0).UTC(), Seconds: int64(window / time.Second)}
	ser := s.lookup(k)
	if ser == nil || w.Seconds <= 0 {
		return w
	}
	var rd reader
	ser.mu.Lock()
	w.Summary = ser.summarize(&rd, e-w.Seconds+1, e)
	ser.mu.Unlock()
	return w
}

// SummarizeGrain reduces a series over (end-window, end] at a time grain:
// the window is cut into grain-long intervals ending at end, each reduced to
// one value (a counter's total, a gauge's mean). That is what Azure's
// aggregations mean for a metric with a one-minute grain: the Average of
// Network Out Total over 5 minutes is the mean of five per-minute totals,
// not of 300 per-second points. A grain of a second or less, or one that
// does not divide the window, is Summarize's.
func (s *Store) SummarizeGrain(k Key, end time.Time, window, grain time.Duration) Grained {
	e := end.Unix()
	g := Grained{Window: Window{Start: time.Unix(e-int64(window/time.Second), 0).UTC(), End: time.Unix(e, 0).UTC(), Seconds: int64(window / time.Second)}, Grain: grain}
	if grain <= time.Second || grain%time.Second != 0 || window%grain != 0 {
		g.Grain = time.Second
	}
	ser := s.lookup(k)
	if ser == nil || g.Seconds <= 0 {
		return g
	}
	// One lock and one reader for the window and its grains, so blocks
	// are parsed once.
	var rd reader
	ser.mu.Lock()
	defer ser.mu.Unlock()
	step := int64(g.Grain / time.Second)
	if g.Grain > time.Second && step%rollupStep == 0 && mod(e, rollupStep) == 0 {
		// Grains of whole minutes, ending on a minute (rules evaluated on
		// the minute): each grain is its buckets merged in order, as
		// summarize would, so one pass over the buckets gives them all,
		// and the window's summary (the same buckets merged in order).
		def, _ := k.Metric.Definition()
		ser.minuteGrains(&rd, (e-g.Seconds)/rollupStep, e/rollupStep-1, step/rollupStep, &g.Summary, func(_ int64, sum tripcap.Summary) {
			g.addGrain(sum, def.Kind)
		})
		return g
	}
	g.Summary = ser.summarize(&rd, e-g.Seconds+1, e)
	if g.Grain == time.Second || g.Count == 0 {
		return g
	}
	def, _ := k.Metric.Definition()
	for to := e - g.Seconds + step; to <= e; to += step {
		g.addGrain(ser.summarize(&rd, to-step+1, to), def.Kind)
	}
	return g
}

// addGrain counts a grain's summary, if it has points, reduced to one
// value: a counter's total, a gauge's mean.
func (g *Grained) addGrain(sum tripcap.Summary, kind tripcap.MetricKind) {
	if sum.Count == 0 {
		return
	}
	v := sum.Sum
	if kind == tripcap.MetricGauge {
		v = sum.Sum / float64(sum.Count)
	}
	if g.Grains == 0 || v < g.GrainMin {
		g.GrainMin = v
	}
	if g.Grains == 0 || v > g.GrainMax {
		g.GrainMax = v
	}
	g.Grains++
	g.GrainSum += v
}

// Point is one interval of a query. Count 0 means no data: Value is then
// meaningless and JSON shows it as null.
type Point struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"-"`
	Count int64     `json:"count"`
}

// MarshalJSON writes value as null for an interval without data.
func (p Point) MarshalJSON() ([]byte, error) {
	v := "null"
	if p.Count > 0 && !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) {
		v = strconv.FormatFloat(p.Value, 'g', -1, 64)
	}
	return fmt.Appendf(nil, `{"time":%q,"value":%s,"count":%d}`, p.Time.Format(time.RFC3339), v, p.Count), nil
}

// UnmarshalJSON reads what MarshalJSON writes (for clients of the query API).
func (p *Point) UnmarshalJSON(b []byte) error {
	var w struct {
		Time  time.Time `json:"time"`
		Value *float64  `json:"value"`
		Count int64     `json:"count"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = Point{Time: w.Time, Count: w.Count}
	if w.Value != nil {
		p.Value = *w.Value
	} else {
		p.Count = 0
	}
	return nil
}

// Query asks for a series over a window, one value per interval.
type Query struct {
	Host      string           `json:"host"`
	Metric    tripcap.MetricID `json:"metric"`
	Interface string           `json:"interface,omitempty"`
	// End is the end of the window; zero means now.
	End         time.Time           `json:"end,omitzero"`
	Window      time.Duration       `json:"-"`
	Interval    time.Duration       `json:"-"`
	Aggregation tripcap.Aggregation `json:"aggregation"`
}

// Result is a query's answer. Points[i] covers [Time, Time+Interval): it is
// labelled by its start, as Azure labels intervals, and holds the points of
// the seconds in (Time, Time+Interval]. The last one holds End's second, so
// when End is now it is the interval in progress.
type Result struct {
	Host        string              `json:"host"`
	Metric      tripcap.MetricID    `json:"metric"`
	DisplayName string              `json:"displayName"`
	Unit        tripcap.MetricUnit  `json:"unit"`
	Interface   string              `json:"interface,omitempty"`
	Aggregation tripcap.Aggregation `json:"aggregation"`
	Start       time.Time           `json:"start"`
	End         time.Time           `json:"end"`
	Window      string              `json:"window"`
	Interval    string              `json:"interval"`
	Points      []Point             `json:"points"`
}

// Query answers q. Intervals without points are returned with Count 0,
// never as zeros. Intervals shorter than a minute have data only within
// the raw window. The error names the field at fault.
func (s *Store) Query(q Query) (*Result, error) {
	def, ok := q.Metric.Definition()
	if !ok {
		return nil, tripcap.Errorf(tripcap.EINVALID, "metric: %q is not a metric", q.Metric)
	}
	if q.Host == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "host: required")
	}
	if q.Aggregation == "" {
		q.Aggregation = def.DefaultAggregation
	}
	agg, err := tripcap.ParseAggregation("aggregation", string(q.Aggregation))
	if err != nil {
		return nil, err
	}
	if q.Window < time.Second || q.Window%time.Second != 0 || q.Window > s.cfg.Rollup {
		return nil, tripcap.Errorf(tripcap.EINVALID, "window: %s must be whole seconds from 1s to the store's %s", q.Window, s.cfg.Rollup)
	}
	if q.Interval == 0 {
		q.Interval = q.Window / 60
		if q.Interval < time.Second {
			q.Interval = time.Second
		}
		q.Interval = q.Interval.Truncate(time.Second)
	}
	if q.Interval < time.Second || q.Interval%time.Second != 0 || q.Interval > q.Window {
		return nil, tripcap.Errorf(tripcap.EINVALID, "interval: %s must be whole seconds from 1s to the window (%s)", q.Interval, q.Window)
	}
	n := int64(q.Window / q.Interval)
	if q.Window%q.Interval != 0 {
		n++
	}
	if n > DefaultMaxQueryPoints {
		return nil, tripcap.Errorf(tripcap.EINVALID, "interval: %s over %s gives %d points; at most %d", q.Interval, q.Window, n, DefaultMaxQueryPoints)
	}
	end := q.End
	if end.IsZero() {
		end = s.cfg.Now()
	}
	e := end.Unix()
	step := int64(q.Interval / time.Second)
	// Align to the interval, so repeated queries give the same buckets, and
	// end with the interval that holds end: with end now, that is the
	// interval in progress, shown with what it has so far.
	e = ceilDiv(e, step) * step
	start := e - n*step
	res := &Result{Host: q.Host, Metric: q.Metric, DisplayName: def.DisplayName, Unit: def.Unit, Interface: q.Interface,
		Aggregation: agg, Start: time.Unix(start, 0).UTC(), End: time.Unix(e, 0).UTC(),
		Window: tripcap.FormatISODuration(q.Window), Interval: tripcap.FormatISODuration(q.Interval), Points: make([]Point, n)}
	ser := s.lookup(Key{q.Host, q.Metric, q.Interface})
	var rd reader
	if ser != nil {
		// One lock for the whole query, so the blocks rd keeps stay current.
		ser.mu.Lock()
		defer ser.mu.Unlock()
	}
	for i := range n {
		res.Points[i].Time = time.Unix(start+i*step, 0).UTC()
	}
	if ser == nil {
		return res, nil
	}
	set := func(i int64, sum tripcap.Summary) {
		if v, ok := sum.Value(agg); ok {
			res.Points[i].Value, res.Points[i].Count = v, sum.Count
		}
	}
	if step%rollupStep == 0 {
		// Intervals of whole minutes (aligned, as start is): one pass over
		// the buckets, as SummarizeGrain's.
		ser.minuteGrains(&rd, start/rollupStep, e/rollupStep-1, step/rollupStep, nil, set)
		return res, nil
	}
	for i := range n {
		to := start + (i+1)*step
		set(i, ser.summarize(&rd, to-step+1, to))
	}
	return res, nil
}

func mod(a, n int64) int64 {
	m := a % n
	if m < 0 {
		m += n
	}
	return m
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

// Keys lists the store's series, sorted, for tests and diagnostics.
func (s *Store) Keys() []Key {
	s.mu.RLock()
	out := make([]Key, 0, s.nSeries)
	for _, h := range s.hosts {
		h.each(s.metricIDs, func(k Key, _ *series) { out = append(out, k) })
	}
	s.mu.RUnlock()
	slices.SortFunc(out, compareKeys)
	return out
}
