package sqlstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

const hostColumns = "id, name, location, labels, subscription_id, resource_group, inventory, state, last_seen, revision, created_at, updated_at"

func scanHost(r rowScanner) (*tripcap.Host, error) {
	var h tripcap.Host
	var labels, inv []byte
	if err := r.Scan(&h.ID, &h.Name, &h.Location, &labels, &h.SubscriptionID, &h.ResourceGroup, &inv,
		&h.State, timeCol{&h.LastSeen}, &h.Revision, timeCol{&h.CreatedAt}, timeCol{&h.UpdatedAt}); err != nil {
		return nil, err
	}
	var err error
	if h.Labels, err = DecodeLabels(labels); err != nil {
		return nil, fmt.Errorf("host %s: %w", h.ID, err)
	}
	if h.Inventory, err = DecodeInventory(inv); err != nil {
		return nil, fmt.Errorf("host %s: %w", h.ID, err)
	}
	return &h, nil
}

// CreateHost inserts h. ECONFLICT when its name (in any case) or id is taken.
// An empty State is stored as Offline, zero CreatedAt/UpdatedAt as now.
func (s *Store) CreateHost(ctx context.Context, h *tripcap.Host) error {
	if err := CheckHost(h, utcNow()); err != nil {
		return err
	}
	labels, err := EncodeLabels(h.Labels)
	if err != nil {
		return fmt.Errorf("create host %s: %w", h.Name, err)
	}
	inv, err := EncodeInventory(h.Inventory)
	if err != nil {
		return fmt.Errorf("create host %s: %w", h.Name, err)
	}
	_, err = s.exec(ctx, `INSERT INTO hosts (`+hostColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		h.ID, h.Name, h.Location, string(labels), h.SubscriptionID, h.ResourceGroup, string(inv), string(h.State),
		s.t(h.LastSeen), h.Revision, s.t(h.CreatedAt), s.t(h.UpdatedAt))
	switch s.violation(err) {
	case "unique":
		return HostNameTaken(h.Name)
	case "primarykey":
		return HostIDTaken(h.ID)
	}
	if err != nil {
		return fmt.Errorf("create host %s: %w", h.Name, err)
	}
	return nil
}

// FindHosts lists hosts ordered by id, and the cursor of the next page ("" at the end).
func (s *Store) FindHosts(ctx context.Context, f tripcap.HostFilter) ([]*tripcap.Host, string, error) {
	vm, err := CheckHostFilter(f)
	if err != nil {
		return nil, "", err
	}
	w := HostWhere(f, vm, s.d.Position)
	rows, err := s.query(ctx, `SELECT `+hostColumns+` FROM hosts`+w.String()+OrderLimit(FetchLimit(f.Limit)), w.Args...)
	hosts, err := collect(rows, err, scanHost)
	if err != nil {
		return nil, "", fmt.Errorf("find hosts: %w", err)
	}
	hosts, next := Page(hosts, f.Limit, func(h *tripcap.Host) string { return h.ID })
	return hosts, next, nil
}

