package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/alerting"
	"github.com/tripcap/tripcap/metricstore"
)

// Defaults of MonitorConfig.
const (
	DefaultRuleRefresh  = 10 * time.Second
	DefaultMetricWindow = 15 * time.Minute
	// deliveryGrace is how long a stopping Monitor lets deliveries under
	// way finish before it cancels them.
	deliveryGrace = 10 * time.Second
	// maxAlertList bounds one alert listing.
	maxAlertList = 1000
)

// MonitorConfig configures a Monitor.
type MonitorConfig struct {
	// SMTP is the mail server email receivers are delivered through; without
	// it action groups with email receivers are refused.
	SMTP *actiongroup.SMTPConfig
	// Metrics bounds the in-memory metric store (defaults: 1 h of 1-second
	// points, 24 h of 1-minute rollups).
	Metrics metricstore.Config
	// Retry bounds each delivery (defaults: 5 attempts, 1 s doubling to
	// 30 s, 2 min in all).
	Retry actiongroup.Retry
	// HTTPClient posts webhooks; nil uses actiongroup's (no redirects).
	HTTPClient *http.Client
	// PortalURL is the base URL alert links in payloads point to.
	PortalURL string
	// RuleRefresh is how often rules are read again from the store, so a
	// rule created through another replica is evaluated here too.
	RuleRefresh time.Duration
	// Responder acts on responder receivers (a *Responders); without it
	// action groups with responder receivers are refused.
	Responder actiongroup.Responder
}

// Monitor is tripcap's counterpart of Azure Monitor metric alerts: it takes
// agents' metric batches into an in-memory metric store, evaluates the alert
// rules as points arrive, persists each alert transition and delivers it to
// the rule's action groups, recording every attempt. Rules, action groups,
// alerts and delivery logs live in the store, so they survive a restart;
// metrics live in memory only. Create it with NewMonitor and start it with Run.
type Monitor struct {
	store    tripcap.Store
	log      *slog.Logger
	cfg      MonitorConfig
	metrics  *metricstore.Store
	eval     *alerting.Evaluator
	notifier *actiongroup.Notifier
	now      func() time.Time

	// rulesMu serializes loading rules into the evaluator; rulesKey is the
	// loaded set's fingerprint, so an unchanged set is not reloaded.
	rulesMu  sync.Mutex
	rulesKey string

	// deliveries run on their own context: an alert outlives the request or
	// evaluation that produced it. Run cancels it when it stops.
	deliverCtx    context.Context
	cancelDeliver context.CancelFunc
	inflight      sync.WaitGroup

	ingested      atomic.Uint64
	persistErrors atomic.Uint64
}

// NewMonitor returns a Monitor over store.
func NewMonitor(store tripcap.Store, log *slog.Logger, cfg MonitorConfig) (*Monitor, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.RuleRefresh <= 0 {
		cfg.RuleRefresh = DefaultRuleRefresh
	}
	if cfg.Metrics.Logger == nil {
		cfg.Metrics.Logger = log
	}
	m := &Monitor{store: store, log: log, cfg: cfg, now: time.Now}
	var err error
	if m.metrics, err = metricstore.New(cfg.Metrics); err != nil {
		return nil, fmt.Errorf("metric store: %w", err)
	}
	// Without a Responder, CreateActionGroup refuses responder receivers, so
	// no group can ask for one.
	if m.notifier, err = actiongroup.New(actiongroup.Config{SMTP: cfg.SMTP, Log: deliveryLog{store}, Retry: cfg.Retry,
		HTTPClient: cfg.HTTPClient, PortalURL: cfg.PortalURL, Logger: log, Responder: cfg.Responder}); err != nil {
		return nil, fmt.Errorf("action groups: %w", err)
	}
	m.eval, err = alerting.New(alerting.Config{
		Source: m.metrics,
		Hosts: func(ctx context.Context, id string) (*tripcap.Host, error) {
			return store.FindHost(ctx, tripcap.HostFilter{ID: &id})
		},
		OnTransition: m.onTransition,
		NewID:        tripcap.NewID,
		Logger:       log,
	})
	if err != nil {
		return nil, fmt.Errorf("alert evaluator: %w", err)
	}
	m.metrics.OnAppend(m.eval.Notify)
	m.deliverCtx, m.cancelDeliver = context.WithCancel(context.Background())
	return m, nil
}

// deliveryLog records delivery attempts in the store, per alert.
type deliveryLog struct{ store tripcap.Store }

func (l deliveryLog) RecordDelivery(ctx context.Context, d tripcap.Delivery) error {
	return l.store.AppendDelivery(ctx, &d)
}

