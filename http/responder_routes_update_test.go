package http_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
)

// PUT /api/v1/responders/{responder}: a whole new set of settings, checked
// as for create, conditional on If-Match; GET and the answers carry the
// ETag it is checked against.
func TestUpdateResponderRoute(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	created, err := f.admin.CreateResponder(ctx, &tripcap.Responder{Name: "pc", Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	key, err := f.admin.CreateResponderKey(ctx, "pc", "")
	if err != nil {
		t.Fatal(err)
	}

	r := f.request(t, "GET", "/api/v1/responders/pc", f.token, nil)
	if etag := r.Header.Get("ETag"); r.StatusCode != 200 || etag != `W/"1"` || etag != created.ETag() {
		t.Fatalf("GET: %s ETag %q", r.Status, etag)
	}
	if r := f.request(t, "GET", "/api/v1/responders/pc", f.token, nil, "If-None-Match", `W/"1"`); r.StatusCode != 304 {
		t.Fatalf("GET If-None-Match current: %s", r.Status)
	}

	// Through the client, with the ETag read.
	upd, err := f.admin.UpdateResponder(ctx, "pc", &tripcap.Responder{Name: "pc", Limit: 9, CooldownMinutes: 2}, created.ETag())
	if err != nil {
		t.Fatal(err)
	}
	if upd.ID != created.ID || upd.Version != 2 || upd.Limit != 9 || upd.CooldownMinutes != 2 || !upd.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("updated: %+v", upd)
	}
	// A stale ETag: 412, and the client gives back the domain error.
	_, err = f.admin.UpdateResponder(ctx, "pc", &tripcap.Responder{Name: "pc", Limit: 1}, created.ETag())
	if tripcap.ErrorCode(err) != tripcap.EPRECONDITION {
		t.Fatalf("stale ETag: %v", err)
	}
	r = f.request(t, "PUT", "/api/v1/responders/"+created.ID, f.token, strings.NewReader(`{"limit":1}`), "If-Match", `W/"1"`)
	if r.StatusCode != 412 || errorBody(t, r).Code != tripcap.EPRECONDITION {
		t.Fatalf("PUT stale If-Match: %s", r.Status)
	}

	// Raw: the answer's ETag, and a renaming.
	r = f.request(t, "PUT", "/api/v1/responders/"+created.ID, f.token, strings.NewReader(`{"name":"pc2","limit":3}`), "If-Match", `W/"2"`)
	if r.StatusCode != 200 || r.Header.Get("ETag") != `W/"3"` {
		t.Fatalf("PUT: %s ETag %q", r.Status, r.Header.Get("ETag"))
	}
	var got tripcap.Responder
	if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "pc2" || got.Limit != 3 || got.Version != 3 {
		t.Fatalf("PUT answer: %+v", got)
	}
	// The key still works, at the new name's URL.
	r = f.request(t, "POST", "/api/functions/pc2?code="+key.Secret, "", strings.NewReader(alertmanagerBody("web1:9100", "fp1")))
	if r.StatusCode != 202 {
		t.Fatalf("function call after rename: %s", r.Status)
	}
	runsOf(t, f, "pc2", 1)

	for _, c := range []struct {
		name, path, body string
		status           int
		code, msg        string
	}{
		{"invalid setting", "/api/v1/responders/pc2", `{"nameConflict":"merge"}`, 400, tripcap.EINVALID, "nameConflict"},
		{"unknown field", "/api/v1/responders/pc2", `{"limits":3}`, 400, tripcap.EINVALID, "limits"},
		{"unknown action group", "/api/v1/responders/pc2", `{"notifyActionGroup":"nobody"}`, 400, tripcap.EINVALID, "notifyActionGroup"},
		{"unknown responder", "/api/v1/responders/nobody", `{}`, 404, tripcap.ENOTFOUND, "nobody"},
	} {
		r := f.request(t, "PUT", c.path, f.token, strings.NewReader(c.body))
		if r.StatusCode != c.status {
			t.Errorf("%s: %s, want %d", c.name, r.Status, c.status)
			continue
		}
		if e := errorBody(t, r); e.Code != c.code || !strings.Contains(e.Message, c.msg) {
			t.Errorf("%s: %+v, want %s mentioning %q", c.name, e, c.code, c.msg)
		}
	}
	// An agent may not change responders.
	if r := f.request(t, "PUT", "/api/v1/responders/pc2", "", strings.NewReader(`{}`)); r.StatusCode != 401 {
		t.Fatalf("PUT without a credential: %s", r.Status)
	}
	if _, err := f.agent.UpdateResponder(ctx, "pc2", &tripcap.Responder{}, ""); tripcap.ErrorCode(err) != tripcap.EFORBIDDEN && tripcap.ErrorCode(err) != tripcap.EUNAUTHORIZED {
		t.Fatalf("agent updated a responder: %v", err)
	}
}
