package identity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tripcap/tripcap"
)

// The Azure AD-shaped token service: what azidentity/MSAL (v2,
// POST /{tenant}/oauth2/v2.0/token with scope=…/.default) and ADAL (v1,
// POST /{tenant}/oauth2/token with resource=…) send for the client
// credentials grant, answered as Azure AD answers, on tripcap's service
// principals. Tokens are shaped as Azure Resource Manager's are (v1 tokens
// whichever endpoint issued them: iss {base}/{tenant}/, tid, appid, oid).

// DefaultARMAudiences are the Azure Resource Manager audiences tokens are
// issued for by default: the SDK's cloud.AzurePublic audience and the
// endpoint users write.
var DefaultARMAudiences = []string{"https://management.azure.com/", "https://management.core.windows.net/"}

// AADTokenRequest is a client-credentials request to an Azure AD-shaped
// token endpoint.
type AADTokenRequest struct {
	// V2 is the v2.0 endpoint (scope=…/.default); else v1 (resource=…).
	V2 bool
	// Tenant is the tenant of the path.
	Tenant       string
	GrantType    string
	ClientID     string
	ClientSecret string
	// Resource is v1's resource; Scope is v2's space-separated scopes.
	Resource string
	Scope    string
	// ClientAssertion is set when the client sent a certificate's
	// assertion instead of a secret (refused: tripcap's service principals
	// have secrets).
	ClientAssertion bool
}

// aadParams are the form fields read; each may be given once.
var aadParams = []string{"grant_type", "client_id", "client_secret", "resource", "scope", "client_assertion", "client_assertion_type"}

// ParseAADTokenForm reads a token request's form fields into req, with
// the client's HTTP Basic credentials (nil without). A field given twice,
// or Basic beside a form secret, is refused.
func ParseAADTokenForm(req AADTokenRequest, f url.Values, basic *url.Userinfo) (AADTokenRequest, *AADError) {
	for _, k := range aadParams {
		if len(f[k]) > 1 {
			return req, AADDuplicate(k)
		}
	}
	req.GrantType, req.ClientID, req.ClientSecret = f.Get("grant_type"), f.Get("client_id"), f.Get("client_secret")
	req.Resource, req.Scope = f.Get("resource"), f.Get("scope")
	req.ClientAssertion = f.Get("client_assertion") != "" || f.Get("client_assertion_type") != ""
	if basic != nil {
		id := basic.Username()
		secret, _ := basic.Password()
		if req.ClientSecret != "" {
			return req, AADBadRequest("Client authentication: use HTTP Basic or the form's client_secret, not both.")
		}
		if req.ClientID != "" && req.ClientID != id {
			return req, AADBadRequest("Client authentication: the form's client_id is not HTTP Basic's.")
		}
		req.ClientID, req.ClientSecret = id, secret
	}
	return req, nil
}

// AADToken is a token the Azure AD-shaped endpoints issued.
type AADToken struct {
	V2          bool
	AccessToken string
	// Resource is the resource as the request named it (v1 echoes it).
	Resource  string
	NotBefore time.Time
	ExpiresAt time.Time
}

// AADTokenV1Body is v1's answer: numbers as strings, as Azure AD writes them.
type AADTokenV1Body struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    string `json:"expires_in"`
	ExtExpiresIn string `json:"ext_expires_in"`
	ExpiresOn    string `json:"expires_on"`
	NotBefore    string `json:"not_before"`
	Resource     string `json:"resource"`
	AccessToken  string `json:"access_token"`
}

// AADTokenV2Body is v2's answer.
type AADTokenV2Body struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
}

// Body is the answer's JSON body: v1's or v2's shape.
func (t *AADToken) Body() any {
	in := int(t.ExpiresAt.Sub(t.NotBefore) / time.Second)
	if t.V2 {
		return AADTokenV2Body{TokenType: "Bearer", ExpiresIn: in, ExtExpiresIn: in, AccessToken: t.AccessToken}
	}
	n := strconv.Itoa(in)
	return AADTokenV1Body{TokenType: "Bearer", ExpiresIn: n, ExtExpiresIn: n, ExpiresOn: strconv.FormatInt(t.ExpiresAt.Unix(), 10),
		NotBefore: strconv.FormatInt(t.NotBefore.Unix(), 10), Resource: t.Resource, AccessToken: t.AccessToken}
}

