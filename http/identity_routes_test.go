package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/identity"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
)

type identityFixture struct {
	url   string
	admin *tchttp.Client
	anon  *tchttp.Client
	token string
}

func newIdentityFixture(t testing.TB) *identityFixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	store.SetSealer(storetest.NewSealer(t))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := controlplane.New(store, controlplane.Config{}, log)
	go func() { _ = svc.Run(ctx) }()
	token, err := svc.EnsureAdmin(ctx, filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	ids, err := identity.New(store, identity.Config{Issuer: "http://" + ts.Listener.Addr().String(), Password: testPassword}, log)
	if err != nil {
		t.Fatal(err)
	}
	svc.SetIdentities(ids)
	ts.Config.Handler = tchttp.NewServer(svc, log, tchttp.WithIdentity(ids))
	ts.Start()
	t.Cleanup(ts.Close)
	admin, err := tchttp.NewClient(ts.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	anon, err := tchttp.NewClient(ts.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	return &identityFixture{url: ts.URL, admin: admin, anon: anon, token: token}
}

func wantAPICode(t *testing.T, err error, code string) {
	t.Helper()
	if got := tripcap.ErrorCode(err); got != code {
		t.Fatalf("got %v (code %q), want %q", err, got, code)
	}
}

func TestIdentityRoutes(t *testing.T) {
	f := newIdentityFixture(t)
	ctx := context.Background()

	_, err := f.admin.CreateUser(ctx, "alice", "short")
	wantAPICode(t, err, tripcap.EINVALID)
	u, err := f.admin.CreateUser(ctx, "alice", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := f.admin.CreateServicePrincipal(ctx, "ci-bot")
	if err != nil || !strings.HasPrefix(sp.ClientSecret, tripcap.SecretPrefixService) {
		t.Fatalf("service principal: %+v, %v", sp, err)
	}
	list, err := f.admin.ListPrincipals(ctx, "")
	if err != nil || len(list) != 2 {
		t.Fatalf("principals: %+v, %v", list, err)
	}
	b, _ := json.Marshal(list)
	if strings.Contains(string(b), "argon2") || strings.Contains(string(b), sp.ClientSecret) {
		t.Fatalf("the listing shows secrets: %s", b)
	}

	_, err = f.anon.Login(ctx, "alice", "wrong password!")
	wantAPICode(t, err, tripcap.EUNAUTHORIZED)
	login, err := f.anon.Login(ctx, "alice", "correct horse battery")
	if err != nil || login.PrincipalID != u.ID {
		t.Fatalf("login: %+v, %v", login, err)
	}
	alice, err := tchttp.NewClient(f.url, login.Token)
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.CreateUser(ctx, "mallory", "correct horse battery")
	wantAPICode(t, err, tripcap.EFORBIDDEN)
	pat, err := alice.CreateToken(ctx, "", "laptop", time.Now().Add(24*time.Hour))
	if err != nil || !strings.HasPrefix(pat.Token, tripcap.SecretPrefixToken) {
		t.Fatalf("personal token: %+v, %v", pat, err)
	}
	_, err = alice.CreateToken(ctx, "", "forever", time.Time{})
	wantAPICode(t, err, tripcap.EINVALID)
	toks, err := alice.ListTokens(ctx, "")
	if err != nil || len(toks) != 2 || toks[0].Token != "" || toks[1].Token != "" {
		t.Fatalf("alice's tokens: %+v, %v", toks, err)
	}
	if _, err := f.admin.ListTokens(ctx, "alice"); err != nil {
		t.Fatal(err)
	}

	_, err = f.admin.AssignRole(ctx, "alice", "Root", "")
	wantAPICode(t, err, tripcap.EINVALID)
	a, err := f.admin.AssignRole(ctx, "alice", tripcap.RoleReader, "label:team=a")
	if err != nil {
		t.Fatal(err)
	}
	mine, err := alice.ListRoleAssignments(ctx, "alice")
	if err != nil || len(mine) != 1 || mine[0].ID != a.ID {
		t.Fatalf("alice's assignments: %+v, %v", mine, err)
	}
	_, err = alice.ListRoleAssignments(ctx, "")
	wantAPICode(t, err, tripcap.EFORBIDDEN)

	if err := alice.RevokeToken(ctx, pat.ID); err != nil {
		t.Fatal(err)
	}
	revoked, _ := tchttp.NewClient(f.url, pat.Token)
	_, err = revoked.ListTokens(ctx, "")
	wantAPICode(t, err, tripcap.EUNAUTHORIZED)

	// OAuth2 client credentials.
	res, err := f.anon.ClientCredentialsToken(ctx, sp.ClientID, sp.ClientSecret, "tripcap")
	if err != nil || res.TokenType != "Bearer" || res.ExpiresIn != 3600 {
		t.Fatalf("token: %+v, %v", res, err)
	}
	bot, _ := tchttp.NewClient(f.url, res.AccessToken)
	if _, err := bot.ListTokens(ctx, ""); err != nil {
		t.Fatalf("the JWT does not authenticate: %v", err)
	}
	_, err = f.anon.ClientCredentialsToken(ctx, sp.ClientID, "tc_sp_wrong", "")
	var oe *identity.OAuthError
	if !errors.As(err, &oe) || oe.Code != "invalid_client" {
		t.Fatalf("wrong secret: %v", err)
	}
	jwks, err := f.anon.JWKS(ctx)
	if err != nil || len(jwks.Keys) != 1 || jwks.Keys[0].Kty != "EC" || jwks.Keys[0].Alg != "ES256" {
		t.Fatalf("JWKS: %+v, %v", jwks, err)
	}
	disc, err := f.anon.Discovery(ctx)
	if err != nil || disc.Issuer != f.url || disc.TokenEndpoint != f.url+"/oauth2/token" || disc.JWKSURI != f.url+"/.well-known/jwks.json" {
		t.Fatalf("discovery: %+v, %v", disc, err)
	}

	// Deleting alice takes her login token with her.
	if err := f.admin.DeletePrincipal(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err = alice.ListTokens(ctx, "")
	wantAPICode(t, err, tripcap.EUNAUTHORIZED)

	// Rotating the admin token: the new one works, the old does not.
	fresh, err := f.admin.RotateAdminToken(ctx)
	if err != nil || fresh == f.token {
		t.Fatalf("rotate: %q, %v", fresh, err)
	}
	_, err = f.admin.ListPrincipals(ctx, "")
	wantAPICode(t, err, tripcap.EUNAUTHORIZED)
	admin2, _ := tchttp.NewClient(f.url, fresh)
	if _, err := admin2.ListPrincipals(ctx, ""); err != nil {
		t.Fatal(err)
	}
	wantAPICode(t, admin2.RevokeAdminToken(ctx), tripcap.EPRECONDITION)
}

// TestOAuthTokenErrors: the token endpoint answers RFC 6749 §5.2 bodies.
func TestOAuthTokenErrors(t *testing.T) {
	f := newIdentityFixture(t)
	sp, err := f.admin.CreateServicePrincipal(context.Background(), "bot")
	if err != nil {
		t.Fatal(err)
	}
	post := func(contentType, body string, basic bool) (int, map[string]string, http.Header) {
		req, _ := http.NewRequest("POST", f.url+"/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if basic {
			req.SetBasicAuth(url.QueryEscape(sp.ClientID), url.QueryEscape(sp.ClientSecret))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m, resp.Header
	}
	form := "application/x-www-form-urlencoded"
	good := url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.ClientID}, "client_secret": {sp.ClientSecret}}.Encode()
	for name, tc := range map[string]struct {
		ct, body string
		basic    bool
		status   int
		code     string
	}{
		"json body":         {"application/json", `{"grant_type":"client_credentials"}`, false, 400, "invalid_request"},
		"no grant type":     {form, "client_id=" + sp.ClientID, false, 400, "invalid_request"},
		"password grant":    {form, "grant_type=password&username=a&password=b", false, 400, "unsupported_grant_type"},
		"wrong secret":      {form, "grant_type=client_credentials&client_id=" + sp.ClientID + "&client_secret=nope", false, 401, "invalid_client"},
		"bad audience":      {form, good + "&audience=https%3A%2F%2Fmanagement.azure.com", false, 400, "invalid_scope"},
		"grant given twice": {form, good + "&grant_type=client_credentials", false, 400, "invalid_request"},
		"basic and form":    {form, good, true, 400, "invalid_request"},
		"form secret":       {form, good, false, 200, ""},
		"basic":             {form, "grant_type=client_credentials&scope=tripcap%2F.default", true, 200, ""},
	} {
		status, body, hdr := post(tc.ct, tc.body, tc.basic)
		if status != tc.status || body["error"] != tc.code {
			t.Errorf("%s: %d %v, want %d %q", name, status, body, tc.status, tc.code)
		}
		if hdr.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", name, hdr.Get("Cache-Control"))
		}
		if status == 401 && hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", name)
		}
		if status == 200 && (body["access_token"] == "" || body["token_type"] != "Bearer") {
			t.Errorf("%s: %v", name, body)
		}
	}
}

// FuzzOAuthToken: whatever form and Basic credentials a caller sends, the
// token endpoint answers 400 or 401 with an RFC 6749 error (or 200 for the
// real secret), never another status or body.
func FuzzOAuthToken(f *testing.F) {
	fx := newIdentityFixture(f)
	sp, err := fx.admin.CreateServicePrincipal(context.Background(), "bot")
	if err != nil {
		f.Fatal(err)
	}
	good := url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.ClientID}, "client_secret": {sp.ClientSecret}}.Encode()
	f.Add(good, "")
	f.Add("grant_type=client_credentials", sp.ClientID+":"+sp.ClientSecret)
	f.Add("grant_type=client_credentials&scope=%zz", "%zz:%")
	f.Add("a=1&a=2;b", ":")
	f.Fuzz(func(t *testing.T, body, basic string) {
		req, _ := http.NewRequest("POST", fx.url+"/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if id, secret, ok := strings.Cut(basic, ":"); ok {
			req.SetBasicAuth(id, secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatalf("%d: body not JSON: %v", resp.StatusCode, err)
		}
		switch resp.StatusCode {
		case 200:
			if m["access_token"] == nil {
				t.Fatalf("200 without a token: %v", m)
			}
		case 400, 401:
			if code, _ := m["error"].(string); code == "" || code == "server_error" {
				t.Fatalf("%d: %v", resp.StatusCode, m)
			}
		default:
			t.Fatalf("status %d: %v", resp.StatusCode, m)
		}
	})
}
