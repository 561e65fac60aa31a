package controlplane_test

import (
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup/webhooktest"
	"github.com/tripcap/tripcap/controlplane"
)

// Updating a rule keeps its id, needs If-Match (an ETag or *), refuses a
// stale ETag, and is evaluated at once: a fired alert whose condition the
// new threshold no longer meets resolves at the next evaluation, and is
// delivered as resolved. Disabling it stops evaluation.
func TestMonitorRuleUpdateResolvesFiredAlert(t *testing.T) {
	m := startMonitor(t, newFixture(t, controlplane.Config{}))
	agent, _ := m.enroll(t, "web1")
	rc := webhooktest.Start(t)
	g, err := m.mon.CreateActionGroup(m.admin, &tripcap.ActionGroup{Name: "ops", WebhookReceivers: []tripcap.WebhookReceiver{
		{Name: "hook", ServiceURI: rc.URL + "/hook", UseCommonAlertSchema: true}}})
	if err != nil {
		t.Fatal(err)
	}
	rule, err := m.mon.CreateRule(m.admin, egressRule("high-egress", "ops", 1000))
	if err != nil {
		t.Fatal(err)
	}
	if rule.Version != 1 || rule.ETag() != `W/"1"` {
		t.Fatalf("created rule version %d etag %s", rule.Version, rule.ETag())
	}
	start := time.Now().Truncate(10 * time.Second).Add(-2 * time.Minute)
	next := ingest(t, m.mon, agent, start, repeat(5000, 10)...)
	eventually(t, "the alert to fire", func() bool { return len(alertsOf(t, m.fixture)) == 1 })
	fired := alertsOf(t, m.fixture)[0]

	change := *rule
	change.Criteria = tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{
		MetricCriterion: tripcap.MetricCriterion{MetricName: "Network Out Total", TimeAggregation: tripcap.AggregationAverage},
		Operator:        tripcap.OperatorGreaterThan, Threshold: 10000}}}}
	_, err = m.mon.UpdateRule(m.admin, "high-egress", &change, "")
	wantCode(t, err, tripcap.EPRECONDITION, "If-Match")
	_, err = m.mon.UpdateRule(m.admin, "high-egress", &change, `W/"7"`)
	wantCode(t, err, tripcap.EPRECONDITION, "changed")
	other := change
	other.ID = tripcap.NewID()
	_, err = m.mon.UpdateRule(m.admin, "high-egress", &other, "*")
	wantCode(t, err, tripcap.EINVALID, "id")
	bad := change
	bad.WindowSize = "PT0S"
	_, err = m.mon.UpdateRule(m.admin, "high-egress", &bad, rule.ETag())
	wantCode(t, err, tripcap.EINVALID, "windowSize")

	up, err := m.mon.UpdateRule(m.admin, "high-egress", &change, rule.ETag())
	if err != nil {
		t.Fatal(err)
	}
	if up.ID != rule.ID || up.Version != 2 || !up.CreatedAt.Equal(rule.CreatedAt) || up.Actions[0].ActionGroupID != g.ID {
		t.Fatalf("updated rule: %+v", up)
	}
	_, err = m.mon.UpdateRule(m.admin, rule.ID, &change, rule.ETag())
	wantCode(t, err, tripcap.EPRECONDITION, "changed")

	// 5000 no longer breaches 10000: the fired alert resolves on the next evaluation.
	next = ingest(t, m.mon, agent, next, repeat(5000, 3)...)
	eventually(t, "the fired alert to resolve under the new threshold", func() bool {
		as := alertsOf(t, m.fixture)
		return len(as) == 1 && as[0].ID == fired.ID && as[0].MonitorCondition == tripcap.ConditionResolved
	})
	if a := alertsOf(t, m.fixture)[0]; a.Condition.AllOf[0].Threshold != 10000 {
		t.Fatalf("resolving evaluation used threshold %v, want the new 10000", a.Condition.AllOf[0].Threshold)
	}
	eventually(t, "the Fired and Resolved deliveries", func() bool { return len(rc.Accepted("/hook")) == 2 })

	// Disabled: a breach of the new threshold fires nothing.
	dis := *up
	dis.Enabled = new(false)
	if _, err := m.mon.UpdateRule(m.admin, "high-egress", &dis, "*"); err != nil {
		t.Fatal(err)
	}
	ingest(t, m.mon, agent, next, repeat(50000, 10)...)
	time.Sleep(300 * time.Millisecond)
	if as := alertsOf(t, m.fixture); len(as) != 1 {
		t.Fatalf("a disabled rule fired: %d alerts", len(as))
	}
}

// Updating an action group keeps its id and signing secret (the answer
// leaves the secret out, as listings do); concurrent "*" updates all land,
// one after another.
func TestMonitorActionGroupUpdate(t *testing.T) {
	m := startMonitor(t, newFixture(t, controlplane.Config{}))
	g, err := m.mon.CreateActionGroup(m.admin, &tripcap.ActionGroup{Name: "ops", WebhookReceivers: []tripcap.WebhookReceiver{
		{Name: "hook", ServiceURI: "https://hooks.example.invalid/a", UseCommonAlertSchema: true}}})
	if err != nil {
		t.Fatal(err)
	}
	in := tripcap.ActionGroup{Enabled: new(false), WebhookReceivers: []tripcap.WebhookReceiver{{Name: "other", ServiceURI: "https://hooks.example.invalid/b"}}}
	_, err = m.mon.UpdateActionGroup(m.admin, "ops", &tripcap.ActionGroup{SigningSecret: "mine", WebhookReceivers: g.WebhookReceivers}, "*")
	wantCode(t, err, tripcap.EINVALID, "signingSecret")
	_, err = m.mon.UpdateActionGroup(m.admin, "ops", &tripcap.ActionGroup{}, "*")
	wantCode(t, err, tripcap.EINVALID, "receivers")
	up, err := m.mon.UpdateActionGroup(m.admin, "ops", &in, g.ETag())
	if err != nil {
		t.Fatal(err)
	}
	if up.ID != g.ID || up.Name != "ops" || up.IsEnabled() || up.SigningSecret != "" || up.Version != 2 || len(up.WebhookReceivers) != 1 || up.WebhookReceivers[0].Name != "other" {
		t.Fatalf("updated group: %+v", up)
	}
	stored, err := m.store.FindActionGroup(m.admin, tripcap.ActionGroupFilter{ID: &g.ID})
	if err != nil {
		t.Fatal(err)
	}
	if stored.SigningSecret != g.SigningSecret {
		t.Fatal("the update changed the signing secret")
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { _, errs[i] = m.mon.UpdateActionGroup(m.admin, g.ID, &in, "*") })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent update with *: %v", err)
		}
	}
	if got, _ := m.mon.FindActionGroup(m.admin, "ops"); got.Version != 5 {
		t.Fatalf("version after 4 updates: %d", got.Version)
	}
}
