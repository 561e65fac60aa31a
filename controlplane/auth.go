package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/atomicfile"
)

// Identities authenticates the tokens of users and service principals:
// personal API tokens and the token endpoint's JWTs (identity.Service).
type Identities interface {
	Authenticate(ctx context.Context, bearer string) (*tripcap.Principal, error)
}

// authState is what Authenticate and the bootstrap admin token need
// besides the store.
type authState struct {
	identities Identities
	// adminTokenFile is where EnsureAdmin found or wrote the admin token,
	// and where RotateAdmin writes the new one.
	adminTokenFile string
}

// SetIdentities makes Authenticate accept users' and service principals'
// tokens. Call it before serving.
func (s *Service) SetIdentities(id Identities) { s.auth.identities = id }

// Authenticate returns the principal a bearer secret belongs to. The
// token's shape routes it: a personal API token (tc_pat_…) or a JWT (two
// dots) to the identities; an admin or agent credential (tc_admin_…,
// tc_agent_…), and anything else, to the credentials, cached as
// principalCache says.
func (s *Service) Authenticate(ctx context.Context, secret string) (*tripcap.Principal, error) {
	if secret == "" {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "a bearer credential is required (Authorization: Bearer …)")
	}
	if strings.HasPrefix(secret, tripcap.SecretPrefixToken) || strings.Count(secret, ".") == 2 {
		if s.auth.identities == nil {
			return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the credential is not valid (this server takes no user tokens)")
		}
		return s.auth.identities.Authenticate(ctx, secret)
	}
	hash := tripcap.HashSecret(secret)
	now := s.now()
	p, gen, ok := s.principals.get(hash, now)
	if ok {
		return p, nil
	}
	c, err := s.store.FindCredentialByHash(ctx, hash)
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the credential is not valid")
	} else if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	p = &tripcap.Principal{ID: c.ID, CredentialID: c.ID, Name: c.Name, Role: c.Role, HostID: c.HostID}
	switch c.Role {
	case tripcap.RoleAdmin:
		p.Kind, p.Assignments = tripcap.PrincipalBootstrap, tripcap.OwnerEverywhere()
	case tripcap.RoleAgent:
		p.Kind = tripcap.PrincipalAgent
	}
	s.principals.put(hash, p, gen, now)
	return p, nil
}

