package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
)

// Authenticate returns the principal a bearer secret belongs to.
func (s *Service) Authenticate(ctx context.Context, secret string) (*tripcap.Principal, error) {
	if secret == "" {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "a bearer credential is required (Authorization: Bearer …)")
	}
	hash := tripcap.HashSecret(secret)
	now := s.now()
	if p, ok := s.principals.get(hash, now); ok {
		return p, nil
	}
	c, err := s.store.FindCredentialByHash(ctx, hash)
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the credential is not valid")
	} else if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	p := &tripcap.Principal{ID: c.ID, CredentialID: c.ID, Name: c.Name, Role: c.Role, HostID: c.HostID}
	switch c.Role {
	case tripcap.RoleAdmin:
		p.Kind, p.Assignments = tripcap.PrincipalBootstrap, tripcap.OwnerEverywhere()
	case tripcap.RoleAgent:
		p.Kind = tripcap.PrincipalAgent
	}
	s.principals.put(hash, p, now)
	return p, nil
}

// principalCache remembers credentials found valid for a minute, so that an
// agent's heartbeats and reports do not each read the database. Revoking a
// host's credentials signals a change of the host to every replica
// (Store.WatchHostChanges), which forgets that host's entries at once; the
// TTL bounds what a lost signal could leave behind.
type principalCache struct {
	mu      sync.Mutex
	entries map[string]cachedPrincipal
	// byHost indexes agent credentials' hashes by host, for revokeHost.
	byHost map[string][]string
}

type cachedPrincipal struct {
	p       *tripcap.Principal
	expires time.Time
}

const (
	principalTTL = time.Minute
	// maxCachedPrincipals bounds the cache: past it, it starts over.
	maxCachedPrincipals = 100_000
)

func (c *principalCache) get(hash string, now time.Time) (*tripcap.Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.p, true
}

func (c *principalCache) put(hash string, p *tripcap.Principal, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCachedPrincipals {
		c.entries, c.byHost = map[string]cachedPrincipal{}, map[string][]string{}
	}
	if _, known := c.entries[hash]; !known && p.HostID != "" {
		c.byHost[p.HostID] = append(c.byHost[p.HostID], hash)
	}
	c.entries[hash] = cachedPrincipal{p: p, expires: now.Add(principalTTL)}
}

// revokeHost forgets the cached credentials of a host, or all for "".
func (c *principalCache) revokeHost(hostID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hostID == "" {
		clear(c.entries)
		clear(c.byHost)
		return
	}
	for _, h := range c.byHost[hostID] {
		delete(c.entries, h)
	}
	delete(c.byHost, hostID)
}

// EnsureAdmin makes sure an admin credential exists and returns its secret
// when it comes from (or was written to) tokenFile. A token file that exists
// is registered (so replicas can share one); otherwise, if the store has no
// admin yet, a new secret is created and written to tokenFile with mode 0600.
func (s *Service) EnsureAdmin(ctx context.Context, tokenFile string) (string, error) {
	b, err := os.ReadFile(tokenFile)
	switch {
	case err == nil:
		secret := strings.TrimSpace(string(b))
		if !strings.HasPrefix(secret, tripcap.SecretPrefixAdmin) {
			return "", fmt.Errorf("admin token file %s: does not hold a %s… token", tokenFile, tripcap.SecretPrefixAdmin)
		}
		err := s.store.CreateCredential(ctx, &tripcap.Credential{ID: tripcap.NewID(), Name: "admin", Role: tripcap.RoleAdmin, Hash: tripcap.HashSecret(secret), CreatedAt: s.now()})
		if err != nil && tripcap.ErrorCode(err) != tripcap.ECONFLICT {
			return "", fmt.Errorf("register admin token: %w", err)
		}
		return secret, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read admin token file: %w", err)
	}
	admins, err := s.store.FindCredentials(ctx, tripcap.RoleAdmin)
	if err != nil {
		return "", fmt.Errorf("find admin credentials: %w", err)
	}
	if len(admins) > 0 {
		return "", nil
	}
	secret := tripcap.NewSecret(tripcap.SecretPrefixAdmin)
	if err := os.MkdirAll(filepath.Dir(tokenFile), 0o700); err != nil {
		return "", fmt.Errorf("create admin token directory: %w", err)
	}
	if err := os.WriteFile(tokenFile, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token file: %w", err)
	}
	if err := s.store.CreateCredential(ctx, &tripcap.Credential{ID: tripcap.NewID(), Name: "admin", Role: tripcap.RoleAdmin, Hash: tripcap.HashSecret(secret), CreatedAt: s.now()}); err != nil {
		return "", fmt.Errorf("create admin credential: %w", err)
	}
	return secret, nil
}

// requireAgent returns the host the calling agent acts for.
func requireAgent(ctx context.Context) (string, error) {
	p := tripcap.PrincipalFromContext(ctx)
	if p == nil {
		return "", tripcap.Errorf(tripcap.EUNAUTHORIZED, "a bearer credential is required")
	}
	if p.Role != tripcap.RoleAgent || p.HostID == "" {
		return "", tripcap.Errorf(tripcap.EFORBIDDEN, "this is for agents: use an agent credential")
	}
	return p.HostID, nil
}

// CreateJoinToken issues a join token for ttl (default 1 h) and uses (default 1).
func (s *Service) CreateJoinToken(ctx context.Context, ttl time.Duration, uses int) (*tripcap.JoinToken, error) {
	return s.CreateHostJoinToken(ctx, "", ttl, uses)
}

// CreateHostJoinToken issues a join token bound to host ("" for none): it
// enrolls that name only, and re-enrolls it if it is enrolled already.
func (s *Service) CreateHostJoinToken(ctx context.Context, host string, ttl time.Duration, uses int) (*tripcap.JoinToken, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	if host != "" {
		if err := tripcap.ValidateHostName("host", host); err != nil {
			return nil, err
		}
	}
	if ttl == 0 {
		ttl = time.Hour
	}
	if uses == 0 {
		uses = 1
	}
	if ttl < 0 || ttl > 365*24*time.Hour {
		return nil, tripcap.Errorf(tripcap.EINVALID, "ttl: %s is outside 1s..8760h", ttl)
	}
	if uses < 0 || uses > 100000 {
		return nil, tripcap.Errorf(tripcap.EINVALID, "uses: %d is outside 1..100000", uses)
	}
	secret := tripcap.NewSecret(tripcap.SecretPrefixJoin)
	now := s.now()
	t := &tripcap.JoinToken{ID: tripcap.NewID(), Hash: tripcap.HashSecret(secret), ExpiresAt: now.Add(ttl), UsesLeft: uses, HostName: host, CreatedAt: now}
	if err := s.store.CreateJoinToken(ctx, t); err != nil {
		return nil, fmt.Errorf("create join token: %w", err)
	}
	t.Token = secret
	if s.cfg.CAFingerprint != nil {
		t.Token = tripcap.JoinTokenString(secret, s.cfg.CAFingerprint())
	}
	return t, nil
}

// FindJoinTokens lists usable join tokens.
func (s *Service) FindJoinTokens(ctx context.Context) ([]*tripcap.JoinToken, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	return s.store.FindJoinTokens(ctx, s.now())
}

// DeleteJoinToken revokes a join token.
func (s *Service) DeleteJoinToken(ctx context.Context, id string) error {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return err
	}
	return s.store.DeleteJoinToken(ctx, id)
}
