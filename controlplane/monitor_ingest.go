package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// MetricIngest takes agents' metric batches into an in-memory metric
// store, evaluates the alert rules as points arrive, persists each alert
// transition and delivers it to the rule's action groups, recording every
// attempt. It answers metric queries. Create it with NewMetricIngest (or
// NewMonitor) and start it with Run.
type MetricIngest struct {
	store    tripcap.AlertStore
	hosts    tripcap.HostFinder
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
	refused       refusedCounts
	persistErrors atomic.Uint64
	delay         pointDelay // how late points arrive (point_delay.go)

	// feeds, attachGap, attachHold and attachHistories: attaching hosts
	// (monitor_attach.go).
	feeds                 feeds
	attachGap, attachHold time.Duration
	attachHistories       int
}

// NewMetricIngest returns the ingest and evaluation of alerts over store.
func NewMetricIngest(store tripcap.AlertStore, hosts tripcap.HostFinder, log *slog.Logger, cfg MonitorConfig) (*MetricIngest, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.RuleRefresh <= 0 {
		cfg.RuleRefresh = DefaultRuleRefresh
	}
	if cfg.AttachGap <= 0 {
		cfg.AttachGap = DefaultAttachGap
	}
	if cfg.AttachHold <= 0 {
		cfg.AttachHold = DefaultAttachHold
	}
	if cfg.AttachHistories <= 0 {
		cfg.AttachHistories = DefaultAttachHistories
	}
	if cfg.Metrics.Logger == nil {
		cfg.Metrics.Logger = log
	}
	m := &MetricIngest{store: store, hosts: hosts, log: log, cfg: cfg, now: time.Now,
		feeds: newFeeds(), attachGap: cfg.AttachGap, attachHold: cfg.AttachHold, attachHistories: cfg.AttachHistories}
	var err error
	if m.metrics, err = metricstore.New(cfg.Metrics); err != nil {
		return nil, fmt.Errorf("metric store: %w", err)
	}
	// Without a Responder, CreateActionGroup refuses responder receivers, so
	// no group can ask for one.
	if m.notifier, err = actiongroup.New(actiongroup.Config{SMTP: cfg.SMTP, Log: deliveryLog{store}, Retry: cfg.Retry,
		Targets: cfg.WebhookTargets, PortalURL: cfg.PortalURL, Logger: log, Responder: cfg.Responder}); err != nil {
		return nil, fmt.Errorf("action groups: %w", err)
	}
	m.eval, err = alerting.New(alerting.Config{
		Source: m.metrics,
		Hosts: func(ctx context.Context, id string) (*tripcap.Host, error) {
			return hosts.FindHost(ctx, tripcap.HostFilter{ID: &id})
		},
		OnTransition: m.onTransition,
		NewID:        tripcap.NewID,
		Logger:       log,
	})
	if err != nil {
		return nil, fmt.Errorf("alert evaluator: %w", err)
	}
	m.metrics.OnAppend(m.notify)
	m.deliverCtx, m.cancelDeliver = context.WithCancel(context.Background())
	return m, nil
}

// deliveryLog records delivery attempts in the store, per alert.
type deliveryLog struct{ store tripcap.AlertStore }

func (l deliveryLog) RecordDelivery(ctx context.Context, d tripcap.Delivery) error {
	return l.store.AppendDelivery(ctx, &d)
}

