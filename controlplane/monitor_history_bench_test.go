package controlplane_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/metricstore"
	"github.com/tripcap/tripcap/metricwire"
)

// BenchmarkAttachHistory reports the bytes of one host's history answer
// (31 series, integer counters moving every second, a day shipped) by how
// far back the server asks: the whole rollup window (a host with a dynamic
// rule: the baseline, the old behaviour for every host), an hour (the raw
// window), a chart's default 15 minutes plus a minute of a 15-minute
// rule's margin (what a host of static rules is asked), and 2 minutes (a
// 1-minute rule's need, were charts not counted). The figures are in
// docs/alerting.md.
func BenchmarkAttachHistory(b *testing.B) {
	now := time.Now().Truncate(time.Minute)
	start := now.Add(-24 * time.Hour)
	clock := start
	st, err := metricstore.New(metricstore.Config{Now: func() time.Time { return clock }})
	if err != nil {
		b.Fatal(err)
	}
	var keys []metricstore.Key
	for _, d := range tripcap.MetricDefinitions() {
		if !d.PerInterface {
			keys = append(keys, metricstore.Key{Host: "self", Metric: d.ID})
			continue
		}
		for _, ifc := range []string{"eth0", "eth1"} {
			keys = append(keys, metricstore.Key{Host: "self", Metric: d.ID, Interface: ifc})
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pts := make([]tripcap.MetricPoint, len(keys))
	for sec := int64(0); sec < 24*3600; sec++ {
		clock = start.Add(time.Duration(sec) * time.Second)
		for i, k := range keys {
			pts[i] = tripcap.MetricPoint{Host: k.Host, Metric: k.Metric, Interface: k.Interface, Time: clock, Value: float64(1000 + rng.IntN(5000))}
		}
		if _, err := st.Append(tripcap.MetricBatch{Points: pts}); err != nil {
			b.Fatal(err)
		}
	}
	for _, back := range []time.Duration{24 * time.Hour, time.Hour, controlplane.DefaultMetricWindow + time.Minute, 2 * time.Minute} {
		b.Run(fmt.Sprintf("since=%s", back), func(b *testing.B) {
			var n int
			for b.Loop() {
				out, err := metricwire.AppendHistoryAnswer(nil, st.History("self", clock.Add(-back)))
				if err != nil {
					b.Fatal(err)
				}
				n = len(out)
			}
			b.ReportMetric(float64(n)/1024, "KB/host")
			b.ReportMetric(0, "ns/op")
		})
	}
	b.Logf("%d series", len(keys))
}