// principalCache remembers credentials found valid for a minute, so that an
// agent's heartbeats and reports do not each read the database. Revoking a
// host's credentials signals a change of the host to every replica
// (Store.WatchHostChanges), which forgets that host's entries at once;
// revoking the admin token signals a change of every host, which forgets
// all. The TTL bounds what a lost signal could leave behind.
type principalCache struct {
	mu sync.Mutex
	// gen counts revocations, so that a credential read before one is not
	// cached after it (put is given the generation get saw).
	gen     uint64
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

// get returns the cached principal of hash, or the generation to put
// what the store says with.
func (c *principalCache) get(hash string, now time.Time) (*tripcap.Principal, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok || !now.Before(e.expires) {
		return nil, c.gen, false
	}
	return e.p, c.gen, true
}

// put caches p unless a revocation came since get returned gen: p may be
// what it revoked.
func (c *principalCache) put(hash string, p *tripcap.Principal, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
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
	c.gen++
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

// adminRevokedMark starts a token file whose token was revoked: EnsureAdmin
// then registers nothing and creates nothing.
const adminRevokedMark = "# revoked"

// generatedSecretLen is the length of what NewSecret adds to its prefix.
var generatedSecretLen = len(tripcap.NewSecret(""))

// CheckAdminSecret refuses an admin token weaker than a generated one:
// shorter than its 52 characters after tc_admin_, holding blanks, or with
// less than 128 bits by its characters' frequencies (Shannon entropy times
// length: a generated one has about 240, as has tc_admin_ and 64 hex digits).
func CheckAdminSecret(secret string) error {
	if !strings.HasPrefix(secret, tripcap.SecretPrefixAdmin) {
		return fmt.Errorf("does not hold a %s… token", tripcap.SecretPrefixAdmin)
	}
	body := strings.TrimPrefix(secret, tripcap.SecretPrefixAdmin)
	if len(body) < generatedSecretLen {
		return fmt.Errorf("the token is too short: %d characters after %s, fewer than the %d of a generated one", len(body), tripcap.SecretPrefixAdmin, generatedSecretLen)
	}
	if strings.ContainsAny(body, " \t\r\n") {
		return fmt.Errorf("the token holds blanks")
	}
	if bits := entropyBits(body); bits < 128 {
		return fmt.Errorf("the token is not random enough: about %.0f bits by its characters' frequencies, fewer than 128", bits)
	}
	return nil
}

// entropyBits estimates the bits in s from its characters' frequencies.
func entropyBits(s string) float64 {
	counts := map[rune]int{}
	n := 0
	for _, r := range s {
		counts[r]++
		n++
	}
	h := 0.0
	for _, c := range counts {
		p := float64(c) / float64(n)
		h -= p * math.Log2(p)
	}
	return h * float64(n)
}

// EnsureAdmin makes sure an admin credential exists and returns its secret
// when it comes from (or was written to) tokenFile. A token file that exists
// is registered (so replicas can share one) unless its token is weak or was
// revoked; otherwise, if the store has no admin yet and none was ever
// revoked, a new secret is created and written to tokenFile with mode 0600.
// A file holding the revocation mark (RevokeAdmin) registers nothing.
func (s *Service) EnsureAdmin(ctx context.Context, tokenFile string) (string, error) {
	s.auth.adminTokenFile = tokenFile
	revoked, err := s.store.FindRevokedCredentials(ctx, tripcap.RoleAdmin)
	if err != nil {
		return "", fmt.Errorf("find revoked admin tokens: %w", err)
	}
	b, err := os.ReadFile(tokenFile)
	switch {
	case err == nil:
		secret := strings.TrimSpace(string(b))
		if strings.HasPrefix(secret, adminRevokedMark) {
			s.log.Info("the bootstrap admin token is revoked; `tripcap admin-token rotate` (as an Owner) issues a new one", "adminTokenFile", tokenFile)
			return "", nil
		}
		if err := CheckAdminSecret(secret); err != nil {
			return "", fmt.Errorf("admin token file %s: %w; delete the file to have a new token generated", tokenFile, err)
		}
		hash := tripcap.HashSecret(secret)
		for _, h := range revoked {
			if h == hash {
				return "", fmt.Errorf("admin token file %s: the token was revoked (rotated or revoked on another replica); copy the current token file here, or delete it", tokenFile)
			}
		}
		err := s.store.CreateCredential(ctx, &tripcap.Credential{ID: tripcap.NewID(), Name: "admin", Role: tripcap.RoleAdmin, Hash: hash, CreatedAt: s.now()})
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
	if len(admins) > 0 || len(revoked) > 0 {
		return "", nil
	}
	return s.newAdminToken(ctx)
}

// newAdminToken writes a new admin secret to the token file (0600) and registers it.
func (s *Service) newAdminToken(ctx context.Context) (string, error) {
	secret := tripcap.NewSecret(tripcap.SecretPrefixAdmin)
	c := &tripcap.Credential{ID: tripcap.NewID(), Name: "admin", Role: tripcap.RoleAdmin, Hash: tripcap.HashSecret(secret), CreatedAt: s.now()}
	if err := s.store.CreateCredential(ctx, c); err != nil {
		return "", fmt.Errorf("create admin credential: %w", err)
	}
	if err := atomicfile.Write(s.auth.adminTokenFile, []byte(secret+"\n"), 0o600); err != nil {
		// A token nobody can read is no use: take it back.
		if rerr := s.store.RevokeCredential(ctx, c.ID, s.now()); rerr != nil {
			s.log.Error("revoking an admin token that could not be written", "err", rerr)
		}
		return "", fmt.Errorf("write admin token file: %w", err)
	}
	return secret, nil
}

// RotateAdmin issues a new bootstrap admin token, writes it to the token
// file (mode 0600), revokes every older one, and returns the new secret
// (shown this once). It needs PermAccessWrite.
func (s *Service) RotateAdmin(ctx context.Context) (string, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermAccessWrite, nil); err != nil {
		return "", err
	}
	if s.auth.adminTokenFile == "" {
		return "", tripcap.Errorf(tripcap.EUNAVAILABLE, "this server keeps no admin token file")
	}
	old, err := s.store.FindCredentials(ctx, tripcap.RoleAdmin)
	if err != nil {
		return "", fmt.Errorf("find admin credentials: %w", err)
	}
	secret, err := s.newAdminToken(ctx)
	if err != nil {
		return "", err
	}
	if err := s.revokeAdmins(ctx, old); err != nil {
		return "", err
	}
	s.log.Info("admin token rotated", "adminTokenFile", s.auth.adminTokenFile, "revoked", len(old), "by", tripcap.CallerName(ctx))
	return secret, nil
}

// RevokeAdmin revokes the bootstrap admin token and marks the token file
// revoked, so that no restart registers or creates one. It is refused while
// no user or service principal holds Owner at "*", which would leave no
// one able to manage access. It needs PermAccessWrite.
func (s *Service) RevokeAdmin(ctx context.Context) error {
	if err := tripcap.Authorize(ctx, tripcap.PermAccessWrite, nil); err != nil {
		return err
	}
	as, err := s.store.FindRoleAssignments(ctx, tripcap.RoleAssignmentFilter{})
	if err != nil {
		return fmt.Errorf("find role assignments: %w", err)
	}
	owner := false
	for _, a := range as {
		owner = owner || a.Role == tripcap.RoleOwner && a.Scope == tripcap.ScopeAll
	}
	if !owner {
		return tripcap.Errorf(tripcap.EPRECONDITION, "no user or service principal holds %s at %q: assign one first (tripcap role assign), or the server could no longer be managed", tripcap.RoleOwner, tripcap.ScopeAll)
	}
	old, err := s.store.FindCredentials(ctx, tripcap.RoleAdmin)
	if err != nil {
		return fmt.Errorf("find admin credentials: %w", err)
	}
	if s.auth.adminTokenFile != "" {
		mark := fmt.Sprintf("%s at %s by %s: `tripcap admin-token rotate` (as an Owner) issues a new token\n", adminRevokedMark, s.now().UTC().Format(time.RFC3339), tripcap.CallerName(ctx))
		if err := atomicfile.Write(s.auth.adminTokenFile, []byte(mark), 0o600); err != nil {
			return fmt.Errorf("mark the admin token file revoked: %w", err)
		}
	}
	if err := s.revokeAdmins(ctx, old); err != nil {
		return err
	}
	s.log.Info("admin token revoked", "adminTokenFile", s.auth.adminTokenFile, "revoked", len(old), "by", tripcap.CallerName(ctx))
	return nil
}

// revokeAdmins revokes credentials and forgets cached ones here at once
// (other replicas forget theirs on the store's signal).
func (s *Service) revokeAdmins(ctx context.Context, creds []*tripcap.Credential) error {
	defer s.principals.revokeHost("")
	for _, c := range creds {
		if err := s.store.RevokeCredential(ctx, c.ID, s.now()); err != nil && tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
			return fmt.Errorf("revoke admin token %s: %w", c.ID, err)
		}
	}
	return nil
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

// maxHostJoinTokenTTL bounds the life of a join token bound to a host.
const maxHostJoinTokenTTL = 24 * time.Hour

// CreateHostJoinToken issues a join token bound to host ("" for none): it
// enrolls that name only, and re-enrolls it if it is enrolled already.
// Bound to a host, it has one use (uses 0 or 1) and lives at most 24 h.
func (s *Service) CreateHostJoinToken(ctx context.Context, host string, ttl time.Duration, uses int) (*tripcap.JoinToken, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermHostsWrite, nil); err != nil {
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
	// A host-bound token may revoke the live agent of its host: one use,
	// for a day at most, so that a leaked one cannot keep taking it over.
	if host != "" && uses != 1 {
		return nil, tripcap.Errorf(tripcap.EINVALID, "uses: a token bound to host %s is for one use, not %d", host, uses)
	}
	if host != "" && ttl > maxHostJoinTokenTTL {
		return nil, tripcap.Errorf(tripcap.EINVALID, "ttl: a token bound to host %s lives at most %s, not %s", host, maxHostJoinTokenTTL, ttl)
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
	if err := tripcap.Authorize(ctx, tripcap.PermHostsWrite, nil); err != nil {
		return nil, err
	}
	return s.store.FindJoinTokens(ctx, s.now())
}

// DeleteJoinToken revokes a join token.
func (s *Service) DeleteJoinToken(ctx context.Context, id string) error {
	if err := tripcap.Authorize(ctx, tripcap.PermHostsWrite, nil); err != nil {
		return err
	}
	return s.store.DeleteJoinToken(ctx, id)
}
