package remotewrite

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/tripcap/tripcap"
)

// Defaults of Config.
const (
	DefaultQueueSize    = 500_000
	DefaultBatchSize    = 5_000
	DefaultFlushEvery   = time.Second
	DefaultShards       = 4
	DefaultWriteTimeout = 30 * time.Second
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 5 * time.Second
	DefaultMaxRetry     = time.Minute
	// DefaultHostRefresh is how long a host's name and labels are used
	// before they are looked up again (a renamed host's series change then).
	DefaultHostRefresh = time.Minute
	// hostMissTTL is how long a host that could not be looked up is not
	// looked up again.
	hostMissTTL = 10 * time.Second
	// newestKeep is how long a series' newest sample sent is remembered.
	newestKeep = time.Hour
	// maxErrorBody bounds what is read of an error answer, for the log.
	maxErrorBody = 512
)

// Config configures a Writer.
type Config struct {
	// URL is the store's remote-write endpoint (Prometheus:
	// http://HOST:9090/api/v1/write, with --web.enable-remote-write-receiver).
	URL  string
	HTTP HTTPConfig
	// LabelKeys are the host labels written on every series of the host.
	LabelKeys []LabelKey
	// Hosts looks a host up by id, for its name and labels.
	Hosts func(ctx context.Context, id string) (*tripcap.Host, error)
	// QueueSize bounds the points waiting to be sent (all shards); beyond
	// it points are dropped and counted (default 500,000, ~32 MB).
	QueueSize int
	// BatchSize is the most samples in one request (default 5,000).
	BatchSize int
	// FlushEvery sends what is queued at least this often (default 1 s).
	FlushEvery time.Duration
	// Shards is how many requests are in flight at once (default 4). A
	// host's points all go through one shard, so each series is sent in
	// time order, as the store requires.
	Shards int
	// MinBackoff and MaxBackoff bound the wait between retries of a batch
	// (defaults 100 ms doubling to 5 s); MaxRetry is how long a batch is
	// retried before it is counted failed (default 1 min).
	MinBackoff, MaxBackoff, MaxRetry time.Duration
	// HostRefresh is how often a host's name and labels are looked up
	// again (default a minute).
	HostRefresh time.Duration
	Logger      *slog.Logger
}

// Writer ships points to a remote-write endpoint. Create it with New,
// start it with Run; SinkPoints never blocks.
type Writer struct {
	cfg    Config
	url    string
	name   string // url redacted, for logs and errors
	client *client
	log    *slog.Logger
	shards []*shard

	hostsMu sync.Mutex
	hosts   map[string]cachedHost

	sent, failed, dropped, retries, requests, outOfOrder, splits atomic.Uint64
}

type cachedHost struct {
	labels hostLabels
	found  bool
	// fetched is when these labels were first seen (series encode their
	// labels again when it changes); checked when they were last looked up.
	fetched, checked time.Time
}

// entry is one queued point.
type entry struct {
	host   string
	metric tripcap.MetricID
	iface  string
	ms     int64
	value  float64
}

// shard is a bounded ring of entries and its sender.
type shard struct {
	mu   sync.Mutex
	ring []entry
	head int // index of the oldest entry
	n    int
	wake chan struct{}
	// series are the shard's series sent lately. Only the shard's sender
	// touches them.
	series     map[seriesKey]*seriesState
	lastPruned time.Time
}

// seriesState is what a shard keeps of a series it sends.
type seriesState struct {
	// labels are encoded (appendLabels) from the host's labels looked up
	// at hostFetched.
	labels      []byte
	hostFetched time.Time
	// newest is the newest sample sent (ms). A sample at or before it is
	// skipped: Prometheus refuses out-of-order samples, and refuses the
	// whole request with them, costing the batch's good samples too.
	newest int64
	sent   bool
}

