// Package hostmetrics is the agent's network metric collector: once a second
// it reads the kernel's counters — /proc/net/dev per interface (via
// prometheus/procfs), the Tcp line of /proc/net/snmp, and the socket tables
// /proc/net/{tcp,tcp6,udp,udp6} for current flows — and turns them into
// 1-second points (a counter's point is its increase over that second) that
// it buffers for shipping to the server, and into a prometheus.Collector for
// the agent's /metrics.
//
// Files are read under a configurable proc root: "/proc" for the agent's
// network namespace, "/proc/thread-self" for the namespace of the calling
// OS thread (tests sample a namespace from a thread that entered it), or a
// directory of fixture files.
package hostmetrics

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
)

// Defaults of Config.
const (
	DefaultProcRoot    = "/proc"
	DefaultMaxBuffered = 500_000
	// maxSpread is the longest gap between samples whose increase is
	// spread over the missed seconds; after a longer one (the agent was
	// stopped) the increase is dropped rather than guessed.
	maxSpread = 60
)

// Config configures a Collector.
type Config struct {
	// ProcRoot holds net/dev, net/snmp and net/{tcp,tcp6,udp,udp6}.
	ProcRoot string
	// Host is the value of the host label on /metrics (the host's name).
	Host string
	// IncludeLoopback adds loopback interfaces' own series. Host totals
	// never include loopback: traffic to oneself is not network traffic,
	// as Azure's Network In/Out Total count the NIC.
	IncludeLoopback bool
	// MaxBuffered bounds the points kept for shipping while the server is
	// unreachable; the oldest are dropped beyond it.
	MaxBuffered int
	// Read takes one reading of the counters; nil reads the kernel under
	// ProcRoot. A benchmark sets it to drive the real collector and
	// shipper with synthetic values.
	Read   func(ctx context.Context) (Reading, error)
	Now    func() time.Time
	Logger *slog.Logger
}

// Collector samples the kernel and keeps the points for shipping. It is
// safe for concurrent use.
type Collector struct {
	cfg Config

	mu      sync.Mutex
	last    *Reading
	lastSec int64
	buf     []tripcap.MetricPoint
	dropped uint64
	// sampled wakes Ship when a sample buffered points, so a second's point
	// leaves the host as soon as it exists: alert latency starts here.
	sampled chan struct{}
}

// New returns a collector; it reads nothing until Sample or Run.
func New(cfg Config) (*Collector, error) {
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = DefaultProcRoot
	}
	if cfg.Host == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "host: required (the host label of /metrics)")
	}
	if cfg.MaxBuffered == 0 {
		cfg.MaxBuffered = DefaultMaxBuffered
	}
	if cfg.Read == nil {
		root := cfg.ProcRoot
		cfg.Read = func(context.Context) (Reading, error) { return read(root) }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("component", "hostmetrics")
	return &Collector{cfg: cfg, sampled: make(chan struct{}, 1)}, nil
}