// Run loads the rules and the alerts still Fired (so a fired alert resolves
// after a restart rather than firing again), then evaluates arriving
// metrics, prunes the metric store and re-reads the rules every
// RuleRefresh, until ctx ends. Deliveries under way get a short grace to
// finish; the rest are cancelled (their attempts so far are logged).
func (m *Monitor) Run(ctx context.Context) error {
	defer m.stopDeliveries()
	for attempt := 0; ; attempt++ {
		err := m.start(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		m.log.Error("loading alert rules and fired alerts; retrying", "err", err)
		sleep(ctx, min(time.Second<<min(attempt, 5), 30*time.Second))
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); m.metrics.Run(ctx) }()
	go func() { defer wg.Done(); _ = m.eval.Run(ctx) }()
	t := time.NewTicker(m.cfg.RuleRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			if err := m.refreshRules(ctx); err != nil && ctx.Err() == nil {
				m.log.Error("re-reading alert rules", "err", err)
			}
		}
	}
}

// start loads the rules, then restores the fired alerts onto their rules'
// instances (Restore needs the rules loaded first).
func (m *Monitor) start(ctx context.Context) error {
	if err := m.refreshRules(ctx); err != nil {
		return err
	}
	fired := tripcap.ConditionFired
	alerts, err := m.store.FindAlerts(ctx, tripcap.AlertFilter{MonitorCondition: &fired})
	if err != nil {
		return fmt.Errorf("find fired alerts: %w", err)
	}
	restore := make([]tripcap.Alert, len(alerts))
	for i, a := range alerts {
		restore[i] = *a
	}
	m.eval.Restore(restore)
	if len(restore) > 0 {
		m.log.Info("restored fired alerts", "alerts", len(restore))
	}
	return nil
}

func (m *Monitor) stopDeliveries() {
	done := make(chan struct{})
	go func() { m.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(deliveryGrace):
		m.log.Warn("alert deliveries still under way at shutdown; cancelling them")
	}
	m.cancelDeliver()
	<-done
}

// refreshRules loads the store's rules into the evaluator when they changed.
// A stored rule the evaluator refuses (written by another version, say) is
// logged and left out, rather than stopping every other rule.
func (m *Monitor) refreshRules(ctx context.Context) error {
	m.rulesMu.Lock()
	defer m.rulesMu.Unlock()
	rules, err := m.store.FindAlertRules(ctx, tripcap.AlertRuleFilter{})
	if err != nil {
		return fmt.Errorf("find alert rules: %w", err)
	}
	var b strings.Builder
	valid := rules[:0]
	for _, r := range rules {
		c := *r
		c.ApplyDefaults()
		if err := c.Validate(); err != nil {
			m.log.Error("a stored alert rule is not valid; it is not evaluated", "rule", r.Name, "id", r.ID, "err", err)
			continue
		}
		valid = append(valid, r)
		fmt.Fprintf(&b, "%s@%d;", r.ID, r.UpdatedAt.UnixNano())
	}
	if b.String() == m.rulesKey {
		return nil
	}
	if err := m.eval.SetRules(valid); err != nil {
		return fmt.Errorf("load alert rules: %w", err)
	}
	m.rulesKey = b.String()
	m.log.Debug("alert rules loaded", "rules", len(valid))
	return nil
}

// onTransition persists an alert that fired or resolved, then delivers it
// to the rule's action groups in the background. It runs on an evaluator
// worker: persisting first means a restart finds the alert (and the
// delivery log has its alert), and delivering in the background keeps a
// slow receiver from holding up evaluation.
func (m *Monitor) onTransition(ctx context.Context, a tripcap.Alert) {
	m.log.Info("alert "+strings.ToLower(string(a.MonitorCondition)), "alert", a.ID, "rule", a.RuleName, "host", a.HostName, "severity", tripcap.SeverityName(a.Severity))
	if err := m.persist(ctx, a); err != nil {
		m.persistErrors.Add(1)
		m.log.Error("persisting an alert; it is delivered but will not survive a restart", "alert", a.ID, "err", err)
	}
	if len(a.Actions) == 0 {
		return
	}
	m.inflight.Add(1)
	go func() {
		defer m.inflight.Done()
		m.notifier.NotifyAlert(m.deliverCtx, a, m.findGroup)
	}()
}

// persist writes the alert, trying a few times over a brief outage.
func (m *Monitor) persist(ctx context.Context, a tripcap.Alert) error {
	// The evaluation's context ends with the server; the write should not.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var err error
	for attempt := range 3 {
		if err = m.store.UpsertAlert(ctx, &a); err == nil || tripcap.ErrorCode(err) != tripcap.EINTERNAL {
			return err
		}
		sleep(ctx, time.Duration(attempt+1)*200*time.Millisecond)
	}
	return err
}

