package http

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/metricstore"
	"github.com/tripcap/tripcap/metricwire"
)

// MaxMetricsBody bounds a metric batch: tripcap.MaxMetricBatchPoints points
// of about 100 bytes of JSON each, with room to spare. Agents send far
// less except when catching up after an outage.
const MaxMetricsBody = 16 << 20

// monitorRoutes are the API of metrics, alert rules, action groups and
// alerts (controlplane.Monitor); NewServer adds them when WithMonitor is given.
func (s *Server) monitorRoutes() []route {
	metricQuery := []param{
		{"window", "string", "how far back: 15m or PT15M (default 15m)"},
		{"interval", "string", "one point per interval: 1m or PT1M (default window/60)"},
		{"aggregation", "string", "Average, Minimum, Maximum, Total or Count (default the metric's)"},
		{"interface", "string", "an interface's series (default the host's)"},
		{"end", "string", "RFC 3339 end of the window (default now)"},
	}
	alertQuery := []param{
		{"rule", "string", "only this rule's alerts (name or id)"},
		{"host", "string", "only this host's alerts (name, id or VM resource id)"},
		{"state", "string", "Fired or Resolved"},
		{"limit", "integer", "at most this many, newest first (default 100, at most 1000)"},
	}
	return []route{
		{Method: "POST", Path: "/api/v1/agent/metrics", ID: "agentPostMetrics", Summary: "Ship a batch of the agent's host metrics (the host is the agent's own): JSON, or metricwire frames (Content-Type " + metricwire.ContentType + ", agent protocol 2) answered with frames.", Auth: "agent", Request: tripcap.MetricBatch{}, Response: metricstore.AppendResult{}, Handler: s.handlePostMetrics},
		{Method: "POST", Path: "/api/v1/agent/metrics/stream", ID: "agentMetricStream", Summary: "The agent's metric stream over HTTP/2 (agent protocol 2): metricwire frames as sampled in the body, the server's frames (acknowledgements, history requests) in the answer, both ways at once.", Auth: "agent", Transfer: transferUpload, Handler: s.handleMetricStream},
		{Method: "GET", Path: "/api/v1/metric-definitions", ID: "listMetricDefinitions", Summary: "List the host metrics: ids, Azure and Prometheus names, units.", Perm: tripcap.PermRead, Response: List[tripcap.MetricDefinition]{}, Handler: s.handleMetricDefinitions},
		{Method: "GET", Path: "/api/v1/hosts/{host}/metrics/{metric}", ID: "queryMetrics", Summary: "A host's metric over a window, one value per interval (null without data).", Perm: tripcap.PermRead, Query: metricQuery, Response: &metricstore.Result{}, Handler: s.handleQueryMetrics},

		{Method: "POST", Path: "/api/v1/alert-rules", ID: "createAlertRule", Summary: "Create a metric alert rule (Azure's metricAlerts model).", Perm: tripcap.PermMonitoringWrite, Request: &tripcap.AlertRule{}, Response: &tripcap.AlertRule{}, Status: 201, Handler: s.handleCreateRule},
		{Method: "GET", Path: "/api/v1/alert-rules", ID: "listAlertRules", Summary: "List metric alert rules.", Perm: tripcap.PermRead, Response: List[*tripcap.AlertRule]{}, Handler: s.handleListRules},
		{Method: "GET", Path: "/api/v1/alert-rules/{rule}", ID: "getAlertRule", Summary: "Get a rule by name or id.", Perm: tripcap.PermRead, Response: &tripcap.AlertRule{}, Handler: s.handleGetRule},
		{Method: "PUT", Path: "/api/v1/alert-rules/{rule}", ID: "updateAlertRule", Summary: "Replace a rule's settings, checked as for create; its id stays (If-Match: its ETag, or *).", Perm: tripcap.PermMonitoringWrite, Request: &tripcap.AlertRule{}, Response: &tripcap.AlertRule{}, Handler: s.handleUpdateRule},
		{Method: "DELETE", Path: "/api/v1/alert-rules/{rule}", ID: "deleteAlertRule", Summary: "Delete a rule; its alerts stay.", Perm: tripcap.PermMonitoringWrite, Status: 204, Handler: s.handleDeleteRule},

		{Method: "POST", Path: "/api/v1/action-groups", ID: "createActionGroup", Summary: "Create an action group; the answer holds its webhook signing secret, shown only then. With a responder receiver it needs captures/write at * besides monitoring/write, as a responder does.", Perm: tripcap.PermMonitoringWrite, Request: &tripcap.ActionGroup{}, Response: &tripcap.ActionGroup{}, Status: 201, Handler: s.handleCreateGroup},
		{Method: "GET", Path: "/api/v1/action-groups", ID: "listActionGroups", Summary: "List action groups (without secrets).", Perm: tripcap.PermRead, Response: List[*tripcap.ActionGroup]{}, Handler: s.handleListGroups},
		{Method: "GET", Path: "/api/v1/action-groups/{group}", ID: "getActionGroup", Summary: "Get an action group by name or id (without its secret).", Perm: tripcap.PermRead, Response: &tripcap.ActionGroup{}, Handler: s.handleGetGroup},
		{Method: "PUT", Path: "/api/v1/action-groups/{group}", ID: "updateActionGroup", Summary: "Replace an action group's settings; its id and signing secret stay (If-Match: its ETag, or *). With a responder receiver it needs captures/write at * besides monitoring/write, as a responder does.", Perm: tripcap.PermMonitoringWrite, Request: &tripcap.ActionGroup{}, Response: &tripcap.ActionGroup{}, Handler: s.handleUpdateGroup},
		{Method: "DELETE", Path: "/api/v1/action-groups/{group}", ID: "deleteActionGroup", Summary: "Delete an action group no rule uses.", Perm: tripcap.PermMonitoringWrite, Status: 204, Handler: s.handleDeleteGroup},

		{Method: "POST", Path: "/api/v1/silences", ID: "createSilence", Summary: "Mute a rule's, a host's or labelled hosts' alerts for a period: they are recorded, marked silenced and not delivered.", Perm: tripcap.PermMonitoringWrite, Request: &tripcap.Silence{}, Response: &tripcap.Silence{}, Status: 201, Handler: s.handleCreateSilence},
		{Method: "GET", Path: "/api/v1/silences", ID: "listSilences", Summary: "List the silences not yet ended (all=true: every one kept).", Perm: tripcap.PermRead, Query: []param{{"all", "boolean", "include ended silences"}}, Response: List[*tripcap.Silence]{}, Handler: s.handleListSilences},
		{Method: "DELETE", Path: "/api/v1/silences/{silence}", ID: "expireSilence", Summary: "Expire a silence now (it is kept as a record).", Perm: tripcap.PermMonitoringWrite, Response: &tripcap.Silence{}, Handler: s.handleExpireSilence},

		{Method: "GET", Path: "/api/v1/alerts", ID: "listAlerts", Summary: "List alerts, newest first.", Perm: tripcap.PermRead, Query: alertQuery, Response: List[*tripcap.Alert]{}, Handler: s.handleListAlerts},
		{Method: "GET", Path: "/api/v1/alerts/{alert}", ID: "getAlert", Summary: "Get an alert with its history and every delivery attempt.", Perm: tripcap.PermRead, Response: &controlplane.AlertDetail{}, Handler: s.handleGetAlert},
	}
}

