package sqlstore

import (
	"cmp"
	"context"
	"fmt"

	"github.com/tripcap/tripcap"
)

const watcherColumns = "id, name, location, max_captures, created_at"

func scanWatcher(r rowScanner) (*tripcap.NetworkWatcher, error) {
	var w tripcap.NetworkWatcher
	if err := r.Scan(&w.ID, &w.Name, &w.Location, &w.MaxCaptures, timeCol{&w.CreatedAt}); err != nil {
		return nil, err
	}
	return &w, nil
}

// EnsureWatcher returns the watcher of the location, creating it (named
// WatcherName(location), with maxCaptures) if it does not exist. An existing
// watcher keeps its limit. Concurrent callers insert at most one (ON
// CONFLICT DO NOTHING) and all read it back.
func (s *Store) EnsureWatcher(ctx context.Context, location string, maxCaptures int) (*tripcap.NetworkWatcher, error) {
	if err := CheckLocation(location); err != nil {
		return nil, err
	}
	if err := CheckWatcherLimit(maxCaptures); err != nil {
		return nil, err
	}
	const byLocation = `SELECT ` + watcherColumns + ` FROM watchers WHERE location = ?`
	w, err := scanWatcher(s.queryRow(ctx, byLocation, location))
	if err == nil {
		return w, nil
	}
	if !isNoRows(err) {
		return nil, fmt.Errorf("ensure watcher of %s: %w", location, err)
	}
	if _, err := s.exec(ctx, `INSERT INTO watchers (`+watcherColumns+`) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		tripcap.NewID(), tripcap.WatcherName(location), location, maxCaptures, s.t(utcNow())); err != nil {
		return nil, fmt.Errorf("ensure watcher of %s: %w", location, err)
	}
	w, err = scanWatcher(s.db.QueryRowContext(ctx, s.q(byLocation), location))
	if err != nil {
		return nil, fmt.Errorf("ensure watcher of %s: %w", location, err)
	}
	return w, nil
}

// FindWatcher returns a watcher by id or by name ("" to skip either; both
// given must both match). ENOTFOUND when none.
func (s *Store) FindWatcher(ctx context.Context, id, name string) (*tripcap.NetworkWatcher, error) {
	if err := CheckWatcherRef(id, name); err != nil {
		return nil, err
	}
	w, err := scanWatcher(s.queryRow(ctx, `SELECT `+watcherColumns+` FROM watchers
		WHERE (? = '' OR id = ?) AND (? = '' OR name = ?)`, id, id, name, name))
	if isNoRows(err) {
		return nil, WatcherNotFound(cmp.Or(name, id))
	}
	if err != nil {
		return nil, fmt.Errorf("find watcher %s: %w", cmp.Or(name, id), err)
	}
	return w, nil
}

// FindWatchers lists every watcher, ordered by name.
func (s *Store) FindWatchers(ctx context.Context) ([]*tripcap.NetworkWatcher, error) {
	rows, err := s.query(ctx, `SELECT `+watcherColumns+` FROM watchers ORDER BY name`)
	ws, err := collect(rows, err, scanWatcher)
	if err != nil {
		return nil, fmt.Errorf("find watchers: %w", err)
	}
	return ws, nil
}

// SetWatcherLimit changes a watcher's parallel-capture limit. Captures
// already active beyond a lowered limit keep running. ENOTFOUND when unknown.
func (s *Store) SetWatcherLimit(ctx context.Context, id string, maxCaptures int) error {
	if err := CheckID("watcher id", id); err != nil {
		return err
	}
	if err := CheckWatcherLimit(maxCaptures); err != nil {
		return err
	}
	n, err := s.exec(ctx, `UPDATE watchers SET max_captures = ? WHERE id = ?`, maxCaptures, id)
	if err != nil {
		return fmt.Errorf("set limit of watcher %s: %w", id, err)
	}
	if n == 0 {
		return WatcherNotFound(id)
	}
	return nil
}

// CreateStorageAccount stores a. ECONFLICT when the name is taken.
func (s *Store) CreateStorageAccount(ctx context.Context, a *tripcap.StorageAccount) error {
	if err := CheckStorageAccount(a, utcNow()); err != nil {
		return err
	}
	url, err := s.sealSecret(storageURLField(a.Name), a.URL)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO storage_accounts (name, url, created_at) VALUES (?, ?, ?)`, a.Name, url, s.t(a.CreatedAt))
	if s.violation(err) != "" {
		return StorageAccountTaken(a.Name)
	}
	if err != nil {
		return fmt.Errorf("create storage account %s: %w", a.Name, err)
	}
	return nil
}

// FindStorageAccounts lists accounts ordered by name.
func (s *Store) FindStorageAccounts(ctx context.Context) ([]*tripcap.StorageAccount, error) {
	rows, err := s.query(ctx, `SELECT name, url, created_at FROM storage_accounts ORDER BY name`)
	out, err := collect(rows, err, func(r rowScanner) (*tripcap.StorageAccount, error) {
		var a tripcap.StorageAccount
		if err := r.Scan(&a.Name, &a.URL, timeCol{&a.CreatedAt}); err != nil {
			return nil, err
		}
		var err error
		a.URL, err = s.openSecret(storageURLField(a.Name), a.URL)
		return &a, err
	})
	if err != nil {
		return nil, fmt.Errorf("find storage accounts: %w", err)
	}
	return out, nil
}

// DeleteStorageAccount removes an account. ENOTFOUND when unknown.
func (s *Store) DeleteStorageAccount(ctx context.Context, name string) error {
	n, err := s.exec(ctx, `DELETE FROM storage_accounts WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete storage account %s: %w", name, err)
	}
	if n == 0 {
		return StorageAccountNotFound(name)
	}
	return nil
}
