package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tripcap/tripcap"
)

// Responders, their keys and their runs. A run's claim (owner, lease_until)
// is set and compared on the database's clock (Dialect.Now, Dialect.Until)
// only, so that replicas whose clocks disagree still agree on who holds it.

var (
	responderNotFound    = notFound("responder")
	responderKeyNotFound = notFound("responder key")
	responderRunNotFound = notFound("responder run")
)

// CreateResponder inserts r. ECONFLICT when its id or name (in any case) is taken.
func (s *Store) CreateResponder(ctx context.Context, r *tripcap.Responder) error {
	if err := newNamed("responder", r.ID, r.Name, &r.CreatedAt, &r.UpdatedAt); err != nil {
		return err
	}
	r.Version = 1
	doc, err := s.sealedResponder(r)
	if err != nil {
		return err
	}
	return s.insertNamed(ctx, responderTable, r.ID, r.Name, r.CreatedAt, r.UpdatedAt, doc)
}

// UpdateResponder replaces the responder with r.ID if it is at expectVersion,
// in one conditional UPDATE.
func (s *Store) UpdateResponder(ctx context.Context, r *tripcap.Responder, expectVersion int64) error {
	at, version, err := s.updateNamed(ctx, responderTable, r.ID, r.Name, expectVersion, func(at time.Time, version int64) (string, error) {
		upd := *r
		upd.UpdatedAt, upd.Version = at, version
		return s.sealedResponder(&upd)
	})
	if err != nil {
		return err
	}
	r.UpdatedAt, r.Version = at, version
	return nil
}

// FindResponders lists the responders f selects, ordered by name.
func (s *Store) FindResponders(ctx context.Context, f tripcap.ResponderFilter) ([]*tripcap.Responder, error) {
	w, err := namedFilter("responder", f.ID, f.Name)
	if err != nil {
		return nil, err
	}
	rs, err := findNamed(ctx, s, responderTable, w, func(r *tripcap.Responder, id, name string, version int64) {
		r.ID, r.Name, r.Version = id, name, version
	})
	for _, r := range rs {
		if err := s.openFields(responderSecrets(r)); err != nil {
			return nil, fmt.Errorf("find responders: %w", err)
		}
	}
	return rs, err
}

// FindResponder returns the one responder f selects, ENOTFOUND when none.
func (s *Store) FindResponder(ctx context.Context, f tripcap.ResponderFilter) (*tripcap.Responder, error) {
	rs, err := s.FindResponders(ctx, f)
	return first(rs, err, responderNotFound, refOf(f.ID, f.Name))
}

// DeleteResponder removes a responder and (by cascade) its keys.
func (s *Store) DeleteResponder(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "responders", "responder", id, responderNotFound)
}

// CreateResponderKey stores a key's hash.
func (s *Store) CreateResponderKey(ctx context.Context, k *tripcap.ResponderKey) error {
	if err := CheckID("responder key id", k.ID); err != nil {
		return err
	}
	if err := CheckID("responder id", k.ResponderID); err != nil {
		return err
	}
	if err := checkName("responder key", k.Name); err != nil {
		return err
	}
	if k.Hash == "" {
		return tripcap.Errorf(tripcap.EINVALID, "responder key hash: required")
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = utcNow()
	}
	k.CreatedAt = k.CreatedAt.UTC()
	// One statement: the key is inserted only beside its responder.
	n, err := s.exec(ctx, `INSERT INTO responder_keys (id, responder_id, name, hash, created_at)
		SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM responders WHERE id = ?)`,
		k.ID, k.ResponderID, k.Name, k.Hash, s.t(k.CreatedAt), k.ResponderID)
	if err != nil {
		switch kind, name := s.d.Violation(err); kind {
		case "unique":
			if strings.Contains(name, "hash") {
				return tripcap.Errorf(tripcap.ECONFLICT, "a responder key with this hash already exists")
			}
			return tripcap.Errorf(tripcap.ECONFLICT, "the responder already has a key named %q", k.Name)
		case "primarykey":
			return tripcap.Errorf(tripcap.ECONFLICT, "a responder key with id %q already exists", k.ID)
		}
		return fmt.Errorf("create responder key %s: %w", k.Name, err)
	}
	if n == 0 {
		return responderNotFound(k.ResponderID)
	}
	return nil
}

