package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tripcap/tripcap"
)

// Alerting state: rules, action groups and alerts are kept whole as JSON
// documents beside the columns listings filter and sort on; each delivery
// attempt is a row of alert_deliveries.

// checkName refuses what a name column cannot hold in every dialect
// (PostgreSQL's text takes neither NUL nor invalid UTF-8).
func checkName(what, name string) error {
	if strings.TrimSpace(name) == "" {
		return tripcap.Errorf(tripcap.EINVALID, "%s name: required", what)
	}
	if !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return tripcap.Errorf(tripcap.EINVALID, "%s name: %q is not valid UTF-8 text without NUL", what, name)
	}
	return nil
}

// toUTC sets every time.Time reachable from v (a pointer to a struct of
// structs, pointers and slices) to UTC, so that documents round-trip to the
// UTC times the stores return everywhere.
func toUTC(v any) {
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			if t, ok := v.Addr().Interface().(*time.Time); ok {
				// Written only when it changes: callers may share the
				// value with readers on other goroutines.
				if t.Location() != time.UTC {
					*t = t.UTC()
				}
				return
			}
			for i := 0; i < v.NumField(); i++ {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		}
	}
	walk(reflect.ValueOf(v))
}

// encodeDoc returns v's JSON with every time in UTC; v's times are set to
// UTC too, so the caller holds what a later read returns.
func encodeDoc(what string, v any) (string, error) {
	toUTC(v)
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", what, err)
	}
	return string(b), nil
}

func nameTaken(what, name string) error {
	return tripcap.Errorf(tripcap.ECONFLICT, "%s named %q already exists (names are unique regardless of case)", what, name)
}

func notFound(what string) func(ref string) error {
	return func(ref string) error { return tripcap.Errorf(tripcap.ENOTFOUND, "%s %q not found", what, ref) }
}

var (
	ruleNotFound  = notFound("alert rule")
	groupNotFound = notFound("action group")
	alertNotFound = notFound("alert")
)

// namedFilter is the WHERE clause of a listing of named objects.
func namedFilter(what string, id, name *string) (*Where, error) {
	w := &Where{}
	if id != nil {
		if err := CheckID(what+" id", *id); err != nil {
			return nil, err
		}
		w.Add("id = ?", *id)
	}
	if name != nil {
		if err := checkName(what, *name); err != nil {
			return nil, err
		}
		w.Add("lower(name) = lower(?)", *name)
	}
	return w, nil
}

func refOf(id, name *string) string {
	switch {
	case id != nil:
		return *id
	case name != nil:
		return *name
	}
	return ""
}

// named is a row of a table of named objects: alert_rules, action_groups, responders.
type named struct {
	table, what, article string // "alert_rules", "alert rule", "an"
	versioned            bool
}

var (
	ruleTable      = named{"alert_rules", "alert rule", "an", true}
	groupTable     = named{"action_groups", "action group", "an", true}
	responderTable = named{"responders", "responder", "a", true}
)

// insertNamed inserts a named object's row. ECONFLICT when its id or name
// (in any case) is taken.
func (s *Store) insertNamed(ctx context.Context, t named, id, name string, created, updated time.Time, doc string) error {
	cols, vals := "id, name, created_at, updated_at, doc", "?, ?, ?, ?, ?"
	if t.versioned {
		cols, vals = cols+", version", vals+", 1"
	}
	_, err := s.exec(ctx, `INSERT INTO `+t.table+` (`+cols+`) VALUES (`+vals+`)`, id, name, s.t(created), s.t(updated), doc)
	switch s.violation(err) {
	case "unique":
		return nameTaken(t.article+" "+t.what, name)
	case "primarykey":
		return tripcap.Errorf(tripcap.ECONFLICT, "%s %s with id %q already exists", t.article, t.what, id)
	}
	if err != nil {
		return fmt.Errorf("create %s %s: %w", t.what, name, err)
	}
	return nil
}

