package http_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/identity"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
	"github.com/tripcap/tripcap/tlscert"
)

// aadFixture is the real server over HTTPS (its own CA), with a service
// principal holding Reader at "*" and one holding no role.
type aadFixture struct {
	url    string // the configured issuer, https://127.0.0.1:PORT
	port   string
	tenant string
	tls    *tls.Config
	admin  *tchttp.Client
	reader *tripcap.PrincipalRecord
	norole *tripcap.PrincipalRecord
}

func newAADFixture(t testing.TB, lim tchttp.Limits) *aadFixture {
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
	pki, err := tlscert.OpenAuthority(filepath.Join(dir, "tls"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := controlplane.New(store, controlplane.Config{}, log)
	go func() { _ = svc.Run(ctx) }()
	token, err := svc.EnsureAdmin(ctx, filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &aadFixture{url: "https://" + l.Addr().String()}
	_, f.port, _ = net.SplitHostPort(l.Addr().String())
	ids, err := identity.New(store, identity.Config{Issuer: f.url, Password: testPassword}, log)
	if err != nil {
		t.Fatal(err)
	}
	f.tenant = ids.TenantID()
	svc.SetIdentities(ids)
	srv := tchttp.NewServer(svc, log, tchttp.WithIdentity(ids), tchttp.WithTLS(tlscert.ServerConfig(pki)), tchttp.WithLimits(lim))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-served })
	pool := x509.NewCertPool()
	pool.AddCert(pki.Anchor())
	f.tls = tlscert.ClientConfig(pool)
	if f.admin, err = tchttp.NewClient(f.url, token, tchttp.WithTLSConfig(f.tls)); err != nil {
		t.Fatal(err)
	}
	if f.reader, err = f.admin.CreateServicePrincipal(ctx, "arm-reader"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.AssignRole(ctx, f.reader.ID, tripcap.RoleReader, tripcap.ScopeAll); err != nil {
		t.Fatal(err)
	}
	if f.norole, err = f.admin.CreateServicePrincipal(ctx, "arm-nobody"); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *aadFixture) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: f.tls.Clone(), ForceAttemptHTTP2: true}, Timeout: 30 * time.Second}
}

