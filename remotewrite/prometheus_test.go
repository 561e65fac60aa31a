package remotewrite

import (
	"context"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/promtest"
)

// TestPrometheusRoundTrip: points written to a real Prometheus read back,
// interval by interval and for every aggregation, as the metric store
// would sum them up (tripcap.Summary).
func TestPrometheusRoundTrip(t *testing.T) {
	base := promtest.Start(t)
	w := newTestWriter(t, base+"/api/v1/write", nil)
	run(t, w)
	now := time.Now().Truncate(10 * time.Second)
	start := now.Add(-5 * time.Minute)
	var pts []tripcap.MetricPoint
	var flows []tripcap.MetricPoint
	for i := range 300 {
		if i%17 == 5 {
			continue // a hole
		}
		at := start.Add(time.Duration(i+1) * time.Second)
		pts = append(pts, tripcap.MetricPoint{Metric: tripcap.MetricNetworkOutBytes, Interface: "eth0", Time: at, Value: float64((i * 37) % 1000)})
		flows = append(flows, tripcap.MetricPoint{Metric: tripcap.MetricInboundFlows, Time: at, Value: float64(i % 7)})
	}
	w.SinkPoints("h-1", pts)
	w.SinkPoints("h-1", flows)
	waitFor(t, "the samples sent", func() bool { return w.Stats().Sent == uint64(len(pts)+len(flows)) })
	if st := w.Stats(); st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}

	r, err := NewReader(base, HTTPConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	step := 10 * time.Second
	for _, tc := range []struct {
		pts   []tripcap.MetricPoint
		iface string
	}{{pts, "eth0"}, {flows, ""}} {
		want := map[int64]*tripcap.Summary{}
		for _, p := range tc.pts {
			end := p.Time.Add(step - 1).Truncate(step) // the interval (end-step, end] holds p
			if want[end.Unix()] == nil {
				want[end.Unix()] = &tripcap.Summary{}
			}
			want[end.Unix()].Add(p.Value)
		}
		m := tc.pts[0].Metric
		for _, agg := range []tripcap.Aggregation{tripcap.AggregationTotal, tripcap.AggregationAverage, tripcap.AggregationMinimum, tripcap.AggregationMaximum, tripcap.AggregationCount} {
			got, err := r.ReadRange(context.Background(), tripcap.MetricRange{HostID: "h-1", Metric: m, Interface: tc.iface, Aggregation: agg,
				First: start.Add(step), Last: now, Step: step})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s %s: %d intervals, want %d", m, agg, len(got), len(want))
			}
			for _, v := range got {
				s := want[v.End.Unix()]
				if s == nil {
					t.Fatalf("%s %s: interval ending %s has no points here", m, agg, v.End)
				}
				wv, _ := s.Value(agg)
				if math.Abs(v.Value-wv) > 1e-9 || v.Count != s.Count {
					t.Fatalf("%s %s at %s: %g (%d points), want %g (%d)", m, agg, v.End, v.Value, v.Count, wv, s.Count)
				}
			}
		}
	}
	// The host's own series (no interface) is not the interface's.
	got, err := r.ReadRange(context.Background(), tripcap.MetricRange{HostID: "h-1", Metric: tripcap.MetricNetworkOutBytes, Aggregation: tripcap.AggregationTotal,
		First: start.Add(step), Last: now, Step: step})
	if err != nil || len(got) != 0 {
		t.Fatalf("host series: %v %v", got, err)
	}
}

