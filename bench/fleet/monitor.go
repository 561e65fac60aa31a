package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// With -metrics every simulated agent ships its points (values.go) and the
// server evaluates 10 rules on every host; 1 % of the hosts a minute
// breach, and a responder captures on each.

// fleetLabel is the label every simulated host enrolls with in -metrics
// mode; the rules are scoped by it, as a user scopes rules by a label all
// their hosts carry.
const fleetLabel, fleetLabelValue = "fleet", "bench"

// breachCapture is the responder's capture name: the stub engine knows a
// breach's capture by it (the probe's and the setup's have others).
const breachCapture = "breach"

// breachSeconds is how long a breach lasts.
const breachSeconds = 15

// monitorRules are the rules every host is in scope of: static and
// dynamic, at 1 s and 1 min frequencies. Two fire on a breach at 1 s
// (the one with the action group, and a per-interface packet rule); the
// others watch traffic that stays normal.
func monitorRules(groupID string) []*tripcap.AlertRule {
	scope := []tripcap.Scope{tripcap.Scope("label:" + fleetLabel + "=" + fleetLabelValue)}
	static := func(name string, m tripcap.MetricID, agg tripcap.Aggregation, threshold float64, freq, window string, iface string) *tripcap.AlertRule {
		def, _ := m.Definition()
		c := &tripcap.StaticCriterion{MetricCriterion: tripcap.MetricCriterion{CriterionType: tripcap.StaticThresholdCriterion,
			Name: "c", MetricName: def.DisplayName, TimeAggregation: agg}, Operator: tripcap.OperatorGreaterThan, Threshold: threshold}
		if iface != "" {
			c.Dimensions = []tripcap.Dimension{{Name: tripcap.DimensionInterface, Operator: "Include", Values: []string{iface}}}
		}
		return &tripcap.AlertRule{Name: name, Scopes: scope, EvaluationFrequency: freq, WindowSize: window,
			Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: c}}}}
	}
	dynamic := func(name string, m tripcap.MetricID, sens tripcap.Sensitivity, freq, window string) *tripcap.AlertRule {
		def, _ := m.Definition()
		c := &tripcap.DynamicCriterion{MetricCriterion: tripcap.MetricCriterion{CriterionType: tripcap.DynamicThresholdCriterion,
			Name: "c", MetricName: def.DisplayName, TimeAggregation: tripcap.AggregationAverage}, Operator: tripcap.OperatorGreaterOrLessThan,
			AlertSensitivity: sens, FailingPeriods: tripcap.FailingPeriods{NumberOfEvaluationPeriods: 4, MinFailingPeriodsToAlert: 4}}
		return &tripcap.AlertRule{Name: name, Scopes: scope, EvaluationFrequency: freq, WindowSize: window,
			Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Dynamic: c}}}}
	}
	breach := static("fleet-breach-in", tripcap.MetricNetworkInBytes, tripcap.AggregationMaximum, breachInBytes, "PT1S", "PT10S", "")
	breach.Actions = []tripcap.Action{{ActionGroupID: groupID}}
	return []*tripcap.AlertRule{
		breach,
		static("fleet-breach-packets-eth0", tripcap.MetricNetworkInPackets, tripcap.AggregationMaximum, breachInPackets, "PT1S", "PT5S", "eth0"),
		static("fleet-in-5m", tripcap.MetricNetworkInBytes, tripcap.AggregationAverage, 10*breachInBytes, "PT1M", "PT5M", ""),
		static("fleet-out-total-5m", tripcap.MetricNetworkOutBytes, tripcap.AggregationTotal, 300*breachInBytes, "PT1M", "PT5M", ""),
		static("fleet-retransmits", tripcap.MetricTCPRetransmittedSegment, tripcap.AggregationAverage, 10_000, "PT1S", "PT1M", ""),
		static("fleet-resets", tripcap.MetricTCPResetsSent, tripcap.AggregationTotal, 1_000, "PT1S", "PT1M", ""),
		static("fleet-inbound-flows", tripcap.MetricInboundFlows, tripcap.AggregationMaximum, 10_000, "PT1M", "PT5M", ""),
		dynamic("fleet-dyn-in", tripcap.MetricNetworkInBytes, tripcap.SensitivityLow, "PT1M", "PT5M"),
		dynamic("fleet-dyn-out-packets", tripcap.MetricNetworkOutPackets, tripcap.SensitivityLow, "PT1M", "PT1M"),
		dynamic("fleet-dyn-out-1s", tripcap.MetricNetworkOutBytes, tripcap.SensitivityLow, "PT1S", "PT1M"),
	}
}

