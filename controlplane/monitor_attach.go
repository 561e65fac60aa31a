package controlplane

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/metricstore"
	"github.com/tripcap/tripcap/metricwire"
)

// Attaching a host: when a host's points arrive after a gap, or for the
// first time on this replica (another replica died and its agents came
// here, or this one restarted), this replica takes the host over. It
// reloads the host's Fired alerts from the database (another replica may
// have fired or resolved them), asks the agent, which keeps its own
// history, for what the store lacks, and holds the host's evaluation
// until that history lands (or AttachHold passes), so the first windows
// it evaluates are whole; then it resets the host's dynamic baselines so
// they learn from the history. Agents below protocol version 2 cannot
// send history, nor can a JSON batch's answer ask for it: their hosts get
// the alerts reloaded and nothing more.
const (
	// DefaultAttachGap is how long without points makes the next ones an
	// attach: longer than an agent's shipping interval and its first
	// retry, short enough that a replica that missed a handoff notices.
	DefaultAttachGap = 5 * time.Second
	// DefaultAttachHold bounds how long a host's evaluation waits for the
	// history asked for.
	DefaultAttachHold = 10 * time.Second
)

// hostFeed is what the ingest knows of one host's arriving points.
type hostFeed struct {
	last time.Time // wall clock of the host's last points
	// holding: history was asked for and has not landed; notifications
	// of new points are held (newest in held) until it does or holdUntil.
	holding   bool
	holdUntil time.Time
	held      time.Time
}

// feeds tracks hosts' feeds; its own lock, as the store's OnAppend hook
// takes it on every append.
type feeds struct {
	mu sync.Mutex
	m  map[string]*hostFeed

	attaches    atomic.Uint64
	backfilled  atomic.Uint64
	historyEnds atomic.Uint64
}

// IngestResult is what became of an agent's points, and whether the
// server wants the agent's history since HistorySince (unix seconds).
type IngestResult struct {
	metricstore.AppendResult
	AskHistory   bool
	HistorySince int64
}

// arrive records that host's points arrive now: it reports whether this
// is an attach and, for one that may ask for history, starts holding the
// host's evaluation.
func (m *MetricIngest) arrive(host string, hold bool) bool {
	now := m.now()
	m.feeds.mu.Lock()
	defer m.feeds.mu.Unlock()
	f := m.feeds.m[host]
	if f == nil {
		f = &hostFeed{}
		m.feeds.m[host] = f
	}
	attach := f.last.IsZero() || now.Sub(f.last) > m.attachGap
	f.last = now
	if attach && hold {
		f.holding, f.holdUntil, f.held = true, now.Add(m.attachHold), time.Time{}
	}
	return attach
}

// notify is the store's OnAppend hook: the evaluator hears of new points
// unless the host is held for its history.
func (m *MetricIngest) notify(host string, newest time.Time) {
	m.feeds.mu.Lock()
	f := m.feeds.m[host]
	if f != nil && f.holding {
		if m.now().Before(f.holdUntil) {
			if newest.After(f.held) {
				f.held = newest
			}
			m.feeds.mu.Unlock()
			return
		}
		f.holding = false
		m.log.Warn("a host's history did not arrive in time; evaluating without it", "host", host)
	}
	m.feeds.mu.Unlock()
	m.eval.Notify(host, newest)
}

// release ends a host's hold and passes on the newest point it held.
func (m *MetricIngest) release(host string) {
	m.feeds.mu.Lock()
	f := m.feeds.m[host]
	var held time.Time
	if f != nil && f.holding {
		f.holding, held = false, f.held
	}
	m.feeds.mu.Unlock()
	if !held.IsZero() {
		m.eval.Notify(host, held)
	}
}

// attach reloads the host's Fired alerts into the evaluator and says
// from when the agent should send history: after the newest point the
// store holds, or the whole rollup window for a host it holds nothing of.
func (m *MetricIngest) attach(ctx context.Context, host string) int64 {
	m.feeds.attaches.Add(1)
	fired := tripcap.ConditionFired
	alerts, err := m.store.FindAlerts(ctx, tripcap.AlertFilter{HostID: &host, MonitorCondition: &fired})
	if err != nil {
		// The evaluator keeps what it holds; the database fences a
		// duplicate Fired all the same.
		m.log.Error("reloading a host's fired alerts on attach", "host", host, "err", err)
	} else {
		restore := make([]tripcap.Alert, len(alerts))
		for i, a := range alerts {
			restore[i] = *a
		}
		m.eval.RestoreHost(host, restore)
	}
	if newest, ok := m.metrics.Newest(host); ok {
		return newest.Unix() + 1
	}
	return m.now().Add(-m.metrics.Config().Rollup).Unix()
}

