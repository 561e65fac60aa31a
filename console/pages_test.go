package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// TestOwnerPagesCreateEverything: an Owner sees every page of the
// monitoring and access side with its controls, and creates from the
// forms a responder, an action group starting it, a storage account, a
// user and a role assignment; bad input comes back naming the field.
func TestOwnerPagesCreateEverything(t *testing.T) {
	f := newFixtureWith(t, fixtureOptions{audited: true})
	f.host(t, "web1", "westeurope", nil)
	pw := f.user(t, "olga", tripcap.RoleOwner)
	b := f.browser(t)
	b.signIn("olga", pw)

	p := b.get("/responders")
	if p.StatusCode != 200 || !strings.Contains(p.body, `id="responder-form"`) {
		t.Fatalf("responders as an Owner: %s\n%s", p.Status, p.body)
	}
	if p := b.post("/responders", url.Values{"name": {"pc"}, "filters": {"protocol=UDP,remotePort=99999"}, "timeLimitInSeconds": {"5"}}); p.StatusCode != http.StatusBadRequest || !strings.Contains(p.body, "capture.filters[0]") {
		t.Fatalf("a bad filter: %s\n%s", p.Status, p.body)
	}
	if p := b.post("/responders", url.Values{"name": {"pc"}, "filters": {"protocol=UDP,remotePort=7100"}, "timeLimitInSeconds": {"5"}, "preTriggerSeconds": {"10"}}); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("create responder: %s\n%s", p.Status, p.body)
	}
	if p := b.get("/responders/pc"); p.StatusCode != 200 || !strings.Contains(p.body, "PSAzureFunction-HOST") || !strings.Contains(p.body, "No runs yet") {
		t.Fatalf("the responder's page: %s\n%s", p.Status, p.body)
	}

	b.get("/action-groups")
	if p := b.post("/action-groups", url.Values{"name": {"capture"}, "webhooks": {"no equals sign"}}); p.StatusCode != http.StatusBadRequest || !strings.Contains(p.body, "webhookReceivers[0]") {
		t.Fatalf("a bad receiver: %s\n%s", p.Status, p.body)
	}
	p = b.post("/action-groups", url.Values{"name": {"capture"}, "responder": {"pc"}})
	if p.StatusCode != 200 || !strings.Contains(p.body, `id="signing-secret"`) || !strings.Contains(p.body, `data-group="capture"`) {
		t.Fatalf("create action group: %s\n%s", p.Status, p.body)
	}
	g, err := f.monitor.FindActionGroup(f.adminCtx, "capture")
	if err != nil || len(g.ResponderReceivers) != 1 {
		t.Fatalf("the action group: %+v %v", g, err)
	}

	b.get("/storage")
	dir := t.TempDir()
	if p := b.post("/storage", url.Values{"name": {"archive"}, "url": {"ftp://nowhere"}}); p.StatusCode != http.StatusBadRequest {
		t.Fatalf("a bad storage URL: %s\n%s", p.Status, p.body)
	}
	if p := b.post("/storage", url.Values{"name": {"archive"}, "url": {"file://" + dir}}); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("add storage: %s\n%s", p.Status, p.body)
	}
	if p := b.get("/storage"); !strings.Contains(p.body, `data-account="archive"`) {
		t.Fatalf("storage page: %s", p.body)
	}

	p = b.get("/access")
	if p.StatusCode != 200 || !strings.Contains(p.body, `data-principal="olga"`) {
		t.Fatalf("access as an Owner: %s\n%s", p.Status, p.body)
	}
	if p := b.post("/access/users", url.Values{"name": {"bob"}, "password": {"short"}}); p.StatusCode != http.StatusBadRequest || !strings.Contains(p.body, "password") {
		t.Fatalf("a short password: %s\n%s", p.Status, p.body)
	}
	if p := b.post("/access/users", url.Values{"name": {"bob"}, "password": {"a long enough password for bob"}}); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("create user: %s\n%s", p.Status, p.body)
	}
	b.get("/access")
	if p := b.post("/access/assignments", url.Values{"principal": {"bob"}, "role": {"Reader"}, "scope": {"location:westeurope"}}); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("assign: %s\n%s", p.Status, p.body)
	}
	as, err := f.ids.FindRoleAssignments(f.adminCtx, "bob")
	if err != nil || len(as) != 1 || as[0].Role != tripcap.RoleReader || as[0].Scope != "location:westeurope" {
		t.Fatalf("bob's assignments: %+v %v", as, err)
	}
	p = b.post("/access/service-principals", url.Values{"name": {"ci"}})
	if p.StatusCode != 200 || !strings.Contains(p.body, `id="client-secret"`) {
		t.Fatalf("create service principal: %s\n%s", p.Status, p.body)
	}

	// The audit log shows what the console did.
	p = b.get("/audit?action=console")
	if p.StatusCode != 200 || !strings.Contains(p.body, "console/responders") {
		t.Fatalf("the audit log: %s\n%s", p.Status, p.body)
	}
	if p := b.get("/audit?since=yesterday"); p.StatusCode != http.StatusBadRequest || !strings.Contains(p.body, "since:") {
		t.Fatalf("a bad since: %s", p.Status)
	}
}

