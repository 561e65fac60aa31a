package metricstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// t0 is a minute boundary, so tests can reason about rollup buckets.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type clock struct{ now atomic.Int64 }

func (c *clock) Now() time.Time   { return time.Unix(c.now.Load(), 0).UTC() }
func (c *clock) set(t time.Time)  { c.now.Store(t.Unix()) }
func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }

func newStore(t testing.TB, cfg Config, c *clock) *Store {
	t.Helper()
	cfg.Now = c.Now
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pt(host string, m tripcap.MetricID, at time.Time, v float64) tripcap.MetricPoint {
	return tripcap.MetricPoint{Host: host, Metric: m, Time: at, Value: v}
}

func TestQueryGapsAreNotZero(t *testing.T) {
	c := newClock(t0.Add(10 * time.Second))
	s := newStore(t, Config{}, c)
	var b tripcap.MetricBatch
	// Seconds 1..10 except 4..6.
	for i := 1; i <= 10; i++ {
		if i >= 4 && i <= 6 {
			continue
		}
		b.Points = append(b.Points, pt("h1", tripcap.MetricNetworkOutBytes, t0.Add(time.Duration(i)*time.Second), float64(i)))
	}
	if res, err := s.Append(b); err != nil || res.Stored != 7 {
		t.Fatalf("Append = %+v, %v", res, err)
	}
	r, err := s.Query(Query{Host: "h1", Metric: tripcap.MetricNetworkOutBytes, End: t0.Add(10 * time.Second), Window: 10 * time.Second, Interval: time.Second, Aggregation: tripcap.AggregationTotal})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Points) != 10 {
		t.Fatalf("%d points", len(r.Points))
	}
	for i, p := range r.Points {
		sec := i + 1 // the point of second sec covers [sec-1, sec): labelled by its start
		if !p.Time.Equal(t0.Add(time.Duration(sec-1) * time.Second)) {
			t.Fatalf("point %d at %v", i, p.Time)
		}
		gap := sec >= 4 && sec <= 6
		if gap != (p.Count == 0) || (!gap && p.Value != float64(sec)) {
			t.Fatalf("point %d = %+v", i, p)
		}
	}
	js, _ := json.Marshal(r.Points[3])
	if string(js) != `{"time":"2026-03-01T12:00:03Z","value":null,"count":0}` {
		t.Fatalf("gap JSON = %s", js)
	}
	var back Point
	if err := json.Unmarshal(js, &back); err != nil || back.Count != 0 {
		t.Fatalf("gap JSON back = %+v, %v", back, err)
	}
	// Every aggregation over the whole window ignores the gap.
	w := s.Summarize(Key{"h1", tripcap.MetricNetworkOutBytes, ""}, t0.Add(10*time.Second), 10*time.Second)
	want := map[tripcap.Aggregation]float64{
		tripcap.AggregationTotal: 1 + 2 + 3 + 7 + 8 + 9 + 10, tripcap.AggregationCount: 7,
		tripcap.AggregationMinimum: 1, tripcap.AggregationMaximum: 10, tripcap.AggregationAverage: 40.0 / 7,
	}
	for a, v := range want {
		if got, ok := w.Value(a); !ok || math.Abs(got-v) > 1e-9 {
			t.Errorf("%s = %v, %v; want %v", a, got, ok, v)
		}
	}
	if w.Coverage() != 0.7 {
		t.Errorf("coverage = %v", w.Coverage())
	}
	// An unknown series or a window with no point has no value at all.
	empty := s.Summarize(Key{"h1", tripcap.MetricNetworkOutBytes, ""}, t0.Add(5*time.Second), 2*time.Second)
	if _, ok := empty.Value(tripcap.AggregationCount); ok {
		t.Errorf("empty window has a value: %+v", empty)
	}
}

