package controlplane

import (
	"sync/atomic"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/metricstore"
)

// ingestStats counts what became of agents' points at ingest: how late
// each arrived (the wall clock at arrival minus the second it is the point
// of), and why the store refused those it did not keep. A monitored fleet
// is keeping up when no point is late beyond a second and none is refused.
type ingestStats struct {
	delay                                 tripcap.LatencyHistogram
	duplicates, tooOld, tooNew, overLimit atomic.Uint64
}

// PointsRefused counts the points the metric store did not keep, by reason
// (metricstore.AppendResult's).
type PointsRefused struct {
	Duplicates uint64 `json:"duplicates"`
	TooOld     uint64 `json:"tooOld"`
	TooNew     uint64 `json:"tooNew"`
	OverLimit  uint64 `json:"overLimit"`
}

// record counts a batch that arrived at now and what the store made of it.
// Points of one second share a delay, so a batch costs one observation per
// distinct second (one, from an agent that keeps up), not one per point.
func (s *ingestStats) record(now time.Time, b tripcap.MetricBatch, res metricstore.AppendResult) {
	var sec int64
	var run uint64
	flush := func() {
		if run > 0 {
			s.delay.Observe(max(0, now.Sub(time.Unix(sec, 0))), run)
		}
	}
	for _, p := range b.Points {
		if t := p.Time.Unix(); t != sec || run == 0 {
			flush()
			sec, run = t, 0
		}
		run++
	}
	flush()
	s.duplicates.Add(uint64(res.Duplicates))
	s.tooOld.Add(uint64(res.TooOld))
	s.tooNew.Add(uint64(res.TooNew))
	s.overLimit.Add(uint64(res.OverLimit))
}

func (s *ingestStats) refused() PointsRefused {
	return PointsRefused{Duplicates: s.duplicates.Load(), TooOld: s.tooOld.Load(), TooNew: s.tooNew.Load(), OverLimit: s.overLimit.Load()}
}
