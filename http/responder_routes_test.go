package http_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/responder/payload"
)

func alertmanagerBody(instance, fingerprint string) string {
	return fmt.Sprintf(`{"receiver":"tripcap","status":"firing","version":"4","groupKey":"{}","alerts":[{"status":"firing",
		"labels":{"alertname":"NetworkOutHigh","instance":%q},"annotations":{},"startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":%q}]}`,
		instance, fingerprint)
}

// runsOf waits until the responder has n runs, none pending.
func runsOf(t *testing.T, f *fixture, name string, n int) []*tripcap.ResponderRun {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runs, err := f.admin.ListResponderRuns(t.Context(), name, 0)
		if err != nil {
			t.Fatal(err)
		}
		settled := len(runs) == n
		for _, r := range runs {
			settled = settled && r.Decision != tripcap.DecisionPending
		}
		if settled {
			return runs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d runs, want %d settled", name, len(runs), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFunctionEndpoint(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.admin.CreateResponder(ctx, &tripcap.Responder{Name: "pc"}); err != nil {
		t.Fatal(err)
	}
	key, err := f.admin.CreateResponderKey(ctx, "pc", "")
	if err != nil {
		t.Fatal(err)
	}
	if key.Name != "default" || key.Secret == "" {
		t.Fatalf("key: %+v", key)
	}
	keys, err := f.admin.ListResponderKeys(ctx, "pc")
	if err != nil || len(keys) != 1 || keys[0].Secret != "" {
		t.Fatalf("key listing: %+v %v", keys, err)
	}
	post := func(path, body string, hdr ...string) (int, tchttp.ErrorDetail, tchttp.InvokeResult) {
		t.Helper()
		r := f.request(t, "POST", path, "", strings.NewReader(body), hdr...)
		var res tchttp.InvokeResult
		if r.StatusCode == 202 {
			if err := json.NewDecoder(r.Body).Decode(&res); err != nil {
				t.Fatal(err)
			}
			return r.StatusCode, tchttp.ErrorDetail{}, res
		}
		return r.StatusCode, errorBody(t, r), res
	}
	good := alertmanagerBody("web1:9100", "fp1")

	// Refused without starting or recording anything.
	for _, c := range []struct {
		name, path, body string
		hdr              []string
		status           int
		msg              string
	}{
		{"no key", "/api/functions/pc", good, nil, 401, "function key"},
		{"wrong key", "/api/functions/pc?code=tc_fn_nope", good, nil, 401, "function key"},
		{"wrong header key", "/api/functions/pc", good, []string{"x-functions-key", "tc_fn_nope"}, 401, "function key"},
		{"unknown function", "/api/functions/nobody?code=" + key.Secret, good, nil, 401, "function key"},
		{"malformed JSON", "/api/functions/pc?code=" + key.Secret, `{"alerts":[`, nil, 400, "malformed JSON"},
		{"unknown schema", "/api/functions/pc?code=" + key.Secret, `{"schemaId":"Microsoft.Insights/LogAlert","data":{}}`, nil, 400, "expected one of"},
		{"not an alert", "/api/functions/pc?code=" + key.Secret, `{"text":"hello"}`, nil, 400, "Alertmanager"},
		{"oversized", "/api/functions/pc?code=" + key.Secret, `{"targetVM":"` + strings.Repeat("x", payload.MaxBodyBytes) + `"}`, nil, 413, "larger than"},
	} {
		status, e, _ := post(c.path, c.body, c.hdr...)
		if status != c.status || !strings.Contains(e.Message, c.msg) {
			t.Errorf("%s: %d %+v, want %d mentioning %q", c.name, status, e, c.status, c.msg)
		}
	}
	if runs, err := f.admin.ListResponderRuns(ctx, "pc", 0); err != nil || len(runs) != 0 {
		t.Fatalf("refused requests were recorded: %d %v", len(runs), err)
	}
	if caps, err := f.admin.ListCaptures(ctx, "", ""); err != nil || len(caps) != 0 {
		t.Fatalf("refused requests started captures: %d %v", len(caps), err)
	}

	// Accepted: 202 with the run, the capture on the alert's host.
	status, _, res := post("/api/functions/pc", good, "x-functions-key", key.Secret)
	if status != 202 || len(res.Runs) != 1 || res.Runs[0].Decision != tripcap.DecisionPending {
		t.Fatalf("accepted: %d %+v", status, res)
	}
	// An alert whose target matches no host: accepted, recorded unresolved.
	status, _, _ = post("/api/functions/pc?code="+key.Secret, alertmanagerBody("10.99.0.1:9100", "fp2"))
	if status != 202 {
		t.Fatalf("unresolvable target: %d", status)
	}
	runs := runsOf(t, f, "pc", 2)
	byDecision := map[string]*tripcap.ResponderRun{}
	for _, r := range runs {
		byDecision[r.Decision] = r
	}
	if r := byDecision[tripcap.DecisionStarted]; r == nil || r.Hosts[0].HostName != "web1" || r.Source != "http" || r.Format != string(payload.FormatAlertmanager) {
		b, _ := json.Marshal(runs)
		t.Fatalf("started run: %s", b)
	}
	if r := byDecision[tripcap.DecisionUnresolved]; r == nil || !strings.Contains(r.Reason, "instance=10.99.0.1:9100") {
		b, _ := json.Marshal(runs)
		t.Fatalf("unresolved run: %s", b)
	}
	caps, err := f.admin.ListCaptures(ctx, "", "")
	if err != nil || len(caps) != 1 || caps[0].Name != "PSAzureFunction-"+f.host.Name || caps[0].HostID != f.host.ID {
		t.Fatalf("captures: %+v %v", caps, err)
	}

	// Rotation: the old secret stops working at once.
	nk, err := f.admin.RotateResponderKey(ctx, "pc", "default")
	if err != nil || nk.Secret == key.Secret {
		t.Fatalf("rotate: %+v %v", nk, err)
	}
	if status, _, _ := post("/api/functions/pc?code="+key.Secret, alertmanagerBody("web1", "fp3")); status != 401 {
		t.Fatalf("old key after rotation: %d", status)
	}
	if err := f.admin.RevokeResponderKey(ctx, "pc", "default"); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := post("/api/functions/pc?code="+nk.Secret, alertmanagerBody("web1", "fp3")); status != 401 {
		t.Fatalf("revoked key: %d", status)
	}

	// The admin API needs the admin token, and validates naming the field.
	r := f.request(t, "GET", "/api/v1/responders", "", nil)
	if r.StatusCode != 401 {
		t.Fatalf("anonymous listing: %s", r.Status)
	}
	r = f.request(t, "POST", "/api/v1/responders", f.token, bytes.NewReader([]byte(`{"name":"x","limit":-1}`)))
	if e := errorBody(t, r); r.StatusCode != 400 || !strings.HasPrefix(e.Message, "limit") {
		t.Fatalf("invalid responder: %s %+v", r.Status, e)
	}
	got, err := f.admin.GetResponder(ctx, "pc")
	if err != nil || got.Capture.Name != "PSAzureFunction" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if err := f.admin.DeleteResponder(ctx, "pc"); err != nil {
		t.Fatal(err)
	}
	if rs, err := f.admin.ListResponders(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("after delete: %+v %v", rs, err)
	}
}
