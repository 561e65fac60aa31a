package postgres_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/pgtest"
	"github.com/tripcap/tripcap/postgres"
	"github.com/tripcap/tripcap/storetest"
)

func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	s.SetSealer(storetest.NewSealer(t))
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tripcap.Store { return open(t, pgtest.FreshDatabase(t)) })
}

func BenchmarkStore(b *testing.B) {
	storetest.Benchmark(b, func(tb testing.TB) tripcap.Store { return open(tb, pgtest.FreshDatabase(tb)) })
}

// Replicas: a change made through one Store reaches the watchers of another
// on the same database, and only once it is committed.
func TestWatchAcrossReplicas(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := t.Context()
	wa, wb := storetest.Watch(t, a), storetest.Watch(t, b)

	w, err := a.EnsureWatcher(ctx, storetest.Subscription, "eastus", 10)
	if err != nil {
		t.Fatal(err)
	}
	h := &tripcap.Host{ID: tripcap.NewID(), Name: "web-1", Location: "eastus"}
	if err := b.CreateHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	c := &tripcap.PacketCapture{ID: tripcap.NewID(), Name: "cap", WatcherID: w.ID, HostID: h.ID,
		Desired: tripcap.DesiredRunning, Status: tripcap.StatusNotStarted}
	if err := a.CreateCapture(ctx, c); err != nil {
		t.Fatal(err)
	}
	wb.WantNext(t, h.ID, "a capture created through replica a")
	wa.WantNext(t, h.ID, "a capture created through replica a")

	// A refused change notifies no one: the next report is of the change after it.
	if err := b.CreateCapture(ctx, &tripcap.PacketCapture{ID: tripcap.NewID(), Name: "cap", WatcherID: w.ID, HostID: h.ID}); tripcap.ErrorCode(err) != tripcap.ECONFLICT {
		t.Fatalf("duplicate create: %v, want ECONFLICT", err)
	}
	c.Desired = tripcap.DesiredStopped
	if err := b.UpdateCapture(ctx, c, 1); err != nil {
		t.Fatal(err)
	}
	wa.WantNext(t, h.ID, "a Desired change through replica b")
	wb.WantNext(t, h.ID, "a Desired change through replica b")
	select {
	case id := <-wa.C:
		t.Fatalf("extra report %q after the refused create", id)
	case <-time.After(200 * time.Millisecond):
	}
}

