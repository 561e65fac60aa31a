package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/sqldoc"
)

// Alerting state: rules, action groups and alerts are kept whole as JSON
// documents beside the columns listings filter and sort on; each delivery
// attempt is a row of alert_deliveries. The same layout and checks as
// postgres/alerting.go, so both pass storetest's Alerting subtests alike.

// checkAlertName refuses what a name column cannot hold in both stores
// (PostgreSQL's text takes neither NUL nor invalid UTF-8).
func checkAlertName(what, name string) error {
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

func ruleNameTaken(name string) error {
	return tripcap.Errorf(tripcap.ECONFLICT, "an alert rule named %q already exists (names are unique regardless of case)", name)
}

func ruleNotFound(ref string) error {
	return tripcap.Errorf(tripcap.ENOTFOUND, "alert rule %q not found", ref)
}

func groupNameTaken(name string) error {
	return tripcap.Errorf(tripcap.ECONFLICT, "an action group named %q already exists (names are unique regardless of case)", name)
}

func groupNotFound(ref string) error {
	return tripcap.Errorf(tripcap.ENOTFOUND, "action group %q not found", ref)
}

func alertNotFound(id string) error {
	return tripcap.Errorf(tripcap.ENOTFOUND, "alert %q not found", id)
}

// namedFilter is the WHERE clause of a rule or group listing.
func namedFilter(what string, id, name *string) (*sqldoc.Where, error) {
	w := &sqldoc.Where{}
	if id != nil {
		if err := sqldoc.CheckID(what+" id", *id); err != nil {
			return nil, err
		}
		w.Add("id = ?", *id)
	}
	if name != nil {
		if err := checkAlertName(what, *name); err != nil {
			return nil, err
		}
		w.Add("lower(name) = lower(?)", *name)
	}
	return w, nil
}

// CreateAlertRule inserts r. ECONFLICT when its id or name (in any case) is taken.
func (s *Store) CreateAlertRule(ctx context.Context, r *tripcap.AlertRule) error {
	if err := sqldoc.CheckID("alert rule id", r.ID); err != nil {
		return err
	}
	if err := checkAlertName("alert rule", r.Name); err != nil {
		return err
	}
	now := utcNow()
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = r.CreatedAt
	}
	doc, err := encodeDoc("alert rule "+r.Name, r)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO alert_rules (id, name, created_at, updated_at, doc) VALUES (?, ?, ?, ?, ?)`,
			r.ID, r.Name, formatTime(r.CreatedAt), formatTime(r.UpdatedAt), doc)
		return err
	})
	switch constraint(err) {
	case "unique":
		return ruleNameTaken(r.Name)
	case "primarykey":
		return tripcap.Errorf(tripcap.ECONFLICT, "an alert rule with id %q already exists", r.ID)
	}
	if err != nil {
		return fmt.Errorf("create alert rule %s: %w", r.Name, err)
	}
	return nil
}

// FindAlertRules lists the rules f selects, ordered by name.
func (s *Store) FindAlertRules(ctx context.Context, f tripcap.AlertRuleFilter) ([]*tripcap.AlertRule, error) {
	w, err := namedFilter("alert rule", f.ID, f.Name)
	if err != nil {
		return nil, err
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT id, name, doc FROM alert_rules`+w.String()+` ORDER BY lower(name), id`, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("find alert rules: %w", err)
	}
	defer rows.Close()
	var out []*tripcap.AlertRule
	for rows.Next() {
		var id, name, doc string
		if err := rows.Scan(&id, &name, &doc); err != nil {
			return nil, fmt.Errorf("find alert rules: %w", err)
		}
		var r tripcap.AlertRule
		if err := json.Unmarshal([]byte(doc), &r); err != nil {
			return nil, fmt.Errorf("decode alert rule %s: %w", id, err)
		}
		r.ID, r.Name = id, name
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find alert rules: %w", err)
	}
	return out, nil
}