// New checks cfg and returns a Writer.
func New(cfg Config) (*Writer, error) {
	u, err := checkURL("remote write url", cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Hosts == nil {
		return nil, fmt.Errorf("remote write: no host lookup")
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.FlushEvery, DefaultFlushEvery)
	def(&cfg.MinBackoff, DefaultMinBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	def(&cfg.MaxRetry, DefaultMaxRetry)
	def(&cfg.HostRefresh, DefaultHostRefresh)
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Shards <= 0 {
		cfg.Shards = DefaultShards
	}
	cfg.Shards = min(cfg.Shards, cfg.QueueSize)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c, err := newClient(cfg.HTTP, DefaultWriteTimeout)
	if err != nil {
		return nil, err
	}
	w := &Writer{cfg: cfg, url: u.String(), name: tripcap.RedactURL(u.String()), client: c,
		log: cfg.Logger.With("component", "remotewrite", "url", tripcap.RedactURL(u.String())), hosts: map[string]cachedHost{}}
	per := cfg.QueueSize / cfg.Shards
	for range cfg.Shards {
		w.shards = append(w.shards, &shard{ring: make([]entry, per), wake: make(chan struct{}, 1), series: map[seriesKey]*seriesState{}, lastPruned: time.Now()})
	}
	return w, nil
}

// SinkPoints queues a host's stored points; what the queue has no room
// for is dropped and counted. It never waits on the network.
func (w *Writer) SinkPoints(hostID string, points []tripcap.MetricPoint) {
	if len(points) == 0 {
		return
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(hostID))
	sh := w.shards[int(h.Sum32()%uint32(len(w.shards)))]
	sh.mu.Lock()
	kept := 0
	for _, p := range points {
		if sh.n == len(sh.ring) {
			break
		}
		sh.ring[(sh.head+sh.n)%len(sh.ring)] = entry{host: hostID, metric: p.Metric, iface: p.Interface, ms: p.Time.UnixMilli(), value: p.Value}
		sh.n++
		kept++
	}
	full := sh.n >= w.cfg.BatchSize
	sh.mu.Unlock()
	if d := len(points) - kept; d > 0 {
		w.dropped.Add(uint64(d))
	}
	if full {
		select {
		case sh.wake <- struct{}{}:
		default:
		}
	}
}

// take removes up to max of the oldest entries.
func (sh *shard) take(max int) []entry {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	k := min(max, sh.n)
	if k == 0 {
		return nil
	}
	out := make([]entry, k)
	for i := range out {
		j := (sh.head + i) % len(sh.ring)
		out[i] = sh.ring[j]
		sh.ring[j] = entry{} // let the strings go
	}
	sh.head = (sh.head + k) % len(sh.ring)
	sh.n -= k
	return out
}

func (sh *shard) len() int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.n
}

// Run sends until ctx ends, then sends what is queued once more, for at
// most a few seconds.
func (w *Writer) Run(ctx context.Context) error {
	w.log.Info("writing metrics to the remote store", "queue", w.cfg.QueueSize, "batch", w.cfg.BatchSize, "shards", w.cfg.Shards)
	g := new(errgroup.Group)
	for _, sh := range w.shards {
		g.Go(func() error { w.runShard(ctx, sh); return nil })
	}
	return g.Wait()
}

func (w *Writer) runShard(ctx context.Context, sh *shard) {
	t := time.NewTicker(w.cfg.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			w.drain(final, sh, true)
			cancel()
			return
		case <-sh.wake:
			w.drain(ctx, sh, false)
		case <-t.C:
			w.drain(ctx, sh, true)
		}
	}
}

// drain sends full batches, and the last partial one when all is set.
func (w *Writer) drain(ctx context.Context, sh *shard, all bool) {
	for ctx.Err() == nil {
		if !all && sh.len() < w.cfg.BatchSize {
			return
		}
		batch := sh.take(w.cfg.BatchSize)
		if batch == nil {
			return
		}
		w.sendBatch(ctx, sh, batch)
	}
}

