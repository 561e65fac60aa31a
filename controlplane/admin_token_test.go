package controlplane_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/identity"
)

func ownerCtx() context.Context {
	return tripcap.NewContextWithPrincipal(context.Background(), &tripcap.Principal{Kind: tripcap.PrincipalBootstrap, Name: "admin",
		Assignments: tripcap.OwnerEverywhere()})
}

// TestAdminTokenFileRefusesWeakTokens: a token file holding a short or
// low-entropy token stops the server with an error saying why.
func TestAdminTokenFileRefusesWeakTokens(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	for content, why := range map[string]string{
		"tc_admin_x\n":                         "too short",
		"tc_admin_" + strings.Repeat("ab", 30): "not random enough",
		"tc_admin_" + strings.Repeat("A", 20) + " " + strings.Repeat("B", 40): "blanks",
		"hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2":     "tc_admin_",
	} {
		file := filepath.Join(t.TempDir(), "admin.token")
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.EnsureAdmin(context.Background(), file)
		if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), file) {
			t.Errorf("%q: %v, want an error naming the file and %q", content, err, why)
		}
	}
	for range 200 {
		if err := controlplane.CheckAdminSecret(tripcap.NewSecret(tripcap.SecretPrefixAdmin)); err != nil {
			t.Fatalf("a generated token refused: %v", err)
		}
		// What deploy/kubernetes/server.yaml tells to make: openssl rand -hex 32.
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		if err := controlplane.CheckAdminSecret(tripcap.SecretPrefixAdmin + hex.EncodeToString(b)); err != nil {
			t.Fatalf("a random hex token refused: %v", err)
		}
	}
}

// TestAdminTokenRotateAndRevoke: rotation writes a new token (0600) and
// revokes the old at once; a stale file cannot register it again; revoking
// needs an Owner left and survives a restart.
func TestAdminTokenRotateAndRevoke(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "admin.token")
	old, err := f.svc.EnsureAdmin(ctx, file)
	if err != nil || old == "" {
		t.Fatalf("first start: %q, %v", old, err)
	}
	if _, err := f.svc.Authenticate(ctx, old); err != nil {
		t.Fatal(err) // and now cached
	}
	contributor := tripcap.NewContextWithPrincipal(ctx, &tripcap.Principal{Kind: tripcap.PrincipalUser, Name: "bob",
		Assignments: []tripcap.RoleAssignment{{Role: tripcap.RoleNetworkContributor, Scope: tripcap.ScopeAll}}})
	_, err = f.svc.RotateAdmin(contributor)
	wantCode(t, err, tripcap.EFORBIDDEN, "access/write")

	fresh, err := f.svc.RotateAdmin(ownerCtx())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil || strings.TrimSpace(string(b)) != fresh {
		t.Fatalf("token file holds %q, want the new token", b)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", fi.Mode().Perm())
	}
	_, err = f.svc.Authenticate(ctx, old)
	wantCode(t, err, tripcap.EUNAUTHORIZED, "not valid")
	p, err := f.svc.Authenticate(ctx, fresh)
	if err != nil || p.Kind != tripcap.PrincipalBootstrap {
		t.Fatalf("new token: %+v, %v", p, err)
	}

	stale := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(stale, []byte(old+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.EnsureAdmin(ctx, stale); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a stale token file: %v", err)
	}

	if _, err := f.svc.EnsureAdmin(ctx, file); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.svc.RevokeAdmin(ownerCtx()), tripcap.EPRECONDITION, "Owner")
	u := &tripcap.PrincipalRecord{ID: tripcap.NewID(), Kind: tripcap.PrincipalUser, Name: "alice", SecretHash: "x", CreatedAt: time.Now()}
	if err := f.store.CreatePrincipal(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateRoleAssignment(ctx, &tripcap.RoleAssignment{ID: tripcap.NewID(), PrincipalID: u.ID, Role: tripcap.RoleOwner, Scope: tripcap.ScopeAll}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RevokeAdmin(ownerCtx()); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Authenticate(ctx, fresh)
	wantCode(t, err, tripcap.EUNAUTHORIZED, "not valid")
	// A restart registers nothing and makes no new token.
	again, err := f.svc.EnsureAdmin(ctx, file)
	if err != nil || again != "" {
		t.Fatalf("restart after revocation: %q, %v", again, err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	again, err = f.svc.EnsureAdmin(ctx, file)
	if err != nil || again != "" {
		t.Fatalf("restart after revocation, token file gone: %q, %v", again, err)
	}
	admins, err := f.store.FindCredentials(ctx, tripcap.RoleAdmin)
	if err != nil || len(admins) != 0 {
		t.Fatalf("admin credentials after revocation: %v, %v", admins, err)
	}
}

// TestAuthenticateRoutesByShape: personal tokens and JWTs go to the
// identities, admin and agent credentials to the credentials.
func TestAuthenticateRoutesByShape(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	ctx := context.Background()
	_, err := f.svc.Authenticate(ctx, tripcap.NewSecret(tripcap.SecretPrefixToken))
	wantCode(t, err, tripcap.EUNAUTHORIZED, "no user tokens")

	ids, err := identity.New(f.store, identity.Config{Issuer: "https://tripcap.test", Password: identity.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f.svc.SetIdentities(ids)
	if _, err := ids.CreateUser(ownerCtx(), "alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	tok, err := ids.CreateToken(ownerCtx(), "alice", "t", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.Authenticate(ctx, tok.Token)
	if err != nil || p.Name != "alice" || p.Kind != tripcap.PrincipalUser {
		t.Fatalf("personal token: %+v, %v", p, err)
	}
	sp, err := ids.CreateServicePrincipal(ownerCtx(), "bot")
	if err != nil {
		t.Fatal(err)
	}
	res, err := ids.Token(ctx, identity.TokenRequest{GrantType: "client_credentials", ClientID: sp.ClientID, ClientSecret: sp.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	p, err = f.svc.Authenticate(ctx, res.AccessToken)
	if err != nil || p.Name != "bot" || p.Kind != tripcap.PrincipalService {
		t.Fatalf("JWT: %+v, %v", p, err)
	}
	agentCtx, h := f.enroll(t, "web-1")
	if p := tripcap.PrincipalFromContext(agentCtx); p.Kind != tripcap.PrincipalAgent || p.HostID != h.ID {
		t.Fatalf("agent: %+v", p)
	}
}

// FuzzCheckAdminSecret: what passes is at least as long as a generated token.
func FuzzCheckAdminSecret(f *testing.F) {
	f.Add(tripcap.NewSecret(tripcap.SecretPrefixAdmin))
	f.Add("tc_admin_x")
	f.Add("tc_admin_" + strings.Repeat("é", 60))
	f.Fuzz(func(t *testing.T, s string) {
		if controlplane.CheckAdminSecret(s) == nil && (!strings.HasPrefix(s, tripcap.SecretPrefixAdmin) || len(s) < len(tripcap.NewSecret(tripcap.SecretPrefixAdmin))) {
			t.Fatalf("%q accepted", s)
		}
	})
}
