package metricstore

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// hostLoad makes one host's 1-second metrics as an agent ships them: 15
// host series and 8 per-interface series on each of two interfaces (31),
// integer-valued and moving like a busy server's: byte and packet counts
// around a level that moves minute to minute with ±15 % noise each second,
// the host's series the sum of its interfaces', flows drifting by a few,
// retransmissions a few a second, drops, errors and resets rare.
type hostLoad struct {
	rng    *rand.Rand
	host   string
	base   [2]float64 // bytes per second of eth0 and eth1, on average
	level  [2]float64 // and now
	flows  [2]float64
	points []tripcap.MetricPoint
}

func newHostLoad(host string, seed uint64) *hostLoad {
	rng := rand.New(rand.NewPCG(seed, 7))
	base := [2]float64{2e5 * (0.5 + rng.Float64()), 4e4 * (0.5 + rng.Float64())}
	return &hostLoad{rng: rng, host: host, base: base, level: base, flows: [2]float64{120, 40}}
}

// second returns the host's points of second sec (reusing one slice).
func (l *hostLoad) second(sec int64) []tripcap.MetricPoint {
	at := time.Unix(sec, 0).UTC()
	if sec%60 == 0 {
		// The level moves ±5 % a minute around a daily swing of ±50 %
		// (mean-reverting, as traffic is: about ±25 % off the swing).
		day := 1 + 0.5*math.Sin(2*math.Pi*float64(sec%86400)/86400)
		for i := range l.level {
			dev := math.Log(l.level[i] / (l.base[i] * day))
			l.level[i] = l.base[i] * day * math.Exp(dev*0.98+l.rng.NormFloat64()*0.05)
		}
	}
	l.points = l.points[:0]
	add := func(m tripcap.MetricID, ifc string, v float64) {
		l.points = append(l.points, tripcap.MetricPoint{Host: l.host, Metric: m, Interface: ifc, Time: at, Value: v})
	}
	noisy := func(level float64) float64 { return math.Round(level * (0.85 + 0.3*l.rng.Float64())) }
	rare := func(p float64) float64 {
		if l.rng.Float64() < p {
			return 1
		}
		return 0
	}
	var host [8]float64
	for i, ifc := range []string{"eth0", "eth1"} {
		in, out := noisy(l.level[i]), noisy(l.level[i]*0.6)
		v := [8]float64{in, out, math.Round(in / (700 + 200*l.rng.Float64())), math.Round(out / (700 + 200*l.rng.Float64())), rare(0.001), rare(0.001), rare(0.0005), rare(0.0005)}
		for j, m := range []tripcap.MetricID{tripcap.MetricNetworkInBytes, tripcap.MetricNetworkOutBytes, tripcap.MetricNetworkInPackets, tripcap.MetricNetworkOutPackets,
			tripcap.MetricNetworkInDrops, tripcap.MetricNetworkOutDrops, tripcap.MetricNetworkInErrors, tripcap.MetricNetworkOutErrors} {
			add(m, ifc, v[j])
			host[j] += v[j]
		}
	}
	for j, m := range []tripcap.MetricID{tripcap.MetricNetworkInBytes, tripcap.MetricNetworkOutBytes, tripcap.MetricNetworkInPackets, tripcap.MetricNetworkOutPackets,
		tripcap.MetricNetworkInDrops, tripcap.MetricNetworkOutDrops, tripcap.MetricNetworkInErrors, tripcap.MetricNetworkOutErrors} {
		add(m, "", host[j])
	}
	for i := range l.flows {
		l.flows[i] = max(0, l.flows[i]+float64(l.rng.IntN(5)-2))
	}
	add(tripcap.MetricInboundFlows, "", l.flows[0])
	add(tripcap.MetricOutboundFlows, "", l.flows[1])
	add(tripcap.MetricTCPSegmentsSent, "", math.Round(host[3]*0.9))
	add(tripcap.MetricTCPSegmentsReceived, "", math.Round(host[2]*0.9))
	add(tripcap.MetricTCPRetransmittedSegment, "", float64(l.rng.IntN(4)))
	add(tripcap.MetricTCPResetsSent, "", rare(0.01))
	add(tripcap.MetricTCPEstablishedResets, "", rare(0.002))
	return l.points
}

// benchStart is a minute boundary; full stores hold 25 h from it.
var benchStart = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix()

// fullStore fills a store with hosts' 25 h of points (the 24 h rollup
// window and the raw hour full) and returns it with the end second; idle
// hosts' points are all 0.
func fullStore(b *testing.B, hosts int, idle bool) (*Store, int64) {
	b.Helper()
	end := benchStart + 25*3600
	c := newClock(time.Unix(end, 0))
	s := newStore(b, Config{}, c)
	loads := make([]*hostLoad, hosts)
	for i := range loads {
		loads[i] = newHostLoad("host-"+strings.Repeat("x", i%3)+string(rune('a'+i%26)), uint64(i))
	}
	for sec := benchStart + 1; sec <= end; sec++ {
		for _, l := range loads {
			pts := l.second(sec)
			if idle {
				for i := range pts {
					pts[i].Value = 0
				}
			}
			if _, err := s.Append(tripcap.MetricBatch{Points: pts}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return s, end
}

// cpuTime is the process's CPU time so far. On a shared machine a
// benchmark's wall time per op swings with the load; its CPU time per op
// (reported as cpu-ns/op by measureCPU) much less.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureCPU reports the CPU time per op of the b.Loop that follows.
func measureCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkHostMemory fills hosts' 25 h of realistic points (busy) or of
// zeros (idle) and reports the heap they take per host, what Stats says
// per host, and the snapshot's bytes per host.
func BenchmarkHostMemory(b *testing.B) {
	const hosts = 4
	for _, idle := range []bool{false, true} {
		name := "busy"
		if idle {
			name = "idle"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				before := heapInUse()
				s, _ := fullStore(b, hosts, idle)
				after := heapInUse()
				st := s.Stats()
				var snap countWriter
				if err := s.WriteSnapshot(&snap); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(after-before)/hosts, "heap-B/host")
				b.ReportMetric(float64(st.Bytes)/float64(st.Hosts), "stats-B/host")
				b.ReportMetric(float64(snap)/hosts, "snapshot-B/host")
				runtime.KeepAlive(s)
			}
		})
	}
}

