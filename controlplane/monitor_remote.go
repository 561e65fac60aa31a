package controlplane

import (
	"context"
	"strconv"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/metricstore"
)

// The long-term side of metrics: stored points go to MonitorConfig.Sink
// (remote write) and chart windows older than the in-memory store are read
// back from MonitorConfig.RemoteRead. Rules never read the remote store,
// so a slow or dead one never delays an alert.

// MaxRemoteWindow bounds a chart's window when a remote store answers
// what memory no longer holds.
const MaxRemoteWindow = 400 * 24 * time.Hour

// sinkPoints hands a batch to the sink once the store kept some of it.
// Points the store counted as duplicates go too: the remote store keeps
// the first of a repeated sample, as the metric store does.
func (m *MetricIngest) sinkPoints(hostID string, points []tripcap.MetricPoint, res metricstore.AppendResult) {
	if m.cfg.Sink != nil && res.Stored > 0 {
		m.cfg.Sink.SinkPoints(hostID, points)
	}
}

// memoryHorizon is the unix second from which the metric store answers
// intervals of step seconds: the raw window's start for sub-minute
// intervals, the rollups' (less the minute in progress) for whole minutes.
func memoryHorizon(cfg metricstore.Config, step int64) int64 {
	now := cfg.Now().Unix()
	if step%60 == 0 {
		return now - int64(cfg.Rollup/time.Second) + 60
	}
	return now - int64(cfg.Raw/time.Second)
}

// queryRemote answers q when a remote store is configured and the window
// starts before memoryHorizon: the older intervals from the remote store,
// the others from memory. ok is false when memory answers the whole
// window (or there is no remote store). When the remote store cannot be
// read the query fails with EUNAVAILABLE naming it, rather than showing
// a chart with a silent hole.
func (m *MetricIngest) queryRemote(ctx context.Context, h *tripcap.Host, metric tripcap.MetricID, agg tripcap.Aggregation, q MetricsQuery) (res *metricstore.Result, ok bool, err error) {
	if m.cfg.RemoteRead == nil {
		return nil, false, nil
	}
	def, _ := metric.Definition()
	if agg == "" {
		agg = def.DefaultAggregation
	}
	if q.Window < time.Second || q.Window%time.Second != 0 || q.Window > MaxRemoteWindow {
		return nil, true, tripcap.Errorf(tripcap.EINVALID, "window: %s must be whole seconds from 1s to %s", q.Window, tripcap.FormatISODuration(MaxRemoteWindow))
	}
	interval := q.Interval
	if interval == 0 {
		// As metricstore.Query defaults it, so both halves agree.
		interval = max(q.Window/60, time.Second).Truncate(time.Second)
	}
	if interval < time.Second || interval%time.Second != 0 || interval > q.Window {
		return nil, true, tripcap.Errorf(tripcap.EINVALID, "interval: %s must be whole seconds from 1s to the window (%s)", interval, q.Window)
	}
	step := int64(interval / time.Second)
	n := (int64(q.Window/time.Second) + step - 1) / step
	if n > metricstore.DefaultMaxQueryPoints {
		return nil, true, tripcap.Errorf(tripcap.EINVALID, "interval: %s over %s gives %d points; at most %d", interval, q.Window, n, metricstore.DefaultMaxQueryPoints)
	}
	cfg := m.metrics.Config()
	now := cfg.Now()
	end := q.End
	if end.IsZero() {
		end = now
	}
	// The buckets metricstore.Query makes: aligned to the interval, the
	// last holding end's second.
	e := (end.Unix() + step - 1) / step * step
	start := e - n*step
	horizon := memoryHorizon(cfg, step)
	if start >= horizon {
		return nil, false, nil
	}
	// Buckets [0, k) start before the horizon: the remote store's.
	k := min(n, (horizon-start+step-1)/step)
	res = &metricstore.Result{Host: h.Name, Metric: metric, DisplayName: def.DisplayName, Unit: def.Unit, Interface: q.Interface,
		Aggregation: agg, Start: time.Unix(start, 0).UTC(), End: time.Unix(e, 0).UTC(),
		Window: tripcap.FormatISODuration(q.Window), Interval: tripcap.FormatISODuration(interval), Points: make([]metricstore.Point, n)}
	for i := range res.Points {
		res.Points[i].Time = time.Unix(start+int64(i)*step, 0).UTC()
	}
	if k < n {
		mem, err := m.metrics.Query(metricstore.Query{Host: h.ID, Metric: metric, Interface: q.Interface, End: end,
			Window: time.Duration(n-k) * interval, Interval: interval, Aggregation: agg})
		if err != nil {
			return nil, true, err
		}
		copy(res.Points[k:], mem.Points)
	}
	vals, err := m.cfg.RemoteRead.ReadRange(ctx, tripcap.MetricRange{HostID: h.ID, Metric: metric, Interface: q.Interface, Aggregation: agg,
		First: time.Unix(start+step, 0), Last: time.Unix(start+k*step, 0), Step: interval})
	if err != nil {
		return nil, true, tripcap.Errorf(tripcap.ErrorCode(err), "the server holds %s-second intervals in memory since %s; the older ones of this window come from the remote store, which failed: %s",
			strconv.FormatInt(step, 10), time.Unix(horizon, 0).UTC().Format(time.RFC3339), tripcap.ErrorMessage(err))
	}
	for _, v := range vals {
		i := (v.End.Unix() - step - start) / step
		if i >= 0 && i < k {
			res.Points[i].Value, res.Points[i].Count = v.Value, v.Count
		}
	}
	return res, true, nil
}
