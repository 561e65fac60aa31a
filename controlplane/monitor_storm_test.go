package controlplane_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/internal/pgtest"
	"github.com/tripcap/tripcap/metricstore"
	"github.com/tripcap/tripcap/metricwire"
	"github.com/tripcap/tripcap/postgres"
	"github.com/tripcap/tripcap/storetest"
)

// TestAttachStorm: a replica dies and its 500 agents attach to the
// survivor at once. The survivor asks at most AttachHistories of them for
// history at a time, the others on a later frame as slots free; every
// host is backfilled in the end and its window is whole; a host whose
// alert the dead replica fired does not fire again, one whose breach
// began there fires once; the Fired alerts are reloaded by a few
// queries, not 500; a host of static rules is asked for minutes of
// history, the host of a dynamic rule for the rollup window. On SQLite,
// and on PostgreSQL (TRIPCAP_TEST_POSTGRES).
func TestAttachStorm(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { attachStorm(t, newFixture(t, controlplane.Config{}).store) })
	t.Run("postgres", func(t *testing.T) {
		store, err := postgres.Open(t.Context(), pgtest.FreshDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		store.SetSealer(storetest.NewSealer(t))
		t.Cleanup(func() { store.Close() })
		attachStorm(t, store)
	})
}

// stormAgent is one simulated agent: its history store, and the history
// request it has yet to answer (it answers on its next second, as an
// agent busy shipping answers a moment later).
type stormAgent struct {
	name    string
	ctx     context.Context
	hist    *metricstore.Store
	breach  func(sec int) bool
	owed    bool
	since   int64
	asks    int
	askedAt time.Time
	// answered: the second whose frame followed the history's answer.
	answered int
}

