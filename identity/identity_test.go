package identity_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap/internal/teststore"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/identity"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
)

// clock is a settable time shared by the services of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const issuer = "https://tripcap.test"

// cheap keeps argon2id fast in tests; its cost is not what they check.
var cheap = identity.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}

func newService(t testing.TB, store identity.Store, c *clock) *identity.Service {
	t.Helper()
	svc, err := identity.New(store, identity.Config{Issuer: issuer, Password: cheap, Now: c.Now}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// owner is the bootstrap admin token's principal.
func owner() context.Context {
	return tripcap.NewContextWithPrincipal(context.Background(), &tripcap.Principal{ID: tripcap.NewID(), Kind: tripcap.PrincipalBootstrap,
		Name: "admin", Assignments: tripcap.OwnerEverywhere()})
}

func as(p *tripcap.Principal) context.Context {
	return tripcap.NewContextWithPrincipal(context.Background(), p)
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := tripcap.ErrorCode(err); got != code {
		t.Fatalf("got %v (code %q), want code %q", err, got, code)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestUsersAndLogin(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		c := &clock{t: time.Now()}
		svc := newService(t, store, c)
		ctx := owner()

		_, err := svc.CreateUser(ctx, "alice", "short")
		wantCode(t, err, tripcap.EINVALID)
		if !strings.Contains(tripcap.ErrorMessage(err), "password") {
			t.Fatalf("the refusal names no field: %v", err)
		}
		_, err = svc.CreateUser(ctx, "al ice", "correct horse battery")
		wantCode(t, err, tripcap.EINVALID)
		_, err = svc.CreateUser(context.Background(), "alice", "correct horse battery")
		wantCode(t, err, tripcap.EUNAUTHORIZED)

		u, err := svc.CreateUser(ctx, "alice", "correct horse battery")
		must(t, err)
		if !strings.HasPrefix(u.SecretHash, "$argon2id$v=19$m=64,t=1,p=1$") {
			t.Fatalf("password hash %q does not carry its parameters", u.SecretHash)
		}
		b, _ := json.Marshal(u)
		if strings.Contains(string(b), "argon2") {
			t.Fatalf("the answer shows the hash: %s", b)
		}
		_, err = svc.CreateUser(ctx, "ALICE", "correct horse battery")
		wantCode(t, err, tripcap.ECONFLICT)

		// A user without Owner may not manage principals.
		alice := &tripcap.Principal{ID: u.ID, Kind: tripcap.PrincipalUser, Name: "alice"}
		_, err = svc.CreateUser(as(alice), "mallory", "correct horse battery")
		wantCode(t, err, tripcap.EFORBIDDEN)
		_, err = svc.FindPrincipals(as(alice), "")
		wantCode(t, err, tripcap.EFORBIDDEN)
		self, err := svc.FindPrincipal(as(alice), "alice")
		must(t, err)
		if self.ID != u.ID {
			t.Fatalf("self: %+v", self)
		}

		_, err = svc.Login(context.Background(), "alice", "wrong password!!")
		wantCode(t, err, tripcap.EUNAUTHORIZED)
		_, err = svc.Login(context.Background(), "nobody", "correct horse battery")
		wantCode(t, err, tripcap.EUNAUTHORIZED)
		tok, err := svc.Login(context.Background(), "Alice", "correct horse battery")
		must(t, err)
		if !strings.HasPrefix(tok.Token, tripcap.SecretPrefixToken) || tok.ExpiresAt.Sub(c.Now()) != 12*time.Hour {
			t.Fatalf("login token: %+v", tok)
		}
		p, err := svc.Authenticate(context.Background(), tok.Token)
		must(t, err)
		if p.ID != u.ID || p.Kind != tripcap.PrincipalUser || p.Name != "alice" || len(p.Assignments) != 0 || p.Role != "" {
			t.Fatalf("principal: %+v", p)
		}
		c.Add(12*time.Hour + time.Second)
		_, err = svc.Authenticate(context.Background(), tok.Token)
		wantCode(t, err, tripcap.EUNAUTHORIZED)
	})
}

func TestPersonalTokens(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		c := &clock{t: time.Now()}
		svc := newService(t, store, c)
		ctx := owner()
		ua, err := svc.CreateUser(ctx, "alice", "correct horse battery")
		must(t, err)
		ub, err := svc.CreateUser(ctx, "bob", "correct horse battery")
		must(t, err)
		alice := as(&tripcap.Principal{ID: ua.ID, Kind: tripcap.PrincipalUser, Name: "alice"})

		_, err = svc.CreateToken(alice, "", "laptop", time.Time{})
		wantCode(t, err, tripcap.EINVALID)
		_, err = svc.CreateToken(alice, "", "laptop", c.Now().Add(366*24*time.Hour))
		wantCode(t, err, tripcap.EINVALID)
		_, err = svc.CreateToken(alice, "", "laptop", c.Now().Add(-time.Second))
		wantCode(t, err, tripcap.EINVALID)
		// The bootstrap token holds no tokens of its own.
		_, err = svc.CreateToken(ctx, "", "x", c.Now().Add(time.Hour))
		wantCode(t, err, tripcap.EINVALID)

		tok, err := svc.CreateToken(alice, "", "laptop", c.Now().Add(30*24*time.Hour))
		must(t, err)
		if !strings.HasPrefix(tok.Token, tripcap.SecretPrefixToken) || tok.PrincipalID != ua.ID {
			t.Fatalf("token: %+v", tok)
		}
		// Alice may not touch Bob's tokens; an Owner may.
		_, err = svc.CreateToken(alice, "bob", "x", c.Now().Add(time.Hour))
		wantCode(t, err, tripcap.EFORBIDDEN)
		_, err = svc.FindTokens(alice, ub.ID)
		wantCode(t, err, tripcap.EFORBIDDEN)
		bobs, err := svc.CreateToken(ctx, "bob", "ci", c.Now().Add(time.Hour))
		must(t, err)
		wantCode(t, svc.RevokeToken(alice, bobs.ID), tripcap.EFORBIDDEN)

		list, err := svc.FindTokens(alice, "")
		must(t, err)
		if len(list) != 1 || list[0].ID != tok.ID || list[0].Token != "" {
			t.Fatalf("list: %+v", list)
		}
		b, _ := json.Marshal(list)
		if strings.Contains(string(b), tok.Token) || strings.Contains(string(b), list[0].Hash) {
			t.Fatalf("listing shows a secret: %s", b)
		}

		p, err := svc.Authenticate(context.Background(), tok.Token)
		must(t, err)
		if p.ID != ua.ID || p.CredentialID != tok.ID {
			t.Fatalf("principal: %+v", p)
		}
		// Revocation applies at once, the cached answer included.
		must(t, svc.RevokeToken(alice, tok.ID))
		_, err = svc.Authenticate(context.Background(), tok.Token)
		wantCode(t, err, tripcap.EUNAUTHORIZED)
		wantCode(t, svc.RevokeToken(ctx, tok.ID), tripcap.ENOTFOUND)

		_, err = svc.Authenticate(context.Background(), tripcap.NewSecret(tripcap.SecretPrefixToken))
		wantCode(t, err, tripcap.EUNAUTHORIZED)
		_, err = svc.Authenticate(context.Background(), "tc_admin_not-mine")
		wantCode(t, err, tripcap.EUNAUTHORIZED)
	})
}