func (s *Store) findResponderKeys(ctx context.Context, where string, arg string) ([]*tripcap.ResponderKey, error) {
	rows, err := s.query(ctx, `SELECT id, responder_id, name, hash, created_at FROM responder_keys WHERE `+where+` ORDER BY name, id`, arg)
	out, err := collect(rows, err, func(r rowScanner) (*tripcap.ResponderKey, error) {
		var k tripcap.ResponderKey
		return &k, r.Scan(&k.ID, &k.ResponderID, &k.Name, &k.Hash, timeCol{&k.CreatedAt})
	})
	if err != nil {
		return nil, fmt.Errorf("find responder keys: %w", err)
	}
	return out, nil
}

// FindResponderKeys lists a responder's keys, ordered by name.
func (s *Store) FindResponderKeys(ctx context.Context, responderID string) ([]*tripcap.ResponderKey, error) {
	if err := CheckID("responder id", responderID); err != nil {
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
	if err := CheckID("responder run id", r.ID); err != nil {
		return err
	}
	if err := CheckID("responder id", r.ResponderID); err != nil {
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

// seconds is a lease as Dialect.Until's parameter.
func seconds(lease time.Duration) float64 { return lease.Seconds() }

// runColumns are what scanRun reads.
const runColumns = `id, doc, trigger_doc, owner, lease_until`

func scanRun(row rowScanner) (*tripcap.ResponderRun, error) {
	var id, owner string
	var doc, trigger []byte
	var lease *time.Time
	if err := row.Scan(&id, &doc, &trigger, &owner, nullTimeCol{&lease}); err != nil {
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
		r.LeaseUntil = *lease
	}
	return &r, nil
}

// CreateResponderRun inserts a run, claimed by r.Owner for lease when it is
// set; ECONFLICT for a repeated idempotency key.
func (s *Store) CreateResponderRun(ctx context.Context, r *tripcap.ResponderRun, lease time.Duration) error {
	if err := checkRun(r); err != nil {
		return err
	}
	doc, err := encodeDoc("responder run "+r.ID, r)
	if err != nil {
		return err
	}
	vals := []any{r.ID, r.ResponderID, r.IdempotencyKey, r.AlertKey, s.t(r.ReceivedAt), doc, r.Open(), r.Owner}
	trigger, until := s.d.None, s.d.None
	if len(r.Trigger) > 0 {
		trigger, vals = "?", append(vals, string(r.Trigger))
	}
	if r.Owner != "" {
		if err := CheckClaim(r.Owner, lease); err != nil {
			return err
		}
		until, vals = s.d.Until, append(vals, seconds(lease))
	}
	row := s.db.QueryRowContext(ctx, s.q(`INSERT INTO responder_runs (id, responder_id, idempotency_key, alert_key, received_at, doc, open, owner, trigger_doc, lease_until)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, `+trigger+`, `+until+`) RETURNING lease_until`), vals...)
	var leased *time.Time
	err = row.Scan(nullTimeCol{&leased})
	switch s.violation(err) {
	case "unique":
		return tripcap.Errorf(tripcap.ECONFLICT, "the responder already handled the alert %q", r.IdempotencyKey)
	case "primarykey":
		return tripcap.Errorf(tripcap.ECONFLICT, "a responder run with id %q already exists", r.ID)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", r, err)
	}
	r.LeaseUntil = time.Time{}
	if leased != nil {
		r.LeaseUntil = *leased
	}
	return nil
}

// UpdateResponderRun replaces the run's document (its key columns, trigger
// and claim are fixed) and whether it has work left, in one UPDATE fenced
// by owner's lease on the database's clock.
func (s *Store) UpdateResponderRun(ctx context.Context, r *tripcap.ResponderRun, owner string) error {
	if err := checkRun(r); err != nil {
		return err
	}
	if err := checkOwner(owner); err != nil {
		return err
	}
	doc, err := encodeDoc("responder run "+r.ID, r)
	if err != nil {
		return err
	}
	n, err := s.exec(ctx, `UPDATE responder_runs SET doc = ?, open = ? WHERE id = ? AND owner = ? AND lease_until > `+s.d.Now,
		doc, r.Open(), r.ID, owner)
	if err != nil {
		return fmt.Errorf("update %s: %w", r, err)
	}
	if n > 0 {
		return nil
	}
	var one int
	err = s.db.QueryRowContext(ctx, s.q(`SELECT 1 FROM responder_runs WHERE id = ?`), r.ID).Scan(&one)
	if isNoRows(err) {
		return responderRunNotFound(r.ID)
	}
	if err != nil {
		return fmt.Errorf("update %s: %w", r, err)
	}
	return tripcap.Errorf(tripcap.ECONFLICT, "update %s by %s: %s", r, owner, tripcap.ErrLeaseLost)
}

// FindResponderRuns lists the runs f selects, newest first.
func (s *Store) FindResponderRuns(ctx context.Context, f tripcap.ResponderRunFilter) ([]*tripcap.ResponderRun, error) {
	w := &Where{}
	if f.ID != nil {
		if err := CheckID("responder run id", *f.ID); err != nil {
			return nil, err
		}
		w.Add("id = ?", *f.ID)
	}
	if f.ResponderID != nil {
		if err := CheckID("responder id", *f.ResponderID); err != nil {
			return nil, err
		}
		w.Add("responder_id = ?", *f.ResponderID)
	}
	if f.AlertKey != nil {
		w.Add("alert_key = ?", *f.AlertKey)
	}
	if f.Since != nil {
		w.Add("received_at >= ?", s.t(*f.Since))
	}
	if f.Limit < 0 {
		return nil, tripcap.Errorf(tripcap.EINVALID, "limit: %d is negative", f.Limit)
	}
	q := `SELECT ` + runColumns + ` FROM responder_runs` + w.String() + ` ORDER BY received_at DESC, id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.query(ctx, q, w.Args...)
	out, err := collect(rows, err, scanRun)
	if err != nil {
		return nil, fmt.Errorf("find responder runs: %w", err)
	}
	return out, nil
}

// ClaimResponderRuns leases to owner the open runs no one holds, in one
// UPDATE. Rows another transaction is claiming are skipped (SKIP LOCKED
// where several writers run at once), so no run is handed to two owners.
func (s *Store) ClaimResponderRuns(ctx context.Context, owner string, lease time.Duration, limit int) ([]*tripcap.ResponderRun, error) {
	if err := CheckClaimBatch(owner, lease, limit); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`UPDATE responder_runs SET owner = ?, lease_until = `+s.d.Until+`
		WHERE id IN (SELECT id FROM responder_runs WHERE open = `+s.d.True+` AND (owner = '' OR lease_until IS NULL OR lease_until < `+s.d.Now+`)
			ORDER BY received_at, id LIMIT ?`+s.d.SkipLocked+`)
		RETURNING `+runColumns), owner, seconds(lease), limit)
	runs, err := collect(rows, err, scanRun)
	if err != nil {
		return nil, fmt.Errorf("claim responder runs for %s: %w", owner, err)
	}
	SortClaimed(runs)
	return runs, nil
}

// ClaimResponderRun takes or renews one run for owner, in one conditional
// UPDATE: a concurrent claim waits for this one and then sees its owner.
func (s *Store) ClaimResponderRun(ctx context.Context, id, owner string, lease time.Duration) error {
	if err := CheckID("responder run id", id); err != nil {
		return err
	}
	if err := CheckClaim(owner, lease); err != nil {
		return err
	}
	n, err := s.exec(ctx, `UPDATE responder_runs SET owner = ?, lease_until = `+s.d.Until+`
		WHERE id = ? AND open = `+s.d.True+` AND (owner = '' OR owner = ? OR lease_until IS NULL OR lease_until < `+s.d.Now+`)`,
		owner, seconds(lease), id, owner)
	if err != nil {
		return fmt.Errorf("claim responder run %s for %s: %w", id, owner, err)
	}
	if n > 0 {
		return nil
	}
	var (
		open   bool
		holder string
		until  *time.Time
	)
	err = s.db.QueryRowContext(ctx, s.q(`SELECT open, owner, lease_until FROM responder_runs WHERE id = ?`), id).Scan(&open, &holder, nullTimeCol{&until})
	if isNoRows(err) {
		return responderRunNotFound(id)
	}
	if err != nil {
		return fmt.Errorf("claim responder run %s for %s: %w", id, owner, err)
	}
	if !open {
		return tripcap.Errorf(tripcap.ECONFLICT, "responder run %s has no work left", id)
	}
	return tripcap.Errorf(tripcap.ECONFLICT, "responder run %s is held by %s until %v", id, holder, until)
}

// ReleaseResponderRuns ends owner's claims.
func (s *Store) ReleaseResponderRuns(ctx context.Context, owner string) error {
	if owner == "" {
		return tripcap.Errorf(tripcap.EINVALID, "owner: required")
	}
	if _, err := s.exec(ctx, `UPDATE responder_runs SET owner = '', lease_until = `+s.d.None+` WHERE owner = ? AND open = `+s.d.True, owner); err != nil {
		return fmt.Errorf("release responder runs of %s: %w", owner, err)
	}
	return nil
}
