package console_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/alerting"
)

// TestRulesCreateFromSeedPresetEditToggleSilence walks the rules page as a
// Monitoring Contributor: the seed's preset fills the form, the rule is
// created, edited, disabled, enabled and silenced; bad input comes back
// with the field named.
func TestRulesCreateFromSeedPresetEditToggleSilence(t *testing.T) {
	f := newFixture(t)
	pw := f.user(t, "mona", tripcap.RoleMonitoringContributor)
	b := f.browser(t)
	b.signIn("mona", pw)

	p := b.get("/rules/new?preset=seed")
	if p.StatusCode != 200 || !strings.Contains(p.body, `value="3"`) || !strings.Contains(p.body, `value="PT5M"`) ||
		!strings.Contains(p.body, `<option value="Network Out Total" selected>`) {
		t.Fatalf("the seed preset's form: %s\n%s", p.Status, p.body)
	}
	form := url.Values{"name": {"egress"}, "severity": {"3"}, "scopes": {"*"}, "metric": {"Network Out Total"},
		"aggregation": {"Average"}, "operator": {"GreaterThan"}, "threshold": {"3"}, "evaluationFrequency": {"PT1M"},
		"windowSize": {"PT5M"}, "enabled": {"true"}, "autoMitigate": {"true"}}
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("windowSize", "PT0S")
	if p := b.post("/rules/new", bad); p.StatusCode != http.StatusBadRequest || !strings.Contains(p.body, "windowSize:") {
		t.Fatalf("a bad window: %s\n%s", p.Status, p.body)
	}
	if p := b.post("/rules/new", form); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %s\n%s", p.Status, p.body)
	}
	rule, err := f.monitor.FindRule(f.adminCtx, "egress")
	if err != nil || rule.Criteria.AllOf[0].Static.Threshold != 3 || !rule.IsEnabled() {
		t.Fatalf("the rule: %+v, %v", rule, err)
	}
	p = b.get("/rules")
	if !strings.Contains(p.body, `data-rule="egress"`) || !strings.Contains(p.body, "Average Network Out Total &gt; 3 over PT5M, every PT1M") {
		t.Fatalf("the rules page: %s", p.body)
	}

	// Edit: a new threshold, with the version read.
	b.get("/rules/" + rule.ID)
	form.Set("threshold", "5")
	form.Set("etag", rule.ETag())
	if p := b.post("/rules/"+rule.ID, form); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("update: %s\n%s", p.Status, p.body)
	}
	// The same stale version again is refused as a conflict, on the form.
	if p := b.post("/rules/"+rule.ID, form); p.StatusCode != http.StatusPreconditionFailed || !strings.Contains(p.body, `id="rule-form"`) {
		t.Fatalf("a stale update: %s", p.Status)
	}

	b.get("/rules")
	if p := b.post("/rules/"+rule.ID+"/enabled", url.Values{"enabled": {"false"}}); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("disable: %s\n%s", p.Status, p.body)
	}
	if r, _ := f.monitor.FindRule(f.adminCtx, "egress"); r.IsEnabled() || r.Criteria.AllOf[0].Static.Threshold != 5 {
		t.Fatalf("after disable: enabled %v threshold %v", r.IsEnabled(), r.Criteria.AllOf[0].Static.Threshold)
	}
	b.post("/rules/"+rule.ID+"/enabled", url.Values{"enabled": {"true"}})
	if r, _ := f.monitor.FindRule(f.adminCtx, "egress"); !r.IsEnabled() {
		t.Fatal("enable did not")
	}

	if p := b.post("/rules/"+rule.ID+"/silence", url.Values{"for": {"1h"}, "comment": {""}}); p.StatusCode != http.StatusBadRequest || !strings.Contains(p.body, "comment") {
		t.Fatalf("a silence without a reason: %s\n%s", p.Status, p.body)
	}
	if p := b.post("/rules/"+rule.ID+"/silence", url.Values{"for": {"1h"}, "comment": {"maintenance"}}); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("silence: %s\n%s", p.Status, p.body)
	}
	ss, _ := f.monitor.FindSilences(f.adminCtx, false)
	if len(ss) != 1 || ss[0].Rule != rule.ID || ss[0].CreatedBy != "mona" || ss[0].EndsAt.Sub(ss[0].StartsAt) != time.Hour {
		t.Fatalf("silences: %+v", ss)
	}
	if p := b.get("/rules"); !strings.Contains(p.body, "Silenced until") || !strings.Contains(p.body, "maintenance") {
		t.Fatalf("the rules page does not show the silence: %s", p.body)
	}
	b.post("/silences/"+ss[0].ID+"/expire", nil)
	if ss, _ := f.monitor.FindSilences(f.adminCtx, false); len(ss) != 0 {
		t.Fatalf("silences after expiring: %d", len(ss))
	}
	b.get("/rules")
	if p := b.post("/rules/"+rule.ID+"/delete", nil); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %s", p.Status)
	}
	if _, err := f.monitor.FindRule(f.adminCtx, "egress"); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Fatalf("after delete: %v", err)
	}
}