// TestSummarizeMatchesBruteForce checks the rollup-plus-edges arithmetic
// against a plain sum over random windows, inside and beyond the raw ring.
func TestSummarizeMatchesBruteForce(t *testing.T) {
	const seconds = 3 * 3600
	c := newClock(t0.Add(seconds * time.Second))
	s := newStore(t, Config{Raw: 30 * time.Minute, Rollup: 4 * time.Hour}, c)
	rng := rand.New(rand.NewPCG(1, 2))
	vals := map[int64]float64{}
	var b tripcap.MetricBatch
	for i := int64(1); i <= seconds; i++ {
		if rng.IntN(10) == 0 && i != seconds {
			continue // missing second (not the last: it fixes where the raw ring ends)
		}
		v := float64(rng.IntN(1000)) - 100
		vals[i] = v
		b.Points = append(b.Points, pt("h", tripcap.MetricTCPSegmentsSent, t0.Add(time.Duration(i)*time.Second), v))
	}
	if _, err := s.Append(b); err != nil {
		t.Fatal(err)
	}
	k := Key{"h", tripcap.MetricTCPSegmentsSent, ""}
	rawStart := int64(seconds - 30*60 + 1)
	for range 2000 {
		end := int64(rng.IntN(seconds)) + 1
		win := int64(rng.IntN(7200)) + 1
		got := s.Summarize(k, t0.Add(time.Duration(end)*time.Second), time.Duration(win)*time.Second)
		var want tripcap.Summary
		for sec := end - win + 1; sec <= end; sec++ {
			v, ok := vals[sec]
			if !ok {
				continue
			}
			// Before the raw ring only whole minutes survive.
			if sec < rawStart {
				m := (sec - 1) / 60 // the minute (60m, 60m+60] of sec, relative to t0 (a minute boundary)
				if m*60+1 < end-win+1 || m*60+60 > end {
					continue
				}
			}
			want.Add(v)
		}
		if got.Count != want.Count || got.Sum != want.Sum || (want.Count > 0 && (got.Min != want.Min || got.Max != want.Max)) {
			t.Fatalf("window (%d-%d, %d]: got %+v, want %+v", end, win, end, got.Summary, want)
		}
	}
}

func TestQueryUsesRollupsBeyondRaw(t *testing.T) {
	c := newClock(t0.Add(3 * time.Hour))
	s := newStore(t, Config{Raw: time.Hour, Rollup: 24 * time.Hour}, c)
	var b tripcap.MetricBatch
	for i := 1; i <= 3*3600; i++ {
		b.Points = append(b.Points, pt("h", tripcap.MetricInboundFlows, t0.Add(time.Duration(i)*time.Second), float64(i%60)))
	}
	if _, err := s.Append(b); err != nil {
		t.Fatal(err)
	}
	r, err := s.Query(Query{Host: "h", Metric: tripcap.MetricInboundFlows, End: t0.Add(3 * time.Hour), Window: 3 * time.Hour, Interval: time.Minute, Aggregation: tripcap.AggregationMaximum})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Points) != 180 {
		t.Fatalf("%d points", len(r.Points))
	}
	for i, p := range r.Points {
		if p.Count != 60 || p.Value != 59 {
			t.Fatalf("minute %d = %+v", i, p)
		}
	}
	// Per-second intervals beyond the raw ring have no data, shown as gaps.
	r, err = s.Query(Query{Host: "h", Metric: tripcap.MetricInboundFlows, End: t0.Add(3 * time.Hour), Window: 2 * time.Hour, Interval: 10 * time.Second, Aggregation: tripcap.AggregationAverage})
	if err != nil {
		t.Fatal(err)
	}
	if r.Points[0].Count != 0 || r.Points[len(r.Points)-1].Count != 10 {
		t.Fatalf("first %+v last %+v", r.Points[0], r.Points[len(r.Points)-1])
	}
}

