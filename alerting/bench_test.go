package alerting

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/metricstore"
)

// fleetRules are bench/fleet's rules (monitorRules): static and dynamic,
// at 1 s and 1 min frequencies, every host in scope.
func fleetRules() []*tripcap.AlertRule {
	static := func(id, m string, agg tripcap.Aggregation, threshold float64, freq, window, iface string) *tripcap.AlertRule {
		r := staticRule(id, m, agg, tripcap.OperatorGreaterThan, threshold, freq, window)
		if iface != "" {
			r.Criteria.AllOf[0].Static.Dimensions = []tripcap.Dimension{{Name: tripcap.DimensionInterface, Operator: "Include", Values: []string{iface}}}
		}
		return r
	}
	dynamic := func(id, m, freq, window string) *tripcap.AlertRule {
		r := dynamicRule(tripcap.SensitivityLow, tripcap.OperatorGreaterOrLessThan, 4, 4)
		r.ID, r.Name, r.EvaluationFrequency, r.WindowSize = id, id, freq, window
		r.Criteria.AllOf[0].Dynamic.MetricName = m
		return r
	}
	return []*tripcap.AlertRule{
		static("breach-in", "Network In Total", tripcap.AggregationMaximum, 1e12, "PT1S", "PT10S", ""),
		static("breach-packets-eth0", "Packets Received", tripcap.AggregationMaximum, 1e12, "PT1S", "PT5S", "eth0"),
		static("in-5m", "Network In Total", tripcap.AggregationAverage, 1e12, "PT1M", "PT5M", ""),
		static("out-total-5m", "Network Out Total", tripcap.AggregationTotal, 1e12, "PT1M", "PT5M", ""),
		static("retransmits", "TCP Segments Retransmitted", tripcap.AggregationAverage, 1e12, "PT1S", "PT1M", ""),
		static("resets", "TCP Resets Sent", tripcap.AggregationTotal, 1e12, "PT1S", "PT1M", ""),
		static("inbound-flows", "Inbound Flows", tripcap.AggregationMaximum, 1e12, "PT1M", "PT5M", ""),
		dynamic("dyn-in", "Network In Total", "PT1M", "PT5M"),
		dynamic("dyn-out-packets", "Packets Sent", "PT1M", "PT1M"),
		dynamic("dyn-out-1s", "Network Out Total", "PT1S", "PT1M"),
	}
}

// BenchmarkEvaluateFleet measures the evaluator at fleet scale: hosts of
// 31 series each (the host's 15 and 8 on each of two interfaces) under
// bench/fleet's rules, each host evaluated once per second of its points,
// hosts in turn; an op is one host's second. The store holds the hosts'
// last minutes first, so windows reach into closed minutes.
func BenchmarkEvaluateFleet(b *testing.B) {
	const hosts, minutes = 1000, 12
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix()
	end := start + minutes*60
	clock := func() time.Time { return time.Unix(end, 0) }
	st, err := metricstore.New(metricstore.Config{Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, hosts)
	known := map[string]*tripcap.Host{}
	for i := range ids {
		ids[i] = fmt.Sprintf("host-%05d", i)
		known[ids[i]] = &tripcap.Host{ID: ids[i], Name: ids[i]}
	}
	var batch tripcap.MetricBatch
	for sec := start + 1; sec <= end; sec++ {
		for i, id := range ids {
			batch.Points = batch.Points[:0]
			for j, d := range tripcap.MetricDefinitions() {
				v := float64((sec*7 + int64(i)*13 + int64(j)*31) % 1000)
				if sec%10 == 0 {
					// An agent that sampled late splits a counter's
					// increase over the seconds it spanned: minutes have
					// fractions, and blocks are XOR-encoded.
					v += 0.5
				}
				at := time.Unix(sec, 0)
				batch.Points = append(batch.Points, tripcap.MetricPoint{Host: id, Metric: d.ID, Time: at, Value: 2 * v})
				if d.PerInterface {
					batch.Points = append(batch.Points, tripcap.MetricPoint{Host: id, Metric: d.ID, Interface: "eth0", Time: at, Value: v},
						tripcap.MetricPoint{Host: id, Metric: d.ID, Interface: "eth1", Time: at, Value: v})
				}
			}
			if _, err := st.Append(batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	ev, err := New(Config{Source: st, Now: clock, Hosts: func(_ context.Context, id string) (*tripcap.Host, error) {
		if h := known[id]; h != nil {
			return h, nil
		}
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "host %s", id)
	}})
	if err != nil {
		b.Fatal(err)
	}
	if err := ev.SetRules(fleetRules()); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// The first evaluation of each host makes its instances and learns
	// the dynamic baselines: not the steady state measured.
	sec := start + 6*60
	for _, id := range ids {
		if err := ev.EvaluateHost(ctx, id, time.Unix(sec, 0)); err != nil {
			b.Fatal(err)
		}
	}
	h := hosts
	b.ReportAllocs()
	start0 := ev.Stats().Evaluations
	cpu0 := cpuTime()
	for b.Loop() {
		if h == hosts {
			h = 0
			if sec++; sec > end {
				b.Fatal("out of points: lower -benchtime")
			}
		}
		if err := ev.EvaluateHost(ctx, ids[h], time.Unix(sec, 0)); err != nil {
			b.Fatal(err)
		}
		h++
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(ev.Stats().Evaluations-start0)/float64(b.N), "evals/op")
}

// cpuTime is the process's CPU time so far: on a shared machine a
// benchmark's CPU time per op swings much less than its wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
