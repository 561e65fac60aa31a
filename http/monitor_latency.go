package http

import (
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

func (s *Server) latencyHistogram(name, help string, f func(controlplane.MonitorStats) tripcap.LatencySnapshot) prometheus.Collector {
	return latencyCollector{desc: prometheus.NewDesc(name, help, nil, nil), snap: func() tripcap.LatencySnapshot { return f(s.monitor.Stats()) }}
}
