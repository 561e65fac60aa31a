package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// fixture is a watcher and hosts to hang captures on.
type fixture struct {
	w     *tripcap.NetworkWatcher
	hosts []*tripcap.Host
}

func newFixture(t *testing.T, s tripcap.Store, location string, limit, hosts int) *fixture {
	t.Helper()
	ctx := t.Context()
	w, err := s.EnsureWatcher(ctx, Subscription, location, limit)
	must(t, err)
	f := &fixture{w: w}
	for i := range hosts {
		h := host(fmt.Sprintf("%s-%d", location, i), location)
		must(t, s.CreateHost(ctx, h))
		f.hosts = append(f.hosts, h)
	}
	return f
}

// revision returns a host's revision, checking that HostRevision and the
// whole host agree on it.
func revision(t *testing.T, s tripcap.Store, hostID string) int64 {
	t.Helper()
	h, err := s.FindHost(t.Context(), tripcap.HostFilter{ID: &hostID})
	must(t, err)
	rev, err := s.HostRevision(t.Context(), hostID)
	must(t, err)
	if rev != h.Revision {
		t.Fatalf("HostRevision %d, the host's revision %d", rev, h.Revision)
	}
	return h.Revision
}

func findCapture(t *testing.T, s tripcap.Store, id string) *tripcap.PacketCapture {
	t.Helper()
	c, err := s.FindCapture(t.Context(), tripcap.CaptureFilter{ID: &id, IncludeDeleted: true})
	must(t, err)
	return c
}

func testCaptureRoundTrip(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 1)
	full := fullCapture(f.w.ID, f.hosts[0].ID, "web-1-capture")
	wantPopulated(t, full)
	// A scale-set session's fields round-trip in ScaleSet/SessionRoundTrip.
	full.ScaleSetID, full.Sessions = "", nil

	// Created live…
	c := *full
	c.DeletedAt = nil
	must(t, s.CreateCapture(ctx, &c))
	if c.Version != 1 {
		t.Fatalf("Version after create: %d, want 1", c.Version)
	}
	want := normCapture(&c)
	got, err := s.FindCapture(ctx, tripcap.CaptureFilter{ID: &c.ID})
	must(t, err)
	wantEqual(t, "capture read back", got, want)

	// …then soft-deleted, with every field written back.
	got.DeletedAt = full.DeletedAt
	got.UpdatedAt = base.Add(time.Hour)
	got.Status = tripcap.StatusStopped
	got.Stats.Packets++
	got.Files = got.Files[:1]
	must(t, s.UpdateCapture(ctx, got, 1))
	if got.Version != 2 {
		t.Fatalf("Version after update: %d, want 2", got.Version)
	}
	want = normCapture(got)
	_, err = s.FindCapture(ctx, tripcap.CaptureFilter{ID: &c.ID})
	wantCode(t, err, tripcap.ENOTFOUND)
	wantEqual(t, "deleted capture read back", findCapture(t, s, c.ID), want)
}

func testCaptureTimePrecision(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 1)
	ns := time.Date(2025, 12, 31, 23, 59, 59, 999999999, time.FixedZone("UTC-5", -5*3600))
	c := capture(f.w.ID, f.hosts[0].ID, "precise")
	c.CreatedAt = ns
	c.UpdatedAt = ns.Add(-time.Nanosecond)
	c.CaptureStartTime = &ns
	must(t, s.CreateCapture(ctx, c))
	got := findCapture(t, s, c.ID)
	// Every store keeps at least microseconds.
	for _, tc := range []struct {
		what      string
		got, want time.Time
	}{
		{"createdAt", got.CreatedAt, c.CreatedAt},
		{"updatedAt", got.UpdatedAt, c.UpdatedAt},
		{"captureStartTime", *got.CaptureStartTime, *c.CaptureStartTime},
	} {
		if tc.got.Location() != time.UTC {
			t.Errorf("%s is in %v, want UTC", tc.what, tc.got.Location())
		}
		if d := tc.want.Sub(tc.got); d < 0 || d >= time.Microsecond {
			t.Errorf("%s read back as %v, want %v to the microsecond", tc.what, tc.got, tc.want)
		}
	}
}

