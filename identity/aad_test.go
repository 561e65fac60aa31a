package identity_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/identity"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
)

// payload decodes a JWT's claims.
func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := decodeSegment(parts[1])
	must(t, err)
	var m map[string]any
	must(t, json.Unmarshal(b, &m))
	return m
}

func wantAAD(t *testing.T, err error, status int, code string, aadsts int) {
	t.Helper()
	var aerr *identity.AADError
	if !errors.As(err, &aerr) || aerr.Status != status || aerr.Code != code || aerr.AADSTS != aadsts {
		t.Fatalf("got %v, want %d %s AADSTS%d", err, status, code, aadsts)
	}
}

// TestAADTokens: v1 (resource=) and v2.0 (scope=…/.default) issue ARM-shaped
// tokens (iss {issuer}/{tenant}/, tid, appid, oid, the audience asked for
// in its configured form) that Authenticate accepts; the bodies are the
// shapes ADAL and MSAL parse.
func TestAADTokens(t *testing.T) {
	f := newJWTFixture(t)
	ctx := context.Background()
	tenant := f.svc.TenantID()
	base := identity.AADTokenRequest{Tenant: strings.ToUpper(tenant), GrantType: "client_credentials", ClientID: f.sp.ClientID, ClientSecret: f.sp.ClientSecret}
	for name, tc := range map[string]struct {
		req identity.AADTokenRequest
		aud string
	}{
		"v1 azure.com":           {identity.AADTokenRequest{Resource: "https://management.azure.com/"}, "https://management.azure.com/"},
		"v1 no slash":            {identity.AADTokenRequest{Resource: "https://management.azure.com"}, "https://management.azure.com/"},
		"v1 core.windows.net":    {identity.AADTokenRequest{Resource: "https://management.core.windows.net/"}, "https://management.core.windows.net/"},
		"v2 azidentity's scope":  {identity.AADTokenRequest{V2: true, Scope: "https://management.core.windows.net//.default openid offline_access profile"}, "https://management.core.windows.net/"},
		"v2 without slash":       {identity.AADTokenRequest{V2: true, Scope: "https://management.azure.com/.default"}, "https://management.azure.com/"},
		"v2 case":                {identity.AADTokenRequest{V2: true, Scope: "HTTPS://Management.Azure.com/.default"}, "https://management.azure.com/"},
		"v2 the native audience": {identity.AADTokenRequest{V2: true, Scope: "tripcap/.default"}, "tripcap"},
		"v2 one resource twice":  {identity.AADTokenRequest{V2: true, Scope: "https://management.azure.com/.default https://management.azure.com/.default"}, "https://management.azure.com/"},
		"v1 the native audience": {identity.AADTokenRequest{Resource: "tripcap"}, "tripcap"},
	} {
		req := tc.req
		req.Tenant, req.GrantType, req.ClientID, req.ClientSecret = base.Tenant, base.GrantType, base.ClientID, base.ClientSecret
		tok, err := f.svc.AADToken(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c := payload(t, tok.AccessToken)
		if c["aud"] != tc.aud && !(len(c["aud"].([]any)) == 1 && c["aud"].([]any)[0] == tc.aud) {
			t.Errorf("%s: aud %v, want %q", name, c["aud"], tc.aud)
		}
		if c["iss"] != issuer+"/"+tenant+"/" || c["tid"] != tenant || c["appid"] != f.sp.ID || c["oid"] != f.sp.ID || c["sub"] != f.sp.ID || c["appidacr"] != "1" || c["idtyp"] != "app" || c["ver"] != "1.0" {
			t.Errorf("%s: claims %v", name, c)
		}
		p, err := f.svc.Authenticate(ctx, tok.AccessToken)
		if err != nil || p.ID != f.sp.ID || p.Credential != tripcap.CredentialJWT {
			t.Fatalf("%s: authenticate: %+v, %v", name, p, err)
		}
		b, err := json.Marshal(tok.Body())
		must(t, err)
		var body map[string]any
		must(t, json.Unmarshal(b, &body))
		if body["token_type"] != "Bearer" || body["access_token"] != tok.AccessToken {
			t.Errorf("%s: body %s", name, b)
		}
		if req.V2 {
			if body["expires_in"] != float64(3600) || body["ext_expires_in"] != float64(3600) || body["resource"] != nil {
				t.Errorf("%s: v2 body %s", name, b)
			}
		} else {
			exp, _ := strconv.ParseInt(body["expires_on"].(string), 10, 64)
			if body["expires_in"] != "3600" || body["ext_expires_in"] != "3600" || body["resource"] != req.Resource || exp != tok.ExpiresAt.Unix() || body["not_before"] == "" {
				t.Errorf("%s: v1 body %s", name, b)
			}
		}
	}
}

// TestAADTokenRefusals: each refusal is Azure AD's error and AADSTS code;
// a token for an audience not accepted is refused at the endpoint, and a
// token signed for one is refused at use.
func TestAADTokenRefusals(t *testing.T) {
	f := newJWTFixture(t)
	ctx := context.Background()
	ok := identity.AADTokenRequest{Tenant: f.svc.TenantID(), GrantType: "client_credentials", ClientID: f.sp.ClientID, ClientSecret: f.sp.ClientSecret, Resource: "https://management.azure.com/"}
	with := func(mod func(r *identity.AADTokenRequest)) identity.AADTokenRequest {
		r := ok
		mod(&r)
		return r
	}
	for name, tc := range map[string]struct {
		req    identity.AADTokenRequest
		status int
		code   string
		aadsts int
	}{
		"unknown tenant":    {with(func(r *identity.AADTokenRequest) { r.Tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47" }), 400, "invalid_tenant", 90002},
		"common":            {with(func(r *identity.AADTokenRequest) { r.Tenant = "common" }), 400, "invalid_tenant", 90002},
		"bad secret":        {with(func(r *identity.AADTokenRequest) { r.ClientSecret = "tc_sp_wrong" }), 401, "invalid_client", 7000215},
		"unknown client":    {with(func(r *identity.AADTokenRequest) { r.ClientID = tripcap.NewID() }), 401, "invalid_client", 7000215},
		"client not an id":  {with(func(r *identity.AADTokenRequest) { r.ClientID = "00000000-0000-0000-0000-000000000000" }), 401, "invalid_client", 7000215},
		"no secret":         {with(func(r *identity.AADTokenRequest) { r.ClientSecret = "" }), 401, "invalid_client", 7000218},
		"an assertion":      {with(func(r *identity.AADTokenRequest) { r.ClientSecret, r.ClientAssertion = "", true }), 401, "invalid_client", 7000218},
		"no client id":      {with(func(r *identity.AADTokenRequest) { r.ClientID = "" }), 400, "invalid_request", 900144},
		"no grant":          {with(func(r *identity.AADTokenRequest) { r.GrantType = "" }), 400, "invalid_request", 900144},
		"password grant":    {with(func(r *identity.AADTokenRequest) { r.GrantType = "password" }), 400, "unsupported_grant_type", 70003},
		"v1 no resource":    {with(func(r *identity.AADTokenRequest) { r.Resource = "" }), 400, "invalid_request", 900144},
		"v1 other audience": {with(func(r *identity.AADTokenRequest) { r.Resource = "https://graph.microsoft.com/" }), 400, "invalid_resource", 500011},
		"v1 a scope":        {with(func(r *identity.AADTokenRequest) { r.Resource = "https://management.azure.com/.default" }), 400, "invalid_resource", 500011},
		"v2 no scope":       {with(func(r *identity.AADTokenRequest) { r.V2, r.Scope = true, "openid profile" }), 400, "invalid_request", 900144},
		"v2 not .default": {with(func(r *identity.AADTokenRequest) {
			r.V2, r.Scope = true, "https://management.azure.com/user_impersonation"
		}), 400, "invalid_scope", 1002012},
		"v2 other audience": {with(func(r *identity.AADTokenRequest) { r.V2, r.Scope = true, "https://graph.microsoft.com/.default" }), 400, "invalid_resource", 500011},
		"v2 two resources": {with(func(r *identity.AADTokenRequest) {
			r.V2, r.Scope = true, "https://management.azure.com/.default tripcap/.default"
		}), 400, "invalid_scope", 28000},
		"v2 empty scope": {with(func(r *identity.AADTokenRequest) { r.V2, r.Scope = true, "" }), 400, "invalid_request", 900144},
	} {
		_, err := f.svc.AADToken(ctx, tc.req)
		t.Run(name, func(t *testing.T) { wantAAD(t, err, tc.status, tc.code, tc.aadsts) })
		// The failure limits count a wrong secret only.
		if want := map[bool]string{true: tripcap.EUNAUTHORIZED, false: tripcap.EINVALID}[tc.code == "invalid_client"]; tripcap.ErrorCode(err) != want {
			t.Errorf("%s: classified %q, want %q", name, tripcap.ErrorCode(err), want)
		}
		if strings.Contains(err.Error(), f.sp.ClientSecret) {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}

	// Signed with the server's own key for another audience (or by a
	// service that accepts no ARM audience), refused at use.
	now := f.clock.Now()
	for _, aud := range []string{"https://graph.microsoft.com/", "https://management.azure.com//", "tripcap/", "https://Management.azure.com/"} {
		c := f.claims()
		c.Audience = jwt.ClaimStrings{aud}
		var aerr *identity.AudienceError
		if _, err := f.svc.Authenticate(ctx, sign(t, jwt.SigningMethodES256, c, f.kid, f.key)); !errors.As(err, &aerr) || tripcap.ErrorCode(err) != tripcap.EUNAUTHORIZED || !strings.Contains(err.Error(), "https://management.azure.com/") {
			t.Errorf("a token for %s: %v", aud, err)
		}
	}
	// ARM's audiences with or without the trailing slash, as ARM accepts
	// them (a replica configured with the other spelling signed it).
	for _, aud := range []string{"https://management.azure.com", "https://management.core.windows.net"} {
		c := f.claims()
		c.Audience = jwt.ClaimStrings{aud}
		if _, err := f.svc.Authenticate(ctx, sign(t, jwt.SigningMethodES256, c, f.kid, f.key)); err != nil {
			t.Errorf("a token for %s: %v", aud, err)
		}
	}
	for _, iss := range []string{issuer + "/" + identity.DeriveTenantID("https://elsewhere.test") + "/", issuer + "/" + f.svc.TenantID() + "/v2.0"} {
		c := f.claims()
		c.Issuer = iss
		if _, err := f.svc.Authenticate(ctx, sign(t, jwt.SigningMethodES256, c, f.kid, f.key)); tripcap.ErrorCode(err) != tripcap.EUNAUTHORIZED {
			t.Errorf("a token issued by %s: %v", iss, err)
		}
	}
	c := f.claims()
	c.Issuer = issuer + "/" + f.svc.TenantID() + "/"
	c.Audience = jwt.ClaimStrings{"https://management.core.windows.net/"}
	c.ExpiresAt = jwt.NewNumericDate(now.Add(time.Minute))
	if _, err := f.svc.Authenticate(ctx, sign(t, jwt.SigningMethodES256, c, f.kid, f.key)); err != nil {
		t.Errorf("the tenant's token for ARM is the control: %v", err)
	}
}

// TestAADAudiencesConfigured: a server configured with other ARM
// audiences issues and accepts those only; with none, the ARM tokens of
// the default configuration are refused at use.
func TestAADAudiencesConfigured(t *testing.T) {
	store, err := sqlite.Open(t.Context(), t.TempDir()+"/tripcap.db")
	must(t, err)
	t.Cleanup(func() { store.Close() })
	store.SetSealer(storetest.NewSealer(t))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dflt, err := identity.New(store, identity.Config{Issuer: issuer, Password: cheap}, log)
	must(t, err)
	custom, err := identity.New(store, identity.Config{Issuer: issuer, Password: cheap, ARMAudiences: []string{"https://management.azure.example/"}}, log)
	must(t, err)
	none, err := identity.New(store, identity.Config{Issuer: issuer, Password: cheap, ARMAudiences: []string{}}, log)
	must(t, err)
	sp, err := dflt.CreateServicePrincipal(owner(), "bot")
	must(t, err)
	req := func(resource string) identity.AADTokenRequest {
		return identity.AADTokenRequest{Tenant: dflt.TenantID(), GrantType: "client_credentials", ClientID: sp.ID, ClientSecret: sp.ClientSecret, Resource: resource}
	}
	ctx := context.Background()
	arm, err := dflt.AADToken(ctx, req("https://management.azure.com/"))
	must(t, err)
	_, err = custom.AADToken(ctx, req("https://management.azure.com/"))
	wantAAD(t, err, 400, "invalid_resource", 500011)
	mine, err := custom.AADToken(ctx, req("https://management.azure.example"))
	must(t, err)
	if _, err := custom.Authenticate(ctx, arm.AccessToken); tripcap.ErrorCode(err) != tripcap.EUNAUTHORIZED {
		t.Errorf("a token for management.azure.com where only management.azure.example is accepted: %v", err)
	}
	if _, err := custom.Authenticate(ctx, mine.AccessToken); err != nil {
		t.Errorf("the configured audience's token: %v", err)
	}
	if _, err := none.Authenticate(ctx, arm.AccessToken); tripcap.ErrorCode(err) != tripcap.EUNAUTHORIZED {
		t.Errorf("an ARM token where no ARM audience is accepted: %v", err)
	}
	for _, bad := range [][]string{{""}, {"https://management.azure.com/.default"}, {"a b"}, {strings.Repeat("a", 300)}} {
		if _, err := identity.New(store, identity.Config{Issuer: issuer, ARMAudiences: bad}, log); err == nil || !strings.Contains(err.Error(), "ARM audience") {
			t.Errorf("ARM audiences %q: %v", bad, err)
		}
	}
}

// TestTenantID: the default tenant id is a GUID derived from the issuer,
// the same in every replica and restart, another for another issuer; a
// configured one is used in lower case, and one that is no GUID refused.
func TestTenantID(t *testing.T) {
	store, err := sqlite.Open(t.Context(), t.TempDir()+"/tripcap.db")
	must(t, err)
	t.Cleanup(func() { store.Close() })
	store.SetSealer(storetest.NewSealer(t))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	newSvc := func(cfg identity.Config) (*identity.Service, error) {
		cfg.Password = cheap
		return identity.New(store, cfg, log)
	}
	a, err := newSvc(identity.Config{Issuer: issuer})
	must(t, err)
	b, err := newSvc(identity.Config{Issuer: issuer + "/"})
	must(t, err)
	other, err := newSvc(identity.Config{Issuer: "https://other.test"})
	must(t, err)
	if a.TenantID() != b.TenantID() || a.TenantID() == other.TenantID() || a.TenantID() != identity.DeriveTenantID(issuer) {
		t.Fatalf("tenant ids %s %s %s", a.TenantID(), b.TenantID(), other.TenantID())
	}
	// RFC 9562's example: v5 of "www.example.com" in the DNS namespace is
	// 2ed6657d-e927-568b-95e1-2665a8aea6a2; in the URL namespace the
	// version and variant nibbles are the same.
	if id := a.TenantID(); len(id) != 36 || id[14] != '5' || !strings.ContainsAny(id[19:20], "89ab") {
		t.Fatalf("tenant id %s is not a v5 GUID", id)
	}
	// Another replica (the same issuer, the same database) accepts the
	// tenant's tokens at once.
	sp, err := a.CreateServicePrincipal(owner(), "bot")
	must(t, err)
	tok, err := a.AADToken(t.Context(), identity.AADTokenRequest{V2: true, Tenant: b.TenantID(), GrantType: "client_credentials", ClientID: sp.ID, ClientSecret: sp.ClientSecret, Scope: "https://management.azure.com//.default"})
	must(t, err)
	if p, err := b.Authenticate(t.Context(), tok.AccessToken); err != nil || p.ID != sp.ID {
		t.Fatalf("the other replica: %+v %v", p, err)
	}
	pinned, err := newSvc(identity.Config{Issuer: issuer, TenantID: "72F988BF-86F1-41AF-91AB-2D7CD011DB47"})
	must(t, err)
	if pinned.TenantID() != "72f988bf-86f1-41af-91ab-2d7cd011db47" || !pinned.IsTenant("72F988BF-86F1-41AF-91AB-2D7CD011DB47") || pinned.IsTenant(a.TenantID()) {
		t.Fatalf("pinned tenant %s", pinned.TenantID())
	}
	for _, bad := range []string{"contoso.onmicrosoft.com", "72f988bf86f141af91ab2d7cd011db47", "72f988bf-86f1-41af-91ab-2d7cd011db4g"} {
		if _, err := newSvc(identity.Config{Issuer: issuer, TenantID: bad}); err == nil || !strings.Contains(err.Error(), "tenant id") {
			t.Errorf("tenant id %q: %v", bad, err)
		}
	}
}

// TestTenantDiscovery: what MSAL requires of the OpenID configuration
// (authorization and token endpoints, an issuer on the authority's host),
// under the base the client reached; another tenant is AADSTS90002.
func TestTenantDiscovery(t *testing.T) {
	f := newJWTFixture(t)
	tid := f.svc.TenantID()
	d, err := f.svc.TenantDiscovery("https://127.0.0.1:8443", tid, true)
	must(t, err)
	b := "https://127.0.0.1:8443/" + tid
	if d.Issuer != b+"/v2.0" || d.TokenEndpoint != b+"/oauth2/v2.0/token" || d.AuthorizationEndpoint != b+"/oauth2/v2.0/authorize" || d.JWKSURI != b+"/discovery/v2.0/keys" || d.TenantID != tid {
		t.Errorf("v2.0: %+v", d)
	}
	d, err = f.svc.TenantDiscovery("https://127.0.0.1:8443/", strings.ToUpper(tid), false)
	must(t, err)
	if d.Issuer != b+"/" || d.TokenEndpoint != b+"/oauth2/token" || d.JWKSURI != b+"/discovery/keys" {
		t.Errorf("v1: %+v", d)
	}
	_, err = f.svc.TenantDiscovery("https://127.0.0.1:8443", "organizations", true)
	wantAAD(t, err, 400, "invalid_tenant", 90002)
}

// TestAADErrorBody: the body Azure AD writes, its description holding
// the code, trace and correlation ids and timestamp.
func TestAADErrorBody(t *testing.T) {
	at := time.Date(2016, 1, 9, 2, 2, 12, 0, time.UTC)
	body := identity.AADUnknownTenant("contoso\r\nx").Body(at, "trace", "corr")
	b, err := json.Marshal(body)
	must(t, err)
	var m map[string]any
	must(t, json.Unmarshal(b, &m))
	if m["error"] != "invalid_tenant" || m["timestamp"] != "2016-01-09 02:02:12Z" || m["trace_id"] != "trace" || m["correlation_id"] != "corr" ||
		len(m["error_codes"].([]any)) != 1 || m["error_codes"].([]any)[0] != float64(90002) {
		t.Fatalf("body %s", b)
	}
	want := "AADSTS90002: Tenant 'contoso??x' not found."
	if d := m["error_description"].(string); !strings.HasPrefix(d, want) || !strings.HasSuffix(d, "\r\nTrace ID: trace\r\nCorrelation ID: corr\r\nTimestamp: 2016-01-09 02:02:12Z") {
		t.Fatalf("description %q", d)
	}
	if g := identity.NewGUID(); len(g) != 36 || g[14] != '4' || g == identity.NewGUID() {
		t.Fatalf("guid %s", g)
	}
}

// TestParseAADTokenForm: the form's fields, HTTP Basic, and the refusals
// of fields given twice or credentials given both ways.
func TestParseAADTokenForm(t *testing.T) {
	req, aerr := identity.ParseAADTokenForm(identity.AADTokenRequest{V2: true}, url.Values{"grant_type": {"client_credentials"}, "scope": {"x/.default"}}, url.UserPassword("id", "s"))
	if aerr != nil || req.ClientID != "id" || req.ClientSecret != "s" || req.Scope != "x/.default" || !req.V2 {
		t.Fatalf("basic: %+v %v", req, aerr)
	}
	if _, aerr := identity.ParseAADTokenForm(identity.AADTokenRequest{}, url.Values{"resource": {"a", "b"}}, nil); aerr == nil || aerr.AADSTS != 9000411 || !strings.Contains(aerr.Description, "'resource'") {
		t.Fatalf("duplicate: %v", aerr)
	}
	if _, aerr := identity.ParseAADTokenForm(identity.AADTokenRequest{}, url.Values{"client_secret": {"s"}}, url.UserPassword("id", "s")); aerr == nil || aerr.Code != "invalid_request" {
		t.Fatalf("both: %v", aerr)
	}
	if _, aerr := identity.ParseAADTokenForm(identity.AADTokenRequest{}, url.Values{"client_id": {"other"}}, url.UserPassword("id", "s")); aerr == nil {
		t.Fatal("a form client id that is not Basic's")
	}
	if req, _ := identity.ParseAADTokenForm(identity.AADTokenRequest{}, url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}, nil); !req.ClientAssertion {
		t.Fatal("an assertion not seen")
	}
}

// FuzzAADTokenForm: whatever form a caller sends, parsing it and then
// asking for a token answers a token or an *AADError of 400 or 401 whose
// body names an error and an AADSTS code, never another error or a panic.
func FuzzAADTokenForm(f *testing.F) {
	fx := newJWTFixture(f)
	good := url.Values{"grant_type": {"client_credentials"}, "client_id": {fx.sp.ClientID}, "client_secret": {fx.sp.ClientSecret}, "scope": {"https://management.azure.com//.default openid"}}.Encode()
	f.Add(good, fx.svc.TenantID(), true, "")
	f.Add("grant_type=client_credentials&resource=https%3A%2F%2Fmanagement.azure.com%2F&client_id=x&client_secret=y", fx.svc.TenantID(), false, "")
	f.Add("scope=%2F.default+%2F.default+a%2F.default", "common", true, "id:secret")
	f.Add("a=1&a=2;b&scope=\x00", "", false, ":")
	f.Fuzz(func(t *testing.T, body, tenant string, v2 bool, basic string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return // the HTTP layer refuses it before
		}
		var ui *url.Userinfo
		if id, secret, ok := strings.Cut(basic, ":"); ok && id != "" {
			ui = url.UserPassword(id, secret)
		}
		req, aerr := identity.ParseAADTokenForm(identity.AADTokenRequest{V2: v2, Tenant: tenant}, form, ui)
		var err2 error = aerr
		if aerr == nil {
			var tok *identity.AADToken
			tok, err2 = fx.svc.AADToken(context.Background(), req)
			if err2 == nil {
				if tok.AccessToken == "" {
					t.Fatal("a token without an access token")
				}
				return
			}
		}
		var e *identity.AADError
		if !errors.As(err2, &e) || e.Status != 400 && e.Status != 401 || e.Code == "" || e.AADSTS == 0 {
			t.Fatalf("%v", err2)
		}
		d := e.Body(time.Now(), "t", "c").ErrorDescription
		if !strings.HasPrefix(d, "AADSTS"+strconv.Itoa(e.AADSTS)+": ") || strings.ContainsAny(d[:strings.Index(d, "\r\nTrace ID")], "\x00\r\n") {
			t.Fatalf("description %q", d)
		}
	})
}