// TestReaderSeesNoControlsAndIsRefused: a Reader sees responders, action
// groups and storage without create or delete controls, is not offered
// the audit log or access, and each post sent anyway is refused.
func TestReaderSeesNoControlsAndIsRefused(t *testing.T) {
	f := newFixtureWith(t, fixtureOptions{audited: true})
	owner := f.browser(t)
	owner.signIn("olga", f.user(t, "olga", tripcap.RoleOwner))
	owner.get("/responders")
	owner.post("/responders", url.Values{"name": {"pc"}, "timeLimitInSeconds": {"5"}})
	owner.get("/action-groups")
	owner.post("/action-groups", url.Values{"name": {"capture"}, "responder": {"pc"}})
	g, err := f.monitor.FindActionGroup(f.adminCtx, "capture")
	if err != nil {
		t.Fatal(err)
	}

	b := f.browser(t)
	b.signIn("rita", f.user(t, "rita", tripcap.RoleReader))
	home := b.get("/")
	for _, nav := range []string{`href="/audit"`, `href="/access"`} {
		if strings.Contains(home.body, nav) {
			t.Errorf("a Reader's navigation offers %s", nav)
		}
	}
	for _, path := range []string{"/rules", "/alerts", "/responders", "/responders/pc", "/action-groups", "/storage"} {
		p := b.get(path)
		if p.StatusCode != 200 {
			t.Errorf("GET %s as a Reader: %s", path, p.Status)
			continue
		}
		for _, control := range []string{"<form method=\"post\" action=\"/responders\"", `id="group-form"`, "Add a storage account", `/delete"`, "New rule"} {
			if strings.Contains(p.body, control) {
				t.Errorf("GET %s: a Reader is offered %q", path, control)
			}
		}
	}
	for _, path := range []string{"/audit", "/access"} {
		if p := b.get(path); p.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s as a Reader: %s, want 403", path, p.Status)
		}
	}
	b.get("/rules")
	for path, form := range map[string]url.Values{
		"/responders":                        {"name": {"x"}},
		"/responders/pc/delete":              nil,
		"/action-groups":                     {"name": {"x"}, "responder": {"pc"}},
		"/action-groups/" + g.ID + "/delete": nil,
		"/storage":                           {"name": {"x"}, "url": {"file://" + t.TempDir()}},
		"/access/users":                      {"name": {"x"}, "password": {"a long enough password"}},
		"/access/assignments":                {"principal": {"rita"}, "role": {"Owner"}, "scope": {"*"}},
	} {
		if p := b.post(path, form); p.StatusCode != http.StatusForbidden {
			t.Errorf("a Reader's POST %s: %s, want 403", path, p.Status)
		}
	}
	if _, err := f.monitor.FindActionGroup(f.adminCtx, "capture"); err != nil {
		t.Errorf("the action group after a Reader's delete: %v", err)
	}
	if as, _ := f.ids.FindRoleAssignments(f.adminCtx, "rita"); len(as) != 1 || as[0].Role != tripcap.RoleReader {
		t.Errorf("rita's roles after her post: %+v", as)
	}
}

