package identity

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
)

// isJWT reports whether a bearer token has a JWT's shape: three base64url
// parts joined by two dots.
func isJWT(bearer string) bool {
	return strings.Count(bearer, ".") == 2 && !strings.ContainsAny(bearer, " \t\r\n")
}

// Authenticate returns the principal of a personal API token (tc_pat_…)
// or a JWT of the token endpoint, with its role assignments. The answer is
// cached for CacheTTL (never past the token's expiry): a revocation, a
// deleted principal or a changed grant made through this service applies at
// once here, and on other replicas within CacheTTL.
func (s *Service) Authenticate(ctx context.Context, bearer string) (*tripcap.Principal, error) {
	if len(bearer) > maxJWTBytes {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the credential is not valid")
	}
	key := tripcap.HashSecret(bearer)
	now := s.cfg.Now()
	if p, ok := s.cache.get(key, now); ok {
		return p, nil
	}
	gen := s.cache.generation()
	var (
		principalID, credentialID string
		expires                   time.Time
		via                       tripcap.CredentialKind
	)
	switch {
	case strings.HasPrefix(bearer, tripcap.SecretPrefixToken):
		t, err := s.store.FindAPITokenByHash(ctx, key)
		if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
			return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the credential is not valid")
		} else if err != nil {
			return nil, fmt.Errorf("authenticate: %w", err)
		}
		if !now.Before(t.ExpiresAt) {
			return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the token expired at %s; create a new one or log in again", t.ExpiresAt.Format(time.RFC3339))
		}
		principalID, credentialID, expires, via = t.PrincipalID, t.ID, t.ExpiresAt, tripcap.CredentialAPIToken
	case isJWT(bearer):
		claims, err := s.VerifyJWT(ctx, bearer)
		if err != nil {
			return nil, err
		}
		principalID, credentialID, expires, via = claims.Subject, claims.ID, claims.ExpiresAt.Time, tripcap.CredentialJWT
	default:
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the credential is not valid")
	}
	p, err := s.principal(ctx, principalID, credentialID)
	if err != nil {
		return nil, err
	}
	p.Credential = via
	if until := now.Add(s.cfg.CacheTTL); until.Before(expires) {
		expires = until
	}
	s.cache.put(key, p, gen, expires)
	return p, nil
}

// principal loads a stored principal with its grants.
func (s *Service) principal(ctx context.Context, id, credentialID string) (*tripcap.Principal, error) {
	found, err := s.store.FindPrincipals(ctx, tripcap.PrincipalFilter{ID: &id})
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if len(found) == 0 {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the credential's principal no longer exists")
	}
	rec := found[0]
	as, err := s.store.FindRoleAssignments(ctx, tripcap.RoleAssignmentFilter{PrincipalID: &id})
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	p := &tripcap.Principal{ID: rec.ID, CredentialID: credentialID, Kind: rec.Kind, Name: rec.Name}
	for _, a := range as {
		p.Assignments = append(p.Assignments, *a)
	}
	return p, nil
}

// authCache remembers authenticated tokens' principals briefly. clear
// forgets everything and bumps a generation, so that an authentication
// that raced a revocation does not put back what the revocation removed.
type authCache struct {
	mu      sync.Mutex
	gen     uint64
	entries map[string]cachedAuth
}

type cachedAuth struct {
	p       *tripcap.Principal
	expires time.Time
}

// maxCachedAuth bounds the cache: past it, it starts over.
const maxCachedAuth = 50_000

func newAuthCache() *authCache { return &authCache{entries: map[string]cachedAuth{}} }

func (c *authCache) get(key string, now time.Time) (*tripcap.Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	// A copy: callers may not change what others are handed.
	p := *e.p
	p.Assignments = slices.Clone(e.p.Assignments)
	return &p, true
}

func (c *authCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *authCache) put(key string, p *tripcap.Principal, gen uint64, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.entries) >= maxCachedAuth {
		clear(c.entries)
	}
	cp := *p
	cp.Assignments = slices.Clone(p.Assignments)
	c.entries[key] = cachedAuth{p: &cp, expires: expires}
}

func (c *authCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}