// CheckAgent refuses a caller that is not an agent, before a stream opens.
func (m *MetricIngest) CheckAgent(ctx context.Context) error {
	_, err := requireAgent(ctx)
	return err
}

// IngestFrame takes one metricwire frame from the calling agent and
// returns the frames to answer it with: a points frame is stored under
// the agent's own host (whatever the frame says) and acknowledged, with a
// request for history when it attached the host; history frames are
// backfilled; the end of the history resets the host's baselines and
// releases its evaluation.
func (m *MetricIngest) IngestFrame(ctx context.Context, f *metricwire.Frame) ([]metricwire.Frame, error) {
	hostID, err := requireAgent(ctx)
	if err != nil {
		return nil, err
	}
	switch f.Kind {
	case metricwire.KindPoints:
		res, err := m.ingest(ctx, hostID, tripcap.MetricBatch{Points: f.Points}, true)
		if err != nil {
			return nil, err
		}
		refused := res.Duplicates + res.TooOld + res.TooNew + res.OverLimit
		out := []metricwire.Frame{{Kind: metricwire.KindAck, Sec: f.Sec, Stored: uint64(res.Stored), Refused: uint64(refused)}}
		if res.AskHistory {
			out = append(out, metricwire.Frame{Kind: metricwire.KindHistoryRequest, Sec: res.HistorySince})
		}
		return out, nil
	case metricwire.KindHistory:
		for i := range f.History {
			f.History[i].Key.Host = hostID
		}
		res, err := m.metrics.Backfill(hostID, f.History)
		if err != nil {
			return nil, err
		}
		m.count(res)
		m.feeds.backfilled.Add(uint64(res.Stored))
		return nil, nil
	case metricwire.KindHistoryEnd:
		m.feeds.historyEnds.Add(1)
		m.eval.ResetBaselines(hostID)
		m.release(hostID)
		return nil, nil
	}
	return nil, tripcap.Errorf(tripcap.EINVALID, "frame: a %v frame is the server's to send", f.Kind)
}

// ingest stores points under host, attaching it first when they end a
// gap, and counts what became of them.
// canAsk: the answer can carry a request for history (frames answer
// frames; a JSON batch's answer cannot).
func (m *MetricIngest) ingest(ctx context.Context, host string, b tripcap.MetricBatch, canAsk bool) (IngestResult, error) {
	for i := range b.Points {
		b.Points[i].Host = host
	}
	var out IngestResult
	if len(b.Points) > 0 {
		if m.arrive(host, canAsk) {
			since := m.attach(ctx, host)
			out.AskHistory, out.HistorySince = canAsk, since
		}
	}
	res, err := m.metrics.Append(b)
	out.AppendResult = res
	if err != nil {
		if out.AskHistory {
			m.release(host)
			out.AskHistory = false
		}
		return out, err
	}
	m.count(res)
	m.sinkPoints(host, b.Points, res)
	m.delay.record(m.now(), b)
	return out, nil
}

// count adds an append's outcome to the totals by reason.
func (m *MetricIngest) count(res metricstore.AppendResult) {
	m.ingested.Add(uint64(res.Stored))
	m.refused.duplicates.Add(uint64(res.Duplicates))
	m.refused.tooOld.Add(uint64(res.TooOld))
	m.refused.tooNew.Add(uint64(res.TooNew))
	m.refused.overLimit.Add(uint64(res.OverLimit))
}

// refusedCounts are the points the store did not keep, by reason.
type refusedCounts struct {
	duplicates, tooOld, tooNew, overLimit atomic.Uint64
}

// PointsRefused are the points agents sent that the store did not keep,
// by reason.
type PointsRefused struct {
	Duplicates uint64 `json:"duplicates"`
	TooOld     uint64 `json:"tooOld"`
	TooNew     uint64 `json:"tooNew"`
	OverLimit  uint64 `json:"overLimit"`
}

// AttachStats count hosts attached and history taken from agents.
type AttachStats struct {
	Attaches uint64 `json:"attaches"`
	// Backfilled counts raw points and rollup buckets stored from
	// agents' history; HistoryEnds the history answers completed.
	Backfilled  uint64 `json:"backfilled"`
	HistoryEnds uint64 `json:"historyEnds"`
}
