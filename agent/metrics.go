package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/hostmetrics"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/metricstore"
	"github.com/tripcap/tripcap/metricwire"
)

// MetricsShipInterval is the longest the agent waits to ship buffered
// metric points; each second's sample is shipped as soon as it is taken.
// The server evaluates rules on the data's clock, so shipping at the sample
// is what turns a breach into a running capture within a few hundred
// milliseconds (bench/trigger).
const MetricsShipInterval = time.Second

// Shipping metrics (agent protocol version 2): each second's sample goes
// as one metricwire frame on a single long-lived streaming request over
// the agent's HTTP/2 connection; the server acknowledges each frame and
// may ask, on the same stream, for the host's history, which the agent
// keeps in its own metric store (an hour of seconds, a day of minutes).
// When the stream cannot be held (HTTP/1.1, a proxy that buffers) the
// agent POSTs each second's frames instead, and to a server below version
// 2 the JSON batches of version 1. Points not yet acknowledged go back to
// the collector's buffer (bounded) when a stream breaks, and are sent
// again on the next: a server restart loses nothing within the bound.
const (
	// streamOpenTimeout bounds the wait for the stream's answer headers:
	// a proxy that buffers the request never sends them.
	streamOpenTimeout = 10 * time.Second
	// streamAckTimeout is how long a frame may wait for its
	// acknowledgement before the stream counts as stalled.
	streamAckTimeout = 15 * time.Second
	// noStreamFor is how long the agent POSTs after the stream could not
	// be held, before it tries the stream again.
	noStreamFor = 5 * time.Minute
	// maxStreamBackoff bounds the wait between attempts after a failure.
	maxStreamBackoff = 30 * time.Second
	// historyHost keys the agent's own series in its history store.
	historyHost = "self"
)

// metricsLoop samples the host's metrics every second and ships them until
// ctx ends; it does nothing without Config.Metrics.
func (a *Agent) metricsLoop(ctx context.Context) {
	hm := a.cfg.Metrics
	if hm == nil {
		return
	}
	hist, err := metricstore.New(metricstore.Config{Logger: a.log, SnapshotPath: filepath.Join(a.cfg.StateDir, "metrics-history.snapshot")})
	if err != nil {
		a.log.Error("metric history store; shipping without history", "err", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = hm.Run(ctx) }()
	if hist != nil {
		wg.Add(1)
		go func() { defer wg.Done(); hist.Run(ctx) }()
	}
	ShipMetrics(ctx, a.client, hm, hist, a.log)
	wg.Wait()
}

// ShipMetrics ships hm's points over client until ctx ends, as an agent
// does (the stream, its fallbacks, JSON to an older server), keeping what
// it ships in hist (nil: it answers a request for history with none). It
// neither samples (hm.Run) nor prunes hist (hist.Run): the caller runs
// those. bench/fleet drives it with synthetic collectors.
func ShipMetrics(ctx context.Context, client *tchttp.Client, hm *hostmetrics.Collector, hist *metricstore.Store, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	s := &metricShipper{client: client, hm: hm, hist: hist, log: log.With("component", "metricship")}
	s.run(ctx)
}

// metricShipper ships the collector's points by the best way the server
// and the path to it allow.
type metricShipper struct {
	client *tchttp.Client
	hm     *hostmetrics.Collector
	hist   *metricstore.Store // nil: no history to send
	log    *slog.Logger
	// noStreamUntil: POST until then (the stream could not be held).
	noStreamUntil time.Time
	// histBuf is keep's buffer.
	histBuf []tripcap.MetricPoint
}

func (s *metricShipper) run(ctx context.Context) {
	reconnect := tripcap.Backoff{Min: time.Second, Max: maxStreamBackoff}
	for ctx.Err() == nil {
		if s.client.ServerProtocol() >= 2 && time.Now().After(s.noStreamUntil) {
			start := time.Now()
			err := s.stream(ctx)
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, tchttp.ErrNoMetricStream):
				s.log.Info("the metric stream cannot be held; POSTing each second's frames", "err", err, "retry", noStreamFor)
				s.noStreamUntil = time.Now().Add(noStreamFor)
				continue
			case err != nil:
				if time.Since(start) > time.Minute {
					reconnect.Reset() // it was up a while: a fresh failure
				}
				// Jittered: the agents of a replica that died all lose
				// their streams at once, and should not all come back at once.
				wait := reconnect.Next()
				s.log.Warn("metric stream ended; reconnecting", "err", err, "in", wait)
				tripcap.Sleep(ctx, wait)
				continue
			}
			reconnect.Reset()
			continue
		}
		// POSTs, until the stream is worth trying (again): Ship stops when
		// pctx ends, keeping what it could not send in the buffer.
		pctx, cancel := context.WithCancel(ctx)
		retry := time.AfterFunc(max(time.Until(s.noStreamUntil), 0)+noStreamFor, cancel)
		if !s.noStreamUntil.IsZero() {
			retry.Reset(time.Until(s.noStreamUntil))
		}
		_ = s.hm.Ship(pctx, MetricsShipInterval, func(ctx context.Context, b tripcap.MetricBatch) error {
			err := s.post(ctx, b)
			if err == nil && s.client.ServerProtocol() >= 2 && time.Now().After(s.noStreamUntil) {
				cancel() // the server speaks version 2: stream from now on
			}
			return err
		})
		retry.Stop()
		cancel()
	}
}

