package sqlstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"

	"github.com/tripcap/tripcap"
)

const watcherColumns = "id, name, location, subscription_id, resource_group, tags, max_captures, created_at"

func scanWatcher(r rowScanner) (*tripcap.NetworkWatcher, error) {
	var w tripcap.NetworkWatcher
	var tags string
	if err := r.Scan(&w.ID, &w.Name, &w.Location, &w.SubscriptionID, &w.ResourceGroup, &tags, &w.MaxCaptures, timeCol{&w.CreatedAt}); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(tags), &w.Tags); err != nil {
		return nil, fmt.Errorf("watcher %s: tags: %w", w.ID, err)
	}
	if len(w.Tags) == 0 {
		w.Tags = nil
	}
	return &w, nil
}

func tagsJSON(tags map[string]string) string {
	if len(tags) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(tags)
	return string(b)
}

const watcherOfLocation = `SELECT ` + watcherColumns + ` FROM watchers WHERE lower(subscription_id) = lower(?) AND location = ?`

// EnsureWatcher returns the watcher of the subscription's location,
// creating it (named WatcherName(location) in WatcherResourceGroup, with
// maxCaptures) if it does not exist: first by taking a watcher from before
// subscriptions that no subscription has yet, else by inserting one. An
// existing watcher keeps its limit. Concurrent callers insert at most one
// (ON CONFLICT DO NOTHING) and all read it back.
func (s *Store) EnsureWatcher(ctx context.Context, subscription, location string, maxCaptures int) (*tripcap.NetworkWatcher, error) {
	if err := CheckLocation(location); err != nil {
		return nil, err
	}
	if err := CheckSubscription(subscription); err != nil {
		return nil, err
	}
	if err := CheckWatcherLimit(maxCaptures); err != nil {
		return nil, err
	}
	w, err := scanWatcher(s.queryRow(ctx, watcherOfLocation, subscription, location))
	if err == nil {
		return w, nil
	}
	if !isNoRows(err) {
		return nil, fmt.Errorf("ensure watcher of %s: %w", location, err)
	}
	err = s.write(ctx, func(tx *Tx) error {
		n, err := tx.Exec(ctx, `UPDATE watchers SET subscription_id = ? WHERE subscription_id = '' AND location = ?
			AND NOT EXISTS (SELECT 1 FROM watchers o WHERE lower(o.subscription_id) = lower(?) AND o.location = ?)`,
			subscription, location, subscription, location)
		if err != nil || n > 0 {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO watchers (`+watcherColumns+`) VALUES (?, ?, ?, ?, ?, '{}', ?, ?) ON CONFLICT DO NOTHING`,
			tripcap.NewID(), tripcap.WatcherName(location), location, subscription, tripcap.WatcherResourceGroup, maxCaptures, tx.Time(utcNow()))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ensure watcher of %s: %w", location, err)
	}
	w, err = scanWatcher(s.db.QueryRowContext(ctx, s.q(watcherOfLocation), subscription, location))
	if isNoRows(err) {
		// The name was taken in the group by a watcher of another location.
		return nil, WatcherNameTaken(tripcap.WatcherName(location), tripcap.WatcherResourceGroup)
	}
	if err != nil {
		return nil, fmt.Errorf("ensure watcher of %s: %w", location, err)
	}
	return w, nil
}

// CreateWatcher stores a watcher a user names. ECONFLICT when its
// subscription has one in that location (Azure allows one per region) or one
// of that name in that group.
func (s *Store) CreateWatcher(ctx context.Context, w *tripcap.NetworkWatcher) error {
	if err := CheckWatcher(w); err != nil {
		return err
	}
	return s.write(ctx, func(tx *Tx) error {
		var name, group string
		err := tx.QueryRow(ctx, `SELECT name, resource_group FROM watchers WHERE lower(subscription_id) = lower(?) AND location = ?`,
			w.SubscriptionID, w.Location).Scan(&name, &group)
		if err == nil {
			return WatcherLocationTaken(w.Location, name, group)
		}
		if !isNoRows(err) {
			return fmt.Errorf("create watcher %s: %w", w.Name, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO watchers (`+watcherColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			w.ID, w.Name, w.Location, w.SubscriptionID, w.ResourceGroup, tagsJSON(w.Tags), w.MaxCaptures, tx.Time(w.CreatedAt))
		if s.violation(err) != "" {
			return WatcherNameTaken(w.Name, w.ResourceGroup)
		}
		if err != nil {
			return fmt.Errorf("create watcher %s: %w", w.Name, err)
		}
		return nil
	})
}

// SetWatcherTags replaces a watcher's tags. ENOTFOUND when unknown.
func (s *Store) SetWatcherTags(ctx context.Context, id string, tags map[string]string) error {
	if err := CheckID("watcher id", id); err != nil {
		return err
	}
	if err := CheckTags(tags); err != nil {
		return err
	}
	n, err := s.exec(ctx, `UPDATE watchers SET tags = ? WHERE id = ?`, tagsJSON(tags), id)
	if err != nil {
		return fmt.Errorf("set tags of watcher %s: %w", id, err)
	}
	if n == 0 {
		return WatcherNotFound(id)
	}
	return nil
}

// DeleteWatcher removes a watcher. ECONFLICT while any capture refers to
// it (a deleted one too: its files are indexed by it); ENOTFOUND when unknown.
func (s *Store) DeleteWatcher(ctx context.Context, id string) error {
	if err := CheckID("watcher id", id); err != nil {
		return err
	}
	return s.write(ctx, func(tx *Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM captures WHERE watcher_id = ?`, id).Scan(&n); err != nil {
			return fmt.Errorf("delete watcher %s: %w", id, err)
		}
		if n > 0 {
			return WatcherInUse(id, n)
		}
		deleted, err := tx.Exec(ctx, `DELETE FROM watchers WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete watcher %s: %w", id, err)
		}
		if deleted == 0 {
			return WatcherNotFound(id)
		}
		return nil
	})
}

// FindWatcher returns a watcher by id or by name ("" to skip either; both
// given must both match). ENOTFOUND when none; EINVALID when a name alone
// matches watchers of several subscriptions or groups.
func (s *Store) FindWatcher(ctx context.Context, id, name string) (*tripcap.NetworkWatcher, error) {
	if err := CheckWatcherRef(id, name); err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, `SELECT `+watcherColumns+` FROM watchers
		WHERE (? = '' OR id = ?) AND (? = '' OR name = ?) ORDER BY id LIMIT 2`, id, id, name, name)
	ws, err := collect(rows, err, scanWatcher)
	switch {
	case err != nil:
		return nil, fmt.Errorf("find watcher %s: %w", cmp.Or(name, id), err)
	case len(ws) == 0:
		return nil, WatcherNotFound(cmp.Or(name, id))
	case len(ws) > 1:
		return nil, WatcherNameAmbiguous(name)
	}
	return ws[0], nil
}

// FindWatchers lists every watcher, ordered by name, subscription and group.
func (s *Store) FindWatchers(ctx context.Context) ([]*tripcap.NetworkWatcher, error) {
	rows, err := s.query(ctx, `SELECT `+watcherColumns+` FROM watchers ORDER BY name, lower(subscription_id), lower(resource_group)`)
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
