package http

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// latencyCollector exposes a tripcap.LatencySnapshot of the monitor's
// stats as a Prometheus histogram.
type latencyCollector struct {
	desc *prometheus.Desc
	snap func() tripcap.LatencySnapshot
}

func (c latencyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c latencyCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	ch <- prometheus.MustNewConstHistogram(c.desc, s.Count, s.SumSeconds, s.Cumulative())
}

func latencyHistogram(stats func() controlplane.MonitorStats, name, help string, f func(controlplane.MonitorStats) tripcap.LatencySnapshot) prometheus.Collector {
	return latencyCollector{desc: prometheus.NewDesc(name, help, nil, nil), snap: func() tripcap.LatencySnapshot { return f(stats()) }}
}

// scrapeStats returns get, called at most once a second: one /metrics
// scrape asks some 25 collectors, and the monitor's stats walk every
// series of the metric store under its lock.
func scrapeStats(get func() controlplane.MonitorStats) func() controlplane.MonitorStats {
	var mu sync.Mutex
	var at time.Time
	var last controlplane.MonitorStats
	return func() controlplane.MonitorStats {
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); at.IsZero() || now.Sub(at) >= time.Second {
			last, at = get(), now
		}
		return last
	}
}
