package postgres

import (
	"cmp"
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/sqldoc"
)

const watcherColumns = "id, name, location, max_captures, created_at"

func scanWatcher(r pgx.Row) (*tripcap.NetworkWatcher, error) {
	var w tripcap.NetworkWatcher
	if err := r.Scan(&w.ID, &w.Name, &w.Location, &w.MaxCaptures, &w.CreatedAt); err != nil {
		return nil, err
	}
	utc(&w.CreatedAt)
	return &w, nil
}

// EnsureWatcher returns the watcher of the location, creating it (named
// WatcherName(location), with maxCaptures) if it does not exist. An existing
// watcher keeps its limit. Replicas racing to create it get the same one.
func (s *Store) EnsureWatcher(ctx context.Context, location string, maxCaptures int) (*tripcap.NetworkWatcher, error) {
	if err := sqldoc.CheckLocation(location); err != nil {
		return nil, err
	}
	if err := sqldoc.CheckWatcherLimit(maxCaptures); err != nil {
		return nil, err
	}
	const byLocation = `SELECT ` + watcherColumns + ` FROM watchers WHERE location = $1`
	w, err := scanWatcher(s.pool.QueryRow(ctx, byLocation, location))
	if err == nil {
		return w, nil
	}
	if !isNoRows(err) {
		return nil, fmt.Errorf("ensure watcher of %s: %w", location, err)
	}
	// A racing insert waits for the other to commit, then does nothing; the
	// select that follows, a new statement, sees the committed row.
	if _, err := s.pool.Exec(ctx, `INSERT INTO watchers (`+watcherColumns+`) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
		tripcap.NewID(), tripcap.WatcherName(location), location, maxCaptures, utcNow()); err != nil {
		return nil, fmt.Errorf("ensure watcher of %s: %w", location, err)
	}
	w, err = scanWatcher(s.pool.QueryRow(ctx, byLocation, location))
	if err != nil {
		return nil, fmt.Errorf("ensure watcher of %s: %w", location, err)
	}
	return w, nil
}

// FindWatcher returns a watcher by id or by name ("" to skip either; both
// given must both match). ENOTFOUND when none.
func (s *Store) FindWatcher(ctx context.Context, id, name string) (*tripcap.NetworkWatcher, error) {
	if err := sqldoc.CheckWatcherRef(id, name); err != nil {
		return nil, err
	}
	w, err := scanWatcher(s.pool.QueryRow(ctx, `SELECT `+watcherColumns+` FROM watchers
		WHERE ($1 = '' OR id = $1) AND ($2 = '' OR name = $2)`, id, name))
	if isNoRows(err) {
		return nil, sqldoc.WatcherNotFound(cmp.Or(name, id))
	}
	if err != nil {
		return nil, fmt.Errorf("find watcher %s: %w", cmp.Or(name, id), err)
	}
	return w, nil
}

// FindWatchers lists every watcher, ordered by name.
func (s *Store) FindWatchers(ctx context.Context) ([]*tripcap.NetworkWatcher, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+watcherColumns+` FROM watchers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("find watchers: %w", err)
	}
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tripcap.NetworkWatcher, error) { return scanWatcher(r) })
	if err != nil {
		return nil, fmt.Errorf("find watchers: %w", err)
	}
	return ws, nil
}

// SetWatcherLimit changes a watcher's parallel-capture limit. Captures
// already active beyond a lowered limit keep running. ENOTFOUND when unknown.
func (s *Store) SetWatcherLimit(ctx context.Context, id string, maxCaptures int) error {
	if err := sqldoc.CheckID("watcher id", id); err != nil {
		return err
	}
	if err := sqldoc.CheckWatcherLimit(maxCaptures); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE watchers SET max_captures = $1 WHERE id = $2`, maxCaptures, id)
	if err != nil {
		return fmt.Errorf("set limit of watcher %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return sqldoc.WatcherNotFound(id)
	}
	return nil
}