// sendBatch builds a batch's request and sends it, retrying what may be retried.
func (w *Writer) sendBatch(ctx context.Context, sh *shard, batch []entry) {
	series, unknown, stale := w.buildSeries(ctx, sh, batch)
	if unknown > 0 {
		w.failed.Add(uint64(unknown))
	}
	if stale > 0 {
		w.outOfOrder.Add(uint64(stale))
	}
	if len(series) > 0 {
		w.sendSeries(ctx, series, 0)
	}
}

// maxSplits bounds how often a refused request is halved: at most
// 2^(maxSplits+1)-1 requests for one batch.
const maxSplits = 6

// sendSeries sends series as one request. A 400 (Prometheus refuses a
// request with one bad sample whole, rolling back the good ones) halves
// the request and sends each half, so a stale sample of a series this
// writer had not seen (resent by an agent after a handoff, say) costs its
// own part of the batch, not the other hosts' samples.
func (w *Writer) sendSeries(ctx context.Context, series []timeSeries, depth int) {
	n := 0
	for _, ts := range series {
		n += len(ts.samples)
	}
	err := w.send(ctx, encodeRequest(series))
	if err == nil {
		w.sent.Add(uint64(n))
		return
	}
	var perm errPermanent
	if errors.As(err, &perm) && perm.status == http.StatusBadRequest && depth < maxSplits && ctx.Err() == nil {
		if a, b, ok := halve(series); ok {
			w.splits.Add(1)
			w.sendSeries(ctx, a, depth+1)
			w.sendSeries(ctx, b, depth+1)
			return
		}
	}
	w.failed.Add(uint64(n))
	w.log.Warn("remote write failed; its samples are dropped", "samples", n, "series", len(series), "err", err)
}

// halve splits series in two: by series, or one series' samples by time.
func halve(series []timeSeries) (a, b []timeSeries, ok bool) {
	if len(series) > 1 {
		return series[:len(series)/2], series[len(series)/2:], true
	}
	if len(series) == 1 && len(series[0].samples) > 1 {
		ts := series[0]
		h := len(ts.samples) / 2
		return []timeSeries{{labels: ts.labels, samples: ts.samples[:h]}}, []timeSeries{{labels: ts.labels, samples: ts.samples[h:]}}, true
	}
	return nil, nil, false
}

// seriesKey groups a batch's entries by series.
type seriesKey struct {
	host   string
	metric tripcap.MetricID
	iface  string
}

// buildSeries groups entries into series with their labels, in time
// order; unknown counts the entries of hosts that could not be looked up,
// stale those at or before their series' newest sample sent.
func (w *Writer) buildSeries(ctx context.Context, sh *shard, batch []entry) (out []timeSeries, unknown, stale int) {
	idx := make(map[seriesKey]int, len(batch))
	out = make([]timeSeries, 0, len(batch))
	states := make([]*seriesState, 0, len(batch))
	// A batch holds a host's series one after the other: look it up once.
	var lastHost string
	var lastLabels cachedHost
	var lastFound bool
	seriesOf := make([]int, len(batch))
	var counts []int
	for j, e := range batch {
		k := seriesKey{e.host, e.metric, e.iface}
		i, ok := idx[k]
		if !ok {
			if e.host != lastHost || lastHost == "" {
				lastHost = e.host
				lastLabels, lastFound = w.hostLabels(ctx, e.host)
			}
			st := sh.state(k, lastLabels, lastFound)
			if st == nil {
				idx[k], seriesOf[j] = -1, -1
				unknown++
				continue
			}
			i = len(out)
			idx[k] = i
			out = append(out, timeSeries{labels: st.labels})
			states = append(states, st)
			counts = append(counts, 0)
		}
		seriesOf[j] = i
		if i < 0 {
			unknown++
			continue
		}
		counts[i]++
	}
	// One array holds every series' samples, each series a slice of it.
	all := make([]sample, 0, len(batch)-unknown)
	for i := range out {
		out[i].samples = all[len(all) : len(all) : len(all)+counts[i]]
		all = all[:len(all)+counts[i]]
	}
	for j, e := range batch {
		if i := seriesOf[j]; i >= 0 {
			out[i].samples = append(out[i].samples, sample{e.ms, e.value})
		}
	}
	kept := out[:0]
	for i, ts := range out {
		st := states[i]
		slices.SortStableFunc(ts.samples, func(a, b sample) int { return cmp.Compare(a.ms, b.ms) })
		samples := ts.samples[:0]
		for _, s := range ts.samples {
			if st.sent && s.ms <= st.newest {
				stale++
				continue
			}
			samples = append(samples, s)
			st.newest, st.sent = s.ms, true
		}
		if len(samples) > 0 {
			ts.samples = samples
			kept = append(kept, ts)
		}
	}
	if time.Since(sh.lastPruned) > newestKeep/6 {
		// Series quiet for newestKeep are forgotten; their next samples
		// are newer than anything sent anyway.
		cut := time.Now().Add(-newestKeep).UnixMilli()
		maps.DeleteFunc(sh.series, func(_ seriesKey, st *seriesState) bool { return st.newest < cut })
		sh.lastPruned = time.Now()
	}
	return kept, unknown, stale
}

