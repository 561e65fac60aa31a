package postgres

import (
	"context"
	"database/sql"
	"io/fs"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/tripcap/tripcap/internal/pgtest"
	"github.com/tripcap/tripcap/sqlstore"
	"github.com/tripcap/tripcap/storetest"
)

// migratedTo is a new database migrated up to version only, for a test
// of a later migration: its DSN and a connection (closed at the test's end).
func migratedTo(t *testing.T, version int64) (string, *sql.DB) {
	t.Helper()
	dsn := pgtest.FreshDatabase(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	db := stdlib.OpenDBFromPool(pool)
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(t.Context(), version); err != nil {
		t.Fatal(err)
	}
	return dsn, db
}

// The watcher scope migration gives the watchers from before a
// subscription and a resource group, keeping their captures.
func TestWatcherScopeMigration(t *testing.T) {
	dsn, db := migratedTo(t, 10)
	east, west := storetest.SeedBeforeWatcherScope(t, db, sqlstore.Rebind, func(t time.Time) any { return t })
	db.Close()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckWatcherBackfill(t, s, east, west)
}

// The names-any-case migration keeps every capture whose name differs from
// an older live one's only in case, under a name of its own.
func TestCaptureNamesAnyCaseMigration(t *testing.T) {
	dsn, db := migratedTo(t, 13)
	caps := storetest.SeedBeforeNamesAnyCase(t, db, sqlstore.Rebind, func(t time.Time) any { return t })
	db.Close()
	s, err := Open(context.Background(), dsn)
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
	dsn, db := migratedTo(t, 14)
	seed := storetest.SeedBeforeAlertFence(t, db, sqlstore.Rebind, func(t time.Time) any { return t })
	db.Close()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckAlertFence(t, s, seed)
}
