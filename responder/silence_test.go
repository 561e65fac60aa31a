package responder_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/actiongroup/webhooktest"
	"github.com/tripcap/tripcap/controlplane"
)

// A silence on a host: the host's breach is recorded and marked, and
// neither the webhook nor the responder (so no capture) hears of it, nor
// of its resolve; after the silence is expired, the next breach is
// delivered and captured.
func TestSilenceMutesDeliveryAndCapture(t *testing.T) {
	f := startResponders(t, newFixture(t, controlplane.Config{}))
	agent, h := f.enroll(t, "web1")
	rc := webhooktest.Start(t)
	mon, err := controlplane.NewMonitor(f.store, slog.New(slog.NewTextHandler(io.Discard, nil)), controlplane.MonitorConfig{WebhookTargets: webhooktest.Targets(),
		Responder: f.rsp, Retry: actiongroup.Retry{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = mon.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	rs, err := f.rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "pc"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := mon.CreateActionGroup(f.admin, &tripcap.ActionGroup{Name: "ops",
		WebhookReceivers:   []tripcap.WebhookReceiver{{Name: "hook", ServiceURI: rc.URL + "/hook", UseCommonAlertSchema: true}},
		ResponderReceivers: []tripcap.ResponderReceiver{{Name: "cap", ResponderID: rs.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	rule, err := mon.CreateRule(f.admin, &tripcap.AlertRule{Name: "high-egress", Scopes: []tripcap.Scope{"host:web1"},
		EvaluationFrequency: "PT1S", WindowSize: "PT5S",
		Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{
			MetricCriterion: tripcap.MetricCriterion{MetricName: "Network Out Total", TimeAggregation: tripcap.AggregationAverage},
			Operator:        tripcap.OperatorGreaterThan, Threshold: 1000}}}},
		Actions: []tripcap.Action{{ActionGroupID: g.ID}}})
	if err != nil {
		t.Fatal(err)
	}

	alice := tripcap.NewContextWithPrincipal(f.admin, &tripcap.Principal{Name: "alice", Kind: tripcap.PrincipalUser, Assignments: tripcap.OwnerEverywhere()})
	_, err = mon.CreateSilence(alice, &tripcap.Silence{EndsAt: time.Now().Add(time.Hour), Comment: "no matcher"})
	wantCode(t, err, tripcap.EINVALID, "matchers")
	sl, err := mon.CreateSilence(alice, &tripcap.Silence{Host: "web1", Labels: []tripcap.Scope{"label:role!=db"},
		EndsAt: time.Now().Add(time.Hour), Comment: "kernel upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	if sl.Host != h.ID || sl.CreatedBy != "alice" || !sl.Active(time.Now()) {
		t.Fatalf("silence: %+v", sl)
	}

	ingest := func(start time.Time, v float64) time.Time {
		var b tripcap.MetricBatch
		for i := range 10 {
			b.Points = append(b.Points, tripcap.MetricPoint{Metric: tripcap.MetricNetworkOutBytes, Time: start.Add(time.Duration(i) * time.Second), Value: v})
		}
		if _, err := mon.IngestMetrics(agent, b); err != nil {
			t.Fatal(err)
		}
		return start.Add(10 * time.Second)
	}
	alerts := func() []*tripcap.Alert {
		as, err := f.store.FindAlerts(f.admin, tripcap.AlertFilter{RuleID: &rule.ID})
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	runs := func() int {
		rr, err := f.rsp.FindRuns(f.admin, "pc", 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(rr)
	}

	start := time.Now().Truncate(10 * time.Second).Add(-3 * time.Minute)
	next := ingest(start, 100)
	next = ingest(next, 5000)
	eventually(t, "the silenced alert", func() bool { as := alerts(); return len(as) == 1 })
	muted := alerts()[0]
	if muted.MonitorCondition != tripcap.ConditionFired || !muted.Silenced || len(muted.SilencedBy) != 1 || muted.SilencedBy[0] != sl.ID ||
		!muted.Condition.Silenced || !muted.History[0].Silenced {
		t.Fatalf("silenced alert: %+v", muted)
	}
	next = ingest(next, 100)
	eventually(t, "the silenced alert to resolve", func() bool {
		as := alerts()
		return len(as) == 1 && as[0].MonitorCondition == tripcap.ConditionResolved
	})
	if a := alerts()[0]; !a.Silenced || len(a.History) != 2 || !a.History[0].Silenced || !a.History[1].Silenced {
		t.Fatalf("resolve of a silenced alert: %+v", a)
	}
	// Nothing was delivered: give a delivery the time it would take.
	time.Sleep(300 * time.Millisecond)
	if n := len(rc.Accepted("/hook")); n != 0 {
		t.Fatalf("webhook got %d deliveries of a silenced alert", n)
	}
	if n := runs(); n != 0 {
		t.Fatalf("responder ran %d times for a silenced alert", n)
	}
	if caps, _, err := f.store.FindCaptures(f.admin, tripcap.CaptureFilter{}); err != nil || len(caps) != 0 {
		t.Fatalf("captures of a silenced alert: %d (%v)", len(caps), err)
	}
	if ds, err := f.store.FindDeliveries(f.admin, muted.ID); err != nil || len(ds) != 0 {
		t.Fatalf("deliveries of a silenced alert: %d (%v)", len(ds), err)
	}
	if list, err := mon.FindSilences(f.admin, false); err != nil || len(list) != 1 {
		t.Fatalf("active silences: %d (%v)", len(list), err)
	}

	if _, err := mon.ExpireSilence(f.admin, sl.ID); err != nil {
		t.Fatal(err)
	}
	if list, err := mon.FindSilences(f.admin, false); err != nil || len(list) != 0 {
		t.Fatalf("silences after expiry: %d (%v)", len(list), err)
	}
	if list, err := mon.FindSilences(f.admin, true); err != nil || len(list) != 1 {
		t.Fatalf("all silences after expiry: %d (%v)", len(list), err)
	}
	ingest(next, 5000)
	eventually(t, "the next breach", func() bool { return len(alerts()) == 2 })
	if a := alerts()[0]; a.Silenced || a.MonitorCondition != tripcap.ConditionFired || a.ID == muted.ID {
		t.Fatalf("breach after the silence: %+v", a)
	}
	eventually(t, "the webhook delivery", func() bool { return len(rc.Accepted("/hook")) == 1 })
	got := f.settle(t, "pc", 1)
	if got[0].Decision != tripcap.DecisionStarted || len(got[0].Hosts) != 1 || got[0].Hosts[0].CaptureID == "" {
		t.Fatalf("responder run after the silence: %+v", got[0])
	}
}