// registerMonitorMetrics exposes the monitor's sizes and totals on /metrics.
func (s *Server) registerMonitorMetrics() {
	stats := scrapeStats(s.monitor.Stats)
	gauge := func(name, help string, f func(controlplane.MonitorStats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(stats()) })
	}
	counter := func(name, help string, f func(controlplane.MonitorStats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(stats()) })
	}
	refused := func(reason string, f func(controlplane.PointsRefused) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tripcap_metric_points_refused_total",
			Help: "Metric points from agents the store did not keep, by reason.", ConstLabels: prometheus.Labels{"reason": reason}},
			func() float64 { return float64(f(stats().PointsRefused)) })
	}
	s.registry.MustRegister(
		gauge("tripcap_metricstore_hosts", "Hosts the metric store holds series of.", func(st controlplane.MonitorStats) float64 { return float64(st.Metrics.Hosts) }),
		gauge("tripcap_metricstore_series", "Series in the metric store.", func(st controlplane.MonitorStats) float64 { return float64(st.Metrics.Series) }),
		gauge("tripcap_metricstore_bytes", "Memory the metric store's series hold.", func(st controlplane.MonitorStats) float64 { return float64(st.Metrics.Bytes) }),
		counter("tripcap_metric_points_ingested_total", "Metric points stored from agents.", func(st controlplane.MonitorStats) float64 { return float64(st.PointsIngested) }),
		refused("duplicate", func(p controlplane.PointsRefused) uint64 { return p.Duplicates }),
		refused("too_old", func(p controlplane.PointsRefused) uint64 { return p.TooOld }),
		refused("too_new", func(p controlplane.PointsRefused) uint64 { return p.TooNew }),
		refused("over_limit", func(p controlplane.PointsRefused) uint64 { return p.OverLimit }),
		counter("tripcap_metric_host_attaches_total", "Hosts attached: their points arrived after a gap or for the first time here.", func(st controlplane.MonitorStats) float64 { return float64(st.Attach.Attaches) }),
		counter("tripcap_metric_history_backfilled_total", "Raw points and rollup buckets stored from agents' history on attach.", func(st controlplane.MonitorStats) float64 { return float64(st.Attach.Backfilled) }),
		counter("tripcap_metric_history_asks_total", "Histories asked of agents on attach.", func(st controlplane.MonitorStats) float64 { return float64(st.Attach.HistoryAsks) }),
		gauge("tripcap_metric_histories_in_flight", "Histories asked of agents and not yet in (at most the attach histories limit).", func(st controlplane.MonitorStats) float64 { return float64(st.Attach.HistoriesInFlight) }),
		gauge("tripcap_metric_histories_waiting", "Attached hosts whose history waits for a slot to be asked.", func(st controlplane.MonitorStats) float64 { return float64(st.Attach.HistoriesWaiting) }),
		counter("tripcap_metric_histories_late_total", "Attached hosts evaluated without their history: it was not in before their hold passed.", func(st controlplane.MonitorStats) float64 { return float64(st.Attach.HistoriesLate) }),
		counter("tripcap_metric_histories_expired_total", "Histories asked that did not come within the hold; their slot was given up.", func(st controlplane.MonitorStats) float64 { return float64(st.Attach.HistoriesExpired) }),
		counter("tripcap_metric_attach_restore_queries_total", "Queries reloading attaching hosts' Fired alerts (one for the hosts attaching within a tick).", func(st controlplane.MonitorStats) float64 { return float64(st.Attach.RestoreQueries) }),
		gauge("tripcap_alert_rules", "Enabled alert rules being evaluated.", func(st controlplane.MonitorStats) float64 { return float64(st.Alerting.Rules) }),
		gauge("tripcap_alert_instances", "Alert instances (rule × host in scope) being evaluated.", func(st controlplane.MonitorStats) float64 { return float64(st.Alerting.Instances) }),
		gauge("tripcap_alerts_fired", "Alerts currently Fired.", func(st controlplane.MonitorStats) float64 { return float64(st.Alerting.Fired) }),
		counter("tripcap_alert_evaluations_total", "Rule evaluations run.", func(st controlplane.MonitorStats) float64 { return float64(st.Alerting.Evaluations) }),
		counter("tripcap_alert_transitions_total", "Alerts fired or resolved.", func(st controlplane.MonitorStats) float64 { return float64(st.Alerting.Transitions) }),
		counter("tripcap_alert_persist_errors_total", "Alert transitions that could not be stored.", func(st controlplane.MonitorStats) float64 { return float64(st.PersistErrors) }),
		latencyHistogram(stats, "tripcap_metric_point_delay_seconds", "How late agents' points arrive: the wall clock at ingest minus the point's second.", func(st controlplane.MonitorStats) tripcap.LatencySnapshot { return st.PointDelay }),
		latencyHistogram(stats, "tripcap_alert_evaluation_lag_seconds", "From a host's points stored to its rules evaluated, queueing included.", func(st controlplane.MonitorStats) tripcap.LatencySnapshot { return st.Alerting.EvaluationLag }),
	)
}