// TestReadUnreachable: a store that cannot be reached fails the read with
// EUNAVAILABLE naming it, within the timeout.
func TestReadUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// A store that accepts and never answers.
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	base := "http://" + l.Addr().String()
	r, err := NewReader(base, HTTPConfig{Timeout: 300 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	_, err = r.ReadRange(context.Background(), tripcap.MetricRange{HostID: "h", Metric: tripcap.MetricNetworkInBytes, Aggregation: tripcap.AggregationTotal,
		First: time.Unix(1_700_000_010, 0), Last: time.Unix(1_700_000_100, 0), Step: 10 * time.Second})
	if tripcap.ErrorCode(err) != tripcap.EUNAVAILABLE || !strings.Contains(err.Error(), base) {
		t.Fatalf("err %v, want EUNAVAILABLE naming %s", err, base)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Fatalf("took %s", d)
	}
}

func TestParseQueryRange(t *testing.T) {
	pts, err := ParseQueryRange([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000010,"5"],[1700000020.5,"NaN"]]}]}}`))
	if err != nil || len(pts) != 2 || pts[0] != (PromPoint{1_700_000_010_000, 5}) || pts[1].MS != 1_700_000_020_500 || !math.IsNaN(pts[1].Value) {
		t.Fatalf("%+v %v", pts, err)
	}
	for _, bad := range []string{
		`{"status":"error","errorType":"bad_data","error":"parse error"}`,
		`{"status":"success","data":{"resultType":"vector","result":[]}}`,
		`{"status":"success","data":{"resultType":"matrix","result":[{"values":[]},{"values":[]}]}}`,
		`{"status":"success","data":{"resultType":"matrix","result":[{"values":[["x","1"]]}]}}`,
		`{"status":"success","data":{"resultType":"matrix","result":[{"values":[[1,1]]}]}}`,
		`<html>`,
	} {
		if _, err := ParseQueryRange([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func FuzzParseQueryRange(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000010,"5"]]}]}}`))
	f.Add([]byte(`{"status":"error","errorType":"bad_data","error":"x"}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"values":[[1e300,"+Inf"]]}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		pts, err := ParseQueryRange(b)
		if err != nil && pts != nil {
			t.Fatalf("points with an error: %v", err)
		}
		if len(err2s(err)) > 1000 {
			t.Fatalf("error of %d bytes", len(err.Error()))
		}
	})
}

func err2s(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprint(err)
}

// TestOutOfOrderSkipped: a sample older than its series' newest one sent
// is skipped and counted: Prometheus would refuse it with a 400 and
// roll back the whole request with it, the batch's good samples too.
func TestOutOfOrderSkipped(t *testing.T) {
	base := promtest.Start(t)
	w := newTestWriter(t, base+"/api/v1/write", func(c *Config) { c.Shards = 1 })
	run(t, w)
	now := time.Now().Truncate(time.Second)
	w.SinkPoints("h-1", []tripcap.MetricPoint{{Metric: tripcap.MetricNetworkInBytes, Time: now.Add(-10 * time.Second), Value: 1}})
	waitFor(t, "the first sample", func() bool { return w.Stats().Sent == 1 })
	w.SinkPoints("h-1", []tripcap.MetricPoint{
		{Metric: tripcap.MetricNetworkInBytes, Time: now.Add(-20 * time.Second), Value: 2}, // out of order
		{Metric: tripcap.MetricNetworkOutBytes, Time: now.Add(-5 * time.Second), Value: 3},
	})
	waitFor(t, "the second batch", func() bool { return w.Stats().Sent == 2 })
	if st := w.Stats(); st.Retries != 0 || st.Failed != 0 || st.OutOfOrder != 1 {
		t.Fatalf("stats %+v", st)
	}
	r, err := NewReader(base, HTTPConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadRange(context.Background(), tripcap.MetricRange{HostID: "h-1", Metric: tripcap.MetricNetworkOutBytes, Aggregation: tripcap.AggregationTotal,
		First: now, Last: now, Step: 10 * time.Second})
	if err != nil || len(got) != 1 || got[0].Value != 3 {
		t.Fatalf("the batch's good sample: %+v %v", got, err)
	}

	// A writer that has not seen the series (another replica, after a
	// handoff) sends a stale sample with other hosts' good ones:
	// Prometheus refuses the request whole, the halves get the good ones in.
	w2 := newTestWriter(t, base+"/api/v1/write", func(c *Config) { c.Shards = 1 })
	run(t, w2)
	var batch []tripcap.MetricPoint
	batch = append(batch, tripcap.MetricPoint{Metric: tripcap.MetricNetworkInBytes, Time: now.Add(-30 * time.Second), Value: 9}) // stale
	for i := range 6 {
		batch = append(batch, tripcap.MetricPoint{Metric: tripcap.MetricTCPSegmentsSent, Time: now.Add(time.Duration(i-6) * time.Second), Value: 1})
	}
	w2.SinkPoints("h-1", batch)
	waitFor(t, "the split batch", func() bool { st := w2.Stats(); return st.Sent+st.Failed == 7 })
	if st := w2.Stats(); st.Sent != 6 || st.Failed != 1 || st.Splits == 0 {
		t.Fatalf("stats %+v", st)
	}
	got, err = r.ReadRange(context.Background(), tripcap.MetricRange{HostID: "h-1", Metric: tripcap.MetricTCPSegmentsSent, Aggregation: tripcap.AggregationCount,
		First: now, Last: now, Step: 10 * time.Second})
	if err != nil || len(got) != 1 || got[0].Value != 6 {
		t.Fatalf("the other series: %+v %v", got, err)
	}
}
