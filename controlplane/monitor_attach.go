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
// until both are done (or AttachHold passes), so the first windows it
// evaluates are whole; then it resets the host's dynamic baselines so
// they learn from the history. Agents below protocol version 2 cannot
// send history, nor can a JSON batch's answer ask for it: their hosts get
// the alerts reloaded and nothing more.
//
// A storm (a replica died and its thousands of agents attach here at
// once) is bounded three ways. The Fired alerts of every host attaching
// within a restoreTick are reloaded by one query. At most
// AttachHistories histories are in flight; a host attaching while they
// are is asked on the answer to one of its later frames, once a slot
// frees (a history lands, or its AttachHold passes). And each history
// reaches back only as far as the host's rules read (HistoryNeed), at
// least a chart's default window, the whole rollup window only for a host
// with a dynamic rule. A host whose history is not in before its hold
// passes is evaluated without it (counted, logged once a minute at most),
// and still backfilled when its turn comes.
const (
	// DefaultAttachGap is how long without points makes the next ones an
	// attach: longer than an agent's shipping interval and its first
	// retry, short enough that a replica that missed a handoff notices.
	DefaultAttachGap = 5 * time.Second
	// DefaultAttachHold bounds how long a host's evaluation waits for a
	// slot to ask its history, and again for the history once asked.
	DefaultAttachHold = 10 * time.Second
	// DefaultAttachHistories is how many hosts' histories may be in
	// flight at once: at about 100 KB a host without a dynamic rule and
	// 1.5 MB one with (docs/alerting.md), a few MB to some 50 MB.
	DefaultAttachHistories = 32
	// restoreTick gathers the hosts attaching within it into one reload
	// of Fired alerts.
	restoreTick = 100 * time.Millisecond
	// lateLogEvery: hosts evaluated without their history are logged at
	// most this often, as a count, not a line per host.
	lateLogEvery = time.Minute
)

// hostFeed is what the ingest knows of one host's arriving points.
type hostFeed struct {
	last time.Time // wall clock of the host's last points
	// restoring: the host's Fired alerts wait for the next reload.
	restoring bool
	// wantHistory: history is owed (waiting for a slot, or asked when
	// asked); storeNewest is the newest second the store held of the
	// host at the attach (0: none).
	wantHistory bool
	asked       bool
	storeNewest int64
	// Notifications of new points are held (newest in held) while the
	// host is restoring, or wants history and holdUntil has not passed;
	// late: it passed, the host is evaluated without its history.
	holdUntil time.Time
	held      time.Time
	late      bool
	// counted: the feed is in feeds.holding.
	counted bool
}

// holding reports whether the host's evaluation waits.
func (f *hostFeed) holding() bool { return f.restoring || (f.wantHistory && !f.late) }

// recount brings feeds.holding up to date with f, under feeds.mu: call it
// after changing what holding reads.
func (fs *feeds) recount(f *hostFeed) {
	if h := f.holding(); h != f.counted {
		f.counted = h
		if h {
			fs.holding.Add(1)
		} else {
			fs.holding.Add(-1)
		}
	}
}

// feeds tracks hosts' feeds; its own lock, as the store's OnAppend hook
// takes it on every append.
type feeds struct {
	mu sync.Mutex
	m  map[string]*hostFeed
	// inflight: the hosts whose history was asked, and when.
	inflight map[string]time.Time
	// restoreQ: the hosts whose Fired alerts the next reload takes;
	// restoring: a reload loop runs.
	restoreQ  map[string]struct{}
	restoring bool
	// lateN: hosts evaluated without their history since lateLogged.
	lateN      int
	lateLogged time.Time
	// holding counts the feeds whose evaluation holds (recount), so that
	// the store's hook, on every append, takes mu only when one does.
	holding atomic.Int64

	attaches       atomic.Uint64
	backfilled     atomic.Uint64
	historyEnds    atomic.Uint64
	historyAsks    atomic.Uint64
	historyLate    atomic.Uint64
	historyExpired atomic.Uint64
	restoreQueries atomic.Uint64
}

