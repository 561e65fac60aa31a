package controlplane_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
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

// wireAgent is an agent's side of the metric path as the agent runs it:
// its own history store, and frames through the wire encoding.
type wireAgent struct {
	t    *testing.T
	ctx  context.Context
	hist *metricstore.Store
}

// send ships one second of Network Out Total to mon as a frame and, when
// the answer asks for history, sends the history it holds.
func (a *wireAgent) send(mon *controlplane.Monitor, at time.Time, v float64) {
	a.t.Helper()
	p := tripcap.MetricPoint{Metric: tripcap.MetricNetworkOutBytes, Time: at, Value: v}
	mine := p
	mine.Host = "self"
	if _, err := a.hist.Append(tripcap.MetricBatch{Points: []tripcap.MetricPoint{mine}}); err != nil {
		a.t.Fatal(err)
	}
	b, err := metricwire.AppendPoints(nil, at.Unix(), []tripcap.MetricPoint{p})
	if err != nil {
		a.t.Fatal(err)
	}
	for _, answer := range a.frames(mon, b) {
		if answer.Kind != metricwire.KindHistoryRequest {
			continue
		}
		h, err := metricwire.AppendHistoryAnswer(nil, a.hist.History("self", time.Unix(answer.Sec, 0)))
		if err != nil {
			a.t.Fatal(err)
		}
		a.frames(mon, h)
	}
}

func (a *wireAgent) frames(mon *controlplane.Monitor, b []byte) []metricwire.Frame {
	a.t.Helper()
	frames, err := metricwire.DecodeAll(b, 1000)
	if err != nil {
		a.t.Fatal(err)
	}
	var out []metricwire.Frame
	for i := range frames {
		answers, err := mon.IngestFrame(a.ctx, &frames[i])
		if err != nil {
			a.t.Fatal(err)
		}
		out = append(out, answers...)
	}
	return out
}

// TestReplicaAttachesMidWindow: two replicas on one database. A breach
// starts while the host ships to replica A, too short to fire there; the
// agent moves to replica B mid-window. B attaches the host, asks for its
// history, and evaluates the window as full: it fires once the breach
// fills the window (without the history its window would be no data).
// The agent moves back to A, which reloads the alert B fired and does not
// fire it again. On SQLite, and on PostgreSQL (TRIPCAP_TEST_POSTGRES) as
// replicas run.
func TestReplicaAttachesMidWindow(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { replicaAttach(t, newFixture(t, controlplane.Config{}).store) })
	t.Run("postgres", func(t *testing.T) {
		store, err := postgres.Open(t.Context(), pgtest.FreshDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		store.SetSealer(storetest.NewSealer(t))
		t.Cleanup(func() { store.Close() })
		replicaAttach(t, store)
	})
}

// settled waits for mon's evaluations to stop: notifications of a burst
// of seconds coalesce, so how many evaluations it takes varies.
func settled(t *testing.T, mon *controlplane.Monitor) {
	t.Helper()
	last := uint64(0)
	eventually(t, "the evaluations to settle", func() bool {
		time.Sleep(150 * time.Millisecond)
		n := mon.Stats().Alerting.Evaluations
		done := n > 0 && n == last
		last = n
		return done
	})
}

func replicaAttach(t *testing.T, store tripcap.Store) {
	f := fixtureOn(t, store, controlplane.Config{})
	replica := func() *controlplane.Monitor {
		mon, err := controlplane.NewMonitor(f.store, slog.New(slog.NewTextHandler(io.Discard, nil)),
			controlplane.MonitorConfig{AttachGap: 300 * time.Millisecond, RuleRefresh: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); _ = mon.Run(ctx) }()
		t.Cleanup(func() { cancel(); wg.Wait() })
		return mon
	}
	a, b := replica(), replica()
	agentCtx, _ := f.enroll(t, "web1")
	hist, err := metricstore.New(metricstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	agent := &wireAgent{t: t, ctx: tripcap.NewContextWithAgentProtocol(agentCtx, 2), hist: hist}

	// Average Network Out Total above 4000 over a minute, every second.
	rule := &tripcap.AlertRule{Name: "egress-minute", Scopes: []tripcap.Scope{"host:web1"}, EvaluationFrequency: "PT1S", WindowSize: "PT1M",
		Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{
			MetricCriterion: tripcap.MetricCriterion{MetricName: "Network Out Total", TimeAggregation: tripcap.AggregationAverage},
			Operator:        tripcap.OperatorGreaterThan, Threshold: 4000}}}}}
	if _, err := a.CreateRule(f.admin, rule); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both replicas to load the rule", func() bool { return a.Stats().Alerting.Rules == 1 && b.Stats().Alerting.Rules == 1 })

	// On A: 60 quiet seconds, then 40 of breach: the minute's average is
	// 3333, below the threshold.
	at := time.Now().Truncate(time.Second).Add(-5 * time.Minute)
	for i := range 100 {
		v := 0.0
		if i >= 60 {
			v = 5000
		}
		agent.send(a, at, v)
		at = at.Add(time.Second)
	}
	settled(t, a)
	if as := alertsOf(t, f); len(as) != 0 {
		t.Fatalf("A fired on a minute averaging 3333: %+v", as[0])
	}

	// To B, mid-window: 15 more seconds of breach. The window (55 s of
	// 5000) averages 4583: B fires, which it can only with A's part of it.
	time.Sleep(400 * time.Millisecond) // the gap of a reconnect
	for range 15 {
		agent.send(b, at, 5000)
		at = at.Add(time.Second)
	}
	eventually(t, "B to fire", func() bool { return len(alertsOf(t, f)) == 1 })
	if st := b.Stats(); st.Attach.Attaches != 1 || st.Attach.HistoryEnds != 1 || st.Attach.Backfilled < 100 {
		t.Errorf("B's attach: %+v, want one attach with A's 100 seconds backfilled", st.Attach)
	}
	fired := alertsOf(t, f)[0]
	if fired.MonitorCondition != tripcap.ConditionFired || fired.Condition.WindowStartTime.After(at.Add(-61*time.Second)) {
		t.Errorf("B's alert: %+v", fired)
	}

	// Back to A, the breach going on: A reloads B's alert and does not
	// fire it again.
	time.Sleep(400 * time.Millisecond)
	evals := a.Stats().Alerting.Evaluations
	for range 10 {
		agent.send(a, at, 5000)
		at = at.Add(time.Second)
	}
	eventually(t, "A to evaluate the new seconds", func() bool { return a.Stats().Alerting.Evaluations >= evals+10 })
	settled(t, a)
	if as := alertsOf(t, f); len(as) != 1 {
		for _, x := range as {
			t.Logf("alert %s %s fired at %s window %s..%s value %v hist %d", x.ID, x.MonitorCondition, x.FiredAt, x.Condition.WindowStartTime, x.Condition.WindowEndTime, x.Condition.AllOf[0].MetricValue, len(x.History))
		}
		t.Logf("A %+v B %+v", a.Stats(), b.Stats())
		t.Fatalf("%d alerts after the agent came back to A; want B's one", len(as))
	}
	if n := a.Stats().Alerting.Fired; n != 1 {
		t.Errorf("A holds %d fired alerts; want B's", n)
	}
	// And it resolves on A, once: a quiet minute.
	for range 60 {
		agent.send(a, at, 0)
		at = at.Add(time.Second)
	}
	eventually(t, "A to resolve B's alert", func() bool {
		as := alertsOf(t, f)
		return len(as) == 1 && as[0].MonitorCondition == tripcap.ConditionResolved
	})
}

