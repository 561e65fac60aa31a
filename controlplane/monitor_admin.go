package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
)

// AlertAdmin administers metric alert rules and action groups, and
// answers alert queries, over the alerting store.
type AlertAdmin struct {
	store tripcap.AlertStore
	hosts tripcap.HostFinder
	// receivers says whether this server can deliver to a group's receivers.
	receivers interface {
		Check(ctx context.Context, g *tripcap.ActionGroup) error
	}
	log *slog.Logger
	now func() time.Time
	// keep is how far back metrics are kept: no rule may look further.
	keep time.Duration
	// reload loads the stored rules into evaluation after a change here.
	reload func(ctx context.Context) error
}

// resolveRule finds a rule by id, name (any case) or metricAlerts resource id.
func (m *AlertAdmin) resolveRule(ctx context.Context, ref string) (*tripcap.AlertRule, error) {
	if strings.TrimSpace(ref) == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "rule: required")
	}
	name := lastSegment(ref, "metricAlerts")
	r, err := m.store.FindAlertRule(ctx, tripcap.AlertRuleFilter{ID: &name})
	if code := tripcap.ErrorCode(err); code != tripcap.ENOTFOUND && code != tripcap.EINVALID {
		return r, err
	}
	r, err = m.store.FindAlertRule(ctx, tripcap.AlertRuleFilter{Name: &name})
	if code := tripcap.ErrorCode(err); code == tripcap.ENOTFOUND || code == tripcap.EINVALID {
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no alert rule %q (give its name or id)", ref)
	}
	return r, err
}

// resolveGroup finds an action group by id, name (any case) or actionGroups resource id.
func (m *AlertAdmin) resolveGroup(ctx context.Context, ref string) (*tripcap.ActionGroup, error) {
	if strings.TrimSpace(ref) == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "action group: required")
	}
	name := lastSegment(ref, "actionGroups")
	g, err := m.store.FindActionGroup(ctx, tripcap.ActionGroupFilter{ID: &name})
	if code := tripcap.ErrorCode(err); code != tripcap.ENOTFOUND && code != tripcap.EINVALID {
		return g, err
	}
	g, err = m.store.FindActionGroup(ctx, tripcap.ActionGroupFilter{Name: &name})
	if code := tripcap.ErrorCode(err); code == tripcap.ENOTFOUND || code == tripcap.EINVALID {
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no action group %q (give its name or id)", ref)
	}
	return g, err
}

// CreateRule validates a metric alert rule (Azure's metricAlerts model,
// defaults applied), resolves its actions' action groups (by name, id or
// resource id) to their ids, stores it and starts evaluating it.
func (m *AlertAdmin) CreateRule(ctx context.Context, r *tripcap.AlertRule) (*tripcap.AlertRule, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "body: an alert rule is required")
	}
	if r.ID != "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "id: set by the server; leave it out")
	}
	c := *r
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := m.fitsStore(&c); err != nil {
		return nil, err
	}
	c.Actions = slices.Clone(c.Actions)
	for i, a := range c.Actions {
		g, err := m.resolveGroup(ctx, a.ActionGroupID)
		if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
			return nil, tripcap.Errorf(tripcap.EINVALID, "actions[%d].actionGroupId: no action group %q; create it first (tripcap action-group create)", i, a.ActionGroupID)
		} else if err != nil {
			return nil, err
		}
		c.Actions[i].ActionGroupID = g.ID
	}
	now := m.now().UTC()
	c.ID, c.CreatedAt, c.UpdatedAt = tripcap.NewID(), now, now
	if err := m.store.CreateAlertRule(ctx, &c); err != nil {
		return nil, err
	}
	m.log.Info("alert rule created", "rule", c.Name, "id", c.ID)
	if err := m.reload(ctx); err != nil {
		// Stored: the next periodic refresh loads it.
		m.log.Error("loading alert rules after a create", "err", err)
	}
	return &c, nil
}