// updateNamed replaces the row of t with id if it is at expectVersion, in
// one conditional UPDATE; encode makes the document with the new update
// time and version, which are returned for the caller to set once written.
// EPRECONDITION when the row is at another version, ENOTFOUND when it is
// gone, ECONFLICT when the name is taken.
func (s *Store) updateNamed(ctx context.Context, t named, id, name string, expectVersion int64, encode func(at time.Time, version int64) (string, error)) (time.Time, int64, error) {
	if err := CheckID(t.what+" id", id); err != nil {
		return time.Time{}, 0, err
	}
	if err := checkName(t.what, name); err != nil {
		return time.Time{}, 0, err
	}
	at, version := utcNow(), expectVersion+1
	doc, err := encode(at, version)
	if err != nil {
		return time.Time{}, 0, err
	}
	n, err := s.exec(ctx, `UPDATE `+t.table+` SET name = ?, version = ?, updated_at = ?, doc = ? WHERE id = ? AND version = ?`,
		name, version, s.t(at), doc, id, expectVersion)
	if s.violation(err) == "unique" {
		return time.Time{}, 0, nameTaken(t.article+" "+t.what, name)
	}
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("update %s %s: %w", t.what, name, err)
	}
	if n == 0 {
		var cur int64
		err := s.queryRow(ctx, `SELECT version FROM `+t.table+` WHERE id = ?`, id).Scan(&cur)
		if isNoRows(err) {
			return time.Time{}, 0, notFound(t.what)(id)
		}
		if err != nil {
			return time.Time{}, 0, fmt.Errorf("update %s %s: %w", t.what, name, err)
		}
		return time.Time{}, 0, tripcap.Errorf(tripcap.EPRECONDITION, "%s %s changed (version %d, expected %d)", t.what, name, cur, expectVersion)
	}
	return at, version, nil
}

// findNamed lists the objects of t that w selects, ordered by name, each
// decoded from its document and given its columns by set.
func findNamed[T any](ctx context.Context, s *Store, t named, w *Where, set func(v *T, id, name string, version int64)) ([]*T, error) {
	version := "0"
	if t.versioned {
		version = "version"
	}
	rows, err := s.query(ctx, `SELECT id, name, `+version+`, doc FROM `+t.table+w.String()+` ORDER BY lower(name)`+s.d.ByteOrder+`, id`, w.Args...)
	out, err := collect(rows, err, func(r rowScanner) (*T, error) {
		var id, name string
		var version int64
		var doc []byte
		if err := r.Scan(&id, &name, &version, &doc); err != nil {
			return nil, err
		}
		v := new(T)
		if err := json.Unmarshal(doc, v); err != nil {
			return nil, fmt.Errorf("decode %s %s: %w", t.what, id, err)
		}
		set(v, id, name, version)
		return v, nil
	})
	if err != nil {
		return nil, fmt.Errorf("find %ss: %w", t.what, err)
	}
	return out, nil
}

// first is the one object a listing found, or notFound's error.
func first[T any](list []*T, err error, notFound func(string) error, ref string) (*T, error) {
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, notFound(ref)
	}
	return list[0], nil
}

// newNamed checks a named object and fills its times.
func newNamed(what, id, name string, created, updated *time.Time) error {
	if err := CheckID(what+" id", id); err != nil {
		return err
	}
	if err := checkName(what, name); err != nil {
		return err
	}
	if created.IsZero() {
		*created = utcNow()
	}
	if updated.IsZero() {
		*updated = *created
	}
	return nil
}

// CreateAlertRule inserts r. ECONFLICT when its id or name (in any case) is taken.
func (s *Store) CreateAlertRule(ctx context.Context, r *tripcap.AlertRule) error {
	if err := newNamed("alert rule", r.ID, r.Name, &r.CreatedAt, &r.UpdatedAt); err != nil {
		return err
	}
	r.Version = 1
	doc, err := encodeDoc("alert rule "+r.Name, r)
	if err != nil {
		return err
	}
	return s.insertNamed(ctx, ruleTable, r.ID, r.Name, r.CreatedAt, r.UpdatedAt, doc)
}

// UpdateAlertRule replaces the rule with r.ID if it is at expectVersion.
func (s *Store) UpdateAlertRule(ctx context.Context, r *tripcap.AlertRule, expectVersion int64) error {
	at, version, err := s.updateNamed(ctx, ruleTable, r.ID, r.Name, expectVersion, func(at time.Time, version int64) (string, error) {
		upd := *r
		upd.UpdatedAt, upd.Version = at, version
		return encodeDoc("alert rule "+r.Name, &upd)
	})
	if err != nil {
		return err
	}
	toUTC(r)
	r.UpdatedAt, r.Version = at, version
	return nil
}

// FindAlertRules lists the rules f selects, ordered by name.
func (s *Store) FindAlertRules(ctx context.Context, f tripcap.AlertRuleFilter) ([]*tripcap.AlertRule, error) {
	w, err := namedFilter("alert rule", f.ID, f.Name)
	if err != nil {
		return nil, err
	}
	return findNamed(ctx, s, ruleTable, w, func(r *tripcap.AlertRule, id, name string, version int64) {
		r.ID, r.Name, r.Version = id, name, version
	})
}

// FindAlertRule returns the one rule f selects, ENOTFOUND when none.
func (s *Store) FindAlertRule(ctx context.Context, f tripcap.AlertRuleFilter) (*tripcap.AlertRule, error) {
	rules, err := s.FindAlertRules(ctx, f)
	return first(rules, err, ruleNotFound, refOf(f.ID, f.Name))
}

