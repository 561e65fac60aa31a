package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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
	doc, err := encodeDoc("responder "+r.Name, r)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO responders (id, name, created_at, updated_at, doc) VALUES ($1, $2, $3, $4, $5)`,
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

// UpdateResponder replaces the responder with r.ID.
func (s *Store) UpdateResponder(ctx context.Context, r *tripcap.Responder) error {
	if err := sqldoc.CheckID("responder id", r.ID); err != nil {
		return err
	}
	if err := checkAlertName("responder", r.Name); err != nil {
		return err
	}
	r.UpdatedAt = utcNow()
	doc, err := encodeDoc("responder "+r.Name, r)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE responders SET name = $1, updated_at = $2, doc = $3 WHERE id = $4`,
		r.Name, r.UpdatedAt, doc, r.ID)
	if uniqueViolation(err) != "" {
		return responderNameTaken(r.Name)
	}
	if err != nil {
		return fmt.Errorf("update responder %s: %w", r.Name, err)
	}
	if tag.RowsAffected() == 0 {
		return responderNotFound(r.ID)
	}
	return nil
}

// FindResponders lists the responders f selects, ordered by name.
func (s *Store) FindResponders(ctx context.Context, f tripcap.ResponderFilter) ([]*tripcap.Responder, error) {
	w, err := namedFilter("responder", f.ID, f.Name)
	if err != nil {
		return nil, err
	}
	rows, err := s.findNamed(ctx, "responders", w)
	if err != nil {
		return nil, fmt.Errorf("find responders: %w", err)
	}
	out := make([]*tripcap.Responder, 0, len(rows))
	for _, row := range rows {
		var r tripcap.Responder
		if err := json.Unmarshal(row.doc, &r); err != nil {
			return nil, fmt.Errorf("decode responder %s: %w", row.id, err)
		}
		r.ID, r.Name = row.id, row.name
		out = append(out, &r)
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
	_, err = s.pool.Exec(ctx, `INSERT INTO responder_runs (id, responder_id, idempotency_key, alert_key, received_at, doc) VALUES ($1, $2, $3, $4, $5, $6)`,
		r.ID, r.ResponderID, r.IdempotencyKey, r.AlertKey, r.ReceivedAt, doc)
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

// UpdateResponderRun replaces the run's document (its key columns are fixed).
func (s *Store) UpdateResponderRun(ctx context.Context, r *tripcap.ResponderRun) error {
	if err := checkRun(r); err != nil {
		return err
	}
	doc, err := encodeDoc("responder run "+r.ID, r)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE responder_runs SET doc = $1 WHERE id = $2`, doc, r.ID)
	if err != nil {
		return fmt.Errorf("update %s: %w", r, err)
	}
	if tag.RowsAffected() == 0 {
		return responderRunNotFound(r.ID)
	}
	return nil
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
	q := `SELECT id, doc FROM responder_runs` + w.String() + ` ORDER BY received_at DESC, id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.pool.Query(ctx, sqldoc.Rebind(q), w.Args...)
	if err != nil {
		return nil, fmt.Errorf("find responder runs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*tripcap.ResponderRun, error) {
		var id string
		var doc []byte
		if err := row.Scan(&id, &doc); err != nil {
			return nil, err
		}
		var r tripcap.ResponderRun
		if err := json.Unmarshal(doc, &r); err != nil {
			return nil, fmt.Errorf("decode responder run %s: %w", id, err)
		}
		r.ID = id
		return &r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("find responder runs: %w", err)
	}
	return out, nil
}