func attachStorm(t *testing.T, store tripcap.Store) {
	const (
		hosts  = 500
		limit  = 8
		onA    = 100 // seconds shipped to the replica that dies
		window = 60
	)
	f := fixtureOn(t, store, controlplane.Config{})
	replica := func() (*controlplane.Monitor, context.CancelFunc) {
		mon, err := controlplane.NewMonitor(f.store, slog.New(slog.NewTextHandler(io.Discard, nil)),
			// A gap long enough that a loaded machine's slow second does
			// not attach a host again: each attaches once per replica.
			controlplane.MonitorConfig{AttachGap: time.Minute, RuleRefresh: 100 * time.Millisecond,
				AttachHistories: limit, AttachHold: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); _ = mon.Run(ctx) }()
		stop := func() { cancel(); wg.Wait() }
		t.Cleanup(stop)
		return mon, stop
	}
	a, stopA := replica()
	b, _ := replica()

	// Every host: the minute's average of Network Out Total above 4000.
	rule := &tripcap.AlertRule{Name: "egress-minute", Scopes: []tripcap.Scope{tripcap.ScopeAll}, EvaluationFrequency: "PT1S", WindowSize: "PT1M",
		Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{
			MetricCriterion: tripcap.MetricCriterion{MetricName: "Network Out Total", TimeAggregation: tripcap.AggregationAverage},
			Operator:        tripcap.OperatorGreaterThan, Threshold: 4000}}}}}
	if _, err := a.CreateRule(f.admin, rule); err != nil {
		t.Fatal(err)
	}
	// And host-0 only: a dynamic rule, whose baseline learns from all the
	// history there is (its Network In stays flat: it never fires).
	dyn := &tripcap.AlertRule{Name: "ingress-dynamic", Scopes: []tripcap.Scope{"host:host-0"}, EvaluationFrequency: "PT5M", WindowSize: "PT5M",
		Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Dynamic: &tripcap.DynamicCriterion{
			MetricCriterion: tripcap.MetricCriterion{MetricName: "Network In Total", TimeAggregation: tripcap.AggregationAverage},
			Operator:        tripcap.OperatorGreaterThan, AlertSensitivity: tripcap.SensitivityMedium,
			FailingPeriods: tripcap.FailingPeriods{NumberOfEvaluationPeriods: 4, MinFailingPeriodsToAlert: 4}}}}}}
	if _, err := a.CreateRule(f.admin, dyn); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both replicas to load the rules", func() bool { return a.Stats().Alerting.Rules == 2 && b.Stats().Alerting.Rules == 2 })

	// Hosts 0, 50, …: breaching from the start (fired on A). Hosts 10, 20,
	// …: breaching from second 60, too short to fire on A; fire on B once
	// it has A's part of the window. The rest: quiet.
	agents := make([]*stormAgent, hosts)
	for i := range agents {
		name := fmt.Sprintf("host-%d", i)
		ctx, h := f.enroll(t, name)
		hist, err := metricstore.New(metricstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		ag := &stormAgent{name: h.ID, ctx: tripcap.NewContextWithAgentProtocol(ctx, 2), hist: hist, breach: func(int) bool { return false }}
		switch {
		case i%50 == 0:
			ag.breach = func(int) bool { return true }
		case i%10 == 0:
			ag.breach = func(s int) bool { return s >= 60 }
		}
		agents[i] = ag
	}

	var outstanding, peak atomic.Int64
	var histBytes, staticMax, dynBytes atomic.Int64
	var stormErr error
	var errOnce sync.Once
	fail := func(err error) { errOnce.Do(func() { stormErr = err }) }
	t0 := time.Now().Truncate(time.Second).Add(-5 * time.Minute)
	// second ships second sec of every agent to mon, on 8 streams' worth
	// of goroutines, answering the history asked of it in the previous one.
	second := func(mon *controlplane.Monitor, sec int) {
		at := t0.Add(time.Duration(sec) * time.Second)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < hosts; i += 8 {
					if err := agents[i].second(mon, at, sec, &outstanding, &peak, &histBytes, &staticMax, &dynBytes, i == 0); err != nil {
						fail(fmt.Errorf("%s second %d: %w", agents[i].name, sec, err))
						return
					}
				}
			}()
		}
		wg.Wait()
		if stormErr != nil {
			t.Fatal(stormErr)
		}
	}
	for sec := range onA {
		second(a, sec)
	}
	eventually(t, "A to fire the hosts breaching from the start", func() bool { return len(alertsOf(t, f)) == hosts/50 })
	settled(t, a)
	if n := len(alertsOf(t, f)); n != hosts/50 {
		t.Fatalf("A fired %d alerts; want the %d hosts breaching all along", n, hosts/50)
	}
	// A attached each host too (the first time here), a storm of its own.
	if st := a.Stats().Attach; st.HistoryEnds != hosts || anyOwed(agents) {
		t.Fatalf("A's attaches: %+v", st)
	}
	stopA()
	if st := b.Stats().Attach; st.HistoryAsks != 0 {
		t.Fatalf("B was asked before the storm: %+v", st)
	}
	for _, ag := range agents {
		ag.asks = 0
	}
	peak.Store(0)

	// The storm: every agent to B at once (the first time there), shipping on.
	sec := onA
	deadline := time.Now().Add(2 * time.Minute)
	for b.Stats().Attach.HistoryEnds < hosts || anyOwed(agents) {
		if time.Now().After(deadline) {
			t.Fatalf("not every host backfilled: %+v", b.Stats().Attach)
		}
		second(b, sec)
		sec++
		// Seconds here pass faster than evaluations: let them catch up,
		// or the evaluator's coalescing of a burst of notifications
		// would take a host's first evaluation on B seconds late.
		quiet(b)
		if st := b.Stats().Attach; st.HistoriesInFlight > limit {
			t.Fatalf("%d histories in flight; the limit is %d", st.HistoriesInFlight, limit)
		}
	}
	if p := peak.Load(); p > limit || p < limit/2 {
		t.Errorf("at most %d histories were asked and unanswered at once; want up to the limit, %d", p, limit)
	}
	for _, ag := range agents {
		if ag.asks != 1 {
			t.Fatalf("%s was asked for history %d times; want once", ag.name, ag.asks)
		}
	}
	st := b.Stats().Attach
	t.Logf("B after %d seconds: %+v; history sent %d KB, a static host's at most %d KB, the dynamic host's %d KB",
		sec-onA, st, histBytes.Load()>>10, staticMax.Load()>>10, dynBytes.Load()>>10)
	if st.Attaches != hosts || st.HistoryAsks != hosts || st.HistoriesLate != 0 || st.HistoriesExpired != 0 || st.HistoriesWaiting != 0 {
		t.Errorf("B's attaches: %+v", st)
	}
	if st.RestoreQueries > hosts/20 {
		t.Errorf("%d queries reloaded the attaching hosts' Fired alerts; want them batched", st.RestoreQueries)
	}
	settled(t, b)

	// Every host's window whole: every second shipped, on A or B.
	last := t0.Add(time.Duration(sec-1) * time.Second)
	for _, ag := range agents {
		res, err := b.QueryMetrics(f.admin, controlplane.MetricsQuery{Host: ag.name, Metric: "Network Out Total", End: last,
			Window: time.Duration(sec) * time.Second, Interval: time.Second, Aggregation: "Count"})
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		var missing []time.Time
		for _, p := range res.Points {
			n += p.Count
			if p.Count == 0 && len(missing) < 5 {
				missing = append(missing, p.Time)
			}
		}
		if n != int64(sec) {
			t.Fatalf("%s: B holds %d of its %d seconds (from %s; missing %v)", ag.name, n, sec, t0, missing)
		}
	}
	// Breaching hosts: one alert each, Fired; quiet hosts: none.
	byHost := map[string][]*tripcap.Alert{}
	for _, al := range alertsOf(t, f) {
		byHost[al.HostID] = append(byHost[al.HostID], al)
	}
	for i, ag := range agents {
		want := 0
		if i%10 == 0 {
			want = 1
		}
		got := byHost[ag.name]
		if len(got) != want || (want == 1 && got[0].MonitorCondition != tripcap.ConditionFired) {
			t.Errorf("host-%d: %d alerts (%+v); want %d, Fired", i, len(got), got, want)
			continue
		}
		// A host whose breach began on A fires on B as soon as its
		// window averages above 4000 (second 108, with A's 40 s of it)
		// or, when its history landed later, on the first second
		// evaluated after it: B alone would fire at second 147.
		if want == 1 && i%50 != 0 && ag.answered < 140 {
			// Released on the history's end, the held evaluation runs
			// at the newest second shipped before it.
			at := t0.Add(time.Duration(max(108, ag.answered-1)) * time.Second)
			if end := got[0].Condition.WindowEndTime; end.Before(at) || end.After(at.Add(3*time.Second)) {
				t.Errorf("host-%d (history in at second %d) fired on the window ending %s (sec %d); want %s; start %s time %s firedAt %s", i, ag.answered, end, end.Sub(t0)/time.Second, at, got[0].Condition.WindowStartTime, got[0].Condition.Time, got[0].FiredAt)
			}
		}
	}
}

