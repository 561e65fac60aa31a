package http

import (
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/identity"
)

// The Azure AD-shaped endpoints (identity.Service.AADToken): the token
// endpoints azidentity/MSAL (v2.0) and ADAL (v1) post to, the tenant's
// OpenID configurations and keys, and Azure AD's error bodies. Their
// errors are never a challenge: no WWW-Authenticate.

// aadRoutes are the Azure AD-shaped endpoints; NewServer adds them with
// the identity routes.
func (s *Server) aadRoutes() []route {
	return []route{
		{Method: "POST", Path: "/{tenant}/oauth2/token", ID: "aadTokenV1", Summary: "Azure AD v1 token endpoint (ADAL): application/x-www-form-urlencoded grant_type=client_credentials, client_id, client_secret, resource (an accepted audience, e.g. https://management.azure.com/); {tenant} is the server's tenant id. Answers Azure AD's v1 token body, or its error body (AADSTS codes).", Auth: "anonymous", Response: identity.AADTokenV1Body{}, Handler: s.handleAADToken(false)},
		{Method: "POST", Path: "/{tenant}/oauth2/v2.0/token", ID: "aadTokenV2", Summary: "Azure AD v2.0 token endpoint (azidentity, MSAL): application/x-www-form-urlencoded grant_type=client_credentials, client_id, client_secret, scope=RESOURCE/.default; {tenant} is the server's tenant id. Answers Azure AD's v2.0 token body, or its error body (AADSTS codes).", Auth: "anonymous", Response: identity.AADTokenV2Body{}, Handler: s.handleAADToken(true)},
		{Method: "GET", Path: "/{tenant}/v2.0/.well-known/openid-configuration", ID: "aadOpenIDConfigurationV2", Summary: "The tenant's OpenID configuration (v2.0), as MSAL reads it with instance discovery disabled.", Auth: "anonymous", Response: identity.TenantDiscovery{}, Handler: s.handleTenantDiscovery(true)},
		{Method: "GET", Path: "/{tenant}/.well-known/openid-configuration", ID: "aadOpenIDConfigurationV1", Summary: "The tenant's OpenID configuration (v1).", Auth: "anonymous", Response: identity.TenantDiscovery{}, Handler: s.handleTenantDiscovery(false)},
		{Method: "GET", Path: "/{tenant}/discovery/v2.0/keys", ID: "aadKeysV2", Summary: "The public keys that verify the tenant's tokens (v2.0 path).", Auth: "anonymous", Response: identity.JWKS{}, Handler: s.handleTenantKeys},
		{Method: "GET", Path: "/{tenant}/oauth2/v2.0/authorize", ID: "aadAuthorizeV2", Summary: "The authorization endpoint the OpenID configuration names: refused (unsupported_response_type, AADSTS700054), as the server issues tokens by client credentials only.", Auth: "anonymous", Response: identity.AADErrorBody{}, Status: 400, Handler: s.handleAADAuthorize},
		{Method: "GET", Path: "/{tenant}/oauth2/authorize", ID: "aadAuthorizeV1", Summary: "The v1 authorization endpoint: refused as v2.0's.", Auth: "anonymous", Response: identity.AADErrorBody{}, Status: 400, Handler: s.handleAADAuthorize},
		{Method: "GET", Path: "/{tenant}/discovery/keys", ID: "aadKeysV1", Summary: "The public keys that verify the tenant's tokens (v1 path).", Auth: "anonymous", Response: identity.JWKS{}, Handler: s.handleTenantKeys},
	}
}

// handleAADToken serves a token endpoint: the secret is checked under the
// limits of /oauth2/token (admitClaim, per address and per client id).
func (s *Server) handleAADToken(v2 bool) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req identity.AADTokenRequest
		var tok *identity.AADToken
		err := s.admitTokenRequest(w, r, func() (string, error) {
			var aerr *identity.AADError
			if req, aerr = aadTokenRequest(r, v2); aerr != nil {
				return "", aerr
			}
			return req.ClientID, nil
		}, func() (err error) {
			tok, err = s.identity.AADToken(r.Context(), req)
			return err
		})
		if err != nil {
			s.aadError(w, r, err)
			return nil
		}
		if c := r.Header.Get("client-request-id"); isCorrelationID(c) {
			w.Header().Set("client-request-id", c) // as Azure AD repeats it
		}
		writeJSON(w, 200, tok.Body())
		return nil
	}
}

