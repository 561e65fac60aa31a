package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

var identityTests = []struct {
	name string
	fn   func(t *testing.T, s tripcap.Store)
}{
	{"Identity/PrincipalLifecycle", testPrincipalLifecycle},
	{"Identity/TokenLifecycle", testAPITokenLifecycle},
	{"Identity/RoleAssignments", testRoleAssignments},
	{"Identity/DeleteCascades", testPrincipalDeleteCascades},
	{"Identity/SigningKeys", testSigningKeys},
	{"Identity/SigningKeysConcurrent", testSigningKeysConcurrent},
	{"Identity/RevokeCredential", testRevokeCredential},
}

func newPrincipal(kind tripcap.PrincipalKind, name string) *tripcap.PrincipalRecord {
	return &tripcap.PrincipalRecord{ID: tripcap.NewID(), Kind: kind, Name: name, SecretHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		CreatedBy: "admin", CreatedAt: base}
}

func testPrincipalLifecycle(t *testing.T, s tripcap.Store) {
	ctx := context.Background()
	u := newPrincipal(tripcap.PrincipalUser, "Alice")
	must(t, s.CreatePrincipal(ctx, u))
	sp := newPrincipal(tripcap.PrincipalService, "ci-bot")
	must(t, s.CreatePrincipal(ctx, sp))

	wantCode(t, s.CreatePrincipal(ctx, newPrincipal(tripcap.PrincipalService, "alice")), tripcap.ECONFLICT)
	dup := newPrincipal(tripcap.PrincipalUser, "bob")
	dup.ID = u.ID
	wantCode(t, s.CreatePrincipal(ctx, dup), tripcap.ECONFLICT)
	wantCode(t, s.CreatePrincipal(ctx, &tripcap.PrincipalRecord{ID: tripcap.NewID(), Kind: tripcap.PrincipalAgent, Name: "x"}), tripcap.EINVALID)

	name := "ALICE"
	got, err := s.FindPrincipals(ctx, tripcap.PrincipalFilter{Name: &name})
	must(t, err)
	if len(got) != 1 {
		t.Fatalf("find by name regardless of case: %d principals", len(got))
	}
	want := *u
	want.CreatedAt = base.UTC()
	wantEqual(t, "user", got[0], &want)

	kind := tripcap.PrincipalService
	got, err = s.FindPrincipals(ctx, tripcap.PrincipalFilter{Kind: &kind})
	must(t, err)
	if len(got) != 1 || got[0].ID != sp.ID || got[0].ClientID != sp.ID || got[0].SecretHash != sp.SecretHash {
		t.Fatalf("find service principals: %+v", got)
	}
	all, err := s.FindPrincipals(ctx, tripcap.PrincipalFilter{})
	must(t, err)
	if len(all) != 2 || all[0].ID > all[1].ID {
		t.Fatalf("find all, by id: %+v", all)
	}

	must(t, s.DeletePrincipal(ctx, u.ID))
	wantCode(t, s.DeletePrincipal(ctx, u.ID), tripcap.ENOTFOUND)
	got, err = s.FindPrincipals(ctx, tripcap.PrincipalFilter{ID: &u.ID})
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("deleted principal still found")
	}
	bad := "x y"
	_, err = s.FindPrincipals(ctx, tripcap.PrincipalFilter{ID: &bad})
	wantCode(t, err, tripcap.EINVALID)
}

func testAPITokenLifecycle(t *testing.T, s tripcap.Store) {
	ctx := context.Background()
	u := newPrincipal(tripcap.PrincipalUser, "alice")
	must(t, s.CreatePrincipal(ctx, u))
	tok := &tripcap.APIToken{ID: tripcap.NewID(), PrincipalID: u.ID, Name: "laptop", Hash: tripcap.HashSecret("tc_pat_1"),
		ExpiresAt: base.Add(24 * time.Hour), CreatedBy: "alice", CreatedAt: base}
	must(t, s.CreateAPIToken(ctx, tok))
	again := *tok
	again.ID = tripcap.NewID()
	wantCode(t, s.CreateAPIToken(ctx, &again), tripcap.ECONFLICT)
	orphan := *tok
	orphan.ID, orphan.PrincipalID, orphan.Hash = tripcap.NewID(), tripcap.NewID(), "other"
	wantCode(t, s.CreateAPIToken(ctx, &orphan), tripcap.ENOTFOUND)

	got, err := s.FindAPITokenByHash(ctx, tok.Hash)
	must(t, err)
	want := *tok
	want.CreatedAt, want.ExpiresAt = base.UTC(), tok.ExpiresAt.UTC()
	wantEqual(t, "token", got, &want)
	_, err = s.FindAPITokenByHash(ctx, "nope")
	wantCode(t, err, tripcap.ENOTFOUND)

	second := &tripcap.APIToken{ID: tripcap.NewID(), PrincipalID: u.ID, Name: "ci", Hash: tripcap.HashSecret("tc_pat_2"), ExpiresAt: base.Add(time.Hour), CreatedAt: base}
	must(t, s.CreateAPIToken(ctx, second))
	list, err := s.FindAPITokens(ctx, u.ID)
	must(t, err)
	if len(list) != 2 || list[0].ID > list[1].ID {
		t.Fatalf("list tokens: %+v", list)
	}
	must(t, s.DeleteAPIToken(ctx, tok.ID))
	wantCode(t, s.DeleteAPIToken(ctx, tok.ID), tripcap.ENOTFOUND)
	_, err = s.FindAPITokenByHash(ctx, tok.Hash)
	wantCode(t, err, tripcap.ENOTFOUND)
}