func testCaptureNameConflict(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 1)
	g := newFixture(t, s, "westus", 10, 1)
	c := capture(f.w.ID, f.hosts[0].ID, "cap")
	must(t, s.CreateCapture(ctx, c))

	err := s.CreateCapture(ctx, capture(f.w.ID, f.hosts[0].ID, "cap"))
	wantCode(t, err, tripcap.ECONFLICT)
	if msg := tripcap.ErrorMessage(err); !strings.Contains(msg, `"cap"`) || !strings.Contains(msg, "NetworkWatcher_eastus") {
		t.Errorf("conflict message %q does not name the capture and the watcher", msg)
	}
	// Names are case-insensitive and case-preserving, as ARM's are: one
	// differing only in case is the same name, found by any case.
	wantCode(t, s.CreateCapture(ctx, capture(f.w.ID, f.hosts[0].ID, "CAP")), tripcap.ECONFLICT)
	if got, err := s.FindCapture(ctx, tripcap.CaptureFilter{WatcherID: &f.w.ID, Name: new("Cap")}); err != nil || got.ID != c.ID || got.Name != "cap" {
		t.Fatalf("capture by name Cap: %+v %v; want %s named cap", got, err, c.ID)
	}
	// The same name in another watcher is fine.
	must(t, s.CreateCapture(ctx, capture(g.w.ID, g.hosts[0].ID, "cap")))
	// A reused id is a conflict too.
	dup := capture(f.w.ID, f.hosts[0].ID, "other")
	dup.ID = c.ID
	wantCode(t, s.CreateCapture(ctx, dup), tripcap.ECONFLICT)

	// A stopped capture still holds its name…
	c.Status = tripcap.StatusStopped
	must(t, s.UpdateCapture(ctx, c, 1))
	wantCode(t, s.CreateCapture(ctx, capture(f.w.ID, f.hosts[0].ID, "cap")), tripcap.ECONFLICT)
	// …a soft-deleted one frees it.
	c.DeletedAt = new(base.Add(time.Hour))
	must(t, s.UpdateCapture(ctx, c, 2))
	again := capture(f.w.ID, f.hosts[0].ID, "CaP")
	must(t, s.CreateCapture(ctx, again))
	got, err := s.FindCapture(ctx, tripcap.CaptureFilter{WatcherID: &f.w.ID, Name: new("cap")})
	must(t, err)
	if got.ID != again.ID {
		t.Fatalf("live capture named cap is %s, want the new %s", got.ID, again.ID)
	}
	// Undeleting the old one would make two live captures of one name.
	c.DeletedAt = nil
	wantCode(t, s.UpdateCapture(ctx, c, 3), tripcap.ECONFLICT)
	if v := findCapture(t, s, c.ID).Version; v != 3 {
		t.Fatalf("refused update changed the version to %d", v)
	}
}