// FindAlertRule returns the one rule f selects, ENOTFOUND when none.
func (s *Store) FindAlertRule(ctx context.Context, f tripcap.AlertRuleFilter) (*tripcap.AlertRule, error) {
	rules, err := s.FindAlertRules(ctx, f)
	if err != nil {
		return nil, err
	}
	if len(rules) == 0 {
		return nil, ruleNotFound(refOf(f.ID, f.Name))
	}
	return rules[0], nil
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

// DeleteAlertRule removes a rule; its alerts stay. ENOTFOUND when unknown.
func (s *Store) DeleteAlertRule(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "alert_rules", "alert rule", id, ruleNotFound)
}

func (s *Store) deleteByID(ctx context.Context, table, what, id string, notFound func(string) error) error {
	if err := sqldoc.CheckID(what+" id", id); err != nil {
		return err
	}
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE id = ?`, id)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", what, id, err)
	}
	if n == 0 {
		return notFound(id)
	}
	return nil
}

// CreateActionGroup inserts g. ECONFLICT when its id or name (in any case) is taken.
func (s *Store) CreateActionGroup(ctx context.Context, g *tripcap.ActionGroup) error {
	if err := sqldoc.CheckID("action group id", g.ID); err != nil {
		return err
	}
	if err := checkAlertName("action group", g.Name); err != nil {
		return err
	}
	if g.CreatedAt.IsZero() {
		g.CreatedAt = utcNow()
	}
	if g.UpdatedAt.IsZero() {
		g.UpdatedAt = g.CreatedAt
	}
	doc, err := encodeDoc("action group "+g.Name, g)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO action_groups (id, name, created_at, updated_at, doc) VALUES (?, ?, ?, ?, ?)`,
			g.ID, g.Name, formatTime(g.CreatedAt), formatTime(g.UpdatedAt), doc)
		return err
	})
	switch constraint(err) {
	case "unique":
		return groupNameTaken(g.Name)
	case "primarykey":
		return tripcap.Errorf(tripcap.ECONFLICT, "an action group with id %q already exists", g.ID)
	}
	if err != nil {
		return fmt.Errorf("create action group %s: %w", g.Name, err)
	}
	return nil
}

// FindActionGroups lists the groups f selects, ordered by name.
func (s *Store) FindActionGroups(ctx context.Context, f tripcap.ActionGroupFilter) ([]*tripcap.ActionGroup, error) {
	w, err := namedFilter("action group", f.ID, f.Name)
	if err != nil {
		return nil, err
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT id, name, doc FROM action_groups`+w.String()+` ORDER BY lower(name), id`, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("find action groups: %w", err)
	}
	defer rows.Close()
	var out []*tripcap.ActionGroup
	for rows.Next() {
		var id, name, doc string
		if err := rows.Scan(&id, &name, &doc); err != nil {
			return nil, fmt.Errorf("find action groups: %w", err)
		}
		var g tripcap.ActionGroup
		if err := json.Unmarshal([]byte(doc), &g); err != nil {
			return nil, fmt.Errorf("decode action group %s: %w", id, err)
		}
		g.ID, g.Name = id, name
		out = append(out, &g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find action groups: %w", err)
	}
	return out, nil
}

// FindActionGroup returns the one group f selects, ENOTFOUND when none.
func (s *Store) FindActionGroup(ctx context.Context, f tripcap.ActionGroupFilter) (*tripcap.ActionGroup, error) {
	groups, err := s.FindActionGroups(ctx, f)
	if err != nil {
		return nil, err
	}
	if len(groups) == 0 {
		return nil, groupNotFound(refOf(f.ID, f.Name))
	}
	return groups[0], nil
}

// DeleteActionGroup removes a group. ENOTFOUND when unknown.
func (s *Store) DeleteActionGroup(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "action_groups", "action group", id, groupNotFound)
}

// checkAlert checks what the alerts table's columns need.
func checkAlert(a *tripcap.Alert) error {
	for _, id := range []struct{ what, v string }{{"alert id", a.ID}, {"alert rule id", a.RuleID}, {"alert host id", a.HostID}} {
		if err := sqldoc.CheckID(id.what, id.v); err != nil {
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

// UpsertAlert inserts a or replaces the alert with its id.
func (s *Store) UpsertAlert(ctx context.Context, a *tripcap.Alert) error {
	if err := checkAlert(a); err != nil {
		return err
	}
	doc, err := encodeDoc("alert "+a.ID, a)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO alerts (id, rule_id, host_id, monitor_condition, fired_at, doc) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET rule_id = excluded.rule_id, host_id = excluded.host_id,
				monitor_condition = excluded.monitor_condition, fired_at = excluded.fired_at, doc = excluded.doc`,
			a.ID, a.RuleID, a.HostID, string(a.MonitorCondition), formatTime(a.FiredAt), doc)
		return err
	})
	if err != nil {
		return fmt.Errorf("upsert alert %s: %w", a.ID, err)
	}
	return nil
}

