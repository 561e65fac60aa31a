package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// watchTimeout bounds every wait for a notification.
const watchTimeout = 15 * time.Second

// Watch runs s.WatchHostChanges until the test ends and returns the ids it
// reports, once the watch is established (its first fn("")). Backends' own
// tests use it too.
func Watch(t *testing.T, s tripcap.Store) *Watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watcher{C: make(chan string, 1024), done: make(chan error, 1)}
	go func() { w.done <- s.WatchHostChanges(ctx, func(id string) { w.C <- id }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-w.done:
			if err != nil {
				t.Errorf("WatchHostChanges returned %v when its context ended", err)
			}
		case <-time.After(watchTimeout):
			t.Errorf("WatchHostChanges did not return within %v of its context ending", watchTimeout)
		}
	})
	select {
	case id := <-w.C:
		if id != "" {
			t.Fatalf("first call of a watch is fn(%q), want fn(\"\")", id)
		}
	case err := <-w.done:
		t.Fatalf("WatchHostChanges returned %v before its context ended", err)
	case <-time.After(watchTimeout):
		t.Fatalf("WatchHostChanges did not call fn(\"\") within %v of starting", watchTimeout)
	}
	return w
}

// Watcher collects what a WatchHostChanges reports.
type Watcher struct {
	C    chan string
	done chan error
}

// Next returns the next host id reported, skipping fn("") (a reconnect).
func (w *Watcher) Next(t *testing.T) string {
	t.Helper()
	deadline := time.After(watchTimeout)
	for {
		select {
		case id := <-w.C:
			if id != "" {
				return id
			}
		case err := <-w.done:
			t.Fatalf("WatchHostChanges returned %v before its context ended", err)
		case <-deadline:
			t.Fatalf("no host change reported within %v", watchTimeout)
		}
	}
}

// WantNext fails t unless the next host id reported is want.
func (w *Watcher) WantNext(t *testing.T, want, after string) {
	t.Helper()
	if got := w.Next(t); got != want {
		t.Fatalf("after %s: host %s reported, want %s", after, got, want)
	}
}

func testWatchHostChanges(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 2)
	a, b := f.hosts[0].ID, f.hosts[1].ID
	w := Watch(t, s)

	ca := capture(f.w.ID, a, "on-a")
	must(t, s.CreateCapture(ctx, ca))
	w.WantNext(t, a, "creating a capture on a")
	cb := capture(f.w.ID, b, "on-b")
	must(t, s.CreateCapture(ctx, cb))
	w.WantNext(t, b, "creating a capture on b")

	// Changes that leave the revision alone are not reported: the next
	// report after them is of the change that follows.
	ca.Status = tripcap.StatusRunning
	ca.Stats.Packets = 9
	must(t, s.UpdateCapture(ctx, ca, 1))
	wantCode(t, s.CreateCapture(ctx, capture(f.w.ID, a, "on-b")), tripcap.ECONFLICT)
	cb.Desired = tripcap.DesiredStopped
	must(t, s.UpdateCapture(ctx, cb, 1))
	w.WantNext(t, b, "a status update on a, a refused create on a, then a Desired change on b")

	ca.DeletedAt = new(base)
	must(t, s.UpdateCapture(ctx, ca, 2))
	w.WantNext(t, a, "deleting a's capture")
	must(t, s.TouchHosts(ctx, map[string]time.Time{a: base.Add(time.Hour)}))
	must(t, s.UpdateHostInventory(ctx, a, tripcap.Inventory{Hostname: "a"}, base.Add(time.Hour)))
	cb.Desired = tripcap.DesiredDeleted
	must(t, s.UpdateCapture(ctx, cb, 2))
	w.WantNext(t, b, "heartbeats and inventory of a, then a Desired change on b")
}

func testWatchHostChangesSubscribers(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 100, 1)
	h := f.hosts[0].ID
	w1 := Watch(t, s)
	w2 := Watch(t, s)

	// A watch that ended gets nothing more and does not hold up the others.
	ended, cancel := context.WithCancel(ctx)
	returned := make(chan error, 1)
	go func() { returned <- s.WatchHostChanges(ended, func(string) {}) }()
	cancel()
	select {
	case err := <-returned:
		if err != nil {
			t.Fatalf("WatchHostChanges returned %v when its context ended", err)
		}
	case <-time.After(watchTimeout):
		t.Fatalf("WatchHostChanges did not return after its context ended")
	}

	for i := range 20 {
		must(t, s.CreateCapture(ctx, capture(f.w.ID, h, "c"+string(rune('a'+i)))))
	}
	for _, w := range []*Watcher{w1, w2} {
		for range 20 {
			w.WantNext(t, h, "creating captures")
		}
	}
}