// A watcher whose connection is cut reconnects, says fn(""), and goes on
// reporting.
func TestWatchReconnects(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	s := open(t, dsn)
	ctx := t.Context()
	w := storetest.Watch(t, s)

	admin, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var killed int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'tripcap-watch'`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d listening connections, want 1", killed)
	}
	select {
	case id := <-w.C:
		if id != "" {
			t.Fatalf("first report after the connection was cut is %q, want \"\"", id)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no fn(\"\") after the listening connection was cut")
	}

	wt, err := s.EnsureWatcher(ctx, storetest.Subscription, "eastus", 10)
	if err != nil {
		t.Fatal(err)
	}
	h := &tripcap.Host{ID: tripcap.NewID(), Name: "web-1", Location: "eastus"}
	if err := s.CreateHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCapture(ctx, &tripcap.PacketCapture{ID: tripcap.NewID(), Name: "cap", WatcherID: wt.ID, HostID: h.ID}); err != nil {
		t.Fatal(err)
	}
	w.WantNext(t, h.ID, "a capture created after reconnecting")
}

// Replicas starting together on a new database migrate it once, in turn.
func TestConcurrentOpen(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), dsn)
			if err == nil {
				_, err = s.EnsureWatcher(t.Context(), storetest.Subscription, "eastus", 1)
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenBadDSN(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://user:s3cret@[::1")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open with a bad DSN: %v; want an error that does not echo the password", err)
	}
}

// Replicas creating captures in one watcher at once still keep its limit:
// the watcher's row serializes them across Stores, not only within one.
func TestCaptureLimitAcrossReplicas(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := t.Context()
	const limit, tries = 5, 32
	w, err := a.EnsureWatcher(ctx, storetest.Subscription, "eastus", limit)
	if err != nil {
		t.Fatal(err)
	}
	hosts := make([]*tripcap.Host, 4)
	for i := range hosts {
		hosts[i] = &tripcap.Host{ID: tripcap.NewID(), Name: fmt.Sprintf("web-%d", i), Location: "eastus"}
		if err := a.CreateHost(ctx, hosts[i]); err != nil {
			t.Fatal(err)
		}
	}
	errs := make([]error, tries)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range errs {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			errs[i] = s.CreateCapture(ctx, &tripcap.PacketCapture{ID: tripcap.NewID(), Name: fmt.Sprintf("cap-%d", i),
				WatcherID: w.ID, HostID: hosts[i%len(hosts)].ID, Desired: tripcap.DesiredRunning, Status: tripcap.StatusNotStarted})
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch tripcap.ErrorCode(err) {
		case "":
			won++
		case tripcap.ELIMIT:
		default:
			t.Fatalf("concurrent create at the limit: %v", err)
		}
	}
	active, _, err := b.FindCaptures(ctx, tripcap.CaptureFilter{WatcherID: &w.ID, ActiveOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if won != limit || len(active) != limit {
		t.Fatalf("%d creates won and %d captures active across two replicas under a limit of %d", won, len(active), limit)
	}
}

// A heartbeat batch does not wait, holding its other hosts' rows, for a
// host whose row another transaction holds: it records the others at once,
// and that host's heartbeat once the row is free.
func TestTouchHostsAroundHeldRow(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	s := open(t, dsn)
	ctx := t.Context()
	hosts := make([]*tripcap.Host, 3)
	for i := range hosts {
		hosts[i] = &tripcap.Host{ID: tripcap.NewID(), Name: fmt.Sprintf("web-%d", i), Location: "eastus"}
		if err := s.CreateHost(ctx, hosts[i]); err != nil {
			t.Fatal(err)
		}
	}
	admin, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	holder, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	held := hosts[1].ID
	if _, err := holder.Exec(ctx, `UPDATE hosts SET revision = revision + 1 WHERE id = $1`, held); err != nil {
		t.Fatal(err)
	}

	seen := time.Now().UTC().Truncate(time.Microsecond)
	batch := map[string]time.Time{}
	for _, h := range hosts {
		batch[h.ID] = seen
	}
	done := make(chan error, 1)
	go func() { done <- s.TouchHosts(ctx, batch) }()
	// The free hosts are written while the held one is still held.
	deadline := time.Now().Add(10 * time.Second)
	for _, h := range []*tripcap.Host{hosts[0], hosts[2]} {
		for {
			var online bool
			if err := admin.QueryRow(ctx, `SELECT state = 'Online' FROM hosts WHERE id = $1`, h.ID).Scan(&online); err != nil {
				t.Fatal(err)
			}
			if online {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("host %s not recorded while another host's row was held: the batch waited for it", h.Name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("TouchHosts returned (%v) before the held host's row was free", err)
	default:
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		got, err := s.FindHost(ctx, tripcap.HostFilter{ID: &h.ID})
		if err != nil {
			t.Fatal(err)
		}
		if got.State != tripcap.HostOnline || !got.LastSeen.Equal(seen) {
			t.Fatalf("host %s: %s, last seen %v; want Online, %v", h.Name, got.State, got.LastSeen, seen)
		}
	}
	if got, err := s.HostRevision(ctx, held); err != nil || got != 1 {
		t.Fatalf("held host's revision %d (%v), want the holder's bump kept (1)", got, err)
	}
}

// TestCaptureProgressAcrossReplicas: two replicas' progress batches on one
// capture (its agent moved from one to the other and back) each count: a
// replica's copy of the capture it wrote last is not written over the other's
// newer row.
func TestCaptureProgressAcrossReplicas(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := t.Context()
	w, err := a.EnsureWatcher(ctx, storetest.Subscription, "eastus", 10)
	if err != nil {
		t.Fatal(err)
	}
	h := &tripcap.Host{ID: tripcap.NewID(), Name: "web.example.com", Location: "eastus"}
	if err := a.CreateHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	c := &tripcap.PacketCapture{ID: tripcap.NewID(), Name: "cap", WatcherID: w.ID, HostID: h.ID, Desired: tripcap.DesiredRunning, Status: tripcap.StatusRunning}
	if err := a.CreateCapture(ctx, c); err != nil {
		t.Fatal(err)
	}
	count := func(c *tripcap.PacketCapture) bool { c.Stats.Packets++; return true }
	for _, s := range []*postgres.Store{a, a, b, a, b, b, a} {
		if _, err := s.UpdateCaptures(ctx, []string{c.ID}, count); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.FindCapture(ctx, tripcap.CaptureFilter{ID: &c.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got.Stats.Packets != 7 || got.Version != 8 {
		t.Errorf("after 7 batches on two replicas: packets %d, version %d; want 7, 8", got.Stats.Packets, got.Version)
	}
}