// Run loads the rules and the alerts still Fired (so a fired alert resolves
// after a restart rather than firing again), then evaluates arriving
// metrics, prunes the metric store and re-reads the rules every
// RuleRefresh, until ctx ends. Deliveries under way get a short grace to
// finish; the rest are cancelled (their attempts so far are logged).
func (m *MetricIngest) Run(ctx context.Context) error {
	defer m.stopDeliveries()
	retry := tripcap.Backoff{Max: 30 * time.Second}
	for {
		err := m.start(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		m.log.Error("loading alert rules and fired alerts; retrying", "err", err)
		tripcap.Sleep(ctx, retry.Next())
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
func (m *MetricIngest) start(ctx context.Context) error {
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

func (m *MetricIngest) stopDeliveries() {
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
func (m *MetricIngest) refreshRules(ctx context.Context) error {
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
// slow receiver from holding up evaluation. The store fences replicas: a
// transition another replica made first (*tripcap.AlertFencedError) is
// not delivered, and the error goes back to the evaluator, which adopts
// the winner. A released alert (stays Fired, see tripcap.Alert.Released)
// is stored and not delivered: its receivers heard it fire.
func (m *MetricIngest) onTransition(ctx context.Context, a tripcap.Alert) error {
	if a.Released {
		err := m.persist(ctx, a)
		if err != nil && !isFenced(err) {
			m.persistErrors.Add(1)
			m.log.Error("persisting a released alert; its rule may not fire again on this host until it is stored", "alert", a.ID, "err", err)
			return err
		}
		m.log.Debug("alert released (the rule does not auto-mitigate; it stays Fired)", "alert", a.ID, "rule", a.RuleName, "host", a.HostName)
		return err // fenced: the evaluator adopts what the store holds
	}
	m.silence(ctx, &a)
	var fenced *tripcap.AlertFencedError
	if err := m.persist(ctx, a); errors.As(err, &fenced) {
		m.log.Info("alert "+strings.ToLower(string(a.MonitorCondition))+" by another replica first; not delivered here", "alert", a.ID,
			"winner", fenced.WinnerID, "rule", a.RuleName, "host", a.HostName)
		return err
	} else if err != nil {
		m.persistErrors.Add(1)
		m.log.Error("persisting an alert; it is delivered but will not survive a restart", "alert", a.ID, "err", err)
	}
	m.log.Info("alert "+strings.ToLower(string(a.MonitorCondition)), "alert", a.ID, "rule", a.RuleName, "host", a.HostName,
		"severity", tripcap.SeverityName(a.Severity), "silenced", a.Silenced)
	if len(a.Actions) == 0 || a.Silenced {
		return nil
	}
	m.inflight.Add(1)
	go func() {
		defer m.inflight.Done()
		m.notifier.NotifyAlert(m.deliverCtx, a, m.findGroup)
	}()
	return nil
}

// isFenced reports the store's refusal of a transition another replica made first.
func isFenced(err error) bool {
	var fe *tripcap.AlertFencedError
	return errors.As(err, &fe)
}

// silence marks a transition that silences mute: one an active silence
// matches now, and a Resolved one whose Fired was muted (its receivers
// never heard of the alert, so they are not told it ended). When
// the silences cannot be read the alert is delivered: a muted alert that
// gets through costs less than an incident no one hears about.
func (m *MetricIngest) silence(ctx context.Context, a *tripcap.Alert) {
	a.Silenced, a.SilencedBy = false, nil
	a.History = slices.Clone(a.History)
	if a.MonitorCondition == tripcap.ConditionResolved {
		// The evaluator's copy of the history does not know which
		// transitions were muted; the stored one does.
		if prev, err := m.store.FindAlert(ctx, a.ID); err == nil {
			for i := range min(len(prev.History), len(a.History)) {
				a.History[i].Silenced = prev.History[i].Silenced
			}
			if len(prev.History) > 0 && prev.History[0].Silenced {
				a.Silenced, a.SilencedBy = true, prev.SilencedBy
			}
		}
	}
	if !a.Silenced {
		// Silences mute by the wall clock: "for 2h" means from now.
		at := m.now().UTC()
		active, err := m.store.FindSilences(ctx, tripcap.SilenceFilter{ActiveAt: &at})
		if err != nil {
			m.log.Error("reading silences; the alert is delivered", "alert", a.ID, "err", err)
			return
		}
		var h *tripcap.Host
		for _, sl := range active {
			if len(sl.Labels) > 0 && h == nil {
				// Label matchers need the host's labels; read them once
				// (a host gone matches no label).
				h, _ = m.hosts.FindHost(ctx, tripcap.HostFilter{ID: &a.HostID})
			}
			if sl.Matches(a, h) {
				a.Silenced = true
				a.SilencedBy = append(a.SilencedBy, sl.ID)
			}
		}
	}
	if a.Silenced {
		a.Condition.Silenced = true
		if n := len(a.History); n > 0 {
			a.History[n-1].Silenced = true
		}
	}
}

// persist writes the alert, trying a few times over a brief outage; the
// store's fence (*tripcap.AlertFencedError, ECONFLICT) is returned at once.
func (m *MetricIngest) persist(ctx context.Context, a tripcap.Alert) error {
	// The evaluation's context ends with the server; the write should not.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var err error
	for attempt := range 3 {
		if err = m.store.UpsertAlert(ctx, &a); err == nil || tripcap.ErrorCode(err) != tripcap.EINTERNAL {
			return err
		}
		tripcap.Sleep(ctx, time.Duration(attempt+1)*200*time.Millisecond)
	}
	return err
}

func (m *MetricIngest) findGroup(ctx context.Context, id string) (*tripcap.ActionGroup, error) {
	return m.store.FindActionGroup(ctx, tripcap.ActionGroupFilter{ID: &id})
}

// MonitorStats are the Monitor's sizes and running totals, for /metrics.
type MonitorStats struct {
	Metrics        metricstore.Stats `json:"metrics"`
	Alerting       alerting.Stats    `json:"alerting"`
	PointsIngested uint64            `json:"pointsIngested"`
	PointsRefused  PointsRefused     `json:"pointsRefused"`
	Attach         AttachStats       `json:"attach"`
	PersistErrors  uint64            `json:"persistErrors"`
	// PointDelay is how late points arrived: the wall clock at ingest
	// minus the point's second.
	PointDelay tripcap.LatencySnapshot `json:"pointDelay"`
}

// Stats returns the ingest's sizes and totals now.
func (m *MetricIngest) Stats() MonitorStats {
	return MonitorStats{Metrics: m.metrics.Stats(), Alerting: m.eval.Stats(), PointsIngested: m.ingested.Load(), PersistErrors: m.persistErrors.Load(),
		PointsRefused: PointsRefused{Duplicates: m.refused.duplicates.Load(), TooOld: m.refused.tooOld.Load(),
			TooNew: m.refused.tooNew.Load(), OverLimit: m.refused.overLimit.Load()},
		Attach:     m.attachStats(),
		PointDelay: m.delay.h.Snapshot()}
}

// IngestMetrics stores a batch from the calling agent (the JSON batches
// of agents below protocol version 2, and tests). Every point is set to
// the agent's own host, whatever the batch says: an agent speaks only for
// its host. Points the store cannot keep (too old, repeated) are counted
// in the result rather than refused, so one late point does not cost a
// batch. Points that end a gap attach the host (monitor_attach.go).
func (m *MetricIngest) IngestMetrics(ctx context.Context, b tripcap.MetricBatch) (metricstore.AppendResult, error) {
	hostID, err := requireAgent(ctx)
	if err != nil {
		return metricstore.AppendResult{}, err
	}
	res, err := m.ingest(ctx, hostID, b, false)
	return res.AppendResult, err
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
func (m *MetricIngest) QueryMetrics(ctx context.Context, q MetricsQuery) (*metricstore.Result, error) {
	if _, err := tripcap.AuthorizeSome(ctx, tripcap.PermRead); err != nil {
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
	h, err := m.readableHost(ctx, q.Host)
	if err != nil {
		return nil, err
	}
	if res, ok, err := m.queryRemote(ctx, h, metric, agg, q); ok {
		return res, err
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

// readableHost is the host ref names, when the caller may read it
// (ENOTFOUND, as for no host, when it may not).
func (m *MetricIngest) readableHost(ctx context.Context, ref string) (*tripcap.Host, error) {
	h, err := tripcap.FindHostByRef(ctx, m.hosts, ref)
	if err == nil {
		err = tripcap.AuthorizeAt(ctx, tripcap.PermRead, h, tripcap.NoHost(ref))
	}
	if err != nil {
		return nil, err
	}
	return h, nil
}

// MetricDefinitions lists the host metrics: their ids, Azure and
// Prometheus names, units and default aggregations.
func (m *MetricIngest) MetricDefinitions(ctx context.Context) ([]tripcap.MetricDefinition, error) {
	if _, err := tripcap.AuthorizeSome(ctx, tripcap.PermRead); err != nil {
		return nil, err
	}
	return tripcap.MetricDefinitions(), nil
}
