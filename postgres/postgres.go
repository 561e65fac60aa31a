// Package postgres implements tripcap.Store on PostgreSQL through pgx, for
// one or several tripcap servers (replicas) sharing a database.
//
// Every invariant that spans rows holds under concurrency from any number of
// replicas: CreateCapture locks the watcher's row while it counts active
// captures, a partial unique index keeps live capture names unique,
// ConsumeJoinToken and MarkHostsOffline are single conditional UPDATEs, and
// transactions that lose a deadlock or serialization race are retried.
// WatchHostChanges uses LISTEN/NOTIFY: the transactions that bump a host's
// revision call pg_notify, which PostgreSQL delivers to every listener, in
// every replica, when (and only if) they commit.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/sqldoc"
)

//go:embed migrations/*.sql
var migrations embed.FS

var _ tripcap.Store = (*Store)(nil)

// channel is the LISTEN/NOTIFY channel of host revision changes; the payload is the host id.
const channel = "tripcap_host_changes"

// Store is a tripcap.Store on a PostgreSQL database. It is safe for
// concurrent use, and several Stores (in several processes) may share a database.
type Store struct {
	pool *pgxpool.Pool
	// listenConfig connects WatchHostChanges' dedicated connections.
	listenConfig *pgx.ConnConfig
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// string) and brings its schema up to date. Replicas starting together
// migrate one at a time, under an advisory lock.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the DSN, password included.
		return nil, errors.New("open postgres: the database URL cannot be parsed; check its syntax")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	lc := cfg.ConnConfig.Copy()
	lc.RuntimeParams["application_name"] = "tripcap-watch"
	return &Store{pool: pool, listenConfig: lc}, nil
}

func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	return sqldoc.Migrate(ctx, goose.DialectPostgres, db, fsys, goose.WithSessionLocker(locker))
}

// Close closes the pool. WatchHostChanges calls end with their contexts.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// utcNow is the store's clock, for the times the caller does not give.
func utcNow() time.Time { return time.Now().UTC() }

// inTx runs fn in a transaction and commits it, running it again (up to a
// few times) when PostgreSQL aborts it to break a deadlock or a
// serialization conflict. fn must not change the caller's state.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, s.pool, fn)
		if !retryable(err) || attempt == 5 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * time.Duration(1+rand.IntN(10)) * time.Millisecond):
		}
	}
}

func retryable(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && (e.Code == "40P01" || e.Code == "40001")
}

// uniqueViolation returns the name of the unique constraint err violated, or "".
func uniqueViolation(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) && e.Code == "23505" {
		return e.ConstraintName
	}
	return ""
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// notify queues a host change for delivery when the transaction commits.
func notify(ctx context.Context, tx pgx.Tx, hostID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, hostID)
	return err
}

// bumpRevision increments a host's revision, queues the notification, and
// reports whether the host exists.
func bumpRevision(ctx context.Context, tx pgx.Tx, hostID string) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE hosts SET revision = revision + 1 WHERE id = $1`, hostID)
	if err != nil || tag.RowsAffected() == 0 {
		return false, err
	}
	return true, notify(ctx, tx, hostID)
}

// utc returns a time scanned from timestamptz in UTC, as the stores return times.
func utc(t *time.Time) { *t = t.UTC() }

func utcPtr(t **time.Time) {
	if *t != nil {
		u := (*t).UTC()
		*t = &u
	}
}
