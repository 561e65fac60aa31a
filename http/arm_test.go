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

// TestARMPathsAnyCase: ARM paths are case-insensitive, so /Subscriptions/…,
// …/ResourceGroups/… and …/Providers/… reach the ARM surface (not the
// console or the mux's 404), and so do /subscriptions/{id}/resourceGroups
// and …/providers without a trailing slash (not the mux's HTML 307),
// authenticated and answered in ARM's shape.
func TestARMPathsAnyCase(t *testing.T) {
	f := newFixtureWith(t, fixtureOptions{arm: true})
	const sub = "00000000-0000-0000-0000-000000000000"
	if resp := f.request(t, "PUT", "/subscriptions/"+sub+"/resourceGroups/Ops/providers/Microsoft.Network/networkWatchers/mine?api-version=2024-05-01", f.token, strings.NewReader(`{"location":"westus2"}`)); resp.StatusCode != 201 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range []struct {
		path, token string
		status      int
	}{
		{"/Subscriptions/" + sub + "/ResourceGroups/Ops/Providers/Microsoft.Network/networkWatchers/mine?api-version=2024-05-01", f.token, 200},
		{"/SUBSCRIPTIONS/" + sub + "/resourcegroups/ops/providers/microsoft.network/networkwatchers/MINE?api-version=2024-05-01", f.token, 200},
		{"/subscriptions/" + sub + "/Providers/Microsoft.Network/networkWatchers?api-version=2024-05-01", f.token, 200},
		{"/Subscriptions/" + sub + "/ResourceGroups/Ops/Providers/Microsoft.Network/networkWatchers/mine?api-version=2024-05-01", "", 401},
		{"/Subscriptions?api-version=2022-12-01", "", 401},
		{"/subscriptions/" + sub + "/resourceGroups?api-version=2022-12-01", "", 401},
		{"/subscriptions/" + sub + "/providers?api-version=2022-12-01", "", 401},
		{"/subscriptions/" + sub + "/resourceGroups?api-version=2021-04-01", f.token, 200},
		{"/Subscriptions/" + sub + "/ResourceGroups/ops?api-version=2021-04-01", f.token, 200},
	} {
		req, _ := http.NewRequest("GET", f.url+c.path, nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != c.status || err != nil || resp.Header.Get("x-ms-request-id") == "" {
			t.Errorf("GET %s: %d %v (%v), x-ms-request-id %q; want %d from the ARM surface", c.path, resp.StatusCode, body, err, resp.Header.Get("x-ms-request-id"), c.status)
		}
		if c.status == 401 && body["error"] == nil {
			t.Errorf("GET %s: %v, not ARM's error body", c.path, body)
		}
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