// Sample takes one reading (Config.Read; the kernel by default) at the
// current second. The first sample only sets the baseline for counters;
// later ones buffer one point per series per second elapsed. Two samples in one second: the second is
// ignored (nil error).
func (c *Collector) Sample(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := c.cfg.Now()
	r, err := c.cfg.Read(ctx)
	if err != nil {
		return fmt.Errorf("hostmetrics: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.add(now.Unix(), &r)
}

// add turns a reading into points; separate from Sample so tests can feed
// fixture readings at chosen times.
func (c *Collector) add(sec int64, r *Reading) error {
	if c.last != nil && sec <= c.lastSec {
		return nil
	}
	prev, prevSec := c.last, c.lastSec
	c.last, c.lastSec = r, sec
	// Gauges are the value now; counters need a previous reading.
	pts := []tripcap.MetricPoint{
		{Metric: tripcap.MetricInboundFlows, Time: time.Unix(sec, 0).UTC(), Value: float64(r.Flows.Inbound)},
		{Metric: tripcap.MetricOutboundFlows, Time: time.Unix(sec, 0).UTC(), Value: float64(r.Flows.Outbound)},
	}
	if prev != nil {
		gap := sec - prevSec
		if gap > maxSpread {
			c.cfg.Logger.Warn("samples far apart; dropping the increase between them", "seconds", gap)
		} else {
			for _, d := range c.deltas(prev, r) {
				// Spread an increase over the seconds it covers, so a late
				// sample does not show as a one-second spike and Total over
				// any window stays exact.
				for i := int64(1); i <= gap; i++ {
					share := d.value / float64(gap)
					pts = append(pts, tripcap.MetricPoint{Metric: d.metric, Interface: d.iface, Time: time.Unix(prevSec+i, 0).UTC(), Value: share})
				}
			}
		}
	}
	c.buf = append(c.buf, pts...)
	if over := len(c.buf) - c.cfg.MaxBuffered; over > 0 {
		c.buf = append(c.buf[:0], c.buf[over:]...)
		c.dropped += uint64(over)
	}
	select {
	case c.sampled <- struct{}{}:
	default:
	}
	return nil
}

type delta struct {
	metric tripcap.MetricID
	iface  string
	value  float64
}

// deltas are the counters' increases from prev to cur. A counter that went
// down (the interface was recreated) yields no point for that interval:
// missing data, not a guess.
func (c *Collector) deltas(prev, cur *Reading) []delta {
	var out []delta
	add := func(m tripcap.MetricID, iface string, a, b uint64, total *map[tripcap.MetricID]float64, ok *map[tripcap.MetricID]bool) {
		if b < a {
			if ok != nil {
				(*ok)[m] = false
			}
			return
		}
		v := float64(b - a)
		if iface == "" || !isLoopback(iface) || c.cfg.IncludeLoopback {
			out = append(out, delta{m, iface, v})
		}
		if total != nil && !isLoopback(iface) {
			(*total)[m] += v
		}
	}
	totals := map[tripcap.MetricID]float64{}
	valid := map[tripcap.MetricID]bool{}
	names := make([]string, 0, len(cur.Interfaces))
	for n := range cur.Interfaces {
		names = append(names, n)
	}
	sort.Strings(names)
	ifaceMetrics := []tripcap.MetricID{
		tripcap.MetricNetworkInBytes, tripcap.MetricNetworkOutBytes, tripcap.MetricNetworkInPackets, tripcap.MetricNetworkOutPackets,
		tripcap.MetricNetworkInDrops, tripcap.MetricNetworkOutDrops, tripcap.MetricNetworkInErrors, tripcap.MetricNetworkOutErrors,
	}
	for _, m := range ifaceMetrics {
		valid[m] = true
	}
	for _, n := range names {
		b := cur.Interfaces[n]
		a, ok := prev.Interfaces[n]
		if !ok {
			// A new interface: its first reading is its baseline.
			continue
		}
		add(tripcap.MetricNetworkInBytes, n, a.RxBytes, b.RxBytes, &totals, &valid)
		add(tripcap.MetricNetworkOutBytes, n, a.TxBytes, b.TxBytes, &totals, &valid)
		add(tripcap.MetricNetworkInPackets, n, a.RxPackets, b.RxPackets, &totals, &valid)
		add(tripcap.MetricNetworkOutPackets, n, a.TxPackets, b.TxPackets, &totals, &valid)
		add(tripcap.MetricNetworkInDrops, n, a.RxDropped, b.RxDropped, &totals, &valid)
		add(tripcap.MetricNetworkOutDrops, n, a.TxDropped, b.TxDropped, &totals, &valid)
		add(tripcap.MetricNetworkInErrors, n, a.RxErrors, b.RxErrors, &totals, &valid)
		add(tripcap.MetricNetworkOutErrors, n, a.TxErrors, b.TxErrors, &totals, &valid)
	}
	for _, m := range ifaceMetrics {
		if valid[m] {
			out = append(out, delta{m, "", totals[m]})
		}
	}
	add(tripcap.MetricTCPSegmentsSent, "", prev.TCP.OutSegs, cur.TCP.OutSegs, nil, nil)
	add(tripcap.MetricTCPSegmentsReceived, "", prev.TCP.InSegs, cur.TCP.InSegs, nil, nil)
	add(tripcap.MetricTCPRetransmittedSegment, "", prev.TCP.RetransSegs, cur.TCP.RetransSegs, nil, nil)
	add(tripcap.MetricTCPResetsSent, "", prev.TCP.OutRsts, cur.TCP.OutRsts, nil, nil)
	add(tripcap.MetricTCPEstablishedResets, "", prev.TCP.EstabResets, cur.TCP.EstabResets, nil, nil)
	return out
}

// Last returns the latest reading and its time; ok is false before the first sample.
func (c *Collector) Last() (Reading, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		return Reading{}, time.Time{}, false
	}
	return *c.last, time.Unix(c.lastSec, 0).UTC(), true
}

// Drain removes and returns up to max buffered points (all when max <= 0),
// oldest first, as a batch to ship. Points carry no host: the server sets
// it from the agent's credential.
func (c *Collector) Drain(max int) tripcap.MetricBatch {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.buf)
	if max > 0 && n > max {
		n = max
	}
	b := tripcap.MetricBatch{Points: append([]tripcap.MetricPoint(nil), c.buf[:n]...)}
	c.buf = append(c.buf[:0], c.buf[n:]...)
	return b
}

