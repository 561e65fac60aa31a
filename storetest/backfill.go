package storetest

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/sqlstore"
)

// SeedBeforeFileIndex writes, into a database migrated to version 5 (before
// the file index), a watcher and a deleted capture with two files, as a
// server before the index stored them; rebind adapts '?' placeholders and
// tm encodes a time, in the dialect's way. CheckFileBackfill then checks
// that the migration indexed them.
func SeedBeforeFileIndex(t *testing.T, db *sql.DB, rebind func(string) string, tm func(time.Time) any) *tripcap.PacketCapture {
	t.Helper()
	ctx := t.Context()
	w := tripcap.NetworkWatcher{ID: tripcap.NewID(), Name: "NetworkWatcher_eastus", Location: "eastus"}
	if _, err := db.ExecContext(ctx, rebind(`INSERT INTO watchers (id, name, location, max_captures, created_at) VALUES (?, ?, ?, 10, ?)`), w.ID, w.Name, w.Location, tm(base)); err != nil {
		t.Fatal(err)
	}
	c := capture(w.ID, tripcap.NewID(), "PSAzureFunction")
	deleted := base.Add(time.Hour)
	c.DeletedAt = &deleted
	c.Files = []tripcap.CaptureFile{storedFile("a.cap", base.Add(time.Minute)), {Name: "b.cap", LocalPath: "/var/b.cap"}}
	doc, err := sqlstore.EncodeCapture(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, rebind(`INSERT INTO captures (id, name, watcher_id, host_id, version, status, desired, deleted_at, created_at, updated_at, doc) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)`),
		c.ID, c.Name, c.WatcherID, c.HostID, string(c.Status), string(c.Desired), tm(deleted), tm(c.CreatedAt), tm(c.UpdatedAt), string(doc)); err != nil {
		t.Fatal(err)
	}
	return c
}

// CheckFileBackfill checks that the files SeedBeforeFileIndex wrote are
// indexed after the migration, as the store indexes new files.
func CheckFileBackfill(t *testing.T, s tripcap.Store, c *tripcap.PacketCapture) {
	t.Helper()
	files := findFiles(t, s, tripcap.FileFilter{HostID: &c.HostID})
	if len(files) != 2 {
		t.Fatalf("backfilled files: %d, want 2", len(files))
	}
	byName := map[string]*tripcap.StoredFile{}
	for _, f := range files {
		if err := sqlstore.CheckID("file id", f.ID); err != nil {
			t.Fatal(err)
		}
		if f.CaptureID != c.ID || f.CaptureName != c.Name || f.WatcherID != c.WatcherID || !f.CaptureDeleted {
			t.Fatalf("backfilled file %s: %+v", f.Name, f)
		}
		byName[f.Name] = f
	}
	a, b := byName["a.cap"], byName["b.cap"]
	if a == nil || b == nil || !a.Stored || a.Key != "k/a.cap" || a.SHA256 != "ab" || b.Stored || b.LocalPath != "/var/b.cap" {
		t.Fatalf("backfilled files: %+v %+v", a, b)
	}
	// A file without a time of its own takes its capture's.
	if !a.CreatedAt.Equal(base.Add(time.Minute)) || !b.CreatedAt.Equal(base) {
		t.Fatalf("backfilled times: a %v b %v", a.CreatedAt, b.CreatedAt)
	}
	since := base.Add(30 * time.Second)
	if got := findFiles(t, s, tripcap.FileFilter{Since: &since}); len(got) != 1 || got[0].Name != "a.cap" {
		t.Fatalf("backfilled files since %v: %+v", since, got)
	}
	// A later write of the capture keeps the backfilled ids.
	got := findCapture(t, s, c.ID)
	got.Files[1].Size = 7
	must(t, s.UpdateCapture(t.Context(), got, got.Version))
	after := findFiles(t, s, tripcap.FileFilter{ID: &b.ID})
	if len(after) != 1 || after[0].Size != 7 {
		t.Fatalf("file %s after an update: %+v", b.ID, after)
	}
}