func (s *Server) handlePostMetrics(w http.ResponseWriter, r *http.Request) error {
	if isMetricWire(r) {
		return s.handlePostFrames(w, r)
	}
	var b tripcap.MetricBatch
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, MaxMetricsBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return JSONError(err)
	}
	res, err := s.monitor.IngestMetrics(r.Context(), b)
	if err != nil {
		return err
	}
	writeJSON(w, 200, res)
	return nil
}

// maxPostedFrames bounds the frames of one POST: an hour of seconds, or a
// host's history (a frame per series) with room to spare.
const maxPostedFrames = 4096

func isMetricWire(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == metricwire.ContentType
}

// handlePostFrames takes a POST of metricwire frames and answers with the
// frames the ingest answers them with.
func (s *Server) handlePostFrames(w http.ResponseWriter, r *http.Request) error {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxMetricsBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return tripcap.Errorf(tripcap.EINVALID, "body: more than %d bytes", MaxMetricsBody)
		}
		return tripcap.Errorf(tripcap.EINVALID, "body: %v", err)
	}
	frames, err := metricwire.DecodeAll(b, maxPostedFrames)
	if err != nil {
		return err
	}
	var acks ackRun
	var answers, others []metricwire.Frame
	for i := range frames {
		if answers, err = s.monitor.IngestFrameTo(r.Context(), &frames[i], answers[:0]); err != nil {
			return err
		}
		others = acks.take(answers, others)
	}
	out, err := acks.append(nil, others)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", metricwire.ContentType)
	w.WriteHeader(200)
	_, _ = w.Write(out)
	return nil
}

