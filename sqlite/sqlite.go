// Package sqlite opens a tripcap.Store (package sqlstore) on SQLite, through
// the pure-Go modernc.org/sqlite driver, for a single tripcap server.
//
// # Concurrency
//
// SQLite lets one transaction write at a time. Rather than let several
// connections race for the write lock and back off on SQLITE_BUSY, a Store
// keeps two pools on the same WAL-mode file:
//
//   - a writer pool of exactly one connection. Every write runs there (in a
//     BEGIN IMMEDIATE transaction, or as one statement), so writers queue
//     in Go, in database/sql's wait for the connection, and never see
//     SQLITE_BUSY from each other. With synchronous=NORMAL a commit appends
//     to the WAL without an fsync, so a transaction costs tens of
//     microseconds and one connection keeps up with thousands of small
//     writes a second; TouchHosts folds a whole batch of heartbeats into
//     one transaction. One writer also makes every read-then-write atomic,
//     so the dialect locks no rows.
//   - a reader pool of several read-only (query_only) connections, each
//     statement prepared once (sqlstore.ReadPool). In WAL mode readers see
//     the last commit and neither block the writer nor are blocked by it.
//
// The busy_timeout covers what is left: WAL checkpoints and another process
// opening the same file (not supported beyond that: WatchHostChanges only
// sees changes made through this Store).
//
// Times are stored as UTC text with nine fractional digits, so they round-trip
// exactly and compare correctly as text. The database's clock, for leases,
// is SQLite's 'now' (this process's clock) in the same form.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/tripcap/tripcap/sqlstore"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a tripcap.Store on one SQLite file. It is safe for concurrent use.
type Store = sqlstore.Store

// pragmas apply to every connection.
const pragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"

// Open opens (creating it and its directory if needed) the SQLite database
// at the file path dsn and brings its schema up to date.
func Open(ctx context.Context, dsn string) (*Store, error) {
	if dsn == "" {
		return nil, errors.New("open sqlite: no database file given")
	}
	if strings.ContainsAny(dsn, "?#") || strings.HasPrefix(dsn, "file:") || strings.Contains(dsn, ":memory:") {
		return nil, fmt.Errorf("open sqlite: %q: give the path of a database file, without a file: URI or parameters", dsn)
	}
	s, err := open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
	}
	return s, nil
}

func open(ctx context.Context, dsn string) (*Store, error) {
	if err := private(dsn); err != nil {
		return nil, err
	}
	// The writer opens first: it sets WAL mode, which is kept in the file,
	// and migrates the schema before any reader looks.
	writer, err := sql.Open("sqlite", dsn+"?"+pragmas+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	fsys, err := fs.Sub(migrations, "migrations")
	if err == nil {
		err = writer.PingContext(ctx)
	}
	if err == nil {
		err = sqlstore.Migrate(ctx, goose.DialectSQLite3, writer, fsys)
	}
	if err != nil {
		writer.Close()
		return nil, err
	}
	readers, err := sql.Open("sqlite", dsn+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		writer.Close()
		return nil, err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	readers.SetMaxOpenConns(n)
	readers.SetMaxIdleConns(n)
	readers.SetConnMaxIdleTime(time.Minute)
	h := &hub{}
	s := sqlstore.New(dialect(h), writer, sqlstore.NewReadPool(readers), nil)
	if err := readers.PingContext(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// private makes the database's files their owner's alone, as the database
// holds secrets (sealed, but still): the directory is created
// 0700, the database file 0600 before SQLite opens it, and the files
// beside it that exist (WAL, shared memory, journal; a database from
// before this rule had them 0644) set to 0600. SQLite creates the WAL and
// shared-memory files with the database file's mode, so those it makes
// later are 0600 too, whatever the umask.
func private(dsn string) error {
	if err := os.MkdirAll(filepath.Dir(dsn), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(dsn, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if err := os.Chmod(dsn+suffix, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("make %s private: %w", dsn+suffix, err)
		}
	}
	return nil
}

// timeFormat is RFC 3339 with a fixed nine-digit fraction, so that text order is time order.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// now is SQLite's clock in timeFormat: %f gives milliseconds, padded to nine digits.
const now = `strftime('%Y-%m-%dT%H:%M:%f000000Z', 'now')`

func dialect(h *hub) sqlstore.Dialect {
	return sqlstore.Dialect{
		Time:      func(t time.Time) any { return t.UTC().Format(timeFormat) },
		Violation: violation,
		Now:       now,
		Until:     `strftime('%Y-%m-%dT%H:%M:%f000000Z', 'now', printf('%+.3f seconds', ?))`,
		None:      "''",
		True:      "1",
		Greatest:  "max",
		Position:  "instr",
		Committed: h.publish,
		Watch:     h.watch,
	}
}

// violation names the constraint err violated, by its kind and the driver's
// message ("UNIQUE constraint failed: responder_keys.hash").
func violation(err error) (kind, name string) {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return "", ""
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return "unique", e.Error()
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return "primarykey", e.Error()
	}
	return "", ""
}