// SeedBeforeWatcherScope writes, into a database migrated to version 10
// (before watchers had a subscription), a host in eastus of subscription
// Subscription, the eastus watcher with a capture, and a westus watcher no
// host is in. CheckWatcherBackfill then checks what the migration made of them.
func SeedBeforeWatcherScope(t *testing.T, db *sql.DB, rebind func(string) string, tm func(time.Time) any) (east, west *tripcap.NetworkWatcher) {
	t.Helper()
	ctx := t.Context()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, rebind(q), args...); err != nil {
			t.Fatal(err)
		}
	}
	hostID := tripcap.NewID()
	exec(`INSERT INTO hosts (id, name, location, labels, subscription_id, resource_group, inventory, state, last_seen, revision, created_at, updated_at)
		VALUES (?, 'east-host', 'eastus', '{}', ?, 'rg', '{}', 'Offline', ?, 1, ?, ?)`, hostID, Subscription, tm(base), tm(base), tm(base))
	east = &tripcap.NetworkWatcher{ID: tripcap.NewID(), Name: "NetworkWatcher_eastus", Location: "eastus", MaxCaptures: 10, CreatedAt: base.UTC()}
	west = &tripcap.NetworkWatcher{ID: tripcap.NewID(), Name: "NetworkWatcher_westus", Location: "westus", MaxCaptures: 3, CreatedAt: base.UTC()}
	for _, w := range []*tripcap.NetworkWatcher{east, west} {
		exec(`INSERT INTO watchers (id, name, location, max_captures, created_at) VALUES (?, ?, ?, ?, ?)`, w.ID, w.Name, w.Location, w.MaxCaptures, tm(base))
	}
	c := capture(east.ID, hostID, "PSAzureFunction")
	doc, err := sqlstore.EncodeCapture(c)
	if err != nil {
		t.Fatal(err)
	}
	exec(`INSERT INTO captures (id, name, watcher_id, host_id, version, status, desired, created_at, updated_at, doc) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.WatcherID, c.HostID, string(c.Status), string(c.Desired), tm(c.CreatedAt), tm(c.UpdatedAt), string(doc))
	return east, west
}

// CheckWatcherBackfill checks the watchers SeedBeforeWatcherScope wrote
// after the migration: the eastus one belongs to its host's subscription,
// in NetworkWatcherRG, its capture still found by it; the westus one to no
// subscription until one asks for that location's watcher, which takes it.
func CheckWatcherBackfill(t *testing.T, s tripcap.Store, east, west *tripcap.NetworkWatcher) {
	t.Helper()
	ctx := t.Context()
	got, err := s.FindWatcher(ctx, east.ID, "")
	must(t, err)
	want := *east
	want.SubscriptionID, want.ResourceGroup = Subscription, tripcap.WatcherResourceGroup
	wantEqual(t, "eastus watcher after the migration", got, &want)
	if _, err := s.FindCapture(ctx, tripcap.CaptureFilter{WatcherID: &east.ID, Name: new("PSAzureFunction")}); err != nil {
		t.Fatalf("the eastus watcher's capture after the migration: %v", err)
	}
	got, err = s.EnsureWatcher(ctx, Subscription, "eastus", 99)
	must(t, err)
	wantEqual(t, "EnsureWatcher of eastus after the migration", got, &want)

	got, err = s.FindWatcher(ctx, west.ID, "")
	must(t, err)
	if got.SubscriptionID != "" || got.ResourceGroup != tripcap.WatcherResourceGroup {
		t.Fatalf("westus watcher after the migration: %+v; want no subscription yet", got)
	}
	const taker = "00000000-0000-0000-0000-0000000000cc"
	got, err = s.EnsureWatcher(ctx, taker, "westus", 99)
	must(t, err)
	want = *west
	want.SubscriptionID, want.ResourceGroup = taker, tripcap.WatcherResourceGroup
	wantEqual(t, "westus watcher taken by the first subscription to ask", got, &want)
	other, err := s.EnsureWatcher(ctx, Subscription, "westus", 99)
	must(t, err)
	if other.ID == west.ID {
		t.Fatal("a second subscription took the same westus watcher")
	}
	// The migration's constraints: one per location per subscription.
	dup := &tripcap.NetworkWatcher{ID: tripcap.NewID(), Name: "x", Location: "eastus", SubscriptionID: Subscription, ResourceGroup: "rg", MaxCaptures: 1, CreatedAt: base}
	wantCode(t, s.CreateWatcher(ctx, dup), tripcap.ECONFLICT)
}

// SeedBeforeNamesAnyCase writes, into a database migrated to version 13
// (before capture names ignored case), a watcher with live captures "pc1",
// "PC1" and "Pc1" (oldest first), a deleted "pC1" and a live "other", as a
// server that compared names exactly let them be; rebind and tm as for
// SeedBeforeFileIndex. CheckNamesAnyCase then checks what the migration
// made of them.
func SeedBeforeNamesAnyCase(t *testing.T, db *sql.DB, rebind func(string) string, tm func(time.Time) any) []*tripcap.PacketCapture {
	t.Helper()
	ctx := t.Context()
	w := tripcap.NetworkWatcher{ID: tripcap.NewID(), Name: "NetworkWatcher_eastus", Location: "eastus"}
	if _, err := db.ExecContext(ctx, rebind(`INSERT INTO watchers (id, name, location, subscription_id, resource_group, max_captures, created_at) VALUES (?, ?, ?, ?, ?, 10, ?)`),
		w.ID, w.Name, w.Location, Subscription, tripcap.WatcherResourceGroup, tm(base)); err != nil {
		t.Fatal(err)
	}
	var caps []*tripcap.PacketCapture
	// Ids in creation order, as NewID gives them over time.
	prefix, host := tripcap.NewID()[:25], tripcap.NewID()
	for i, name := range []string{"pc1", "PC1", "Pc1", "pC1", "other"} {
		c := capture(w.ID, host, name)
		c.ID = fmt.Sprintf("%s%d", prefix, i)
		var deleted any
		if name == "pC1" {
			c.DeletedAt = new(base.Add(time.Hour))
			deleted = tm(*c.DeletedAt)
		}
		doc, err := sqlstore.EncodeCapture(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, rebind(`INSERT INTO captures (id, name, watcher_id, host_id, version, status, desired, deleted_at, created_at, updated_at, doc) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)`),
			c.ID, c.Name, c.WatcherID, c.HostID, string(c.Status), string(c.Desired), deleted, tm(c.CreatedAt), tm(c.UpdatedAt), string(doc)); err != nil {
			t.Fatal(err)
		}
		caps = append(caps, c)
	}
	return caps
}

// CheckNamesAnyCase checks the captures SeedBeforeNamesAnyCase wrote after
// the migration: the oldest live "pc1" keeps its name, found by any case;
// the later live ones differing only in case have their id appended; the
// deleted one and "other" are untouched; and a new capture whose name
// differs from a live one's only in case is refused.
func CheckNamesAnyCase(t *testing.T, s tripcap.Store, caps []*tripcap.PacketCapture) {
	t.Helper()
	ctx := t.Context()
	want := []string{"pc1", "PC1-" + caps[1].ID, "Pc1-" + caps[2].ID, "pC1", "other"}
	for i, c := range caps {
		if got := findCapture(t, s, c.ID); got.Name != want[i] {
			t.Errorf("capture %s after the migration: named %q, want %q", c.ID, got.Name, want[i])
		}
		if err := tripcap.ValidateName("name", want[i]); err != nil {
			t.Errorf("migrated name: %v", err)
		}
	}
	got, err := s.FindCapture(ctx, tripcap.CaptureFilter{WatcherID: &caps[0].WatcherID, Name: new("PC1")})
	if err != nil || got.ID != caps[0].ID {
		t.Fatalf("capture PC1 after the migration: %+v %v; want %s", got, err, caps[0].ID)
	}
	wantCode(t, s.CreateCapture(ctx, capture(caps[0].WatcherID, caps[0].HostID, "OTHER")), tripcap.ECONFLICT)
}