// keep adds shipped points to the agent's own history, for a server that
// attaches the host later. The store copies what it keeps, so the points
// go to it through one buffer reused every second (run ships by one way at
// a time: keep is never called concurrently).
func (s *metricShipper) keep(pts []tripcap.MetricPoint) {
	if s.hist == nil || len(pts) == 0 {
		return
	}
	s.histBuf = append(s.histBuf[:0], pts...)
	for i := range s.histBuf {
		s.histBuf[i].Host = historyHost
	}
	// Points shipped twice (requeued) are duplicates the store ignores.
	if _, err := s.hist.Append(tripcap.MetricBatch{Points: s.histBuf}); err != nil {
		s.log.Warn("keeping metric history", "err", err)
	}
}

// history is the answer to a server's request for the history since.
func (s *metricShipper) history(since int64) ([]byte, error) {
	var h []metricstore.SeriesHistory
	if s.hist != nil {
		h = s.hist.History(historyHost, time.Unix(since, 0))
	}
	return metricwire.AppendHistoryAnswer(nil, h)
}

// post ships one batch as one request: metricwire frames to a server at
// version 2 (and its history when the answer asks for it), JSON below.
func (s *metricShipper) post(ctx context.Context, b tripcap.MetricBatch) error {
	s.keep(b.Points)
	if s.client.ServerProtocol() < 2 {
		return s.client.PostMetrics(ctx, b)
	}
	frames, _, err := metricwire.AppendBatch(nil, b)
	if err != nil {
		return err
	}
	answers, err := s.client.PostMetricFrames(ctx, frames)
	if err != nil {
		return err
	}
	for _, f := range answers {
		if f.Kind != metricwire.KindHistoryRequest {
			continue
		}
		h, err := s.history(f.Sec)
		if err != nil {
			return err
		}
		if _, err := s.client.PostMetricFrames(ctx, h); err != nil {
			// The points went; the server evaluates without the history
			// once its wait for it passes.
			s.log.Warn("sending metric history", "err", err)
		}
	}
	return nil
}

// streamCheck is how often the stream looks for acknowledgements that do
// not come when no sample wakes it (each sample does, every second).
const streamCheck = 5 * time.Second

// sentFrames are the points sent on a stream and not yet acknowledged,
// frame by frame. Its buffers are reused, so a second shipped allocates
// nothing once they have grown.
type sentFrames struct {
	pending []tripcap.MetricPoint // every unacknowledged frame's points, in order
	frames  []sentFrame
	buf     []byte // the frames being written
}

// sentFrame is a points frame on the stream, not yet acknowledged: its
// second, when it was sent, and how many of pending's points are its.
type sentFrame struct {
	sec int64
	at  time.Time
	n   int
}

// next drains the collector's new points (at most a batch's worth) into
// pending, keeps them in the history (keep), and returns them encoded as
// points frames, one per second in time order (several when a second has
// more than metricwire.MaxSeries series); nil when there are none.
func (f *sentFrames) next(hm *hostmetrics.Collector, keep func([]tripcap.MetricPoint), now time.Time) ([]byte, error) {
	from, nf := len(f.pending), len(f.frames)
	f.pending = hm.DrainTo(f.pending, tripcap.MaxMetricBatchPoints)
	fresh := f.pending[from:]
	if len(fresh) == 0 {
		return nil, nil
	}
	keep(fresh)
	// In time order; a sample's points are already, unless it spread an
	// increase over seconds it missed.
	bySec := func(x, y tripcap.MetricPoint) int { return cmp.Compare(x.Time.Unix(), y.Time.Unix()) }
	if !slices.IsSortedFunc(fresh, bySec) {
		slices.SortStableFunc(fresh, bySec)
	}
	f.buf = f.buf[:0]
	for rest := fresh; len(rest) > 0; {
		sec := rest[0].Time.Unix()
		n := 1
		for n < len(rest) && n < metricwire.MaxSeries && rest[n].Time.Unix() == sec {
			n++
		}
		var err error
		if f.buf, err = metricwire.AppendPoints(f.buf, sec, rest[:n]); err != nil {
			// Points the wire refuses are dropped, not sent again.
			f.pending, f.frames = f.pending[:from], f.frames[:nf]
			return nil, err
		}
		f.frames = append(f.frames, sentFrame{sec: sec, at: now, n: n})
		rest = rest[n:]
	}
	return f.buf, nil
}