func TestRoleAssignments(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		c := &clock{t: time.Now()}
		svc := newService(t, store, c)
		ctx := owner()
		u, err := svc.CreateUser(ctx, "alice", "correct horse battery")
		must(t, err)
		tok, err := svc.CreateToken(ctx, "alice", "t", c.Now().Add(time.Hour))
		must(t, err)
		p, err := svc.Authenticate(context.Background(), tok.Token)
		must(t, err)
		if len(p.Assignments) != 0 {
			t.Fatalf("assignments before any: %+v", p.Assignments)
		}

		_, err = svc.AssignRole(ctx, "alice", "Admin", "*")
		wantCode(t, err, tripcap.EINVALID)
		_, err = svc.AssignRole(ctx, "alice", tripcap.RoleReader, "team=a")
		wantCode(t, err, tripcap.EINVALID)
		_, err = svc.AssignRole(ctx, "nobody", tripcap.RoleReader, "*")
		wantCode(t, err, tripcap.ENOTFOUND)
		_, err = svc.AssignRole(as(p), "alice", tripcap.RoleOwner, "*")
		wantCode(t, err, tripcap.EFORBIDDEN)

		a, err := svc.AssignRole(ctx, "alice", tripcap.RoleReader, "label:team=a")
		must(t, err)
		_, err = svc.AssignRole(ctx, u.ID, tripcap.RoleReader, "label:team=a")
		wantCode(t, err, tripcap.ECONFLICT)
		// The change applies at once to the cached principal.
		p, err = svc.Authenticate(context.Background(), tok.Token)
		must(t, err)
		teamA := &tripcap.Host{Name: "web-1", Labels: map[string]string{"team": "a"}}
		teamB := &tripcap.Host{Name: "web-2", Labels: map[string]string{"team": "b"}}
		if len(p.Assignments) != 1 || !p.Can(tripcap.PermRead, teamA) || p.Can(tripcap.PermRead, teamB) || p.Can(tripcap.PermCaptureWrite, teamA) {
			t.Fatalf("principal after the assignment: %+v", p)
		}
		own, err := svc.FindRoleAssignments(as(p), "alice")
		must(t, err)
		if len(own) != 1 || own[0].ID != a.ID || own[0].CreatedBy != "admin" {
			t.Fatalf("own assignments: %+v", own)
		}
		_, err = svc.FindRoleAssignments(as(p), "")
		wantCode(t, err, tripcap.EFORBIDDEN)

		_, err = svc.AssignRole(ctx, "alice", tripcap.RoleOwner, "")
		must(t, err)
		p, err = svc.Authenticate(context.Background(), tok.Token)
		must(t, err)
		if !p.Can(tripcap.PermAccessWrite, nil) {
			t.Fatalf("an Owner at * may not manage access: %+v", p)
		}
		must(t, svc.DeleteRoleAssignment(ctx, a.ID))
		wantCode(t, svc.DeleteRoleAssignment(ctx, a.ID), tripcap.ENOTFOUND)

		// Deleting the user takes its tokens: refused at once.
		must(t, svc.DeletePrincipal(ctx, "alice"))
		_, err = svc.Authenticate(context.Background(), tok.Token)
		wantCode(t, err, tripcap.EUNAUTHORIZED)
		all, err := svc.FindRoleAssignments(ctx, "")
		must(t, err)
		if len(all) != 0 {
			t.Fatalf("assignments outlived their principal: %+v", all)
		}
	})
}