// AADError is a refusal as Azure AD writes it: an OAuth2 error code and an
// AADSTS number with its description.
type AADError struct {
	Status      int
	Code        string
	AADSTS      int
	Description string
}

func (e *AADError) Error() string {
	return fmt.Sprintf("%s: AADSTS%d: %s", e.Code, e.AADSTS, e.Description)
}

// Unwrap is the error as the rest of tripcap classifies it: a wrong client
// secret is EUNAUTHORIZED (the failure limits count it), the rest EINVALID.
func (e *AADError) Unwrap() error {
	if e.Code == "invalid_client" {
		return tripcap.Errorf(tripcap.EUNAUTHORIZED, "%s", e.Description)
	}
	return tripcap.Errorf(tripcap.EINVALID, "%s", e.Description)
}

// AADErrorBody is the JSON of an AADError.
type AADErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
}

// aadTimestamp is Azure AD's timestamp layout ("2016-01-09 02:02:12Z").
const aadTimestamp = "2006-01-02 15:04:05Z"

// Body is the error's JSON body at now, with the answer's trace id and the
// client's correlation id, which Azure AD repeats in the description.
func (e *AADError) Body(now time.Time, traceID, correlationID string) AADErrorBody {
	ts := now.UTC().Format(aadTimestamp)
	return AADErrorBody{Error: e.Code, ErrorCodes: []int{e.AADSTS}, Timestamp: ts, TraceID: traceID, CorrelationID: correlationID,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", e.AADSTS, e.Description, traceID, correlationID, ts)}
}

func aadErr(status int, code string, aadsts int, format string, args ...any) *AADError {
	return &AADError{Status: status, Code: code, AADSTS: aadsts, Description: fmt.Sprintf(format, args...)}
}

// AADMissing is the refusal of a request without a required parameter.
func AADMissing(name string) *AADError {
	return aadErr(400, "invalid_request", 900144, "The request body must contain the following parameter: '%s'.", name)
}

// AADDuplicate is the refusal of a parameter given more than once.
func AADDuplicate(name string) *AADError {
	return aadErr(400, "invalid_request", 9000411, "The request is not properly formatted. The parameter '%s' is duplicated.", name)
}

// AADBadRequest is the refusal of a request that is not a form post.
func AADBadRequest(why string) *AADError {
	return aadErr(400, "invalid_request", 900144, "%s", why)
}

// AADUnknownTenant is the refusal of a path naming a tenant not this server's.
func AADUnknownTenant(tenant string) *AADError {
	return aadErr(400, "invalid_tenant", 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", clip(printable(tenant)))
}

// AADThrottled is the refusal of a caller that failed too often or a
// server too busy to check a secret now (Retry-After says when to retry).
func AADThrottled(status int, why string) *AADError {
	if status == 429 {
		return aadErr(429, "temporarily_unavailable", 50053, "%s", why)
	}
	return aadErr(status, "temporarily_unavailable", 90033, "%s", why)
}

// AADServerError is the answer to a request the server failed.
func AADServerError() *AADError {
	return aadErr(500, "server_error", 50000, "There was an error issuing a token. Try again later.")
}

// TenantID is the tenant the Azure AD-shaped endpoints serve.
func (s *Service) TenantID() string { return s.cfg.TenantID }

// Audiences are the audiences a JWT of this server may carry: the native
// one and Azure Resource Manager's.
func (s *Service) Audiences() []string {
	return append([]string{s.cfg.Audience}, s.cfg.ARMAudiences...)
}

// acceptedAudiences are the aud values a JWT is accepted with: the native
// audience, and each ARM audience with and without its trailing slash, as
// ARM accepts both (so replicas configured with either spelling accept
// each other's tokens).
func (s *Service) acceptedAudiences() []string {
	out := []string{s.cfg.Audience}
	for _, a := range s.cfg.ARMAudiences {
		bare := strings.TrimRight(a, "/")
		for _, v := range []string{bare + "/", bare} {
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// IsTenant reports whether a path's tenant is this server's (tenant ids
// are compared regardless of case, as Azure AD does).
func (s *Service) IsTenant(tenant string) bool { return strings.EqualFold(tenant, s.cfg.TenantID) }

// AADAuthorize is the answer of the authorization endpoints: the tenant's
// users sign in elsewhere (tripcap login); its service principals use the
// client credentials grant.
func (s *Service) AADAuthorize(tenant string) *AADError {
	if !s.IsTenant(tenant) {
		return AADUnknownTenant(tenant)
	}
	return aadErr(400, "unsupported_response_type", 700054, "This server issues tokens by the client credentials grant only (POST /%s/oauth2/v2.0/token); interactive sign-in is not offered.", s.cfg.TenantID)
}

// tenantIssuer is the iss of the Azure AD-shaped endpoints' tokens.
func (s *Service) tenantIssuer() string {
	return strings.TrimRight(s.cfg.Issuer, "/") + "/" + s.cfg.TenantID + "/"
}

// audienceOf returns the accepted audience a requested resource names, ""
// when none: compared regardless of case and of a trailing slash, as
// Azure AD compares identifier URIs ("https://management.azure.com" is
// "https://management.azure.com/").
func (s *Service) audienceOf(resource string) string {
	want := strings.TrimRight(resource, "/")
	if want == "" {
		return ""
	}
	for _, a := range s.Audiences() {
		if strings.EqualFold(strings.TrimRight(a, "/"), want) {
			return a
		}
	}
	return ""
}

// oidcScopes are the scopes MSAL adds to every request; a client-credentials
// token ignores them.
var oidcScopes = []string{"openid", "offline_access", "profile", "email"}

// ScopeResource returns the resource of a v2 request's scopes: exactly one
// "RESOURCE/.default" beside any OpenID scopes.
func ScopeResource(scope string) (string, *AADError) {
	var resources []string
	for _, sc := range strings.Fields(scope) {
		if slices.Contains(oidcScopes, sc) {
			continue
		}
		r, ok := strings.CutSuffix(sc, "/.default")
		if !ok || r == "" {
			return "", aadErr(400, "invalid_scope", 1002012, "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", clip(printable(sc)))
		}
		if !slices.Contains(resources, r) {
			resources = append(resources, r)
		}
	}
	switch len(resources) {
	case 0:
		return "", AADMissing("scope")
	case 1:
		return resources[0], nil
	}
	return "", aadErr(400, "invalid_scope", 28000, "Provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid.", clip(printable(scope)))
}

// AADToken answers a client-credentials request to the Azure AD-shaped
// endpoints with a JWT for the resource asked for (one of Audiences), or
// an *AADError. An unknown client id is answered as a wrong secret, so
// that client ids cannot be probed (Azure AD would say AADSTS700016).
func (s *Service) AADToken(ctx context.Context, req AADTokenRequest) (*AADToken, error) {
	if !s.IsTenant(req.Tenant) {
		return nil, AADUnknownTenant(req.Tenant)
	}
	switch req.GrantType {
	case "client_credentials":
	case "":
		return nil, AADMissing("grant_type")
	default:
		return nil, aadErr(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '%s'; this server issues tokens for client_credentials only.", clip(printable(req.GrantType)))
	}
	if req.ClientID == "" {
		return nil, AADMissing("client_id")
	}
	if req.ClientAssertion {
		return nil, aadErr(401, "invalid_client", 7000218, "client_assertion: not supported; tripcap's service principals authenticate with their client_secret.")
	}
	if req.ClientSecret == "" {
		return nil, aadErr(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	}
	resource := req.Resource
	if req.V2 {
		r, aerr := ScopeResource(req.Scope)
		if aerr != nil {
			return nil, aerr
		}
		resource = r
	} else if resource == "" {
		return nil, AADMissing("resource")
	}
	aud := s.audienceOf(resource)
	if aud == "" {
		return nil, aadErr(400, "invalid_resource", 500011, "The resource principal named %s was not found in the tenant named %s. This server issues tokens for %q only.", clip(printable(resource)), s.cfg.TenantID, s.Audiences())
	}
	sp, err := s.checkServiceSecret(ctx, req.ClientID, req.ClientSecret)
	if tripcap.ErrorCode(err) == tripcap.EUNAUTHORIZED {
		s.log.Warn("token request refused", "clientId", clip(printable(req.ClientID)), "endpoint", map[bool]string{true: "aad v2", false: "aad v1"}[req.V2])
		return nil, aadErr(401, "invalid_client", 7000215, "Invalid client secret provided, or no application with identifier '%s' in directory '%s'. Ensure the secret sent is the client secret value the service principal was created with.", clip(printable(req.ClientID)), s.cfg.TenantID)
	} else if err != nil {
		return nil, err
	}
	now := s.cfg.Now().Truncate(time.Second)
	claims := aadClaims{RegisteredClaims: s.registeredClaims(s.tenantIssuer(), sp.ID, aud, now),
		TenantID: s.cfg.TenantID, AppID: sp.ID, AppIDACR: "1", ObjectID: sp.ID, IDType: "app", Version: "1.0"}
	tok, err := s.sign(ctx, claims)
	if err != nil {
		return nil, err
	}
	return &AADToken{V2: req.V2, AccessToken: tok, Resource: resource, NotBefore: now, ExpiresAt: claims.ExpiresAt.Time}, nil
}

// aadClaims are an Azure Resource Manager access token's claims (v1
// tokens, as ARM is issued from both endpoints).
type aadClaims struct {
	jwt.RegisteredClaims
	TenantID string `json:"tid"`
	AppID    string `json:"appid"`
	// AppIDACR "1": the client authenticated with a secret.
	AppIDACR string `json:"appidacr"`
	ObjectID string `json:"oid"`
	IDType   string `json:"idtyp"`
	Version  string `json:"ver"`
}

// TenantDiscovery is the OpenID configuration of the tenant (v2.0 at
// /{tenant}/v2.0/.well-known/openid-configuration, v1 at
// /{tenant}/.well-known/openid-configuration), what MSAL reads with
// instance discovery disabled: its token endpoint, and an issuer on the
// authority's host.
type TenantDiscovery struct {
	Discovery
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	ScopesSupported       []string `json:"scopes_supported"`
	CloudInstanceName     string   `json:"cloud_instance_name"`
}

// TenantDiscovery returns the tenant's OpenID configuration with its
// endpoints under base, the URL the client reached the server at (so that
// MSAL's check that the issuer is on the authority's host passes however
// the server is reached), or an *AADError for another tenant.
func (s *Service) TenantDiscovery(base, tenant string, v2 bool) (*TenantDiscovery, error) {
	if !s.IsTenant(tenant) {
		return nil, AADUnknownTenant(tenant)
	}
	t := strings.TrimRight(base, "/") + "/" + s.cfg.TenantID
	d := &TenantDiscovery{Discovery: s.discovery(t+"/", t+"/oauth2/token", t+"/discovery/keys"), AuthorizationEndpoint: t + "/oauth2/authorize",
		ScopesSupported: []string{"openid"}, CloudInstanceName: hostOf(base)}
	d.SubjectTypesSupported = []string{"pairwise"}
	if v2 {
		d.Issuer, d.AuthorizationEndpoint, d.TokenEndpoint, d.JWKSURI = t+"/v2.0", t+"/oauth2/v2.0/authorize", t+"/oauth2/v2.0/token", t+"/discovery/v2.0/keys"
	}
	return d, nil
}

func hostOf(base string) string {
	if u, err := url.Parse(base); err == nil {
		return u.Hostname()
	}
	return ""
}

// DeriveTenantID is the default tenant id: a name-based UUID (RFC 9562 v5,
// URL namespace) of the issuer, so that every replica behind one public
// URL, and every restart, has the same tenant without storing it.
func DeriveTenantID(issuer string) string {
	return tripcap.NameGUID(tripcap.GUIDNamespaceURL, strings.TrimRight(issuer, "/"))
}

// NewGUID returns a random GUID (RFC 9562 v4), as Azure's trace and
// correlation ids are.
func NewGUID() string {
	u := make([]byte, 16)
	if _, err := rand.Read(u); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	u[6] = u[6]&0x0f | 0x40
	return formatGUID(u)
}

// formatGUID writes 16 bytes, their variant set, as 8-4-4-4-12 hex digits.
func formatGUID(u []byte) string {
	u[8] = u[8]&0x3f | 0x80
	x := hex.EncodeToString(u)
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

// checkAudience refuses an audience that cannot be one: empty, with
// spaces or controls, a scope (…/.default), or too long.
func checkAudience(a string) error {
	switch {
	case a == "":
		return fmt.Errorf("empty")
	case len(a) > 256:
		return fmt.Errorf("longer than 256 bytes")
	case strings.ContainsFunc(a, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("%q holds a space or a control character", a)
	case strings.HasSuffix(a, "/.default"):
		return fmt.Errorf("%q is a scope; give the resource without /.default", a)
	}
	return nil
}

// printable replaces what a caller sent that would not print.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