// acked forgets the frames up to and including second sec.
func (f *sentFrames) acked(sec int64) {
	k, n := 0, 0
	for k < len(f.frames) && f.frames[k].sec <= sec {
		n += f.frames[k].n
		k++
	}
	f.frames = f.frames[:copy(f.frames, f.frames[k:])]
	f.pending = f.pending[:copy(f.pending, f.pending[n:])]
}

// stream ships on one streaming request until it breaks or ctx ends. It
// returns an error wrapping tchttp.ErrNoMetricStream when the stream
// cannot be held; points not acknowledged go back to the buffer.
func (s *metricShipper) stream(ctx context.Context) (err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	defer pw.Close()
	// The transport finishes writing a request body before it gives up on
	// the request: the body must end when the stream does.
	stopBody := context.AfterFunc(sctx, func() { pw.CloseWithError(sctx.Err()) })
	defer stopBody()
	open := time.AfterFunc(streamOpenTimeout, cancel)
	st, err := s.client.OpenMetricStream(sctx, pr)
	if !open.Stop() {
		return fmt.Errorf("%w: no answer in %s", tchttp.ErrNoMetricStream, streamOpenTimeout)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	s.log.Debug("metric stream open")

	var sent sentFrames
	defer func() {
		// What the server did not acknowledge goes back, ahead of newer
		// points, for the next stream or POST.
		if len(sent.pending) > 0 {
			s.hm.Requeue(tripcap.MetricBatch{Points: sent.pending})
		}
	}()

	// Acknowledgements are taken when the stream wakes for a sample (or
	// streamCheck), not each on its own wake-up: 64 hold a minute's.
	acks := make(chan int64, 64)
	asks := make(chan int64, 4)
	readErr := make(chan error, 1)
	go func() {
		for {
			f, err := st.Next()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = errors.New("the server ended the stream")
				}
				readErr <- err
				return
			}
			var ch chan int64
			switch f.Kind {
			case metricwire.KindAck:
				ch = acks
			case metricwire.KindHistoryRequest:
				ch = asks
			default:
				readErr <- fmt.Errorf("the server sent a %v frame", f.Kind)
				return
			}
			select {
			case ch <- f.Sec:
			case <-sctx.Done():
				return
			}
		}
	}()

	// write sends frames; a write the transport does not take in
	// streamAckTimeout (the server stopped reading) ends the stream. One
	// timer, armed for each write.
	stall := time.AfterFunc(time.Hour, func() { pw.CloseWithError(errors.New("the stream stalled")) })
	stall.Stop()
	defer stall.Stop()
	write := func(b []byte) error {
		stall.Reset(streamAckTimeout)
		_, err := pw.Write(b)
		stall.Stop()
		return err
	}
	tick := time.NewTicker(streamCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			return err
		case since := <-asks:
			h, err := s.history(since)
			if err != nil {
				return err
			}
			if err := write(h); err != nil {
				return fmt.Errorf("sending history: %w", err)
			}
			continue
		case <-s.hm.Sampled():
		case <-tick.C:
		}
		for drained := false; !drained; {
			select {
			case sec := <-acks:
				sent.acked(sec)
			default:
				drained = true
			}
		}
		if len(sent.frames) > 0 && time.Since(sent.frames[0].at) > streamAckTimeout {
			// Frames go but no acknowledgement comes back: something on
			// the way holds the stream's answer.
			return fmt.Errorf("%w: no acknowledgement in %s", tchttp.ErrNoMetricStream, streamAckTimeout)
		}
		b, err := sent.next(s.hm, s.keep, time.Now())
		if err != nil {
			return err
		}
		if len(b) == 0 {
			continue
		}
		if err := write(b); err != nil {
			return fmt.Errorf("sending frames: %w", err)
		}
	}
}
