package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tripcap/tripcap"
)

// maxJWTBytes bounds a JWT handed to Verify: this server's are ~500 bytes.
const maxJWTBytes = 8 << 10

// clockLeeway is the clock difference between replicas (and clients) a
// token's times allow for.
const clockLeeway = 30 * time.Second

// TokenRequest is an OAuth2 token request (RFC 6749 §4.4, client credentials).
type TokenRequest struct {
	GrantType    string
	ClientID     string
	ClientSecret string
	// Scope or Audience name the audience wanted: "", the configured
	// audience, or the audience followed by "/.default" (as Azure AD's).
	Scope    string
	Audience string
}

// TokenResponse is a successful token answer (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// OAuthError is an OAuth2 error answer (RFC 6749 §5.2).
type OAuthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

// Status is the HTTP status RFC 6749 §5.2 gives the error.
func (e *OAuthError) Status() int {
	if e.Code == "invalid_client" {
		return 401
	}
	return 400
}

// Token answers a client-credentials token request with a JWT valid for
// JWTLifetime, or an *OAuthError.
func (s *Service) Token(ctx context.Context, req TokenRequest) (*TokenResponse, error) {
	switch req.GrantType {
	case "client_credentials":
	case "":
		return nil, &OAuthError{"invalid_request", "grant_type: required (client_credentials)"}
	default:
		return nil, &OAuthError{"unsupported_grant_type", fmt.Sprintf("grant_type: %q is not supported; use client_credentials", clip(req.GrantType))}
	}
	if req.ClientID == "" || req.ClientSecret == "" {
		return nil, &OAuthError{"invalid_request", "client_id and client_secret: required (in the form or as HTTP Basic)"}
	}
	aud := s.cfg.Audience
	for field, v := range map[string]string{"scope": req.Scope, "audience": req.Audience} {
		if v != "" && v != aud && v != aud+"/.default" {
			return nil, &OAuthError{"invalid_scope", fmt.Sprintf("%s: %q is not this server's audience %q", field, clip(v), aud)}
		}
	}
	sp, err := s.checkServiceSecret(ctx, req.ClientID, req.ClientSecret)
	if tripcap.ErrorCode(err) == tripcap.EUNAUTHORIZED {
		s.log.Warn("token request refused", "clientId", clip(req.ClientID))
		return nil, &OAuthError{"invalid_client", "client id or secret is wrong"}
	} else if err != nil {
		return nil, err
	}
	tok, err := s.issueJWT(ctx, sp.ID, aud)
	if err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(s.cfg.JWTLifetime / time.Second)}, nil
}

// issueJWT signs a token of the native endpoint for subject.
func (s *Service) issueJWT(ctx context.Context, subject, aud string) (string, error) {
	return s.sign(ctx, s.registeredClaims(s.cfg.Issuer, subject, aud, s.cfg.Now().Truncate(time.Second)))
}

// registeredClaims are a token's standard claims, valid from now for JWTLifetime.
func (s *Service) registeredClaims(iss, subject, aud string, now time.Time) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{
		Issuer: iss, Subject: subject, Audience: jwt.ClaimStrings{aud},
		ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.JWTLifetime)), NotBefore: jwt.NewNumericDate(now), IssuedAt: jwt.NewNumericDate(now),
		ID: tripcap.NewID(),
	}
}

