package postgres

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/sqldoc"
)

const hostColumns = "id, name, location, labels, subscription_id, resource_group, inventory, state, last_seen, revision, created_at, updated_at"

func scanHost(r pgx.Row) (*tripcap.Host, error) {
	var h tripcap.Host
	var labels, inv []byte
	if err := r.Scan(&h.ID, &h.Name, &h.Location, &labels, &h.SubscriptionID, &h.ResourceGroup, &inv,
		&h.State, &h.LastSeen, &h.Revision, &h.CreatedAt, &h.UpdatedAt); err != nil {
		return nil, err
	}
	utc(&h.LastSeen)
	utc(&h.CreatedAt)
	utc(&h.UpdatedAt)
	var err error
	if h.Labels, err = sqldoc.DecodeLabels(labels); err != nil {
		return nil, fmt.Errorf("host %s: %w", h.ID, err)
	}
	if h.Inventory, err = sqldoc.DecodeInventory(inv); err != nil {
		return nil, fmt.Errorf("host %s: %w", h.ID, err)
	}
	return &h, nil
}

func collectHosts(rows pgx.Rows, err error) ([]*tripcap.Host, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tripcap.Host, error) { return scanHost(r) })
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
	_, err = s.pool.Exec(ctx, `INSERT INTO hosts (`+hostColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		h.ID, h.Name, h.Location, labels, h.SubscriptionID, h.ResourceGroup, inv, string(h.State),
		h.LastSeen, h.Revision, h.CreatedAt, h.UpdatedAt)
	switch uniqueViolation(err) {
	case "":
	case "hosts_pkey":
		return sqldoc.HostIDTaken(h.ID)
	default:
		return sqldoc.HostNameTaken(h.Name)
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
	hosts, err := collectHosts(s.pool.Query(ctx, sqldoc.Rebind(`SELECT `+hostColumns+` FROM hosts`+w.String()+sqldoc.OrderLimit(sqldoc.FetchLimit(f.Limit))), w.Args...))
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
	err := s.pool.QueryRow(ctx, `SELECT revision FROM hosts WHERE id = $1`, id).Scan(&rev)
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
	tag, err := s.pool.Exec(ctx, `UPDATE hosts SET inventory = $1, state = 'Online', last_seen = GREATEST(last_seen, $2), updated_at = $3 WHERE id = $4`,
		doc, seen, utcNow(), id)
	if err != nil {
		return fmt.Errorf("update inventory of host %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return sqldoc.HostNotFound(id)
	}
	return nil
}

// TouchHosts records heartbeats in one transaction: each host is Online and
// last seen at the later of its stored and given times. Unknown ids (hosts
// deleted meanwhile) are skipped. Rows are locked in id order, so concurrent
// batches from several replicas do not deadlock.
func (s *Store) TouchHosts(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(seen))
	times := make([]time.Time, len(ids))
	for i, id := range ids {
		if err := sqldoc.CheckID("host id", id); err != nil {
			return err
		}
		times[i] = seen[id]
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM hosts WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, ids); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE hosts h SET last_seen = GREATEST(h.last_seen, v.seen), state = 'Online',
				updated_at = CASE WHEN h.state = 'Online' THEN h.updated_at ELSE $3 END
			FROM unnest($1::text[], $2::timestamptz[]) AS v (id, seen)
			WHERE h.id = v.id`, ids, times, utcNow())
		return err
	})
	if err != nil {
		return fmt.Errorf("touch %d hosts: %w", len(seen), err)
	}
	return nil
}

// MarkHostsOffline turns every Online host last seen before cutoff Offline
// and returns them. Concurrent callers (in any replica) each get a host at
// most once: a caller skips the rows another holds, and rechecks the rest.
func (s *Store) MarkHostsOffline(ctx context.Context, cutoff time.Time) ([]*tripcap.Host, error) {
	cols := "h." + strings.ReplaceAll(hostColumns, ", ", ", h.")
	hosts, err := collectHosts(s.pool.Query(ctx, `UPDATE hosts h SET state = 'Offline', updated_at = $2
		FROM (SELECT id FROM hosts WHERE state = 'Online' AND last_seen < $1 ORDER BY id FOR NO KEY UPDATE SKIP LOCKED) stale
		WHERE h.id = stale.id
		RETURNING `+cols, cutoff, utcNow()))
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
	tag, err := s.pool.Exec(ctx, `DELETE FROM hosts WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete host %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return sqldoc.HostNotFound(id)
	}
	return nil
}