func testRoleAssignments(t *testing.T, s tripcap.Store) {
	ctx := context.Background()
	u := newPrincipal(tripcap.PrincipalUser, "alice")
	must(t, s.CreatePrincipal(ctx, u))
	a := &tripcap.RoleAssignment{ID: tripcap.NewID(), PrincipalID: u.ID, Role: tripcap.RoleReader, Scope: "label:team=a", CreatedBy: "admin", CreatedAt: base}
	must(t, s.CreateRoleAssignment(ctx, a))
	dup := *a
	dup.ID = tripcap.NewID()
	wantCode(t, s.CreateRoleAssignment(ctx, &dup), tripcap.ECONFLICT)
	other := *a
	other.ID, other.Role = tripcap.NewID(), tripcap.RoleNetworkContributor
	must(t, s.CreateRoleAssignment(ctx, &other))

	badRole := *a
	badRole.ID, badRole.Role = tripcap.NewID(), "God"
	wantCode(t, s.CreateRoleAssignment(ctx, &badRole), tripcap.EINVALID)
	badScope := *a
	badScope.ID, badScope.Scope = tripcap.NewID(), "team=a"
	wantCode(t, s.CreateRoleAssignment(ctx, &badScope), tripcap.EINVALID)
	orphan := *a
	orphan.ID, orphan.PrincipalID = tripcap.NewID(), tripcap.NewID()
	wantCode(t, s.CreateRoleAssignment(ctx, &orphan), tripcap.ENOTFOUND)

	got, err := s.FindRoleAssignments(ctx, tripcap.RoleAssignmentFilter{PrincipalID: &u.ID})
	must(t, err)
	want := *a
	want.CreatedAt = base.UTC()
	if len(got) != 2 {
		t.Fatalf("assignments: %+v", got)
	}
	if got[0].ID != a.ID {
		got[0] = got[1]
	}
	wantEqual(t, "assignment", got[0], &want)
	got, err = s.FindRoleAssignments(ctx, tripcap.RoleAssignmentFilter{ID: &other.ID})
	must(t, err)
	if len(got) != 1 || got[0].Role != tripcap.RoleNetworkContributor {
		t.Fatalf("by id: %+v", got)
	}
	must(t, s.DeleteRoleAssignment(ctx, a.ID))
	wantCode(t, s.DeleteRoleAssignment(ctx, a.ID), tripcap.ENOTFOUND)
}

func testPrincipalDeleteCascades(t *testing.T, s tripcap.Store) {
	ctx := context.Background()
	u := newPrincipal(tripcap.PrincipalUser, "alice")
	keep := newPrincipal(tripcap.PrincipalUser, "bob")
	must(t, s.CreatePrincipal(ctx, u))
	must(t, s.CreatePrincipal(ctx, keep))
	for i, p := range []*tripcap.PrincipalRecord{u, keep} {
		must(t, s.CreateAPIToken(ctx, &tripcap.APIToken{ID: tripcap.NewID(), PrincipalID: p.ID, Name: "t", Hash: tripcap.HashSecret(p.Name), ExpiresAt: base.Add(time.Hour), CreatedAt: base}))
		must(t, s.CreateRoleAssignment(ctx, &tripcap.RoleAssignment{ID: tripcap.NewID(), PrincipalID: p.ID, Role: tripcap.RoleNames()[i], Scope: tripcap.ScopeAll, CreatedAt: base}))
	}
	must(t, s.DeletePrincipal(ctx, u.ID))
	toks, err := s.FindAPITokens(ctx, "")
	must(t, err)
	as, err := s.FindRoleAssignments(ctx, tripcap.RoleAssignmentFilter{})
	must(t, err)
	if len(toks) != 1 || toks[0].PrincipalID != keep.ID || len(as) != 1 || as[0].PrincipalID != keep.ID {
		t.Fatalf("after deleting alice: tokens %+v, assignments %+v", toks, as)
	}
}

