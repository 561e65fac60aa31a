package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/sqldoc"
)

// Responders, their keys and their runs: the same layout and checks as
// postgres/responder.go, so both pass storetest's Responder subtests alike.

func responderNameTaken(name string) error {
	return tripcap.Errorf(tripcap.ECONFLICT, "a responder named %q already exists (names are unique regardless of case)", name)
}

func responderNotFound(ref string) error {
	return tripcap.Errorf(tripcap.ENOTFOUND, "responder %q not found", ref)
}

func responderKeyNotFound(ref string) error {
	return tripcap.Errorf(tripcap.ENOTFOUND, "responder key %q not found", ref)
}

func responderRunNotFound(ref string) error {
	return tripcap.Errorf(tripcap.ENOTFOUND, "responder run %q not found", ref)
}

// CreateResponder inserts r. ECONFLICT when its id or name (in any case) is taken.
func (s *Store) CreateResponder(ctx context.Context, r *tripcap.Responder) error {
	if err := sqldoc.CheckID("responder id", r.ID); err != nil {
		return err
	}
	if err := checkAlertName("responder", r.Name); err != nil {
		return err
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = utcNow()
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = r.CreatedAt
	}
	r.Version = 1
	doc, err := encodeDoc("responder "+r.Name, r)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO responders (id, name, version, created_at, updated_at, doc) VALUES (?, ?, 1, ?, ?, ?)`,
			r.ID, r.Name, formatTime(r.CreatedAt), formatTime(r.UpdatedAt), doc)
		return err
	})
	switch constraint(err) {
	case "unique":
		return responderNameTaken(r.Name)
	case "primarykey":
		return tripcap.Errorf(tripcap.ECONFLICT, "a responder with id %q already exists", r.ID)
	}
	if err != nil {
		return fmt.Errorf("create responder %s: %w", r.Name, err)
	}
	return nil
}

// UpdateResponder replaces the responder with r.ID if it is at expectVersion.
func (s *Store) UpdateResponder(ctx context.Context, r *tripcap.Responder, expectVersion int64) error {
	if err := sqldoc.CheckID("responder id", r.ID); err != nil {
		return err
	}
	if err := checkAlertName("responder", r.Name); err != nil {
		return err
	}
	upd := *r
	upd.UpdatedAt, upd.Version = utcNow(), expectVersion+1
	doc, err := encodeDoc("responder "+r.Name, &upd)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		var version int64
		err := tx.QueryRowContext(ctx, `SELECT version FROM responders WHERE id = ?`, r.ID).Scan(&version)
		if isNoRows(err) {
			return responderNotFound(r.ID)
		}
		if err != nil {
			return err
		}
		if version != expectVersion {
			return tripcap.Errorf(tripcap.EPRECONDITION, "responder %s changed (version %d, expected %d)", r.Name, version, expectVersion)
		}
		_, err = tx.ExecContext(ctx, `UPDATE responders SET name = ?, version = ?, updated_at = ?, doc = ? WHERE id = ?`,
			r.Name, upd.Version, formatTime(upd.UpdatedAt), doc, r.ID)
		return err
	})
	if constraint(err) == "unique" {
		return responderNameTaken(r.Name)
	}
	if c := tripcap.ErrorCode(err); c == tripcap.ENOTFOUND || c == tripcap.EPRECONDITION {
		return err
	}
	if err != nil {
		return fmt.Errorf("update responder %s: %w", r.Name, err)
	}
	r.UpdatedAt, r.Version = upd.UpdatedAt, upd.Version
	return nil
}

// FindResponders lists the responders f selects, ordered by name.
func (s *Store) FindResponders(ctx context.Context, f tripcap.ResponderFilter) ([]*tripcap.Responder, error) {
	w, err := namedFilter("responder", f.ID, f.Name)
	if err != nil {
		return nil, err
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT id, name, version, doc FROM responders`+w.String()+` ORDER BY lower(name), id`, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("find responders: %w", err)
	}
	defer rows.Close()
	var out []*tripcap.Responder
	for rows.Next() {
		var id, name, doc string
		var version int64
		if err := rows.Scan(&id, &name, &version, &doc); err != nil {
			return nil, fmt.Errorf("find responders: %w", err)
		}
		var r tripcap.Responder
		if err := json.Unmarshal([]byte(doc), &r); err != nil {
			return nil, fmt.Errorf("decode responder %s: %w", id, err)
		}
		r.ID, r.Name, r.Version = id, name, version
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find responders: %w", err)
	}
	return out, nil
}