// FindAlerts lists the alerts f selects, newest first.
func (s *Store) FindAlerts(ctx context.Context, f tripcap.AlertFilter) ([]*tripcap.Alert, error) {
	w := &sqldoc.Where{}
	for _, id := range []struct {
		what, col string
		v         *string
	}{{"alert id", "id", f.ID}, {"alert rule id", "rule_id", f.RuleID}, {"host id", "host_id", f.HostID}} {
		if id.v != nil {
			if err := sqldoc.CheckID(id.what, *id.v); err != nil {
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
	q := `SELECT id, doc FROM alerts` + w.String() + ` ORDER BY fired_at DESC, id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.reader.QueryContext(ctx, q, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("find alerts: %w", err)
	}
	defer rows.Close()
	var out []*tripcap.Alert
	for rows.Next() {
		var id, doc string
		if err := rows.Scan(&id, &doc); err != nil {
			return nil, fmt.Errorf("find alerts: %w", err)
		}
		var a tripcap.Alert
		if err := json.Unmarshal([]byte(doc), &a); err != nil {
			return nil, fmt.Errorf("decode alert %s: %w", id, err)
		}
		a.ID = id
		out = append(out, &a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find alerts: %w", err)
	}
	return out, nil
}

// FindAlert returns an alert by id, ENOTFOUND when unknown.
func (s *Store) FindAlert(ctx context.Context, id string) (*tripcap.Alert, error) {
	alerts, err := s.FindAlerts(ctx, tripcap.AlertFilter{ID: &id, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(alerts) == 0 {
		return nil, alertNotFound(id)
	}
	return alerts[0], nil
}

// AppendDelivery records one delivery attempt. ENOTFOUND when the alert is unknown.
func (s *Store) AppendDelivery(ctx context.Context, d *tripcap.Delivery) error {
	if err := sqldoc.CheckID("alert id", d.AlertID); err != nil {
		return err
	}
	doc, err := encodeDoc("delivery of alert "+d.AlertID, d)
	if err != nil {
		return err
	}
	var n int64
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO alert_deliveries (alert_id, time, doc)
			SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM alerts WHERE id = ?)`, d.AlertID, formatTime(d.Time), doc, d.AlertID)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
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
	if err := sqldoc.CheckID("alert id", alertID); err != nil {
		return nil, err
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT doc FROM alert_deliveries WHERE alert_id = ? ORDER BY seq`, alertID)
	if err != nil {
		return nil, fmt.Errorf("find deliveries of alert %s: %w", alertID, err)
	}
	defer rows.Close()
	var out []*tripcap.Delivery
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("find deliveries of alert %s: %w", alertID, err)
		}
		var d tripcap.Delivery
		if err := json.Unmarshal([]byte(doc), &d); err != nil {
			return nil, fmt.Errorf("decode delivery of alert %s: %w", alertID, err)
		}
		out = append(out, &d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find deliveries of alert %s: %w", alertID, err)
	}
	return out, nil
}