// credential is azidentity's ClientSecretCredential pointed at the server
// as a user points it: AuthorityHost the server, instance discovery off.
func (f *aadFixture) credential(t *testing.T, authority, tenant, clientID, secret string) *azidentity.ClientSecretCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenant, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: authority}, Transport: f.httpClient(), Retry: policy.RetryOptions{MaxRetries: -1}},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// bearerGet calls the native API with a bearer token and returns the status.
func (f *aadFixture) bearerGet(t *testing.T, path, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", f.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := f.httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAzIdentityClientSecretCredential: the official SDK's credential gets
// ARM tokens from the server over HTTPS (v2.0 endpoint, discovery under
// the tenant path, the scope ARM's bearer policy asks for, with and
// without CAE's claims), reached by the configured name or another of its
// names; the tokens authenticate on the API as the service principal, its
// roles applying. Bad secrets, unknown clients and tenants and other
// audiences are AuthenticationFailedErrors carrying Azure AD's codes.
func TestAzIdentityClientSecretCredential(t *testing.T) {
	f := newAADFixture(t, tchttp.Limits{})
	ctx := t.Context()
	for _, authority := range []string{f.url, "https://localhost:" + f.port + "/"} {
		cred := f.credential(t, authority, f.tenant, f.reader.ClientID, f.reader.ClientSecret)
		for _, tro := range []policy.TokenRequestOptions{
			{Scopes: []string{"https://management.azure.com/.default"}},
			{Scopes: []string{"https://management.core.windows.net//.default"}, EnableCAE: true},
		} {
			tok, err := cred.GetToken(ctx, tro)
			if err != nil {
				t.Fatalf("%s %v: %v", authority, tro.Scopes, err)
			}
			if left := time.Until(tok.ExpiresOn); left < 59*time.Minute || left > time.Hour+time.Minute {
				t.Errorf("%s: expires in %s", authority, left)
			}
			if st := f.bearerGet(t, "/api/v1/hosts", tok.Token); st != 200 {
				t.Errorf("%s %v: the token on the API: %d", authority, tro.Scopes, st)
			}
		}
	}
	// Upper-case tenant, as users paste it.
	if _, err := f.credential(t, f.url, strings.ToUpper(f.tenant), f.reader.ClientID, f.reader.ClientSecret).GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}}); err != nil {
		t.Fatalf("upper-case tenant: %v", err)
	}
	// No role: authenticated, and refused what it may not do.
	tok, err := f.credential(t, f.url, f.tenant, f.norole.ClientID, f.norole.ClientSecret).GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	if st := f.bearerGet(t, "/api/v1/storage", tok.Token); st != 403 {
		t.Errorf("a service principal without a role: %d, want 403", st)
	}

	for name, tc := range map[string]struct {
		tenant, client, secret, scope string
		status                        int
		aadsts                        string
	}{
		"bad secret":     {f.tenant, f.reader.ClientID, "tc_sp_wrong", "https://management.azure.com/.default", 401, "AADSTS7000215"},
		"unknown client": {f.tenant, tripcap.NewID(), f.reader.ClientSecret, "https://management.azure.com/.default", 401, "AADSTS7000215"},
		"unknown tenant": {"72f988bf-86f1-41af-91ab-2d7cd011db47", f.reader.ClientID, f.reader.ClientSecret, "https://management.azure.com/.default", 400, "AADSTS90002"},
		"other audience": {f.tenant, f.reader.ClientID, f.reader.ClientSecret, "https://graph.microsoft.com/.default", 400, "AADSTS500011"},
	} {
		_, err := f.credential(t, f.url, tc.tenant, tc.client, tc.secret).GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{tc.scope}})
		var afe *azidentity.AuthenticationFailedError
		if !errors.As(err, &afe) || !strings.Contains(err.Error(), tc.aadsts) {
			t.Errorf("%s: %v, want an AuthenticationFailedError with %s", name, err, tc.aadsts)
			continue
		}
		if afe.RawResponse != nil && afe.RawResponse.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", name, afe.RawResponse.StatusCode, tc.status)
		}
		if strings.Contains(err.Error(), f.reader.ClientSecret) {
			t.Errorf("%s: the error shows the secret", name)
		}
	}
}

// aadPost posts a form to an Azure AD-shaped endpoint and decodes the answer.
func (f *aadFixture) aadPost(t *testing.T, path string, form url.Values, hdr ...string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := f.httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s: %d, body not JSON: %v", path, resp.StatusCode, err)
	}
	return resp.StatusCode, m, resp.Header
}

