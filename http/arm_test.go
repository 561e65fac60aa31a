package http_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tripcap/tripcap/arm"
	tchttp "github.com/tripcap/tripcap/http"
)

// TestARMMountedBehindAuthentication: the ARM surface refuses callers the
// ARM way (401, ARM's error body, no WWW-Authenticate challenge, the
// request ids) and lets an authenticated one through to its operations.
func TestARMMountedBehindAuthentication(t *testing.T) {
	f := newFixtureWith(t, fixtureOptions{arm: true})
	path := "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Network/locations/local/operations/bm90?api-version=2024-05-01"
	for _, c := range []struct {
		name, token string
		status      int
		code        string
	}{
		{"no token", "", 401, "AuthenticationFailed"},
		{"bad token", "tc_not-a-token", 401, "InvalidAuthenticationToken"},
		{"admin", f.token, 404, "OperationNotFound"},
	} {
		resp := f.request(t, "GET", path, c.token, nil)
		var body arm.ErrorBody
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error == nil {
			t.Fatalf("%s: %d, not ARM's error body: %v", c.name, resp.StatusCode, err)
		}
		if resp.StatusCode != c.status || body.Error.Code != c.code || body.Error.Message == "" {
			t.Errorf("%s: %d %+v, want %d %s", c.name, resp.StatusCode, body.Error, c.status, c.code)
		}
		if resp.Header.Get("WWW-Authenticate") != "" || resp.Header.Get("x-ms-request-id") == "" || resp.Header.Get("x-ms-correlation-request-id") == "" {
			t.Errorf("%s: headers %v", c.name, resp.Header)
		}
	}
}

// TestARMPatternsBesideTokenEndpoints: the ARM patterns coexist in one
// ServeMux with the tenant token endpoints and the console's "/" (Go's mux
// panics on overlapping patterns neither more specific).
func TestARMPatternsBesideTokenEndpoints(t *testing.T) {
	mux := http.NewServeMux()
	h := http.NotFoundHandler()
	for _, p := range append(arm.Patterns(), "POST /{tenant}/oauth2/token", "POST /{tenant}/oauth2/v2.0/token",
		"GET /{tenant}/v2.0/.well-known/openid-configuration", "GET /{tenant}/discovery/v2.0/keys", "/") {
		mux.Handle(p, h)
	}
}

// TestARMCallsAudited: a mutating ARM call is in the audit log under its
// operation id, with the resource it named.
func TestARMCallsAudited(t *testing.T) {
	f := newFixtureWith(t, fixtureOptions{arm: true, audited: true})
	path := "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/Ops/providers/Microsoft.Network/networkWatchers/mine?api-version=2024-05-01"
	resp := f.request(t, "PUT", path, f.token, strings.NewReader(`{"location":"westus2"}`))
	if resp.StatusCode != 201 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	f.rec.Flush(t.Context())
	got, err := f.admin.ListAuditEvents(t.Context(), tchttp.AuditQuery{Action: "NetworkWatchers_CreateOrUpdate"})
	if err != nil {
		t.Fatal(err)
	}
	want := "subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/Ops/providers/Microsoft.Network/networkWatchers/mine"
	if len(got) != 1 || got[0].Resource != want || got[0].Status != 201 {
		t.Fatalf("audit events %+v; want one for %s", got, want)
	}
}