func TestClientCredentials(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		c := &clock{t: time.Now()}
		svc := newService(t, store, c)
		ctx := owner()
		sp, err := svc.CreateServicePrincipal(ctx, "ci-bot")
		must(t, err)
		if sp.ClientID != sp.ID || !strings.HasPrefix(sp.ClientSecret, tripcap.SecretPrefixService) {
			t.Fatalf("service principal: %+v", sp)
		}
		listed, err := svc.FindPrincipals(ctx, tripcap.PrincipalService)
		must(t, err)
		if len(listed) != 1 || listed[0].ClientSecret != "" {
			t.Fatalf("listing: %+v", listed)
		}
		_, err = svc.AssignRole(ctx, "ci-bot", tripcap.RoleNetworkContributor, "location:westeurope")
		must(t, err)

		oauthCode := func(err error) string {
			var oe *identity.OAuthError
			if !errors.As(err, &oe) {
				t.Fatalf("not an OAuth error: %v", err)
			}
			return oe.Code
		}
		req := identity.TokenRequest{GrantType: "client_credentials", ClientID: sp.ClientID, ClientSecret: sp.ClientSecret}
		for name, tc := range map[string]struct {
			mod  func(r *identity.TokenRequest)
			code string
		}{
			"no grant":     {func(r *identity.TokenRequest) { r.GrantType = "" }, "invalid_request"},
			"password":     {func(r *identity.TokenRequest) { r.GrantType = "password" }, "unsupported_grant_type"},
			"wrong secret": {func(r *identity.TokenRequest) { r.ClientSecret = tripcap.NewSecret(tripcap.SecretPrefixService) }, "invalid_client"},
			"unknown":      {func(r *identity.TokenRequest) { r.ClientID = tripcap.NewID() }, "invalid_client"},
			"not an id":    {func(r *identity.TokenRequest) { r.ClientID = "ci-bot" }, "invalid_client"},
			"no secret":    {func(r *identity.TokenRequest) { r.ClientSecret = "" }, "invalid_request"},
			"bad audience": {func(r *identity.TokenRequest) { r.Audience = "https://graph.microsoft.com" }, "invalid_scope"},
			"bad scope":    {func(r *identity.TokenRequest) { r.Scope = "other/.default" }, "invalid_scope"},
		} {
			r := req
			tc.mod(&r)
			_, err := svc.Token(context.Background(), r)
			if got := oauthCode(err); got != tc.code {
				t.Errorf("%s: %s, want %s", name, got, tc.code)
			}
		}
		req.Scope = "tripcap/.default"
		res, err := svc.Token(context.Background(), req)
		must(t, err)
		if res.TokenType != "Bearer" || res.ExpiresIn != 3600 || strings.Count(res.AccessToken, ".") != 2 {
			t.Fatalf("token answer: %+v", res)
		}
		p, err := svc.Authenticate(context.Background(), res.AccessToken)
		must(t, err)
		if p.ID != sp.ID || p.Kind != tripcap.PrincipalService || p.Name != "ci-bot" || len(p.Assignments) != 1 || p.Assignments[0].Role != tripcap.RoleNetworkContributor {
			t.Fatalf("principal: %+v", p)
		}
		c.Add(time.Hour + time.Minute)
		_, err = svc.Authenticate(context.Background(), res.AccessToken)
		wantCode(t, err, tripcap.EUNAUTHORIZED)

		// A JWT of a deleted service principal is refused.
		res, err = svc.Token(context.Background(), req)
		must(t, err)
		must(t, svc.DeletePrincipal(ctx, sp.ID))
		_, err = svc.Authenticate(context.Background(), res.AccessToken)
		wantCode(t, err, tripcap.EUNAUTHORIZED)
	})
}

