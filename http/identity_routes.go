package http

import (
	"errors"
	"mime"
	"net/http"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/identity"
)

// WithIdentity serves users, service principals, tokens, role assignments,
// login, the OAuth2 token endpoint and its discovery documents, and the
// bootstrap admin token's rotation.
func WithIdentity(id *identity.Service) Option { return func(s *Server) { s.identity = id } }

// CreatePrincipalBody is the body of POST /api/v1/principals.
type CreatePrincipalBody struct {
	Kind tripcap.PrincipalKind `json:"kind"`
	Name string                `json:"name"`
	// Password is a user's (at least 12 characters); service principals get a generated secret.
	Password string `json:"password,omitempty"`
}

// CreateTokenBody is the body of POST /api/v1/tokens and /api/v1/principals/{principal}/tokens.
type CreateTokenBody struct {
	Name      string    `json:"name,omitempty"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// RoleAssignmentBody is the body of POST /api/v1/role-assignments.
type RoleAssignmentBody struct {
	Principal string           `json:"principal"`
	Role      tripcap.RoleName `json:"role"`
	Scope     tripcap.Scope    `json:"scope,omitempty"`
}

// LoginBody is the body of POST /api/v1/login.
type LoginBody struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// AdminTokenBody is the answer of POST /api/v1/admin-token/rotate.
type AdminTokenBody struct {
	Token string `json:"token"`
}

// maxTokenForm bounds the token endpoint's form body.
const maxTokenForm = 16 << 10

// identityRoutes are the API of identities (identity.Service) and of the
// bootstrap admin token; NewServer adds them when WithIdentity is given.
func (s *Server) identityRoutes() []route {
	principalParam := []param{{"principal", "string", "whose: a name or id (default: the caller's)"}}
	return []route{
		{Method: "POST", Path: "/api/v1/principals", ID: "createPrincipal", Summary: "Create a user (with a password) or a service principal (its client secret is in the answer, shown only then).", Perm: tripcap.PermAccessWrite, Request: CreatePrincipalBody{}, Response: &tripcap.PrincipalRecord{}, Status: 201, Handler: s.handleCreatePrincipal},
		{Method: "GET", Path: "/api/v1/principals", ID: "listPrincipals", Summary: "List users and service principals.", Perm: tripcap.PermAccessWrite, Query: []param{{"kind", "string", "user or servicePrincipal"}}, Response: List[*tripcap.PrincipalRecord]{}, Handler: s.handleListPrincipals},
		{Method: "GET", Path: "/api/v1/principals/{principal}", ID: "getPrincipal", Perm: tripcap.PermAccessWrite, Summary: "Get a user or service principal by name or id (yourself, or anyone with access/write).", Response: &tripcap.PrincipalRecord{}, Handler: s.handleGetPrincipal},
		{Method: "DELETE", Path: "/api/v1/principals/{principal}", ID: "deletePrincipal", Summary: "Delete a user or service principal, its tokens and role assignments.", Perm: tripcap.PermAccessWrite, Status: 204, Handler: s.handleDeletePrincipal},
		{Method: "GET", Path: "/api/v1/principals/{principal}/tokens", ID: "listPrincipalTokens", Perm: tripcap.PermAccessWrite, Summary: "List a principal's API tokens, without secrets (yours, or anyone's with access/write).", Response: List[*tripcap.APIToken]{}, Handler: s.handleListTokens},
		{Method: "POST", Path: "/api/v1/principals/{principal}/tokens", ID: "createPrincipalToken", Perm: tripcap.PermAccessWrite, Summary: "Create an API token for a principal (yourself, or anyone with access/write; expiresAt required, at most a year away); the answer holds it, shown only then.", Request: CreateTokenBody{}, Response: &tripcap.APIToken{}, Status: 201, Handler: s.handleCreateToken},

		{Method: "GET", Path: "/api/v1/tokens", ID: "listTokens", Summary: "List the caller's API tokens (without secrets).", Response: List[*tripcap.APIToken]{}, Handler: s.handleListTokens},
		{Method: "POST", Path: "/api/v1/tokens", ID: "createToken", Summary: "Create a personal API token for the caller (expiresAt required, at most a year away); the answer holds it, shown only then.", Request: CreateTokenBody{}, Response: &tripcap.APIToken{}, Status: 201, Handler: s.handleCreateToken},
		{Method: "DELETE", Path: "/api/v1/tokens/{id}", ID: "revokeToken", Perm: tripcap.PermAccessWrite, Summary: "Revoke an API token (the caller's own, or any with access/write).", Status: 204, Handler: s.handleRevokeToken},

		{Method: "GET", Path: "/api/v1/role-assignments", ID: "listRoleAssignments", Perm: tripcap.PermAccessWrite, Summary: "List role assignments (a principal's: the caller may list their own).", Query: principalParam[:1], Response: List[*tripcap.RoleAssignment]{}, Handler: s.handleListRoleAssignments},
		{Method: "POST", Path: "/api/v1/role-assignments", ID: "createRoleAssignment", Summary: "Grant a principal a role at a scope (default \"*\").", Perm: tripcap.PermAccessWrite, Request: RoleAssignmentBody{}, Response: &tripcap.RoleAssignment{}, Status: 201, Handler: s.handleCreateRoleAssignment},
		{Method: "DELETE", Path: "/api/v1/role-assignments/{id}", ID: "deleteRoleAssignment", Summary: "Remove a role assignment.", Perm: tripcap.PermAccessWrite, Status: 204, Handler: s.handleDeleteRoleAssignment},

		{Method: "POST", Path: "/api/v1/admin-token/rotate", ID: "rotateAdminToken", Summary: "Issue a new bootstrap admin token (written to the server's token file, and in the answer) and revoke the old.", Perm: tripcap.PermAccessWrite, Response: AdminTokenBody{}, Handler: s.handleRotateAdminToken},
		{Method: "DELETE", Path: "/api/v1/admin-token", ID: "revokeAdminToken", Summary: "Revoke the bootstrap admin token (refused while no principal holds Owner at \"*\").", Perm: tripcap.PermAccessWrite, Status: 204, Handler: s.handleRevokeAdminToken},

		{Method: "POST", Path: "/api/v1/login", ID: "login", Summary: "Log in with a user's name and password: the answer holds an API token valid for 12 h.", Auth: "anonymous", Request: LoginBody{}, Response: &tripcap.APIToken{}, Status: 201, Handler: s.handleLogin},
		{Method: "POST", Path: "/oauth2/token", ID: "oauth2Token", Summary: "OAuth2 token endpoint (RFC 6749 §4.4): application/x-www-form-urlencoded grant_type=client_credentials, client_id, client_secret (or HTTP Basic), scope or audience; answers a JWT, or an RFC 6749 §5.2 error.", Auth: "anonymous", Response: identity.TokenResponse{}, Handler: s.handleOAuthToken},
		{Method: "GET", Path: "/.well-known/jwks.json", ID: "jwks", Summary: "The public keys that verify this server's JWTs.", Auth: "anonymous", Response: identity.JWKS{}, Handler: s.handleJWKS},
		{Method: "GET", Path: "/.well-known/openid-configuration", ID: "openidConfiguration", Summary: "OpenID Provider metadata: issuer, token endpoint, JWKS URI.", Auth: "anonymous", Response: identity.Discovery{}, Handler: s.handleDiscovery},
	}
}

func (s *Server) handleCreatePrincipal(w http.ResponseWriter, r *http.Request) error {
	var in CreatePrincipalBody
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	var p *tripcap.PrincipalRecord
	var err error
	switch in.Kind {
	case tripcap.PrincipalUser:
		p, err = s.identity.CreateUser(r.Context(), in.Name, in.Password)
	case tripcap.PrincipalService:
		if in.Password != "" {
			return tripcap.Errorf(tripcap.EINVALID, "password: a service principal takes none (its client secret is generated)")
		}
		p, err = s.identity.CreateServicePrincipal(r.Context(), in.Name)
	default:
		return tripcap.Errorf(tripcap.EINVALID, "kind: %q is not %q or %q", in.Kind, tripcap.PrincipalUser, tripcap.PrincipalService)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/principals/"+p.ID)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, 201, p)
	return nil
}

func (s *Server) handleListPrincipals(w http.ResponseWriter, r *http.Request) error {
	list, err := s.identity.FindPrincipals(r.Context(), tripcap.PrincipalKind(r.URL.Query().Get("kind")))
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.PrincipalRecord]{Value: nonNil(list)})
	return nil
}

func (s *Server) handleGetPrincipal(w http.ResponseWriter, r *http.Request) error {
	p, err := s.identity.FindPrincipal(r.Context(), r.PathValue("principal"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, p)
	return nil
}

func (s *Server) handleDeletePrincipal(w http.ResponseWriter, r *http.Request) error {
	if err := s.identity.DeletePrincipal(r.Context(), r.PathValue("principal")); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

// handleListTokens serves a principal's tokens, or the caller's without one.
func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) error {
	list, err := s.identity.FindTokens(r.Context(), r.PathValue("principal"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.APIToken]{Value: nonNil(list)})
	return nil
}

func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) error {
	var in CreateTokenBody
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	t, err := s.identity.CreateToken(r.Context(), r.PathValue("principal"), in.Name, in.ExpiresAt)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, 201, t)
	return nil
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) error {
	if err := s.identity.RevokeToken(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) handleListRoleAssignments(w http.ResponseWriter, r *http.Request) error {
	list, err := s.identity.FindRoleAssignments(r.Context(), r.URL.Query().Get("principal"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.RoleAssignment]{Value: nonNil(list)})
	return nil
}

func (s *Server) handleCreateRoleAssignment(w http.ResponseWriter, r *http.Request) error {
	var in RoleAssignmentBody
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	a, err := s.identity.AssignRole(r.Context(), in.Principal, in.Role, in.Scope)
	if err != nil {
		return err
	}
	writeJSON(w, 201, a)
	return nil
}

func (s *Server) handleDeleteRoleAssignment(w http.ResponseWriter, r *http.Request) error {
	if err := s.identity.DeleteRoleAssignment(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) handleRotateAdminToken(w http.ResponseWriter, r *http.Request) error {
	secret, err := s.svc.RotateAdmin(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, 200, AdminTokenBody{Token: secret})
	return nil
}

func (s *Server) handleRevokeAdminToken(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.RevokeAdmin(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

// handleLogin checks a password under the limits of failed
// authentications, per address and per user name (admitClaim).
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var in LoginBody
	var t *tripcap.APIToken
	read := false
	err := s.admitClaim(w, r, credLogin, func() (string, error) {
		if err := decodeJSON(r, &in); err != nil {
			return "", err
		}
		read = true
		return in.User, nil
	}, func() (err error) {
		t, err = s.identity.Login(r.Context(), in.User, in.Password)
		return err
	})
	if err != nil {
		if read {
			noteAuditClaim(r.Context(), in.User)
		}
		return err
	}
	noteAuditPrincipal(r.Context(), &tripcap.Principal{ID: t.PrincipalID, Kind: tripcap.PrincipalUser, Name: in.User})
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, 201, t)
	return nil
}

// handleOAuthToken is the OAuth2 token endpoint: its errors are RFC 6749
// §5.2 bodies, not the API's. Client secrets are checked under the limits
// of failed authentications, per address and per client id (admitClaim).
func (s *Server) handleOAuthToken(w http.ResponseWriter, r *http.Request) error {
	var req identity.TokenRequest
	var res *identity.TokenResponse
	err := s.admitTokenRequest(w, r, func() (string, error) {
		var oerr *identity.OAuthError
		if req, oerr = tokenRequest(r); oerr != nil {
			return "", oerr
		}
		return req.ClientID, nil
	}, func() (err error) {
		res, err = s.identity.Token(r.Context(), req)
		return err
	})
	var oerr *identity.OAuthError
	if status, ok := refusalStatus(err); ok {
		// Too many failures, or too busy: Retry-After is set.
		writeJSON(w, status, &identity.OAuthError{Code: "temporarily_unavailable", Description: tripcap.ErrorMessage(err)})
		return nil
	}
	if err != nil && !errors.As(err, &oerr) {
		if tripcap.ErrorCode(err) == tripcap.EINTERNAL {
			s.log.Error("token request failed", "err", err)
		}
		writeJSON(w, 500, &identity.OAuthError{Code: "server_error", Description: tripcap.ErrorMessage(err)})
		return nil
	}
	if oerr != nil {
		if oerr.Status() == 401 {
			w.Header().Set("WWW-Authenticate", `Basic realm="tripcap"`)
		}
		writeJSON(w, oerr.Status(), oerr)
		return nil
	}
	writeJSON(w, 200, res)
	return nil
}

// tokenRequest reads a token request's form and client authentication
// (HTTP Basic with form-encoded id and secret, RFC 6749 §2.3.1, or the form's).
func tokenRequest(r *http.Request) (identity.TokenRequest, *identity.OAuthError) {
	var req identity.TokenRequest
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return req, &identity.OAuthError{Code: "invalid_request", Description: "Content-Type: must be application/x-www-form-urlencoded"}
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxTokenForm)
	if err := r.ParseForm(); err != nil {
		return req, &identity.OAuthError{Code: "invalid_request", Description: "body: not a form of at most 16 KiB"}
	}
	f := r.PostForm
	for _, k := range []string{"grant_type", "client_id", "client_secret", "scope", "audience"} {
		if len(f[k]) > 1 {
			return req, &identity.OAuthError{Code: "invalid_request", Description: k + ": given more than once"}
		}
	}
	req = identity.TokenRequest{GrantType: f.Get("grant_type"), ClientID: f.Get("client_id"), ClientSecret: f.Get("client_secret"),
		Scope: f.Get("scope"), Audience: f.Get("audience")}
	basic, ok := basicAuth(r)
	if !ok || basic != nil && req.ClientID != "" && req.ClientID != basic.Username() {
		return req, &identity.OAuthError{Code: "invalid_request", Description: "client authentication: malformed HTTP Basic credentials"}
	}
	if basic != nil {
		if req.ClientSecret != "" {
			return req, &identity.OAuthError{Code: "invalid_request", Description: "client authentication: use HTTP Basic or the form, not both"}
		}
		req.ClientID = basic.Username()
		req.ClientSecret, _ = basic.Password()
	}
	return req, nil
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) error {
	doc, err := s.identity.JWKS(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "max-age=300")
	writeJSON(w, 200, doc)
	return nil
}

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "max-age=300")
	writeJSON(w, 200, s.identity.Discovery())
	return nil
}
