package controlplane_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/internal/promtest"
	"github.com/tripcap/tripcap/metricstore"
	"github.com/tripcap/tripcap/remotewrite"
)

// remoteMonitor is a monitor with a one-minute raw window on a clock the
// test sets, whose stored points go to Prometheus by remote write and
// whose older chart intervals are read from readURL.
func remoteMonitor(t *testing.T, f *fixture, clock *atomic.Int64, writeURL, readURL string) (*controlplane.Monitor, *remotewrite.Writer) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := controlplane.MonitorConfig{Metrics: metricstore.Config{Raw: time.Minute, Rollup: 10 * time.Minute,
		Now: func() time.Time { return time.Unix(clock.Load(), 0) }}}
	var w *remotewrite.Writer
	if writeURL != "" {
		var err error
		w, err = remotewrite.New(remotewrite.Config{URL: writeURL, Logger: log, FlushEvery: 50 * time.Millisecond,
			Hosts: func(ctx context.Context, id string) (*tripcap.Host, error) {
				return f.store.FindHost(ctx, tripcap.HostFilter{ID: &id})
			}})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Sink = w
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = w.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	r, err := remotewrite.NewReader(readURL, remotewrite.HTTPConfig{Timeout: time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RemoteRead = r
	mon, err := controlplane.NewMonitor(f.store, log, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return mon, w
}

// TestQueryBeyondMemoryReadsRemote: a chart window older than the raw
// window is answered by Prometheus for its old intervals and by memory for
// the rest, with the values memory had; a dead remote store fails such a
// query naming it, and never a query memory answers alone.
func TestQueryBeyondMemoryReadsRemote(t *testing.T) {
	base := promtest.Start(t)
	f := newFixture(t, controlplane.Config{})
	agent, host := f.enroll(t, "web.example.com")
	var clock atomic.Int64
	t0 := time.Now().Truncate(time.Minute)
	clock.Store(t0.Unix())
	mon, w := remoteMonitor(t, f, &clock, base+"/api/v1/write", base)
	// A store that takes connections and never answers.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	deadURL := "http://" + dead.Addr().String()
	monDead, _ := remoteMonitor(t, f, &clock, "", deadURL)

	var b tripcap.MetricBatch
	want := map[int64]*tripcap.Summary{} // by interval start
	for i := range 120 {
		at := t0.Add(time.Duration(i-119) * time.Second)
		v := float64(i*7%50 + 1)
		b.Points = append(b.Points, tripcap.MetricPoint{Metric: tripcap.MetricNetworkOutBytes, Time: at, Value: v})
		s := at.Add(-time.Second).Truncate(10 * time.Second).Unix()
		if want[s] == nil {
			want[s] = &tripcap.Summary{}
		}
		want[s].Add(v)
	}
	for _, m := range []*controlplane.Monitor{mon, monDead} {
		if res, err := m.IngestMetrics(agent, tripcap.MetricBatch{Points: append([]tripcap.MetricPoint(nil), b.Points...)}); err != nil || res.Stored != 120 {
			t.Fatalf("ingest: %+v %v", res, err)
		}
	}
	eventually(t, "the points written to Prometheus", func() bool { return w.Stats().Sent == 120 })

	check := func(res *metricstore.Result, agg tripcap.Aggregation, n int) {
		t.Helper()
		if len(res.Points) != n || res.Host != host.Name {
			t.Fatalf("%s: %d points for %q, want %d", agg, len(res.Points), res.Host, n)
		}
		for _, p := range res.Points {
			s := want[p.Time.Unix()]
			if s == nil {
				t.Fatalf("%s: interval %s", agg, p.Time)
			}
			v, _ := s.Value(agg)
			if p.Count != s.Count || p.Value != v {
				t.Fatalf("%s at %s: %g (%d points), want %g (%d)", agg, p.Time, p.Value, p.Count, v, s.Count)
			}
		}
	}
	for _, agg := range []tripcap.Aggregation{tripcap.AggregationTotal, tripcap.AggregationAverage, tripcap.AggregationMinimum, tripcap.AggregationMaximum, tripcap.AggregationCount} {
		// Intervals of 10 s before t0-60s are past the raw window: Prometheus's.
		res, err := mon.QueryMetrics(f.admin, controlplane.MetricsQuery{Host: "web.example.com", Metric: "Network Out Total",
			Window: 2 * time.Minute, Interval: 10 * time.Second, End: t0, Aggregation: string(agg)})
		if err != nil {
			t.Fatal(err)
		}
		check(res, agg, 12)
		if res.Start != t0.Add(-2*time.Minute).UTC() || res.Interval != "PT10S" || res.Window != "PT2M" {
			t.Fatalf("result %+v", res)
		}
	}

	// The dead store: the same window fails, naming it, within the timeout.
	begin := time.Now()
	_, err = monDead.QueryMetrics(f.admin, controlplane.MetricsQuery{Host: "web.example.com", Metric: "Network Out Total",
		Window: 2 * time.Minute, Interval: 10 * time.Second, End: t0})
	if tripcap.ErrorCode(err) != tripcap.EUNAVAILABLE || !strings.Contains(err.Error(), deadURL) {
		t.Fatalf("dead remote: %v", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf("dead remote took %s", d)
	}
	// Windows memory holds never ask it: the raw window's last 30 s, and
	// whole minutes from the rollups.
	res, err := monDead.QueryMetrics(f.admin, controlplane.MetricsQuery{Host: "web.example.com", Metric: "Network Out Total",
		Window: 30 * time.Second, Interval: 10 * time.Second, End: t0})
	if err != nil {
		t.Fatal(err)
	}
	check(res, tripcap.AggregationTotal, 3)
	res, err = monDead.QueryMetrics(f.admin, controlplane.MetricsQuery{Host: "web.example.com", Metric: "Network Out Total",
		Window: 2 * time.Minute, Interval: time.Minute, End: t0})
	if err != nil || len(res.Points) != 2 || res.Points[0].Count != 60 || res.Points[1].Count != 60 {
		t.Fatalf("rollups: %+v %v", res, err)
	}

	// Later, every interval of that window is Prometheus's, as memory had it.
	clock.Store(t0.Add(3 * time.Minute).Unix())
	res, err = mon.QueryMetrics(f.admin, controlplane.MetricsQuery{Host: "web.example.com", Metric: "Network Out Total",
		Window: 2 * time.Minute, Interval: 10 * time.Second, End: t0})
	if err != nil {
		t.Fatal(err)
	}
	check(res, tripcap.AggregationTotal, 12)
	// A window longer than the rollups: Prometheus's too (intervals without points have none).
	res, err = mon.QueryMetrics(f.admin, controlplane.MetricsQuery{Host: "web.example.com", Metric: "Network Out Total",
		Window: time.Hour, Interval: time.Minute, End: t0})
	if err != nil || len(res.Points) != 60 || res.Points[58].Count != 60 || res.Points[57].Count != 0 {
		t.Fatalf("an hour: %v", err)
	}
}
