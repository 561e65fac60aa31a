// Command alerting benchmarks tripcap's rule evaluation on this machine:
//
//  1. the cost of one evaluation of one (rule, host) instance, static and
//     dynamic, single-threaded, over a store holding an hour of 1-second
//     points per host;
//  2. the throughput of the evaluator's workers (all cores) in evaluations
//     per second, which bounds how many host×rule series it can evaluate at
//     a 1-second frequency;
//  3. a real-time run that checks it: every wall-clock second each host
//     appends its point, the store's hook notifies the evaluator, and the
//     lag until every instance of that second is evaluated is measured;
//     the series count grows until the worst lag passes one second.
//
// Run: go run ./bench/alerting [-rules 10] [-max-hosts 200000] [-json out.json]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/alerting"
	"github.com/tripcap/tripcap/metricstore"
)

type report struct {
	CPUs                     int     `json:"cpus"`
	GoMaxProcs               int     `json:"gomaxprocs"`
	StaticNsPerEvaluation    float64 `json:"staticNsPerEvaluation"`
	DynamicNsPerEvaluation   float64 `json:"dynamicNsPerEvaluation"`
	ThroughputEvalsPerSecond float64 `json:"throughputEvaluationsPerSecond"`
	RealTime                 []run   `json:"realTime"`
	MaxSeriesEverySecond     int     `json:"maxSeriesEverySecond"`
	// LoadAverage is /proc/loadavg before and after: the machine is shared,
	// and other work running at the same time lowers every figure.
	LoadBefore string `json:"loadAverageBefore"`
	LoadAfter  string `json:"loadAverageAfter"`
}

type run struct {
	Hosts     int     `json:"hosts"`
	Rules     int     `json:"rules"`
	Series    int     `json:"series"`
	Seconds   int     `json:"seconds"`
	MedianLag float64 `json:"medianLagSeconds"`
	// AppendSeconds is the median time the appends of one second took
	// (one goroutine, as one agent connection each would be spread out).
	AppendSeconds float64 `json:"medianAppendSeconds"`
	MaxLag        float64 `json:"maxLagSeconds"`
	Kept          bool    `json:"keptUp"`
	HeapMiB       float64 `json:"heapMiB"`
}

func main() {
	rules := flag.Int("rules", 10, "rules per host (each host is in every rule's scope)")
	costHosts := flag.Int("cost-hosts", 200, "hosts in the cost and throughput phases")
	maxHosts := flag.Int("max-hosts", 200_000, "largest host count the real-time phase tries")
	seconds := flag.Int("seconds", 6, "seconds per real-time run")
	out := flag.String("json", "", "write the report as JSON to this file")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx := context.Background()
	rep := report{CPUs: runtime.NumCPU(), GoMaxProcs: runtime.GOMAXPROCS(0), LoadBefore: loadavg()}
	fmt.Printf("load average before: %s\n", rep.LoadBefore)

	rep.StaticNsPerEvaluation = cost(ctx, *costHosts, staticRules(*rules))
	rep.DynamicNsPerEvaluation = cost(ctx, *costHosts, dynamicRules(*rules))
	fmt.Printf("evaluation cost, one core: static (PT5M window, 1 s points) %.0f ns; dynamic (PT1M, 4 failing periods) %.0f ns per rule per host\n",
		rep.StaticNsPerEvaluation, rep.DynamicNsPerEvaluation)
	rep.ThroughputEvalsPerSecond = throughput(ctx, *costHosts*10, staticRules(*rules))
	fmt.Printf("throughput, %d workers: %.0f static evaluations per second\n", rep.GoMaxProcs, rep.ThroughputEvalsPerSecond)

	// Start the real-time search at a quarter of the measured throughput
	// (appends and hooks take their share) and grow by half each time it
	// keeps up.
	hosts := max(1, int(rep.ThroughputEvalsPerSecond/4)/(*rules))
	for hosts <= *maxHosts {
		r := realTime(ctx, hosts, *rules, *seconds)
		rep.RealTime = append(rep.RealTime, r)
		fmt.Printf("real time: %d hosts × %d rules = %d series: median lag %.3f s (appends %.3f s), max %.3f s, heap %.0f MiB: %s\n",
			r.Hosts, r.Rules, r.Series, r.MedianLag, r.AppendSeconds, r.MaxLag, r.HeapMiB, map[bool]string{true: "kept up", false: "fell behind"}[r.Kept])
		if !r.Kept {
			break
		}
		rep.MaxSeriesEverySecond = r.Series
		hosts = hosts * 3 / 2
	}
	rep.LoadAfter = loadavg()
	fmt.Printf("largest host×rule series evaluated every second here: %d (load average after: %s)\n", rep.MaxSeriesEverySecond, rep.LoadAfter)
	if *out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func staticRules(n int) []*tripcap.AlertRule {
	var out []*tripcap.AlertRule
	for i := range n {
		out = append(out, &tripcap.AlertRule{ID: fmt.Sprint("s", i), Name: fmt.Sprint("static-", i), Scopes: []tripcap.Scope{tripcap.ScopeAll},
			EvaluationFrequency: "PT1S", WindowSize: "PT5M",
			Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{
				MetricCriterion: tripcap.MetricCriterion{MetricName: "Network Out Total", TimeAggregation: tripcap.AggregationAverage},
				Operator:        tripcap.OperatorGreaterThan, Threshold: float64(1e9 + i)}}}}})
	}
	return out
}

