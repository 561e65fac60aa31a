// Package identity is the stage of identities and roles: users (argon2id
// passwords), service principals (OAuth2 client credentials), personal API
// tokens, role assignments, the JWTs the token endpoint issues (signed with
// keys kept in the database and rotated, so that every replica verifies
// every token), and Authenticate, which turns a user's or service
// principal's bearer token into a *tripcap.Principal with its grants.
package identity

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// Limits of what the service issues.
const (
	// MaxTokenLifetime bounds a personal API token's expiry.
	MaxTokenLifetime = 365 * 24 * time.Hour
	// MaxJWTLifetime bounds the token endpoint's JWTs.
	MaxJWTLifetime = time.Hour
	// MinPasswordLength is the shortest password accepted, in characters.
	MinPasswordLength = 12
	// maxPasswordBytes bounds a password (hashing costs the same for any
	// length, but nobody needs more).
	maxPasswordBytes = 1024
)

// Config holds the identity service's settings.
type Config struct {
	// Issuer is the iss of the JWTs issued and accepted: the server's public URL.
	Issuer string
	// Audience is the aud of JWTs (default "tripcap").
	Audience string
	// ARMAudiences are the audiences, besides Audience, that the Azure
	// AD-shaped endpoints issue tokens for and the server accepts (default
	// DefaultARMAudiences); a token for any other is refused.
	ARMAudiences []string
	// TenantID is the Azure AD tenant of the Azure AD-shaped endpoints, a
	// GUID (default DeriveTenantID(Issuer): stable while the issuer is).
	TenantID string
	// JWTLifetime is how long an issued JWT is valid (default and at most 1 h).
	JWTLifetime time.Duration
	// LoginLifetime is how long a login's token is valid (default 12 h).
	LoginLifetime time.Duration
	// KeyRotation is how long a signing key signs before a new one is made
	// (default 30 days). It keeps verifying for JWTLifetime more.
	KeyRotation time.Duration
	// CacheTTL is how long an authenticated token's principal is remembered
	// (default 10 s): a revocation or a changed grant on this replica
	// applies at once, on another one within CacheTTL.
	CacheTTL time.Duration
	// Password is the argon2id cost (default DefaultPasswordParams).
	Password PasswordParams
	// PasswordConcurrency bounds the passwords hashed at once (default
	// GOMAXPROCS): each takes Password.MemoryKiB and a core for its time,
	// so logins sent at once cannot exhaust memory or starve the server.
	PasswordConcurrency int
	// PasswordWait bounds how long a login waits for its turn to hash
	// (default 2 s); one that waits longer is refused with EUNAVAILABLE.
	PasswordWait time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) applyDefaults() error {
	if c.Issuer == "" {
		return fmt.Errorf("identity: the issuer (the server's public URL) is required")
	}
	if c.Audience == "" {
		c.Audience = "tripcap"
	}
	if c.ARMAudiences == nil {
		c.ARMAudiences = DefaultARMAudiences
	}
	for _, a := range c.ARMAudiences {
		if err := checkAudience(a); err != nil {
			return fmt.Errorf("identity: ARM audience: %w", err)
		}
	}
	if c.TenantID == "" {
		c.TenantID = DeriveTenantID(c.Issuer)
	}
	if !tripcap.IsGUID(c.TenantID) {
		return fmt.Errorf("identity: tenant id %q is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", c.TenantID)
	}
	c.TenantID = strings.ToLower(c.TenantID)
	if c.JWTLifetime == 0 {
		c.JWTLifetime = MaxJWTLifetime
	}
	if c.JWTLifetime < 0 || c.JWTLifetime > MaxJWTLifetime {
		return fmt.Errorf("identity: JWT lifetime %s is outside 1s..%s", c.JWTLifetime, MaxJWTLifetime)
	}
	if c.LoginLifetime == 0 {
		c.LoginLifetime = 12 * time.Hour
	}
	if c.KeyRotation == 0 {
		c.KeyRotation = 30 * 24 * time.Hour
	}
	if c.KeyRotation < time.Minute {
		return fmt.Errorf("identity: key rotation %s is shorter than a minute", c.KeyRotation)
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = 10 * time.Second
	}
	if c.Password == (PasswordParams{}) {
		c.Password = DefaultPasswordParams
	}
	if c.PasswordConcurrency <= 0 {
		c.PasswordConcurrency = runtime.GOMAXPROCS(0)
	}
	if c.PasswordWait <= 0 {
		c.PasswordWait = 2 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Store is what the service keeps its identities in; the bootstrap admin
// token's credentials tell whether it is still there to manage the server.
type Store interface {
	tripcap.IdentityStore
	FindCredentials(ctx context.Context, role tripcap.Role) ([]*tripcap.Credential, error)
}

// Service manages identities and authenticates their tokens.
type Service struct {
	store Store
	cfg   Config
	log   *slog.Logger
	keys  *keyRing
	cache *authCache
	// dummyHash is verified against when a login names no user, so that a
	// guesser cannot tell unknown names by the time an answer takes.
	dummyHash string
	// hashing holds a token per password being hashed (PasswordConcurrency).
	hashing chan struct{}
}

// New returns the identity service over store.
func New(store Store, cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.applyDefaults(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Service{store: store, cfg: cfg, log: log.With("component", "identity"), cache: newAuthCache(),
		hashing: make(chan struct{}, cfg.PasswordConcurrency)}
	s.keys = &keyRing{store: store, cfg: &s.cfg, log: s.log, keys: map[string]*loadedKey{}}
	h, err := hashPassword(tripcap.NewSecret(""), cfg.Password)
	if err != nil {
		return nil, err
	}
	s.dummyHash = h
	return s, nil
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// requireAccessWrite refuses a caller without PermAccessWrite at "*".
func requireAccessWrite(ctx context.Context) error {
	return tripcap.Authorize(ctx, tripcap.PermAccessWrite, nil)
}

// requireSelfOr lets the caller act on principalID's tokens when it is
// that principal, or holds PermAccessWrite.
func requireSelfOr(ctx context.Context, principalID string) (*tripcap.Principal, error) {
	p := tripcap.PrincipalFromContext(ctx)
	if p == nil {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "a bearer credential is required")
	}
	if isStored(p) && p.ID == principalID {
		return p, nil
	}
	return p, requireAccessWrite(ctx)
}

// isStored reports whether p is a user or a service principal (one this
// service keeps), not an agent, a function key or the bootstrap token.
func isStored(p *tripcap.Principal) bool {
	return p != nil && (p.Kind == tripcap.PrincipalUser || p.Kind == tripcap.PrincipalService)
}

// Invalidate forgets every cached authentication, so that a revocation or
// a changed grant applies at once on this replica.
func (s *Service) Invalidate() { s.cache.clear() }
