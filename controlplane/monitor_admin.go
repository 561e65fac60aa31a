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
	hosts tripcap.HostLister
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
	if err := tripcap.Authorize(ctx, tripcap.PermMonitoringWrite, nil); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "body: an alert rule is required")
	}
	if r.ID != "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "id: set by the server; leave it out")
	}
	c := *r
	if err := m.checkRule(ctx, &c); err != nil {
		return nil, err
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

// checkRule applies the defaults to r, validates it and resolves its
// actions' action groups (by name, id or resource id) to their ids.
func (m *AlertAdmin) checkRule(ctx context.Context, r *tripcap.AlertRule) error {
	r.ApplyDefaults()
	if err := r.Validate(); err != nil {
		return err
	}
	if err := m.fitsStore(r); err != nil {
		return err
	}
	r.Actions = slices.Clone(r.Actions)
	for i, a := range r.Actions {
		g, err := m.resolveGroup(ctx, a.ActionGroupID)
		if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
			return tripcap.Errorf(tripcap.EINVALID, "actions[%d].actionGroupId: no action group %q; create it first (tripcap action-group create)", i, a.ActionGroupID)
		} else if err != nil {
			return err
		}
		r.Actions[i].ActionGroupID = g.ID
	}
	return nil
}

// maxUpdateAttempts bounds the writes of an update with If-Match "*" that
// keep losing to concurrent writers.
const maxUpdateAttempts = 4

// updateVersioned is a conditional update: it reads the object, checks
// ifMatch against the ETag read (required: the caller's ETag, or "*" for
// whatever is stored), builds the new object from the current one with
// change, and writes it at the version read. A write that loses a race is
// EPRECONDITION for an ETag (the caller's to resolve) and made again on
// the new version for "*".
func updateVersioned[T any](what, ifMatch string, read func() (*T, error), etag func(*T) string,
	change func(cur *T) (*T, int64, error), write func(next *T, version int64) error) (*T, error) {
	if ifMatch == "" {
		return nil, tripcap.Errorf(tripcap.EPRECONDITION, "If-Match: required; give the %s's ETag (from a GET), or * to replace whatever is stored", what)
	}
	for attempt := 1; ; attempt++ {
		cur, err := read()
		if err != nil {
			return nil, err
		}
		if ifMatch != "*" && ifMatch != etag(cur) {
			return nil, tripcap.Errorf(tripcap.EPRECONDITION, "the %s changed (ETag %s, If-Match %s); read it again", what, etag(cur), ifMatch)
		}
		next, version, err := change(cur)
		if err != nil {
			return nil, err
		}
		err = write(next, version)
		if tripcap.ErrorCode(err) == tripcap.EPRECONDITION && ifMatch == "*" && attempt < maxUpdateAttempts {
			continue
		}
		if err != nil {
			return nil, err
		}
		return next, nil
	}
}

// UpdateRule replaces a rule (by name, id or resource id) with in, checked
// as for create; its id and creation time stay. ifMatch is the rule's ETag
// as read, or "*" (see updateVersioned). The evaluator reloads the rule at
// once: the rule's instances start afresh under the new settings and keep
// their fired alerts, which resolve at the next evaluation that finds the
// new condition not met (Azure's behaviour for a changed rule); a rule
// disabled stops being evaluated and its fired alerts stay Fired.
func (m *AlertAdmin) UpdateRule(ctx context.Context, ref string, in *tripcap.AlertRule, ifMatch string) (*tripcap.AlertRule, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermMonitoringWrite, nil); err != nil {
		return nil, err
	}
	if in == nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "body: an alert rule is required")
	}
	r, err := updateVersioned("alert rule", ifMatch,
		func() (*tripcap.AlertRule, error) { return m.resolveRule(ctx, ref) },
		(*tripcap.AlertRule).ETag,
		func(cur *tripcap.AlertRule) (*tripcap.AlertRule, int64, error) {
			if in.ID != "" && in.ID != cur.ID {
				return nil, 0, tripcap.Errorf(tripcap.EINVALID, "id: %q is not the rule's (%s); ids do not change", in.ID, cur.ID)
			}
			c := *in
			if c.Name == "" {
				c.Name = cur.Name
			}
			c.Inherit(cur.AzurePlacement)
			if err := m.checkRule(ctx, &c); err != nil {
				return nil, 0, err
			}
			c.ID, c.CreatedAt = cur.ID, cur.CreatedAt
			return &c, cur.Version, nil
		},
		func(c *tripcap.AlertRule, version int64) error { return m.store.UpdateAlertRule(ctx, c, version) })
	if err != nil {
		return nil, err
	}
	m.log.Info("alert rule updated", "rule", r.Name, "id", r.ID, "version", r.Version, "enabled", r.IsEnabled())
	if err := m.reload(ctx); err != nil {
		m.log.Error("loading alert rules after an update", "err", err)
	}
	return r, nil
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
	if err := tripcap.Authorize(ctx, tripcap.PermRead, nil); err != nil {
		return nil, err
	}
	return m.store.FindAlertRules(ctx, tripcap.AlertRuleFilter{})
}