// Requeue puts back a batch that could not be shipped, ahead of newer
// points, within MaxBuffered (the oldest are dropped first).
func (c *Collector) Requeue(b tripcap.MetricBatch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(append([]tripcap.MetricPoint(nil), b.Points...), c.buf...)
	if over := len(c.buf) - c.cfg.MaxBuffered; over > 0 {
		c.buf = append(c.buf[:0], c.buf[over:]...)
		c.dropped += uint64(over)
	}
}

// Buffered is the number of points waiting to be shipped, and how many were
// dropped because the buffer was full.
func (c *Collector) Buffered() (waiting int, dropped uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buf), c.dropped
}

// Sampled is signalled when a sample buffered points (coalesced: one
// signal may stand for several samples), for a shipper other than Ship.
func (c *Collector) Sampled() <-chan struct{} { return c.sampled }

// Run samples at every whole second until ctx ends. Read errors are
// logged; the next second tries again.
func (c *Collector) Run(ctx context.Context) error {
	for {
		now := c.cfg.Now()
		next := now.Truncate(time.Second).Add(time.Second)
		t := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if err := c.Sample(ctx); err != nil && ctx.Err() == nil {
			c.cfg.Logger.Warn("sampling", "err", err)
		}
	}
}

// Ship sends buffered points with send until ctx ends, in batches of at
// most tripcap.MaxMetricBatchPoints: as soon as a sample buffered them, and
// at least every interval. A failed batch is requeued and the next try waits
// twice as long (up to a minute), samples or not, so a server outage costs
// nothing but buffer.
func (c *Collector) Ship(ctx context.Context, every time.Duration, send func(context.Context, tripcap.MetricBatch) error) error {
	if every <= 0 {
		every = time.Second
	}
	wait, backoff := every, every
	for {
		timer := time.NewTimer(wait)
		sampled := c.sampled
		if wait > every {
			sampled = nil // backing off
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		case <-sampled:
			timer.Stop()
		}
		wait = every
		for {
			b := c.Drain(tripcap.MaxMetricBatchPoints)
			if len(b.Points) == 0 {
				break
			}
			err := send(ctx, b)
			if err == nil {
				backoff = every
				continue
			}
			c.Requeue(b)
			if ctx.Err() != nil {
				return nil
			}
			waiting, dropped := c.Buffered()
			c.cfg.Logger.Warn("shipping metrics", "err", err, "waiting", waiting, "dropped", dropped)
			backoff = min(2*backoff, time.Minute)
			wait = backoff
			break
		}
	}
}

// isLoopback tells the loopback interface by its name: /proc/net/dev has
// no flags, and the kernel names every namespace's loopback "lo".
func isLoopback(name string) bool { return name == "lo" }