// fitsStore refuses windows longer than the metric store keeps.
func (m *AlertAdmin) fitsStore(r *tripcap.AlertRule) error {
	keep := m.keep
	if r.Window() > keep {
		return tripcap.Errorf(tripcap.EINVALID, "windowSize: %s is longer than this server keeps metrics (%s)", r.WindowSize, tripcap.FormatISODuration(keep))
	}
	for i, c := range r.Criteria.AllOf {
		if d := c.Dynamic; d != nil && time.Duration(d.FailingPeriods.NumberOfEvaluationPeriods)*r.Window() > keep {
			return tripcap.Errorf(tripcap.EINVALID, "criteria.allOf[%d].failingPeriods.numberOfEvaluationPeriods: %d periods of %s look back further than this server keeps metrics (%s)",
				i, d.FailingPeriods.NumberOfEvaluationPeriods, r.WindowSize, tripcap.FormatISODuration(keep))
		}
	}
	return nil
}

// FindRules lists alert rules by name.
func (m *AlertAdmin) FindRules(ctx context.Context) ([]*tripcap.AlertRule, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	return m.store.FindAlertRules(ctx, tripcap.AlertRuleFilter{})
}

// FindRule returns a rule by name, id or metricAlerts resource id.
func (m *AlertAdmin) FindRule(ctx context.Context, ref string) (*tripcap.AlertRule, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	return m.resolveRule(ctx, ref)
}

// DeleteRule deletes a rule and stops evaluating it. Its alerts stay, with
// their history and delivery logs; one still Fired stays Fired.
func (m *AlertAdmin) DeleteRule(ctx context.Context, ref string) error {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return err
	}
	r, err := m.resolveRule(ctx, ref)
	if err != nil {
		return err
	}
	if err := m.store.DeleteAlertRule(ctx, r.ID); err != nil {
		return err
	}
	m.log.Info("alert rule deleted", "rule", r.Name, "id", r.ID)
	if err := m.reload(ctx); err != nil {
		m.log.Error("loading alert rules after a delete", "err", err)
	}
	return nil
}

// CreateActionGroup validates and stores an action group, with a new
// signing secret for its webhook deliveries. The secret is in the answer,
// and only there: listings and lookups leave it out.
func (m *AlertAdmin) CreateActionGroup(ctx context.Context, g *tripcap.ActionGroup) (*tripcap.ActionGroup, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	if g == nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "body: an action group is required")
	}
	if g.ID != "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "id: set by the server; leave it out")
	}
	if g.SigningSecret != "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "signingSecret: generated by the server and shown once, at creation; leave it out")
	}
	c := *g
	if c.Enabled == nil {
		c.Enabled = new(true)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := m.receivers.Check(ctx, &c); err != nil {
		return nil, err
	}
	now := m.now().UTC()
	c.ID, c.CreatedAt, c.UpdatedAt, c.SigningSecret = tripcap.NewID(), now, now, actiongroup.NewSecret()
	if err := m.store.CreateActionGroup(ctx, &c); err != nil {
		return nil, err
	}
	m.log.Info("action group created", "group", c.Name, "id", c.ID)
	return &c, nil
}

// FindActionGroups lists action groups by name, without their secrets.
func (m *AlertAdmin) FindActionGroups(ctx context.Context) ([]*tripcap.ActionGroup, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	gs, err := m.store.FindActionGroups(ctx, tripcap.ActionGroupFilter{})
	for _, g := range gs {
		g.SigningSecret = ""
	}
	return gs, err
}

// FindActionGroup returns an action group by name, id or resource id, without its secret.
func (m *AlertAdmin) FindActionGroup(ctx context.Context, ref string) (*tripcap.ActionGroup, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	g, err := m.resolveGroup(ctx, ref)
	if err != nil {
		return nil, err
	}
	g.SigningSecret = ""
	return g, nil
}