// admitTokenRequest runs check, the check of a token request's client
// secret (read reads the request and returns its client id), under the
// limits of failed authentications per address and per client id
// (admitClaim), notes the client in the audit record, and marks the answer
// uncacheable.
func (s *Server) admitTokenRequest(w http.ResponseWriter, r *http.Request, read func() (clientID string, err error), check func() error) error {
	clientID, ok := "", false
	err := s.admitClaim(w, r, credOAuth2, func() (string, error) {
		id, err := read()
		clientID, ok = id, err == nil
		return id, err
	}, check)
	if ok {
		if err == nil {
			noteAuditPrincipal(r.Context(), &tripcap.Principal{ID: clientID, Kind: tripcap.PrincipalService, Name: clientID})
		} else {
			noteAuditClaim(r.Context(), clientID)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	return err
}

// aadError writes err as Azure AD's error body: an *identity.AADError as
// it is, a refusal of the limits as temporarily_unavailable (Retry-After
// is set), anything else as a server error (logged, not shown).
func (s *Server) aadError(w http.ResponseWriter, r *http.Request, err error) {
	var aerr *identity.AADError
	if status, ok := refusalStatus(err); ok {
		aerr = identity.AADThrottled(status, tripcap.ErrorMessage(err))
	} else if !errors.As(err, &aerr) {
		if r.Context().Err() == nil {
			s.log.Error("Azure AD-shaped request failed", "method", r.Method, "path", r.URL.Path, "err", tripcap.RedactURLs(err.Error()))
		}
		aerr = identity.AADServerError()
	}
	trace := identity.NewGUID()
	w.Header().Set("x-ms-request-id", trace)
	correlation := r.Header.Get("client-request-id")
	if !isCorrelationID(correlation) {
		correlation = identity.NewGUID()
	}
	w.Header().Set("client-request-id", correlation)
	writeJSON(w, aerr.Status, aerr.Body(time.Now(), trace, correlation))
}

// isCorrelationID reports whether a client's client-request-id may be
// repeated back: a GUID-like string of hex digits and dashes.
func isCorrelationID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F' || r == '-') {
			return false
		}
	}
	return true
}

// aadTokenRequest reads a token request's form and client authentication
// (the form's client_id and client_secret, or HTTP Basic).
func aadTokenRequest(r *http.Request, v2 bool) (identity.AADTokenRequest, *identity.AADError) {
	req := identity.AADTokenRequest{V2: v2, Tenant: r.PathValue("tenant")}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return req, identity.AADBadRequest("The request body must be application/x-www-form-urlencoded.")
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxTokenForm)
	if err := r.ParseForm(); err != nil {
		return req, identity.AADBadRequest("The request body is not a form of at most 16 KiB.")
	}
	basic, ok := basicAuth(r)
	if !ok {
		return req, identity.AADBadRequest("Client authentication: malformed HTTP Basic credentials.")
	}
	return identity.ParseAADTokenForm(req, r.PostForm, basic)
}

// basicAuth returns the request's HTTP Basic credentials, form-decoded
// (RFC 6749 §2.3.1), nil without any, and false when they are malformed.
func basicAuth(r *http.Request) (*url.Userinfo, bool) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		return nil, !strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "basic ")
	}
	var err1, err2 error
	if id, err1 = url.QueryUnescape(id); err1 == nil {
		secret, err2 = url.QueryUnescape(secret)
	}
	if err1 != nil || err2 != nil || id == "" {
		return nil, false
	}
	return url.UserPassword(id, secret), true
}

// requestBase is the URL the client reached the server at: the
// configured issuer's when the request came to its host, else the
// request's scheme and host.
func (s *Server) requestBase(r *http.Request) string {
	iss := s.identity.Config().Issuer
	if u, err := url.Parse(iss); err == nil && strings.EqualFold(u.Host, r.Host) {
		return strings.TrimRight(iss, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) handleTenantDiscovery(v2 bool) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		d, err := s.identity.TenantDiscovery(s.requestBase(r), r.PathValue("tenant"), v2)
		if err != nil {
			s.aadError(w, r, err)
			return nil
		}
		w.Header().Set("Cache-Control", "max-age=300")
		writeJSON(w, 200, d)
		return nil
	}
}

func (s *Server) handleAADAuthorize(w http.ResponseWriter, r *http.Request) error {
	s.aadError(w, r, s.identity.AADAuthorize(r.PathValue("tenant")))
	return nil
}

func (s *Server) handleTenantKeys(w http.ResponseWriter, r *http.Request) error {
	if !s.identity.IsTenant(r.PathValue("tenant")) {
		s.aadError(w, r, identity.AADUnknownTenant(r.PathValue("tenant")))
		return nil
	}
	doc, err := s.identity.JWKS(r.Context())
	if err != nil {
		s.aadError(w, r, err)
		return nil
	}
	w.Header().Set("Cache-Control", "max-age=300")
	writeJSON(w, 200, doc)
	return nil
}
