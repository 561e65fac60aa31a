package agent

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/tripcap/tripcap/hostmetrics"
	"github.com/tripcap/tripcap/metricstore"
)

// BenchmarkShipSecond is one agent-second of the metric stream's own work,
// network aside: a sample of a host with a loopback and two interfaces (as
// bench/fleet simulates), its points drained, kept in the history store
// (sub-benchmark "history"; its share is the store's), encoded as frames
// and acknowledged.
func BenchmarkShipSecond(b *testing.B) {
	for _, withHistory := range []bool{false, true} {
		name := "no-history"
		if withHistory {
			name = "history"
		}
		b.Run(name, func(b *testing.B) {
			clock := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
			now := func() time.Time { return clock }
			r := hostmetrics.Reading{Interfaces: map[string]hostmetrics.InterfaceCounters{"lo": {}, "eth0": {}, "eth1": {}}}
			hm, err := hostmetrics.New(hostmetrics.Config{Host: "bench", Now: now, Read: func(context.Context) (hostmetrics.Reading, error) {
				for n, ic := range r.Interfaces {
					ic.RxBytes += 1000
					ic.TxBytes += 500
					ic.RxPackets++
					ic.TxPackets++
					r.Interfaces[n] = ic
				}
				r.TCP.InSegs += 3
				out := r
				out.Interfaces = maps.Clone(r.Interfaces)
				return out, nil
			}})
			if err != nil {
				b.Fatal(err)
			}
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			s := &metricShipper{hm: hm, log: log}
			if withHistory {
				if s.hist, err = metricstore.New(metricstore.Config{Now: now, Logger: log}); err != nil {
					b.Fatal(err)
				}
			}
			ctx := context.Background()
			var sent sentFrames
			var bytes int
			for b.Loop() {
				clock = clock.Add(time.Second)
				if err := hm.Sample(ctx); err != nil {
					b.Fatal(err)
				}
				out, err := sent.next(hm, s.keep, clock)
				if err != nil {
					b.Fatal(err)
				}
				bytes = len(out)
				sent.acked(clock.Unix())
			}
			if bytes == 0 {
				b.Fatal("no frames")
			}
		})
	}
}