func newFeeds() feeds {
	return feeds{m: map[string]*hostFeed{}, inflight: map[string]time.Time{}, restoreQ: map[string]struct{}{}}
}

// IngestResult is what became of an agent's points, and whether the
// server wants the agent's history since HistorySince (unix seconds).
type IngestResult struct {
	metricstore.AppendResult
	AskHistory   bool
	HistorySince int64
}

// arrive records that host's points arrive now and reports whether this
// is an attach, and whether the host is owed a history not yet asked (so
// a host attached and asked, the common case, costs one lock a frame).
func (m *MetricIngest) arrive(host string, now time.Time) (attach, owed bool) {
	m.feeds.mu.Lock()
	defer m.feeds.mu.Unlock()
	f := m.feeds.m[host]
	if f == nil {
		f = &hostFeed{}
		m.feeds.m[host] = f
	}
	attach = f.last.IsZero() || now.Sub(f.last) > m.attachGap
	f.last = now
	return attach, f.wantHistory && !f.asked
}

// attach takes the host over: its evaluation holds until its Fired
// alerts are reloaded (by the next reload) and, when wantHistory, until
// its history lands or the hold passes. Call it before the attaching
// points are stored: the history asked starts after what the store held.
func (m *MetricIngest) attach(host string, wantHistory bool, now time.Time) {
	m.feeds.attaches.Add(1)
	var newest int64
	if t, ok := m.metrics.Newest(host); ok {
		newest = t.Unix()
	}
	m.feeds.mu.Lock()
	defer m.feeds.mu.Unlock()
	f := m.feeds.m[host]
	// A history asked before the gap is not coming on a stream that broke.
	delete(m.feeds.inflight, host)
	f.restoring, f.held, f.late, f.asked = true, time.Time{}, false, false
	f.wantHistory, f.storeNewest, f.holdUntil = wantHistory, newest, now.Add(m.attachHold)
	m.feeds.recount(f)
	m.feeds.restoreQ[host] = struct{}{}
	if !m.feeds.restoring {
		m.feeds.restoring = true
		go m.restoreLoop()
	}
}

// restoreLoop reloads the Fired alerts of the hosts attaching within
// each restoreTick, until none is left.
func (m *MetricIngest) restoreLoop() {
	for {
		time.Sleep(restoreTick)
		m.feeds.mu.Lock()
		if len(m.feeds.restoreQ) == 0 {
			m.feeds.restoring = false
			m.feeds.mu.Unlock()
			return
		}
		hosts := make([]string, 0, len(m.feeds.restoreQ))
		for h := range m.feeds.restoreQ {
			hosts = append(hosts, h)
		}
		clear(m.feeds.restoreQ)
		m.feeds.mu.Unlock()
		m.restore(hosts)
	}
}

// restore reloads hosts' Fired alerts into the evaluator with one query
// (by host for one host; all Fired alerts, at most one per rule and host,
// for more) and releases what their evaluation held for it.
func (m *MetricIngest) restore(hosts []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m.feeds.restoreQueries.Add(1)
	fired := tripcap.ConditionFired
	filter := tripcap.AlertFilter{MonitorCondition: &fired}
	if len(hosts) == 1 {
		filter.HostID = &hosts[0]
	}
	alerts, err := m.store.FindAlerts(ctx, filter)
	if err != nil {
		// The evaluator keeps what it holds; the database fences a
		// duplicate Fired all the same.
		m.log.Error("reloading attaching hosts' fired alerts", "hosts", len(hosts), "err", err)
	} else {
		byHost := make(map[string][]tripcap.Alert, len(hosts))
		for _, h := range hosts {
			byHost[h] = nil
		}
		for _, a := range alerts {
			if as, ok := byHost[a.HostID]; ok {
				byHost[a.HostID] = append(as, *a)
			}
		}
		m.eval.RestoreHosts(byHost)
	}
	for _, h := range hosts {
		m.feeds.mu.Lock()
		f := m.feeds.m[h]
		var held time.Time
		if f != nil && f.restoring {
			f.restoring = false
			if !f.holding() {
				held, f.held = f.held, time.Time{}
			}
			m.feeds.recount(f)
		}
		m.feeds.mu.Unlock()
		if !held.IsZero() {
			m.eval.Notify(h, held)
		}
	}
}

