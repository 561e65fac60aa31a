package sqlite

import (
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/tripcap/tripcap/storetest"
)

// migratedTo opens a new database at path migrated up to version only,
// for a test of a later migration.
func migratedTo(t *testing.T, path string, version int64) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(t.Context(), version); err != nil {
		t.Fatal(err)
	}
	return db
}

// The watcher scope migration gives the watchers from before a
// subscription and a resource group, keeping their captures.
func TestWatcherScopeMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tripcap.db")
	db := migratedTo(t, path, 10)
	east, west := storetest.SeedBeforeWatcherScope(t, db, func(q string) string { return q }, func(t time.Time) any { return t.UTC().Format(timeFormat) })
	db.Close()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckWatcherBackfill(t, s, east, west)
}

// The names-any-case migration keeps every capture whose name differs from
// an older live one's only in case, under a name of its own.
func TestCaptureNamesAnyCaseMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tripcap.db")
	db := migratedTo(t, path, 13)
	caps := storetest.SeedBeforeNamesAnyCase(t, db, func(q string) string { return q }, func(t time.Time) any { return t.UTC().Format(timeFormat) })
	db.Close()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckNamesAnyCase(t, s, caps)
}

// The alert fence migration makes the newest Fired alert of each (rule,
// host) its active one; the older ones (a rule without autoMitigate fires
// anew each breach) are released.
func TestAlertFenceMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tripcap.db")
	db := migratedTo(t, path, 14)
	seed := storetest.SeedBeforeAlertFence(t, db, func(q string) string { return q }, func(t time.Time) any { return t.UTC().Format(timeFormat) })
	db.Close()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckAlertFence(t, s, seed)
}
