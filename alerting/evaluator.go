// Package alerting evaluates metric alert rules against the metric store as
// points arrive: each (rule, host in scope) is an alert instance, evaluated
// at the rule's evaluationFrequency over its windowSize, and moved through
// Fired → Resolved. Transitions go to a callback, which the control plane
// hands to action groups and persists.
//
// Time is the data's time: an instance's evaluation due at second t runs as
// soon as the host's newest point reaches t, over the window (t-windowSize,
// t]. So a breach is judged the moment the second that completes it arrives,
// whatever the wall clock, and tests can replay series at any speed.
//
// Missing data is never zero: a window whose points cover less than
// MinCoverage of its seconds is "no data", and an evaluation where any
// criterion has no data changes nothing — no fire, no resolve; a fired
// alert stays fired until data shows the condition cleared.
package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/metricstore"
)

// Defaults of Config.
const (
	DefaultMinCoverage  = 0.8
	DefaultMaxResolved  = 10_000
	DefaultHostCacheTTL = 30 * time.Second
	// maxCatchUp bounds the evaluations one arrival runs for an instance
	// that fell behind (a host that sent an hour of points at once).
	maxCatchUp = 300
	// maxBackfill bounds the periods a new dynamic instance learns from
	// the store's history before its first evaluation.
	maxBackfill = 1440
)

// Source is where windows are read: *metricstore.Store.
type Source interface {
	SummarizeGrain(k metricstore.Key, end time.Time, window, grain time.Duration) metricstore.Grained
	Interfaces(host string, metric tripcap.MetricID) []string
}

// HostFunc returns a host by the id the metric store keys it by; ENOTFOUND
// when it is gone.
type HostFunc func(ctx context.Context, id string) (*tripcap.Host, error)

// Config configures an Evaluator.
type Config struct {
	Source Source
	Hosts  HostFunc
	// OnTransition receives a copy of each alert that fired or resolved,
	// and of a Fired alert its instance released (Alert.Released: the
	// condition cleared under a rule without autoMitigate; it is stored,
	// not delivered). It is called from the evaluating goroutine, outside
	// locks, before the instance is evaluated further; it should queue
	// slow work (deliveries) rather than do it. When it returns an
	// *tripcap.AlertFencedError (another replica's alert won in the
	// store), the instance adopts the winner in place of its own alert.
	OnTransition func(ctx context.Context, a tripcap.Alert) error
	// MinCoverage is the share of a window's seconds that must have points
	// for the window to count (default 0.8); below it the window is no data.
	MinCoverage float64
	// MaxResolved bounds the resolved alerts kept in memory for listings.
	MaxResolved int
	// Workers evaluate hosts in parallel in Run (default 2, the cores here).
	Workers int
	// HostCacheTTL is how long a host's scope attributes are cached.
	HostCacheTTL time.Duration
	NewID        func() string
	Now          func() time.Time
	Logger       *slog.Logger
}

// Evaluator evaluates rules; it is safe for concurrent use.
type Evaluator struct {
	cfg Config

	mu        sync.Mutex
	rules     map[string]*ruleState
	instances map[instanceKey]*instance
	// alerts holds every alert still in memory by id; active maps an
	// instance to its fired alert.
	alerts   map[string]*tripcap.Alert
	resolved []string // ids of closed alerts, oldest first
	hosts    map[string]cachedHost
	// gen counts changes of the rule set and instances; cached instance
	// lists of an older generation are rebuilt.
	gen uint64

	evaluations atomic.Uint64
	transitions atomic.Uint64

	pendMu  sync.Mutex
	pending map[string]time.Time
	busy    map[string]bool
	queued  map[string]bool
	queue   []string
	head    int
	wake    chan struct{}
	// notified is when each pending host was first notified since its last
	// take; lag counts from it to the end of the evaluation (Stats).
	notified map[string]time.Time
	lag      tripcap.LatencyHistogram
}

type cachedHost struct {
	host      *tripcap.Host
	at        time.Time
	gen       uint64
	instances []*instance
	// stale marks a list to rebuild (RestoreHosts added instances) while
	// the host's attributes stay cached.
	stale bool
}

type ruleState struct {
	rule   *tripcap.AlertRule
	freq   int64 // seconds
	window int64 // seconds
	// grain is the rule's time grain (tripcap.AlertRule.Grain).
	grain time.Duration
	hash  string
	// metrics is each criterion's metric, resolved from its name once.
	metrics []tripcap.MetricID
}