// notify is the store's OnAppend hook: the evaluator hears of new points
// unless the host is held.
func (m *MetricIngest) notify(host string, newest time.Time) {
	if m.feeds.holding.Load() == 0 {
		// No host holds: the common case, without the lock.
		m.eval.Notify(host, newest)
		return
	}
	m.feeds.mu.Lock()
	f := m.feeds.m[host]
	if f != nil && f.holding() {
		if f.restoring || m.now().Before(f.holdUntil) {
			if newest.After(f.held) {
				f.held = newest
			}
			m.feeds.mu.Unlock()
			return
		}
		m.lateLocked(f)
	}
	m.feeds.mu.Unlock()
	m.eval.Notify(host, newest)
}

// lateLocked marks a host evaluated without its history, under feeds.mu:
// counted, and logged as a count at most every lateLogEvery (a storm is a
// line, not a line per host). It returns the newest point held, for the
// caller to pass on once the lock is released.
func (m *MetricIngest) lateLocked(f *hostFeed) (held time.Time) {
	if f.late {
		return time.Time{}
	}
	held = f.held
	f.late, f.held = true, time.Time{}
	m.feeds.recount(f)
	m.feeds.historyLate.Add(1)
	m.feeds.lateN++
	if now := m.now(); now.Sub(m.feeds.lateLogged) >= lateLogEvery {
		m.log.Warn("hosts' history did not arrive in time; they are evaluated without it until it does",
			"hosts", m.feeds.lateN, "historiesInFlight", len(m.feeds.inflight), "limit", m.attachHistories)
		m.feeds.lateN, m.feeds.lateLogged = 0, now
	}
	if f.restoring {
		f.held = held // still held, for the reload
		return time.Time{}
	}
	return held
}

// askSlot takes a slot for host's history, when it wants one and one is
// free; histories asked longer than the hold ago give theirs up (the
// agent's answer is lost, or it is too slow to wait for).
func (m *MetricIngest) askSlot(host string, now time.Time) (storeNewest int64, ok bool) {
	type release struct {
		host string
		held time.Time
	}
	var releases []release
	defer func() {
		for _, r := range releases {
			m.eval.Notify(r.host, r.held)
		}
	}()
	m.feeds.mu.Lock()
	defer m.feeds.mu.Unlock()
	f := m.feeds.m[host]
	if f == nil || !f.wantHistory || f.asked {
		return 0, false
	}
	if len(m.feeds.inflight) >= m.attachHistories {
		for h, at := range m.feeds.inflight {
			if now.Sub(at) <= m.attachHold {
				continue
			}
			delete(m.feeds.inflight, h)
			m.feeds.historyExpired.Add(1)
			if g := m.feeds.m[h]; g != nil {
				g.wantHistory, g.asked = false, false
				if held := m.lateLocked(g); !held.IsZero() {
					releases = append(releases, release{h, held})
				}
				m.feeds.recount(g)
			}
		}
		if len(m.feeds.inflight) >= m.attachHistories {
			return 0, false
		}
	}
	m.feeds.inflight[host] = now
	f.asked = true
	// A host that waited out its hold for the slot is evaluated without
	// the history from now on (it still lands); one asked within it holds
	// for the history as long again.
	if !f.late && now.After(f.holdUntil) {
		m.lateLocked(f) // its points being stored notify the evaluator
	}
	if !f.late {
		f.holdUntil = now.Add(m.attachHold)
	}
	m.feeds.historyAsks.Add(1)
	return f.storeNewest, true
}