// TestRulesReaderSeesNoControlsAndIsRefused: a Reader sees the rules but
// no create, edit, enable, silence or delete control, and the same posts,
// sent anyway, are refused by the Monitor.
func TestRulesReaderSeesNoControlsAndIsRefused(t *testing.T) {
	f := newFixture(t)
	rule, err := tripcap.PresetAlertRule(tripcap.PresetSeed, "seed", []tripcap.Scope{tripcap.ScopeAll})
	if err != nil {
		t.Fatal(err)
	}
	if rule, err = f.monitor.CreateRule(f.adminCtx, rule); err != nil {
		t.Fatal(err)
	}
	pw := f.user(t, "rita", tripcap.RoleReader)
	b := f.browser(t)
	b.signIn("rita", pw)
	p := b.get("/rules")
	if p.StatusCode != 200 || !strings.Contains(p.body, `data-rule="seed"`) {
		t.Fatalf("rules as a Reader: %s\n%s", p.Status, p.body)
	}
	for _, control := range []string{"New rule", "/enabled", "/silence", "/delete", "data-preset"} {
		if strings.Contains(p.body, control) {
			t.Errorf("a Reader is offered %q", control)
		}
	}
	if p := b.get("/rules/" + rule.ID); strings.Contains(p.body, `id="rule-save"`) {
		t.Error("a Reader is offered to save the rule")
	}
	for path, form := range map[string]url.Values{
		"/rules/new": {"name": {"x"}, "severity": {"3"}, "scopes": {"*"}, "metric": {"Network Out Total"}, "aggregation": {"Average"},
			"operator": {"GreaterThan"}, "threshold": {"1"}, "evaluationFrequency": {"PT1M"}, "windowSize": {"PT5M"}},
		"/rules/" + rule.ID + "/enabled": {"enabled": {"false"}},
		"/rules/" + rule.ID + "/silence": {"for": {"1h"}, "comment": {"x"}},
		"/rules/" + rule.ID + "/delete":  nil,
	} {
		if p := b.post(path, form); p.StatusCode != http.StatusForbidden {
			t.Errorf("a Reader's POST %s: %s, want 403", path, p.Status)
		}
	}
	if r, err := f.monitor.FindRule(f.adminCtx, rule.ID); err != nil || !r.IsEnabled() {
		t.Fatalf("the rule after a Reader's posts: %v %v", r, err)
	}
}

// TestRulePreviewAndCheck: the editor's preview replays the form's rule
// on a host (JSON for the chart), and the check names the field at fault.
func TestRulePreviewAndCheck(t *testing.T) {
	f := newFixture(t)
	f.host(t, "web1", "westeurope", nil)
	pw := f.user(t, "rita", tripcap.RoleReader)
	b := f.browser(t)
	b.signIn("rita", pw)
	b.get("/rules/new")
	form := url.Values{"name": {"x"}, "severity": {"3"}, "scopes": {"*"}, "metric": {"Network Out Total"}, "aggregation": {"Average"},
		"operator": {"GreaterThan"}, "threshold": {"1"}, "evaluationFrequency": {"PT1M"}, "windowSize": {"PT5M"}, "host": {"web1"}}
	p := b.postJSON("/rules/preview", form)
	var rp alerting.Replay
	if p.StatusCode != 200 || json.Unmarshal([]byte(p.body), &rp) != nil || len(rp.Evaluations) != 60 || rp.Host != "web1" || rp.Fired != 0 {
		t.Fatalf("preview: %s %s", p.Status, p.body)
	}
	form.Set("evaluationFrequency", "every minute")
	p = b.postJSON("/rules/check", form)
	var fe struct{ Field, Message string }
	if p.StatusCode != http.StatusOK || json.Unmarshal([]byte(p.body), &fe) != nil || fe.Field != "evaluationFrequency" {
		t.Fatalf("check of a bad frequency: %s %s", p.Status, p.body)
	}
	form.Set("evaluationFrequency", "PT1M")
	if p := b.postJSON("/rules/check", form); p.StatusCode != 200 || strings.Contains(p.body, "message") {
		t.Fatalf("check of a good form: %s %s", p.Status, p.body)
	}
	form.Set("host", "nowhere")
	if p := b.postJSON("/rules/preview", form); p.StatusCode != http.StatusNotFound {
		t.Fatalf("preview on an unknown host: %s %s", p.Status, p.body)
	}
}