// FindResponder returns the one responder f selects, ENOTFOUND when none.
func (s *Store) FindResponder(ctx context.Context, f tripcap.ResponderFilter) (*tripcap.Responder, error) {
	rs, err := s.FindResponders(ctx, f)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, responderNotFound(refOf(f.ID, f.Name))
	}
	return rs[0], nil
}

// DeleteResponder removes a responder and (by cascade) its keys.
func (s *Store) DeleteResponder(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "responders", "responder", id, responderNotFound)
}

// CreateResponderKey stores a key's hash.
func (s *Store) CreateResponderKey(ctx context.Context, k *tripcap.ResponderKey) error {
	if err := sqldoc.CheckID("responder key id", k.ID); err != nil {
		return err
	}
	if err := sqldoc.CheckID("responder id", k.ResponderID); err != nil {
		return err
	}
	if err := checkAlertName("responder key", k.Name); err != nil {
		return err
	}
	if k.Hash == "" {
		return tripcap.Errorf(tripcap.EINVALID, "responder key hash: required")
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = utcNow()
	}
	k.CreatedAt = k.CreatedAt.UTC()
	err := s.write(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM responders WHERE id = ?`, k.ResponderID).Scan(&one); err != nil {
			if isNoRows(err) {
				return responderNotFound(k.ResponderID)
			}
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO responder_keys (id, responder_id, name, hash, created_at) VALUES (?, ?, ?, ?, ?)`,
			k.ID, k.ResponderID, k.Name, k.Hash, formatTime(k.CreatedAt))
		return err
	})
	switch constraint(err) {
	case "unique":
		if strings.Contains(err.Error(), "responder_keys.hash") {
			return tripcap.Errorf(tripcap.ECONFLICT, "a responder key with this hash already exists")
		}
		return tripcap.Errorf(tripcap.ECONFLICT, "the responder already has a key named %q", k.Name)
	case "primarykey":
		return tripcap.Errorf(tripcap.ECONFLICT, "a responder key with id %q already exists", k.ID)
	}
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
		return err
	}
	if err != nil {
		return fmt.Errorf("create responder key %s: %w", k.Name, err)
	}
	return nil
}