// state returns the shard's state of a series, its labels encoded from
// the host's current ones; nil when the host could not be looked up or
// the metric is unknown.
func (sh *shard) state(k seriesKey, ch cachedHost, found bool) *seriesState {
	def, known := k.metric.Definition()
	if !found || !known {
		return nil
	}
	st := sh.series[k]
	if st == nil {
		st = &seriesState{}
		sh.series[k] = st
	}
	if st.labels == nil || !st.hostFetched.Equal(ch.fetched) {
		st.labels = appendLabels(nil, seriesLabels(ch.labels, def, k.iface))
		st.hostFetched = ch.fetched
	}
	return st
}

// hostLabels returns a host's labels, looked up at most once a minute;
// found is false for a host that cannot be looked up (its points are
// counted failed rather than written without a name, which would split
// its series).
func (w *Writer) hostLabels(ctx context.Context, id string) (cachedHost, bool) {
	now := time.Now()
	w.hostsMu.Lock()
	c, ok := w.hosts[id]
	w.hostsMu.Unlock()
	ttl := w.cfg.HostRefresh
	if ok && !c.found {
		ttl = hostMissTTL
	}
	if ok && now.Sub(c.checked) < ttl {
		return c, c.found
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	h, err := w.cfg.Hosts(lctx, id)
	next := cachedHost{fetched: now, checked: now}
	switch {
	case err == nil && h != nil:
		next.labels, next.found = newHostLabels(h, w.cfg.LabelKeys), true
		if ok && c.found && slices.Equal(c.labels.extra, next.labels.extra) && c.labels.name == next.labels.name {
			next.fetched = c.fetched // unchanged: the series' encoded labels stand
		}
	case ok && c.found:
		// Keep writing under the last known labels while the lookup fails.
		next = c
		next.checked = now
	default:
		w.log.Warn("remote write: cannot look the host up; its points are dropped", "hostId", id, "err", err)
	}
	w.hostsMu.Lock()
	if len(w.hosts) > 1_000_000 {
		clear(w.hosts) // bounded: a churning fleet cannot grow it forever
	}
	w.hosts[id] = next
	w.hostsMu.Unlock()
	return next, next.found
}

// errPermanent marks an answer not worth retrying (4xx other than 429).
type errPermanent struct {
	err    error
	status int // the answer's, 0 for none
}

func (e errPermanent) Error() string { return e.err.Error() }

// send posts one compressed WriteRequest, retrying connection errors, 5xx
// and 429 with doubling backoff (or the answer's Retry-After) for at most
// MaxRetry; other 4xx are not retried (the spec: the data is at fault).
func (w *Writer) send(ctx context.Context, body []byte) error {
	deadline := time.Now().Add(w.cfg.MaxRetry)
	backoff := tripcap.Backoff{Min: w.cfg.MinBackoff, Max: w.cfg.MaxBackoff}
	for attempt := 1; ; attempt++ {
		wait, err := w.post(ctx, body)
		if err == nil {
			return nil
		}
		var perm errPermanent
		if errors.As(err, &perm) || ctx.Err() != nil {
			return err
		}
		if wait <= 0 {
			wait = backoff.Next()
		}
		wait = min(wait, w.cfg.MaxBackoff)
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("gave up after %d attempts in %s: %w", attempt, w.cfg.MaxRetry, err)
		}
		w.retries.Add(1)
		w.log.Debug("remote write: retrying", "attempt", attempt, "in", wait, "err", err)
		if !tripcap.Sleep(ctx, wait) {
			return err
		}
	}
}