// TestKeyRotation: a new key signs after the rotation period; tokens of
// the old one verify until they expire, and the JWKS lists both meanwhile.
func TestKeyRotation(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		c := &clock{t: time.Now()}
		svc, err := identity.New(store, identity.Config{Issuer: issuer, Password: cheap, Now: c.Now, KeyRotation: 24 * time.Hour},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		must(t, err)
		sp, err := svc.CreateServicePrincipal(owner(), "bot")
		must(t, err)
		req := identity.TokenRequest{GrantType: "client_credentials", ClientID: sp.ClientID, ClientSecret: sp.ClientSecret}
		first, err := svc.Token(context.Background(), req)
		must(t, err)
		c.Add(24*time.Hour - 30*time.Minute)
		late, err := svc.Token(context.Background(), req) // the old key's last tokens
		must(t, err)
		c.Add(31 * time.Minute)
		second, err := svc.Token(context.Background(), req)
		must(t, err)
		if kid(t, first.AccessToken) != kid(t, late.AccessToken) || kid(t, first.AccessToken) == kid(t, second.AccessToken) {
			t.Fatalf("kids: %s %s %s", kid(t, first.AccessToken), kid(t, late.AccessToken), kid(t, second.AccessToken))
		}
		jwks, err := svc.JWKS(context.Background())
		must(t, err)
		if len(jwks.Keys) != 2 || jwks.Keys[0].Kid != kid(t, second.AccessToken) {
			t.Fatalf("JWKS during the overlap: %+v", jwks)
		}
		_, err = svc.Authenticate(context.Background(), late.AccessToken)
		must(t, err)
		_, err = svc.Authenticate(context.Background(), second.AccessToken)
		must(t, err)
		c.Add(time.Hour + 2*time.Minute)
		jwks, err = svc.JWKS(context.Background())
		must(t, err)
		if len(jwks.Keys) != 1 {
			t.Fatalf("JWKS after the old key retired: %+v", jwks)
		}
	})
}

