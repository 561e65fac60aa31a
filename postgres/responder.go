package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/sqldoc"
)

// Responders, their keys and their runs: the same layout and checks as
// sqlite/responder.go, so both pass storetest's Responder subtests alike.

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
	_, err = s.pool.Exec(ctx, `INSERT INTO responders (id, name, version, created_at, updated_at, doc) VALUES ($1, $2, 1, $3, $4, $5)`,
		r.ID, r.Name, r.CreatedAt, r.UpdatedAt, doc)
	switch uniqueViolation(err) {
	case "":
	case "responders_pkey":
		return tripcap.Errorf(tripcap.ECONFLICT, "a responder with id %q already exists", r.ID)
	default:
		return responderNameTaken(r.Name)
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
	// The version condition is in the UPDATE, so of two concurrent
	// updates from one version only one matches a row.
	tag, err := s.pool.Exec(ctx, `UPDATE responders SET name = $1, version = $2, updated_at = $3, doc = $4 WHERE id = $5 AND version = $6`,
		r.Name, upd.Version, upd.UpdatedAt, doc, r.ID, expectVersion)
	if uniqueViolation(err) != "" {
		return responderNameTaken(r.Name)
	}
	if err != nil {
		return fmt.Errorf("update responder %s: %w", r.Name, err)
	}
	if tag.RowsAffected() == 0 {
		var version int64
		err := s.pool.QueryRow(ctx, `SELECT version FROM responders WHERE id = $1`, r.ID).Scan(&version)
		if isNoRows(err) {
			return responderNotFound(r.ID)
		}
		if err != nil {
			return fmt.Errorf("update responder %s: %w", r.Name, err)
		}
		return tripcap.Errorf(tripcap.EPRECONDITION, "responder %s changed (version %d, expected %d)", r.Name, version, expectVersion)
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
	rows, err := s.pool.Query(ctx, sqldoc.Rebind(`SELECT id, name, version, doc FROM responders`+w.String()+` ORDER BY lower(name) COLLATE "C", id`), w.Args...)
	if err != nil {
		return nil, fmt.Errorf("find responders: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*tripcap.Responder, error) {
		var (
			r        tripcap.Responder
			id, name string
			version  int64
			doc      []byte
		)
		if err := row.Scan(&id, &name, &version, &doc); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(doc, &r); err != nil {
			return nil, fmt.Errorf("decode responder %s: %w", id, err)
		}
		r.ID, r.Name, r.Version = id, name, version
		return &r, nil
	})
	if err != nil {
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
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		// FOR KEY SHARE holds the responder against a concurrent delete.
		if err := tx.QueryRow(ctx, `SELECT 1 FROM responders WHERE id = $1 FOR KEY SHARE`, k.ResponderID).Scan(&one); err != nil {
			if isNoRows(err) {
				return responderNotFound(k.ResponderID)
			}
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO responder_keys (id, responder_id, name, hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
			k.ID, k.ResponderID, k.Name, k.Hash, k.CreatedAt)
		return err
	})
	switch uniqueViolation(err) {
	case "":
	case "responder_keys_pkey":
		return tripcap.Errorf(tripcap.ECONFLICT, "a responder key with id %q already exists", k.ID)
	case "responder_keys_hash":
		return tripcap.Errorf(tripcap.ECONFLICT, "a responder key with this hash already exists")
	default:
		return tripcap.Errorf(tripcap.ECONFLICT, "the responder already has a key named %q", k.Name)
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
	rows, err := s.pool.Query(ctx, `SELECT id, responder_id, name, hash, created_at FROM responder_keys WHERE `+where+` ORDER BY name COLLATE "C", id`, arg)
	if err != nil {
		return nil, fmt.Errorf("find responder keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tripcap.ResponderKey, error) {
		var k tripcap.ResponderKey
		err := r.Scan(&k.ID, &k.ResponderID, &k.Name, &k.Hash, &k.CreatedAt)
		k.CreatedAt = k.CreatedAt.UTC()
		return &k, err
	})
	if err != nil {
		return nil, fmt.Errorf("find responder keys: %w", err)
	}
	return out, nil
}

// FindResponderKeys lists a responder's keys, ordered by name.
func (s *Store) FindResponderKeys(ctx context.Context, responderID string) ([]*tripcap.ResponderKey, error) {
	if err := sqldoc.CheckID("responder id", responderID); err != nil {
		return nil, err
	}
	return s.findResponderKeys(ctx, "responder_id = $1", responderID)
}

// FindResponderKeyByHash returns the key with this hash, ENOTFOUND when none.
func (s *Store) FindResponderKeyByHash(ctx context.Context, hash string) (*tripcap.ResponderKey, error) {
	ks, err := s.findResponderKeys(ctx, "hash = $1", hash)
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
	var trigger, lease any
	if len(r.Trigger) > 0 {
		trigger = string(r.Trigger)
	}
	if !r.LeaseUntil.IsZero() {
		lease = r.LeaseUntil.UTC()
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO responder_runs (id, responder_id, idempotency_key, alert_key, received_at, doc, trigger_doc, open, owner, lease_until)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		r.ID, r.ResponderID, r.IdempotencyKey, r.AlertKey, r.ReceivedAt, doc, trigger, r.Open(), r.Owner, lease)
	switch uniqueViolation(err) {
	case "":
	case "responder_runs_pkey":
		return tripcap.Errorf(tripcap.ECONFLICT, "a responder run with id %q already exists", r.ID)
	default:
		return tripcap.Errorf(tripcap.ECONFLICT, "the responder already handled the alert %q", r.IdempotencyKey)
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
	tag, err := s.pool.Exec(ctx, `UPDATE responder_runs SET doc = $1, open = $2 WHERE id = $3`, doc, r.Open(), r.ID)
	if err != nil {
		return fmt.Errorf("update %s: %w", r, err)
	}
	if tag.RowsAffected() == 0 {
		return responderRunNotFound(r.ID)
	}
	return nil
}

// runColumns are what collectRuns reads.
const runColumns = `id, doc, trigger_doc, owner, lease_until`

func collectRuns(rows pgx.Rows, err error) ([]*tripcap.ResponderRun, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*tripcap.ResponderRun, error) {
		var (
			id, owner    string
			doc, trigger []byte
			lease        *time.Time
		)
		if err := row.Scan(&id, &doc, &trigger, &owner, &lease); err != nil {
			return nil, err
		}
		var r tripcap.ResponderRun
		if err := json.Unmarshal(doc, &r); err != nil {
			return nil, fmt.Errorf("decode responder run %s: %w", id, err)
		}
		r.ID, r.Owner = id, owner
		if len(trigger) > 0 {
			r.Trigger = json.RawMessage(trigger)
		}
		if lease != nil {
			r.LeaseUntil = lease.UTC()
		}
		return &r, nil
	})
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
		w.Add("received_at >= ?", f.Since.UTC())
	}
	if f.Limit < 0 {
		return nil, tripcap.Errorf(tripcap.EINVALID, "limit: %d is negative", f.Limit)
	}
	q := `SELECT ` + runColumns + ` FROM responder_runs` + w.String() + ` ORDER BY received_at DESC, id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	out, err := collectRuns(s.pool.Query(ctx, sqldoc.Rebind(q), w.Args...))
	if err != nil {
		return nil, fmt.Errorf("find responder runs: %w", err)
	}
	return out, nil
}

// ClaimResponderRuns leases to owner the open runs no one holds. Rows
// another transaction is claiming are skipped (SKIP LOCKED), and the
// conditions are checked again on the locked row, so no run is handed to
// two owners.
func (s *Store) ClaimResponderRuns(ctx context.Context, owner string, now, until time.Time, limit int) ([]*tripcap.ResponderRun, error) {
	if err := sqldoc.CheckClaimBatch(owner, now, until, limit); err != nil {
		return nil, err
	}
	runs, err := collectRuns(s.pool.Query(ctx, `UPDATE responder_runs r SET owner = $1, lease_until = $2
		FROM (SELECT id FROM responder_runs WHERE open AND (owner = '' OR lease_until IS NULL OR lease_until < $3)
			ORDER BY received_at, id LIMIT $4 FOR NO KEY UPDATE SKIP LOCKED) free
		WHERE r.id = free.id
		RETURNING r.id, r.doc, r.trigger_doc, r.owner, r.lease_until`, owner, until.UTC(), now.UTC(), limit))
	if err != nil {
		return nil, fmt.Errorf("claim responder runs for %s: %w", owner, err)
	}
	sqldoc.SortClaimed(runs)
	return runs, nil
}

// ClaimResponderRun takes or renews one run for owner, in one conditional
// UPDATE: a concurrent claim waits for this one and then sees its owner.
func (s *Store) ClaimResponderRun(ctx context.Context, id, owner string, now, until time.Time) error {
	if err := sqldoc.CheckID("responder run id", id); err != nil {
		return err
	}
	if err := sqldoc.CheckClaim(owner, now, until); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE responder_runs SET owner = $2, lease_until = $3
		WHERE id = $1 AND open AND (owner = '' OR owner = $2 OR lease_until IS NULL OR lease_until < $4)`, id, owner, until.UTC(), now.UTC())
	if err != nil {
		return fmt.Errorf("claim responder run %s for %s: %w", id, owner, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var (
		open   bool
		holder string
		lease  *time.Time
	)
	err = s.pool.QueryRow(ctx, `SELECT open, owner, lease_until FROM responder_runs WHERE id = $1`, id).Scan(&open, &holder, &lease)
	if isNoRows(err) {
		return responderRunNotFound(id)
	}
	if err != nil {
		return fmt.Errorf("claim responder run %s for %s: %w", id, owner, err)
	}
	if !open {
		return tripcap.Errorf(tripcap.ECONFLICT, "responder run %s has no work left", id)
	}
	return tripcap.Errorf(tripcap.ECONFLICT, "responder run %s is held by %s until %v", id, holder, lease)
}

// ReleaseResponderRuns ends owner's claims.
func (s *Store) ReleaseResponderRuns(ctx context.Context, owner string) error {
	if owner == "" {
		return tripcap.Errorf(tripcap.EINVALID, "owner: required")
	}
	if _, err := s.pool.Exec(ctx, `UPDATE responder_runs SET owner = '', lease_until = NULL WHERE owner = $1 AND open`, owner); err != nil {
		return fmt.Errorf("release responder runs of %s: %w", owner, err)
	}
	return nil
}
