package http_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// PUT /api/v1/alert-rules/{rule} and /api/v1/action-groups/{group}: If-Match
// is required (412 without it), a stale ETag is 412,
// and answers carry the new ETag.
func TestUpdateRuleAndGroupRoutes(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	g, err := f.admin.CreateActionGroup(ctx, &tripcap.ActionGroup{Name: "ops", WebhookReceivers: []tripcap.WebhookReceiver{{Name: "h", ServiceURI: "https://hooks.example.invalid/a"}}})
	if err != nil {
		t.Fatal(err)
	}
	rule, err := tripcap.PresetAlertRule(tripcap.PresetSeed, "seed", []tripcap.Scope{"*"}, "ops")
	if err != nil {
		t.Fatal(err)
	}
	created, err := f.admin.CreateAlertRule(ctx, rule)
	if err != nil {
		t.Fatal(err)
	}
	r := f.request(t, "GET", "/api/v1/alert-rules/seed", f.token, nil)
	if r.StatusCode != 200 || r.Header.Get("ETag") != `W/"1"` {
		t.Fatalf("GET rule: %s ETag %q", r.Status, r.Header.Get("ETag"))
	}
	body, _ := json.Marshal(created)
	r = f.request(t, "PUT", "/api/v1/alert-rules/seed", f.token, strings.NewReader(string(body)))
	if r.StatusCode != 412 || !strings.Contains(errorBody(t, r).Message, "If-Match") {
		t.Fatalf("PUT without If-Match: %s", r.Status)
	}
	created.Criteria.AllOf[0].Static.Threshold = 42
	up, err := f.admin.UpdateAlertRule(ctx, "seed", created, created.ETag())
	if err != nil {
		t.Fatal(err)
	}
	if up.ID != created.ID || up.Version != 2 || up.Criteria.AllOf[0].Static.Threshold != 42 {
		t.Fatalf("updated rule: %+v", up)
	}
	if _, err := f.admin.UpdateAlertRule(ctx, "seed", created, created.ETag()); tripcap.ErrorCode(err) != tripcap.EPRECONDITION {
		t.Fatalf("stale ETag: %v", err)
	}
	r = f.request(t, "PUT", "/api/v1/alert-rules/"+created.ID, f.token, strings.NewReader(string(body)), "If-Match", "*")
	if r.StatusCode != 200 || r.Header.Get("ETag") != `W/"3"` {
		t.Fatalf("PUT If-Match *: %s ETag %q", r.Status, r.Header.Get("ETag"))
	}

	g.SigningSecret = ""
	g.Enabled = new(false)
	ug, err := f.admin.UpdateActionGroup(ctx, "ops", g, g.ETag())
	if err != nil {
		t.Fatal(err)
	}
	if ug.IsEnabled() || ug.SigningSecret != "" || ug.Version != 2 {
		t.Fatalf("updated group: %+v", ug)
	}
	r = f.request(t, "PUT", "/api/v1/action-groups/ops", f.token, strings.NewReader(`{"webhookReceivers":[{"name":"h","serviceUri":"https://x.invalid/"}]}`), "If-Match", `W/"1"`)
	if r.StatusCode != 412 {
		t.Fatalf("PUT group stale If-Match: %s", r.Status)
	}
}

// POST, GET and DELETE /api/v1/silences.
func TestSilenceRoutes(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	_, err := f.admin.CreateSilence(ctx, &tripcap.Silence{EndsAt: time.Now().Add(time.Hour), Comment: "x"})
	if tripcap.ErrorCode(err) != tripcap.EINVALID {
		t.Fatalf("silence without matchers: %v", err)
	}
	_, err = f.admin.CreateSilence(ctx, &tripcap.Silence{Host: "web1", EndsAt: time.Now().Add(time.Hour)})
	if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(err.Error(), "comment") {
		t.Fatalf("silence without comment: %v", err)
	}
	_, err = f.admin.CreateSilence(ctx, &tripcap.Silence{Labels: []tripcap.Scope{"host:web1"}, EndsAt: time.Now().Add(time.Hour), Comment: "x"})
	if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(err.Error(), "labels[0]") {
		t.Fatalf("silence with a non-label selector: %v", err)
	}
	sl, err := f.admin.CreateSilence(ctx, &tripcap.Silence{Host: "web1", Labels: []tripcap.Scope{"label:role=web"}, EndsAt: time.Now().Add(2 * time.Hour), Comment: "upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	if sl.Host != f.host.ID || sl.CreatedBy != "admin" || sl.ID == "" {
		t.Fatalf("created silence: %+v", sl)
	}
	list, err := f.admin.ListSilences(ctx, false)
	if err != nil || len(list) != 1 || list[0].ID != sl.ID {
		t.Fatalf("list: %v %v", list, err)
	}
	exp, err := f.admin.ExpireSilence(ctx, sl.ID)
	if err != nil || exp.EndsAt.After(time.Now()) {
		t.Fatalf("expire: %+v %v", exp, err)
	}
	if list, _ := f.admin.ListSilences(ctx, false); len(list) != 0 {
		t.Fatalf("list after expiry: %d", len(list))
	}
	if list, _ := f.admin.ListSilences(ctx, true); len(list) != 1 {
		t.Fatalf("list all after expiry: %d", len(list))
	}
	if _, err := f.admin.ExpireSilence(ctx, tripcap.NewID()); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Fatalf("expire unknown: %v", err)
	}
}
