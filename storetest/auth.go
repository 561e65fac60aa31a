package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

func joinToken(uses int, expires time.Time) *tripcap.JoinToken {
	secret := tripcap.NewSecret(tripcap.SecretPrefixJoin)
	return &tripcap.JoinToken{
		ID:        tripcap.NewID(),
		Hash:      tripcap.HashSecret(secret),
		ExpiresAt: expires,
		UsesLeft:  uses,
		HostName:  "web-1",
		CreatedAt: base,
		Token:     secret,
	}
}

func testJoinToken(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	now := base.Add(time.Minute)
	tok := joinToken(2, base.Add(time.Hour))
	wantPopulated(t, tok)
	must(t, s.CreateJoinToken(ctx, tok))

	dup := joinToken(1, base.Add(time.Hour))
	dup.Hash = tok.Hash
	wantCode(t, s.CreateJoinToken(ctx, dup), tripcap.ECONFLICT)

	list, err := s.FindJoinTokens(ctx, now)
	must(t, err)
	want := &tripcap.JoinToken{ID: tok.ID, Hash: tok.Hash, ExpiresAt: tok.ExpiresAt.UTC(), UsesLeft: 2, HostName: tok.HostName, CreatedAt: tok.CreatedAt.UTC()}
	if len(list) != 1 {
		t.Fatalf("FindJoinTokens: %d tokens, want 1", len(list))
	}
	// The secret itself is never stored.
	wantEqual(t, "listed token", list[0], want)

	got, err := s.ConsumeJoinToken(ctx, tok.Hash, now)
	must(t, err)
	want.UsesLeft = 1
	wantEqual(t, "consumed token", got, want)
	got, err = s.ConsumeJoinToken(ctx, tok.Hash, now)
	must(t, err)
	if got.UsesLeft != 0 {
		t.Fatalf("uses left after the last use: %d", got.UsesLeft)
	}
	_, err = s.ConsumeJoinToken(ctx, tok.Hash, now)
	wantCode(t, err, tripcap.EUNAUTHORIZED)
	list, err = s.FindJoinTokens(ctx, now)
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("used-up token still listed")
	}

	_, err = s.ConsumeJoinToken(ctx, tripcap.HashSecret("tc_join_unknown"), now)
	wantCode(t, err, tripcap.EUNAUTHORIZED)
	_, err = s.ConsumeJoinToken(ctx, "", now)
	wantCode(t, err, tripcap.EUNAUTHORIZED)

	other := joinToken(5, base.Add(time.Hour))
	must(t, s.CreateJoinToken(ctx, other))
	must(t, s.DeleteJoinToken(ctx, other.ID))
	_, err = s.ConsumeJoinToken(ctx, other.Hash, now)
	wantCode(t, err, tripcap.EUNAUTHORIZED)
	wantCode(t, s.DeleteJoinToken(ctx, other.ID), tripcap.ENOTFOUND)
	wantCode(t, s.CreateJoinToken(ctx, joinToken(0, base.Add(time.Hour))), tripcap.EINVALID)
}

func testJoinTokenExpiry(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	expires := base.Add(time.Hour)
	a := joinToken(3, expires)
	b := joinToken(3, expires.Add(time.Hour))
	must(t, s.CreateJoinToken(ctx, a))
	must(t, s.CreateJoinToken(ctx, b))

	list, err := s.FindJoinTokens(ctx, expires.Add(-time.Microsecond))
	must(t, err)
	if len(list) != 2 {
		t.Fatalf("before expiry: %d tokens, want 2", len(list))
	}
	list, err = s.FindJoinTokens(ctx, expires)
	must(t, err)
	if len(list) != 1 || list[0].ID != b.ID {
		t.Fatalf("at expiry: %v, want only the later token", list)
	}
	_, err = s.ConsumeJoinToken(ctx, a.Hash, expires)
	wantCode(t, err, tripcap.EUNAUTHORIZED)
	_, err = s.ConsumeJoinToken(ctx, a.Hash, expires.Add(-time.Microsecond))
	must(t, err)
}