// sign signs claims with the current signing key, named in the header's kid.
func (s *Service) sign(ctx context.Context, claims jwt.Claims) (string, error) {
	k, err := s.keys.signing(ctx)
	if err != nil {
		return "", err
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = k.kid
	signed, err := t.SignedString(k.priv)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signed, nil
}

// VerifyJWT checks a JWT this server (any replica) issued and returns its
// claims. It refuses, with EUNAUTHORIZED saying why: a malformed token, an
// algorithm other than ES256 ("none" and HMAC included), an unknown or
// retired kid, a bad signature, an issuer other than the server's (native
// or its tenant's), an audience not among Audiences, a token expired,
// not yet valid, issued in the future, or living longer than MaxJWTLifetime.
func (s *Service) VerifyJWT(ctx context.Context, raw string) (*jwt.RegisteredClaims, error) {
	if len(raw) > maxJWTBytes {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the token is longer than %d bytes", maxJWTBytes)
	}
	p := jwt.NewParser(jwt.WithValidMethods([]string{keyAlgorithm}), jwt.WithAudience(s.acceptedAudiences()...),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(clockLeeway), jwt.WithTimeFunc(s.cfg.Now), jwt.WithStrictDecoding())
	var claims jwt.RegisteredClaims
	var lookupErr error
	_, err := p.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		if _, ok := t.Method.(*jwt.SigningMethodECDSA); !ok {
			return nil, fmt.Errorf("algorithm %v is not %s", t.Header["alg"], keyAlgorithm)
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("the token names no kid")
		}
		pub, err := s.keys.verifying(ctx, kid)
		if tripcap.ErrorCode(err) == tripcap.EUNAUTHORIZED {
			return nil, errors.New(tripcap.ErrorMessage(err))
		}
		lookupErr = err
		return pub, err
	})
	if err != nil {
		if lookupErr != nil && tripcap.ErrorCode(lookupErr) == tripcap.EINTERNAL {
			return nil, lookupErr // the store failed: not the caller's fault
		}
		if errors.Is(err, jwt.ErrTokenInvalidAudience) && lookupErr == nil {
			// Signed by this server: its audience may be named, as Azure
			// names the audiences allowed.
			return nil, &AudienceError{err: tripcap.Errorf(tripcap.EUNAUTHORIZED, "the token is not valid: it was obtained for the audience %q; it should be one of %q", clip(printable(strings.Join(claims.Audience, ","))), s.acceptedAudiences())}
		}
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the token is not valid: %s", jwtReason(err))
	}
	if claims.Issuer != s.cfg.Issuer && claims.Issuer != s.tenantIssuer() {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the token is not valid: its issuer is not this server")
	}
	if claims.IssuedAt == nil || claims.ExpiresAt.Sub(claims.IssuedAt.Time) > MaxJWTLifetime {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the token is not valid: it lives longer than %s", MaxJWTLifetime)
	}
	if !tripcap.IsID(claims.Subject) {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the token is not valid: its subject is not a principal id")
	}
	return &claims, nil
}

// AudienceError is the refusal of a token this server signed for an
// audience it does not accept (now), which ARM names
// InvalidAuthenticationTokenAudience.
type AudienceError struct{ err *tripcap.Error }

func (e *AudienceError) Error() string { return e.err.Error() }
func (e *AudienceError) Unwrap() error { return e.err }

// jwtReason says why the library refused a token ("token has invalid
// claims: token is expired"), which never echoes the token.
func jwtReason(err error) string { return err.Error() }

// Discovery is the OpenID Provider metadata of the token endpoint.
type Discovery struct {
	Issuer        string `json:"issuer"`
	TokenEndpoint string `json:"token_endpoint"`
	JWKSURI       string `json:"jwks_uri"`
	// TenantID is the tenant of the Azure AD-shaped endpoints
	// (/{tenant}/oauth2/v2.0/token), for clients to learn it.
	TenantID                          string   `json:"tenant_id"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	SigningAlgValuesSupported         []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
}

// Discovery returns the /.well-known/openid-configuration document.
func (s *Service) Discovery() *Discovery {
	base := strings.TrimRight(s.cfg.Issuer, "/")
	d := s.discovery(s.cfg.Issuer, base+"/oauth2/token", base+"/.well-known/jwks.json")
	return &d
}

// discovery is an OpenID configuration of these endpoints.
func (s *Service) discovery(issuer, tokenEndpoint, jwksURI string) Discovery {
	return Discovery{Issuer: issuer, TokenEndpoint: tokenEndpoint, JWKSURI: jwksURI, TenantID: s.cfg.TenantID,
		GrantTypesSupported: []string{"client_credentials"}, TokenEndpointAuthMethodsSupported: []string{"client_secret_post", "client_secret_basic"},
		SigningAlgValuesSupported: []string{keyAlgorithm}, ResponseTypesSupported: []string{"token"}, SubjectTypesSupported: []string{"public"}}
}

// clip shortens what a caller sent before it goes in a message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