func dynamicRules(n int) []*tripcap.AlertRule {
	var out []*tripcap.AlertRule
	for i := range n {
		out = append(out, &tripcap.AlertRule{ID: fmt.Sprint("d", i), Name: fmt.Sprint("dynamic-", i), Scopes: []tripcap.Scope{tripcap.ScopeAll},
			EvaluationFrequency: "PT1S", WindowSize: "PT1M",
			Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Dynamic: &tripcap.DynamicCriterion{
				MetricCriterion: tripcap.MetricCriterion{MetricName: "Network Out Total", TimeAggregation: tripcap.AggregationAverage},
				Operator:        tripcap.OperatorGreaterOrLessThan, AlertSensitivity: tripcap.SensitivityMedium,
				FailingPeriods: tripcap.FailingPeriods{NumberOfEvaluationPeriods: 4, MinFailingPeriodsToAlert: 4}}}}}})
	}
	return out
}

// fixture is a store with an hour of points for each host and an evaluator.
func fixture(hosts int, rules []*tripcap.AlertRule, now func() time.Time, onTransition func(context.Context, tripcap.Alert) error) (*metricstore.Store, *alerting.Evaluator, []string) {
	st, err := metricstore.New(metricstore.Config{Raw: 10 * time.Minute, Rollup: time.Hour, Now: now})
	if err != nil {
		panic(err)
	}
	names := make([]string, hosts)
	byID := map[string]*tripcap.Host{}
	for i := range names {
		names[i] = fmt.Sprintf("host-%06d", i)
		byID[names[i]] = &tripcap.Host{ID: names[i], Name: names[i]}
	}
	ev, err := alerting.New(alerting.Config{Source: st, OnTransition: onTransition, Workers: runtime.GOMAXPROCS(0),
		Hosts: func(_ context.Context, id string) (*tripcap.Host, error) { return byID[id], nil }, Now: now})
	if err != nil {
		panic(err)
	}
	if err := ev.SetRules(rules); err != nil {
		panic(err)
	}
	return st, ev, names
}

func fill(st *metricstore.Store, names []string, from, to int) {
	for _, h := range names {
		var b tripcap.MetricBatch
		for s := from + 1; s <= to; s++ {
			b.Points = append(b.Points, tripcap.MetricPoint{Host: h, Metric: tripcap.MetricNetworkOutBytes, Time: t0.Add(time.Duration(s) * time.Second), Value: float64(1000 + s%17)})
		}
		if _, err := st.Append(b); err != nil {
			panic(err)
		}
	}
}

