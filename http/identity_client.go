package http

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/identity"
)

// CreateUser creates a user with a password.
func (c *Client) CreateUser(ctx context.Context, name, password string) (*tripcap.PrincipalRecord, error) {
	var out tripcap.PrincipalRecord
	return &out, c.do(ctx, "POST", "/api/v1/principals", nil, CreatePrincipalBody{Kind: tripcap.PrincipalUser, Name: name, Password: password}, &out)
}

// CreateServicePrincipal creates a service principal; the answer holds its
// client secret, shown only then.
func (c *Client) CreateServicePrincipal(ctx context.Context, name string) (*tripcap.PrincipalRecord, error) {
	var out tripcap.PrincipalRecord
	return &out, c.do(ctx, "POST", "/api/v1/principals", nil, CreatePrincipalBody{Kind: tripcap.PrincipalService, Name: name}, &out)
}

// ListPrincipals lists users and service principals ("" kind for both).
func (c *Client) ListPrincipals(ctx context.Context, kind tripcap.PrincipalKind) ([]*tripcap.PrincipalRecord, error) {
	q := url.Values{}
	if kind != "" {
		q.Set("kind", string(kind))
	}
	return listAll[*tripcap.PrincipalRecord](ctx, c, "/api/v1/principals", q)
}

// GetPrincipal returns a user or service principal by name or id.
func (c *Client) GetPrincipal(ctx context.Context, ref string) (*tripcap.PrincipalRecord, error) {
	var out tripcap.PrincipalRecord
	return &out, c.do(ctx, "GET", "/api/v1/principals/"+url.PathEscape(ref), nil, nil, &out)
}

// DeletePrincipal deletes a user or service principal with its tokens and assignments.
func (c *Client) DeletePrincipal(ctx context.Context, ref string) error {
	return c.do(ctx, "DELETE", "/api/v1/principals/"+url.PathEscape(ref), nil, nil, nil)
}

// tokensPath is a principal's tokens, or the caller's for "".
func tokensPath(principal string) string {
	if principal == "" {
		return "/api/v1/tokens"
	}
	return "/api/v1/principals/" + url.PathEscape(principal) + "/tokens"
}

// CreateToken creates an API token for a principal ("" for the caller).
func (c *Client) CreateToken(ctx context.Context, principal, name string, expiresAt time.Time) (*tripcap.APIToken, error) {
	var out tripcap.APIToken
	return &out, c.do(ctx, "POST", tokensPath(principal), nil, CreateTokenBody{Name: name, ExpiresAt: expiresAt}, &out)
}

// ListTokens lists a principal's API tokens ("" for the caller's), without secrets.
func (c *Client) ListTokens(ctx context.Context, principal string) ([]*tripcap.APIToken, error) {
	return listAll[*tripcap.APIToken](ctx, c, tokensPath(principal), url.Values{})
}

// RevokeToken revokes an API token.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/api/v1/tokens/"+url.PathEscape(id), nil, nil, nil)
}

// AssignRole grants a principal a role at a scope ("" for "*").
func (c *Client) AssignRole(ctx context.Context, principal string, role tripcap.RoleName, scope tripcap.Scope) (*tripcap.RoleAssignment, error) {
	var out tripcap.RoleAssignment
	return &out, c.do(ctx, "POST", "/api/v1/role-assignments", nil, RoleAssignmentBody{Principal: principal, Role: role, Scope: scope}, &out)
}

// ListRoleAssignments lists role assignments: a principal's, or all for "".
func (c *Client) ListRoleAssignments(ctx context.Context, principal string) ([]*tripcap.RoleAssignment, error) {
	q := url.Values{}
	if principal != "" {
		q.Set("principal", principal)
	}
	return listAll[*tripcap.RoleAssignment](ctx, c, "/api/v1/role-assignments", q)
}

// DeleteRoleAssignment removes a role assignment.
func (c *Client) DeleteRoleAssignment(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/api/v1/role-assignments/"+url.PathEscape(id), nil, nil, nil)
}

// RotateAdminToken issues a new bootstrap admin token and returns it; the old one is revoked.
func (c *Client) RotateAdminToken(ctx context.Context) (string, error) {
	var out AdminTokenBody
	return out.Token, c.do(ctx, "POST", "/api/v1/admin-token/rotate", nil, nil, &out)
}

// RevokeAdminToken revokes the bootstrap admin token.
func (c *Client) RevokeAdminToken(ctx context.Context) error {
	return c.do(ctx, "DELETE", "/api/v1/admin-token", nil, nil, nil)
}

// Login exchanges a user's name and password for an API token.
func (c *Client) Login(ctx context.Context, user, password string) (*tripcap.APIToken, error) {
	var out tripcap.APIToken
	return &out, c.do(ctx, "POST", "/api/v1/login", nil, LoginBody{User: user, Password: password}, &out)
}

// ClientCredentialsToken asks the OAuth2 token endpoint for a JWT with a
// service principal's client id and secret (sent as HTTP Basic). An OAuth2
// error answer comes back as *identity.OAuthError.
func (c *Client) ClientCredentialsToken(ctx context.Context, clientID, clientSecret, audience string) (*identity.TokenResponse, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if audience != "" {
		form.Set("audience", audience)
	}
	req, err := c.newRequest(ctx, "POST", "/oauth2/token", nil, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Del("Authorization")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(clientSecret))
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST /oauth2/token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("POST /oauth2/token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var oe identity.OAuthError
		if json.Unmarshal(body, &oe) == nil && oe.Code != "" {
			return nil, &oe
		}
		return nil, fmt.Errorf("POST /oauth2/token: server answered %s", resp.Status)
	}
	var out identity.TokenResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decode answer of POST /oauth2/token: %w", err)
	}
	return &out, nil
}

// JWKS returns the keys that verify the server's JWTs.
func (c *Client) JWKS(ctx context.Context) (*identity.JWKS, error) {
	var out identity.JWKS
	return &out, c.do(ctx, "GET", "/.well-known/jwks.json", nil, nil, &out)
}

// Discovery returns the server's OpenID Provider metadata.
func (c *Client) Discovery(ctx context.Context) (*identity.Discovery, error) {
	var out identity.Discovery
	return &out, c.do(ctx, "GET", "/.well-known/openid-configuration", nil, nil, &out)
}
