package main

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/hostmetrics"
)

// TestValueGenMoves: through the real collector, a host's series are its
// 31, its rates move (noise every second, a daily drift) but stay under
// the breach thresholds, and a breach puts eth0's inbound traffic over
// them from its first second to its end.
func TestValueGenMoves(t *testing.T) {
	g := newValueGen(7)
	t0 := int64(1_800_000_000)
	g.setBreaches([]span{{From: t0 + 100, To: t0 + 110}})
	var now int64
	c, err := hostmetrics.New(hostmetrics.Config{Host: "h", Read: func(context.Context) (hostmetrics.Reading, error) { return g.at(now), nil },
		Now: func() time.Time { return time.Unix(now, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string][]tripcap.MetricPoint{}
	for now = t0; now < t0+200; now++ {
		if err := c.Sample(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range c.Drain(0).Points {
		k := string(p.Metric) + "/" + p.Interface
		byKey[k] = append(byKey[k], p)
	}
	if len(byKey) != seriesPerHost {
		t.Fatalf("%d series, want %d: %v", len(byKey), seriesPerHost, keys(byKey))
	}
	in := byKey[string(tripcap.MetricNetworkInBytes)+"/"]
	pk := byKey[string(tripcap.MetricNetworkInPackets)+"/eth0"]
	distinct := map[float64]bool{}
	for i, p := range in {
		sec := p.Time.Unix()
		breach := sec >= t0+100 && sec < t0+110
		if breach != (p.Value > breachInBytes) {
			t.Fatalf("second %d (breach %v): in bytes %.0f against the threshold %d", sec-t0, breach, p.Value, breachInBytes)
		}
		if breach != (pk[i].Value > breachInPackets) {
			t.Fatalf("second %d (breach %v): eth0 in packets %.0f against the threshold %d", sec-t0, breach, pk[i].Value, breachInPackets)
		}
		distinct[p.Value] = true
	}
	if len(distinct) < len(in)/2 {
		t.Fatalf("in bytes barely move: %d distinct values in %d seconds", len(distinct), len(in))
	}
	// The daily drift: the same host's level half a day apart differs by
	// the cycle (noise averaged out over a minute).
	mean := func(from int64) float64 {
		sum := 0.0
		for s := from; s < from+60; s++ {
			sum += g.level(s, 0, baseInBytes)
		}
		return sum / 60
	}
	hi, lo := 0.0, math.Inf(1)
	for h := int64(0); h < 24; h++ {
		m := mean(t0 + h*3600)
		hi, lo = max(hi, m), min(lo, m)
	}
	if hi/lo < 1.5 {
		t.Fatalf("no daily drift: hourly means from %.0f to %.0f", lo, hi)
	}
	// Reproducible: another generator of the same seed reads the same.
	g2 := newValueGen(7)
	if a, b := g2.at(t0+5), newValueGen(7).at(t0+5); a.Interfaces["eth0"] != b.Interfaces["eth0"] {
		t.Fatal("same seed, different values")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestScheduleBreaches: 1 % of the fleet a minute, distinct hosts, each
// breach ending well inside the window.
func TestScheduleBreaches(t *testing.T) {
	from := time.Unix(1_800_000_000, 300_000_000)
	until := from.Add(2 * time.Minute)
	bs := scheduleBreaches(5000, 0.01, from, until, rand.New(rand.NewPCG(1, 2)))
	if len(bs) != 100 {
		t.Fatalf("%d breaches, want 100 (1 %% of 5,000 a minute for 2 minutes)", len(bs))
	}
	seen := map[int]bool{}
	for _, b := range bs {
		if seen[b.Agent] || b.Agent < 0 || b.Agent >= 5000 {
			t.Fatalf("host %d twice or out of the fleet", b.Agent)
		}
		seen[b.Agent] = true
		if b.Span.From < from.Unix() || b.Span.To > until.Unix()-5 || b.Span.To-b.Span.From != breachSeconds {
			t.Fatalf("breach %+v outside the window %d..%d", b.Span, from.Unix(), until.Unix())
		}
	}
	if bs := scheduleBreaches(100, 0.01, from, from.Add(30*time.Second), rand.New(rand.NewPCG(1, 2))); len(bs) != 1 {
		t.Fatalf("a small fleet's window: %d breaches, want at least one", len(bs))
	}
	if bs := scheduleBreaches(100, 0.01, from, from.Add(10*time.Second), rand.New(rand.NewPCG(1, 2))); len(bs) != 0 {
		t.Fatalf("a window too short for a breach: %d", len(bs))
	}
}

// TestSummarizeBreaches: latency from the first breaching second to the
// capture's start; a breach without a capture is missed.
func TestSummarizeBreaches(t *testing.T) {
	var rs []breachResult
	for i := range 20 {
		from := int64(1_800_000_000 + i)
		rs = append(rs, breachResult{breach: breach{Agent: i, Span: span{From: from, To: from + 15}},
			Started: time.Unix(from, 0).Add(time.Duration(i+1) * 10 * time.Millisecond)})
	}
	rs = append(rs, breachResult{breach: breach{Agent: 99}})
	st := summarizeBreaches(rs)
	if st.Scheduled != 21 || st.Captured != 20 || st.P50ms != 100 || st.P95ms != 190 || st.MaxMs != 200 {
		t.Fatalf("%+v", st)
	}
	if len(st.Missed) != 1 || st.Missed[0] != agentName(99) {
		t.Fatalf("missed %v", st.Missed)
	}
}

// TestJudgeMetrics: each criterion of the metric path fails the size on
// its own, and a clean window passes.
func TestJudgeMetrics(t *testing.T) {
	ok := metricsWindow{PointsPerSecond: 310_000, ExpectedPerSecond: 310_000, Points: 9_300_000, Evaluations: 300_000,
		Refused:  map[string]uint64{"duplicate": 0, "too_old": 0},
		Breaches: breachStats{Scheduled: 10, Captured: 10, P50ms: 80, P95ms: 300, MaxMs: 400}}
	if f := judgeMetrics(&ok, defaultMetricLimits); len(f) != 0 {
		t.Fatalf("a clean window failed: %v", f)
	}
	for want, mutate := range map[string]func(m *metricsWindow){
		"points later than 1s":       func(m *metricsWindow) { m.Late = 1 },
		"points refused (2 too_old)": func(m *metricsWindow) { m.Refused["too_old"] = 2 },
		"dropped by the agents":      func(m *metricsWindow) { m.AgentDropped = 5 },
		"points/s stored of":         func(m *metricsWindow) { m.PointsPerSecond = 290_000 },
		"no evaluation":              func(m *metricsWindow) { m.Evaluations = 0 },
		"lagged over 1s":             func(m *metricsWindow) { m.LagOver1s = 3 },
		"started no capture":         func(m *metricsWindow) { m.Breaches.Captured, m.Breaches.Missed = 9, []string{"fleet-00001"} },
		"p95 500 ms ≥ 500 ms":        func(m *metricsWindow) { m.Breaches.P95ms = 500 },
	} {
		m := ok
		m.Refused = map[string]uint64{"duplicate": 0, "too_old": 0}
		mutate(&m)
		f := judgeMetrics(&m, defaultMetricLimits)
		if len(f) != 1 || !strings.Contains(f[0], want) {
			t.Errorf("%s: judged %v", want, f)
		}
	}
	if f := judgeMetrics(nil, defaultMetricLimits); len(f) != 1 {
		t.Fatalf("no window: %v", f)
	}
}

// TestMetricsDelta: the window's figures from two scrapes of the server's
// histograms and counters.
func TestMetricsDelta(t *testing.T) {
	h := func(count uint64, le map[float64]uint64) *histogram { return &histogram{count: count, buckets: le} }
	a := &scrape{hists: map[string]*histogram{
		"tripcap_metric_point_delay_seconds":   h(100, map[float64]uint64{0.1: 90, 1: 100, 2: 100}),
		"tripcap_alert_evaluation_lag_seconds": h(10, map[float64]uint64{0.1: 10, 1: 10, 2: 10}),
	}, values: map[string]float64{"tripcap_metric_points_ingested_total": 100, "tripcap_metric_points_refused_total{reason=too_old}": 1}}
	b := &scrape{hists: map[string]*histogram{
		"tripcap_metric_point_delay_seconds":   h(1100, map[float64]uint64{0.1: 1000, 1: 1095, 2: 1100}),
		"tripcap_alert_evaluation_lag_seconds": h(110, map[float64]uint64{0.1: 100, 1: 110, 2: 110}),
	}, values: map[string]float64{"tripcap_metric_points_ingested_total": 1100, "tripcap_metric_points_refused_total{reason=too_old}": 4,
		"tripcap_metricstore_bytes": 2 << 20}}
	m := metricsDelta(a, b, 10, 2)
	if m.Points != 1000 || m.Late != 5 || m.DelayP50ms != 100 || m.DelayP99ms != 1000 || m.PointsPerSecond != 100 || m.ExpectedPerSecond != 62 {
		t.Fatalf("points: %+v", m)
	}
	if m.Evaluations != 100 || m.LagOver1s != 0 || m.LagP99ms != 1000 || m.Refused["too_old"] != 3 || m.StoreKiBPerHost != 1024 {
		t.Fatalf("evaluations, refusals, memory: %+v", m)
	}
}

// TestValueGenFollowsTheCollectorsClock: a reading is of the second the
// collector's clock said, however late Read runs after it, so a stalled
// sampler does not put several seconds' traffic into one point.
func TestValueGenFollowsTheCollectorsClock(t *testing.T) {
	g := newValueGen(3)
	first := g.Now()
	r0, _ := g.Read(context.Background())
	time.Sleep(1100 * time.Millisecond) // a stall after the clock was read
	r1, _ := g.Read(context.Background())
	if r0.Interfaces["eth0"] != r1.Interfaces["eth0"] {
		t.Fatalf("a reading after a stall advanced past the collector's second %d", first.Unix())
	}
}

// TestBreachCaptureNoted: a host's engine notes the responder's captures
// only (not the probe's), and a breach's result is the first at or after
// its first breaching second.
func TestBreachCaptureNoted(t *testing.T) {
	f := &fleet{engine: &stubEngine{}}
	sa := &simAgent{name: agentName(3), index: 3}
	f.agents = []*simAgent{sa}
	from := time.Now().Add(-time.Second).Unix()
	bs := []breach{{Agent: 3, Span: span{From: from, To: from + breachSeconds}}, {Agent: 8, Span: span{From: from, To: from + 1}}}
	f.setBreaches(bs)
	eng := hostEngine{f.engine, sa}
	for _, name := range []string{"probe-s0-000001", breachCapture + "-" + sa.name, breachCapture + "-" + sa.name + "-2"} {
		s, err := eng.Start(context.Background(), tripcap.CaptureSpec{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Stop(tripcap.StopTimeExceeded)
	}
	rs := f.breachResults(bs)
	if len(rs) != 1 || rs[0].Agent != 3 || rs[0].Started.IsZero() || len(sa.breachStarts) != 2 || !rs[0].Started.Equal(sa.breachStarts[0]) {
		t.Fatalf("results %+v, starts %v", rs, sa.breachStarts)
	}
	f.setBreaches(nil)
	if len(sa.breachStarts) != 0 {
		t.Fatal("a new schedule keeps the old captures")
	}
}
