package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/sqldoc"
)

const hostColumns = "id, name, location, labels, subscription_id, resource_group, inventory, state, last_seen, revision, created_at, updated_at"

func scanHost(r rowScanner) (*tripcap.Host, error) {
	var h tripcap.Host
	var labels, inv []byte
	if err := r.Scan(&h.ID, &h.Name, &h.Location, &labels, &h.SubscriptionID, &h.ResourceGroup, &inv,
		&h.State, timeText{&h.LastSeen}, &h.Revision, timeText{&h.CreatedAt}, timeText{&h.UpdatedAt}); err != nil {
		return nil, err
	}
	var err error
	if h.Labels, err = sqldoc.DecodeLabels(labels); err != nil {
		return nil, fmt.Errorf("host %s: %w", h.ID, err)
	}
	if h.Inventory, err = sqldoc.DecodeInventory(inv); err != nil {
		return nil, fmt.Errorf("host %s: %w", h.ID, err)
	}
	return &h, nil
}

func scanHosts(rows *sql.Rows) ([]*tripcap.Host, error) {
	defer rows.Close()
	var hosts []*tripcap.Host
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, h)
	}
	return hosts, rows.Err()
}

// CreateHost inserts h. ECONFLICT when its name (in any case) or id is taken.
// An empty State is stored as Offline, zero CreatedAt/UpdatedAt as now.
func (s *Store) CreateHost(ctx context.Context, h *tripcap.Host) error {
	if err := sqldoc.CheckHost(h, utcNow()); err != nil {
		return err
	}
	labels, err := sqldoc.EncodeLabels(h.Labels)
	if err != nil {
		return fmt.Errorf("create host %s: %w", h.Name, err)
	}
	inv, err := sqldoc.EncodeInventory(h.Inventory)
	if err != nil {
		return fmt.Errorf("create host %s: %w", h.Name, err)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO hosts (`+hostColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			h.ID, h.Name, h.Location, string(labels), h.SubscriptionID, h.ResourceGroup, string(inv), string(h.State),
			formatTime(h.LastSeen), h.Revision, formatTime(h.CreatedAt), formatTime(h.UpdatedAt))
		return err
	})
	switch constraint(err) {
	case "unique":
		return sqldoc.HostNameTaken(h.Name)
	case "primarykey":
		return sqldoc.HostIDTaken(h.ID)
	}
	if err != nil {
		return fmt.Errorf("create host %s: %w", h.Name, err)
	}
	return nil
}

// FindHosts lists hosts ordered by id, and the cursor of the next page ("" at the end).
func (s *Store) FindHosts(ctx context.Context, f tripcap.HostFilter) ([]*tripcap.Host, string, error) {
	vm, err := sqldoc.CheckHostFilter(f)
	if err != nil {
		return nil, "", err
	}
	w := sqldoc.HostWhere(f, vm)
	rows, err := s.reader.QueryContext(ctx, `SELECT `+hostColumns+` FROM hosts`+w.String()+sqldoc.OrderLimit(sqldoc.FetchLimit(f.Limit)), w.Args...)
	if err != nil {
		return nil, "", fmt.Errorf("find hosts: %w", err)
	}
	hosts, err := scanHosts(rows)
	if err != nil {
		return nil, "", fmt.Errorf("find hosts: %w", err)
	}
	hosts, next := sqldoc.Page(hosts, f.Limit, func(h *tripcap.Host) string { return h.ID })
	return hosts, next, nil
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
			return nil, sqldoc.HostNotFound(*f.ID)
		}
		return nil, sqldoc.NoSuchHost()
	}
	return hosts[0], nil
}

// HostRevision returns a host's revision alone.
func (s *Store) HostRevision(ctx context.Context, id string) (int64, error) {
	if err := sqldoc.CheckID("host id", id); err != nil {
		return 0, err
	}
	var rev int64
	err := s.reader.QueryRowContext(ctx, `SELECT revision FROM hosts WHERE id = ?`, id).Scan(&rev)
	if isNoRows(err) {
		return 0, sqldoc.HostNotFound(id)
	}
	if err != nil {
		return 0, fmt.Errorf("revision of host %s: %w", id, err)
	}
	return rev, nil
}

// UpdateHostInventory stores an agent's report and marks the host Online,
// last seen at seen (never moved back). ENOTFOUND when the host is unknown.
func (s *Store) UpdateHostInventory(ctx context.Context, id string, inv tripcap.Inventory, seen time.Time) error {
	if err := sqldoc.CheckID("host id", id); err != nil {
		return err
	}
	doc, err := sqldoc.EncodeInventory(inv)
	if err != nil {
		return fmt.Errorf("update inventory of host %s: %w", id, err)
	}
	var n int64
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE hosts SET inventory = ?, state = 'Online', last_seen = max(last_seen, ?), updated_at = ? WHERE id = ?`,
			string(doc), formatTime(seen), formatTime(utcNow()), id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("update inventory of host %s: %w", id, err)
	}
	if n == 0 {
		return sqldoc.HostNotFound(id)
	}
	return nil
}

// TouchHosts records heartbeats in one transaction: each host is Online and
// last seen at the later of its stored and given times. Unknown ids (hosts
// deleted meanwhile) are skipped.
func (s *Store) TouchHosts(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(seen))
	for _, id := range ids {
		if err := sqldoc.CheckID("host id", id); err != nil {
			return err
		}
	}
	t := formatTime(utcNow())
	err := s.write(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `UPDATE hosts SET last_seen = max(last_seen, ?), state = 'Online',
			updated_at = CASE WHEN state = 'Online' THEN updated_at ELSE ? END WHERE id = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, id := range ids {
			if _, err := stmt.ExecContext(ctx, formatTime(seen[id]), t, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("touch %d hosts: %w", len(seen), err)
	}
	return nil
}

// MarkHostsOffline turns every Online host last seen before cutoff Offline
// and returns them. Writes are serialized, so concurrent callers each get a
// host at most once.
func (s *Store) MarkHostsOffline(ctx context.Context, cutoff time.Time) ([]*tripcap.Host, error) {
	var hosts []*tripcap.Host
	err := s.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE hosts SET state = 'Offline', updated_at = ?
			WHERE state = 'Online' AND last_seen < ? RETURNING `+hostColumns, formatTime(utcNow()), formatTime(cutoff))
		if err != nil {
			return err
		}
		hosts, err = scanHosts(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mark hosts offline: %w", err)
	}
	slices.SortFunc(hosts, func(a, b *tripcap.Host) int { return strings.Compare(a.ID, b.ID) })
	return hosts, nil
}

// DeleteHost removes a host; its captures stay for their files. ENOTFOUND
// when the host is unknown.
func (s *Store) DeleteHost(ctx context.Context, id string) error {
	if err := sqldoc.CheckID("host id", id); err != nil {
		return err
	}
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM hosts WHERE id = ?`, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("delete host %s: %w", id, err)
	}
	if n == 0 {
		return sqldoc.HostNotFound(id)
	}
	return nil
}
