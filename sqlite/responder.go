package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
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
	doc, err := encodeDoc("responder "+r.Name, r)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO responders (id, name, created_at, updated_at, doc) VALUES (?, ?, ?, ?, ?)`,
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
	var n int64
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE responders SET name = ?, updated_at = ?, doc = ? WHERE id = ?`,
			r.Name, formatTime(r.UpdatedAt), doc, r.ID)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if constraint(err) == "unique" {
		return responderNameTaken(r.Name)
	}
	if err != nil {
		return fmt.Errorf("update responder %s: %w", r.Name, err)
	}
	if n == 0 {
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
	rows, err := s.reader.QueryContext(ctx, `SELECT id, name, doc FROM responders`+w.String()+` ORDER BY lower(name), id`, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("find responders: %w", err)
	}
	defer rows.Close()
	var out []*tripcap.Responder
	for rows.Next() {
		var id, name, doc string
		if err := rows.Scan(&id, &name, &doc); err != nil {
			return nil, fmt.Errorf("find responders: %w", err)
		}
		var r tripcap.Responder
		if err := json.Unmarshal([]byte(doc), &r); err != nil {
			return nil, fmt.Errorf("decode responder %s: %w", id, err)
		}
		r.ID, r.Name = id, name
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
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO responder_runs (id, responder_id, idempotency_key, alert_key, received_at, doc) VALUES (?, ?, ?, ?, ?, ?)`,
			r.ID, r.ResponderID, r.IdempotencyKey, r.AlertKey, formatTime(r.ReceivedAt), doc)
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

// UpdateResponderRun replaces the run's document (its key columns are fixed).
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
		res, err := tx.ExecContext(ctx, `UPDATE responder_runs SET doc = ? WHERE id = ?`, doc, r.ID)
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
	q := `SELECT id, doc FROM responder_runs` + w.String() + ` ORDER BY received_at DESC, id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.reader.QueryContext(ctx, q, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("find responder runs: %w", err)
	}
	defer rows.Close()
	var out []*tripcap.ResponderRun
	for rows.Next() {
		var id, doc string
		if err := rows.Scan(&id, &doc); err != nil {
			return nil, fmt.Errorf("find responder runs: %w", err)
		}
		var r tripcap.ResponderRun
		if err := json.Unmarshal([]byte(doc), &r); err != nil {
			return nil, fmt.Errorf("decode responder run %s: %w", id, err)
		}
		r.ID = id
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find responder runs: %w", err)
	}
	return out, nil
}