// unask gives back a slot whose request was not sent; a later frame asks again.
func (m *MetricIngest) unask(host string) {
	m.feeds.mu.Lock()
	defer m.feeds.mu.Unlock()
	delete(m.feeds.inflight, host)
	if f := m.feeds.m[host]; f != nil {
		f.asked = false
	}
}

// historySince is where the history asked for host starts: after what
// the store held, and no further back than the host's rules read
// (alerting.Evaluator.HistoryNeed) or a chart's default window, whichever
// is longer; the whole rollup window for a host with a dynamic rule (its
// baseline learns from all of it) or when the need is unknown.
func (m *MetricIngest) historySince(ctx context.Context, host string, storeNewest int64) int64 {
	now := m.now()
	need, whole, err := m.eval.HistoryNeed(ctx, host, now)
	if err != nil {
		m.log.Warn("reading what an attaching host's rules need; asking its whole history", "host", host, "err", err)
		whole = true
	}
	back := m.metrics.Config().Rollup
	if !whole {
		back = min(back, max(need, DefaultMetricWindow))
	}
	return max(storeNewest+1, now.Add(-back).Unix())
}

// historyDone ends host's history: frees its slot, resets its dynamic
// baselines (they learn again from the history) and passes on the newest
// point its evaluation held.
func (m *MetricIngest) historyDone(host string) {
	m.feeds.historyEnds.Add(1)
	m.eval.ResetBaselines(host)
	m.feeds.mu.Lock()
	delete(m.feeds.inflight, host)
	f := m.feeds.m[host]
	var held time.Time
	if f != nil && f.wantHistory && f.asked {
		f.wantHistory, f.asked = false, false
		if !f.holding() {
			held, f.held = f.held, time.Time{}
		}
		m.feeds.recount(f)
	}
	m.feeds.mu.Unlock()
	if !held.IsZero() {
		m.eval.Notify(host, held)
	}
}

// CheckAgent refuses a caller that is not an agent, before a stream opens.
func (m *MetricIngest) CheckAgent(ctx context.Context) error {
	_, err := requireAgent(ctx)
	return err
}

// IngestFrame takes one metricwire frame from the calling agent and
// returns the frames to answer it with: a points frame is stored under
// the agent's own host (whatever the frame says) and acknowledged, with a
// request for history when the host is owed one and a slot is free;
// history frames are backfilled; the end of the history resets the
// host's baselines and releases its evaluation.
func (m *MetricIngest) IngestFrame(ctx context.Context, f *metricwire.Frame) ([]metricwire.Frame, error) {
	return m.IngestFrameTo(ctx, f, nil)
}

// IngestFrameTo is IngestFrame appending the answers to dst, so that a
// stream reuses one slice for every frame's.
func (m *MetricIngest) IngestFrameTo(ctx context.Context, f *metricwire.Frame, dst []metricwire.Frame) ([]metricwire.Frame, error) {
	hostID, err := requireAgent(ctx)
	if err != nil {
		return dst, err
	}
	switch f.Kind {
	case metricwire.KindPoints:
		res, err := m.ingest(ctx, hostID, tripcap.MetricBatch{Points: f.Points}, true)
		if tripcap.ErrorCode(err) == tripcap.EINVALID {
			// A frame the store refuses whole is acknowledged as refused,
			// streamed or POSTed alike, or the agent would send it again
			// forever.
			m.log.Warn("refusing an agent's metric frame", "host", hostID, "err", err)
			return append(dst, metricwire.Frame{Kind: metricwire.KindAck, Sec: f.Sec, Refused: uint64(len(f.Points))}), nil
		}
		if err != nil {
			return dst, err
		}
		refused := res.Duplicates + res.TooOld + res.TooNew + res.OverLimit
		dst = append(dst, metricwire.Frame{Kind: metricwire.KindAck, Sec: f.Sec, Stored: uint64(res.Stored), Refused: uint64(refused)})
		if res.AskHistory {
			dst = append(dst, metricwire.Frame{Kind: metricwire.KindHistoryRequest, Sec: res.HistorySince})
		}
		return dst, nil
	case metricwire.KindHistory:
		for i := range f.History {
			f.History[i].Key.Host = hostID
		}
		res, err := m.metrics.Backfill(hostID, f.History)
		if err != nil {
			return dst, err
		}
		// A history runs up to the agent's now, so it repeats the seconds
		// streamed since the attach (and a host that waited for a slot
		// streamed many): the store keeps what it holds, and those repeats
		// are overlap the server asked for, not points refused.
		res.Duplicates = 0
		m.count(res)
		m.feeds.backfilled.Add(uint64(res.Stored))
		return dst, nil
	case metricwire.KindHistoryEnd:
		m.historyDone(hostID)
		return dst, nil
	}
	return dst, tripcap.Errorf(tripcap.EINVALID, "frame: a %v frame is the server's to send", f.Kind)
}