// TestAlertTimelineAndIncident: a rule fires on real points; the alerts
// page lists it with the value and window that fired, on the timeline;
// its incident page shows the transitions and the metric series; a breach
// while the rule is silenced is recorded as muted.
func TestAlertTimelineAndIncident(t *testing.T) {
	f := newFixture(t)
	jt, err := f.svc.CreateJoinToken(f.adminCtx, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.svc.Enroll(f.adminCtx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1", Location: "westeurope"})
	if err != nil {
		t.Fatal(err)
	}
	agentP, err := f.svc.Authenticate(context.Background(), resp.Credential)
	if err != nil {
		t.Fatal(err)
	}
	agent := tripcap.NewContextWithPrincipal(context.Background(), agentP)
	rule := &tripcap.AlertRule{Name: "egress", Scopes: []tripcap.Scope{"host:web1"}, EvaluationFrequency: "PT1S", WindowSize: "PT5S",
		Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{
			MetricCriterion: tripcap.MetricCriterion{MetricName: "Network Out Total", TimeAggregation: tripcap.AggregationAverage},
			Operator:        tripcap.OperatorGreaterThan, Threshold: 500}}}}}
	if rule, err = f.monitor.CreateRule(f.adminCtx, rule); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-40 * time.Second).Truncate(time.Second)
	send := func(from time.Time, v float64, n int) {
		var batch tripcap.MetricBatch
		for i := range n {
			batch.Points = append(batch.Points, tripcap.MetricPoint{Metric: tripcap.MetricNetworkOutBytes, Time: from.Add(time.Duration(i) * time.Second), Value: v})
		}
		res, err := f.monitor.IngestMetrics(agent, batch)
		if err != nil || res.Stored != n {
			t.Fatalf("ingest: %+v %v", res, err)
		}
	}
	// A new instance starts at the newest point it hears of: each batch
	// is evaluated before the next is sent.
	evaluated := func() uint64 { return f.monitor.Stats().Alerting.Evaluations }
	sendEvaluated := func(from time.Time, v float64, n int) {
		before := evaluated()
		send(from, v, n)
		for deadline := time.Now().Add(5 * time.Second); evaluated() == before; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the batch was not evaluated")
			}
		}
	}
	sendEvaluated(start, 10, 10)
	sendEvaluated(start.Add(10*time.Second), 1000, 10)
	sendEvaluated(start.Add(20*time.Second), 10, 10)
	var alerts []*tripcap.Alert
	deadline := time.Now().Add(10 * time.Second)
	for len(alerts) == 0 || alerts[0].MonitorCondition != tripcap.ConditionResolved {
		if time.Now().After(deadline) {
			t.Fatalf("no resolved alert: %+v; %+v", alerts, f.monitor.Stats())
		}
		time.Sleep(20 * time.Millisecond)
		alerts, _ = f.monitor.FindAlerts(f.adminCtx, controlplaneQuery())
	}
	a := alerts[0]

	b := f.browser(t)
	b.signIn("rita", f.user(t, "rita", tripcap.RoleReader))
	p := b.get("/alerts")
	if p.StatusCode != 200 || !strings.Contains(p.body, `data-alert="`+a.ID+`"`) || !strings.Contains(p.body, "&gt; 500</td>") ||
		!strings.Contains(p.body, `<svg class="timeline"`) {
		t.Fatalf("the alerts page: %s\n%s", p.Status, p.body)
	}
	p = b.get("/alerts/" + a.ID)
	if p.StatusCode != 200 || !strings.Contains(p.body, `id="incident-events"`) || !strings.Contains(p.body, "Resolved") || !strings.Contains(p.body, "The window that fired began") {
		t.Fatalf("the incident page: %s\n%s", p.Status, p.body)
	}
	p = b.get("/alerts/" + a.ID + "/series")
	var series struct {
		Series struct {
			Points []struct {
				Value *float64 `json:"value"`
			} `json:"points"`
		} `json:"series"`
		Events    []struct{ Kind string } `json:"events"`
		Threshold *float64                `json:"threshold"`
	}
	if p.StatusCode != 200 || json.Unmarshal([]byte(p.body), &series) != nil || series.Threshold == nil || *series.Threshold != 500 || len(series.Events) < 3 {
		t.Fatalf("the incident's series: %s %s", p.Status, p.body)
	}
	seen := 0
	for _, pt := range series.Series.Points {
		if pt.Value != nil {
			seen++
		}
	}
	if seen < 20 {
		t.Errorf("the incident's series has %d points with values, want the 30 seconds sent", seen)
	}

	// Silenced, the next breach is recorded as muted.
	if _, err := f.monitor.CreateSilence(f.adminCtx, &tripcap.Silence{Rule: rule.ID, EndsAt: time.Now().Add(time.Hour), Comment: "maintenance"}); err != nil {
		t.Fatal(err)
	}
	sendEvaluated(start.Add(30*time.Second), 1000, 10)
	deadline = time.Now().Add(10 * time.Second)
	for {
		alerts, _ = f.monitor.FindAlerts(f.adminCtx, controlplaneQuery())
		if len(alerts) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no second alert: %d", len(alerts))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !alerts[0].Silenced {
		t.Fatalf("the breach under a silence: %+v", alerts[0])
	}
	if p := b.get("/alerts"); !strings.Contains(p.body, `data-alert="`+alerts[0].ID+`" data-muted="true"`) {
		t.Fatalf("the alerts page does not show the muted alert: %s", p.body)
	}
	if p := b.get("/alerts/" + alerts[0].ID); !strings.Contains(p.body, "muted by a silence") {
		t.Fatalf("the muted alert's page: %s", p.body)
	}
}
