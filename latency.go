package tripcap

import (
	"sort"
	"sync/atomic"
	"time"
)

// LatencyBounds are the upper bounds, in seconds, of a LatencyHistogram's
// buckets: fine below a second (the budgets of the metric path: a point
// late beyond 1 s, an evaluation lagging beyond 1 s), coarse above.
var LatencyBounds = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 5, 10, 30, 60}

// LatencyHistogram counts durations in the buckets of LatencyBounds. It is
// lock-free (an atomic add per observation), so hot paths (metric ingest,
// the evaluator's workers) can observe without contending on a lock.
type LatencyHistogram struct {
	counts [18]atomic.Uint64 // len(LatencyBounds) + 1: the last counts above the largest bound
	sumNs  atomic.Int64
}

// Observe counts n observations of d.
func (h *LatencyHistogram) Observe(d time.Duration, n uint64) {
	if n == 0 {
		return
	}
	s := d.Seconds()
	i := sort.SearchFloat64s(LatencyBounds, s) // the first bound ≥ s
	h.counts[i].Add(n)
	h.sumNs.Add(int64(d) * int64(n))
}

// Snapshot returns the counts so far.
func (h *LatencyHistogram) Snapshot() LatencySnapshot {
	s := LatencySnapshot{Bounds: LatencyBounds, Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
		s.Count += s.Counts[i]
	}
	s.SumSeconds = time.Duration(h.sumNs.Load()).Seconds()
	return s
}

// LatencySnapshot is a LatencyHistogram's counts: Counts[i] observations
// fell at or under Bounds[i] (and over the bound before it); the last
// count is over every bound. Not cumulative.
type LatencySnapshot struct {
	Bounds     []float64 `json:"bounds"`
	Counts     []uint64  `json:"counts"`
	Count      uint64    `json:"count"`
	SumSeconds float64   `json:"sumSeconds"`
}

// Cumulative returns the count at or under each bound, as Prometheus'
// histograms have it.
func (s LatencySnapshot) Cumulative() map[float64]uint64 {
	out := make(map[float64]uint64, len(s.Bounds))
	var c uint64
	for i, b := range s.Bounds {
		c += s.Counts[i]
		out[b] = c
	}
	return out
}