// kid returns a JWT's header kid.
func kid(t *testing.T, jwt string) string {
	t.Helper()
	h, err := decodeSegment(strings.Split(jwt, ".")[0])
	must(t, err)
	var hdr struct{ Kid string }
	must(t, json.Unmarshal(h, &hdr))
	return hdr.Kid
}

// TestExpiredTokensAreDeleted: the tokens of past logins do not pile up.
func TestExpiredTokensAreDeleted(t *testing.T) {
	store, err := sqlite.Open(t.Context(), t.TempDir()+"/tripcap.db")
	must(t, err)
	t.Cleanup(func() { store.Close() })
	store.SetSealer(storetest.NewSealer(t))
	c := &clock{t: time.Now()}
	svc := newService(t, store, c)
	_, err = svc.CreateUser(owner(), "alice", "correct horse battery")
	must(t, err)
	for range 3 {
		_, err := svc.Login(context.Background(), "alice", "correct horse battery")
		must(t, err)
		c.Add(13 * time.Hour)
	}
	all, err := store.FindAPITokens(context.Background(), "")
	must(t, err)
	if len(all) != 1 {
		t.Fatalf("%d tokens after three logins 13 h apart, want the last one", len(all))
	}
}

// Finding (review of issue 12): argon2id (19 MiB and ~30 ms a hash) ran
// for every login at once, so logins sent in parallel could exhaust the
// server's memory and CPU. Now at most PasswordConcurrency hashes run at
// once; a login waits for its turn at most PasswordWait (refused with
// EUNAVAILABLE after), or until its caller goes away, a known user's and
// an unknown name's alike.
func TestPasswordHashingBounded(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		c := &clock{t: time.Now()}
		const wait = 100 * time.Millisecond
		svc, err := identity.New(store, identity.Config{Issuer: issuer, Password: cheap, Now: c.Now, PasswordConcurrency: 2, PasswordWait: wait},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		must(t, err)
		_, err = svc.CreateUser(owner(), "alice", "correct horse battery")
		must(t, err)

		giveBack := svc.TakeHashTurns()
		for _, user := range []string{"alice", "nobody"} {
			start := time.Now()
			_, err := svc.Login(context.Background(), user, "correct horse battery")
			wantCode(t, err, tripcap.EUNAVAILABLE)
			if took := time.Since(start); took < wait || took > 10*wait {
				t.Fatalf("login of %s refused after %s, want after the %s wait", user, took, wait)
			}
		}
		_, err = svc.CreateUser(owner(), "bob", "correct horse battery")
		wantCode(t, err, tripcap.EUNAVAILABLE)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		start := time.Now()
		if _, err := svc.Login(ctx, "alice", "correct horse battery"); !errors.Is(err, context.Canceled) || time.Since(start) >= wait {
			t.Fatalf("a login whose caller left: %v after %s", err, time.Since(start))
		}
		giveBack()

		// With the turns free, logins sent at once all get theirs in time.
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				_, err := svc.Login(context.Background(), "alice", "correct horse battery")
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, err)
		}
	})
}

