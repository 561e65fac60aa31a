package arm_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// TestSubscriptionsOnlyTheCallersOwn: a caller lists only the
// subscriptions it holds a role in (at "*", at the subscription or below)
// or can read a host of; another answers 404 SubscriptionNotFound as one
// that does not exist, on GET and on the resources under it. Every
// subscription carries the server's tenantId.
func TestSubscriptionsOnlyTheCallersOwn(t *testing.T) {
	f := newNetFixture(t)
	ctx := t.Context()
	const other, third = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
	for name, labels := range map[string]map[string]string{
		"vm2": {tripcap.LabelSubscription: other},
		"vm3": {tripcap.LabelSubscription: third, "team": "a"},
	} {
		jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Enroll(ctx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: name, Labels: labels}); err != nil {
			t.Fatal(err)
		}
	}
	tokenOf := func(name string, scope tripcap.Scope) string {
		p, err := f.ids.CreateServicePrincipal(f.admin, name)
		if err != nil {
			t.Fatal(err)
		}
		if scope != "" {
			if _, err := f.ids.AssignRole(f.admin, p.ID, tripcap.RoleReader, scope); err != nil {
				t.Fatal(err)
			}
		}
		tok, err := f.ids.CreateToken(f.admin, p.ID, "test", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return tok.Token
	}
	get := func(token, path string, into any) int {
		t.Helper()
		req, _ := http.NewRequest("GET", f.ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := f.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return resp.StatusCode
	}
	type subJSON struct {
		SubscriptionID string `json:"subscriptionId"`
		TenantID       string `json:"tenantId"`
		Error          struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	list := func(token string) []string {
		t.Helper()
		var page struct{ Value []subJSON }
		if st := get(token, "/subscriptions?api-version=2022-12-01", &page); st != 200 {
			t.Fatalf("list: %d", st)
		}
		var out []string
		for _, s := range page.Value {
			if s.TenantID != f.ids.TenantID() {
				t.Errorf("subscription %s: tenantId %q, want %q", s.SubscriptionID, s.TenantID, f.ids.TenantID())
			}
			out = append(out, s.SubscriptionID)
		}
		return out
	}
	cases := []struct {
		who   string
		token string
		want  []string
	}{
		{"the admin", f.token, []string{sub, other, third}},
		{"a Reader at *", tokenOf("everywhere", tripcap.ScopeAll), []string{sub, other, third}},
		{"a Reader at a subscription", tokenOf("subscription", tripcap.Scope("/subscriptions/"+other)), []string{other}},
		{"a Reader at a group", tokenOf("group", tripcap.Scope("/subscriptions/"+other+"/resourceGroups/rg9")), []string{other}},
		{"a Reader of a label's hosts", tokenOf("label", "label:team=a"), []string{third}},
		{"a principal with no role", tokenOf("nobody", ""), nil},
	}
	for _, c := range cases {
		if got := list(c.token); !slices.Equal(got, c.want) {
			t.Errorf("%s lists %v, want %v", c.who, got, c.want)
		}
		for _, s := range []string{sub, other, third} {
			var one subJSON
			st := get(c.token, "/subscriptions/"+s+"?api-version=2022-12-01", &one)
			var watchers subJSON
			wst := get(c.token, "/subscriptions/"+s+"/providers/Microsoft.Network/networkWatchers?api-version=2024-05-01", &watchers)
			if slices.Contains(c.want, s) {
				if st != 200 || one.SubscriptionID != s || one.TenantID != f.ids.TenantID() {
					t.Errorf("%s gets %s: %d %+v", c.who, s, st, one)
				}
				continue
			}
			if st != 404 || one.Error.Code != "SubscriptionNotFound" {
				t.Errorf("%s gets %s it may not see: %d %s, want 404 SubscriptionNotFound", c.who, s, st, one.Error.Code)
			}
			if wst != 404 || watchers.Error.Code != "SubscriptionNotFound" {
				t.Errorf("%s lists the watchers of %s it may not see: %d %s, want 404 SubscriptionNotFound", c.who, s, wst, watchers.Error.Code)
			}
		}
	}
}
