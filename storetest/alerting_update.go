package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// testVersionedUpdate checks a store's conditional update of one named,
// versioned object: the write bumps the version, keeps the id and creation
// time, refuses a stale version and a taken name, and of concurrent
// writers from one version exactly one wins.
func testVersionedUpdate[T any](t *testing.T, what string,
	create func(name string) (*T, error), find func(id string) (*T, error), update func(v *T, expect int64) error,
	fields func(v *T) (id, name *string, version *int64, created, updated *time.Time, description *string)) {
	t.Helper()
	v, err := create(what + "-1")
	must(t, err)
	id, _, version, created, _, _ := fields(v)
	if *version != 1 {
		t.Fatalf("%s created at version %d, want 1", what, *version)
	}
	got, err := find(*id)
	must(t, err)
	gid, _, gversion, gcreated, gupdated, gdesc := fields(got)
	if *gversion != 1 {
		t.Fatalf("%s stored at version %d, want 1", what, *gversion)
	}
	stale := *got
	*gdesc = "changed"
	before := *gupdated
	must(t, update(got, 1))
	if *gversion != 2 || *gid != *id || !gupdated.After(before) {
		t.Fatalf("%s after update: version %d id %s updated %v (before %v)", what, *gversion, *gid, *gupdated, before)
	}
	again, err := find(*id)
	must(t, err)
	aid, aname, aversion, acreated, _, adesc := fields(again)
	if *aversion != 2 || *adesc != "changed" || *aid != *id || !acreated.Equal(*created) || !gcreated.Equal(*created) || *aname != what+"-1" {
		t.Fatalf("%s read after update: %+v", what, again)
	}

	_, _, _, _, _, sdesc := fields(&stale)
	*sdesc = "lost update"
	wantCode(t, update(&stale, 1), tripcap.EPRECONDITION)
	if cur, _ := find(*id); *ptrDesc(fields, cur) != "changed" {
		t.Fatalf("%s: a stale update was written: %+v", what, cur)
	}

	// Names stay unique regardless of case.
	other, err := create(what + "-2")
	must(t, err)
	_, oname, oversion, _, _, _ := fields(other)
	*oname = what + "-1"
	up := []byte(*oname)
	up[0] -= 'a' - 'A'
	*oname = string(up)
	wantCode(t, update(other, *oversion), tripcap.ECONFLICT)

	// Unknown ids.
	gone := *again
	gid2, _, _, _, _, _ := fields(&gone)
	*gid2 = tripcap.NewID()
	wantCode(t, update(&gone, 2), tripcap.ENOTFOUND)

	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			w := *again
			errs[i] = update(&w, 2)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch tripcap.ErrorCode(err) {
		case "":
			ok++
		case tripcap.EPRECONDITION:
		default:
			t.Fatalf("%s: unexpected error %v", what, err)
		}
	}
	if ok != 1 {
		t.Fatalf("%s: %d concurrent updates from one version succeeded, want 1", what, ok)
	}
	final, err := find(*id)
	must(t, err)
	if _, _, fv, _, _, _ := fields(final); *fv != 3 {
		t.Fatalf("%s: version %d after one more update, want 3", what, *fv)
	}
}

func ptrDesc[T any](fields func(v *T) (id, name *string, version *int64, created, updated *time.Time, description *string), v *T) *string {
	_, _, _, _, _, d := fields(v)
	return d
}

func testAlertRuleUpdate(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	testVersionedUpdate(t, "rule",
		func(name string) (*tripcap.AlertRule, error) {
			r := fullRule(name)
			r.Version = 0
			return r, s.CreateAlertRule(ctx, r)
		},
		func(id string) (*tripcap.AlertRule, error) {
			return s.FindAlertRule(ctx, tripcap.AlertRuleFilter{ID: &id})
		},
		func(r *tripcap.AlertRule, v int64) error { return s.UpdateAlertRule(ctx, r, v) },
		func(r *tripcap.AlertRule) (*string, *string, *int64, *time.Time, *time.Time, *string) {
			return &r.ID, &r.Name, &r.Version, &r.CreatedAt, &r.UpdatedAt, &r.Description
		})
}

func testActionGroupUpdate(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	testVersionedUpdate(t, "group",
		func(name string) (*tripcap.ActionGroup, error) {
			g := fullGroup(name)
			g.Version = 0
			return g, s.CreateActionGroup(ctx, g)
		},
		func(id string) (*tripcap.ActionGroup, error) {
			return s.FindActionGroup(ctx, tripcap.ActionGroupFilter{ID: &id})
		},
		func(g *tripcap.ActionGroup, v int64) error { return s.UpdateActionGroup(ctx, g, v) },
		func(g *tripcap.ActionGroup) (*string, *string, *int64, *time.Time, *time.Time, *string) {
			return &g.ID, &g.Name, &g.Version, &g.CreatedAt, &g.UpdatedAt, &g.GroupShortName
		})
	// The signing secret is the caller's to keep: an update that carries it keeps it.
	g := fullGroup("secretive")
	must(t, s.CreateActionGroup(ctx, g))
	g.Enabled = new(false)
	must(t, s.UpdateActionGroup(ctx, g, g.Version))
	got, err := s.FindActionGroup(ctx, tripcap.ActionGroupFilter{ID: &g.ID})
	must(t, err)
	if got.SigningSecret != "0123456789abcdef0123456789abcdef" || got.IsEnabled() {
		t.Fatalf("group after disabling: secret %q enabled %v", got.SigningSecret, got.IsEnabled())
	}
}