func (m *Monitor) findGroup(ctx context.Context, id string) (*tripcap.ActionGroup, error) {
	return m.store.FindActionGroup(ctx, tripcap.ActionGroupFilter{ID: &id})
}

// MonitorStats are the Monitor's sizes and running totals, for /metrics.
type MonitorStats struct {
	Metrics        metricstore.Stats `json:"metrics"`
	Alerting       alerting.Stats    `json:"alerting"`
	PointsIngested uint64            `json:"pointsIngested"`
	PersistErrors  uint64            `json:"persistErrors"`
}

// Stats returns the Monitor's sizes and totals now.
func (m *Monitor) Stats() MonitorStats {
	return MonitorStats{Metrics: m.metrics.Stats(), Alerting: m.eval.Stats(), PointsIngested: m.ingested.Load(), PersistErrors: m.persistErrors.Load()}
}

// IngestMetrics stores a batch from the calling agent. Every point is set
// to the agent's own host, whatever the batch says: an agent speaks only for
// its host. Points the store cannot keep (too old, repeated) are counted in
// the result rather than refused, so one late point does not cost a batch.
func (m *Monitor) IngestMetrics(ctx context.Context, b tripcap.MetricBatch) (metricstore.AppendResult, error) {
	hostID, err := requireAgent(ctx)
	if err != nil {
		return metricstore.AppendResult{}, err
	}
	for i := range b.Points {
		b.Points[i].Host = hostID
	}
	res, err := m.metrics.Append(b)
	if err != nil {
		return res, err
	}
	m.ingested.Add(uint64(res.Stored))
	return res, nil
}

// MetricsQuery asks for one series of a host over a window.
type MetricsQuery struct {
	// Host is a host name, id or VM resource id.
	Host string
	// Metric is tripcap's id, Azure's name or the Prometheus name.
	Metric string
	// Interface selects an interface's series; "" the host's.
	Interface string
	// Window defaults to 15 minutes; Interval to Window/60 (at least 1 s).
	Window, Interval time.Duration
	// Aggregation defaults to the metric's default (Total for counters).
	Aggregation string
	// End defaults to now.
	End time.Time
}

// QueryMetrics returns a host's series over a window, one value per
// interval; intervals without points have no value (never 0).
func (m *Monitor) QueryMetrics(ctx context.Context, q MetricsQuery) (*metricstore.Result, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	metric, err := tripcap.ParseMetric("metric", q.Metric)
	if err != nil {
		return nil, err
	}
	def, _ := metric.Definition()
	var agg tripcap.Aggregation
	if q.Aggregation != "" {
		if agg, err = tripcap.ParseAggregation("aggregation", q.Aggregation); err != nil {
			return nil, err
		}
	}
	if q.Interface != "" && !def.PerInterface {
		return nil, tripcap.Errorf(tripcap.EINVALID, "interface: %s has no per-interface series", def.DisplayName)
	}
	if q.Window == 0 {
		q.Window = DefaultMetricWindow
	}
	h, err := tripcap.FindHostByRef(ctx, m.store, q.Host)
	if err != nil {
		return nil, err
	}
	res, err := m.metrics.Query(metricstore.Query{Host: h.ID, Metric: metric, Interface: q.Interface, End: q.End,
		Window: q.Window, Interval: q.Interval, Aggregation: agg})
	if err != nil {
		return nil, err
	}
	// The store keys series by host id; callers asked by name.
	res.Host = h.Name
	return res, nil
}

// MetricDefinitions lists the host metrics: their ids, Azure and
// Prometheus names, units and default aggregations.
func (m *Monitor) MetricDefinitions(ctx context.Context) ([]tripcap.MetricDefinition, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	return tripcap.MetricDefinitions(), nil
}

// lastSegment returns the name an ARM resource id ends with, when ref is
// one of the given type ("/…/metricAlerts/NAME"), else ref.
func lastSegment(ref, typ string) string {
	if i := strings.LastIndex(strings.ToLower(ref), "/"+strings.ToLower(typ)+"/"); strings.HasPrefix(ref, "/") && i >= 0 {
		return ref[i+len(typ)+2:]
	}
	return ref
}

