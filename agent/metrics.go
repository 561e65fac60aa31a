package agent

import (
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
	s := &metricShipper{client: a.client, hm: hm, hist: hist, log: a.log.With("component", "metricship")}
	s.run(ctx)
	wg.Wait()
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
}

func (s *metricShipper) run(ctx context.Context) {
	backoff := time.Second
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
					backoff = time.Second // it was up a while: a fresh failure
				}
				s.log.Warn("metric stream ended; reconnecting", "err", err, "in", backoff)
				tripcap.Sleep(ctx, backoff)
				backoff = min(2*backoff, maxStreamBackoff)
				continue
			}
			backoff = time.Second
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
// attaches the host later.
func (s *metricShipper) keep(b tripcap.MetricBatch) {
	if s.hist == nil || len(b.Points) == 0 {
		return
	}
	pts := slices.Clone(b.Points)
	for i := range pts {
		pts[i].Host = historyHost
	}
	// Points shipped twice (requeued) are duplicates the store ignores.
	if _, err := s.hist.Append(tripcap.MetricBatch{Points: pts}); err != nil {
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
	s.keep(b)
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

// sentFrame is a points frame on the stream, not yet acknowledged.
type sentFrame struct {
	sec int64
	at  time.Time
	pts []tripcap.MetricPoint
}

// stream ships on one streaming request until it breaks or ctx ends. It
// returns an error wrapping tchttp.ErrNoMetricStream when the stream
// cannot be held; points not acknowledged go back to the buffer.
func (s *metricShipper) stream(ctx context.Context) (err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	defer pw.Close()
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

	var unacked []sentFrame
	defer func() {
		// What the server did not acknowledge goes back, ahead of newer
		// points, for the next stream or POST.
		var back tripcap.MetricBatch
		for _, f := range unacked {
			back.Points = append(back.Points, f.pts...)
		}
		if len(back.Points) > 0 {
			s.hm.Requeue(back)
		}
	}()

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
	// streamAckTimeout (the server stopped reading) ends the stream.
	write := func(b []byte) error {
		stall := time.AfterFunc(streamAckTimeout, func() { pw.CloseWithError(errors.New("the stream stalled")) })
		defer stall.Stop()
		_, err := pw.Write(b)
		return err
	}
	tick := time.NewTicker(MetricsShipInterval)
	defer tick.Stop()
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			return err
		case sec := <-acks:
			n := 0
			for n < len(unacked) && unacked[n].sec <= sec {
				n++
			}
			unacked = unacked[n:]
			continue
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
		if len(unacked) > 0 && time.Since(unacked[0].at) > streamAckTimeout {
			// Frames go but no acknowledgement comes back: something on
			// the way holds the stream's answer.
			return fmt.Errorf("%w: no acknowledgement in %s", tchttp.ErrNoMetricStream, streamAckTimeout)
		}
		b := s.hm.Drain(tripcap.MaxMetricBatchPoints)
		if len(b.Points) == 0 {
			continue
		}
		s.keep(b)
		var secs []int64
		if buf, secs, err = metricwire.AppendBatch(buf[:0], b); err != nil {
			return err
		}
		// Each frame's points, in the order AppendBatch wrote them.
		slices.SortStableFunc(b.Points, func(x, y tripcap.MetricPoint) int { return x.Time.Compare(y.Time) })
		now := time.Now()
		for _, sec := range secs {
			n := 0
			for n < len(b.Points) && n < metricwire.MaxSeries && b.Points[n].Time.Unix() == sec {
				n++
			}
			unacked = append(unacked, sentFrame{sec: sec, at: now, pts: b.Points[:n]})
			b.Points = b.Points[n:]
		}
		if err := write(buf); err != nil {
			return fmt.Errorf("sending frames: %w", err)
		}
	}
}