// FindRule returns a rule by name, id or metricAlerts resource id.
func (m *AlertAdmin) FindRule(ctx context.Context, ref string) (*tripcap.AlertRule, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermRead, nil); err != nil {
		return nil, err
	}
	return m.resolveRule(ctx, ref)
}

// DeleteRule deletes a rule and stops evaluating it. Its alerts stay, with
// their history and delivery logs; one still Fired stays Fired.
func (m *AlertAdmin) DeleteRule(ctx context.Context, ref string) error {
	if err := tripcap.Authorize(ctx, tripcap.PermMonitoringWrite, nil); err != nil {
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
	if err := authorizeGroupWrite(ctx, g); err != nil {
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
	if err := m.checkGroup(ctx, &c); err != nil {
		return nil, err
	}
	now := m.now().UTC()
	c.ID, c.CreatedAt, c.UpdatedAt, c.SigningSecret = tripcap.NewID(), now, now, actiongroup.NewSecret()
	if err := m.store.CreateActionGroup(ctx, &c); err != nil {
		return nil, err
	}
	m.log.Info("action group created", "group", c.Name, "id", c.ID)
	// The generated secret is shown this once, so receivers can verify.
	out := c.Redacted()
	out.SigningSecret = c.SigningSecret
	return out, nil
}

// authorizeGroupWrite refuses a caller that may not write g: a group with
// a responder receiver starts captures on the hosts its rules' alerts name,
// which needs what writing a responder needs.
func authorizeGroupWrite(ctx context.Context, g *tripcap.ActionGroup) error {
	if g != nil && len(g.ResponderReceivers) > 0 {
		return tripcap.AuthorizeCaptureTrigger(ctx)
	}
	return tripcap.Authorize(ctx, tripcap.PermMonitoringWrite, nil)
}

// checkGroup defaults and validates a group, and checks this server can
// deliver to its receivers.
func (m *AlertAdmin) checkGroup(ctx context.Context, g *tripcap.ActionGroup) error {
	if g.Enabled == nil {
		g.Enabled = new(true)
	}
	if err := g.Validate(); err != nil {
		return err
	}
	return m.receivers.Check(ctx, g)
}

// UpdateActionGroup replaces an action group's settings with in, checked as
// for create; its id, creation time and signing secret stay (the answer
// leaves the secret out). ifMatch is the group's ETag as read, or "*".
// Deliveries read the group when they run, so the change applies to the
// next one.
func (m *AlertAdmin) UpdateActionGroup(ctx context.Context, ref string, in *tripcap.ActionGroup, ifMatch string) (*tripcap.ActionGroup, error) {
	if err := authorizeGroupWrite(ctx, in); err != nil {
		return nil, err
	}
	if in == nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "body: an action group is required")
	}
	if in.SigningSecret != "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "signingSecret: kept by the server from the group's creation; leave it out")
	}
	g, err := updateVersioned("action group", ifMatch,
		func() (*tripcap.ActionGroup, error) { return m.resolveGroup(ctx, ref) },
		(*tripcap.ActionGroup).ETag,
		func(cur *tripcap.ActionGroup) (*tripcap.ActionGroup, int64, error) {
			if in.ID != "" && in.ID != cur.ID {
				return nil, 0, tripcap.Errorf(tripcap.EINVALID, "id: %q is not the action group's (%s); ids do not change", in.ID, cur.ID)
			}
			c := *in
			if c.Name == "" {
				c.Name = cur.Name
			}
			c.Inherit(cur.AzurePlacement)
			var err error
			if c.WebhookReceivers, err = tripcap.RestoreWebhooks("webhookReceivers", in.WebhookReceivers, cur.WebhookReceivers); err != nil {
				return nil, 0, err
			}
			if err := m.checkGroup(ctx, &c); err != nil {
				return nil, 0, err
			}
			c.ID, c.CreatedAt, c.SigningSecret = cur.ID, cur.CreatedAt, cur.SigningSecret
			return &c, cur.Version, nil
		},
		func(c *tripcap.ActionGroup, version int64) error { return m.store.UpdateActionGroup(ctx, c, version) })
	if err != nil {
		return nil, err
	}
	m.log.Info("action group updated", "group", g.Name, "id", g.ID, "version", g.Version, "enabled", g.IsEnabled())
	return g.Redacted(), nil
}

