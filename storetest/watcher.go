package storetest

import (
	"sync"
	"testing"

	"github.com/tripcap/tripcap"
)

func testEnsureWatcher(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	w, err := s.EnsureWatcher(ctx, Subscription, "eastus", 5)
	must(t, err)
	if w.ID == "" || w.Name != "NetworkWatcher_eastus" || w.Location != "eastus" || w.MaxCaptures != 5 || w.CreatedAt.IsZero() {
		t.Fatalf("EnsureWatcher = %+v", w)
	}
	// An existing watcher is returned as it is, limit included.
	again, err := s.EnsureWatcher(ctx, Subscription, "eastus", 99)
	must(t, err)
	wantEqual(t, "second EnsureWatcher", again, w)
	other, err := s.EnsureWatcher(ctx, Subscription, "westus", 7)
	must(t, err)
	if other.ID == w.ID || other.Name != "NetworkWatcher_westus" {
		t.Fatalf("second location got %+v", other)
	}
	_, err = s.EnsureWatcher(ctx, Subscription, "", 5)
	wantCode(t, err, tripcap.EINVALID)
}

func testEnsureWatcherConcurrent(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	var wg sync.WaitGroup
	ids := make([]string, 10)
	errs := make([]error, 10)
	start := make(chan struct{})
	for i := range ids {
		wg.Go(func() {
			<-start
			w, err := s.EnsureWatcher(ctx, Subscription, "northeurope", 10)
			errs[i] = err
			if err == nil {
				ids[i] = w.ID
			}
		})
	}
	close(start)
	wg.Wait()
	for i := range ids {
		must(t, errs[i])
		if ids[i] != ids[0] {
			t.Fatalf("concurrent EnsureWatcher returned ids %v, want one", ids)
		}
	}
	ws, err := s.FindWatchers(ctx)
	must(t, err)
	if len(ws) != 1 {
		t.Fatalf("%d watchers after concurrent EnsureWatcher, want 1", len(ws))
	}
}

func testFindWatcher(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	var created []*tripcap.NetworkWatcher
	for _, loc := range []string{"westus", "eastus", "northeurope"} {
		w, err := s.EnsureWatcher(ctx, Subscription, loc, 3)
		must(t, err)
		created = append(created, w)
	}
	w := created[0]
	got, err := s.FindWatcher(ctx, w.ID, "")
	must(t, err)
	wantEqual(t, "by id", got, w)
	got, err = s.FindWatcher(ctx, "", w.Name)
	must(t, err)
	wantEqual(t, "by name", got, w)
	got, err = s.FindWatcher(ctx, w.ID, w.Name)
	must(t, err)
	wantEqual(t, "by id and name", got, w)
	_, err = s.FindWatcher(ctx, w.ID, created[1].Name)
	wantCode(t, err, tripcap.ENOTFOUND)
	_, err = s.FindWatcher(ctx, tripcap.NewID(), "")
	wantCode(t, err, tripcap.ENOTFOUND)
	_, err = s.FindWatcher(ctx, "", "NetworkWatcher_nowhere")
	wantCode(t, err, tripcap.ENOTFOUND)
	_, err = s.FindWatcher(ctx, "", "")
	wantCode(t, err, tripcap.EINVALID)

	ws, err := s.FindWatchers(ctx)
	must(t, err)
	var names []string
	for _, w := range ws {
		names = append(names, w.Name)
	}
	want := []string{"NetworkWatcher_eastus", "NetworkWatcher_northeurope", "NetworkWatcher_westus"}
	wantEqual(t, "FindWatchers names", names, want)

	must(t, s.SetWatcherLimit(ctx, w.ID, 42))
	got, err = s.FindWatcher(ctx, w.ID, "")
	must(t, err)
	if got.MaxCaptures != 42 {
		t.Fatalf("limit after SetWatcherLimit: %d, want 42", got.MaxCaptures)
	}
	wantCode(t, s.SetWatcherLimit(ctx, tripcap.NewID(), 1), tripcap.ENOTFOUND)
	wantCode(t, s.SetWatcherLimit(ctx, w.ID, -1), tripcap.EINVALID)
}

// Subscription is the subscription the fixtures' watchers belong to.
const Subscription = "00000000-0000-0000-0000-0000000000aa"