// post sends body once; wait is the answer's Retry-After, if any.
func (w *Writer) post(ctx context.Context, body []byte) (wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return 0, errPermanent{err: err}
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", "tripcap")
	if err := w.client.authorize(req); err != nil {
		return 0, errPermanent{err: err}
	}
	w.requests.Add(1)
	resp, err := w.client.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post: %w", urlErr(err))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	if resp.StatusCode/100 == 2 {
		return 0, nil
	}
	err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	if resp.StatusCode/100 == 5 || resp.StatusCode == http.StatusTooManyRequests {
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		return wait, err
	}
	return 0, errPermanent{err, resp.StatusCode}
}

// Stats are the writer's totals, for /metrics and tests.
type Stats struct {
	Sent, Failed, Dropped, Retries, Requests, OutOfOrder, Splits uint64
	Queued, Capacity                                             int
}

// Stats returns the totals now.
func (w *Writer) Stats() Stats {
	st := Stats{Sent: w.sent.Load(), Failed: w.failed.Load(), Dropped: w.dropped.Load(), Retries: w.retries.Load(), Requests: w.requests.Load(), OutOfOrder: w.outOfOrder.Load(), Splits: w.splits.Load()}
	for _, sh := range w.shards {
		st.Queued += sh.len()
		st.Capacity += len(sh.ring)
	}
	return st
}

// Collectors are the writer's metrics, for the server's /metrics.
func (w *Writer) Collectors() []prometheus.Collector {
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		counter("tripcap_remote_write_samples_sent_total", "Samples the remote store accepted.", &w.sent),
		counter("tripcap_remote_write_samples_failed_total", "Samples given up on: refused by the store (4xx), still failing after the retry time, or of hosts that could not be looked up.", &w.failed),
		counter("tripcap_remote_write_samples_dropped_total", "Points dropped because the remote-write queue was full.", &w.dropped),
		counter("tripcap_remote_write_samples_out_of_order_total", "Samples not sent because their series had a newer or equal one sent already (the store would refuse the whole request).", &w.outOfOrder),
		counter("tripcap_remote_write_splits_total", "Requests the store refused with a 400 that were halved and sent again, so one bad sample costs only its part of a batch.", &w.splits),
		counter("tripcap_remote_write_retries_total", "Remote-write requests retried.", &w.retries),
		counter("tripcap_remote_write_requests_total", "Remote-write requests sent.", &w.requests),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tripcap_remote_write_queue_length", Help: "Points waiting to be sent to the remote store."},
			func() float64 { return float64(w.Stats().Queued) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tripcap_remote_write_queue_capacity", Help: "Points the remote-write queue holds at most."},
			func() float64 { return float64(w.Stats().Capacity) }),
	}
}

// encodeRequest is the snappy-compressed WriteRequest of series.
func encodeRequest(series []timeSeries) []byte {
	size := 0
	for _, ts := range series {
		size += 6 + len(ts.labels) + 24*len(ts.samples)
	}
	raw := appendWriteRequest(make([]byte, 0, size), series)
	return snappy.Encode(make([]byte, snappy.MaxEncodedLen(len(raw))), raw)
}