// TestADALv1FormPost: the 2017 seed's ADAL AcquireToken(resource,
// clientCredential) as a raw form post to /{tenant}/oauth2/token: v1's
// body (numbers as strings, resource echoed), a token the API accepts and
// the tenant's v1 keys verify.
func TestADALv1FormPost(t *testing.T) {
	f := newAADFixture(t, tchttp.Limits{})
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {f.reader.ClientID}, "client_secret": {f.reader.ClientSecret}, "resource": {"https://management.azure.com/"}}
	status, body, hdr := f.aadPost(t, "/"+f.tenant+"/oauth2/token", form, "client-request-id", "6f0a0c1e-2b3d-4c5e-8f70-8192a3b4c5d6", "return-client-request-id", "true")
	if status != 200 || hdr.Get("Cache-Control") != "no-store" || hdr.Get("client-request-id") != "6f0a0c1e-2b3d-4c5e-8f70-8192a3b4c5d6" {
		t.Fatalf("%d %v %v", status, body, hdr)
	}
	for _, k := range []string{"expires_in", "ext_expires_in", "expires_on", "not_before", "resource", "token_type", "access_token"} {
		if _, ok := body[k].(string); !ok {
			t.Errorf("%s: %T %v, want a string", k, body[k], body[k])
		}
	}
	exp, _ := strconv.ParseInt(body["expires_on"].(string), 10, 64)
	if body["token_type"] != "Bearer" || body["resource"] != "https://management.azure.com/" || body["expires_in"] != "3600" || time.Until(time.Unix(exp, 0)) < 59*time.Minute {
		t.Errorf("body %v", body)
	}
	tok := body["access_token"].(string)
	if st := f.bearerGet(t, "/api/v1/hosts", tok); st != 200 {
		t.Errorf("the v1 token on the API: %d", st)
	}

	// The tenant's v1 configuration names its keys; they verify the token.
	var d identity.TenantDiscovery
	getJSON(t, f, "/"+f.tenant+"/.well-known/openid-configuration", 200, &d)
	if d.TokenEndpoint != f.url+"/"+f.tenant+"/oauth2/token" || d.Issuer != f.url+"/"+f.tenant+"/" {
		t.Errorf("v1 configuration %+v", d)
	}
	var keys identity.JWKS
	getJSON(t, f, strings.TrimPrefix(d.JWKSURI, f.url), 200, &keys)
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(tok, claims, func(tk *jwt.Token) (any, error) {
		for _, k := range keys.Keys {
			if k.Kid == tk.Header["kid"] {
				x, _ := base64.RawURLEncoding.DecodeString(k.X)
				y, _ := base64.RawURLEncoding.DecodeString(k.Y)
				return &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}, nil
			}
		}
		return nil, errors.New("no such kid")
	}, jwt.WithIssuer(d.Issuer), jwt.WithAudience("https://management.azure.com/")); err != nil {
		t.Fatalf("the token against the tenant's keys: %v", err)
	}
	if claims["tid"] != f.tenant || claims["appid"] != f.reader.ClientID {
		t.Errorf("claims %v", claims)
	}
	// The v2.0 configuration, as MSAL reads it.
	getJSON(t, f, "/"+f.tenant+"/v2.0/.well-known/openid-configuration", 200, &d)
	if d.TokenEndpoint != f.url+"/"+f.tenant+"/oauth2/v2.0/token" || d.AuthorizationEndpoint == "" || d.Issuer != f.url+"/"+f.tenant+"/v2.0" {
		t.Errorf("v2.0 configuration %+v", d)
	}
	getJSON(t, f, "/"+f.tenant+"/discovery/v2.0/keys", 200, &keys)
	var e identity.AADErrorBody
	for _, p := range []string{d.AuthorizationEndpoint, strings.Replace(d.AuthorizationEndpoint, "/v2.0", "", 1)} {
		getJSON(t, f, strings.TrimPrefix(p, f.url)+"?response_type=code&client_id="+f.reader.ClientID, 400, &e)
		if e.Error != "unsupported_response_type" || e.ErrorCodes[0] != 700054 {
			t.Errorf("%s: %+v", p, e)
		}
	}
	for _, p := range []string{"/common/v2.0/.well-known/openid-configuration", "/contoso/.well-known/openid-configuration", "/common/discovery/keys", "/common/oauth2/v2.0/authorize"} {
		getJSON(t, f, p, 400, &e)
		if e.Error != "invalid_tenant" || len(e.ErrorCodes) != 1 || e.ErrorCodes[0] != 90002 {
			t.Errorf("%s: %+v", p, e)
		}
	}
}