func (s *Store) findResponderKeys(ctx context.Context, where string, arg string) ([]*tripcap.ResponderKey, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT id, responder_id, name, hash, created_at FROM responder_keys WHERE `+where+` ORDER BY name, id`, arg)
	if err != nil {
		return nil, fmt.Errorf("find responder keys: %w", err)
	}
	defer rows.Close()
	var out []*tripcap.ResponderKey
	for rows.Next() {
		var k tripcap.ResponderKey
		if err := rows.Scan(&k.ID, &k.ResponderID, &k.Name, &k.Hash, timeText{&k.CreatedAt}); err != nil {
			return nil, fmt.Errorf("find responder keys: %w", err)
		}
		out = append(out, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find responder keys: %w", err)
	}
	return out, nil
}

// FindResponderKeys lists a responder's keys, ordered by name.
func (s *Store) FindResponderKeys(ctx context.Context, responderID string) ([]*tripcap.ResponderKey, error) {
	if err := sqldoc.CheckID("responder id", responderID); err != nil {
		return nil, err
	}
	return s.findResponderKeys(ctx, "responder_id = ?", responderID)
}

// FindResponderKeyByHash returns the key with this hash, ENOTFOUND when none.
func (s *Store) FindResponderKeyByHash(ctx context.Context, hash string) (*tripcap.ResponderKey, error) {
	ks, err := s.findResponderKeys(ctx, "hash = ?", hash)
	if err != nil {
		return nil, err
	}
	if len(ks) == 0 {
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no responder key with this hash")
	}
	return ks[0], nil
}

// DeleteResponderKey revokes a key. ENOTFOUND when unknown.
func (s *Store) DeleteResponderKey(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "responder_keys", "responder key", id, responderKeyNotFound)
}

func checkRun(r *tripcap.ResponderRun) error {
	if err := sqldoc.CheckID("responder run id", r.ID); err != nil {
		return err
	}
	if err := sqldoc.CheckID("responder id", r.ResponderID); err != nil {
		return err
	}
	if r.ReceivedAt.IsZero() {
		return tripcap.Errorf(tripcap.EINVALID, "receivedAt: required")
	}
	for _, f := range []struct{ name, v string }{{"idempotencyKey", r.IdempotencyKey}, {"alertKey", r.AlertKey}} {
		if strings.ContainsRune(f.v, 0) || !utf8.ValidString(f.v) {
			return tripcap.Errorf(tripcap.EINVALID, "%s: must be valid UTF-8 text without NUL", f.name)
		}
	}
	if len(r.Trigger) > 0 && !json.Valid(r.Trigger) {
		return tripcap.Errorf(tripcap.EINVALID, "trigger: not JSON")
	}
	return nil
}

// CreateResponderRun inserts a run; ECONFLICT for a repeated idempotency key.
func (s *Store) CreateResponderRun(ctx context.Context, r *tripcap.ResponderRun) error {
	if err := checkRun(r); err != nil {
		return err
	}
	doc, err := encodeDoc("responder run "+r.ID, r)
	if err != nil {
		return err
	}
	lease := ""
	if !r.LeaseUntil.IsZero() {
		lease = formatTime(r.LeaseUntil)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO responder_runs (id, responder_id, idempotency_key, alert_key, received_at, doc, trigger_doc, open, owner, lease_until)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.ResponderID, r.IdempotencyKey, r.AlertKey, formatTime(r.ReceivedAt), doc, string(r.Trigger), r.Open(), r.Owner, lease)
		return err
	})
	switch constraint(err) {
	case "unique":
		return tripcap.Errorf(tripcap.ECONFLICT, "the responder already handled the alert %q", r.IdempotencyKey)
	case "primarykey":
		return tripcap.Errorf(tripcap.ECONFLICT, "a responder run with id %q already exists", r.ID)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", r, err)
	}
	return nil
}

// UpdateResponderRun replaces the run's document (its key columns, trigger
// and claim are fixed) and whether it has work left.
func (s *Store) UpdateResponderRun(ctx context.Context, r *tripcap.ResponderRun) error {
	if err := checkRun(r); err != nil {
		return err
	}
	doc, err := encodeDoc("responder run "+r.ID, r)
	if err != nil {
		return err
	}
	var n int64
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE responder_runs SET doc = ?, open = ? WHERE id = ?`, doc, r.Open(), r.ID)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("update %s: %w", r, err)
	}
	if n == 0 {
		return responderRunNotFound(r.ID)
	}
	return nil
}

// runColumns are what scanRuns reads.
const runColumns = `id, doc, trigger_doc, owner, lease_until`

func scanRuns(rows *sql.Rows) ([]*tripcap.ResponderRun, error) {
	defer rows.Close()
	var out []*tripcap.ResponderRun
	for rows.Next() {
		var id, doc, trigger, owner, lease string
		if err := rows.Scan(&id, &doc, &trigger, &owner, &lease); err != nil {
			return nil, err
		}
		var r tripcap.ResponderRun
		if err := json.Unmarshal([]byte(doc), &r); err != nil {
			return nil, fmt.Errorf("decode responder run %s: %w", id, err)
		}
		r.ID, r.Owner = id, owner
		if trigger != "" {
			r.Trigger = json.RawMessage(trigger)
		}
		if lease != "" {
			if err := (timeText{&r.LeaseUntil}).Scan(lease); err != nil {
				return nil, fmt.Errorf("decode responder run %s: %w", id, err)
			}
		}
		out = append(out, &r)
	}
	return out, rows.Err()
}