func testJoinTokenConcurrent(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	for _, uses := range []int{1, 3} {
		tok := joinToken(uses, base.Add(time.Hour))
		must(t, s.CreateJoinToken(ctx, tok))
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, refused := 0, 0
		var other []error
		start := make(chan struct{})
		for range 10 {
			wg.Go(func() {
				<-start
				_, err := s.ConsumeJoinToken(ctx, tok.Hash, base)
				mu.Lock()
				defer mu.Unlock()
				switch tripcap.ErrorCode(err) {
				case "":
					won++
				case tripcap.EUNAUTHORIZED:
					refused++
				default:
					other = append(other, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(other) > 0 {
			t.Fatalf("uses=%d: unexpected errors %v", uses, other)
		}
		if won != uses || refused != 10-uses {
			t.Fatalf("uses=%d: %d enrolled, %d refused; want %d and %d", uses, won, refused, uses, 10-uses)
		}
	}
}

func testCredentials(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	admin := &tripcap.Credential{ID: tripcap.NewID(), Name: "ops", Role: tripcap.RoleAdmin, Hash: tripcap.HashSecret("a"), CreatedAt: base}
	hostID := tripcap.NewID()
	agent1 := &tripcap.Credential{ID: tripcap.NewID(), Name: "web-1", Role: tripcap.RoleAgent, HostID: hostID, Hash: tripcap.HashSecret("b"), CreatedAt: base}
	agent2 := &tripcap.Credential{ID: tripcap.NewID(), Name: "web-1 rotated", Role: tripcap.RoleAgent, HostID: hostID, Hash: tripcap.HashSecret("c"), CreatedAt: base}
	agent3 := &tripcap.Credential{ID: tripcap.NewID(), Name: "web-2", Role: tripcap.RoleAgent, HostID: tripcap.NewID(), Hash: tripcap.HashSecret("d"), CreatedAt: base}
	wantPopulated(t, agent1)
	for _, c := range []*tripcap.Credential{admin, agent1, agent2, agent3} {
		must(t, s.CreateCredential(ctx, c))
	}
	dup := &tripcap.Credential{ID: tripcap.NewID(), Name: "dup", Role: tripcap.RoleAdmin, Hash: admin.Hash}
	wantCode(t, s.CreateCredential(ctx, dup), tripcap.ECONFLICT)

	got, err := s.FindCredentialByHash(ctx, agent1.Hash)
	must(t, err)
	want := *agent1
	want.CreatedAt = want.CreatedAt.UTC()
	wantEqual(t, "credential", got, &want)
	_, err = s.FindCredentialByHash(ctx, tripcap.HashSecret("nope"))
	wantCode(t, err, tripcap.ENOTFOUND)
	_, err = s.FindCredentialByHash(ctx, "")
	wantCode(t, err, tripcap.ENOTFOUND)

	count := func(role tripcap.Role) int {
		t.Helper()
		cs, err := s.FindCredentials(ctx, role)
		must(t, err)
		for i := 1; i < len(cs); i++ {
			if cs[i-1].ID >= cs[i].ID {
				t.Fatalf("credentials not ordered by id")
			}
		}
		return len(cs)
	}
	if n := count(""); n != 4 {
		t.Fatalf("%d credentials, want 4", n)
	}
	if n := count(tripcap.RoleAdmin); n != 1 {
		t.Fatalf("%d admin credentials, want 1", n)
	}
	if n := count(tripcap.RoleAgent); n != 3 {
		t.Fatalf("%d agent credentials, want 3", n)
	}

	must(t, s.DeleteCredentialsOfHost(ctx, hostID))
	must(t, s.DeleteCredentialsOfHost(ctx, hostID)) // none left is fine
	if n := count(""); n != 2 {
		t.Fatalf("%d credentials after revoking a host's, want 2", n)
	}
	_, err = s.FindCredentialByHash(ctx, agent2.Hash)
	wantCode(t, err, tripcap.ENOTFOUND)
	_, err = s.FindCredentialByHash(ctx, agent3.Hash)
	must(t, err)
}