type instanceKey struct{ rule, host string }

type instance struct {
	mu       sync.Mutex
	rule     *ruleState
	host     string
	nextEval int64
	active   string // id of the fired alert, "" when none
	// baselines per dynamic criterion index and interface.
	baselines map[baselineKey]*baseline
}

type baselineKey struct {
	criterion int
	iface     string
}

// New returns an evaluator with no rules.
func New(cfg Config) (*Evaluator, error) {
	if cfg.Source == nil {
		return nil, fmt.Errorf("alerting: no metric source")
	}
	if cfg.Hosts == nil {
		return nil, fmt.Errorf("alerting: no host lookup")
	}
	if cfg.MinCoverage == 0 {
		cfg.MinCoverage = DefaultMinCoverage
	}
	if cfg.MinCoverage < 0 || cfg.MinCoverage > 1 {
		return nil, tripcap.Errorf(tripcap.EINVALID, "minCoverage: %v is outside 0..1", cfg.MinCoverage)
	}
	if cfg.MaxResolved == 0 {
		cfg.MaxResolved = DefaultMaxResolved
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.HostCacheTTL == 0 {
		cfg.HostCacheTTL = DefaultHostCacheTTL
	}
	if cfg.NewID == nil {
		cfg.NewID = tripcap.NewID
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("component", "alerting")
	if cfg.OnTransition == nil {
		cfg.OnTransition = func(context.Context, tripcap.Alert) error { return nil }
	}
	return &Evaluator{
		cfg: cfg, rules: map[string]*ruleState{}, instances: map[instanceKey]*instance{},
		alerts: map[string]*tripcap.Alert{}, hosts: map[string]cachedHost{},
		pending: map[string]time.Time{}, busy: map[string]bool{}, queued: map[string]bool{}, wake: make(chan struct{}, 1),
	}, nil
}

// SetRules replaces the rule set. Rules must have ids; each is validated
// (after defaults) and the first invalid one is refused with the whole set.
// Instances of rules that changed start afresh (baselines relearn from the
// store's history) but keep their fired alert; instances of rules removed
// or disabled are dropped, and their fired alerts stay as they are.
func (e *Evaluator) SetRules(rules []*tripcap.AlertRule) error {
	next := map[string]*ruleState{}
	for i, r := range rules {
		c := *r
		c.ApplyDefaults()
		if c.ID == "" {
			return tripcap.Errorf(tripcap.EINVALID, "rules[%d].id: required", i)
		}
		if err := c.Validate(); err != nil {
			return tripcap.Errorf(tripcap.EINVALID, "rules[%d] (%s): %s", i, c.Name, tripcap.ErrorMessage(err))
		}
		if !c.IsEnabled() {
			continue
		}
		js, _ := json.Marshal(&c)
		rs := &ruleState{rule: &c, freq: int64(c.Frequency() / time.Second), window: int64(c.Window() / time.Second), grain: c.Grain(), hash: string(js)}
		for j := range c.Criteria.AllOf {
			if cr := &c.Criteria.AllOf[j]; cr.Static != nil {
				rs.metrics = append(rs.metrics, cr.Static.Metric())
			} else {
				rs.metrics = append(rs.metrics, cr.Dynamic.Metric())
			}
		}
		next[c.ID] = rs
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, in := range e.instances {
		rs, ok := next[k.rule]
		if !ok {
			delete(e.instances, k)
			continue
		}
		if rs.hash != in.rule.hash {
			fresh := &instance{rule: rs, host: k.host, active: in.active, baselines: map[baselineKey]*baseline{}}
			e.instances[k] = fresh
		}
	}
	e.rules = next
	e.gen++
	return nil
}

// Rules returns the enabled rules being evaluated.
func (e *Evaluator) Rules() []*tripcap.AlertRule {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*tripcap.AlertRule, 0, len(e.rules))
	for _, r := range e.rules {
		out = append(out, r.rule)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Notify tells the evaluator a host has points up to newest; it is the
// metric store's OnAppend hook. It never blocks: Run's workers evaluate.
func (e *Evaluator) Notify(host string, newest time.Time) {
	now := time.Now()
	e.pendMu.Lock()
	if newest.After(e.pending[host]) {
		e.pending[host] = newest
	}
	if e.notified == nil {
		e.notified = map[string]time.Time{}
	}
	if _, ok := e.notified[host]; !ok {
		e.notified[host] = now
	}
	// A host is queued once; a busy host is queued again when its
	// worker finishes (see done).
	if !e.queued[host] && !e.busy[host] {
		e.queued[host] = true
		e.queue = append(e.queue, host)
	}
	e.pendMu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run evaluates notified hosts with cfg.Workers goroutines until ctx ends.
// A host is evaluated by one worker at a time, in the order hosts were
// notified; notifications that arrive meanwhile coalesce into its next
// evaluation.
func (e *Evaluator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range e.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				host, newest, notified, ok := e.take()
				if !ok {
					select {
					case <-ctx.Done():
						return
					case <-e.wake:
						continue
					}
				}
				if err := e.EvaluateHost(ctx, host, newest); err != nil && ctx.Err() == nil {
					e.cfg.Logger.Warn("evaluating host", "host", host, "err", err)
				}
				e.lag.Observe(time.Since(notified), 1)
				e.done(host)
			}
		}()
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

// take pops the next queued host (FIFO), with its newest point and when it
// was first notified of since it was last taken.
func (e *Evaluator) take() (string, time.Time, time.Time, bool) {
	e.pendMu.Lock()
	defer e.pendMu.Unlock()
	if e.head == len(e.queue) {
		return "", time.Time{}, time.Time{}, false
	}
	h := e.queue[e.head]
	e.queue[e.head] = ""
	e.head++
	if e.head == len(e.queue) {
		e.queue, e.head = e.queue[:0], 0
	} else if e.head > 1024 && e.head*2 > len(e.queue) {
		// Reuse the slice's front once most of it is consumed.
		n := copy(e.queue, e.queue[e.head:])
		e.queue, e.head = e.queue[:n], 0
	}
	delete(e.queued, h)
	t := e.pending[h]
	delete(e.pending, h)
	at := e.notified[h]
	delete(e.notified, h)
	e.busy[h] = true
	if e.head < len(e.queue) {
		// More work: wake another worker.
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
	return h, t, at, true
}

// done releases a host after its evaluation, queueing it again when it
// was notified meanwhile.
func (e *Evaluator) done(h string) {
	e.pendMu.Lock()
	delete(e.busy, h)
	_, again := e.pending[h]
	if again && !e.queued[h] {
		e.queued[h] = true
		e.queue = append(e.queue, h)
	}
	e.pendMu.Unlock()
	if again {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// hostInstances returns the host's instances: the host's attributes (for
// scopes) are looked up at most once per HostCacheTTL, and the list of
// instances in scope is rebuilt only then or when the rules change, so the
// per-second path takes one lock and no scope matching.
func (e *Evaluator) hostInstances(ctx context.Context, id string) (*tripcap.Host, []*instance, error) {
	now := e.cfg.Now()
	e.mu.Lock()
	c, ok := e.hosts[id]
	if ok && c.gen == e.gen && !c.stale && now.Sub(c.at) < e.cfg.HostCacheTTL && now.Sub(c.at) >= 0 {
		e.mu.Unlock()
		return c.host, c.instances, nil
	}
	e.mu.Unlock()
	h := c.host
	if !ok || now.Sub(c.at) >= e.cfg.HostCacheTTL || now.Sub(c.at) < 0 {
		var err error
		h, err = e.cfg.Hosts(ctx, id)
		if err != nil {
			if tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
				return nil, nil, fmt.Errorf("looking up host %s: %w", id, err)
			}
			h = nil
		}
		c.at = now
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var todo []*instance
	if h != nil {
		ids := make([]string, 0, len(e.rules))
		for rid := range e.rules {
			ids = append(ids, rid)
		}
		sort.Strings(ids)
		for _, rid := range ids {
			rs := e.rules[rid]
			if !rs.rule.InScope(h) {
				continue
			}
			k := instanceKey{rid, id}
			in := e.instances[k]
			if in == nil {
				in = &instance{rule: rs, host: id, baselines: map[baselineKey]*baseline{}}
				e.instances[k] = in
			}
			todo = append(todo, in)
		}
	}
	e.hosts[id] = cachedHost{host: h, at: c.at, gen: e.gen, instances: todo}
	return h, todo, nil
}

// EvaluateHost runs every evaluation due for the host's instances up to
// newest (the host's newest point), synchronously.
func (e *Evaluator) EvaluateHost(ctx context.Context, hostID string, newest time.Time) error {
	h, todo, err := e.hostInstances(ctx, hostID)
	if err != nil || h == nil {
		return err
	}
	for _, in := range todo {
		if err := ctx.Err(); err != nil {
			return err
		}
		e.evaluateInstance(ctx, in, h, newest.Unix())
	}
	return nil
}

func (e *Evaluator) evaluateInstance(ctx context.Context, in *instance, h *tripcap.Host, newest int64) {
	for {
		a, ok := e.evaluateUntilTransition(in, h, newest)
		if !ok {
			return
		}
		if !a.Released {
			e.transitions.Add(1)
		}
		// One transition at a time: the next evaluation must see the
		// winner the store chose if this one lost.
		var fenced *tripcap.AlertFencedError
		if err := e.cfg.OnTransition(ctx, a); errors.As(err, &fenced) && fenced.Winner != nil {
			e.adopt(in, a, fenced.Winner)
		}
	}
}

// evaluateUntilTransition runs the instance's due evaluations up to newest
// and stops after the first that changes the alert, returning it.
func (e *Evaluator) evaluateUntilTransition(in *instance, h *tripcap.Host, newest int64) (tripcap.Alert, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	rs := in.rule
	last := tripcap.AlignDown(newest, rs.freq)
	if first := last - (maxCatchUp-1)*rs.freq; in.nextEval == 0 {
		in.nextEval = last
	} else if in.nextEval < first {
		in.nextEval = first
	}
	for t := in.nextEval; t <= last; t += rs.freq {
		a, ok := e.evaluateAt(in, h, t)
		in.nextEval = t + rs.freq
		e.evaluations.Add(1)
		if ok {
			return a, true
		}
	}
	return tripcap.Alert{}, false
}

// adopt replaces the instance's alert lost with the one the store kept:
// another replica's active alert (the instance's from now on, which it
// resolves when the condition clears), or the stored resolution of the
// same alert. Nothing of lost was delivered.
func (e *Evaluator) adopt(in *instance, lost tripcap.Alert, winner *tripcap.Alert) {
	w := cloneAlert(winner)
	e.mu.Lock()
	defer e.mu.Unlock()
	if w.ID != lost.ID {
		delete(e.alerts, lost.ID)
	}
	if cur := e.alerts[w.ID]; w.MonitorCondition == tripcap.ConditionResolved && (cur == nil || cur.MonitorCondition != tripcap.ConditionResolved) {
		e.resolved = append(e.resolved, w.ID)
	}
	e.alerts[w.ID] = &w
	switch {
	case w.Active() && w.RuleID == in.rule.rule.ID && w.HostID == in.host:
		in.active = w.ID
	case in.active == lost.ID || in.active == w.ID:
		in.active = ""
	}
	e.cfg.Logger.Info("another replica's alert won; adopted it", "alert", lost.ID, "winner", w.ID, "rule", lost.RuleName, "host", lost.HostName,
		"monitorCondition", w.MonitorCondition)
}

// outcome of one criterion at one time.
type outcome int

const (
	noData outcome = iota
	notMet
	met
)

// evaluateAt evaluates the instance over the window ending at t and
// applies the state machine; it returns the alert when it changed state.
func (e *Evaluator) evaluateAt(in *instance, h *tripcap.Host, t int64) (tripcap.Alert, bool) {
	all, _, eval := e.conditions(in, t)
	return e.apply(in, h, all, eval)
}

// conditions evaluates every criterion of the instance's rule over the
// window ending at t: the outcome of all of them, of each, and the results.
func (e *Evaluator) conditions(in *instance, t int64) (outcome, []outcome, tripcap.AlertEvaluation) {
	rs := in.rule
	r := rs.rule
	results := make([]tripcap.ConditionResult, len(r.Criteria.AllOf))
	each := make([]outcome, len(r.Criteria.AllOf))
	all := met
	lookback := rs.window
	for i := range r.Criteria.AllOf {
		c := &r.Criteria.AllOf[i]
		if c.Static != nil {
			each[i], results[i] = e.static(in, i, c.Static, t)
		} else {
			each[i], results[i] = e.dynamic(in, i, c.Dynamic, t)
			lookback = max(lookback, rs.window*int64(c.Dynamic.FailingPeriods.NumberOfEvaluationPeriods))
		}
		all = min(all, each[i])
	}
	return all, each, tripcap.AlertEvaluation{
		Time: time.Unix(t, 0).UTC(), WindowStartTime: time.Unix(t-lookback, 0).UTC(), WindowEndTime: time.Unix(t, 0).UTC(), AllOf: results,
	}
}

// apply runs the state machine on one evaluation: it returns the alert
// when the instance fired or resolved.
func (e *Evaluator) apply(in *instance, h *tripcap.Host, all outcome, eval tripcap.AlertEvaluation) (tripcap.Alert, bool) {
	if all == noData {
		return tripcap.Alert{}, false
	}
	r := in.rule.rule
	e.mu.Lock()
	defer e.mu.Unlock()
	var a *tripcap.Alert
	if in.active != "" {
		a = e.alerts[in.active]
		if a == nil || !a.Active() {
			in.active, a = "", nil
		}
	}
	switch {
	case all == met && a == nil:
		eval.MonitorCondition = tripcap.ConditionFired
		a = &tripcap.Alert{
			ID: e.cfg.NewID(), RuleID: r.ID, RuleName: r.Name, Description: r.Description, Severity: r.SeverityLevel(),
			HostID: h.ID, HostName: h.Name, TargetResourceID: h.ResourceID(), SubscriptionID: h.SubscriptionID,
			ResourceGroup: h.ResourceGroup, Location: h.Location, ConditionType: r.ConditionType(), WindowSize: r.WindowSize,
			MonitorCondition: tripcap.ConditionFired, FiredAt: eval.Time, Condition: eval,
			History: []tripcap.AlertEvaluation{eval}, Actions: slices.Clone(r.Actions),
		}
		e.alerts[a.ID] = a
		in.active = a.ID
		return cloneAlert(a), true
	case all == notMet && a != nil:
		if !r.Mitigates() {
			// Without autoMitigate the alert stays Fired (Azure closes such
			// alerts by hand); the instance releases it, free to fire a new
			// one on the next breach. The release is stored, so that the
			// store's fence lets that one in.
			a.Released = true
			in.active = ""
			return cloneAlert(a), true
		}
		eval.MonitorCondition = tripcap.ConditionResolved
		at := eval.Time
		a.MonitorCondition, a.ResolvedAt, a.Condition = tripcap.ConditionResolved, &at, eval
		a.History = append(a.History, eval)
		in.active = ""
		e.resolved = append(e.resolved, a.ID)
		if len(e.resolved) > e.cfg.MaxResolved {
			delete(e.alerts, e.resolved[0])
			e.resolved = e.resolved[1:]
		}
		return cloneAlert(a), true
	}
	return tripcap.Alert{}, false
}

func cloneAlert(a *tripcap.Alert) tripcap.Alert {
	c := *a
	c.History = slices.Clone(a.History)
	c.Actions = slices.Clone(a.Actions)
	if a.ResolvedAt != nil {
		t := *a.ResolvedAt
		c.ResolvedAt = &t
	}
	return c
}

// seriesKeys appends to dst the series a criterion reads for a host: the
// host's own, or the interfaces its dimension selects. Callers pass a
// small array of their own, so an evaluation allocates no list.
func (e *Evaluator) seriesKeys(dst []metricstore.Key, host string, b *tripcap.MetricCriterion, m tripcap.MetricID) []metricstore.Key {
	if len(b.Dimensions) == 0 {
		return append(dst, metricstore.Key{Host: host, Metric: m})
	}
	d := b.Dimensions[0]
	var names []string
	if d.Operator == "Include" && !slices.Contains(d.Values, "*") {
		names = d.Values
	} else {
		for _, n := range e.cfg.Source.Interfaces(host, m) {
			if d.Operator == "Exclude" && slices.Contains(d.Values, n) {
				continue
			}
			names = append(names, n)
		}
	}
	for _, n := range names {
		dst = append(dst, metricstore.Key{Host: host, Metric: m, Interface: n})
	}
	return dst
}

// value reads a window's aggregated value at the rule's grain, or reports no data.
func (e *Evaluator) value(k metricstore.Key, end int64, window int64, grain time.Duration, agg tripcap.Aggregation) (float64, bool) {
	w := e.cfg.Source.SummarizeGrain(k, time.Unix(end, 0), time.Duration(window)*time.Second, grain)
	if w.Count == 0 || w.Coverage() < e.cfg.MinCoverage {
		return 0, false
	}
	return w.Value(agg)
}

func baseResult(b *tripcap.MetricCriterion, op tripcap.Operator, k metricstore.Key) tripcap.ConditionResult {
	def, _ := k.Metric.Definition()
	r := tripcap.ConditionResult{Name: b.Name, MetricName: def.DisplayName, MetricNamespace: b.MetricNamespace, Metric: k.Metric,
		Operator: op, TimeAggregation: b.TimeAggregation, Dimensions: []tripcap.DimensionValue{}}
	if k.Interface != "" {
		r.Dimensions = append(r.Dimensions, tripcap.DimensionValue{Name: tripcap.DimensionInterface, Value: k.Interface})
	}
	return r
}

// static evaluates a static criterion: met when any selected series'
// window value compares true; no data when no series has data.
func (e *Evaluator) static(in *instance, idx int, c *tripcap.StaticCriterion, t int64) (outcome, tripcap.ConditionResult) {
	o := noData
	var res tripcap.ConditionResult
	m := in.rule.metrics[idx]
	var buf [4]metricstore.Key
	for _, k := range e.seriesKeys(buf[:0], in.host, &c.MetricCriterion, m) {
		v, ok := e.value(k, t, in.rule.window, in.rule.grain, c.TimeAggregation)
		if !ok {
			continue
		}
		hit := c.Operator.Compare(v, c.Threshold)
		if o == noData || (hit && o != met) {
			res = baseResult(&c.MetricCriterion, c.Operator, k)
			res.MetricValue, res.Threshold, res.Met = v, c.Threshold, hit
			o = notMet
			if hit {
				o = met
			}
		}
	}
	if o == noData {
		res = baseResult(&c.MetricCriterion, c.Operator, metricstore.Key{Host: in.host, Metric: m})
		res.Threshold = c.Threshold
	}
	return o, res
}

// dynamic evaluates a dynamic criterion over its failing periods, then
// learns the periods completed by t.
func (e *Evaluator) dynamic(in *instance, idx int, c *tripcap.DynamicCriterion, t int64) (outcome, tripcap.ConditionResult) {
	ws := in.rule.window
	fp := c.FailingPeriods
	m := in.rule.metrics[idx]
	var buf [4]metricstore.Key
	keys := e.seriesKeys(buf[:0], in.host, &c.MetricCriterion, m)
	o := noData
	var res tripcap.ConditionResult
	for _, k := range keys {
		bl := in.baselines[baselineKey{idx, k.Interface}]
		if bl == nil {
			bl = &baseline{}
			in.baselines[baselineKey{idx, k.Interface}] = bl
			// A new instance learns from the store's history first, so a
			// rule created on a host with a day of data works at once.
			e.learn(bl, k, c, ws, t-ws, in.rule.grain)
		}
		cur, ok := e.value(k, t, ws, in.rule.grain, c.TimeAggregation)
		if !ok {
			continue
		}
		lower, upper, _, ready := bl.band(t, c.AlertSensitivity)
		if !ready {
			continue
		}
		failed := 0
		for p := range fp.NumberOfEvaluationPeriods {
			end := t - int64(p)*ws
			v := cur
			if p > 0 {
				if v, ok = e.value(k, end, ws, in.rule.grain, c.TimeAggregation); !ok {
					continue // a period without data does not fail
				}
			}
			lo, up, _, ok := bl.band(end, c.AlertSensitivity)
			if ok && outside(c.Operator, v, lo, up) {
				failed++
			}
		}
		hit := failed >= fp.MinFailingPeriodsToAlert
		if o == noData || (hit && o != met) {
			res = baseResult(&c.MetricCriterion, c.Operator, k)
			res.MetricValue, res.Met, res.FailedPeriods = cur, hit, failed
			res.AlertSensitivity = c.AlertSensitivity
			f := fp
			res.FailingPeriods = &f
			res.LowerBound, res.UpperBound = &lower, &upper
			// Threshold: the edge crossed, or the nearer edge.
			res.Threshold = upper
			if c.Operator == tripcap.OperatorLessThan || (c.Operator == tripcap.OperatorGreaterOrLessThan && cur-lower < upper-cur) {
				res.Threshold = lower
			}
			o = notMet
			if hit {
				o = met
			}
		}
	}
	// Learn the aligned periods t completed, after judging them.
	for _, k := range keys {
		if bl := in.baselines[baselineKey{idx, k.Interface}]; bl != nil {
			e.learn(bl, k, c, ws, t, in.rule.grain)
		}
	}
	if o == noData {
		res = baseResult(&c.MetricCriterion, c.Operator, metricstore.Key{Host: in.host, Metric: m})
		res.AlertSensitivity = c.AlertSensitivity
	}
	return o, res
}

// learn adds the aligned periods after the baseline's cursor and ending by
// upTo that have data; a new baseline starts maxBackfill periods back.
func (e *Evaluator) learn(bl *baseline, k metricstore.Key, c *tripcap.DynamicCriterion, ws, upTo int64, grain time.Duration) {
	upTo = tripcap.AlignDown(upTo, ws)
	first := bl.cursor + ws
	if bl.cursor == 0 || first < upTo-(maxBackfill-1)*ws {
		first = upTo - (maxBackfill-1)*ws
	}
	if upTo > bl.cursor {
		bl.cursor = upTo
	}
	for end := first; end <= upTo; end += ws {
		if c.IgnoreDataBefore != nil && end-ws < c.IgnoreDataBefore.Unix() {
			continue
		}
		if v, ok := e.value(k, end, ws, grain, c.TimeAggregation); ok {
			bl.learn(end, v)
		}
	}
}

// Alerts lists alerts in memory (fired ones and the latest resolved),
// newest first.
func (e *Evaluator) Alerts(f tripcap.AlertFilter) []tripcap.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []tripcap.Alert
	for _, a := range e.alerts {
		if f.Match(a) {
			out = append(out, cloneAlert(a))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].FiredAt.Equal(out[j].FiredAt) {
			return out[i].FiredAt.After(out[j].FiredAt)
		}
		return out[i].ID < out[j].ID
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out
}

// Alert returns one alert by id.
func (e *Evaluator) Alert(id string) (tripcap.Alert, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.alerts[id]
	if a == nil {
		return tripcap.Alert{}, tripcap.Errorf(tripcap.ENOTFOUND, "alert %q not found", id)
	}
	return cloneAlert(a), nil
}

// Restore loads alerts kept elsewhere (the database) after a restart, so a
// fired alert resolves rather than firing twice. Fired alerts become their
// instance's active alert.
func (e *Evaluator) Restore(alerts []tripcap.Alert) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gen++
	for i := range alerts {
		a := cloneAlert(&alerts[i])
		e.alerts[a.ID] = &a
		if a.MonitorCondition != tripcap.ConditionFired {
			e.resolved = append(e.resolved, a.ID)
			continue
		}
		if a.Released {
			continue // stays Fired, closed by hand; not its instance's
		}
		k := instanceKey{a.RuleID, a.HostID}
		in := e.instances[k]
		if in == nil {
			rs := e.rules[a.RuleID]
			if rs == nil {
				continue
			}
			in = &instance{rule: rs, host: a.HostID, baselines: map[baselineKey]*baseline{}}
			e.instances[k] = in
		}
		in.active = a.ID
	}
}

// Instances is the number of (rule, host) instances being evaluated.
func (e *Evaluator) Instances() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.instances)
}

// Stats count the evaluator's work, for /metrics and benchmarks.
type Stats struct {
	Rules       int    `json:"rules"`
	Instances   int    `json:"instances"`
	Evaluations uint64 `json:"evaluations"`
	Transitions uint64 `json:"transitions"`
	Fired       int    `json:"fired"`
	// EvaluationLag is the time from a host's notification (its points
	// stored) to the end of its evaluation, queueing included: the delay
	// evaluation adds to an alert.
	EvaluationLag tripcap.LatencySnapshot `json:"evaluationLag"`
}

// Stats returns the counts so far.
func (e *Evaluator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	fired := 0
	for _, a := range e.alerts {
		if a.MonitorCondition == tripcap.ConditionFired {
			fired++
		}
	}
	return Stats{Rules: len(e.rules), Instances: len(e.instances), Evaluations: e.evaluations.Load(), Transitions: e.transitions.Load(), Fired: fired,
		EvaluationLag: e.lag.Snapshot()}
}
