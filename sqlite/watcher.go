package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/sqldoc"
)

const watcherColumns = "id, name, location, max_captures, created_at"

func scanWatcher(r rowScanner) (*tripcap.NetworkWatcher, error) {
	var w tripcap.NetworkWatcher
	if err := r.Scan(&w.ID, &w.Name, &w.Location, &w.MaxCaptures, timeText{&w.CreatedAt}); err != nil {
		return nil, err
	}
	return &w, nil
}

// EnsureWatcher returns the watcher of the location, creating it (named
// WatcherName(location), with maxCaptures) if it does not exist. An existing
// watcher keeps its limit.
func (s *Store) EnsureWatcher(ctx context.Context, location string, maxCaptures int) (*tripcap.NetworkWatcher, error) {
	if err := sqldoc.CheckLocation(location); err != nil {
		return nil, err
	}
	if err := sqldoc.CheckWatcherLimit(maxCaptures); err != nil {
		return nil, err
	}
	const byLocation = `SELECT ` + watcherColumns + ` FROM watchers WHERE location = ?`
	w, err := scanWatcher(s.reader.QueryRowContext(ctx, byLocation, location))
	if err == nil {
		return w, nil
	}
	if !isNoRows(err) {
		return nil, fmt.Errorf("ensure watcher of %s: %w", location, err)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO watchers (`+watcherColumns+`) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			tripcap.NewID(), tripcap.WatcherName(location), location, maxCaptures, formatTime(utcNow())); err != nil {
			return err
		}
		w, err = scanWatcher(tx.QueryRowContext(ctx, byLocation, location))
		return err
	})
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
	w, err := scanWatcher(s.reader.QueryRowContext(ctx, `SELECT `+watcherColumns+` FROM watchers
		WHERE (? = '' OR id = ?) AND (? = '' OR name = ?)`, id, id, name, name))
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
	rows, err := s.reader.QueryContext(ctx, `SELECT `+watcherColumns+` FROM watchers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("find watchers: %w", err)
	}
	defer rows.Close()
	var ws []*tripcap.NetworkWatcher
	for rows.Next() {
		w, err := scanWatcher(rows)
		if err != nil {
			return nil, fmt.Errorf("find watchers: %w", err)
		}
		ws = append(ws, w)
	}
	if err := rows.Err(); err != nil {
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
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE watchers SET max_captures = ? WHERE id = ?`, maxCaptures, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("set limit of watcher %s: %w", id, err)
	}
	if n == 0 {
		return sqldoc.WatcherNotFound(id)
	}
	return nil
}
