// Package sqlite implements tripcap.Store on SQLite, through the pure-Go
// modernc.org/sqlite driver, for a single tripcap server.
//
// # Concurrency
//
// SQLite lets one transaction write at a time. Rather than let several
// connections race for the write lock and back off on SQLITE_BUSY, a Store
// keeps two pools on the same WAL-mode file:
//
//   - a writer pool of exactly one connection. Every method that writes runs
//     its transaction there (BEGIN IMMEDIATE), so writers queue in Go, in
//     database/sql's wait for the connection, and never see SQLITE_BUSY from
//     each other. With synchronous=NORMAL a commit appends to the WAL without
//     an fsync, so a transaction costs tens of microseconds and one
//     connection keeps up with thousands of small writes a second; TouchHosts
//     folds a whole batch of heartbeats into one transaction.
//   - a reader pool of several read-only (query_only) connections. In WAL mode
//     readers see the last commit and neither block the writer nor are
//     blocked by it.
//
// The busy_timeout covers what is left: WAL checkpoints and another process
// opening the same file (not supported beyond that: WatchHostChanges only
// sees changes made through this Store).
//
// Times are stored as UTC text with nine fractional digits, so they round-trip
// exactly and compare correctly as text.
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
	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/sqldoc"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

var _ tripcap.Store = (*Store)(nil)

// Store is a tripcap.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	path   string
	writer *sql.DB   // one connection: every write transaction
	reader *readPool // read-only connections
	hub    hub
}

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
	if err := os.MkdirAll(filepath.Dir(dsn), 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
	}
	s := &Store{path: dsn}
	var err error
	// The writer opens first: it sets WAL mode, which is kept in the file,
	// and migrates the schema before any reader looks.
	if s.writer, err = sql.Open("sqlite", dsn+"?"+pragmas+"&_txlock=immediate"); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
	}
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	s.writer.SetConnMaxLifetime(0)
	s.writer.SetConnMaxIdleTime(0)
	if err := s.writer.PingContext(ctx); err != nil {
		s.writer.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		s.writer.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
	}
	if err := sqldoc.Migrate(ctx, goose.DialectSQLite3, s.writer, fsys); err != nil {
		s.writer.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
	}
	readers, err := sql.Open("sqlite", dsn+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		s.writer.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
	}
	s.reader = newReadPool(readers)
	n := max(4, runtime.GOMAXPROCS(0))
	s.reader.SetMaxOpenConns(n)
	s.reader.SetMaxIdleConns(n)
	s.reader.SetConnMaxIdleTime(time.Minute)
	if err := s.reader.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	return errors.Join(s.reader.Close(), s.writer.Close())
}

// write runs fn in a transaction on the writer connection and commits it.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// timeFormat is RFC 3339 with a fixed nine-digit fraction, so that text order is time order.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func formatTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return formatTime(*t)
}

// utcNow is the store's clock, for the times the caller does not give.
func utcNow() time.Time { return time.Now().UTC() }

// timeText scans a time column.
type timeText struct{ t *time.Time }

func (v timeText) Scan(src any) error {
	s, ok := src.(string)
	if !ok {
		return fmt.Errorf("time column holds %T, not text", src)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("time column: %w", err)
	}
	*v.t = t.UTC()
	return nil
}

// nullTimeText scans a nullable time column.
type nullTimeText struct{ t **time.Time }

func (v nullTimeText) Scan(src any) error {
	if src == nil {
		*v.t = nil
		return nil
	}
	var t time.Time
	if err := (timeText{&t}).Scan(src); err != nil {
		return err
	}
	*v.t = &t
	return nil
}

// constraint reports which kind of constraint err violated: "unique",
// "primarykey", or "" for another error.
func constraint(err error) string {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return ""
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return "unique"
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return "primarykey"
	}
	return ""
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
