package storetest

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// A join token bound to a host keeps its host name; FindJoinTokenByHash
// finds a usable token without using it up, and refuses as Consume does.
func testJoinTokenBoundAndFound(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	now := base.Add(time.Minute)
	tok := joinToken(2, base.Add(time.Hour))
	tok.HostName = "web-1"
	must(t, s.CreateJoinToken(ctx, tok))
	want := &tripcap.JoinToken{ID: tok.ID, Hash: tok.Hash, ExpiresAt: tok.ExpiresAt.UTC(), UsesLeft: 2, HostName: "web-1", CreatedAt: tok.CreatedAt.UTC()}
	for range 3 {
		got, err := s.FindJoinTokenByHash(ctx, tok.Hash, now)
		must(t, err)
		wantEqual(t, "found token", got, want)
	}
	list, err := s.FindJoinTokens(ctx, now)
	must(t, err)
	if len(list) != 1 {
		t.Fatalf("FindJoinTokens: %d tokens", len(list))
	}
	wantEqual(t, "listed bound token", list[0], want)
	got, err := s.ConsumeJoinToken(ctx, tok.Hash, now)
	must(t, err)
	if got.HostName != "web-1" || got.UsesLeft != 1 {
		t.Fatalf("consumed bound token: %+v", got)
	}
	_, err = s.FindJoinTokenByHash(ctx, tok.Hash, base.Add(time.Hour))
	wantCode(t, err, tripcap.EUNAUTHORIZED)
	_, err = s.FindJoinTokenByHash(ctx, tripcap.HashSecret("tc_join_unknown"), now)
	wantCode(t, err, tripcap.EUNAUTHORIZED)
	_, err = s.FindJoinTokenByHash(ctx, "", now)
	wantCode(t, err, tripcap.EUNAUTHORIZED)
	_, err = s.ConsumeJoinToken(ctx, tok.Hash, now)
	must(t, err)
	_, err = s.FindJoinTokenByHash(ctx, tok.Hash, now)
	wantCode(t, err, tripcap.EUNAUTHORIZED)
}

// Pending enrollments: one per ticket, several per host name, token and
// address; listed by host while their token is usable, with its expiry and
// ticket hash; approved and deleted.
func testPendingEnrollments(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	now := base.Add(time.Minute)
	tok := joinToken(1, base.Add(time.Hour))
	must(t, s.CreateJoinToken(ctx, tok))
	short := joinToken(1, base.Add(2*time.Minute))
	must(t, s.CreateJoinToken(ctx, short))
	a := &tripcap.PendingEnrollment{ID: tripcap.NewID(), HostName: "web-1", JoinTokenID: tok.ID, Remote: "198.18.0.9", Hostname: "intruder", TicketHash: tripcap.HashSecret("ticket-a"), CreatedAt: base}
	must(t, s.CreatePendingEnrollment(ctx, a))
	dup := *a
	dup.ID = tripcap.NewID()
	wantCode(t, s.CreatePendingEnrollment(ctx, &dup), tripcap.ECONFLICT)
	// The same token and address with another ticket: another agent there.
	same := dup
	same.TicketHash = tripcap.HashSecret("ticket-same")
	same.ID = tripcap.NewIDAfter(a.ID)
	must(t, s.CreatePendingEnrollment(ctx, &same))
	must(t, s.DeletePendingEnrollment(ctx, same.ID))
	// NewID orders ids within a millisecond at random; b is listed after a.
	b := &tripcap.PendingEnrollment{ID: tripcap.NewIDAfter(a.ID), HostName: "web-1", JoinTokenID: tok.ID, Remote: "198.18.0.10", TicketHash: tripcap.HashSecret("ticket-b"), CreatedAt: base}
	must(t, s.CreatePendingEnrollment(ctx, b))
	c := &tripcap.PendingEnrollment{ID: tripcap.NewID(), HostName: "web-2", JoinTokenID: short.ID, Remote: "198.18.0.9", TicketHash: tripcap.HashSecret("ticket-c"), CreatedAt: base}
	must(t, s.CreatePendingEnrollment(ctx, c))

	got, err := s.FindPendingEnrollments(ctx, "web-1", now)
	must(t, err)
	if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
		t.Fatalf("pending of web-1: %+v", got)
	}
	wantEqual(t, "pending enrollment", got[0], &tripcap.PendingEnrollment{ID: a.ID, HostName: "web-1", JoinTokenID: tok.ID, ExpiresAt: tok.ExpiresAt.UTC(),
		Remote: "198.18.0.9", Hostname: "intruder", TicketHash: tripcap.HashSecret("ticket-a"), CreatedAt: base.UTC()})
	all, err := s.FindPendingEnrollments(ctx, "", now)
	must(t, err)
	if len(all) != 3 {
		t.Fatalf("all pending: %d, want 3", len(all))
	}
	// Once its token expires an enrollment is of no use and not listed.
	all, err = s.FindPendingEnrollments(ctx, "", base.Add(2*time.Minute))
	must(t, err)
	if len(all) != 2 {
		t.Fatalf("pending after a token expired: %d, want 2", len(all))
	}

	at := base.Add(90 * time.Second)
	must(t, s.ApprovePendingEnrollment(ctx, a.ID, "alice", at))
	got, err = s.FindPendingEnrollments(ctx, "web-1", now)
	must(t, err)
	if got[0].ApprovedAt == nil || !got[0].ApprovedAt.Equal(at) || got[0].ApprovedBy != "alice" || got[1].ApprovedAt != nil {
		t.Fatalf("after approval: %+v %+v", got[0], got[1])
	}
	wantCode(t, s.ApprovePendingEnrollment(ctx, tripcap.NewID(), "alice", at), tripcap.ENOTFOUND)
	must(t, s.DeletePendingEnrollment(ctx, a.ID))
	wantCode(t, s.DeletePendingEnrollment(ctx, a.ID), tripcap.ENOTFOUND)
	got, err = s.FindPendingEnrollments(ctx, "web-1", now)
	must(t, err)
	if len(got) != 1 || got[0].ID != b.ID {
		t.Fatalf("after delete: %+v", got)
	}
	// A new one forgets those whose token was no longer usable when it came.
	d := &tripcap.PendingEnrollment{ID: tripcap.NewID(), HostName: "web-3", JoinTokenID: tok.ID, Remote: "198.18.0.9", TicketHash: tripcap.HashSecret("ticket-d"), CreatedAt: base.Add(3 * time.Minute)}
	must(t, s.CreatePendingEnrollment(ctx, d))
	all, err = s.FindPendingEnrollments(ctx, "", now)
	must(t, err)
	for _, e := range all {
		if e.ID == c.ID {
			t.Fatalf("the enrollment of an expired token was kept: %+v", e)
		}
	}
	if len(all) != 2 {
		t.Fatalf("pending after the purge: %d, want web-1's and web-3's", len(all))
	}
	wantCode(t, s.CreatePendingEnrollment(ctx, &tripcap.PendingEnrollment{ID: tripcap.NewID(), JoinTokenID: tok.ID, TicketHash: "h"}), tripcap.EINVALID)
	wantCode(t, s.CreatePendingEnrollment(ctx, &tripcap.PendingEnrollment{ID: tripcap.NewID(), HostName: "x", JoinTokenID: tok.ID}), tripcap.EINVALID)
	wantCode(t, s.CreatePendingEnrollment(ctx, &tripcap.PendingEnrollment{ID: "", HostName: "x", JoinTokenID: tok.ID}), tripcap.EINVALID)
}
