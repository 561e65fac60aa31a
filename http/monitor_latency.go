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

// refusedCollector exposes the points the metric store refused, by reason.
type refusedCollector struct {
	desc *prometheus.Desc
	m    func() controlplane.MonitorStats
}

func (c refusedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c refusedCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.m().PointsRefused
	for _, v := range []struct {
		reason string
		n      uint64
	}{{"duplicate", r.Duplicates}, {"too_old", r.TooOld}, {"too_new", r.TooNew}, {"over_limit", r.OverLimit}} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(v.n), v.reason)
	}
}

func (s *Server) refusedPoints() prometheus.Collector {
	return refusedCollector{desc: prometheus.NewDesc("tripcap_metric_points_refused_total",
		"Metric points from agents the store did not keep, by reason.", []string{"reason"}, nil), m: s.monitor.Stats}
}