// testWatcherScope: watchers are per subscription (one per location, names
// unique in a resource group); users may create their own.
func testWatcherScope(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	const other = "00000000-0000-0000-0000-0000000000bb"
	a, err := s.EnsureWatcher(ctx, Subscription, "eastus", 5)
	must(t, err)
	if a.SubscriptionID != Subscription || a.ResourceGroup != tripcap.WatcherResourceGroup || a.Tags != nil {
		t.Fatalf("EnsureWatcher = %+v", a)
	}
	b, err := s.EnsureWatcher(ctx, other, "eastus", 5)
	must(t, err)
	if b.ID == a.ID || b.Name != a.Name || b.SubscriptionID != other {
		t.Fatalf("other subscription's watcher %+v, first %+v", b, a)
	}
	// The subscription matches regardless of case, as in ARM ids.
	again, err := s.EnsureWatcher(ctx, "00000000-0000-0000-0000-0000000000AA", "eastus", 5)
	must(t, err)
	wantEqual(t, "EnsureWatcher with the subscription upper-case", again, a)
	_, err = s.FindWatcher(ctx, "", a.Name)
	wantCode(t, err, tripcap.EINVALID)
	got, err := s.FindWatcher(ctx, b.ID, a.Name)
	must(t, err)
	wantEqual(t, "by id and a shared name", got, b)
	_, err = s.EnsureWatcher(ctx, "", "eastus", 5)
	wantCode(t, err, tripcap.EINVALID)

	// A user's watcher, in a location without one, is then that location's.
	mine := &tripcap.NetworkWatcher{ID: tripcap.NewID(), Name: "my-watcher", Location: "westus", SubscriptionID: Subscription,
		ResourceGroup: "Ops-RG", Tags: map[string]string{"team": "net"}, MaxCaptures: 7, CreatedAt: base}
	must(t, s.CreateWatcher(ctx, mine))
	want := *mine
	want.CreatedAt = base.UTC()
	got, err = s.EnsureWatcher(ctx, Subscription, "westus", 5)
	must(t, err)
	wantEqual(t, "the location's watcher after a user created it", got, &want)
	// One per location per subscription; names unique in a group (any case).
	dup := want
	dup.ID, dup.Name = tripcap.NewID(), "second"
	wantCode(t, s.CreateWatcher(ctx, &dup), tripcap.ECONFLICT)
	dup.Location, dup.Name, dup.ResourceGroup = "centralus", "MY-WATCHER", "ops-rg"
	wantCode(t, s.CreateWatcher(ctx, &dup), tripcap.ECONFLICT)
	dup.ResourceGroup = "other-rg"
	must(t, s.CreateWatcher(ctx, &dup))
	for _, bad := range []func(w *tripcap.NetworkWatcher){
		func(w *tripcap.NetworkWatcher) { w.Name = "" },
		func(w *tripcap.NetworkWatcher) { w.ResourceGroup = "" },
		func(w *tripcap.NetworkWatcher) { w.SubscriptionID = "" },
		func(w *tripcap.NetworkWatcher) { w.Location = "" },
		func(w *tripcap.NetworkWatcher) { w.Tags = map[string]string{"": "x"} },
		func(w *tripcap.NetworkWatcher) { w.MaxCaptures = -1 },
	} {
		w := want
		w.ID, w.Location = tripcap.NewID(), "southindia"
		bad(&w)
		wantCode(t, s.CreateWatcher(ctx, &w), tripcap.EINVALID)
	}

	must(t, s.SetWatcherTags(ctx, mine.ID, map[string]string{"env": "prod"}))
	got, err = s.FindWatcher(ctx, mine.ID, "")
	must(t, err)
	wantEqual(t, "tags after SetWatcherTags", got.Tags, map[string]string{"env": "prod"})
	must(t, s.SetWatcherTags(ctx, mine.ID, nil))
	got, err = s.FindWatcher(ctx, mine.ID, "")
	must(t, err)
	if got.Tags != nil {
		t.Fatalf("tags after clearing: %v", got.Tags)
	}
	wantCode(t, s.SetWatcherTags(ctx, tripcap.NewID(), nil), tripcap.ENOTFOUND)

	// A watcher with a capture on record stays; one without goes.
	h := &tripcap.Host{ID: tripcap.NewID(), Name: "scoped-host", Location: "westus"}
	must(t, s.CreateHost(ctx, h))
	must(t, s.CreateCapture(ctx, capture(mine.ID, h.ID, "cap")))
	wantCode(t, s.DeleteWatcher(ctx, mine.ID), tripcap.ECONFLICT)
	must(t, s.DeleteWatcher(ctx, dup.ID))
	_, err = s.FindWatcher(ctx, dup.ID, "")
	wantCode(t, err, tripcap.ENOTFOUND)
	wantCode(t, s.DeleteWatcher(ctx, dup.ID), tripcap.ENOTFOUND)
}