// quiet waits, briefly, for mon's evaluations to stop.
func quiet(mon *controlplane.Monitor) {
	last, same := mon.Stats().Alerting.Evaluations, 0
	for deadline := time.Now().Add(2 * time.Second); same < 3 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		n := mon.Stats().Alerting.Evaluations
		if n == last {
			same++
		} else {
			last, same = n, 0
		}
	}
}

func anyOwed(agents []*stormAgent) bool {
	for _, ag := range agents {
		if ag.owed {
			return true
		}
	}
	return false
}

// second answers the history owed, then ships one second's points
// (Network Out Total, and a flat Network In Total) as a frame.
func (ag *stormAgent) second(mon *controlplane.Monitor, at time.Time, sec int, outstanding, peak, histBytes, staticMax, dynBytes *atomic.Int64, dynamic bool) error {
	if ag.owed {
		b, err := metricwire.AppendHistoryAnswer(nil, ag.hist.History("self", time.Unix(ag.since, 0)))
		if err != nil {
			return err
		}
		histBytes.Add(int64(len(b)))
		if dynamic {
			dynBytes.Store(int64(len(b)))
		} else if n := int64(len(b)); n > staticMax.Load() {
			staticMax.Store(n) // racy max: a figure for the log
		}
		frames, err := metricwire.DecodeAll(b, 1<<20)
		if err != nil {
			return err
		}
		for i := range frames {
			if frames[i].Kind == metricwire.KindHistoryEnd {
				// The answer is in but for its end: the server frees
				// the slot on the end, so count it answered first.
				outstanding.Add(-1)
				ag.owed, ag.answered = false, sec
			}
			if _, err := mon.IngestFrame(ag.ctx, &frames[i]); err != nil {
				return err
			}
		}
	}
	v := 0.0
	if ag.breach(sec) {
		v = 5000
	}
	pts := []tripcap.MetricPoint{{Metric: tripcap.MetricNetworkOutBytes, Time: at, Value: v}, {Metric: tripcap.MetricNetworkInBytes, Time: at, Value: 100}}
	mine := []tripcap.MetricPoint{pts[0], pts[1]}
	for i := range mine {
		mine[i].Host = "self"
	}
	if _, err := ag.hist.Append(tripcap.MetricBatch{Points: mine}); err != nil {
		return err
	}
	b, err := metricwire.AppendPoints(nil, at.Unix(), pts)
	if err != nil {
		return err
	}
	frames, err := metricwire.DecodeAll(b, 1000)
	if err != nil {
		return err
	}
	for i := range frames {
		answers, err := mon.IngestFrame(ag.ctx, &frames[i])
		if err != nil {
			return err
		}
		for _, ans := range answers {
			if ans.Kind != metricwire.KindHistoryRequest {
				continue
			}
			if ag.owed {
				return fmt.Errorf("asked for history again before answering")
			}
			if n := outstanding.Add(1); n > peak.Load() {
				peak.Store(n)
			}
			ag.owed, ag.since, ag.asks, ag.askedAt = true, ans.Sec, ag.asks+1, time.Now()
			if err := ag.checkSince(ans.Sec, dynamic); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkSince: a host of static rules is asked for a chart's window at
// most (15 minutes); the host of a dynamic rule for the rollup window.
func (ag *stormAgent) checkSince(since int64, dynamic bool) error {
	back := time.Since(time.Unix(since, 0))
	if dynamic && back < 23*time.Hour {
		return fmt.Errorf("the dynamic rule's host was asked for %s of history; want the rollup window", back)
	}
	if !dynamic && back > controlplane.DefaultMetricWindow+time.Minute {
		return fmt.Errorf("a host of static rules was asked for %s of history; want at most %s", back, controlplane.DefaultMetricWindow)
	}
	return nil
}

// lockedBuffer is a log sink tests read while the monitor writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAttachHistoryLate: one history at a time. The first host's agent
// never answers (its stream broke); the second host waits for the slot,
// and once its hold passes it is evaluated without its history. The next
// frame after the first host's hold gives its slot up and asks the
// second, whose history then lands: it is backfilled all the same. The
// two hosts late are one line of log, and counted.
func TestAttachHistoryLate(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	logs := &lockedBuffer{}
	hold := 300 * time.Millisecond
	mon, err := controlplane.NewMonitor(f.store, slog.New(slog.NewTextHandler(logs, nil)),
		controlplane.MonitorConfig{AttachGap: 5 * time.Second, RuleRefresh: 100 * time.Millisecond, AttachHistories: 1, AttachHold: hold})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = mon.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	rule := &tripcap.AlertRule{Name: "egress", Scopes: []tripcap.Scope{tripcap.ScopeAll}, EvaluationFrequency: "PT1S", WindowSize: "PT1M",
		Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{
			MetricCriterion: tripcap.MetricCriterion{MetricName: "Network Out Total", TimeAggregation: tripcap.AggregationAverage},
			Operator:        tripcap.OperatorGreaterThan, Threshold: 4000}}}}}
	if _, err := mon.CreateRule(f.admin, rule); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rule to load", func() bool { return mon.Stats().Alerting.Rules == 1 })

	var agents []*stormAgent
	for _, name := range []string{"mute.example.com", "late.example.com"} {
		ctx, h := f.enroll(t, name)
		hist, err := metricstore.New(metricstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		agents = append(agents, &stormAgent{name: h.ID, ctx: tripcap.NewContextWithAgentProtocol(ctx, 2), hist: hist, breach: func(int) bool { return false }})
	}
	mute, late := agents[0], agents[1]
	// The agents' own history: the minutes before they came here.
	t0 := time.Now().Truncate(time.Second).Add(-3 * time.Minute)
	for sec := range 60 {
		for _, ag := range agents {
			p := tripcap.MetricPoint{Host: "self", Metric: tripcap.MetricNetworkOutBytes, Time: t0.Add(time.Duration(sec) * time.Second), Value: 1}
			if _, err := ag.hist.Append(tripcap.MetricBatch{Points: []tripcap.MetricPoint{p}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var outstanding, peak, bytes, smax, dmax atomic.Int64
	ship := func(ag *stormAgent, sec int) {
		t.Helper()
		if err := ag.second(mon, t0.Add(time.Duration(sec)*time.Second), sec, &outstanding, &peak, &bytes, &smax, &dmax, false); err != nil {
			t.Fatal(err)
		}
	}
	ship(mute, 60)
	mute.owed = false // its answer is lost
	ship(late, 60)
	if st := mon.Stats().Attach; st.HistoryAsks != 1 || st.HistoriesInFlight != 1 || st.HistoriesWaiting != 1 {
		t.Fatalf("one slot, two hosts: %+v", st)
	}
	evals := mon.Stats().Alerting.Evaluations
	time.Sleep(hold + 100*time.Millisecond)
	// Past its hold, the waiting host is evaluated without its history;
	// the slot the mute one holds is given up, and the late one asked.
	ship(late, 61)
	if !late.owed {
		t.Fatalf("the waiting host was not asked once the slot expired: %+v", mon.Stats().Attach)
	}
	eventually(t, "the late host to be evaluated without its history", func() bool { return mon.Stats().Alerting.Evaluations > evals })
	ship(late, 62) // answers
	ship(mute, 61)
	st := mon.Stats().Attach
	if st.HistoryAsks != 2 || st.HistoryEnds != 1 || st.HistoriesExpired != 1 || st.HistoriesLate != 2 || st.HistoriesInFlight != 0 || st.HistoriesWaiting != 0 {
		t.Errorf("after the storm: %+v", st)
	}
	if st.Backfilled != 60 {
		t.Errorf("backfilled %d points; want the late host's 60", st.Backfilled)
	}
	if n := strings.Count(logs.String(), "did not arrive in time"); n != 1 {
		t.Errorf("%d log lines of late history; want one for both hosts:\n%s", n, logs.String())
	}
}
