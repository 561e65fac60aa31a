package storetest

import (
	"database/sql"
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
