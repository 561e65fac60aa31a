package hostmetrics

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tripcap/tripcap"
)

// The collector is "unchecked" (Describe sends nothing): host series carry
// only the host label and per-interface series add an interface label under
// the same name, which a checked collector cannot declare. Prometheus itself
// takes both; select host totals with {interface=""}.
var (
	_ prometheus.Collector = (*Collector)(nil)
)

// Describe sends no descriptors (an unchecked collector; see above).
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect reports the latest sample's cumulative kernel counters and the
// current flows; before the first sample it reports nothing.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	r, _, ok := c.Last()
	if !ok {
		return
	}
	host := c.cfg.Host
	defs := map[tripcap.MetricID]tripcap.MetricDefinition{}
	for _, d := range tripcap.MetricDefinitions() {
		defs[d.ID] = d
	}
	counter := func(m tripcap.MetricID, iface string, v uint64) {
		d := defs[m]
		labels, values := []string{"host"}, []string{host}
		if iface != "" {
			labels, values = append(labels, "interface"), append(values, iface)
		}
		desc := prometheus.NewDesc(d.Prometheus, d.Description, labels, nil)
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), values...)
	}
	names := make([]string, 0, len(r.Interfaces))
	for n := range r.Interfaces {
		names = append(names, n)
	}
	sort.Strings(names)
	var total InterfaceCounters
	for _, n := range names {
		v := r.Interfaces[n]
		if !isLoopback(n) {
			total.RxBytes += v.RxBytes
			total.TxBytes += v.TxBytes
			total.RxPackets += v.RxPackets
			total.TxPackets += v.TxPackets
			total.RxDropped += v.RxDropped
			total.TxDropped += v.TxDropped
			total.RxErrors += v.RxErrors
			total.TxErrors += v.TxErrors
		}
	}
	emit := func(iface string, v InterfaceCounters) {
		counter(tripcap.MetricNetworkInBytes, iface, v.RxBytes)
		counter(tripcap.MetricNetworkOutBytes, iface, v.TxBytes)
		counter(tripcap.MetricNetworkInPackets, iface, v.RxPackets)
		counter(tripcap.MetricNetworkOutPackets, iface, v.TxPackets)
		counter(tripcap.MetricNetworkInDrops, iface, v.RxDropped)
		counter(tripcap.MetricNetworkOutDrops, iface, v.TxDropped)
		counter(tripcap.MetricNetworkInErrors, iface, v.RxErrors)
		counter(tripcap.MetricNetworkOutErrors, iface, v.TxErrors)
	}
	emit("", total)
	for _, n := range names {
		if !isLoopback(n) || c.cfg.IncludeLoopback {
			emit(n, r.Interfaces[n])
		}
	}
	counter(tripcap.MetricTCPSegmentsSent, "", r.TCP.OutSegs)
	counter(tripcap.MetricTCPSegmentsReceived, "", r.TCP.InSegs)
	counter(tripcap.MetricTCPRetransmittedSegment, "", r.TCP.RetransSegs)
	counter(tripcap.MetricTCPResetsSent, "", r.TCP.OutRsts)
	counter(tripcap.MetricTCPEstablishedResets, "", r.TCP.EstabResets)
	flows := prometheus.NewDesc("tripcap_flows", "Current TCP and UDP flows by direction: inbound when the local port is one the host listens on.", []string{"host", "direction"}, nil)
	ch <- prometheus.MustNewConstMetric(flows, prometheus.GaugeValue, float64(r.Flows.Inbound), host, "inbound")
	ch <- prometheus.MustNewConstMetric(flows, prometheus.GaugeValue, float64(r.Flows.Outbound), host, "outbound")
}