func getJSON(t *testing.T, f *aadFixture, path string, status int, v any) {
	t.Helper()
	resp, err := f.httpClient().Get(f.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s, want %d", path, resp.StatusCode, b, status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// TestAADTokenErrors: each refusal is Azure AD's body (error,
// error_description starting with the AADSTS code, error_codes,
// timestamp, trace_id, correlation_id repeating the client's
// client-request-id), never a WWW-Authenticate challenge.
func TestAADTokenErrors(t *testing.T) {
	f := newAADFixture(t, tchttp.Limits{})
	v1 := "/" + f.tenant + "/oauth2/token"
	v2 := "/" + f.tenant + "/oauth2/v2.0/token"
	good := func(mod func(url.Values)) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {f.reader.ClientID}, "client_secret": {f.reader.ClientSecret}, "resource": {"https://management.azure.com/"}, "scope": {"https://management.azure.com/.default"}}
		mod(v)
		return v
	}
	for name, tc := range map[string]struct {
		path   string
		form   url.Values
		status int
		code   string
		aadsts int
	}{
		"bad secret":        {v1, good(func(v url.Values) { v.Set("client_secret", "wrong") }), 401, "invalid_client", 7000215},
		"unknown client":    {v2, good(func(v url.Values) { v.Set("client_id", tripcap.NewID()) }), 401, "invalid_client", 7000215},
		"unknown tenant":    {"/" + identity.DeriveTenantID("https://other.test") + "/oauth2/token", good(func(url.Values) {}), 400, "invalid_tenant", 90002},
		"v1 other audience": {v1, good(func(v url.Values) { v.Set("resource", "https://vault.azure.net") }), 400, "invalid_resource", 500011},
		"v2 other audience": {v2, good(func(v url.Values) { v.Set("scope", "https://storage.azure.com/.default") }), 400, "invalid_resource", 500011},
		"v2 not .default":   {v2, good(func(v url.Values) { v.Set("scope", "https://management.azure.com/user_impersonation") }), 400, "invalid_scope", 1002012},
		"v1 no resource":    {v1, good(func(v url.Values) { v.Del("resource") }), 400, "invalid_request", 900144},
		"no secret":         {v2, good(func(v url.Values) { v.Del("client_secret") }), 401, "invalid_client", 7000218},
		"password grant":    {v2, good(func(v url.Values) { v.Set("grant_type", "password") }), 400, "unsupported_grant_type", 70003},
		"duplicate":         {v1, good(func(v url.Values) { v.Add("client_id", "x") }), 400, "invalid_request", 9000411},
	} {
		status, body, hdr := f.aadPost(t, tc.path, tc.form, "client-request-id", "0a1b2c3d-0000-4000-8000-00000000abcd")
		codes, _ := body["error_codes"].([]any)
		desc, _ := body["error_description"].(string)
		if status != tc.status || body["error"] != tc.code || len(codes) != 1 || codes[0] != float64(tc.aadsts) || !strings.HasPrefix(desc, "AADSTS"+strconv.Itoa(tc.aadsts)+": ") {
			t.Errorf("%s: %d %v, want %d %s AADSTS%d", name, status, body, tc.status, tc.code, tc.aadsts)
			continue
		}
		if body["correlation_id"] != "0a1b2c3d-0000-4000-8000-00000000abcd" || body["trace_id"] == "" || hdr.Get("x-ms-request-id") != body["trace_id"] {
			t.Errorf("%s: ids %v %v", name, body, hdr)
		}
		if _, err := time.Parse("2006-01-02 15:04:05Z", body["timestamp"].(string)); err != nil {
			t.Errorf("%s: timestamp %v", name, body["timestamp"])
		}
		if hdr.Get("WWW-Authenticate") != "" || hdr.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", name, hdr)
		}
		if strings.Contains(desc, f.reader.ClientSecret) {
			t.Errorf("%s: the description shows the secret", name)
		}
	}
	// Not a form; a GET.
	req, _ := http.NewRequest("POST", f.url+v2, strings.NewReader(`{"grant_type":"client_credentials"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e identity.AADErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 400 || e.Error != "invalid_request" || e.CorrelationID == "" {
		t.Errorf("a JSON body: %d %+v", resp.StatusCode, e)
	}
}

// TestAADTokenRateLimits: the endpoints count wrong secrets as
// /oauth2/token does, per client id whatever the address and per address:
// past the limit, 429 with Retry-After in Azure AD's body, and the right
// secret waits its turn too.
func TestAADTokenRateLimits(t *testing.T) {
	f := newAADFixture(t, tchttp.Limits{AuthFailures: 1000, NameFailures: 3, AuthFailureWindow: time.Minute})
	bad := url.Values{"grant_type": {"client_credentials"}, "client_id": {f.reader.ClientID}, "client_secret": {"wrong"}, "scope": {"https://management.azure.com/.default"}}
	for i := range 3 {
		path := "/" + f.tenant + "/oauth2/v2.0/token"
		if i == 1 {
			bad.Set("resource", "https://management.azure.com/")
			path = "/" + f.tenant + "/oauth2/token"
		}
		if st, body, _ := f.aadPost(t, path, bad); st != 401 {
			t.Fatalf("failure %d: %d %v", i, st, body)
		}
	}
	bad.Del("resource")
	good := url.Values{"grant_type": {"client_credentials"}, "client_id": {f.reader.ClientID}, "client_secret": {f.reader.ClientSecret}, "scope": {"https://management.azure.com/.default"}}
	for _, form := range []url.Values{bad, good} {
		st, body, hdr := f.aadPost(t, "/"+f.tenant+"/oauth2/v2.0/token", form)
		codes, _ := body["error_codes"].([]any)
		if st != 429 || body["error"] != "temporarily_unavailable" || len(codes) != 1 || hdr.Get("Retry-After") == "" {
			t.Errorf("past the limit: %d %v %v", st, body, hdr)
		}
	}
	// The native endpoint shares the count: the same client id is limited there.
	req, _ := http.NewRequest("POST", f.url+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "client_id": {f.reader.ClientID}, "client_secret": {f.reader.ClientSecret}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := f.httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 {
		t.Errorf("/oauth2/token for the limited client: %d", resp.StatusCode)
	}
}

// FuzzAADToken: whatever form and headers a caller sends to either
// endpoint, the answer is a token or Azure AD's error body with 400 or
// 401, never another status, a server error or a challenge.
func FuzzAADToken(f *testing.F) {
	fx := newAADFixture(f, tchttp.Limits{AuthFailures: 1 << 30, NameFailures: 1 << 30})
	good := url.Values{"grant_type": {"client_credentials"}, "client_id": {fx.reader.ClientID}, "client_secret": {fx.reader.ClientSecret}, "scope": {"https://management.azure.com//.default openid"}, "resource": {"https://management.azure.com/"}}.Encode()
	f.Add(good, fx.tenant, true, "")
	f.Add(good, fx.tenant, false, fx.reader.ClientID+":"+fx.reader.ClientSecret)
	f.Add("grant_type=client_credentials&scope=%zz", "common", true, "%zz:%")
	f.Add("a=1&a=2;b", strings.ToUpper(fx.tenant), false, ":")
	client := fx.httpClient()
	f.Fuzz(func(t *testing.T, body, tenant string, v2 bool, basic string) {
		if tenant == "" || strings.ContainsAny(tenant, "/?#%") || !isPathSegment(tenant) {
			return
		}
		path := "/" + tenant + "/oauth2/token"
		if v2 {
			path = "/" + tenant + "/oauth2/v2.0/token"
		}
		req, err := http.NewRequest("POST", fx.url+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if id, secret, ok := strings.Cut(basic, ":"); ok {
			req.SetBasicAuth(id, secret)
		}
		resp, err := client.Do(req)
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
			if code, _ := m["error"].(string); code == "" || code == "server_error" || m["error_codes"] == nil {
				t.Fatalf("%d: %v", resp.StatusCode, m)
			}
		default:
			t.Fatalf("status %d: %v", resp.StatusCode, m)
		}
		if resp.Header.Get("WWW-Authenticate") != "" {
			t.Fatal("a challenge")
		}
	})
}

// isPathSegment reports whether s can be a path segment as sent (printable
// ASCII without spaces), so the request reaches the route.
func isPathSegment(s string) bool {
	for _, r := range s {
		if r <= ' ' || r >= 0x7f {
			return false
		}
	}
	return s != "." && s != ".."
}
