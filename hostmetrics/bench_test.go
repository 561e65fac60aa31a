package hostmetrics

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// BenchmarkCollectorSecond is one agent-second of the collector: a reading
// of a host with a loopback and two interfaces (as bench/fleet simulates)
// turned into points, and the points drained for shipping into a reused
// buffer (as the agent's stream does).
func BenchmarkCollectorSecond(b *testing.B) {
	var sec int64
	r := Reading{Interfaces: map[string]InterfaceCounters{"lo": {}, "eth0": {}, "eth1": {}}}
	c, err := New(Config{Host: "bench",
		Now: func() time.Time { sec++; return t0.Add(time.Duration(sec) * time.Second) },
		Read: func(context.Context) (Reading, error) {
			for n, ic := range r.Interfaces {
				ic.RxBytes += 1000
				ic.TxBytes += 500
				ic.RxPackets++
				ic.TxPackets++
				r.Interfaces[n] = ic
			}
			r.TCP.InSegs += 3
			// A reading of its own, as the kernel's is.
			out := r
			out.Interfaces = maps.Clone(r.Interfaces)
			return out, nil
		}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var pts []tripcap.MetricPoint
	for b.Loop() {
		if err := c.Sample(ctx); err != nil {
			b.Fatal(err)
		}
		pts = c.DrainTo(pts[:0], 0)
	}
	if len(pts) != 31 {
		b.Fatalf("%d points a second, want 31", len(pts))
	}
}
