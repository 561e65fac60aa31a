package storetest

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

func testSilences(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	loc := time.FixedZone("X", 3600)
	mk := func(start, end time.Time) *tripcap.Silence {
		return &tripcap.Silence{ID: tripcap.NewID(), Rule: tripcap.NewID(), Host: tripcap.NewID(),
			Labels: []tripcap.Scope{"label:role=web", "label:env!=dev"}, StartsAt: start.In(loc), EndsAt: end.In(loc),
			CreatedBy: "admin", Comment: "maintenance ✓ \"window\"", CreatedAt: base.In(loc)}
	}
	past := mk(base.Add(-3*time.Hour), base.Add(-2*time.Hour))
	now := mk(base.Add(-time.Hour), base.Add(time.Hour))
	later := mk(base.Add(2*time.Hour), base.Add(3*time.Hour))
	for _, sl := range []*tripcap.Silence{later, past, now} {
		must(t, s.CreateSilence(ctx, sl))
	}
	dup := mk(base, base.Add(time.Hour))
	dup.ID = now.ID
	wantCode(t, s.CreateSilence(ctx, dup), tripcap.ECONFLICT)

	got, err := s.FindSilences(ctx, tripcap.SilenceFilter{ID: &now.ID})
	must(t, err)
	if len(got) != 1 {
		t.Fatalf("silence by id: %d found", len(got))
	}
	wantEqual(t, "silence round trip", got[0], utcCopy(now))

	ids := func(f tripcap.SilenceFilter) []string {
		list, err := s.FindSilences(ctx, f)
		must(t, err)
		var out []string
		for _, sl := range list {
			out = append(out, sl.ID)
		}
		return out
	}
	at := base
	wantEqual(t, "all silences by start", ids(tripcap.SilenceFilter{}), []string{past.ID, now.ID, later.ID})
	wantEqual(t, "active silences", ids(tripcap.SilenceFilter{ActiveAt: &at}), []string{now.ID})
	wantEqual(t, "silences not yet ended", ids(tripcap.SilenceFilter{EndedAfter: &at}), []string{now.ID, later.ID})
	end := base.Add(time.Hour) // ends_at is exclusive
	wantEqual(t, "active at the end", ids(tripcap.SilenceFilter{ActiveAt: &end}), []string(nil))

	exp, err := s.ExpireSilence(ctx, now.ID, base)
	must(t, err)
	if !exp.EndsAt.Equal(base) {
		t.Fatalf("expired silence ends %v, want %v", exp.EndsAt, base)
	}
	wantEqual(t, "active after expiry", ids(tripcap.SilenceFilter{ActiveAt: &at}), []string(nil))
	// Expiring again, or a silence already over, changes nothing.
	again, err := s.ExpireSilence(ctx, past.ID, base)
	must(t, err)
	if !again.EndsAt.Equal(past.EndsAt) {
		t.Fatalf("expiring an ended silence moved its end to %v", again.EndsAt)
	}
	// A silence expired before it starts never mutes.
	fut, err := s.ExpireSilence(ctx, later.ID, base)
	must(t, err)
	if !fut.StartsAt.Equal(base) || !fut.EndsAt.Equal(base) {
		t.Fatalf("future silence expired: %v..%v", fut.StartsAt, fut.EndsAt)
	}
	_, err = s.ExpireSilence(ctx, tripcap.NewID(), base)
	wantCode(t, err, tripcap.ENOTFOUND)
	_, err = s.ExpireSilence(ctx, "not an id", base)
	wantCode(t, err, tripcap.EINVALID)
	_, err = s.FindSilences(ctx, tripcap.SilenceFilter{ID: new("../x")})
	wantCode(t, err, tripcap.EINVALID)
}