// handleMetricStream serves an agent's metric stream: it reads frames as
// they arrive and writes the answers on the same exchange, which HTTP/2
// carries both ways at once. Over HTTP/1.x it refuses, so the agent POSTs
// instead: a proxy that buffers requests would hold the frames back.
func (s *Server) handleMetricStream(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if err := s.monitor.CheckAgent(ctx); err != nil {
		return err
	}
	if r.ProtoMajor < 2 {
		// The body never ends: answer without waiting for it.
		closeUnread(w, r)
		return tripcap.Errorf(tripcap.EINVALID, "the metric stream needs HTTP/2 (this exchange is %s): POST frames to /api/v1/agent/metrics instead", r.Proto)
	}
	if !isMetricWire(r) {
		return tripcap.Errorf(tripcap.EINVALID, "Content-Type: %q; the metric stream is %s", r.Header.Get("Content-Type"), metricwire.ContentType)
	}
	log := s.log.With("component", "metricstream")
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", metricwire.ContentType)
	w.WriteHeader(200)
	// The agent takes the stream as held once it has the answer's headers.
	if err := rc.Flush(); err != nil {
		return nil
	}
	// Reading the body does not end with the request's context: a server
	// shutting down ends the stream this way, at once.
	stop := context.AfterFunc(ctx, func() { _ = r.Body.Close() })
	defer stop()
	acks := newStreamAcks(w, rc, func() { _ = r.Body.Close() })
	defer acks.close()
	dec := metricwire.NewDecoder(r.Body)
	var answers []metricwire.Frame
	for {
		f, err := dec.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil && acks.failed() == nil {
				log.Warn("ending an agent's metric stream", "err", err)
			}
			return nil
		}
		if answers, err = s.monitor.IngestFrameTo(ctx, &f, answers[:0]); err != nil {
			log.Warn("ending an agent's metric stream", "err", err)
			return nil
		}
		if err := acks.answer(answers); err != nil {
			if !errors.Is(err, errStreamWrite) {
				log.Error("encoding an answer frame", "err", err)
			}
			return nil
		}
	}
}

// Acknowledgements on the metric stream are coalesced. One acknowledges
// every points frame up to its second (the agent releases them all:
// agent/metrics.go), so the server writes one when streamAckDelay has
// passed since the first frame it covers, or once streamAckFrames wait:
// an HTTP/2 DATA frame and a write syscall every few host-seconds rather
// than every host-second. Nothing a user sees waits on it: rules are
// evaluated on the points stored, not on the acknowledgement. The agent
// counts the stream stalled when a frame waits streamAckTimeout (15 s)
// for its acknowledgement, well beyond the delay; a stream that breaks
// costs the agent a resend of the few seconds not yet acknowledged, which
// the store refuses as duplicates. A request for history goes at once
// (the host's evaluation holds until its history lands), with the
// acknowledgement due written before it.
const (
	streamAckDelay  = 3 * time.Second
	streamAckFrames = 64
)

// errStreamWrite: the answer's side of a stream could not be written.
var errStreamWrite = errors.New("writing to the metric stream")

// ackRun folds acknowledgements into one: of the newest second, counting
// the points of every frame it covers.
type ackRun struct {
	ack metricwire.Frame
	n   int // frames covered
}

// take folds answers' acknowledgements into the run and appends the
// other frames to others.
func (a *ackRun) take(answers, others []metricwire.Frame) []metricwire.Frame {
	for _, f := range answers {
		if f.Kind != metricwire.KindAck {
			others = append(others, f)
			continue
		}
		if a.n == 0 || f.Sec > a.ack.Sec {
			a.ack.Sec = f.Sec
		}
		a.ack.Kind = metricwire.KindAck
		a.ack.Stored += f.Stored
		a.ack.Refused += f.Refused
		a.n++
	}
	return others
}