// FindResponderRuns lists the runs f selects, newest first.
func (s *Store) FindResponderRuns(ctx context.Context, f tripcap.ResponderRunFilter) ([]*tripcap.ResponderRun, error) {
	w := &sqldoc.Where{}
	if f.ID != nil {
		if err := sqldoc.CheckID("responder run id", *f.ID); err != nil {
			return nil, err
		}
		w.Add("id = ?", *f.ID)
	}
	if f.ResponderID != nil {
		if err := sqldoc.CheckID("responder id", *f.ResponderID); err != nil {
			return nil, err
		}
		w.Add("responder_id = ?", *f.ResponderID)
	}
	if f.AlertKey != nil {
		w.Add("alert_key = ?", *f.AlertKey)
	}
	if f.Since != nil {
		w.Add("received_at >= ?", formatTime(*f.Since))
	}
	if f.Limit < 0 {
		return nil, tripcap.Errorf(tripcap.EINVALID, "limit: %d is negative", f.Limit)
	}
	q := `SELECT ` + runColumns + ` FROM responder_runs` + w.String() + ` ORDER BY received_at DESC, id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.reader.QueryContext(ctx, q, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("find responder runs: %w", err)
	}
	out, err := scanRuns(rows)
	if err != nil {
		return nil, fmt.Errorf("find responder runs: %w", err)
	}
	return out, nil
}

// ClaimResponderRuns leases to owner the open runs no one holds. The
// single writer makes the select-and-update atomic.
func (s *Store) ClaimResponderRuns(ctx context.Context, owner string, now, until time.Time, limit int) ([]*tripcap.ResponderRun, error) {
	if err := sqldoc.CheckClaimBatch(owner, now, until, limit); err != nil {
		return nil, err
	}
	var runs []*tripcap.ResponderRun
	err := s.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE responder_runs SET owner = ?, lease_until = ?
			WHERE id IN (SELECT id FROM responder_runs WHERE open = 1 AND (owner = '' OR lease_until < ?) ORDER BY received_at, id LIMIT ?)
			RETURNING `+runColumns, owner, formatTime(until), formatTime(now), limit)
		if err != nil {
			return err
		}
		runs, err = scanRuns(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim responder runs for %s: %w", owner, err)
	}
	sqldoc.SortClaimed(runs)
	return runs, nil
}

// ClaimResponderRun takes or renews one run for owner.
func (s *Store) ClaimResponderRun(ctx context.Context, id, owner string, now, until time.Time) error {
	if err := sqldoc.CheckID("responder run id", id); err != nil {
		return err
	}
	if err := sqldoc.CheckClaim(owner, now, until); err != nil {
		return err
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var open bool
		var holder, lease string
		err := tx.QueryRowContext(ctx, `SELECT open, owner, lease_until FROM responder_runs WHERE id = ?`, id).Scan(&open, &holder, &lease)
		if isNoRows(err) {
			return responderRunNotFound(id)
		}
		if err != nil {
			return err
		}
		if !open {
			return tripcap.Errorf(tripcap.ECONFLICT, "responder run %s has no work left", id)
		}
		if holder != "" && holder != owner && lease >= formatTime(now) {
			return tripcap.Errorf(tripcap.ECONFLICT, "responder run %s is held by %s until %s", id, holder, lease)
		}
		_, err = tx.ExecContext(ctx, `UPDATE responder_runs SET owner = ?, lease_until = ? WHERE id = ?`, owner, formatTime(until), id)
		return err
	})
	if c := tripcap.ErrorCode(err); c == tripcap.ENOTFOUND || c == tripcap.ECONFLICT {
		return err
	}
	if err != nil {
		return fmt.Errorf("claim responder run %s for %s: %w", id, owner, err)
	}
	return nil
}

// ReleaseResponderRuns ends owner's claims.
func (s *Store) ReleaseResponderRuns(ctx context.Context, owner string) error {
	if owner == "" {
		return tripcap.Errorf(tripcap.EINVALID, "owner: required")
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE responder_runs SET owner = '', lease_until = '' WHERE owner = ? AND open = 1`, owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("release responder runs of %s: %w", owner, err)
	}
	return nil
}