type countWriter int64

func (w *countWriter) Write(p []byte) (int, error) { *w += countWriter(len(p)); return len(p), nil }

// BenchmarkSummarizeGrain measures the evaluator's reads of a full host's
// busiest series: 1-second grain windows over the last minutes (end now,
// mid-minute) and 1-minute grain windows over the rollups (end on a minute).
func BenchmarkSummarizeGrain(b *testing.B) {
	s, end := fullStore(b, 1, false)
	k := Key{"host-a", tripcap.MetricNetworkInBytes, "eth0"}
	for _, tc := range []struct {
		window, grain time.Duration
		end           int64
	}{
		{time.Minute, time.Second, end - 17},
		{5 * time.Minute, time.Second, end - 17},
		{5 * time.Minute, time.Minute, end - 60},
		{5 * time.Minute, time.Minute, end - 17}, // every second: grains of raw seconds
		{time.Hour, time.Minute, end - 60},
		{24 * time.Hour, time.Minute, end - 60},
	} {
		b.Run(tripcap.FormatISODuration(tc.window)+"/"+tripcap.FormatISODuration(tc.grain), func(b *testing.B) {
			at := time.Unix(tc.end, 0)
			defer measureCPU(b)()
			for b.Loop() {
				if g := s.SummarizeGrain(k, at, tc.window, tc.grain); g.Count == 0 {
					b.Fatal("no data")
				}
			}
		})
	}
}

// BenchmarkQuery measures chart queries of a full host's busiest series.
func BenchmarkQuery(b *testing.B) {
	s, end := fullStore(b, 1, false)
	for _, tc := range []struct{ window, interval time.Duration }{
		{5 * time.Minute, time.Second},
		{time.Hour, time.Minute},
		{24 * time.Hour, 5 * time.Minute},
	} {
		b.Run(tripcap.FormatISODuration(tc.window)+"/"+tripcap.FormatISODuration(tc.interval), func(b *testing.B) {
			q := Query{Host: "host-a", Metric: tripcap.MetricNetworkInBytes, Interface: "eth0", End: time.Unix(end-17, 0), Window: tc.window, Interval: tc.interval}
			defer measureCPU(b)()
			for b.Loop() {
				if _, err := s.Query(q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendHost measures storing one realistic host's second into a
// store already holding its hour (seals minutes as a server does).
func BenchmarkAppendHost(b *testing.B) {
	c := newClock(time.Unix(benchStart, 0))
	s := newStore(b, Config{}, c)
	l := newHostLoad("host-a", 1)
	sec := benchStart
	for range 3600 {
		sec++
		c.set(time.Unix(sec, 0))
		if _, err := s.Append(tripcap.MetricBatch{Points: l.second(sec)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	defer measureCPU(b)()
	for b.Loop() {
		sec++
		c.set(time.Unix(sec, 0))
		if _, err := s.Append(tripcap.MetricBatch{Points: l.second(sec)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendFleet measures a server's appends at fleet scale: 5,000
// hosts of 31 series each (155,000 series, as the server holds at 5,000
// monitored hosts), one batch per host-second, hosts in turn; an op is one
// host's second. The store holds a few minutes first, so minutes seal as
// they do in steady state.
func BenchmarkAppendFleet(b *testing.B) {
	const hosts = 5000
	c := newClock(time.Unix(benchStart, 0))
	s := newStore(b, Config{}, c)
	// Two seconds of values per host, alternated, so the points move
	// without generating them in the loop.
	batches := make([][2][]tripcap.MetricPoint, hosts)
	for i := range batches {
		l := newHostLoad(fmt.Sprintf("host-%05d", i), uint64(i))
		for j := range 2 {
			batches[i][j] = slices.Clone(l.second(benchStart + int64(j) + 1))
		}
	}
	sec, h := benchStart, hosts
	next := func() tripcap.MetricBatch {
		if h == hosts {
			h = 0
			sec++
			c.set(time.Unix(sec, 0))
		}
		pts := batches[h][sec%2]
		at := time.Unix(sec, 0).UTC()
		for i := range pts {
			pts[i].Time = at
		}
		h++
		return tripcap.MetricBatch{Points: pts}
	}
	for range hosts * 70 {
		if _, err := s.Append(next()); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Append", func(b *testing.B) {
		b.ReportAllocs()
		defer measureCPU(b)()
		for b.Loop() {
			if _, err := s.Append(next()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