// FindActionGroups lists action groups by name, without their secrets.
func (m *AlertAdmin) FindActionGroups(ctx context.Context) ([]*tripcap.ActionGroup, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermRead, nil); err != nil {
		return nil, err
	}
	gs, err := m.store.FindActionGroups(ctx, tripcap.ActionGroupFilter{})
	for i, g := range gs {
		gs[i] = g.Redacted()
	}
	return gs, err
}

// FindActionGroup returns an action group by name, id or resource id, without its secret.
func (m *AlertAdmin) FindActionGroup(ctx context.Context, ref string) (*tripcap.ActionGroup, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermRead, nil); err != nil {
		return nil, err
	}
	g, err := m.resolveGroup(ctx, ref)
	if err != nil {
		return nil, err
	}
	return g.Redacted(), nil
}

// DeleteActionGroup deletes an action group no rule uses (ECONFLICT
// otherwise, naming the rule: a rule would silently lose its receivers).
func (m *AlertAdmin) DeleteActionGroup(ctx context.Context, ref string) error {
	if err := tripcap.Authorize(ctx, tripcap.PermMonitoringWrite, nil); err != nil {
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

// MaxSilence bounds how long one silence lasts: a mute longer than this is
// more likely a mistake than a plan (a rule is disabled instead).
const MaxSilence = 90 * 24 * time.Hour

// CreateSilence mutes the alerts in.Rule (name or id), in.Host (name, id or
// VM resource id) and in.Labels select, from in.StartsAt (default now) to
// in.EndsAt. The rule and host are stored by id, so a rename does not
// change what is muted. The author is the caller's credential.
func (m *AlertAdmin) CreateSilence(ctx context.Context, in *tripcap.Silence) (*tripcap.Silence, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermMonitoringWrite, nil); err != nil {
		return nil, err
	}
	if in == nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "body: a silence is required")
	}
	if in.ID != "" || in.CreatedBy != "" || !in.CreatedAt.IsZero() {
		return nil, tripcap.Errorf(tripcap.EINVALID, "id, createdBy, createdAt: set by the server; leave them out")
	}
	c := *in
	c.Labels = slices.Clone(in.Labels)
	now := m.now().UTC()
	if c.StartsAt.IsZero() {
		c.StartsAt = now
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !c.EndsAt.After(now) {
		return nil, tripcap.Errorf(tripcap.EINVALID, "endsAt: %s is in the past", c.EndsAt.Format(time.RFC3339))
	}
	if c.EndsAt.Sub(c.StartsAt) > MaxSilence {
		return nil, tripcap.Errorf(tripcap.EINVALID, "endsAt: a silence lasts at most %d days; disable the rule instead", int(MaxSilence/(24*time.Hour)))
	}
	if c.Rule != "" {
		r, err := m.resolveRule(ctx, c.Rule)
		if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
			return nil, tripcap.Errorf(tripcap.EINVALID, "rule: no alert rule %q", c.Rule)
		} else if err != nil {
			return nil, err
		}
		c.Rule = r.ID
	}
	if c.Host != "" {
		h, err := tripcap.FindHostByRef(ctx, m.hosts, c.Host)
		if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
			return nil, tripcap.Errorf(tripcap.EINVALID, "host: no host %q", c.Host)
		} else if err != nil {
			return nil, err
		}
		c.Host = h.ID
	}
	if p := tripcap.PrincipalFromContext(ctx); p.Name != "" {
		c.CreatedBy = p.Name
	} else {
		c.CreatedBy = "credential " + p.CredentialID
	}
	c.ID, c.CreatedAt = tripcap.NewID(), now
	if err := m.store.CreateSilence(ctx, &c); err != nil {
		return nil, err
	}
	m.log.Info("silence created", "silence", c.ID, "rule", c.Rule, "host", c.Host, "labels", c.Labels,
		"starts", c.StartsAt, "ends", c.EndsAt, "by", c.CreatedBy)
	return &c, nil
}