// cost evaluates every instance at each of 60 seconds on one goroutine.
func cost(ctx context.Context, hosts int, rules []*tripcap.AlertRule) float64 {
	now := func() time.Time { return t0.Add(time.Hour) }
	st, ev, names := fixture(hosts, rules, now, nil)
	fill(st, names, 0, 3600)
	for _, h := range names { // first evaluation creates instances and learns
		_ = ev.EvaluateHost(ctx, h, t0.Add(3000*time.Second))
	}
	before := ev.Stats().Evaluations
	start := time.Now()
	for s := 3001; s <= 3060; s++ {
		for _, h := range names {
			_ = ev.EvaluateHost(ctx, h, t0.Add(time.Duration(s)*time.Second))
		}
	}
	n := ev.Stats().Evaluations - before
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

// throughput evaluates the same load on all cores.
func throughput(ctx context.Context, hosts int, rules []*tripcap.AlertRule) float64 {
	now := func() time.Time { return t0.Add(time.Hour) }
	st, ev, names := fixture(hosts, rules, now, nil)
	fill(st, names, 0, 3600)
	for _, h := range names {
		_ = ev.EvaluateHost(ctx, h, t0.Add(3000*time.Second))
	}
	before := ev.Stats().Evaluations
	start := time.Now()
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := 3001; s <= 3030; s++ {
				for i := w; i < len(names); i += workers {
					_ = ev.EvaluateHost(ctx, names[i], t0.Add(time.Duration(s)*time.Second))
				}
			}
		}()
	}
	wg.Wait()
	return float64(ev.Stats().Evaluations-before) / time.Since(start).Seconds()
}

// realTime runs the server's path for some seconds: per second, one point
// per host appended, hook → Notify → workers; lag is from the end of the
// second's appends' start to the last evaluation of that second.
func realTime(ctx context.Context, hosts, rules, seconds int) run {
	var clock sync.Mutex
	cur := t0.Add(time.Hour)
	now := func() time.Time { clock.Lock(); defer clock.Unlock(); return cur }
	st, ev, names := fixture(hosts, staticRules(rules), now, nil)
	// Five minutes of history so every window is full from the start.
	fill(st, names, 3300, 3600)
	st.OnAppend(ev.Notify)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = ev.Run(rctx); close(done) }()
	defer func() { cancel(); <-done }()
	// Warm up: instances are created on the first notification.
	for _, h := range names {
		_ = ev.EvaluateHost(ctx, h, t0.Add(3600*time.Second))
	}
	base := ev.Stats().Evaluations
	r := run{Hosts: hosts, Rules: rules, Series: hosts * rules, Seconds: seconds, Kept: true}
	var lags, appends []float64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for s := 1; s <= seconds; s++ {
		<-tick.C
		start := time.Now()
		at := t0.Add(time.Duration(3600+s) * time.Second)
		clock.Lock()
		cur = at
		clock.Unlock()
		for _, h := range names {
			if _, err := st.Append(tripcap.MetricBatch{Points: []tripcap.MetricPoint{{Host: h, Metric: tripcap.MetricNetworkOutBytes, Time: at, Value: 1000}}}); err != nil {
				panic(err)
			}
		}
		appends = append(appends, time.Since(start).Seconds())
		want := base + uint64(s*hosts*rules)
		for ev.Stats().Evaluations < want {
			if time.Since(start) > 3*time.Second {
				r.Kept = false
				break
			}
			time.Sleep(time.Millisecond)
		}
		lag := time.Since(start).Seconds()
		lags = append(lags, lag)
		if lag > 1 {
			r.Kept = false
		}
		if !r.Kept {
			break
		}
	}
	slices.Sort(lags)
	slices.Sort(appends)
	r.MedianLag, r.MaxLag = lags[len(lags)/2], lags[len(lags)-1]
	r.AppendSeconds = appends[len(appends)/2]
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.HeapMiB = float64(ms.HeapAlloc) / (1 << 20)
	return r
}