func signingKey(created time.Time) *tripcap.SigningKey {
	return &tripcap.SigningKey{KID: tripcap.NewID(), Algorithm: "ES256", PrivateKey: "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg",
		CreatedAt: created, RetireAfter: created.Add(31 * 24 * time.Hour)}
}

func testSigningKeys(t *testing.T, s tripcap.Store) {
	ctx := context.Background()
	old, cur := signingKey(base.Add(-40*24*time.Hour)), signingKey(base)
	must(t, s.CreateSigningKey(ctx, old))
	must(t, s.CreateSigningKey(ctx, cur))
	wantCode(t, s.CreateSigningKey(ctx, cur), tripcap.ECONFLICT)
	wantCode(t, s.CreateSigningKey(ctx, &tripcap.SigningKey{KID: tripcap.NewID(), Algorithm: "ES256", CreatedAt: base, RetireAfter: base.Add(time.Hour)}), tripcap.EINVALID)

	all, err := s.FindSigningKeys(ctx, tripcap.SigningKeyFilter{})
	must(t, err)
	if len(all) != 2 || all[0].KID != cur.KID {
		t.Fatalf("newest first: %+v", all)
	}
	want := *cur
	want.CreatedAt, want.RetireAfter = cur.CreatedAt.UTC(), cur.RetireAfter.UTC()
	wantEqual(t, "key", all[0], &want)

	now := base
	usable, err := s.FindSigningKeys(ctx, tripcap.SigningKeyFilter{UsableAt: &now})
	must(t, err)
	if len(usable) != 1 || usable[0].KID != cur.KID {
		t.Fatalf("usable now: %+v", usable)
	}
	byKID, err := s.FindSigningKeys(ctx, tripcap.SigningKeyFilter{KID: &old.KID})
	must(t, err)
	if len(byKID) != 1 || byKID[0].KID != old.KID {
		t.Fatalf("by kid: %+v", byKID)
	}
	n, err := s.DeleteSigningKeysRetiredBefore(ctx, base)
	must(t, err)
	if n != 1 {
		t.Fatalf("deleted %d retired keys, want 1", n)
	}
	all, err = s.FindSigningKeys(ctx, tripcap.SigningKeyFilter{})
	must(t, err)
	if len(all) != 1 || all[0].KID != cur.KID {
		t.Fatalf("after deleting retired: %+v", all)
	}
}

// Replicas starting together each create a first key: both succeed.
func testSigningKeysConcurrent(t *testing.T, s tripcap.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = s.CreateSigningKey(ctx, signingKey(base)) })
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	all, err := s.FindSigningKeys(ctx, tripcap.SigningKeyFilter{})
	must(t, err)
	if len(all) != len(errs) {
		t.Fatalf("%d keys, want %d", len(all), len(errs))
	}
}

func testRevokeCredential(t *testing.T, s tripcap.Store) {
	ctx := context.Background()
	c := &tripcap.Credential{ID: tripcap.NewID(), Name: "admin", Role: tripcap.RoleAdmin, Hash: tripcap.HashSecret("tc_admin_old"), CreatedAt: base}
	must(t, s.CreateCredential(ctx, c))
	must(t, s.RevokeCredential(ctx, c.ID, base))
	wantCode(t, s.RevokeCredential(ctx, c.ID, base), tripcap.ENOTFOUND)
	_, err := s.FindCredentialByHash(ctx, c.Hash)
	wantCode(t, err, tripcap.ENOTFOUND)
	revoked, err := s.FindRevokedCredentials(ctx, tripcap.RoleAdmin)
	must(t, err)
	if len(revoked) != 1 || revoked[0] != c.Hash {
		t.Fatalf("revoked: %v", revoked)
	}
	// Registered again from a stale file and revoked again: recorded once.
	c.ID = tripcap.NewID()
	must(t, s.CreateCredential(ctx, c))
	must(t, s.RevokeCredential(ctx, c.ID, base.Add(time.Minute)))
	revoked, err = s.FindRevokedCredentials(ctx, tripcap.RoleAdmin)
	must(t, err)
	if len(revoked) != 1 {
		t.Fatalf("revoked twice: %v", revoked)
	}
	agents, err := s.FindRevokedCredentials(ctx, tripcap.RoleAgent)
	must(t, err)
	if len(agents) != 0 {
		t.Fatalf("agent revocations: %v", agents)
	}
}
