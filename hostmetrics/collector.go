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
	"slices"
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
	last    Reading
	hasLast bool
	lastSec int64
	buf     []tripcap.MetricPoint
	dropped uint64
	// Reused each sample (under mu), so a second's sample allocates
	// nothing once the buffers have grown: an agent is one process among
	// the host's, and bench/fleet runs thousands of them on one machine.
	deltaBuf []delta
	names    []string
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
	if c.hasLast && sec <= c.lastSec {
		return nil
	}
	prev, hadPrev, prevSec := c.last, c.hasLast, c.lastSec
	c.last, c.hasLast, c.lastSec = *r, true, sec
	// Points go straight into the buffer: gauges are the value now;
	// counters need a previous reading.
	at := time.Unix(sec, 0).UTC()
	c.buf = append(c.buf,
		tripcap.MetricPoint{Metric: tripcap.MetricInboundFlows, Time: at, Value: float64(r.Flows.Inbound)},
		tripcap.MetricPoint{Metric: tripcap.MetricOutboundFlows, Time: at, Value: float64(r.Flows.Outbound)},
	)
	if hadPrev {
		gap := sec - prevSec
		if gap > maxSpread {
			c.cfg.Logger.Warn("samples far apart; dropping the increase between them", "seconds", gap)
		} else {
			c.deltaBuf = c.deltas(c.deltaBuf[:0], &prev, r)
			c.buf = slices.Grow(c.buf, len(c.deltaBuf)*int(gap))
			for _, d := range c.deltaBuf {
				// Spread an increase over the seconds it covers, so a late
				// sample does not show as a one-second spike and Total over
				// any window stays exact.
				share := d.value / float64(gap)
				for i := int64(1); i <= gap; i++ {
					c.buf = append(c.buf, tripcap.MetricPoint{Metric: d.metric, Interface: d.iface, Time: time.Unix(prevSec+i, 0).UTC(), Value: share})
				}
			}
		}
	}
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

// ifaceMetrics are the per-interface counters' metrics, in the order
// deltas reports them.
var ifaceMetrics = [...]tripcap.MetricID{
	tripcap.MetricNetworkInBytes, tripcap.MetricNetworkOutBytes, tripcap.MetricNetworkInPackets, tripcap.MetricNetworkOutPackets,
	tripcap.MetricNetworkInDrops, tripcap.MetricNetworkOutDrops, tripcap.MetricNetworkInErrors, tripcap.MetricNetworkOutErrors,
}

// deltas appends to out the counters' increases from prev to cur. A
// counter that went down (the interface was recreated) yields no point for
// that interval: missing data, not a guess.
func (c *Collector) deltas(out []delta, prev, cur *Reading) []delta {
	// The host totals of ifaceMetrics, by index, and whether each is whole.
	var totals [len(ifaceMetrics)]float64
	var valid [len(ifaceMetrics)]bool
	for i := range valid {
		valid[i] = true
	}
	c.names = c.names[:0]
	for n := range cur.Interfaces {
		c.names = append(c.names, n)
	}
	slices.Sort(c.names)
	for _, n := range c.names {
		b := cur.Interfaces[n]
		a, ok := prev.Interfaces[n]
		if !ok {
			// A new interface: its first reading is its baseline.
			continue
		}
		own := !isLoopback(n) || c.cfg.IncludeLoopback
		for i, v := range [len(ifaceMetrics)][2]uint64{
			{a.RxBytes, b.RxBytes}, {a.TxBytes, b.TxBytes}, {a.RxPackets, b.RxPackets}, {a.TxPackets, b.TxPackets},
			{a.RxDropped, b.RxDropped}, {a.TxDropped, b.TxDropped}, {a.RxErrors, b.RxErrors}, {a.TxErrors, b.TxErrors},
		} {
			if v[1] < v[0] {
				valid[i] = false
				continue
			}
			inc := float64(v[1] - v[0])
			if own {
				out = append(out, delta{ifaceMetrics[i], n, inc})
			}
			if !isLoopback(n) {
				totals[i] += inc
			}
		}
	}
	for i, m := range ifaceMetrics {
		if valid[i] {
			out = append(out, delta{m, "", totals[i]})
		}
	}
	for _, v := range [...]struct {
		m    tripcap.MetricID
		a, b uint64
	}{
		{tripcap.MetricTCPSegmentsSent, prev.TCP.OutSegs, cur.TCP.OutSegs},
		{tripcap.MetricTCPSegmentsReceived, prev.TCP.InSegs, cur.TCP.InSegs},
		{tripcap.MetricTCPRetransmittedSegment, prev.TCP.RetransSegs, cur.TCP.RetransSegs},
		{tripcap.MetricTCPResetsSent, prev.TCP.OutRsts, cur.TCP.OutRsts},
		{tripcap.MetricTCPEstablishedResets, prev.TCP.EstabResets, cur.TCP.EstabResets},
	} {
		if v.b >= v.a {
			out = append(out, delta{v.m, "", float64(v.b - v.a)})
		}
	}
	return out
}

// Last returns the latest reading and its time; ok is false before the first sample.
func (c *Collector) Last() (Reading, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.hasLast {
		return Reading{}, time.Time{}, false
	}
	return c.last, time.Unix(c.lastSec, 0).UTC(), true
}

// Drain removes and returns up to max buffered points (all when max <= 0),
// oldest first, as a batch to ship. Points carry no host: the server sets
// it from the agent's credential.
func (c *Collector) Drain(max int) tripcap.MetricBatch {
	return tripcap.MetricBatch{Points: c.DrainTo(nil, max)}
}

// DrainTo is Drain appending to dst, for a shipper that reuses its buffer.
func (c *Collector) DrainTo(dst []tripcap.MetricPoint, max int) []tripcap.MetricPoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.buf)
	if max > 0 && n > max {
		n = max
	}
	dst = append(dst, c.buf[:n]...)
	c.buf = c.buf[:copy(c.buf, c.buf[n:])]
	return dst
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
	// One timer, reset each second.
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := c.cfg.Now()
		t.Reset(now.Truncate(time.Second).Add(time.Second).Sub(now))
		select {
		case <-ctx.Done():
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
	wait, backingOff := every, false
	retry := tripcap.Backoff{Min: 2 * every, Max: time.Minute}
	for {
		timer := time.NewTimer(wait)
		sampled := c.sampled
		if backingOff {
			sampled = nil
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		case <-sampled:
			timer.Stop()
		}
		wait, backingOff = every, false
		for {
			b := c.Drain(tripcap.MaxMetricBatchPoints)
			if len(b.Points) == 0 {
				break
			}
			err := send(ctx, b)
			if err == nil {
				retry.Reset()
				continue
			}
			c.Requeue(b)
			if ctx.Err() != nil {
				return nil
			}
			waiting, dropped := c.Buffered()
			c.cfg.Logger.Warn("shipping metrics", "err", err, "waiting", waiting, "dropped", dropped)
			wait, backingOff = retry.Next(), true
			break
		}
	}
}

// isLoopback tells the loopback interface by its name: /proc/net/dev has
// no flags, and the kernel names every namespace's loopback "lo".
func isLoopback(name string) bool { return name == "lo" }