// DeleteAlertRule removes a rule; its alerts stay. ENOTFOUND when unknown.
func (s *Store) DeleteAlertRule(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "alert_rules", "alert rule", id, ruleNotFound)
}

// CreateActionGroup inserts g. ECONFLICT when its id or name (in any case) is taken.
func (s *Store) CreateActionGroup(ctx context.Context, g *tripcap.ActionGroup) error {
	if err := newNamed("action group", g.ID, g.Name, &g.CreatedAt, &g.UpdatedAt); err != nil {
		return err
	}
	g.Version = 1
	doc, err := s.sealedGroup(g)
	if err != nil {
		return err
	}
	return s.insertNamed(ctx, groupTable, g.ID, g.Name, g.CreatedAt, g.UpdatedAt, doc)
}

// UpdateActionGroup replaces the group with g.ID if it is at expectVersion.
func (s *Store) UpdateActionGroup(ctx context.Context, g *tripcap.ActionGroup, expectVersion int64) error {
	at, version, err := s.updateNamed(ctx, groupTable, g.ID, g.Name, expectVersion, func(at time.Time, version int64) (string, error) {
		upd := *g
		upd.UpdatedAt, upd.Version = at, version
		return s.sealedGroup(&upd)
	})
	if err != nil {
		return err
	}
	toUTC(g)
	g.UpdatedAt, g.Version = at, version
	return nil
}

// FindActionGroups lists the groups f selects, ordered by name.
func (s *Store) FindActionGroups(ctx context.Context, f tripcap.ActionGroupFilter) ([]*tripcap.ActionGroup, error) {
	w, err := namedFilter("action group", f.ID, f.Name)
	if err != nil {
		return nil, err
	}
	groups, err := findNamed(ctx, s, groupTable, w, func(g *tripcap.ActionGroup, id, name string, version int64) {
		g.ID, g.Name, g.Version = id, name, version
	})
	for _, g := range groups {
		if err := s.openFields(groupSecrets(g)); err != nil {
			return nil, fmt.Errorf("find action groups: %w", err)
		}
	}
	return groups, err
}

// FindActionGroup returns the one group f selects, ENOTFOUND when none.
func (s *Store) FindActionGroup(ctx context.Context, f tripcap.ActionGroupFilter) (*tripcap.ActionGroup, error) {
	groups, err := s.FindActionGroups(ctx, f)
	return first(groups, err, groupNotFound, refOf(f.ID, f.Name))
}

// DeleteActionGroup removes a group. ENOTFOUND when unknown.
func (s *Store) DeleteActionGroup(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "action_groups", "action group", id, groupNotFound)
}

// checkAlert checks what the alerts table's columns need.
func checkAlert(a *tripcap.Alert) error {
	for _, id := range []struct{ what, v string }{{"alert id", a.ID}, {"alert rule id", a.RuleID}, {"alert host id", a.HostID}} {
		if err := CheckID(id.what, id.v); err != nil {
			return err
		}
	}
	switch a.MonitorCondition {
	case tripcap.ConditionFired, tripcap.ConditionResolved:
	default:
		return tripcap.Errorf(tripcap.EINVALID, "monitorCondition: %q is not Fired or Resolved", a.MonitorCondition)
	}
	return nil
}

// UpsertAlert inserts a or replaces the alert with its id, fenced: the
// alerts_active index keeps one active alert per (rule, host), and the
// update leaves a Resolved alert as it is. Either refusal returns an
// *tripcap.AlertFencedError with the alert the store holds.
func (s *Store) UpsertAlert(ctx context.Context, a *tripcap.Alert) error {
	if err := checkAlert(a); err != nil {
		return err
	}
	doc, err := encodeDoc("alert "+a.ID, a)
	if err != nil {
		return err
	}
	// A few rounds: the winner a unique violation names may be resolved
	// or released before it is read, and the write may then succeed.
	for range 3 {
		n, err := s.exec(ctx, `INSERT INTO alerts (id, rule_id, host_id, monitor_condition, fired_at, active, doc) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET rule_id = excluded.rule_id, host_id = excluded.host_id,
				monitor_condition = excluded.monitor_condition, fired_at = excluded.fired_at, active = excluded.active, doc = excluded.doc
			WHERE alerts.monitor_condition = 'Fired'`,
			a.ID, a.RuleID, a.HostID, string(a.MonitorCondition), s.t(a.FiredAt), a.Active(), doc)
		switch {
		case s.violation(err) == "unique":
			w, err := s.findAlerts(ctx, `SELECT id, monitor_condition, active, doc FROM alerts WHERE rule_id = ? AND host_id = ? AND active = `+s.d.True, a.RuleID, a.HostID)
			if err != nil {
				return fmt.Errorf("upsert alert %s: read the active alert of its rule and host: %w", a.ID, err)
			}
			if len(w) > 0 {
				return &tripcap.AlertFencedError{AlertID: a.ID, WinnerID: w[0].ID, Winner: w[0]}
			}
		case err != nil:
			return fmt.Errorf("upsert alert %s: %w", a.ID, err)
		case n == 0:
			w, err := s.FindAlert(ctx, a.ID)
			if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
				continue // deleted meanwhile
			}
			if err != nil {
				return fmt.Errorf("upsert alert %s: read the resolved alert: %w", a.ID, err)
			}
			return &tripcap.AlertFencedError{AlertID: a.ID, WinnerID: w.ID, Winner: w}
		default:
			return nil
		}
	}
	return fmt.Errorf("upsert alert %s: the active alert of its rule and host kept changing", a.ID)
}

