// Package sqlstore implements tripcap.Store once, over database/sql, for the
// SQL databases tripcap runs on. What differs between them is a Dialect:
// placeholders, how times are kept, how a constraint violation is named,
// row locking, the database's clock, change notification, and the few
// queries that cannot be written the same way. Packages sqlite and postgres
// each open their database, supply their Dialect and migrations, and get a
// *Store.
//
// Exported methods check their input, then run package functions that take
// the transaction (or the connection pool) and compose: those are the
// dialect-neutral unit. Queries are written with '?' placeholders; a
// numbered dialect gets them rewritten once per text.
//
// Rows keep the columns listings filter and sort on, plus the rest of the
// object as a JSON document, so a field added to a domain type round-trips
// without a migration.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tripcap/tripcap"
)

var _ tripcap.Store = (*Store)(nil)

// Dialect is what one SQL database does its own way.
type Dialect struct {
	// Numbered placeholders ($1, $2…) instead of '?'.
	Numbered bool
	// Time encodes a time parameter as its columns keep times.
	Time func(time.Time) any
	// Violation names the constraint err violated: kind "primarykey",
	// "unique" or "" (another error), and the constraint's name or the
	// driver's message, which tells a table's unique constraints apart.
	Violation func(err error) (kind, name string)
	// Retryable reports a transaction the database aborted to break a
	// deadlock or a serialization conflict: it is run again. nil: never.
	Retryable func(err error) bool
	// Lock follows a SELECT that locks the rows it reads; SkipLocked one
	// that skips the rows other transactions hold. "" where one writer
	// runs at a time.
	Lock, SkipLocked string
	// Now is the database's clock, as SQL in the encoding of its time
	// columns; Until is Now plus a number of seconds given as one float64
	// parameter. Leases are compared on this clock only, never on a
	// caller's.
	Now, Until string
	// None is the SQL of "no value" in the optional columns a migration
	// added (a run's trigger_doc, the lease_until of a run no one holds).
	None string
	// True is the SQL of a true boolean column (as partial indexes name it).
	True string
	// Greatest is the SQL function returning the larger of its arguments.
	Greatest string
	// Position is the SQL function position(haystack, needle) by another
	// name: the 1-based place of needle in haystack, 0 when absent.
	Position string
	// ByteOrder follows an ORDER BY of lower(name), so names sort byte by byte.
	ByteOrder string
	// HostChanged, when set, runs in a transaction that changed a host's
	// revision (PostgreSQL's pg_notify, delivered on commit).
	HostChanged func(ctx context.Context, tx *sql.Tx, hostID string) error
	// Committed, when set, is told of each host such a transaction changed,
	// once it committed (SQLite's in-process fan-out).
	Committed func(hostID string)
	// Watch implements WatchHostChanges.
	Watch func(ctx context.Context, fn func(hostID string)) error
	// TouchHosts, when set, records a batch of heartbeats (ids sorted,
	// seen[i] for ids[i]) in one statement of the dialect's own SQL, on
	// the pool or in a transaction, and returns the ids it did not write:
	// with skipLocked, those whose rows another transaction holds (a
	// capture's revision bump, say) and unknown ones; without, none. nil:
	// one prepared UPDATE a host in a transaction, as cheap as that where
	// the database is in-process and has one writer.
	TouchHosts func(ctx context.Context, c Conn, ids []string, seen []time.Time, now time.Time, skipLocked bool) (left []string, err error)
	// WriteCaptures, when set, writes UpdateCaptures' rows in tx in one
	// round trip, each only where the row holds the version before its
	// own and its creation time (CaptureWrite), and returns the ids it
	// wrote; nil: one prepared UPDATE a row.
	WriteCaptures func(ctx context.Context, tx *Tx, rows []CaptureWrite) (written []string, err error)
}

// Querier runs reads: a *sql.DB, or a ReadPool.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	Close() error
}

// Conn runs a query on the pool (a statement of its own) or in a
// transaction: a *sql.DB or a *sql.Tx.
type Conn interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Store is a tripcap.Store on a SQL database. It is safe for concurrent use.
type Store struct {
	d      Dialect
	db     *sql.DB // writes (SQLite: its one writer connection)
	reader Querier // reads
	closer func() error

	rebound  sync.Map     // query text → the dialect's
	nRebound atomic.Int64 // entries in rebound, bounded by maxRebound

	sealer tripcap.Sealer // encrypts secret columns

	progress progressCache // captures UpdateCaptures wrote, decoded
}

// maxRebound bounds the query texts kept rewritten; most are constants, a
// few vary (a LIMIT, the length of an IN list).
const maxRebound = 1024

// New returns a Store writing through db and reading through reader (db
// itself or another pool on the same database). Close closes both, then
// runs closer (nil for none).
func New(d Dialect, db *sql.DB, reader Querier, closer func() error) *Store {
	return &Store{d: d, db: db, reader: reader, closer: closer}
}

// Close closes the database.
func (s *Store) Close() error {
	errs := []error{s.db.Close()}
	if r, ok := s.reader.(*sql.DB); !ok || r != s.db {
		errs = append(errs, s.reader.Close())
	}
	if s.closer != nil {
		errs = append(errs, s.closer())
	}
	return errors.Join(errs...)
}

