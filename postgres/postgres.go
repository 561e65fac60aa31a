// Package postgres opens a tripcap.Store (package sqlstore) on PostgreSQL
// through pgx, for one or several tripcap servers (replicas) sharing a
// database.
//
// Every invariant that spans rows holds under concurrency from any number of
// replicas: CreateCapture locks the watcher's row while it counts active
// captures, a partial unique index keeps live capture names unique,
// ConsumeJoinToken and MarkHostsOffline are single conditional UPDATEs, and
// transactions that lose a deadlock or serialization race are retried.
// Leases on responder runs are compared on the database's clock, now().
// WatchHostChanges uses LISTEN/NOTIFY: the transactions that bump a host's
// revision call pg_notify, which PostgreSQL delivers to every listener, in
// every replica, when (and only if) they commit.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/tripcap/tripcap/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// channel is the LISTEN/NOTIFY channel of host revision changes; the payload is the host id.
const channel = "tripcap_host_changes"

// Store is a tripcap.Store on a PostgreSQL database. It is safe for
// concurrent use, and several Stores (in several processes) may share a database.
type Store = sqlstore.Store

// defaultConns is the pool's size at least, unless the DSN sets pool_max_conns. A
// connection spends most of a query waiting on the round trip, not on a
// CPU, so the pool is several times the cores: with pgxpool's default of
// max(4, CPUs) the long polls of a 10,000-agent fleet, each reading its
// host's revision, queued for a connection (tens of goroutines waiting on
// average in bench/fleet's block profile) ahead of the API's requests.
const defaultConns = 16

// Open connects to the database at dsn (a postgres:// URL or key=value
// string) and brings its schema up to date. Replicas starting together
// migrate one at a time, under an advisory lock.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the DSN, password included.
		return nil, errors.New("open postgres: the database URL cannot be parsed; check its syntax")
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, defaultConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	// pgxpool keeps the connections (each with its prepared statements)
	// and hands them out first come, first served. database/sql keeps none
	// idle of its own and never queues: it would hand a freed connection
	// to a random waiter, and under load some requests would wait for
	// seconds while others went ahead.
	db := stdlib.OpenDBFromPool(pool)
	db.SetMaxIdleConns(0)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		pool.Close()
		return nil, fmt.Errorf("open postgres %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	lc := cfg.ConnConfig.Copy()
	lc.RuntimeParams["application_name"] = "tripcap-watch"
	w := &watcher{config: lc}
	return sqlstore.New(dialect(w), db, db, func() error { pool.Close(); return nil }), nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	if err := db.PingContext(ctx); err != nil {
		return err
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	return sqlstore.Migrate(ctx, goose.DialectPostgres, db, fsys, goose.WithSessionLocker(locker))
}

func dialect(w *watcher) sqlstore.Dialect {
	return sqlstore.Dialect{
		Numbered:   true,
		Time:       func(t time.Time) any { return t },
		Violation:  violation,
		Retryable:  retryable,
		Lock:       " FOR NO KEY UPDATE",
		SkipLocked: " FOR NO KEY UPDATE SKIP LOCKED",
		Now:        "now()",
		Until:      "now() + make_interval(secs => ?)",
		None:       "NULL",
		True:       "true",
		Greatest:   "GREATEST",
		Position:   "strpos",
		ByteOrder:  ` COLLATE "C"`,
		HostChanged: func(ctx context.Context, tx *sql.Tx, hostID string) error {
			_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, channel, hostID)
			return err
		},
		Watch: w.watch,
		TouchHosts: func(ctx context.Context, c sqlstore.Conn, ids []string, seen []time.Time, now time.Time, skipLocked bool) ([]string, error) {
			// The rows are locked in id order first: concurrent batches of
			// several replicas then queue instead of deadlocking.
			lock := " FOR NO KEY UPDATE"
			if skipLocked {
				lock = " FOR NO KEY UPDATE SKIP LOCKED"
			}
			rows, err := c.QueryContext(ctx, `UPDATE hosts h SET last_seen = GREATEST(h.last_seen, v.seen), state = 'Online',
					updated_at = CASE WHEN h.state = 'Online' THEN h.updated_at ELSE $1 END
				FROM unnest($2::text[], $3::timestamptz[]) AS v (id, seen)
				WHERE h.id = v.id AND h.id IN (SELECT id FROM hosts WHERE id = ANY($2) ORDER BY id`+lock+`)
				RETURNING h.id`, now, ids, seen)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			done := make(map[string]bool, len(ids))
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return nil, err
				}
				done[id] = true
			}
			if err := rows.Err(); err != nil {
				return nil, err
			}
			if !skipLocked || len(done) == len(ids) {
				return nil, nil
			}
			var left []string
			for _, id := range ids {
				if !done[id] {
					left = append(left, id)
				}
			}
			return left, nil
		},
		WriteCaptures: func(ctx context.Context, tx *sqlstore.Tx, rows []sqlstore.CaptureWrite) ([]string, error) {
			n := len(rows)
			ids, versions, statuses, desired := make([]string, n), make([]int64, n), make([]string, n), make([]string, n)
			deleted, updated, created, docs := make([]*time.Time, n), make([]time.Time, n), make([]time.Time, n), make([]string, n)
			for i, r := range rows {
				ids[i], versions[i], statuses[i], desired[i] = r.ID, r.Version, r.Status, r.Desired
				deleted[i], updated[i], created[i], docs[i] = r.DeletedAt, r.UpdatedAt, r.CreatedAt, r.Doc
			}
			q, err := tx.Query(ctx, `UPDATE captures c SET version = v.version, status = v.status, desired = v.desired,
					deleted_at = v.deleted_at, updated_at = v.updated_at, doc = v.doc::json
				FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::timestamptz[], ?::timestamptz[], ?::text[], ?::timestamptz[])
					AS v (id, version, status, desired, deleted_at, updated_at, doc, created_at)
				WHERE c.id = v.id AND c.version = v.version - 1 AND c.created_at = v.created_at
				RETURNING c.id`, ids, versions, statuses, desired, deleted, updated, docs, created)
			if err != nil {
				return nil, err
			}
			defer q.Close()
			written := make([]string, 0, n)
			for q.Next() {
				var id string
				if err := q.Scan(&id); err != nil {
					return nil, err
				}
				written = append(written, id)
			}
			return written, q.Err()
		},
	}
}

// violation names the constraint err violated: a primary key (every one is
// named table_pkey) or another unique constraint, and its name.
func violation(err error) (kind, name string) {
	var e *pgconn.PgError
	if !errors.As(err, &e) || e.Code != "23505" {
		return "", ""
	}
	if len(e.ConstraintName) > 5 && e.ConstraintName[len(e.ConstraintName)-5:] == "_pkey" {
		return "primarykey", e.ConstraintName
	}
	return "unique", e.ConstraintName
}

// retryable reports a deadlock or a serialization failure.
func retryable(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && (e.Code == "40P01" || e.Code == "40001")
}