// setupMonitoring creates the responder, its action group and the rules.
func (a *adminAPI) setupMonitoring(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	// The limit counts the location's captures (the bench's own -captures
	// and the probe's among them): the most, so a breach is never skipped.
	rs, err := a.c.CreateResponder(ctx, &tripcap.Responder{Name: "fleet-capture", NameConflict: tripcap.ConflictUnique, Limit: 10_000,
		// The stub sessions end at their limit: one final report each, no admin request.
		Capture: tripcap.ResponderCapture{Name: breachCapture, TimeLimitInSeconds: 30}})
	if err != nil {
		return 0, fmt.Errorf("create the responder: %w", err)
	}
	g, err := a.c.CreateActionGroup(ctx, &tripcap.ActionGroup{Name: "fleet-capture",
		ResponderReceivers: []tripcap.ResponderReceiver{{Name: "capture", ResponderID: rs.ID}}})
	if err != nil {
		return 0, fmt.Errorf("create the action group: %w", err)
	}
	rules := monitorRules(g.ID)
	for _, r := range rules {
		if _, err := a.c.CreateAlertRule(ctx, r); err != nil {
			return 0, fmt.Errorf("create rule %s: %w", r.Name, err)
		}
	}
	return len(rules), nil
}

// breach is one scheduled breach of a host (the agent's global index).
type breach struct {
	Agent int  `json:"agent"`
	Span  span `json:"span"`
}

// breachResult is what became of a breach: when the host's stub engine
// started the responder's capture (zero: it did not).
type breachResult struct {
	breach
	Started time.Time `json:"started,omitzero"`
}

// scheduleBreaches picks the window's breaches: perMinute of n hosts a
// minute (at least one), distinct hosts, starts spread evenly over
// [from, until-breachSeconds-5 s] so each can fire and capture within the window.
func scheduleBreaches(n int, perMinute float64, from, until time.Time, rng *rand.Rand) []breach {
	last := until.Add(-(breachSeconds + 5) * time.Second)
	if perMinute <= 0 || !last.After(from) {
		return nil
	}
	k := int(float64(n)*perMinute*until.Sub(from).Minutes() + 0.5)
	k = min(max(k, 1), n)
	hosts := rng.Perm(n)[:k]
	step := last.Sub(from) / time.Duration(k)
	out := make([]breach, k)
	for i, h := range hosts {
		s := from.Add(time.Duration(i) * step).Add(time.Second - 1).Unix() // whole seconds, not before from
		out[i] = breach{Agent: h, Span: span{From: s, To: s + breachSeconds}}
	}
	return out
}

// breachStats summarizes a window's breaches: how many there were, how
// many a capture started on, and the latency from the first breaching
// point's second to the stub engine's Start.
type breachStats struct {
	Scheduled int     `json:"scheduled"`
	Captured  int     `json:"captured"`
	P50ms     float64 `json:"p50Ms"`
	P95ms     float64 `json:"p95Ms"`
	MaxMs     float64 `json:"maxMs"`
	// Missed are the hosts whose breach started no capture in the window.
	Missed []string `json:"missed,omitempty"`
}

func summarizeBreaches(rs []breachResult) breachStats {
	st := breachStats{Scheduled: len(rs)}
	var lat []time.Duration
	for _, r := range rs {
		if r.Started.IsZero() {
			st.Missed = append(st.Missed, agentName(r.Agent))
			continue
		}
		lat = append(lat, r.Started.Sub(time.Unix(r.Span.From, 0)))
	}
	st.Captured = len(lat)
	if len(lat) > 0 {
		slices.Sort(lat)
		st.P50ms, st.P95ms, st.MaxMs = ms(percentile(lat, 0.5)), ms(percentile(lat, 0.95)), ms(lat[len(lat)-1])
	}
	return st
}

// metricsWindow is what the metric path did over a window.
type metricsWindow struct {
	// PointsPerSecond the server stored; ExpectedPerSecond is the fleet's
	// (agents × series).
	PointsPerSecond   float64 `json:"pointsPerSecond"`
	ExpectedPerSecond float64 `json:"expectedPerSecond"`
	// Delay is the points' lateness at ingest (server-side histogram):
	// Late counts those over 1 s; P99LeMs is the bucket bound p99 is under.
	Points     uint64  `json:"points"`
	Late       uint64  `json:"lateOver1s"`
	DelayP50ms float64 `json:"delayP50LeMs"`
	DelayP99ms float64 `json:"delayP99LeMs"`
	// Refused are points the server's store did not keep, by reason.
	Refused map[string]uint64 `json:"refused,omitempty"`
	// AgentDropped are points the agents' collectors dropped at their
	// bound; AgentWaiting those still buffered at the window's end.
	AgentDropped uint64 `json:"agentDropped"`
	AgentWaiting int    `json:"agentWaiting"`
	// SampledP99ms is the bucket bound under which 99 % of the agents'
	// readings were taken after their second began, SampledOver1s those
	// over 1 s: the simulated fleet's own share of the points' delay
	// (late timers in niced processes on a busy machine), not the server's.
	SampledP99ms  float64 `json:"sampledP99LeMs"`
	SampledOver1s uint64  `json:"sampledOver1s"`
	// Evaluations is the evaluator's takes (a host's evaluation), LagOver1s
	// those that ended more than 1 s after the host's notification.
	Evaluations uint64  `json:"evaluations"`
	LagOver1s   uint64  `json:"lagOver1s"`
	LagP50ms    float64 `json:"lagP50LeMs"`
	LagP99ms    float64 `json:"lagP99LeMs"`
	Rules       int     `json:"rules"`
	Instances   int     `json:"instances"`
	// Breaches are the window's breaches and their captures.
	Breaches breachStats `json:"breaches"`
	// StoreBytes is the metric store's memory; per host with RSS.
	StoreBytes          int64   `json:"storeBytes"`
	StoreKiBPerHost     float64 `json:"storeKiBPerHost"`
	ServerRSSKiBPerHost float64 `json:"serverRSSKiBPerHost"`
}