// WatchHostChanges calls fn with the id of each host whose revision
// changed, once the change is committed, until ctx ends (see tripcap.Store).
func (s *Store) WatchHostChanges(ctx context.Context, fn func(hostID string)) error {
	return s.d.Watch(ctx, fn)
}

// q returns query in the dialect's placeholders.
func (s *Store) q(query string) string {
	if !s.d.Numbered {
		return query
	}
	if r, ok := s.rebound.Load(query); ok {
		return r.(string)
	}
	r := Rebind(query)
	if s.nRebound.Add(1) <= maxRebound {
		s.rebound.Store(query, r)
	}
	return r
}

func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.reader.QueryContext(ctx, s.q(query), args...)
}

func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.reader.QueryRowContext(ctx, s.q(query), args...)
}

// exec runs one writing statement on its own (its own transaction) and
// returns the rows it affected.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// t encodes a time parameter; tp a nullable one.
func (s *Store) t(t time.Time) any { return s.d.Time(t) }

func (s *Store) tp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return s.d.Time(*t)
}

// violation is Dialect.Violation's kind.
func (s *Store) violation(err error) string {
	if err == nil {
		return ""
	}
	kind, _ := s.d.Violation(err)
	return kind
}

// Tx is a write transaction.
type Tx struct {
	tx      *sql.Tx
	s       *Store
	changed []string
}

// Exec runs a statement and returns the rows it affected.
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := tx.tx.ExecContext(ctx, tx.s.q(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Query runs a query in the transaction.
func (tx *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(ctx, tx.s.q(query), args...)
}

// QueryRow runs a query of one row in the transaction.
func (tx *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(ctx, tx.s.q(query), args...)
}

// Prepare prepares a statement run many times in the transaction.
func (tx *Tx) Prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	return tx.tx.PrepareContext(ctx, tx.s.q(query))
}

// Time encodes a time parameter in the dialect's way.
func (tx *Tx) Time(t time.Time) any { return tx.s.d.Time(t) }

// hostChanged signals that the transaction changed a host's revision.
func (tx *Tx) hostChanged(ctx context.Context, hostID string) error {
	tx.changed = append(tx.changed, hostID)
	if tx.s.d.HostChanged != nil {
		return tx.s.d.HostChanged(ctx, tx.tx, hostID)
	}
	return nil
}

// write runs fn in a transaction and commits it, running it again (a few
// times at most) when the database aborted it to break a deadlock or a
// serialization conflict; fn must not change the caller's state.
func (s *Store) write(ctx context.Context, fn func(tx *Tx) error) error {
	for attempt := 1; ; attempt++ {
		tx := &Tx{s: s}
		err := s.attempt(ctx, tx, fn)
		if err == nil {
			if s.d.Committed != nil {
				for _, id := range tx.changed {
					s.d.Committed(id)
				}
			}
			return nil
		}
		if s.d.Retryable == nil || !s.d.Retryable(err) || attempt == 5 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * time.Duration(1+rand.IntN(10)) * time.Millisecond):
		}
	}
}

func (s *Store) attempt(ctx context.Context, tx *Tx, fn func(tx *Tx) error) error {
	var err error
	if tx.tx, err = s.db.BeginTx(ctx, nil); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.tx.Rollback()
		return err
	}
	return tx.tx.Commit()
}

// bumpRevision increments a host's revision, signals the change, and
// reports whether the host exists.
func bumpRevision(ctx context.Context, tx *Tx, hostID string) (bool, error) {
	n, err := tx.Exec(ctx, `UPDATE hosts SET revision = revision + 1 WHERE id = ?`, hostID)
	if err != nil || n == 0 {
		return false, err
	}
	return true, tx.hostChanged(ctx, hostID)
}

// utcNow is the store's clock for the times a caller does not give (leases
// use the database's, Dialect.Now).
func utcNow() time.Time { return time.Now().UTC() }

// timeCol scans a time column: a time (PostgreSQL's timestamptz) or text
// (SQLite's RFC 3339), returned in UTC.
type timeCol struct{ t *time.Time }

func (v timeCol) Scan(src any) error {
	switch x := src.(type) {
	case time.Time:
		*v.t = x.UTC()
		return nil
	case string:
		return parseTime(x, v.t)
	case []byte:
		return parseTime(string(x), v.t)
	}
	return fmt.Errorf("time column holds %T", src)
}

func parseTime(s string, t *time.Time) error {
	p, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("time column: %w", err)
	}
	*t = p.UTC()
	return nil
}

// nullTimeCol scans a nullable time column; NULL (and SQLite's ” of a
// lease no one holds) is nil.
type nullTimeCol struct{ t **time.Time }

func (v nullTimeCol) Scan(src any) error {
	if src == nil || src == "" {
		*v.t = nil
		return nil
	}
	var t time.Time
	if err := (timeCol{&t}).Scan(src); err != nil {
		return err
	}
	*v.t = &t
	return nil
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// collect scans every row of rows with scan.
func collect[T any](rows *sql.Rows, err error, scan func(r rowScanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// deleteByID deletes the row of table with id, ENOTFOUND (from notFound) when none.
func (s *Store) deleteByID(ctx context.Context, table, what, id string, notFound func(string) error) error {
	if err := CheckID(what+" id", id); err != nil {
		return err
	}
	n, err := s.exec(ctx, `DELETE FROM `+table+` WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", what, id, err)
	}
	if n == 0 {
		return notFound(id)
	}
	return nil
}
