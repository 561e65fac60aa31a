package storetest

import (
	"sync"
	"testing"

	"github.com/tripcap/tripcap"
)

func testEnsureWatcher(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	w, err := s.EnsureWatcher(ctx, "eastus", 5)
	must(t, err)
	if w.ID == "" || w.Name != "NetworkWatcher_eastus" || w.Location != "eastus" || w.MaxCaptures != 5 || w.CreatedAt.IsZero() {
		t.Fatalf("EnsureWatcher = %+v", w)
	}
	// An existing watcher is returned as it is, limit included.
	again, err := s.EnsureWatcher(ctx, "eastus", 99)
	must(t, err)
	wantEqual(t, "second EnsureWatcher", again, w)
	other, err := s.EnsureWatcher(ctx, "westus", 7)
	must(t, err)
	if other.ID == w.ID || other.Name != "NetworkWatcher_westus" {
		t.Fatalf("second location got %+v", other)
	}
	_, err = s.EnsureWatcher(ctx, "", 5)
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
			w, err := s.EnsureWatcher(ctx, "northeurope", 10)
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
		w, err := s.EnsureWatcher(ctx, loc, 3)
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