func testCaptureNameConcurrent(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 100, 1)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	start := make(chan struct{})
	for i := range errs {
		wg.Go(func() {
			<-start
			errs[i] = s.CreateCapture(ctx, capture(f.w.ID, f.hosts[0].ID, "same"))
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch tripcap.ErrorCode(err) {
		case "":
			won++
		case tripcap.ECONFLICT:
		default:
			t.Fatalf("concurrent create of one name: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d captures created under one name, want 1", won)
	}
}

func testCaptureLimit(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 2, 2)
	other := newFixture(t, s, "westus", 1, 1)
	a := capture(f.w.ID, f.hosts[0].ID, "a")
	b := capture(f.w.ID, f.hosts[1].ID, "b")
	must(t, s.CreateCapture(ctx, a))
	must(t, s.CreateCapture(ctx, b))
	err := s.CreateCapture(ctx, capture(f.w.ID, f.hosts[0].ID, "c"))
	wantCode(t, err, tripcap.ELIMIT)
	if msg := tripcap.ErrorMessage(err); !strings.Contains(msg, "NetworkWatcher_eastus") || !strings.Contains(msg, "2") {
		t.Errorf("limit message %q does not name the watcher and its limit", msg)
	}
	// Other watchers have their own limit.
	must(t, s.CreateCapture(ctx, capture(other.w.ID, other.hosts[0].ID, "a")))

	// A terminal capture does not count…
	a.Status = tripcap.StatusStopped
	must(t, s.UpdateCapture(ctx, a, 1))
	c := capture(f.w.ID, f.hosts[0].ID, "c")
	must(t, s.CreateCapture(ctx, c))
	wantCode(t, s.CreateCapture(ctx, capture(f.w.ID, f.hosts[0].ID, "d")), tripcap.ELIMIT)
	// …nor does an errored one…
	b.Status = tripcap.StatusError
	must(t, s.UpdateCapture(ctx, b, 1))
	must(t, s.CreateCapture(ctx, capture(f.w.ID, f.hosts[0].ID, "d")))
	wantCode(t, s.CreateCapture(ctx, capture(f.w.ID, f.hosts[0].ID, "e")), tripcap.ELIMIT)
	// …nor a deleted one, whatever its status.
	c.DeletedAt = new(base)
	must(t, s.UpdateCapture(ctx, c, 1))
	must(t, s.CreateCapture(ctx, capture(f.w.ID, f.hosts[0].ID, "e")))
	wantCode(t, s.CreateCapture(ctx, capture(f.w.ID, f.hosts[0].ID, "f")), tripcap.ELIMIT)

	// Raising the limit makes room; a limit of 0 allows none.
	must(t, s.SetWatcherLimit(ctx, f.w.ID, 3))
	must(t, s.CreateCapture(ctx, capture(f.w.ID, f.hosts[0].ID, "f")))
	must(t, s.SetWatcherLimit(ctx, other.w.ID, 0))
	wantCode(t, s.CreateCapture(ctx, capture(other.w.ID, other.hosts[0].ID, "b")), tripcap.ELIMIT)

	active, _, err := s.FindCaptures(ctx, tripcap.CaptureFilter{WatcherID: &f.w.ID, ActiveOnly: true})
	must(t, err)
	if len(active) != 3 {
		t.Fatalf("%d active captures, want 3", len(active))
	}
}

func testCaptureLimitConcurrent(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	const limit, tries = 5, 24
	f := newFixture(t, s, "eastus", limit, 3)
	var wg sync.WaitGroup
	errs := make([]error, tries)
	start := make(chan struct{})
	for i := range errs {
		wg.Go(func() {
			<-start
			errs[i] = s.CreateCapture(ctx, capture(f.w.ID, f.hosts[i%3].ID, fmt.Sprintf("cap-%d", i)))
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
	if won != limit {
		t.Fatalf("%d captures created concurrently under a limit of %d", won, limit)
	}
	active, _, err := s.FindCaptures(ctx, tripcap.CaptureFilter{WatcherID: &f.w.ID, ActiveOnly: true})
	must(t, err)
	if len(active) != limit {
		t.Fatalf("%d active captures under a limit of %d", len(active), limit)
	}
	var total int64
	for _, h := range f.hosts {
		total += revision(t, s, h.ID)
	}
	if total != limit {
		t.Fatalf("host revisions add up to %d, want one bump per created capture (%d)", total, limit)
	}
}

func testCaptureMissingReferences(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 1)
	wantCode(t, s.CreateCapture(ctx, capture(tripcap.NewID(), f.hosts[0].ID, "x")), tripcap.ENOTFOUND)
	wantCode(t, s.CreateCapture(ctx, capture(f.w.ID, tripcap.NewID(), "x")), tripcap.ENOTFOUND)
	cs, _, err := s.FindCaptures(ctx, tripcap.CaptureFilter{IncludeDeleted: true})
	must(t, err)
	if len(cs) != 0 {
		t.Fatalf("refused creates left %d captures", len(cs))
	}
	if r := revision(t, s, f.hosts[0].ID); r != 0 {
		t.Fatalf("refused create bumped the host revision to %d", r)
	}
	c := capture(f.w.ID, f.hosts[0].ID, "x")
	wantCode(t, s.UpdateCapture(ctx, c, 1), tripcap.ENOTFOUND)
	_, err = s.FindCapture(ctx, tripcap.CaptureFilter{ID: &c.ID})
	wantCode(t, err, tripcap.ENOTFOUND)
}

func testUpdateCaptureVersion(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 1)
	c := capture(f.w.ID, f.hosts[0].ID, "cap")
	must(t, s.CreateCapture(ctx, c))

	stale := *c
	c.Status = tripcap.StatusRunning
	c.CaptureStartTime = new(base.Add(time.Second))
	must(t, s.UpdateCapture(ctx, c, 1))
	if c.Version != 2 {
		t.Fatalf("Version after the first update: %d, want 2", c.Version)
	}
	c.Stats.Packets = 10
	must(t, s.UpdateCapture(ctx, c, c.Version))
	if c.Version != 3 {
		t.Fatalf("Version after the second update: %d, want 3", c.Version)
	}

	// A writer holding version 1 loses, and changes nothing.
	stale.Status = tripcap.StatusError
	err := s.UpdateCapture(ctx, &stale, 1)
	wantCode(t, err, tripcap.EPRECONDITION)
	if stale.Version != 1 {
		t.Fatalf("refused update set Version to %d", stale.Version)
	}
	wantCode(t, s.UpdateCapture(ctx, c, 7), tripcap.EPRECONDITION)
	got := findCapture(t, s, c.ID)
	if got.Version != 3 || got.Status != tripcap.StatusRunning || got.Stats.Packets != 10 {
		t.Fatalf("stored capture %+v, want version 3, Running, 10 packets", got)
	}

	// Concurrent writers of one version: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	start := make(chan struct{})
	for i := range errs {
		wg.Go(func() {
			<-start
			mine := *got
			mine.Stats.Packets = uint64(100 + i)
			errs[i] = s.UpdateCapture(ctx, &mine, 3)
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch tripcap.ErrorCode(err) {
		case "":
			won++
		case tripcap.EPRECONDITION:
		default:
			t.Fatalf("concurrent update: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent updates of version 3 succeeded, want 1", won)
	}
	if v := findCapture(t, s, c.ID).Version; v != 4 {
		t.Fatalf("version after the concurrent updates: %d, want 4", v)
	}
}

func testUpdateCaptureFixed(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 2)
	g := newFixture(t, s, "westus", 10, 0)
	c := capture(f.w.ID, f.hosts[0].ID, "cap")
	must(t, s.CreateCapture(ctx, c))
	for _, change := range []func(c *tripcap.PacketCapture){
		func(c *tripcap.PacketCapture) { c.Name = "renamed" },
		func(c *tripcap.PacketCapture) { c.HostID = f.hosts[1].ID },
		func(c *tripcap.PacketCapture) { c.WatcherID = g.w.ID },
	} {
		x := *c
		change(&x)
		wantCode(t, s.UpdateCapture(ctx, &x, 1), tripcap.EINVALID)
	}
	wantEqual(t, "capture after refused updates", findCapture(t, s, c.ID), normCapture(c))
}

func testUpdateCaptures(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 2)
	a := capture(f.w.ID, f.hosts[0].ID, "a")
	b := capture(f.w.ID, f.hosts[1].ID, "b")
	idle := capture(f.w.ID, f.hosts[1].ID, "idle")
	for _, c := range []*tripcap.PacketCapture{a, b, idle} {
		must(t, s.CreateCapture(ctx, c))
	}
	revA, revB := revision(t, s, a.HostID), revision(t, s, b.HostID)
	gone := tripcap.NewID()
	var seen []string
	missing, err := s.UpdateCaptures(ctx, []string{b.ID, gone, a.ID, idle.ID}, func(c *tripcap.PacketCapture) bool {
		seen = append(seen, c.Name)
		if c.ID == idle.ID {
			return false
		}
		c.Status = tripcap.StatusRunning
		c.Stats.Packets = 42
		c.UpdatedAt = base.Add(time.Minute)
		return true
	})
	must(t, err)
	wantEqual(t, "missing", missing, []string{gone})
	wantEqual(t, "captures fn saw", seen, []string{"b", "a", "idle"})
	for _, c := range []*tripcap.PacketCapture{a, b} {
		got := findCapture(t, s, c.ID)
		if got.Version != 2 || got.Status != tripcap.StatusRunning || got.Stats.Packets != 42 || !got.UpdatedAt.Equal(base.Add(time.Minute)) {
			t.Errorf("%s after the batch: version %d, status %s, packets %d, updated %v", c.Name, got.Version, got.Status, got.Stats.Packets, got.UpdatedAt)
		}
	}
	if v := findCapture(t, s, idle.ID).Version; v != 1 {
		t.Errorf("a capture fn left alone was written: version %d", v)
	}
	// Progress changes no desired state, so agents are not woken.
	if revision(t, s, a.HostID) != revA || revision(t, s, b.HostID) != revB {
		t.Error("a progress batch bumped a host's revision")
	}
	// A batch that would change desired state, deletion or identity is refused whole.
	for what, change := range map[string]func(c *tripcap.PacketCapture){
		"desired": func(c *tripcap.PacketCapture) { c.Desired = tripcap.DesiredStopped },
		"deleted": func(c *tripcap.PacketCapture) { c.DeletedAt = new(base.Add(time.Hour)) },
		"name":    func(c *tripcap.PacketCapture) { c.Name = "renamed" },
	} {
		_, err := s.UpdateCaptures(ctx, []string{a.ID, b.ID}, func(c *tripcap.PacketCapture) bool {
			c.Stats.Packets = 7
			if c.ID == b.ID {
				change(c)
			}
			return true
		})
		wantCode(t, err, tripcap.EINVALID)
		if got := findCapture(t, s, a.ID); got.Stats.Packets != 42 || got.Version != 2 {
			t.Errorf("%s: a refused batch wrote capture a: packets %d, version %d", what, got.Stats.Packets, got.Version)
		}
	}
	// A deleted capture (its agent may still run it) reports beside a live
	// one: both written in one batch, each keeping its deletion time or none.
	idle.DeletedAt = new(base.Add(2 * time.Minute))
	must(t, s.UpdateCapture(ctx, idle, 1))
	_, err = s.UpdateCaptures(ctx, []string{a.ID, idle.ID}, func(c *tripcap.PacketCapture) bool {
		c.Stats.Packets = 99
		return true
	})
	must(t, err)
	if got := findCapture(t, s, idle.ID); got.Stats.Packets != 99 || got.DeletedAt == nil || !got.DeletedAt.Equal(*idle.DeletedAt) {
		t.Errorf("deleted capture after a batch: packets %d, deleted %v", got.Stats.Packets, got.DeletedAt)
	}
	if got := findCapture(t, s, a.ID); got.Stats.Packets != 99 || got.DeletedAt != nil {
		t.Errorf("live capture after a batch: packets %d, deleted %v", got.Stats.Packets, got.DeletedAt)
	}
	// Batches read, modify and write: each one counts, and a write between
	// two batches (a Store may keep the captures it wrote and apply the next
	// batch to its copy) is kept, never written over from an older copy.
	count := func(c *tripcap.PacketCapture) bool { c.Stats.Packets++; return true }
	for i := range 4 {
		if i == 2 {
			c := findCapture(t, s, a.ID)
			c.Cause = "written between two batches"
			must(t, s.UpdateCapture(ctx, c, c.Version))
		}
		_, err := s.UpdateCaptures(ctx, []string{a.ID}, count)
		must(t, err)
	}
	if got := findCapture(t, s, a.ID); got.Stats.Packets != 103 || got.Cause != "written between two batches" {
		t.Errorf("after four counting batches and a write between: packets %d (want 103), cause %q", got.Stats.Packets, got.Cause)
	}
}

func testFindCaptures(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 2)
	g := newFixture(t, s, "westus", 10, 1)
	h0, h1 := f.hosts[0].ID, f.hosts[1].ID
	running := capture(f.w.ID, h0, "running")
	stopped := capture(f.w.ID, h0, "stopped")
	deleted := capture(f.w.ID, h1, "deleted") // deleted, but its agent may still run it
	gone := capture(f.w.ID, h1, "gone")       // stopped and deleted
	elsewhere := capture(g.w.ID, g.hosts[0].ID, "running")
	for _, c := range []*tripcap.PacketCapture{running, stopped, deleted, gone, elsewhere} {
		must(t, s.CreateCapture(ctx, c))
	}
	stopped.Status = tripcap.StatusStopped
	must(t, s.UpdateCapture(ctx, stopped, 1))
	deleted.DeletedAt = new(base)
	must(t, s.UpdateCapture(ctx, deleted, 1))
	gone.Status = tripcap.StatusError
	gone.DeletedAt = new(base)
	must(t, s.UpdateCapture(ctx, gone, 1))

	names := func(cs []*tripcap.PacketCapture) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Name+"@"+c.WatcherID[len(c.WatcherID)-4:])
		}
		slices.Sort(out)
		return out
	}
	tag := func(c *tripcap.PacketCapture) string { return c.Name + "@" + c.WatcherID[len(c.WatcherID)-4:] }
	sorted := func(cs ...*tripcap.PacketCapture) []string {
		var out []string
		for _, c := range cs {
			out = append(out, tag(c))
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		what string
		f    tripcap.CaptureFilter
		want []string
	}{
		{"all live", tripcap.CaptureFilter{}, sorted(running, stopped, elsewhere)},
		{"with deleted", tripcap.CaptureFilter{IncludeDeleted: true}, sorted(running, stopped, deleted, gone, elsewhere)},
		{"watcher", tripcap.CaptureFilter{WatcherID: &f.w.ID}, sorted(running, stopped)},
		{"host", tripcap.CaptureFilter{HostID: &h0}, sorted(running, stopped)},
		{"host with deleted", tripcap.CaptureFilter{HostID: &h1, IncludeDeleted: true}, sorted(deleted, gone)},
		{"name", tripcap.CaptureFilter{Name: new("running")}, sorted(running, elsewhere)},
		{"watcher and name", tripcap.CaptureFilter{WatcherID: &g.w.ID, Name: new("running")}, sorted(elsewhere)},
		{"active", tripcap.CaptureFilter{ActiveOnly: true}, sorted(running, elsewhere)},
		// ActiveOnly is about status; a deleted capture an agent still runs is listed with IncludeDeleted.
		{"active with deleted", tripcap.CaptureFilter{ActiveOnly: true, IncludeDeleted: true}, sorted(running, deleted, elsewhere)},
		{"active on a host, with deleted", tripcap.CaptureFilter{HostID: &h1, ActiveOnly: true, IncludeDeleted: true}, sorted(deleted)},
		{"id", tripcap.CaptureFilter{ID: &stopped.ID}, sorted(stopped)},
		{"id, active", tripcap.CaptureFilter{ID: &stopped.ID, ActiveOnly: true}, nil},
		{"deleted id", tripcap.CaptureFilter{ID: &deleted.ID}, nil},
		{"unknown host", tripcap.CaptureFilter{HostID: new(tripcap.NewID())}, nil},
	} {
		cs, next, err := s.FindCaptures(ctx, tc.f)
		must(t, err)
		if got := names(cs); !slices.Equal(got, tc.want) || next != "" {
			t.Errorf("%s: got %v next %q, want %v", tc.what, got, next, tc.want)
		}
		// Counted whole whatever the page size.
		tc.f.Limit = 1
		if n, err := s.CountCaptures(ctx, tc.f); err != nil || n != len(tc.want) {
			t.Errorf("%s: CountCaptures = %d, %v; want %d", tc.what, n, err, len(tc.want))
		}
	}
	_, err := s.FindCapture(ctx, tripcap.CaptureFilter{ID: &deleted.ID})
	wantCode(t, err, tripcap.ENOTFOUND)
	_, err = s.FindCapture(ctx, tripcap.CaptureFilter{Name: new("nope")})
	wantCode(t, err, tripcap.ENOTFOUND)
}