// ingest stores points under host, attaching it first when they end a
// gap, and counts what became of them.
// framed: the points come from a metricwire frame, and the answer can
// carry a request for history (frames answer frames; a JSON batch's
// answer cannot). The store validates every batch, framed or not: the
// decoder's checks are the same, but IngestFrame takes any Frame.
func (m *MetricIngest) ingest(ctx context.Context, host string, b tripcap.MetricBatch, framed bool) (IngestResult, error) {
	for i := range b.Points {
		b.Points[i].Host = host
	}
	var out IngestResult
	var now time.Time
	if len(b.Points) > 0 {
		now = m.now()
		attach, owed := m.arrive(host, now)
		if attach {
			m.attach(host, framed, now)
			owed = framed
		}
		if framed && owed {
			if newest, ok := m.askSlot(host, now); ok {
				out.AskHistory, out.HistorySince = true, m.historySince(ctx, host, newest)
			}
		}
	}
	res, err := m.metrics.Append(b)
	out.AppendResult = res
	if err != nil {
		if out.AskHistory {
			m.unask(host)
			out.AskHistory = false
		}
		return out, err
	}
	m.count(res)
	m.sinkPoints(host, b.Points, res)
	m.delay.record(now, b) // the clock at arrival: the store takes microseconds
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
	// HistoryAsks: histories asked for; HistoriesInFlight asked and not
	// yet in; HistoriesWaiting owed and waiting for a slot.
	HistoryAsks       uint64 `json:"historyAsks"`
	HistoriesInFlight int    `json:"historiesInFlight"`
	HistoriesWaiting  int    `json:"historiesWaiting"`
	// HistoriesLate: hosts evaluated without their history, which was
	// not in before their hold passed; HistoriesExpired: histories asked
	// that never came within the hold (their slot was given up).
	HistoriesLate    uint64 `json:"historiesLate"`
	HistoriesExpired uint64 `json:"historiesExpired"`
	// RestoreQueries: the reloads of Fired alerts attaches took.
	RestoreQueries uint64 `json:"restoreQueries"`
}

// attachStats counts the feeds now (a pass over the hosts: /metrics reads
// it every scrape, not every point).
func (m *MetricIngest) attachStats() AttachStats {
	m.feeds.mu.Lock()
	waiting := 0
	for _, f := range m.feeds.m {
		if f.wantHistory && !f.asked {
			waiting++
		}
	}
	inflight := len(m.feeds.inflight)
	m.feeds.mu.Unlock()
	return AttachStats{Attaches: m.feeds.attaches.Load(), Backfilled: m.feeds.backfilled.Load(), HistoryEnds: m.feeds.historyEnds.Load(),
		HistoryAsks: m.feeds.historyAsks.Load(), HistoriesInFlight: inflight, HistoriesWaiting: waiting,
		HistoriesLate: m.feeds.historyLate.Load(), HistoriesExpired: m.feeds.historyExpired.Load(), RestoreQueries: m.feeds.restoreQueries.Load()}
}