// TestJWTMayNotCreateTokens: a client-credentials JWT lives an hour; the
// principal it authenticates may not turn it into an API token of up to a
// year, for itself or (an Owner's) anyone, nor when the answer is cached.
// A login's token still creates personal tokens (`tripcap login`, then
// `tripcap token create`).
func TestJWTMayNotCreateTokens(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		c := &clock{t: time.Now()}
		svc := newService(t, store, c)
		ctx := owner()
		sp, err := svc.CreateServicePrincipal(ctx, "ci-bot")
		must(t, err)
		_, err = svc.AssignRole(ctx, "ci-bot", tripcap.RoleOwner, tripcap.ScopeAll)
		must(t, err)
		_, err = svc.CreateUser(ctx, "alice", "correct horse battery")
		must(t, err)
		res, err := svc.Token(context.Background(), identity.TokenRequest{GrantType: "client_credentials", ClientID: sp.ClientID, ClientSecret: sp.ClientSecret})
		must(t, err)
		for range 2 { // the second from the cache
			p, err := svc.Authenticate(context.Background(), res.AccessToken)
			must(t, err)
			if p.Credential != tripcap.CredentialJWT {
				t.Fatalf("a JWT's principal says it authenticated with %q", p.Credential)
			}
			for _, who := range []string{"", sp.ID, "alice"} {
				_, err = svc.CreateToken(as(p), who, "forever", c.Now().Add(360*24*time.Hour))
				wantCode(t, err, tripcap.EFORBIDDEN)
				if !strings.Contains(tripcap.ErrorMessage(err), "client-credentials") {
					t.Fatalf("refusal does not say why: %v", err)
				}
			}
		}
		if toks, err := svc.FindTokens(ctx, sp.ID); err != nil || len(toks) != 0 {
			t.Fatalf("tokens of the service principal: %+v, %v", toks, err)
		}

		login, err := svc.Login(context.Background(), "alice", "correct horse battery")
		must(t, err)
		p, err := svc.Authenticate(context.Background(), login.Token)
		must(t, err)
		if p.Credential != tripcap.CredentialAPIToken {
			t.Fatalf("a login token's principal says it authenticated with %q", p.Credential)
		}
		if _, err := svc.CreateToken(as(p), "", "laptop", c.Now().Add(30*24*time.Hour)); err != nil {
			t.Fatalf("a login's token creating a personal token: %v", err)
		}
	})
}

// TestLastOwnerKept: once the bootstrap admin token is revoked, the last
// Owner at "*" cannot be taken away, by deleting the assignment or the
// principal: no one could manage the server after. With another Owner, or
// with the admin token still there, both go.
func TestLastOwnerKept(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		c := &clock{t: time.Now()}
		svc := newService(t, store, c)
		ctx := owner()
		_, err := svc.CreateUser(ctx, "alice", "correct horse battery")
		must(t, err)
		a, err := svc.AssignRole(ctx, "alice", tripcap.RoleOwner, tripcap.ScopeAll)
		must(t, err)
		admin := &tripcap.Credential{ID: tripcap.NewID(), Name: "admin", Role: tripcap.RoleAdmin, Hash: tripcap.HashSecret(tripcap.NewSecret(tripcap.SecretPrefixAdmin)), CreatedAt: time.Now()}
		must(t, store.CreateCredential(context.Background(), admin))

		// The admin token is there: alice's grant may go, and come back.
		must(t, svc.DeleteRoleAssignment(ctx, a.ID))
		a, err = svc.AssignRole(ctx, "alice", tripcap.RoleOwner, tripcap.ScopeAll)
		must(t, err)

		// The admin token revoked: alice is the last Owner at "*".
		must(t, store.RevokeCredential(context.Background(), admin.ID, time.Now()))
		wantCode(t, svc.DeleteRoleAssignment(ctx, a.ID), tripcap.EPRECONDITION)
		wantCode(t, svc.DeletePrincipal(ctx, "alice"), tripcap.EPRECONDITION)

		// With bob an Owner at "*" too, alice may go.
		_, err = svc.CreateUser(ctx, "bob", "correct horse battery")
		must(t, err)
		_, err = svc.AssignRole(ctx, "bob", tripcap.RoleOwner, tripcap.ScopeAll)
		must(t, err)
		must(t, svc.DeletePrincipal(ctx, "alice"))
	})
}