func testCapturePagination(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 100, 1)
	var want []string
	for i := range 10 {
		c := capture(f.w.ID, f.hosts[0].ID, fmt.Sprintf("c%d", i))
		must(t, s.CreateCapture(ctx, c))
		want = append(want, c.ID)
	}
	slices.Sort(want)
	// pages lists the watcher's captures four at a time, in the order asked.
	pages := func(newest bool) []string {
		var got []string
		cursor := ""
		for range 5 {
			cs, next, err := s.FindCaptures(ctx, tripcap.CaptureFilter{WatcherID: &f.w.ID, NewestFirst: newest, Cursor: cursor, Limit: 4})
			must(t, err)
			for _, c := range cs {
				got = append(got, c.ID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		return got
	}
	if got := pages(false); !slices.Equal(got, want) {
		t.Fatalf("paged ids %v, want %v", got, want)
	}
	// Newest first: the same captures the other way round.
	got := pages(true)
	slices.Reverse(want)
	if !slices.Equal(got, want) {
		t.Fatalf("paged ids newest first %v, want %v", got, want)
	}
	_, _, err := s.FindCaptures(ctx, tripcap.CaptureFilter{Cursor: "not a cursor"})
	wantCode(t, err, tripcap.EINVALID)
	_, _, err = s.FindCaptures(ctx, tripcap.CaptureFilter{Limit: -5})
	wantCode(t, err, tripcap.EINVALID)
}

func testHostRevision(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 2)
	h := f.hosts[0].ID
	wantRev := func(want int64, after string) {
		t.Helper()
		if got := revision(t, s, h); got != want {
			t.Fatalf("host revision %d after %s, want %d", got, after, want)
		}
	}
	wantRev(0, "nothing")
	_, err := s.HostRevision(ctx, tripcap.NewID())
	wantCode(t, err, tripcap.ENOTFOUND)
	_, err = s.HostRevision(ctx, "")
	wantCode(t, err, tripcap.EINVALID)
	c := capture(f.w.ID, h, "cap")
	must(t, s.CreateCapture(ctx, c))
	wantRev(1, "create")
	if r := revision(t, s, f.hosts[1].ID); r != 0 {
		t.Fatalf("another host's revision moved to %d", r)
	}

	c.Status = tripcap.StatusRunning
	c.Stats = tripcap.CaptureStats{Packets: 5, Bytes: 500}
	c.CaptureStartTime = new(base)
	c.UpdatedAt = base.Add(time.Second)
	must(t, s.UpdateCapture(ctx, c, c.Version))
	wantRev(1, "a status and stats update")

	c.Desired = tripcap.DesiredStopped
	must(t, s.UpdateCapture(ctx, c, c.Version))
	wantRev(2, "a Desired change")

	c.Status = tripcap.StatusStopped
	c.StopReason = tripcap.StopManuallyStopped
	must(t, s.UpdateCapture(ctx, c, c.Version))
	wantRev(2, "a status update")

	c.DeletedAt = new(base.Add(time.Minute))
	must(t, s.UpdateCapture(ctx, c, c.Version))
	wantRev(3, "a DeletedAt change")

	// Writing back what was read (DeletedAt unchanged) is no change.
	got := findCapture(t, s, c.ID)
	got.ProvisioningState = tripcap.ProvisioningDeleting
	must(t, s.UpdateCapture(ctx, got, got.Version))
	wantRev(3, "rewriting the same DeletedAt")

	got.DeletedAt = new(base.Add(2 * time.Minute))
	must(t, s.UpdateCapture(ctx, got, got.Version))
	wantRev(4, "moving DeletedAt")
	got.DeletedAt = nil
	must(t, s.UpdateCapture(ctx, got, got.Version))
	wantRev(5, "undeleting")
	got.Desired = tripcap.DesiredDeleted
	must(t, s.UpdateCapture(ctx, got, got.Version))
	wantRev(6, "another Desired change")
	if got.Version != 9 {
		t.Fatalf("capture version %d after 8 updates, want 9", got.Version)
	}
}