// DeleteActionGroup deletes an action group no rule uses (ECONFLICT
// otherwise, naming the rule: a rule would silently lose its receivers).
func (m *AlertAdmin) DeleteActionGroup(ctx context.Context, ref string) error {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return err
	}
	g, err := m.resolveGroup(ctx, ref)
	if err != nil {
		return err
	}
	rules, err := m.store.FindAlertRules(ctx, tripcap.AlertRuleFilter{})
	if err != nil {
		return fmt.Errorf("find rules using action group %s: %w", g.Name, err)
	}
	for _, r := range rules {
		for _, a := range r.Actions {
			if a.ActionGroupID == g.ID {
				return tripcap.Errorf(tripcap.ECONFLICT, "action group %q is used by alert rule %q; delete the rule first", g.Name, r.Name)
			}
		}
	}
	if err := m.store.DeleteActionGroup(ctx, g.ID); err != nil {
		return err
	}
	m.log.Info("action group deleted", "group", g.Name, "id", g.ID)
	return nil
}

// AlertQuery selects alerts in a listing; empty fields select all.
type AlertQuery struct {
	// Rule is a rule name or id (the id of a deleted rule works too).
	Rule string
	// Host is a host name, id or VM resource id.
	Host string
	// State is Fired or Resolved.
	State string
	// Limit defaults to 100; at most 1000.
	Limit int
}

// FindAlerts lists alerts, newest first.
func (m *AlertAdmin) FindAlerts(ctx context.Context, q AlertQuery) ([]*tripcap.Alert, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	f := tripcap.AlertFilter{Limit: q.Limit}
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 1 || f.Limit > maxAlertList {
		return nil, tripcap.Errorf(tripcap.EINVALID, "limit: %d is outside 1..%d", q.Limit, maxAlertList)
	}
	if q.Rule != "" {
		r, err := m.resolveRule(ctx, q.Rule)
		switch {
		case err == nil:
			f.RuleID = &r.ID
		case tripcap.ErrorCode(err) == tripcap.ENOTFOUND && tripcap.IsID(q.Rule):
			// Alerts outlive their rule: a deleted rule's id still selects them.
			f.RuleID = &q.Rule
		default:
			return nil, err
		}
	}
	if q.Host != "" {
		h, err := tripcap.FindHostByRef(ctx, m.hosts, q.Host)
		switch {
		case err == nil:
			f.HostID = &h.ID
		case tripcap.ErrorCode(err) == tripcap.ENOTFOUND && tripcap.IsID(q.Host):
			// And their host: a deleted host's id still selects them.
			f.HostID = &q.Host
		default:
			return nil, err
		}
	}
	if q.State != "" {
		var c tripcap.MonitorCondition
		switch {
		case strings.EqualFold(q.State, string(tripcap.ConditionFired)):
			c = tripcap.ConditionFired
		case strings.EqualFold(q.State, string(tripcap.ConditionResolved)):
			c = tripcap.ConditionResolved
		default:
			return nil, tripcap.Errorf(tripcap.EINVALID, "state: %q is not Fired or Resolved", q.State)
		}
		f.MonitorCondition = &c
	}
	return m.store.FindAlerts(ctx, f)
}

// AlertDetail is an alert with every delivery attempt of its transitions.
type AlertDetail struct {
	Alert      *tripcap.Alert      `json:"alert"`
	Deliveries []*tripcap.Delivery `json:"deliveries"`
}

// FindAlert returns an alert by id with its delivery log.
func (m *AlertAdmin) FindAlert(ctx context.Context, id string) (*AlertDetail, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	if !tripcap.IsID(id) {
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "alert %q not found", id)
	}
	a, err := m.store.FindAlert(ctx, id)
	if err != nil {
		return nil, err
	}
	ds, err := m.store.FindDeliveries(ctx, a.ID)
	if err != nil {
		return nil, fmt.Errorf("deliveries of alert %s: %w", a.ID, err)
	}
	if ds == nil {
		ds = []*tripcap.Delivery{}
	}
	return &AlertDetail{Alert: a, Deliveries: ds}, nil
}

// lastSegment returns the name an ARM resource id ends with, when ref is
// one of the given type ("/…/metricAlerts/NAME"), else ref.
func lastSegment(ref, typ string) string {
	if i := strings.LastIndex(strings.ToLower(ref), "/"+strings.ToLower(typ)+"/"); strings.HasPrefix(ref, "/") && i >= 0 {
		return ref[i+len(typ)+2:]
	}
	return ref
}