// seriesPerHost is the series a simulated host ships: 15 host metrics
// and 8 per interface for its two (loopback is not shipped).
const seriesPerHost = 15 + 2*8

// metricLimits are the sustain criteria of the metric path.
type metricLimits struct {
	maxLate, maxLag time.Duration // no point later, no evaluation lagging more
	breachP95       time.Duration
	// minDelivered is the share of the expected points the server must
	// have stored (the rest were never sent: an agent behind).
	minDelivered float64
}

var defaultMetricLimits = metricLimits{maxLate: time.Second, maxLag: time.Second, breachP95: 500 * time.Millisecond, minDelivered: 0.97}

// judgeMetrics says what kept the metric path from being sustained.
func judgeMetrics(m *metricsWindow, l metricLimits) []string {
	if m == nil {
		return []string{"metrics not measured"}
	}
	var failed []string
	if m.Late > 0 {
		failed = append(failed, fmt.Sprintf("%d of %d points later than %s", m.Late, m.Points, l.maxLate))
	}
	var refused []string
	for _, k := range slices.Sorted(maps.Keys(m.Refused)) {
		if m.Refused[k] > 0 {
			refused = append(refused, fmt.Sprintf("%d %s", m.Refused[k], k))
		}
	}
	if len(refused) > 0 {
		failed = append(failed, "points refused ("+strings.Join(refused, ", ")+")")
	}
	if m.AgentDropped > 0 {
		failed = append(failed, fmt.Sprintf("%d points dropped by the agents' buffers", m.AgentDropped))
	}
	if m.ExpectedPerSecond > 0 && m.PointsPerSecond < l.minDelivered*m.ExpectedPerSecond {
		failed = append(failed, fmt.Sprintf("%.0f points/s stored of %.0f sent", m.PointsPerSecond, m.ExpectedPerSecond))
	}
	if m.Evaluations == 0 {
		failed = append(failed, "no evaluation")
	}
	if m.LagOver1s > 0 {
		failed = append(failed, fmt.Sprintf("%d of %d evaluations lagged over %s", m.LagOver1s, m.Evaluations, l.maxLag))
	}
	b := m.Breaches
	if len(b.Missed) > 0 {
		failed = append(failed, fmt.Sprintf("%d of %d breaches started no capture (%s)", len(b.Missed), b.Scheduled, strings.Join(b.Missed[:min(5, len(b.Missed))], ", ")))
	}
	if limit := float64(l.breachP95) / float64(time.Millisecond); b.Captured > 0 && b.P95ms >= limit {
		failed = append(failed, fmt.Sprintf("breach → capture Running p95 %.0f ms ≥ %.0f ms", b.P95ms, limit))
	}
	return failed
}

// metricsDelta is the metric path between two scrapes of a window of
// secs seconds with hosts hosts.
func metricsDelta(a, b *scrape, secs float64, hosts int) *metricsWindow {
	m := &metricsWindow{Refused: map[string]uint64{}}
	var over uint64
	m.Points, over, m.DelayP50ms, m.DelayP99ms = histDelta(a.hists["tripcap_metric_point_delay_seconds"], b.hists["tripcap_metric_point_delay_seconds"], 1)
	m.Late = over
	m.Evaluations, m.LagOver1s, m.LagP50ms, m.LagP99ms = histDelta(a.hists["tripcap_alert_evaluation_lag_seconds"], b.hists["tripcap_alert_evaluation_lag_seconds"], 1)
	for k, v := range b.values {
		if reason, ok := strings.CutPrefix(k, "tripcap_metric_points_refused_total{reason="); ok {
			m.Refused[strings.TrimSuffix(reason, "}")] = uint64(v - a.values[k])
		}
	}
	if secs > 0 {
		m.PointsPerSecond = round((b.values["tripcap_metric_points_ingested_total"] - a.values["tripcap_metric_points_ingested_total"]) / secs)
	}
	m.ExpectedPerSecond = float64(hosts * seriesPerHost)
	m.Rules, m.Instances = int(b.values["tripcap_alert_rules"]), int(b.values["tripcap_alert_instances"])
	m.StoreBytes = int64(b.values["tripcap_metricstore_bytes"])
	if hosts > 0 {
		m.StoreKiBPerHost = round(float64(m.StoreBytes) / 1024 / float64(hosts))
	}
	return m
}