// FindAlerts lists the alerts f selects, newest first.
func (s *Store) FindAlerts(ctx context.Context, f tripcap.AlertFilter) ([]*tripcap.Alert, error) {
	w := &Where{}
	for _, id := range []struct {
		what, col string
		v         *string
	}{{"alert id", "id", f.ID}, {"alert rule id", "rule_id", f.RuleID}, {"host id", "host_id", f.HostID}} {
		if id.v != nil {
			if err := CheckID(id.what, *id.v); err != nil {
				return nil, err
			}
			w.Add(id.col+" = ?", *id.v)
		}
	}
	if f.MonitorCondition != nil {
		w.Add("monitor_condition = ?", string(*f.MonitorCondition))
	}
	if f.Limit < 0 {
		return nil, tripcap.Errorf(tripcap.EINVALID, "limit: %d is negative", f.Limit)
	}
	q := `SELECT id, monitor_condition, active, doc FROM alerts` + w.String() + ` ORDER BY fired_at DESC, id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	out, err := s.findAlerts(ctx, q, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("find alerts: %w", err)
	}
	return out, nil
}

// findAlerts runs a query of id, monitor_condition, active and doc. The
// active column, not the document, says whether a Fired alert is Released:
// migration 00015 set it for the alerts older servers wrote.
func (s *Store) findAlerts(ctx context.Context, q string, args ...any) ([]*tripcap.Alert, error) {
	rows, err := s.query(ctx, q, args...)
	return collect(rows, err, func(r rowScanner) (*tripcap.Alert, error) {
		var id, cond string
		var active bool
		var doc []byte
		if err := r.Scan(&id, &cond, &active, &doc); err != nil {
			return nil, err
		}
		var a tripcap.Alert
		if err := json.Unmarshal(doc, &a); err != nil {
			return nil, fmt.Errorf("decode alert %s: %w", id, err)
		}
		a.ID, a.MonitorCondition = id, tripcap.MonitorCondition(cond)
		a.Released = a.MonitorCondition == tripcap.ConditionFired && !active
		return &a, nil
	})
}

// FindAlert returns an alert by id, ENOTFOUND when unknown.
func (s *Store) FindAlert(ctx context.Context, id string) (*tripcap.Alert, error) {
	alerts, err := s.FindAlerts(ctx, tripcap.AlertFilter{ID: &id, Limit: 1})
	return first(alerts, err, alertNotFound, id)
}

// AppendDelivery records one delivery attempt. ENOTFOUND when the alert is unknown.
func (s *Store) AppendDelivery(ctx context.Context, d *tripcap.Delivery) error {
	if err := CheckID("alert id", d.AlertID); err != nil {
		return err
	}
	doc, err := encodeDoc("delivery of alert "+d.AlertID, d)
	if err != nil {
		return err
	}
	n, err := s.exec(ctx, `INSERT INTO alert_deliveries (alert_id, time, doc)
		SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM alerts WHERE id = ?)`, d.AlertID, s.t(d.Time), doc, d.AlertID)
	if err != nil {
		return fmt.Errorf("record delivery of alert %s: %w", d.AlertID, err)
	}
	if n == 0 {
		return alertNotFound(d.AlertID)
	}
	return nil
}

// FindDeliveries lists an alert's delivery attempts in the order recorded.
func (s *Store) FindDeliveries(ctx context.Context, alertID string) ([]*tripcap.Delivery, error) {
	if err := CheckID("alert id", alertID); err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, `SELECT doc FROM alert_deliveries WHERE alert_id = ? ORDER BY seq`, alertID)
	out, err := collect(rows, err, func(r rowScanner) (*tripcap.Delivery, error) {
		var doc []byte
		if err := r.Scan(&doc); err != nil {
			return nil, err
		}
		var d tripcap.Delivery
		if err := json.Unmarshal(doc, &d); err != nil {
			return nil, fmt.Errorf("decode delivery: %w", err)
		}
		return &d, nil
	})
	if err != nil {
		return nil, fmt.Errorf("find deliveries of alert %s: %w", alertID, err)
	}
	return out, nil
}