// append appends the run's acknowledgement, when it covers a frame, then
// others, and empties the run.
func (a *ackRun) append(dst []byte, others []metricwire.Frame) ([]byte, error) {
	if a.n > 0 {
		dst = metricwire.AppendAck(dst, a.ack.Sec, a.ack.Stored, a.ack.Refused)
		*a = ackRun{}
	}
	var err error
	for _, f := range others {
		if dst, err = metricwire.AppendFrame(dst, f); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// streamAcks writes a metric stream's answers: acknowledgements coalesced
// (streamAckDelay), anything else at once. A timer writes what waits
// while the handler reads, so mu serializes the writes.
type streamAcks struct {
	w     io.Writer
	rc    *http.ResponseController
	abort func() // ends the handler's read after a failed write
	mu    sync.Mutex
	run   ackRun
	timer *time.Timer
	buf   []byte
	other []metricwire.Frame
	done  bool
	err   error
}

func newStreamAcks(w io.Writer, rc *http.ResponseController, abort func()) *streamAcks {
	a := &streamAcks{w: w, rc: rc, abort: abort}
	a.timer = time.AfterFunc(time.Hour, a.due)
	a.timer.Stop()
	return a
}

// answer takes a frame's answers: written at once when they hold more
// than an acknowledgement or streamAckFrames wait, else within
// streamAckDelay.
func (a *streamAcks) answer(answers []metricwire.Frame) error {
	if len(answers) == 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	first := a.run.n == 0
	a.other = a.run.take(answers, a.other[:0])
	switch {
	case len(a.other) > 0 || a.run.n >= streamAckFrames:
		a.timer.Stop()
		return a.writeLocked()
	case first && a.run.n > 0:
		a.timer.Reset(streamAckDelay)
	}
	return nil
}

// due is the timer's: the acknowledgement waited streamAckDelay.
func (a *streamAcks) due() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done || a.err != nil || a.run.n == 0 {
		return
	}
	if a.writeLocked() != nil {
		a.abort()
	}
}

func (a *streamAcks) writeLocked() error {
	var err error
	if a.buf, err = a.run.append(a.buf[:0], a.other); err != nil {
		a.err = err
		return err
	}
	a.other = a.other[:0]
	if len(a.buf) == 0 {
		return nil
	}
	if _, err := a.w.Write(a.buf); err != nil {
		a.err = errStreamWrite
		return a.err
	}
	if err := a.rc.Flush(); err != nil {
		a.err = errStreamWrite
		return a.err
	}
	return nil
}

// failed is the error that ended the answer's side, if any.
func (a *streamAcks) failed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// close writes the acknowledgement still due (the points were stored: the
// agent need not send them again), best effort, and stops the timer; it
// runs before the handler returns, as the writer is not to be used after.
func (a *streamAcks) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.timer.Stop()
	if !a.done && a.err == nil && a.run.n > 0 {
		_ = a.writeLocked()
	}
	a.done = true
}

func (s *Server) handleMetricDefinitions(w http.ResponseWriter, r *http.Request) error {
	defs, err := s.monitor.MetricDefinitions(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[tripcap.MetricDefinition]{Value: nonNil(defs)})
	return nil
}

// spanParam reads a duration given as Go's "15m" or ISO 8601's "PT15M".
func spanParam(r *http.Request, name string) (time.Duration, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	if strings.HasPrefix(strings.ToUpper(v), "P") {
		return tripcap.ParseISODuration(name, v)
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, tripcap.Errorf(tripcap.EINVALID, "%s: %q is not a duration like 15m or PT15M", name, v)
	}
	return d, nil
}

func (s *Server) handleQueryMetrics(w http.ResponseWriter, r *http.Request) error {
	q := controlplane.MetricsQuery{Host: r.PathValue("host"), Metric: r.PathValue("metric"),
		Aggregation: r.URL.Query().Get("aggregation"), Interface: r.URL.Query().Get("interface")}
	var err error
	if q.Window, err = spanParam(r, "window"); err != nil {
		return err
	}
	if q.Interval, err = spanParam(r, "interval"); err != nil {
		return err
	}
	if v := r.URL.Query().Get("end"); v != "" {
		if q.End, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return tripcap.Errorf(tripcap.EINVALID, "end: %q is not an RFC 3339 time", v)
		}
	}
	res, err := s.monitor.QueryMetrics(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, 200, res)
	return nil
}