// CountHosts counts the hosts f selects, its Cursor and Limit aside.
func (s *Store) CountHosts(ctx context.Context, f tripcap.HostFilter) (int, error) {
	f.Cursor, f.Limit = "", 0
	vm, err := CheckHostFilter(f)
	if err != nil {
		return 0, err
	}
	w := HostWhere(f, vm, s.d.Position)
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM hosts`+w.String(), w.Args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count hosts: %w", err)
	}
	return n, nil
}

// FindHost returns the first host (by id) f selects, ENOTFOUND when none.
func (s *Store) FindHost(ctx context.Context, f tripcap.HostFilter) (*tripcap.Host, error) {
	f.Limit = 1
	hosts, _, err := s.FindHosts(ctx, f)
	if err != nil {
		return nil, err
	}
	if len(hosts) == 0 {
		if f.ID != nil {
			return nil, HostNotFound(*f.ID)
		}
		return nil, NoSuchHost()
	}
	return hosts[0], nil
}

// HostRevision returns a host's revision alone.
func (s *Store) HostRevision(ctx context.Context, id string) (int64, error) {
	if err := CheckID("host id", id); err != nil {
		return 0, err
	}
	var rev int64
	err := s.queryRow(ctx, `SELECT revision FROM hosts WHERE id = ?`, id).Scan(&rev)
	if isNoRows(err) {
		return 0, HostNotFound(id)
	}
	if err != nil {
		return 0, fmt.Errorf("revision of host %s: %w", id, err)
	}
	return rev, nil
}

// UpdateHostInventory stores an agent's report and marks the host Online,
// last seen at seen (never moved back). ENOTFOUND when the host is unknown.
func (s *Store) UpdateHostInventory(ctx context.Context, id string, inv tripcap.Inventory, seen time.Time) error {
	if err := CheckID("host id", id); err != nil {
		return err
	}
	doc, err := EncodeInventory(inv)
	if err != nil {
		return fmt.Errorf("update inventory of host %s: %w", id, err)
	}
	n, err := s.exec(ctx, `UPDATE hosts SET inventory = ?, state = 'Online', last_seen = `+s.d.Greatest+`(last_seen, ?), updated_at = ? WHERE id = ?`,
		string(doc), s.t(seen), s.t(utcNow()), id)
	if err != nil {
		return fmt.Errorf("update inventory of host %s: %w", id, err)
	}
	if n == 0 {
		return HostNotFound(id)
	}
	return nil
}

// TouchHosts records heartbeats in one transaction: each host is Online and
// last seen at the later of its stored and given times. Unknown ids (hosts
// deleted meanwhile) are skipped. The dialect writes the batch, in id
// order, so that concurrent batches from several replicas do not deadlock.
func (s *Store) TouchHosts(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(seen))
	times := make([]time.Time, len(ids))
	for i, id := range ids {
		if err := CheckID("host id", id); err != nil {
			return err
		}
		times[i] = seen[id]
	}
	now := utcNow()
	if s.d.TouchHosts == nil {
		err := s.write(ctx, func(tx *Tx) error { return s.touchHosts(ctx, tx, ids, times, now) })
		if err != nil {
			return fmt.Errorf("touch %d hosts: %w", len(seen), err)
		}
		return nil
	}
	// First the rows no other transaction holds, in one statement that
	// waits for none and is its own transaction: a batch that waited for
	// one host's row (a capture created on it bumping its revision) would
	// hold the rows it had locked meanwhile, and one that committed in a
	// round trip of its own would hold them that much longer, every write
	// to those hosts queued behind it. The rest, usually none, follow in a
	// transaction that waits for them.
	left, err := s.d.TouchHosts(ctx, s.db, ids, times, now, true)
	if err == nil && len(left) > 0 {
		lt := make([]time.Time, len(left))
		for i, id := range left {
			lt[i] = seen[id]
		}
		err = s.write(ctx, func(tx *Tx) error {
			_, err := s.d.TouchHosts(ctx, tx.tx, left, lt, now, false)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("touch %d hosts: %w", len(seen), err)
	}
	return nil
}

// MarkHostsOffline turns every Online host last seen before cutoff Offline
// and returns them. Concurrent callers (in any replica) each get a host at
// most once: one UPDATE, whose selection skips the rows another holds (and
// rechecks the rest once it locks them).
func (s *Store) MarkHostsOffline(ctx context.Context, cutoff time.Time) ([]*tripcap.Host, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`UPDATE hosts SET state = 'Offline', updated_at = ?
		WHERE id IN (SELECT id FROM hosts WHERE state = 'Online' AND last_seen < ? ORDER BY id`+s.d.SkipLocked+`)
		RETURNING `+hostColumns), s.t(utcNow()), s.t(cutoff))
	hosts, err := collect(rows, err, scanHost)
	if err != nil {
		return nil, fmt.Errorf("mark hosts offline: %w", err)
	}
	slices.SortFunc(hosts, func(a, b *tripcap.Host) int { return strings.Compare(a.ID, b.ID) })
	return hosts, nil
}

// DeleteHost removes a host; its captures stay for their files. ENOTFOUND
// when the host is unknown.
func (s *Store) DeleteHost(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "hosts", "host", id, HostNotFound)
}

// touchHosts writes heartbeats in tx, one prepared UPDATE a host: where
// the database is in-process and has one writer, as cheap as a batch.
func (s *Store) touchHosts(ctx context.Context, tx *Tx, ids []string, seen []time.Time, now time.Time) error {
	stmt, err := tx.Prepare(ctx, `UPDATE hosts SET last_seen = `+s.d.Greatest+`(last_seen, ?), state = 'Online',
		updated_at = CASE WHEN state = 'Online' THEN updated_at ELSE ? END WHERE id = ?`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	t := s.t(now)
	for i, id := range ids {
		if _, err := stmt.ExecContext(ctx, s.t(seen[i]), t, id); err != nil {
			return err
		}
	}
	return nil
}
