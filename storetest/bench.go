package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// Benchmark measures the fleet's hot paths on stores made by open: batched
// heartbeats, capture status updates from many agents at once, and host
// lookups. A fleet of 1000 agents needs about one TouchHosts of 1000 hosts
// and 1000 UpdateCapture calls a second.
func Benchmark(b *testing.B, open func(tb testing.TB) tripcap.Store) {
	b.Run("TouchHosts1000", func(b *testing.B) {
		s := open(b)
		ids := createHosts(b, s, 1000)
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			seen := make(map[string]time.Time, len(ids))
			at := base.Add(time.Duration(i) * time.Second)
			for _, id := range ids {
				seen[id] = at
			}
			if err := s.TouchHosts(b.Context(), seen); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(ids))/b.Elapsed().Seconds(), "heartbeats/s")
	})
	b.Run("UpdateCaptureStatus", func(b *testing.B) {
		s := open(b)
		caps := benchCaptures(b, s, 64, "")
		var next atomic.Int64
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			// Each goroutine is one agent reporting on its own capture.
			c := *caps[int(next.Add(1)-1)%len(caps)]
			c.Status = tripcap.StatusRunning
			for pb.Next() {
				c.Stats.Packets++
				c.Stats.Bytes += 1500
				if err := s.UpdateCapture(b.Context(), &c, c.Version); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
	})
	b.Run("ProgressBatch100", func(b *testing.B) {
		// One flush of the control plane's progress batch: 100 running
		// captures' counters in one UpdateCaptures (controlplane.flushProgress).
		s := open(b)
		var caps []string
		for _, c := range benchCaptures(b, s, 100, tripcap.StatusRunning) {
			caps = append(caps, c.ID)
		}
		for b.Loop() {
			if _, err := s.UpdateCaptures(b.Context(), caps, func(c *tripcap.PacketCapture) bool {
				c.Stats.Packets += 100
				c.Stats.Bytes += 150000
				return true
			}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(caps))/b.Elapsed().Seconds(), "reports/s")
	})
	b.Run("FindHost", func(b *testing.B) {
		s := open(b)
		ids := createHosts(b, s, 1000)
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id := ids[int(next.Add(1))%len(ids)]
				if _, err := s.FindHost(b.Context(), tripcap.HostFilter{ID: &id}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
}

func createHosts(tb testing.TB, s tripcap.Store, n int) []string {
	tb.Helper()
	var ids []string
	for i := range n {
		h := host(fmt.Sprintf("bench-%d", i), "eastus")
		if err := s.CreateHost(tb.Context(), h); err != nil {
			tb.Fatal(err)
		}
		ids = append(ids, h.ID)
	}
	return ids
}

// benchCaptures creates n hosts and a capture on each, in status ("": as created).
func benchCaptures(b *testing.B, s tripcap.Store, n int, status tripcap.PacketCaptureStatus) []*tripcap.PacketCapture {
	ids := createHosts(b, s, n)
	w, err := s.EnsureWatcher(b.Context(), Subscription, "eastus", 1000)
	if err != nil {
		b.Fatal(err)
	}
	caps := make([]*tripcap.PacketCapture, 0, n)
	for i, id := range ids {
		c := capture(w.ID, id, fmt.Sprintf("cap-%d", i))
		if status != "" {
			c.Status = status
		}
		if err := s.CreateCapture(b.Context(), c); err != nil {
			b.Fatal(err)
		}
		caps = append(caps, c)
	}
	return caps
}
