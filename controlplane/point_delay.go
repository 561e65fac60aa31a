package controlplane

import (
	"time"

	"github.com/tripcap/tripcap"
)

// pointDelay counts how late agents' points arrive: the wall clock at
// ingest minus the second the point is of. A monitored fleet keeps up when
// none is late beyond a second (bench/fleet -metrics).
type pointDelay struct{ h tripcap.LatencyHistogram }

// record counts a batch that arrived at now. Points of one second share a
// delay, so a batch costs one observation per distinct second (one, from
// an agent that keeps up), not one per point.
func (d *pointDelay) record(now time.Time, b tripcap.MetricBatch) {
	var sec int64
	var run uint64
	flush := func() {
		if run > 0 {
			d.h.Observe(max(0, now.Sub(time.Unix(sec, 0))), run)
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
}
