package main

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/hostmetrics"
)

// The simulated hosts' metrics: each agent's hostmetrics.Collector reads
// its counters from a valueGen (Config.Read) instead of /proc, so the real
// collector turns them into points and the real shipper sends them. A
// host has a loopback and two interfaces; every rate moves: a daily cycle
// (a phase of its own per host, so the fleet is not in step), noise each
// second, and on a breach the first interface's inbound traffic jumps
// far over the breach rules' thresholds.

// Normal levels of a host's traffic, per second, before drift and noise.
const (
	baseInBytes    = 2_000_000 // eth0; eth1 carries a quarter
	baseOutBytes   = 800_000
	bytesPerPacket = 800
	baseInFlows    = 40
	baseOutFlows   = 15
	// dailySwing is the daily cycle's amplitude (±30 %), noise the
	// per-second noise's standard deviation (10 %).
	dailySwing = 0.3
	noiseSD    = 0.1
	// breachFactor multiplies eth0's inbound bytes and packets during a breach.
	breachFactor = 50
	// breachInBytes is the breach rules' threshold: above the normal level
	// with every swing and noise (2 MB/s × 1.3 × 1.5 < 4 MB/s, and the
	// host total adds eth1's quarter), far under a breach's 100 MB/s.
	breachInBytes   = 20_000_000
	breachInPackets = breachInBytes / bytesPerPacket
)

// day is the drift's period.
const day = 24 * 60 * 60

// span is a breach: seconds [From, To) of the host's eth0 inbound traffic
// are breachFactor times their level.
type span struct{ From, To int64 }

// valueGen is one host's counters. Its values are a function of the host's
// seed and the second, so runs are reproducible and tests can check them;
// the counters accumulate each second's rates from the first reading on.
type valueGen struct {
	seed uint64
	// sampled, when set, counts how late each reading is taken after its
	// second began: the simulated agents' own share of a point's delay (on
	// a busy machine, a niced agent's timer fires late).
	sampled *tripcap.LatencyHistogram

	mu sync.Mutex
	// clock is the collector's clock as it last read it (Now): the second
	// a reading is the collector's, however late Read runs after it (a
	// niced process on a busy machine can stall between the two, and a
	// reading of a later second would put several seconds' traffic in one
	// point).
	clock    time.Time
	last     int64 // the second of the last reading; 0 before the first
	ifaces   [len(simIfaces)]hostmetrics.InterfaceCounters
	tcp      hostmetrics.TCPCounters
	breaches []span
}

// simIfaces are a simulated host's interfaces, in valueGen.ifaces' order.
var simIfaces = [...]string{"eth0", "eth1", "lo"}

func newValueGen(seed uint64) *valueGen { return &valueGen{seed: seed} }

// setBreaches replaces the host's scheduled breaches.
func (g *valueGen) setBreaches(b []span) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.breaches = append([]span(nil), b...)
}

// Now is hostmetrics.Config.Now: the wall clock, noted for Read.
func (g *valueGen) Now() time.Time {
	now := time.Now()
	g.mu.Lock()
	g.clock = now
	g.mu.Unlock()
	return now
}

// Read is hostmetrics.Config.Read: the counters at the second the
// collector's clock last said (Sample reads the clock, then reads).
func (g *valueGen) Read(context.Context) (hostmetrics.Reading, error) {
	g.mu.Lock()
	now := g.clock
	g.mu.Unlock()
	if now.IsZero() {
		now = time.Now()
	}
	if g.sampled != nil {
		g.sampled.Observe(now.Sub(now.Truncate(time.Second)), 1)
	}
	return g.at(now.Unix()), nil
}

// at advances the counters to second sec (adding the rates of each second
// since the last reading: the increase over (sec-1, sec] is second sec's)
// and returns a copy.
func (g *valueGen) at(sec int64) hostmetrics.Reading {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == 0 {
		g.last = sec - 1
	}
	for s := g.last + 1; s <= sec; s++ {
		g.step(s)
	}
	if sec > g.last {
		g.last = sec
	}
	// A map of its own, as a reading of the kernel is: the collector
	// keeps the last one.
	r := hostmetrics.Reading{Interfaces: make(map[string]hostmetrics.InterfaceCounters, len(simIfaces)), TCP: g.tcp}
	for i, n := range simIfaces {
		r.Interfaces[n] = g.ifaces[i]
	}
	cycle := g.cycle(sec)
	r.Flows = hostmetrics.FlowCount{Inbound: int(g.noisy(cycle, sec, 10, baseInFlows)), Outbound: int(g.noisy(cycle, sec, 11, baseOutFlows))}
	return r
}

// step adds second s's increase to every counter.
func (g *valueGen) step(s int64) {
	breach := false
	for _, b := range g.breaches {
		if s >= b.From && s < b.To {
			breach = true
		}
	}
	cycle := g.cycle(s)
	add := func(c *hostmetrics.InterfaceCounters, k uint64, share float64, boost bool) {
		in, out := g.noisy(cycle, s, k, baseInBytes*share), g.noisy(cycle, s, k+1, baseOutBytes*share)
		if boost {
			in *= breachFactor
		}
		c.RxBytes += uint64(in)
		c.TxBytes += uint64(out)
		c.RxPackets += uint64(in / bytesPerPacket)
		c.TxPackets += uint64(out / bytesPerPacket)
		// Now and then a drop or an error, as real NICs have.
		if g.uniform(s, k+2) < 0.01 {
			c.RxDropped++
		}
		if g.uniform(s, k+3) < 0.002 {
			c.TxErrors++
		}
	}
	add(&g.ifaces[0], 0, 1, breach)   // eth0
	add(&g.ifaces[1], 4, 0.25, false) // eth1
	add(&g.ifaces[2], 8, 0.01, false) // lo
	t := &g.tcp
	segs := g.noisy(cycle, s, 12, (baseInBytes+baseOutBytes)/1400)
	t.InSegs += uint64(segs * 0.6)
	t.OutSegs += uint64(segs * 0.4)
	t.RetransSegs += uint64(segs * 0.002)
	if g.uniform(s, 13) < 0.1 {
		t.OutRsts++
	}
	if g.uniform(s, 14) < 0.05 {
		t.EstabResets++
	}
}

// level is a rate at second s: base, with the host's daily cycle and
// series k's noise; never negative.
func (g *valueGen) level(s int64, k uint64, base float64) float64 {
	return g.noisy(g.cycle(s), s, k, base)
}

// cycle is the host's daily cycle at second s (a factor around 1), the
// same for all its series: computed once a second, not once a series.
func (g *valueGen) cycle(s int64) float64 {
	phase := float64(g.seed%day) / day
	return 1 + dailySwing*math.Sin(2*math.Pi*(float64(s)/day+phase))
}

// noisy is level with the cycle given.
func (g *valueGen) noisy(cycle float64, s int64, k uint64, base float64) float64 {
	// Two uniforms' sum, centred: a triangular noise of the given SD
	// (the SD of u1+u2-1 is 1/√6).
	n := (g.uniform(s, k) + g.uniform(s, k+100) - 1) * math.Sqrt(6) * noiseSD
	return max(0, base*cycle*(1+n))
}

// uniform is a deterministic uniform number in [0,1) for (seed, s, k).
func (g *valueGen) uniform(s int64, k uint64) float64 {
	x := g.seed*0x9E3779B97F4A7C15 ^ uint64(s)*0xBF58476D1CE4E5B9 ^ k*0x94D049BB133111EB
	// splitmix64's finalizer
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}