// FindSilences lists the silences not yet ended, or every one kept when all is set.
func (m *AlertAdmin) FindSilences(ctx context.Context, all bool) ([]*tripcap.Silence, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermRead, nil); err != nil {
		return nil, err
	}
	f := tripcap.SilenceFilter{}
	if !all {
		now := m.now().UTC()
		f.EndedAfter = &now
	}
	return m.store.FindSilences(ctx, f)
}

// ExpireSilence ends a silence now; it is kept, as the record of the mute.
func (m *AlertAdmin) ExpireSilence(ctx context.Context, id string) (*tripcap.Silence, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermMonitoringWrite, nil); err != nil {
		return nil, err
	}
	if !tripcap.IsID(id) {
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "silence %q not found", id)
	}
	sl, err := m.store.ExpireSilence(ctx, id, m.now().UTC())
	if err != nil {
		return nil, err
	}
	m.log.Info("silence expired", "silence", sl.ID, "by", tripcap.PrincipalFromContext(ctx).Name)
	return sl, nil
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
	p, err := tripcap.AuthorizeSome(ctx, tripcap.PermRead)
	if err != nil {
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
		if err == nil {
			err = tripcap.AuthorizeAt(ctx, tripcap.PermRead, h, tripcap.NoHost(q.Host))
		}
		switch {
		case err == nil:
			f.HostID = &h.ID
		case tripcap.ErrorCode(err) == tripcap.ENOTFOUND && tripcap.IsID(q.Host) && p.Can(tripcap.PermRead, nil):
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
	if f.HostID != nil {
		return m.store.FindAlerts(ctx, f)
	}
	g, err := tripcap.GrantedHosts(ctx, m.hosts, tripcap.PermRead)
	if err != nil || g.All() {
		if err != nil {
			return nil, err
		}
		return m.store.FindAlerts(ctx, f)
	}
	return m.grantedAlerts(ctx, f, g)
}

// grantedAlerts lists the newest f.Limit alerts of the hosts g covers.
// Alerts page by limit alone (newest first), so it asks for twice as many
// each time until enough pass or the store has no more.
func (m *AlertAdmin) grantedAlerts(ctx context.Context, f tripcap.AlertFilter, g tripcap.HostGrant) ([]*tripcap.Alert, error) {
	if g.Empty() {
		return nil, nil
	}
	if id, ok := g.Only(); ok {
		f.HostID = &id
		return m.store.FindAlerts(ctx, f)
	}
	want := f.Limit
	for {
		as, err := m.store.FindAlerts(ctx, f)
		if err != nil {
			return nil, err
		}
		n := len(as)
		as = slices.DeleteFunc(as, func(a *tripcap.Alert) bool { return !g.Covers(a.HostID) })
		if len(as) >= want || n < f.Limit {
			return as[:min(len(as), want)], nil
		}
		f.Limit *= 2
	}
}

// AlertDetail is an alert with every delivery attempt of its transitions.
type AlertDetail struct {
	Alert      *tripcap.Alert      `json:"alert"`
	Deliveries []*tripcap.Delivery `json:"deliveries"`
}

// FindAlert returns an alert by id with its delivery log.
func (m *AlertAdmin) FindAlert(ctx context.Context, id string) (*AlertDetail, error) {
	if _, err := tripcap.AuthorizeSome(ctx, tripcap.PermRead); err != nil {
		return nil, err
	}
	notFound := tripcap.Errorf(tripcap.ENOTFOUND, "alert %q not found", id)
	if !tripcap.IsID(id) {
		return nil, notFound
	}
	a, err := m.store.FindAlert(ctx, id)
	if err != nil {
		return nil, err
	}
	h, err := tripcap.HostOf(ctx, m.hosts, a.HostID)
	if err != nil {
		return nil, err
	}
	if err := tripcap.AuthorizeAt(ctx, tripcap.PermRead, h, notFound); err != nil {
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
