package controlplane_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap/actiongroup/webhooktest"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/controlplane"
)

type monitorFixture struct {
	*fixture
	mon *controlplane.Monitor
	// stop ends the monitor's Run and waits for it.
	stop func()
}

func startMonitor(t *testing.T, f *fixture) *monitorFixture {
	t.Helper()
	mon, err := controlplane.NewMonitor(f.store, slog.New(slog.NewTextHandler(io.Discard, nil)), controlplane.MonitorConfig{WebhookTargets: webhooktest.Targets(),
		Retry: actiongroup.Retry{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mon.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return &monitorFixture{fixture: f, mon: mon, stop: stop}
}

// ingest sends one point of Network Out Total (the host series) per second
// from start for each value, as an agent's batch would.
func ingest(t *testing.T, mon *controlplane.Monitor, agent context.Context, start time.Time, values ...float64) time.Time {
	t.Helper()
	var b tripcap.MetricBatch
	for i, v := range values {
		// The host in a batch is ignored: the credential says whose it is.
		b.Points = append(b.Points, tripcap.MetricPoint{Host: "someone-else", Metric: tripcap.MetricNetworkOutBytes, Time: start.Add(time.Duration(i) * time.Second), Value: v})
	}
	res, err := mon.IngestMetrics(agent, b)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != len(values) {
		t.Fatalf("ingest: %+v, want %d stored", res, len(values))
	}
	return start.Add(time.Duration(len(values)) * time.Second)
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// egressRule is the seed's rule shape with a short window: Network Out
// Total, Average above threshold over 5 s, every second.
func egressRule(name, group string, threshold float64) *tripcap.AlertRule {
	return &tripcap.AlertRule{Name: name, Scopes: []tripcap.Scope{"host:web1"}, EvaluationFrequency: "PT1S", WindowSize: "PT5S",
		Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{
			MetricCriterion: tripcap.MetricCriterion{MetricName: "Network Out Total", TimeAggregation: tripcap.AggregationAverage},
			Operator:        tripcap.OperatorGreaterThan, Threshold: threshold}}}},
		Actions: []tripcap.Action{{ActionGroupID: group, WebHookProperties: map[string]string{"team": "net"}}}}
}

func alertsOf(t *testing.T, f *fixture) []*tripcap.Alert {
	t.Helper()
	as, err := f.store.FindAlerts(f.admin, tripcap.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// TestMonitorFireDeliverResolve: points above the threshold fire an alert,
// which is persisted and posted, signed, to both webhook schemas (one
// receiver failing once, then retried); points below it resolve the alert.
func TestMonitorFireDeliverResolve(t *testing.T) {
	m := startMonitor(t, newFixture(t, controlplane.Config{}))
	agent, host := m.enroll(t, "web1")
	rc := webhooktest.Start(t)
	g, err := m.mon.CreateActionGroup(m.admin, &tripcap.ActionGroup{Name: "ops", WebhookReceivers: []tripcap.WebhookReceiver{
		{Name: "common", ServiceURI: rc.URL + "/common", UseCommonAlertSchema: true},
		{Name: "original", ServiceURI: rc.URL + "/flaky/original"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.SigningSecret) < 32 || g.ID == "" || !g.IsEnabled() {
		t.Fatalf("created group: %+v", g)
	}
	rule, err := m.mon.CreateRule(m.admin, egressRule("high-egress", "OPS", 1000))
	if err != nil {
		t.Fatal(err)
	}
	if rule.Actions[0].ActionGroupID != g.ID || rule.Severity == nil || *rule.Severity != 3 {
		t.Fatalf("rule: actions %+v, severity %v; want the group's id and the default severity", rule.Actions, rule.Severity)
	}

	// Starting one second past a multiple of 10 s, each batch fills one
	// 10-second interval of the query below: (t-10s, t].
	start := time.Now().Truncate(10 * time.Second).Add(-2*time.Minute + time.Second)
	next := ingest(t, m.mon, agent, start, repeat(100, 10)...)
	time.Sleep(200 * time.Millisecond)
	if as := alertsOf(t, m.fixture); len(as) != 0 {
		t.Fatalf("quiet host: %d alerts", len(as))
	}
	next = ingest(t, m.mon, agent, next, repeat(5000, 10)...)
	eventually(t, "the alert to fire", func() bool { return len(alertsOf(t, m.fixture)) == 1 })
	a := alertsOf(t, m.fixture)[0]
	if a.MonitorCondition != tripcap.ConditionFired || a.HostID != host.ID || a.HostName != "web1" || a.RuleID != rule.ID {
		t.Fatalf("fired alert: %+v", a)
	}
	// The first second above the threshold fires it: (4×100+5000)/5 > 1000.
	if want := start.Add(10 * time.Second); !a.FiredAt.Equal(want) {
		t.Errorf("fired at %s, want %s", a.FiredAt, want)
	}
	eventually(t, "the Fired deliveries", func() bool {
		return len(rc.Accepted("/common")) == 1 && len(rc.Accepted("/flaky/original")) == 1
	})

	ingest(t, m.mon, agent, next, repeat(100, 10)...)
	eventually(t, "the alert to resolve", func() bool {
		as := alertsOf(t, m.fixture)
		return len(as) == 1 && as[0].MonitorCondition == tripcap.ConditionResolved
	})
	eventually(t, "the Resolved deliveries", func() bool {
		return len(rc.Accepted("/common")) == 2 && len(rc.Accepted("/flaky/original")) == 2
	})

	for i, r := range append(rc.Accepted("/common"), rc.Accepted("/flaky/original")...) {
		if err := actiongroup.Verify(g.SigningSecret, r.Header.Get(actiongroup.HeaderSignature), r.Header.Get(actiongroup.HeaderTimestamp), r.Body, time.Now(), 0); err != nil {
			t.Errorf("delivery %d to %s: signature: %v", i, r.Path, err)
		}
	}
	var common actiongroup.CommonAlert
	if err := json.Unmarshal(rc.Accepted("/common")[1].Body, &common); err != nil {
		t.Fatal(err)
	}
	if common.SchemaID != actiongroup.SchemaCommon || common.Data.Essentials.MonitorCondition != "Resolved" ||
		common.Data.CustomProperties["team"] != "net" || common.Data.Essentials.AlertRule != "high-egress" {
		t.Errorf("common schema payload: %+v", common)
	}
	var orig actiongroup.MetricAlert
	if err := json.Unmarshal(rc.Accepted("/flaky/original")[0].Body, &orig); err != nil {
		t.Fatal(err)
	}
	if orig.SchemaID != actiongroup.SchemaMetricAlert || orig.Data.Status != "Activated" || orig.Data.Context.ResourceName != "web1" {
		t.Errorf("metric alert schema payload: %+v", orig)
	}

	// The receiver answers before the server records the attempt.
	var d *controlplane.AlertDetail
	eventually(t, "the delivery log", func() bool {
		var err error
		d, err = m.mon.FindAlert(m.admin, a.ID)
		return err == nil && len(d.Deliveries) == 6
	})
	if d.Alert.MonitorCondition != tripcap.ConditionResolved || len(d.Alert.History) != 2 || d.Alert.ResolvedAt == nil {
		t.Fatalf("resolved alert: %+v", d.Alert)
	}
	// common: Fired ok, Resolved ok; original: Fired 503 then ok, Resolved 503 then ok.
	attempts := map[string]int{}
	for _, dl := range d.Deliveries {
		attempts[dl.Receiver+"/"+string(dl.MonitorCondition)]++
		if dl.ActionGroupID != g.ID || dl.AlertID != a.ID {
			t.Errorf("delivery %+v", dl)
		}
		if !dl.Success && (dl.StatusCode != 503 || dl.Final || dl.Receiver != "original") {
			t.Errorf("failed delivery %+v", dl)
		}
	}
	want := map[string]int{"common/Fired": 1, "common/Resolved": 1, "original/Fired": 2, "original/Resolved": 2}
	if len(attempts) != len(want) {
		t.Fatalf("delivery log %v, want %v", attempts, want)
	}
	for k, n := range want {
		if attempts[k] != n {
			t.Fatalf("delivery log %v, want %v", attempts, want)
		}
	}

	// Points were stored under the agent's host, whatever the batch said.
	res, err := m.mon.QueryMetrics(m.admin, controlplane.MetricsQuery{Host: "web1", Metric: "Network Out Total",
		Window: 30 * time.Second, Interval: 10 * time.Second, Aggregation: "Total", End: next.Add(9 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	var totals []float64
	for _, p := range res.Points {
		totals = append(totals, p.Value)
	}
	if res.Host != "web1" || len(totals) != 3 || totals[0] != 1000 || totals[1] != 50000 || totals[2] != 1000 {
		t.Fatalf("query: host %s, totals %v", res.Host, totals)
	}
	if st := m.mon.Stats(); st.Metrics.Hosts != 1 || st.PointsIngested != 30 {
		t.Fatalf("stats %+v: want one host, 30 points", st)
	}
}

// TestMonitorRestoresFiredAlerts: a server restarted while an alert is
// Fired resolves that alert, rather than firing a second one.
func TestMonitorRestoresFiredAlerts(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	m1 := startMonitor(t, f)
	agent, _ := f.enroll(t, "web1")
	rc := webhooktest.Start(t)
	if _, err := m1.mon.CreateActionGroup(f.admin, &tripcap.ActionGroup{Name: "ops", WebhookReceivers: []tripcap.WebhookReceiver{{Name: "w", ServiceURI: rc.URL + "/w"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m1.mon.CreateRule(f.admin, egressRule("high-egress", "ops", 1000)); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Truncate(time.Second).Add(-2 * time.Minute)
	next := ingest(t, m1.mon, agent, start, repeat(5000, 10)...)
	eventually(t, "the alert to fire", func() bool { return len(alertsOf(t, f)) == 1 })
	eventually(t, "the Fired delivery", func() bool { return len(rc.Accepted("/w")) == 1 })
	m1.stop()

	// A new server on the same database: its metric store is empty.
	m2 := startMonitor(t, f)
	next = ingest(t, m2.mon, agent, next, repeat(5000, 10)...)
	time.Sleep(200 * time.Millisecond)
	next = ingest(t, m2.mon, agent, next, repeat(100, 10)...)
	eventually(t, "the restored alert to resolve", func() bool {
		as := alertsOf(t, f)
		return len(as) == 1 && as[0].MonitorCondition == tripcap.ConditionResolved
	})
	eventually(t, "the Resolved delivery", func() bool { return len(rc.Accepted("/w")) == 2 })
	if as := alertsOf(t, f); len(as) != 1 || len(as[0].History) != 2 {
		t.Fatalf("after a restart: %d alerts; want the one alert, Fired then Resolved", len(as))
	}
	// And the rule works on: the next breach is a new alert.
	ingest(t, m2.mon, agent, next, repeat(5000, 10)...)
	eventually(t, "a second alert", func() bool { return len(alertsOf(t, f)) == 2 })
}

// TestMonitorRefusesBadInput: each mistake is EINVALID (or the matching
// code) with the field named, and roles are enforced.
func TestMonitorRefusesBadInput(t *testing.T) {
	m := startMonitor(t, newFixture(t, controlplane.Config{}))
	agent, _ := m.enroll(t, "web1")
	hook := []tripcap.WebhookReceiver{{Name: "w", ServiceURI: "http://127.0.0.1:9/hook"}}
	g, err := m.mon.CreateActionGroup(m.admin, &tripcap.ActionGroup{Name: "ops", WebhookReceivers: hook})
	if err != nil {
		t.Fatal(err)
	}

	bad := egressRule("bad", "ops", 1)
	bad.Criteria.AllOf[0].Static.MetricName = "CPU"
	_, err = m.mon.CreateRule(m.admin, bad)
	wantCode(t, err, tripcap.EINVALID, "criteria.allOf[0].metricName")
	bad = egressRule("bad", "nope", 1)
	_, err = m.mon.CreateRule(m.admin, bad)
	wantCode(t, err, tripcap.EINVALID, "actions[0].actionGroupId")
	bad = egressRule("bad", "ops", 1)
	bad.WindowSize = "5 minutes"
	_, err = m.mon.CreateRule(m.admin, bad)
	wantCode(t, err, tripcap.EINVALID, "windowSize")
	bad = egressRule("bad", "ops", 1)
	bad.ID = "x"
	_, err = m.mon.CreateRule(m.admin, bad)
	wantCode(t, err, tripcap.EINVALID, "id")
	_, err = m.mon.CreateRule(agent, egressRule("r", "ops", 1))
	wantCode(t, err, tripcap.EFORBIDDEN, "may not monitoring/write")

	// The seed's preset, by the group's resource id.
	seed, err := tripcap.PresetAlertRule(tripcap.PresetSeed, "seed", []tripcap.Scope{tripcap.ScopeAll}, "/subscriptions/s/resourceGroups/g/providers/microsoft.insights/actionGroups/ops")
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.mon.CreateRule(m.admin, seed)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.mon.CreateRule(m.admin, egressRule("SEED", "ops", 1))
	wantCode(t, err, tripcap.ECONFLICT, "SEED")
	if got, err := m.mon.FindRule(m.admin, "Seed"); err != nil || got.ID != r.ID || got.Criteria.AllOf[0].Static.Threshold != 3 {
		t.Fatalf("find rule by name: %+v %v", got, err)
	}
	err = m.mon.DeleteActionGroup(m.admin, "ops")
	wantCode(t, err, tripcap.ECONFLICT, "seed")

	_, err = m.mon.CreateActionGroup(m.admin, &tripcap.ActionGroup{Name: "resp", ResponderReceivers: []tripcap.ResponderReceiver{{Name: "cap", ResponderID: "x"}}})
	wantCode(t, err, tripcap.EINVALID, "responderReceivers")
	_, err = m.mon.CreateActionGroup(m.admin, &tripcap.ActionGroup{Name: "mail", EmailReceivers: []tripcap.EmailReceiver{{Name: "m", EmailAddress: "a@example.invalid"}}})
	wantCode(t, err, tripcap.EINVALID, "emailReceivers")
	_, err = m.mon.CreateActionGroup(m.admin, &tripcap.ActionGroup{Name: "s", WebhookReceivers: hook, SigningSecret: "mine"})
	wantCode(t, err, tripcap.EINVALID, "signingSecret")
	_, err = m.mon.CreateActionGroup(m.admin, &tripcap.ActionGroup{Name: "u", WebhookReceivers: []tripcap.WebhookReceiver{{Name: "w", ServiceURI: "ftp://x"}}})
	wantCode(t, err, tripcap.EINVALID, "webhookReceivers[0].serviceUri")
	_, err = m.mon.CreateActionGroup(m.admin, &tripcap.ActionGroup{Name: "OPS", WebhookReceivers: hook})
	wantCode(t, err, tripcap.ECONFLICT, "OPS")

	// Secrets are shown once.
	gs, err := m.mon.FindActionGroups(m.admin)
	if err != nil || len(gs) != 1 || gs[0].SigningSecret != "" {
		t.Fatalf("list groups: %+v %v", gs, err)
	}
	if got, err := m.mon.FindActionGroup(m.admin, g.ID); err != nil || got.SigningSecret != "" || got.Name != "ops" {
		t.Fatalf("find group: %+v %v", got, err)
	}

	_, err = m.mon.IngestMetrics(m.admin, tripcap.MetricBatch{})
	wantCode(t, err, tripcap.EFORBIDDEN, "agent")
	_, err = m.mon.IngestMetrics(agent, tripcap.MetricBatch{Points: []tripcap.MetricPoint{{Metric: "cpu", Time: time.Now(), Value: 1}}})
	wantCode(t, err, tripcap.EINVALID, "points[0].metric")
	_, err = m.mon.QueryMetrics(m.admin, controlplane.MetricsQuery{Host: "web1", Metric: "Network Out Total", Window: 1500 * time.Millisecond})
	wantCode(t, err, tripcap.EINVALID, "window")
	_, err = m.mon.QueryMetrics(m.admin, controlplane.MetricsQuery{Host: "web1", Metric: "Network Out Total", Aggregation: "Median"})
	wantCode(t, err, tripcap.EINVALID, "aggregation")
	_, err = m.mon.QueryMetrics(m.admin, controlplane.MetricsQuery{Host: "web1", Metric: "Inbound Flows", Interface: "eth0"})
	wantCode(t, err, tripcap.EINVALID, "interface")
	_, err = m.mon.QueryMetrics(m.admin, controlplane.MetricsQuery{Host: "nope", Metric: "Network Out Total"})
	wantCode(t, err, tripcap.ENOTFOUND, "nope")
	_, err = m.mon.FindAlerts(m.admin, controlplane.AlertQuery{State: "Acknowledged"})
	wantCode(t, err, tripcap.EINVALID, "state")
	_, err = m.mon.FindAlerts(m.admin, controlplane.AlertQuery{Rule: "no such rule"})
	wantCode(t, err, tripcap.ENOTFOUND, "no such rule")
	_, err = m.mon.FindAlert(m.admin, "nope")
	wantCode(t, err, tripcap.ENOTFOUND, "nope")

	if err := m.mon.DeleteRule(m.admin, "seed"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, m.mon.DeleteRule(m.admin, "seed"), tripcap.ENOTFOUND, "seed")
	if err := m.mon.DeleteActionGroup(m.admin, "ops"); err != nil {
		t.Fatal(err)
	}
}
