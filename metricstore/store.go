// Package metricstore keeps hosts' metrics in memory, bounded: for each
// series (host, metric, interface) a ring of 1-second points over a recent
// window and a ring of 1-minute rollups (count, sum, minimum, maximum) over a
// longer one. Any window a rule asks for is answered from memory at once:
// whole minutes from the rollups, the ragged edges from the 1-second ring.
// Missing data stays missing: a second without a point is absent, never 0,
// and every answer says how many points it rests on.
package metricstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	bytesPerRawPoint      = 8  // one float64; NaN marks a missing second
	bytesPerRollupBucket  = 28 // sum, min, max (float64) and count (uint32)
	seriesOverheadBytes   = 256
	defaultPruneEvery     = time.Minute
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

	mu     sync.RWMutex
	series map[Key]*series
	hosts  map[string]*hostState
	hooks  []func(host string, newest time.Time)
	// appends counts batches that stored a point, so Run writes a
	// snapshot only when there is something new to keep.
	appends atomic.Int64
}

type hostState struct {
	newest int64 // unix second of the host's newest point
	ifaces map[tripcap.MetricID]int
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
		series:    map[Key]*series{},
		hosts:     map[string]*hostState{},
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

// BytesPerSeries is the memory one series takes once its rings are full.
func BytesPerSeries(cfg Config) int64 {
	if err := cfg.applyDefaults(); err != nil {
		return 0
	}
	return int64(cfg.Raw/time.Second)*bytesPerRawPoint + int64(cfg.Rollup/time.Minute)*bytesPerRollupBucket + seriesOverheadBytes
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
	var res AppendResult
	if err := b.Validate(); err != nil {
		return res, err
	}
	for i, p := range b.Points {
		if p.Host == "" {
			return res, tripcap.Errorf(tripcap.EINVALID, "points[%d].host: required", i)
		}
	}
	now := s.cfg.Now().Unix()
	maxSec := now + int64(s.cfg.MaxFuture/time.Second)
	touched := map[string]int64{}
	for _, p := range b.Points {
		sec := p.Time.Unix()
		if sec > maxSec {
			res.TooNew++
			continue
		}
		if sec <= now-s.rollupLen*rollupStep {
			res.TooOld++
			continue
		}
		ser, err := s.seriesFor(Key{p.Host, p.Metric, p.Interface}, sec)
		if err != nil {
			res.OverLimit++
			continue
		}
		switch ser.add(sec, p.Value) {
		case addStored:
			res.Stored++
			if sec > touched[p.Host] {
				touched[p.Host] = sec
			}
		case addDuplicate:
			res.Duplicates++
		case addTooOld:
			res.TooOld++
		}
	}
	if len(touched) == 0 {
		return res, nil
	}
	s.appends.Add(1)
	s.mu.Lock()
	type call struct {
		host   string
		newest int64
	}
	calls := make([]call, 0, len(touched))
	for host, sec := range touched {
		h := s.hosts[host]
		if h != nil && sec > h.newest {
			h.newest = sec
		}
		if h != nil {
			calls = append(calls, call{host, h.newest})
		}
	}
	hooks := s.hooks
	s.mu.Unlock()
	for _, c := range calls {
		for _, fn := range hooks {
			fn(c.host, time.Unix(c.newest, 0).UTC())
		}
	}
	return res, nil
}

var errOverLimit = fmt.Errorf("series limit reached")

func (s *Store) seriesFor(k Key, sec int64) (*series, error) {
	s.mu.RLock()
	ser := s.series[k]
	s.mu.RUnlock()
	if ser != nil {
		return ser, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ser = s.series[k]; ser != nil {
		return ser, nil
	}
	if _, ok := s.admitLocked(k); !ok {
		return nil, errOverLimit
	}
	ser = newSeries(s.rawLen, s.rollupLen)
	s.series[k] = ser
	return ser, nil
}

// admitLocked counts a new series k against MaxSeries and MaxInterfaces
// and returns its host's state; false when a limit refuses it. s.mu is held.
func (s *Store) admitLocked(k Key) (*hostState, bool) {
	if len(s.series) >= s.cfg.MaxSeries {
		return nil, false
	}
	h := s.hosts[k.Host]
	if h == nil {
		h = &hostState{ifaces: map[tripcap.MetricID]int{}}
		s.hosts[k.Host] = h
	}
	if k.Interface != "" {
		if h.ifaces[k.Metric] >= s.cfg.MaxInterfaces {
			return nil, false
		}
		h.ifaces[k.Metric]++
	}
	return h, true
}

// Newest returns the time of the host's newest point.
func (s *Store) Newest(host string) (time.Time, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := s.hosts[host]
	if h == nil || h.newest == 0 {
		return time.Time{}, false
	}
	return time.Unix(h.newest, 0).UTC(), true
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
	var out []string
	for k := range s.series {
		if k.Host == host && k.Metric == metric && k.Interface != "" {
			out = append(out, k.Interface)
		}
	}
	sort.Strings(out)
	return out
}

// DeleteHost forgets every series of a host.
func (s *Store) DeleteHost(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.series {
		if k.Host == host {
			delete(s.series, k)
		}
	}
	delete(s.hosts, host)
}

// Prune drops series with no point inside the rollup window, freeing the
// memory of interfaces and hosts that went away. It returns how many it dropped.
func (s *Store) Prune() int {
	cutoff := s.cfg.Now().Unix() - s.rollupLen*rollupStep
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, ser := range s.series {
		if ser.newest() <= cutoff {
			delete(s.series, k)
			n++
			if h := s.hosts[k.Host]; h != nil && k.Interface != "" {
				h.ifaces[k.Metric]--
			}
		}
	}
	for host, h := range s.hosts {
		if h.newest <= cutoff {
			alive := false
			for k := range s.series {
				if k.Host == host {
					alive = true
					break
				}
			}
			if !alive {
				delete(s.hosts, host)
			}
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
	// Bytes is the memory the series' rings take (allocated up front per series).
	Bytes int64 `json:"bytes"`
}

// Stats returns the store's size now.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return Stats{Hosts: len(s.hosts), Series: len(s.series), Bytes: int64(len(s.series)) * BytesPerSeries(s.cfg)}
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
	s.mu.RLock()
	ser := s.series[k]
	s.mu.RUnlock()
	if ser == nil || w.Seconds <= 0 {
		return w
	}
	ser.mu.Lock()
	w.Summary = ser.summarize(e-w.Seconds+1, e)
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
	g := Grained{Window: s.Summarize(k, end, window), Grain: grain}
	if grain <= time.Second || grain%time.Second != 0 || window%grain != 0 {
		g.Grain = time.Second
		return g
	}
	s.mu.RLock()
	ser := s.series[k]
	s.mu.RUnlock()
	if ser == nil || g.Count == 0 {
		return g
	}
	def, _ := k.Metric.Definition()
	e, step := end.Unix(), int64(grain/time.Second)
	ser.mu.Lock()
	defer ser.mu.Unlock()
	for to := e - int64(window/time.Second) + step; to <= e; to += step {
		sum := ser.summarize(to-step+1, to)
		if sum.Count == 0 {
			continue
		}
		v := sum.Sum
		if def.Kind == tripcap.MetricGauge {
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
	return g
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
	s.mu.RLock()
	ser := s.series[Key{q.Host, q.Metric, q.Interface}]
	s.mu.RUnlock()
	for i := range n {
		to := start + (i+1)*step
		res.Points[i].Time = time.Unix(to-step, 0).UTC()
		if ser == nil {
			continue
		}
		ser.mu.Lock()
		sum := ser.summarize(to-step+1, to)
		ser.mu.Unlock()
		if v, ok := sum.Value(agg); ok {
			res.Points[i].Value, res.Points[i].Count = v, sum.Count
		}
	}
	return res, nil
}

// series is one time series' two rings.
type series struct {
	mu sync.Mutex
	// raw[sec % len] holds the point of second sec for sec in
	// (rawHead-len, rawHead]; NaN where the second has none.
	raw     []float64
	rawHead int64
	// rollup bucket b (minute b = sec/60) at index b % len, for b in
	// (rollHead-len, rollHead].
	sum, min, max []float64
	count         []uint32
	rollHead      int64
}

func newSeries(rawLen, rollupLen int64) *series {
	s := &series{
		raw: make([]float64, rawLen),
		sum: make([]float64, rollupLen), min: make([]float64, rollupLen), max: make([]float64, rollupLen),
		count: make([]uint32, rollupLen),
	}
	for i := range s.raw {
		s.raw[i] = math.NaN()
	}
	return s
}

type addOutcome int

const (
	addStored addOutcome = iota
	addDuplicate
	addTooOld
)

func (s *series) newest() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.rawHead, s.rollHead*rollupStep+rollupStep)
}

func (s *series) add(sec int64, v float64) addOutcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(sec, v)
}

func (s *series) addLocked(sec int64, v float64) addOutcome {
	s.advanceRaw(sec)
	inRaw := sec > s.rawHead-int64(len(s.raw))
	if inRaw {
		slot := mod(sec, int64(len(s.raw)))
		if !math.IsNaN(s.raw[slot]) {
			return addDuplicate
		}
		s.raw[slot] = v
	}
	// A point at second sec stands for (sec-1, sec]; bucket b holds the
	// minute (60b, 60b+60], so minute buckets line up with query intervals.
	b := floorDiv(sec-1, rollupStep)
	s.advanceRoll(b)
	if b <= s.rollHead-int64(len(s.count)) {
		if inRaw {
			return addStored
		}
		return addTooOld
	}
	s.addToBucket(b, v)
	return addStored
}

// advanceRaw moves the raw ring's head to sec if it is newer: the seconds
// skipped have no point, so their slots are cleared (at most one lap).
func (s *series) advanceRaw(sec int64) {
	if sec <= s.rawHead {
		return
	}
	rawLen := int64(len(s.raw))
	for t := max(s.rawHead+1, sec-rawLen+1); t <= sec; t++ {
		s.raw[mod(t, rawLen)] = math.NaN()
	}
	s.rawHead = sec
}

// advanceRoll moves the rollup ring's head to bucket b if it is newer.
func (s *series) advanceRoll(b int64) {
	if b <= s.rollHead {
		return
	}
	rollLen := int64(len(s.count))
	for t := max(s.rollHead+1, b-rollLen+1); t <= b; t++ {
		i := mod(t, rollLen)
		s.sum[i], s.min[i], s.max[i], s.count[i] = 0, 0, 0, 0
	}
	s.rollHead = b
}

func (s *series) addToBucket(b int64, v float64) {
	i := mod(b, int64(len(s.count)))
	if s.count[i] == 0 || v < s.min[i] {
		s.min[i] = v
	}
	if s.count[i] == 0 || v > s.max[i] {
		s.max[i] = v
	}
	s.count[i]++
	s.sum[i] += v
}

// backfillPoint adds a second of history. In the raw window it is Append's
// add; older, it may only build a rollup minute the store had none of.
// made records the minutes this backfill began, which later points of the
// backfill may add to and its rollups may replace.
func (s *series) backfillPoint(sec int64, v float64, made map[int64]bool) addOutcome {
	b := floorDiv(sec-1, rollupStep)
	rollLen := int64(len(s.count))
	if sec > s.rawHead-int64(len(s.raw)) {
		if b > s.rollHead || (b > s.rollHead-rollLen && s.count[mod(b, rollLen)] == 0) {
			made[b] = true
		}
		return s.addLocked(sec, v)
	}
	if b <= s.rollHead-rollLen {
		return addTooOld
	}
	s.advanceRoll(b)
	if s.count[mod(b, rollLen)] > 0 && !made[b] {
		return addDuplicate
	}
	made[b] = true
	s.addToBucket(b, v)
	return addStored
}

// backfillBucket takes a rollup minute as given, unless the store had any
// point of that minute before this backfill (made: the minutes it began
// from raw seconds, which the whole minute's rollup supersedes).
func (s *series) backfillBucket(bk RollupBucket, made map[int64]bool) addOutcome {
	b := bk.Minute / rollupStep
	rollLen := int64(len(s.count))
	if b <= s.rollHead-rollLen {
		return addTooOld
	}
	s.advanceRoll(b)
	i := mod(b, rollLen)
	if s.count[i] > 0 && !made[b] {
		return addDuplicate
	}
	s.count[i], s.sum[i], s.min[i], s.max[i] = bk.Count, bk.Sum, bk.Min, bk.Max
	return addStored
}

// history lists the series' points at or after from: the raw ring's seconds,
// and the rollups of the minutes before its first whole minute.
func (s *series) history(from int64) SeriesHistory {
	var h SeriesHistory
	rawLen, rollLen := int64(len(s.raw)), int64(len(s.count))
	firstRaw := s.rollHead + 1 // no raw points: every rollup goes
	if s.rawHead > 0 {
		firstRaw = ceilDiv(s.rawHead-rawLen, rollupStep)
	}
	for b := max(s.rollHead-rollLen+1, floorDiv(from-1, rollupStep)); b < firstRaw && b <= s.rollHead; b++ {
		if i := mod(b, rollLen); s.count[i] > 0 {
			h.Rollups = append(h.Rollups, RollupBucket{Minute: b * rollupStep, Sum: s.sum[i], Min: s.min[i], Max: s.max[i], Count: s.count[i]})
		}
	}
	if s.rawHead > 0 {
		for t := max(from, s.rawHead-rawLen+1); t <= s.rawHead; t++ {
			if v := s.raw[mod(t, rawLen)]; !math.IsNaN(v) {
				h.Raw = append(h.Raw, RawPoint{Sec: t, Value: v})
			}
		}
	}
	return h
}

// summarize reduces seconds [from, to]: whole minutes from the rollups,
// the other seconds from the raw ring where it still holds them.
func (s *series) summarize(from, to int64) tripcap.Summary {
	var sum tripcap.Summary
	if to < from {
		return sum
	}
	firstFull := ceilDiv(from-1, rollupStep) // first bucket whose seconds start at or after from
	lastFull := floorDiv(to, rollupStep) - 1 // last bucket whose seconds end at or before to
	if firstFull > lastFull {
		s.rawRange(&sum, from, to)
		return sum
	}
	s.rawRange(&sum, from, firstFull*rollupStep)
	rollLen := int64(len(s.count))
	for b := firstFull; b <= lastFull; b++ {
		if b > s.rollHead || b <= s.rollHead-rollLen {
			continue
		}
		i := mod(b, rollLen)
		if s.count[i] > 0 {
			sum.Merge(tripcap.Summary{Count: int64(s.count[i]), Sum: s.sum[i], Min: s.min[i], Max: s.max[i]})
		}
	}
	s.rawRange(&sum, (lastFull+1)*rollupStep+1, to)
	return sum
}

func (s *series) rawRange(sum *tripcap.Summary, from, to int64) {
	rawLen := int64(len(s.raw))
	from = max(from, s.rawHead-rawLen+1)
	to = min(to, s.rawHead)
	for t := from; t <= to; t++ {
		if v := s.raw[mod(t, rawLen)]; !math.IsNaN(v) {
			sum.Add(v)
		}
	}
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
	defer s.mu.RUnlock()
	out := make([]Key, 0, len(s.series))
	for k := range s.series {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b Key) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), strings.Compare(string(a.Metric), string(b.Metric)), strings.Compare(a.Interface, b.Interface))
	})
	return out
}