// A points frame the store refuses whole (here a point no decoder would
// let through) is acknowledged as refused, not failed: streamed or
// POSTed, an error would make the agent send it again forever.
func TestFrameRefusedWholeIsAcknowledged(t *testing.T) {
	mon, ctx := agentMonitor(t)
	now := time.Now().Truncate(time.Second)
	frame := metricwire.Frame{Kind: metricwire.KindPoints, Sec: now.Unix(), Points: []tripcap.MetricPoint{
		{Metric: tripcap.MetricNetworkOutBytes, Time: now, Value: 1},
		{Metric: "no_such_metric", Time: now, Value: 2},
	}}
	answers, err := mon.IngestFrame(ctx, &frame)
	if err != nil {
		t.Fatalf("a frame refused whole failed the exchange: %v", err)
	}
	if len(answers) != 1 || answers[0].Kind != metricwire.KindAck || answers[0].Sec != now.Unix() || answers[0].Stored != 0 || answers[0].Refused != 2 {
		t.Fatalf("answers %+v, want one ack of second %d with 2 refused", answers, now.Unix())
	}
}

// A history answer runs up to the agent's now, so it repeats the seconds
// the stream brought since the attach: the store keeps what it holds, and
// the repeats are not counted as points refused (an operator watching
// tripcap_metric_points_refused_total would see a fault that is none).
func TestHistoryOverlapIsNotRefused(t *testing.T) {
	mon, ctx := agentMonitor(t)
	now := time.Now().Truncate(time.Second)
	for i := range 5 {
		at := now.Add(time.Duration(i-4) * time.Second)
		frame := metricwire.Frame{Kind: metricwire.KindPoints, Sec: at.Unix(), Points: []tripcap.MetricPoint{{Metric: tripcap.MetricNetworkOutBytes, Time: at, Value: 1}}}
		if _, err := mon.IngestFrame(ctx, &frame); err != nil {
			t.Fatal(err)
		}
	}
	// The agent's history: 10 seconds before the stream began, and the 5 it streamed.
	var raw []metricstore.RawPoint
	for i := range 15 {
		raw = append(raw, metricstore.RawPoint{Sec: now.Add(time.Duration(i-14) * time.Second).Unix(), Value: 1})
	}
	hist := metricwire.Frame{Kind: metricwire.KindHistory, History: []metricstore.SeriesHistory{{Key: metricstore.Key{Metric: tripcap.MetricNetworkOutBytes}, Raw: raw}}}
	if _, err := mon.IngestFrame(ctx, &hist); err != nil {
		t.Fatal(err)
	}
	st := mon.Stats()
	if st.PointsRefused.Duplicates != 0 || st.Attach.Backfilled != 10 {
		t.Fatalf("refused %+v, backfilled %d: want none refused and the 10 seconds the store lacked backfilled", st.PointsRefused, st.Attach.Backfilled)
	}
}

// agentMonitor is a monitor on a fresh store and the context of an agent
// (web1.example.com) speaking protocol 2 to it.
func agentMonitor(t *testing.T) (*controlplane.Monitor, context.Context) {
	t.Helper()
	f := newFixture(t, controlplane.Config{})
	mon, err := controlplane.NewMonitor(f.store, slog.New(slog.NewTextHandler(io.Discard, nil)), controlplane.MonitorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	agentCtx, _ := f.enroll(t, "web1.example.com")
	return mon, tripcap.NewContextWithAgentProtocol(agentCtx, 2)
}