func (s *Server) handleCreateRule(w http.ResponseWriter, r *http.Request) error {
	var rule tripcap.AlertRule
	if err := decodeJSON(r, &rule); err != nil {
		return err
	}
	created, err := s.monitor.CreateRule(r.Context(), &rule)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/alert-rules/"+created.ID)
	w.Header().Set("ETag", created.ETag())
	writeJSON(w, 201, created)
	return nil
}

func (s *Server) handleListRules(w http.ResponseWriter, r *http.Request) error {
	rules, err := s.monitor.FindRules(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.AlertRule]{Value: nonNil(rules)})
	return nil
}

func (s *Server) handleGetRule(w http.ResponseWriter, r *http.Request) error {
	rule, err := s.monitor.FindRule(r.Context(), r.PathValue("rule"))
	if err != nil {
		return err
	}
	if notModified(w, r, rule.ETag()) {
		return nil
	}
	writeJSON(w, 200, rule)
	return nil
}

func (s *Server) handleUpdateRule(w http.ResponseWriter, r *http.Request) error {
	var in tripcap.AlertRule
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	updated, err := s.monitor.UpdateRule(r.Context(), r.PathValue("rule"), &in, r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", updated.ETag())
	writeJSON(w, 200, updated)
	return nil
}

func (s *Server) handleDeleteRule(w http.ResponseWriter, r *http.Request) error {
	if err := s.monitor.DeleteRule(r.Context(), r.PathValue("rule")); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) handleCreateGroup(w http.ResponseWriter, r *http.Request) error {
	var g tripcap.ActionGroup
	if err := decodeJSON(r, &g); err != nil {
		return err
	}
	created, err := s.monitor.CreateActionGroup(r.Context(), &g)
	if err != nil {
		return err
	}
	// The secret is in this answer only: keep it out of caches.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", "/api/v1/action-groups/"+created.ID)
	w.Header().Set("ETag", created.ETag())
	writeJSON(w, 201, created)
	return nil
}

func (s *Server) handleListGroups(w http.ResponseWriter, r *http.Request) error {
	gs, err := s.monitor.FindActionGroups(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.ActionGroup]{Value: nonNil(gs)})
	return nil
}

func (s *Server) handleGetGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := s.monitor.FindActionGroup(r.Context(), r.PathValue("group"))
	if err != nil {
		return err
	}
	if notModified(w, r, g.ETag()) {
		return nil
	}
	writeJSON(w, 200, g)
	return nil
}

func (s *Server) handleUpdateGroup(w http.ResponseWriter, r *http.Request) error {
	var in tripcap.ActionGroup
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	updated, err := s.monitor.UpdateActionGroup(r.Context(), r.PathValue("group"), &in, r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", updated.ETag())
	writeJSON(w, 200, updated)
	return nil
}

func (s *Server) handleCreateSilence(w http.ResponseWriter, r *http.Request) error {
	var in tripcap.Silence
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	created, err := s.monitor.CreateSilence(r.Context(), &in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/silences/"+created.ID)
	writeJSON(w, 201, created)
	return nil
}

func (s *Server) handleListSilences(w http.ResponseWriter, r *http.Request) error {
	all := false
	if v := r.URL.Query().Get("all"); v != "" {
		var err error
		if all, err = strconv.ParseBool(v); err != nil {
			return tripcap.Errorf(tripcap.EINVALID, "all: %q is not true or false", v)
		}
	}
	list, err := s.monitor.FindSilences(r.Context(), all)
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.Silence]{Value: nonNil(list)})
	return nil
}

func (s *Server) handleExpireSilence(w http.ResponseWriter, r *http.Request) error {
	sl, err := s.monitor.ExpireSilence(r.Context(), r.PathValue("silence"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, sl)
	return nil
}

func (s *Server) handleDeleteGroup(w http.ResponseWriter, r *http.Request) error {
	if err := s.monitor.DeleteActionGroup(r.Context(), r.PathValue("group")); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) handleListAlerts(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	aq := controlplane.AlertQuery{Rule: q.Get("rule"), Host: q.Get("host"), State: q.Get("state")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return tripcap.Errorf(tripcap.EINVALID, "limit: %q is not a number", v)
		}
		aq.Limit = n
	}
	alerts, err := s.monitor.FindAlerts(r.Context(), aq)
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.Alert]{Value: nonNil(alerts)})
	return nil
}

func (s *Server) handleGetAlert(w http.ResponseWriter, r *http.Request) error {
	a, err := s.monitor.FindAlert(r.Context(), r.PathValue("alert"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, a)
	return nil
}