// resolveRule finds a rule by id, name (any case) or metricAlerts resource id.
func (m *Monitor) resolveRule(ctx context.Context, ref string) (*tripcap.AlertRule, error) {
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
func (m *Monitor) resolveGroup(ctx context.Context, ref string) (*tripcap.ActionGroup, error) {
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
func (m *Monitor) CreateRule(ctx context.Context, r *tripcap.AlertRule) (*tripcap.AlertRule, error) {
	if err := requireAdmin(ctx); err != nil {
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
	if err := m.refreshRules(ctx); err != nil {
		// Stored: the next periodic refresh loads it.
		m.log.Error("loading alert rules after a create", "err", err)
	}
	return &c, nil
}

// fitsStore refuses windows longer than the metric store keeps.
func (m *Monitor) fitsStore(r *tripcap.AlertRule) error {
	keep := m.metrics.Config().Rollup
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
func (m *Monitor) FindRules(ctx context.Context) ([]*tripcap.AlertRule, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	return m.store.FindAlertRules(ctx, tripcap.AlertRuleFilter{})
}

// FindRule returns a rule by name, id or metricAlerts resource id.
func (m *Monitor) FindRule(ctx context.Context, ref string) (*tripcap.AlertRule, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	return m.resolveRule(ctx, ref)
}

// DeleteRule deletes a rule and stops evaluating it. Its alerts stay, with
// their history and delivery logs; one still Fired stays Fired.
func (m *Monitor) DeleteRule(ctx context.Context, ref string) error {
	if err := requireAdmin(ctx); err != nil {
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
	if err := m.refreshRules(ctx); err != nil {
		m.log.Error("loading alert rules after a delete", "err", err)
	}
	return nil
}

// CreateActionGroup validates and stores an action group, with a new
// signing secret for its webhook deliveries. The secret is in the answer,
// and only there: listings and lookups leave it out.
func (m *Monitor) CreateActionGroup(ctx context.Context, g *tripcap.ActionGroup) (*tripcap.ActionGroup, error) {
	if err := requireAdmin(ctx); err != nil {
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
		c.Enabled = ptr(true)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if len(c.ResponderReceivers) > 0 && m.cfg.Responder == nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "responderReceivers[0]: this server has no responder service configured; use webhookReceivers or emailReceivers")
	}
	for i, rr := range c.ResponderReceivers {
		if err := m.checkResponderReceiver(ctx, i, rr); err != nil {
			return nil, err
		}
	}
	if len(c.EmailReceivers) > 0 && m.cfg.SMTP == nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "emailReceivers[0]: this server has no SMTP server configured, so it cannot send email")
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
func (m *Monitor) FindActionGroups(ctx context.Context) ([]*tripcap.ActionGroup, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	gs, err := m.store.FindActionGroups(ctx, tripcap.ActionGroupFilter{})
	for _, g := range gs {
		g.SigningSecret = ""
	}
	return gs, err
}

// FindActionGroup returns an action group by name, id or resource id, without its secret.
func (m *Monitor) FindActionGroup(ctx context.Context, ref string) (*tripcap.ActionGroup, error) {
	if err := requireAdmin(ctx); err != nil {
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
func (m *Monitor) DeleteActionGroup(ctx context.Context, ref string) error {
	if err := requireAdmin(ctx); err != nil {
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
func (m *Monitor) FindAlerts(ctx context.Context, q AlertQuery) ([]*tripcap.Alert, error) {
	if err := requireAdmin(ctx); err != nil {
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
		case tripcap.ErrorCode(err) == tripcap.ENOTFOUND && looksLikeID(q.Rule):
			// Alerts outlive their rule: a deleted rule's id still selects them.
			f.RuleID = &q.Rule
		default:
			return nil, err
		}
	}
	if q.Host != "" {
		h, err := tripcap.FindHostByRef(ctx, m.store, q.Host)
		switch {
		case err == nil:
			f.HostID = &h.ID
		case tripcap.ErrorCode(err) == tripcap.ENOTFOUND && looksLikeID(q.Host):
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

// looksLikeID reports whether s could be an id tripcap made (tripcap.NewID).
func looksLikeID(s string) bool {
	if len(s) != 26 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return true
}

// AlertDetail is an alert with every delivery attempt of its transitions.
type AlertDetail struct {
	Alert      *tripcap.Alert      `json:"alert"`
	Deliveries []*tripcap.Delivery `json:"deliveries"`
}

// FindAlert returns an alert by id with its delivery log.
func (m *Monitor) FindAlert(ctx context.Context, id string) (*AlertDetail, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if !looksLikeID(id) {
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

func ptr[T any](v T) *T { return &v }

// checkResponderReceiver makes sure a responder receiver names a responder
// (by id or name; the name of the receiver when responderId is empty).
func (m *Monitor) checkResponderReceiver(ctx context.Context, i int, rr tripcap.ResponderReceiver) error {
	ref := rr.ResponderID
	if ref == "" {
		ref = rr.Name
	}
	for _, f := range []tripcap.ResponderFilter{{ID: &ref}, {Name: &ref}} {
		_, err := m.store.FindResponder(ctx, f)
		switch tripcap.ErrorCode(err) {
		case "":
			return nil
		case tripcap.ENOTFOUND, tripcap.EINVALID:
		default:
			return err
		}
	}
	return tripcap.Errorf(tripcap.EINVALID, "responderReceivers[%d].responderId: no responder %q", i, ref)
}