func TestAppendOutcomesAndHook(t *testing.T) {
	c := newClock(t0)
	s := newStore(t, Config{Raw: time.Minute, Rollup: 10 * time.Minute, MaxInterfaces: 2, MaxSeries: 4}, c)
	type call struct {
		host string
		at   time.Time
	}
	var mu sync.Mutex
	var calls []call
	s.OnAppend(func(host string, newest time.Time) {
		mu.Lock()
		calls = append(calls, call{host, newest})
		mu.Unlock()
	})
	m := tripcap.MetricNetworkInBytes
	res, err := s.Append(tripcap.MetricBatch{Points: []tripcap.MetricPoint{
		pt("a", m, t0.Add(-time.Second), 1),
		pt("a", m, t0.Add(-time.Second), 2),    // duplicate
		pt("a", m, t0.Add(-11*time.Minute), 1), // too old
		pt("a", m, t0.Add(2*time.Minute), 1),   // too new
		pt("b", m, t0.Add(-5*time.Second), 1),  // second host
		{Host: "a", Metric: m, Interface: "e0", Time: t0, Value: 1},
		{Host: "a", Metric: m, Interface: "e1", Time: t0, Value: 1},
		{Host: "a", Metric: m, Interface: "e2", Time: t0, Value: 1}, // over MaxInterfaces
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := AppendResult{Stored: 4, Duplicates: 1, TooOld: 1, TooNew: 1, OverLimit: 1}
	if res != want {
		t.Fatalf("Append = %+v, want %+v", res, want)
	}
	if len(calls) != 2 {
		t.Fatalf("hook calls %+v", calls)
	}
	for _, cl := range calls {
		if (cl.host == "a" && !cl.at.Equal(t0)) || (cl.host == "b" && !cl.at.Equal(t0.Add(-5*time.Second))) {
			t.Fatalf("hook call %+v", cl)
		}
	}
	// MaxSeries: a, b, a/e0, a/e1 exist.
	res, _ = s.Append(tripcap.MetricBatch{Points: []tripcap.MetricPoint{pt("c", m, t0, 1)}})
	if res.OverLimit != 1 {
		t.Fatalf("MaxSeries not enforced: %+v", res)
	}
	if got := s.Interfaces("a", m); fmt.Sprint(got) != "[e0 e1]" {
		t.Fatalf("Interfaces = %v", got)
	}
	// Invalid batches are refused whole, naming the field.
	for _, bad := range []tripcap.MetricPoint{
		{Metric: m, Time: t0, Value: 1},
		{Host: "a", Metric: "nope", Time: t0},
		{Host: "a", Metric: m, Time: t0, Value: math.NaN()},
		{Host: "a", Metric: tripcap.MetricInboundFlows, Interface: "e0", Time: t0},
	} {
		_, err := s.Append(tripcap.MetricBatch{Points: []tripcap.MetricPoint{bad}})
		if tripcap.ErrorCode(err) != tripcap.EINVALID {
			t.Errorf("Append(%+v) = %v", bad, err)
		}
	}
	// Prune forgets series that went quiet beyond the rollup window.
	c.set(t0.Add(time.Hour))
	if n := s.Prune(); n != 4 {
		t.Fatalf("Prune = %d", n)
	}
	if st := s.Stats(); st.Series != 0 || st.Hosts != 0 {
		t.Fatalf("after prune: %+v", st)
	}
}

func TestQueryValidation(t *testing.T) {
	s := newStore(t, Config{}, newClock(t0))
	for _, tc := range []struct {
		q     Query
		field string
	}{
		{Query{Host: "h", Metric: "x", Window: time.Minute}, "metric"},
		{Query{Metric: tripcap.MetricInboundFlows, Window: time.Minute}, "host"},
		{Query{Host: "h", Metric: tripcap.MetricInboundFlows, Window: 0}, "window"},
		{Query{Host: "h", Metric: tripcap.MetricInboundFlows, Window: 48 * time.Hour}, "window"},
		{Query{Host: "h", Metric: tripcap.MetricInboundFlows, Window: time.Minute, Interval: 2 * time.Minute}, "interval"},
		{Query{Host: "h", Metric: tripcap.MetricInboundFlows, Window: 24 * time.Hour, Interval: time.Second}, "interval"},
		{Query{Host: "h", Metric: tripcap.MetricInboundFlows, Window: time.Minute, Aggregation: "Median"}, "aggregation"},
	} {
		_, err := s.Query(tc.q)
		if tripcap.ErrorCode(err) != tripcap.EINVALID || len(tripcap.ErrorMessage(err)) < len(tc.field) || tripcap.ErrorMessage(err)[:len(tc.field)] != tc.field {
			t.Errorf("Query(%+v) = %v; want an error naming %s", tc.q, err, tc.field)
		}
	}
	if _, err := New(Config{Raw: 90 * time.Second}); tripcap.ErrorCode(err) != tripcap.EINVALID {
		t.Errorf("New with raw 90s = %v", err)
	}
}

// TestConcurrent appends from several agents while others query; run with -race.
func TestConcurrent(t *testing.T) {
	c := newClock(t0.Add(time.Hour))
	s := newStore(t, Config{Raw: 10 * time.Minute, Rollup: time.Hour}, c)
	var hooked atomic.Int64
	s.OnAppend(func(string, time.Time) { hooked.Add(1) })
	var wg sync.WaitGroup
	for h := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 1; i <= 600; i++ {
				var b tripcap.MetricBatch
				for _, d := range tripcap.MetricDefinitions() {
					b.Points = append(b.Points, pt(fmt.Sprint("h", h), d.ID, t0.Add(time.Duration(i)*time.Second), 1))
				}
				if _, err := s.Append(b); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 300 {
				s.Summarize(Key{fmt.Sprint("h", h), tripcap.MetricNetworkOutBytes, ""}, t0.Add(10*time.Minute), 5*time.Minute)
				if _, err := s.Query(Query{Host: fmt.Sprint("h", h), Metric: tripcap.MetricOutboundFlows, End: t0.Add(10 * time.Minute), Window: 10 * time.Minute}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if hooked.Load() != 4*600 {
		t.Fatalf("hook ran %d times", hooked.Load())
	}
	for h := range 4 {
		w := s.Summarize(Key{fmt.Sprint("h", h), tripcap.MetricNetworkOutBytes, ""}, t0.Add(10*time.Minute), 10*time.Minute)
		if w.Count != 600 || w.Sum != 600 {
			t.Fatalf("h%d: %+v", h, w.Summary)
		}
	}
}

func TestBytesPerSeries(t *testing.T) {
	// The documented estimate (docs/alerting.md): 3600×0.7 + 1440×2.8 + 1700.
	if got := BytesPerSeries(Config{}); got != 8252 {
		t.Fatalf("BytesPerSeries = %d", got)
	}
}

// TestStatsBytes: what Stats reports for a busy host is near the estimate
// BytesPerSeries gives, and an idle host (every point 0) takes far less.
func TestStatsBytes(t *testing.T) {
	cfg := Config{Raw: time.Hour, Rollup: 6 * time.Hour}
	end := benchStart + 6*3600
	c := newClock(time.Unix(end, 0))
	busy, idle := newStore(t, cfg, c), newStore(t, cfg, c)
	l := newHostLoad("web.example.com", 3)
	for sec := benchStart + 1; sec <= end; sec++ {
		pts := l.second(sec)
		if _, err := busy.Append(tripcap.MetricBatch{Points: pts}); err != nil {
			t.Fatal(err)
		}
		for i := range pts {
			pts[i].Value = 0
		}
		if _, err := idle.Append(tripcap.MetricBatch{Points: pts}); err != nil {
			t.Fatal(err)
		}
	}
	b, i := busy.Stats(), idle.Stats()
	est := 31 * BytesPerSeries(cfg)
	if b.Hosts != 1 || b.Series != 31 || b.BytesPerHost != b.Bytes {
		t.Fatalf("busy stats %+v", b)
	}
	if b.Bytes < est*7/10 || b.Bytes > est*13/10 {
		t.Errorf("a busy host takes %d bytes; BytesPerSeries estimates %d", b.Bytes, est)
	}
	if i.Bytes*3 > b.Bytes {
		t.Errorf("an idle host takes %d bytes, a busy one %d", i.Bytes, b.Bytes)
	}
	t.Logf("busy host %d bytes (estimate %d), idle host %d", b.Bytes, est, i.Bytes)
}

// BenchmarkAppend measures storing one agent's second (every metric, two interfaces).
func BenchmarkAppend(b *testing.B) {
	c := newClock(t0)
	s := newStore(b, Config{}, c)
	var batch tripcap.MetricBatch
	for _, d := range tripcap.MetricDefinitions() {
		batch.Points = append(batch.Points, tripcap.MetricPoint{Host: "h", Metric: d.ID})
		if d.PerInterface {
			batch.Points = append(batch.Points, tripcap.MetricPoint{Host: "h", Metric: d.ID, Interface: "eth0"}, tripcap.MetricPoint{Host: "h", Metric: d.ID, Interface: "eth1"})
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		at := t0.Add(time.Duration(i) * time.Second)
		c.set(at)
		for j := range batch.Points {
			batch.Points[j].Time = at
			batch.Points[j].Value = float64(i)
		}
		if _, err := s.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(batch.Points)), "points/op")
}

// BenchmarkSummarize measures answering one rule window from a full store.
func BenchmarkSummarize(b *testing.B) {
	for _, win := range []time.Duration{time.Minute, 5 * time.Minute, time.Hour, 24 * time.Hour} {
		b.Run(tripcap.FormatISODuration(win), func(b *testing.B) {
			c := newClock(t0.Add(24 * time.Hour))
			s := newStore(b, Config{}, c)
			var batch tripcap.MetricBatch
			for i := 1; i <= 24*3600; i++ {
				batch.Points = append(batch.Points, pt("h", tripcap.MetricNetworkOutBytes, t0.Add(time.Duration(i)*time.Second), float64(i)))
			}
			if _, err := s.Append(batch); err != nil {
				b.Fatal(err)
			}
			k := Key{"h", tripcap.MetricNetworkOutBytes, ""}
			end := t0.Add(24*time.Hour - 17*time.Second) // ragged edges
			for b.Loop() {
				s.Summarize(k, end, win)
			}
		})
	}
}

// TestQueryShowsTheIntervalInProgress: a window of one interval, asked for
// mid-interval, answers with what the interval has so far instead of the
// previous (empty) interval, labelled by the interval's start.
func TestQueryShowsTheIntervalInProgress(t *testing.T) {
	now := t0.Add(7*time.Minute + 30*time.Second) // 2.5 minutes into [12:05, 12:10)
	c := newClock(now)
	s := newStore(t, Config{}, c)
	var b tripcap.MetricBatch
	for i := 1; i <= 30; i++ { // points only since 12:07
		b.Points = append(b.Points, pt("h1", tripcap.MetricNetworkOutBytes, now.Add(-time.Duration(30-i)*time.Second), 100))
	}
	if _, err := s.Append(b); err != nil {
		t.Fatal(err)
	}
	r, err := s.Query(Query{Host: "h1", Metric: tripcap.MetricNetworkOutBytes, Window: 5 * time.Minute, Interval: 5 * time.Minute, Aggregation: tripcap.AggregationTotal})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Points) != 1 || r.Points[0].Count != 30 || r.Points[0].Value != 3000 || !r.Points[0].Time.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("points %+v; want one interval starting 12:05 with 30 points totalling 3000", r.Points)
	}
}

// TestSummarizeGrainIsAzuresPerMinuteMeaning: over a 1-minute grain, the
// Average of a counter is the mean of per-minute totals (Azure's Network Out
// Total Average), Minimum and Maximum are the smallest and largest minute,
// Total is every byte; a gauge's minutes are its means.
func TestSummarizeGrainIsAzuresPerMinuteMeaning(t *testing.T) {
	end := t0.Add(5 * time.Minute)
	c := newClock(end)
	s := newStore(t, Config{}, c)
	var b tripcap.MetricBatch
	// Minute m (1..5) sends m*10 bytes every second; flows hold at m.
	for sec := 1; sec <= 300; sec++ {
		m := float64((sec-1)/60 + 1)
		at := t0.Add(time.Duration(sec) * time.Second)
		b.Points = append(b.Points, pt("h1", tripcap.MetricNetworkOutBytes, at, m*10), pt("h1", tripcap.MetricInboundFlows, at, m))
	}
	if _, err := s.Append(b); err != nil {
		t.Fatal(err)
	}
	out := Key{"h1", tripcap.MetricNetworkOutBytes, ""}
	g := s.SummarizeGrain(out, end, 5*time.Minute, time.Minute)
	for agg, want := range map[tripcap.Aggregation]float64{
		tripcap.AggregationAverage: 1800, // (600+1200+1800+2400+3000)/5
		tripcap.AggregationMinimum: 600, tripcap.AggregationMaximum: 3000,
		tripcap.AggregationTotal: 9000, tripcap.AggregationCount: 300,
	} {
		if v, ok := g.Value(agg); !ok || v != want {
			t.Errorf("%s at a 1-minute grain = %v, %v; want %v", agg, v, ok, want)
		}
	}
	// At a 1-second grain, Average is the mean of the points: 60 times smaller.
	if v, _ := s.SummarizeGrain(out, end, 5*time.Minute, time.Second).Value(tripcap.AggregationAverage); v != 30 {
		t.Errorf("Average at a 1-second grain = %v, want 30", v)
	}
	flows := s.SummarizeGrain(Key{"h1", tripcap.MetricInboundFlows, ""}, end, 5*time.Minute, time.Minute)
	if v, _ := flows.Value(tripcap.AggregationAverage); v != 3 {
		t.Errorf("a gauge's Average at a 1-minute grain = %v, want 3", v)
	}
	if v, _ := flows.Value(tripcap.AggregationMaximum); v != 5 {
		t.Errorf("a gauge's Maximum at a 1-minute grain = %v, want 5", v)
	}
}

// TestLatePointsLand: a second that arrives after later ones lands, in the
// minute in progress and in a closed minute, counted once in its minute's
// rollup; repeated, it is a duplicate either way.
func TestLatePointsLand(t *testing.T) {
	c := newClock(t0.Add(10 * time.Minute))
	s := newStore(t, Config{}, c)
	k := Key{"web.example.com", tripcap.MetricNetworkInBytes, ""}
	add := func(sec int, v float64) AppendResult {
		t.Helper()
		res, err := s.Append(tripcap.MetricBatch{Points: []tripcap.MetricPoint{pt(k.Host, k.Metric, t0.Add(time.Duration(sec)*time.Second), v)}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for sec := 1; sec <= 600; sec++ {
		if sec != 30 && sec != 590 {
			add(sec, 1000)
		}
	}
	// 590 is in the minute in progress, 30 in a closed one.
	for _, sec := range []int{590, 30} {
		if res := add(sec, 7); res.Stored != 1 {
			t.Fatalf("late second %d: %+v", sec, res)
		}
		if res := add(sec, 8); res.Duplicates != 1 {
			t.Fatalf("second %d again: %+v", sec, res)
		}
		end := t0.Add(time.Duration(sec) * time.Second)
		if w := s.Summarize(k, end, time.Second); w.Count != 1 || w.Sum != 7 {
			t.Fatalf("second %d = %+v", sec, w.Summary)
		}
		minuteEnd := t0.Add(time.Duration((sec+59)/60*60) * time.Second)
		if w := s.Summarize(k, minuteEnd, time.Minute); w.Count != 60 || w.Sum != 59*1000+7 {
			t.Fatalf("the minute of second %d = %+v", sec, w.Summary)
		}
	}
}

// TestStatsRunningTotal: the series bytes Stats keeps as series change are
// what a walk of the series adds up to, after appends, late points, a
// backfill, a snapshot read, a prune and a host's deletion.
func TestStatsRunningTotal(t *testing.T) {
	c := newClock(time.Unix(benchStart, 0))
	s := newStore(t, Config{Raw: 2 * time.Minute, Rollup: 10 * time.Minute}, c)
	walk := func(what string) {
		t.Helper()
		var sum int64
		s.mu.RLock()
		for _, h := range s.hosts {
			h.each(s.metricIDs, func(_ Key, ser *series) {
				ser.mu.Lock()
				sum += ser.bytes()
				ser.mu.Unlock()
			})
		}
		s.mu.RUnlock()
		if got := s.seriesBytes.Load(); got != sum {
			t.Fatalf("%s: running total %d, the series hold %d", what, got, sum)
		}
	}
	loads := []*hostLoad{newHostLoad("a", 1), newHostLoad("b", 2)}
	sec := benchStart
	for range 400 {
		sec++
		c.set(time.Unix(sec, 0))
		for _, l := range loads {
			if _, err := s.Append(tripcap.MetricBatch{Points: l.second(sec)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	walk("appends")
	late := loads[0].second(sec - 90)
	if _, err := s.Append(tripcap.MetricBatch{Points: late}); err != nil {
		t.Fatal(err)
	}
	walk("late points")
	h := s.History("a", time.Unix(sec-500, 0))
	for i := range h {
		h[i].Key.Host = ""
	}
	if _, err := s.Backfill("c", h); err != nil {
		t.Fatal(err)
	}
	walk("backfill")
	var snap bytes.Buffer
	if err := s.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	s.DeleteHost("b")
	walk("delete")
	if err := s.ReadSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	walk("snapshot read")
	if st := s.Stats(); st.Hosts != 3 || st.Series != 93 {
		t.Fatalf("stats %+v", st)
	}
	c.set(time.Unix(sec+11*60, 0))
	if n := s.Prune(); n != 93 {
		t.Errorf("pruned %d series", n)
	}
	walk("prune")
	if st := s.Stats(); st.Hosts != 0 || st.Series != 0 || st.Bytes != 0 {
		t.Errorf("stats after pruning all %+v", st)
	}
}

// TestRecentMinuteFollowsEdits: the minute just closed, decoded once for
// the windows that read it every second, answers with what the store holds
// after a late point lands in it, a backfill fills it and it ages out.
func TestRecentMinuteFollowsEdits(t *testing.T) {
	start := time.Unix(benchStart, 0)
	c := newClock(start.Add(90 * time.Second))
	s := newStore(t, Config{Raw: 2 * time.Minute, Rollup: 10 * time.Minute}, c)
	k := Key{"h", tripcap.MetricNetworkOutBytes, ""}
	var b tripcap.MetricBatch
	for sec := 1; sec <= 90; sec++ {
		if sec == 20 || sec == 50 || sec == 55 {
			continue // late, below
		}
		b.Points = append(b.Points, pt("h", k.Metric, start.Add(time.Duration(sec)*time.Second), 0.5+float64(sec)))
	}
	if _, err := s.Append(b); err != nil {
		t.Fatal(err)
	}
	window := func(end int) Window {
		return s.Summarize(k, start.Add(time.Duration(end)*time.Second), time.Minute)
	}
	want := func(what string, end int, count int64, sum float64) {
		t.Helper()
		if w := window(end); w.Count != count || w.Sum != sum {
			t.Errorf("%s: window to %d: count %d sum %g, want %d and %g", what, end, w.Count, w.Sum, count, sum)
		}
	}
	sumOf := func(from, to int, skip ...int) (int64, float64) {
		var n int64
		var sum float64
		for sec := from; sec <= to; sec++ {
			if !slices.Contains(skip, sec) {
				n++
				sum += 0.5 + float64(sec)
			}
		}
		return n, sum
	}
	n, sum := sumOf(31, 90, 50, 55)
	want("held", 90, n, sum)
	if w := window(60); w.Count != 57 {
		t.Errorf("minute 0 holds %d points, want 57", w.Count)
	}
	want("again", 90, n, sum)
	if _, err := s.Append(tripcap.MetricBatch{Points: []tripcap.MetricPoint{pt("h", k.Metric, start.Add(50*time.Second), 50.5)}}); err != nil {
		t.Fatal(err)
	}
	n, sum = sumOf(31, 90, 55)
	want("a late point", 90, n, sum)
	if _, err := s.Backfill("h", []SeriesHistory{{Key: Key{Metric: k.Metric}, Raw: []RawPoint{{Sec: benchStart + 55, Value: 55.5}}}}); err != nil {
		t.Fatal(err)
	}
	n, sum = sumOf(31, 90)
	want("a backfill", 90, n, sum)
	// The next minute closes: its block is the recent one now.
	b.Points = b.Points[:0]
	for sec := 91; sec <= 125; sec++ {
		b.Points = append(b.Points, pt("h", k.Metric, start.Add(time.Duration(sec)*time.Second), 0.5+float64(sec)))
	}
	c.set(start.Add(125 * time.Second))
	if _, err := s.Append(b); err != nil {
		t.Fatal(err)
	}
	n, sum = sumOf(66, 125)
	want("the next minute", 125, n, sum)
	// Minute 0, two back now, is read (and kept decoded) by a longer
	// window; a late point into its one empty second changes it.
	two := func() Window { return s.Summarize(k, start.Add(125*time.Second), 2*time.Minute) }
	before := two()
	if _, err := s.Append(tripcap.MetricBatch{Points: []tripcap.MetricPoint{pt("h", k.Metric, start.Add(20*time.Second), 1000)}}); err != nil {
		t.Fatal(err)
	}
	if w := two(); w.Count != before.Count+1 || w.Max != 1000 {
		t.Errorf("a late point two minutes back: %+v", w)
	}
}
