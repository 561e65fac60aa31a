package tripcap

import (
	"math"
	"strings"
	"time"
)

// MetricID is tripcap's id of a host metric. The agent samples every metric
// once a second; a counter's point is the increase during that second (bytes
// sent in that second, say), a gauge's point is its value at the sample, so
// that Azure's time aggregations over a window mean what they mean in Azure
// (Total of Network Out Total = bytes sent in the window).
type MetricID string

// Host metrics. Those marked per interface also exist per network interface
// (MetricPoint.Interface set); the host's series (Interface "") sums the
// interfaces other than loopback, as Azure's VM metrics count the NIC.
const (
	MetricNetworkInBytes          MetricID = "network_in_bytes"
	MetricNetworkOutBytes         MetricID = "network_out_bytes"
	MetricNetworkInPackets        MetricID = "network_in_packets"
	MetricNetworkOutPackets       MetricID = "network_out_packets"
	MetricNetworkInDrops          MetricID = "network_in_drops"
	MetricNetworkOutDrops         MetricID = "network_out_drops"
	MetricNetworkInErrors         MetricID = "network_in_errors"
	MetricNetworkOutErrors        MetricID = "network_out_errors"
	MetricInboundFlows            MetricID = "inbound_flows"
	MetricOutboundFlows           MetricID = "outbound_flows"
	MetricTCPSegmentsSent         MetricID = "tcp_segments_sent"
	MetricTCPSegmentsReceived     MetricID = "tcp_segments_received"
	MetricTCPRetransmittedSegment MetricID = "tcp_retransmitted_segments"
	MetricTCPResetsSent           MetricID = "tcp_resets_sent"
	MetricTCPEstablishedResets    MetricID = "tcp_established_resets"
)

// MetricKind says how the agent turns a kernel reading into a point.
type MetricKind string

const (
	// MetricCounter points are the increase of a kernel counter over one second.
	MetricCounter MetricKind = "counter"
	// MetricGauge points are a value read at the sample.
	MetricGauge MetricKind = "gauge"
)

// MetricUnit is Azure's unit name.
type MetricUnit string

const (
	UnitBytes MetricUnit = "Bytes"
	UnitCount MetricUnit = "Count"
)

// MetricNamespace is the metricNamespace tripcap's host metrics answer to:
// Azure's namespace of VM host metrics, so rules copied from Azure resolve.
const MetricNamespace = "Microsoft.Compute/virtualMachines"

// MetricDefinition describes one metric: its ids in tripcap, Azure and
// Prometheus, its unit and Azure's default aggregation.
type MetricDefinition struct {
	ID MetricID `json:"id"`
	// DisplayName is Azure's metric name (metricName in alert rules).
	DisplayName string     `json:"displayName"`
	Unit        MetricUnit `json:"unit"`
	Kind        MetricKind `json:"kind"`
	// DefaultAggregation is what charts and rules use when none is given.
	DefaultAggregation Aggregation `json:"defaultAggregation"`
	// PerInterface says the metric also has one series per interface.
	PerInterface bool `json:"perInterface"`
	// Prometheus is the agent's /metrics name; flows share tripcap_flows
	// with a direction label.
	Prometheus string `json:"prometheus"`
	// Direction is the direction label of tripcap_flows ("" otherwise).
	Direction   string `json:"direction,omitempty"`
	Description string `json:"description"`
}

// metricDefinitions is ordered as listings show them.
var metricDefinitions = []MetricDefinition{
	{MetricNetworkInBytes, "Network In Total", UnitBytes, MetricCounter, AggregationTotal, true, "tripcap_network_in_bytes_total", "", "Bytes received on the host's interfaces."},
	{MetricNetworkOutBytes, "Network Out Total", UnitBytes, MetricCounter, AggregationTotal, true, "tripcap_network_out_bytes_total", "", "Bytes sent on the host's interfaces."},
	{MetricNetworkInPackets, "Packets Received", UnitCount, MetricCounter, AggregationTotal, true, "tripcap_network_in_packets_total", "", "Packets received on the host's interfaces."},
	{MetricNetworkOutPackets, "Packets Sent", UnitCount, MetricCounter, AggregationTotal, true, "tripcap_network_out_packets_total", "", "Packets sent on the host's interfaces."},
	{MetricNetworkInDrops, "Inbound Packets Dropped", UnitCount, MetricCounter, AggregationTotal, true, "tripcap_network_in_drops_total", "", "Received packets the kernel dropped."},
	{MetricNetworkOutDrops, "Outbound Packets Dropped", UnitCount, MetricCounter, AggregationTotal, true, "tripcap_network_out_drops_total", "", "Packets to send that the kernel dropped."},
	{MetricNetworkInErrors, "Inbound Packet Errors", UnitCount, MetricCounter, AggregationTotal, true, "tripcap_network_in_errors_total", "", "Receive errors of the host's interfaces."},
	{MetricNetworkOutErrors, "Outbound Packet Errors", UnitCount, MetricCounter, AggregationTotal, true, "tripcap_network_out_errors_total", "", "Transmit errors of the host's interfaces."},
	{MetricInboundFlows, "Inbound Flows", UnitCount, MetricGauge, AggregationAverage, false, "tripcap_flows", "inbound", "Current TCP and UDP flows whose local port is one the host listens on."},
	{MetricOutboundFlows, "Outbound Flows", UnitCount, MetricGauge, AggregationAverage, false, "tripcap_flows", "outbound", "Current TCP and UDP flows the host opened to another host's port."},
	{MetricTCPSegmentsSent, "TCP Segments Sent", UnitCount, MetricCounter, AggregationTotal, false, "tripcap_tcp_segments_sent_total", "", "TCP segments sent (Tcp OutSegs), the 2017 seed's signal."},
	{MetricTCPSegmentsReceived, "TCP Segments Received", UnitCount, MetricCounter, AggregationTotal, false, "tripcap_tcp_segments_received_total", "", "TCP segments received (Tcp InSegs)."},
	{MetricTCPRetransmittedSegment, "TCP Segments Retransmitted", UnitCount, MetricCounter, AggregationTotal, false, "tripcap_tcp_retransmitted_segments_total", "", "TCP segments retransmitted (Tcp RetransSegs)."},
	{MetricTCPResetsSent, "TCP Resets Sent", UnitCount, MetricCounter, AggregationTotal, false, "tripcap_tcp_resets_sent_total", "", "TCP segments sent with RST (Tcp OutRsts)."},
	{MetricTCPEstablishedResets, "TCP Established Resets", UnitCount, MetricCounter, AggregationTotal, false, "tripcap_tcp_established_resets_total", "", "Established TCP connections reset (Tcp EstabResets)."},
}

// MetricDefinitions lists every host metric.
func MetricDefinitions() []MetricDefinition {
	return append([]MetricDefinition(nil), metricDefinitions...)
}

// Definition returns the metric's definition; ok is false for an unknown id.
func (m MetricID) Definition() (MetricDefinition, bool) {
	for _, d := range metricDefinitions {
		if d.ID == m {
			return d, true
		}
	}
	return MetricDefinition{}, false
}

// ParseMetric resolves a metric given as tripcap's id ("network_out_bytes"),
// Azure's name ("Network Out Total", any case) or the Prometheus name
// ("tripcap_network_out_bytes_total"). The error names field.
func ParseMetric(field, s string) (MetricID, error) {
	t := strings.TrimSpace(s)
	for _, d := range metricDefinitions {
		if t == string(d.ID) || strings.EqualFold(t, d.DisplayName) || (d.Direction == "" && t == d.Prometheus) {
			return d.ID, nil
		}
	}
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return "", Errorf(EINVALID, "%s: %q is not a metric; use one of %s", field, s, metricNameList())
}

func metricNameList() string {
	names := make([]string, len(metricDefinitions))
	for i, d := range metricDefinitions {
		names[i] = d.DisplayName
	}
	return strings.Join(names, ", ")
}

// Aggregation is Azure's timeAggregation: how a window's points reduce to one value.
type Aggregation string

const (
	AggregationAverage Aggregation = "Average"
	AggregationMinimum Aggregation = "Minimum"
	AggregationMaximum Aggregation = "Maximum"
	AggregationTotal   Aggregation = "Total"
	AggregationCount   Aggregation = "Count"
)

var aggregations = []Aggregation{AggregationAverage, AggregationMinimum, AggregationMaximum, AggregationTotal, AggregationCount}

// ParseAggregation reads an aggregation, case-insensitively; the error names field.
func ParseAggregation(field, s string) (Aggregation, error) {
	for _, a := range aggregations {
		if strings.EqualFold(s, string(a)) {
			return a, nil
		}
	}
	return "", Errorf(EINVALID, "%s: %q is not one of Average, Minimum, Maximum, Total, Count", field, clip(s))
}

// Summary is the reduction of a set of points every aggregation can be read
// from; rollups keep one per minute.
type Summary struct {
	Count int64
	Sum   float64
	Min   float64
	Max   float64
}

// Add counts one point.
func (s *Summary) Add(v float64) {
	if s.Count == 0 || v < s.Min {
		s.Min = v
	}
	if s.Count == 0 || v > s.Max {
		s.Max = v
	}
	s.Count++
	s.Sum += v
}

// Merge adds another summary's points.
func (s *Summary) Merge(o Summary) {
	if o.Count == 0 {
		return
	}
	if s.Count == 0 || o.Min < s.Min {
		s.Min = o.Min
	}
	if s.Count == 0 || o.Max > s.Max {
		s.Max = o.Max
	}
	s.Count += o.Count
	s.Sum += o.Sum
}

// Value reads the aggregation. ok is false when there are no points: an
// empty window has no value, never zero (Count is the one aggregation that
// is 0 over no points, and is reported as no value all the same, so an
// absent host never looks like a quiet one).
func (s Summary) Value(a Aggregation) (v float64, ok bool) {
	if s.Count == 0 {
		return 0, false
	}
	switch a {
	case AggregationAverage:
		return s.Sum / float64(s.Count), true
	case AggregationMinimum:
		return s.Min, true
	case AggregationMaximum:
		return s.Max, true
	case AggregationTotal:
		return s.Sum, true
	case AggregationCount:
		return float64(s.Count), true
	}
	return 0, false
}

// Operator compares a metric value with a threshold, Azure's names.
type Operator string

const (
	OperatorEquals             Operator = "Equals"
	OperatorNotEquals          Operator = "NotEquals"
	OperatorGreaterThan        Operator = "GreaterThan"
	OperatorGreaterThanOrEqual Operator = "GreaterThanOrEqual"
	OperatorLessThan           Operator = "LessThan"
	OperatorLessThanOrEqual    Operator = "LessThanOrEqual"
	// OperatorGreaterOrLessThan is for dynamic thresholds only: outside the band.
	OperatorGreaterOrLessThan Operator = "GreaterOrLessThan"
)

var staticOperators = []Operator{OperatorEquals, OperatorNotEquals, OperatorGreaterThan, OperatorGreaterThanOrEqual, OperatorLessThan, OperatorLessThanOrEqual}
var dynamicOperators = []Operator{OperatorGreaterThan, OperatorLessThan, OperatorGreaterOrLessThan}

// ParseOperator reads a static-threshold operator, case-insensitively; the error names field.
func ParseOperator(field, s string) (Operator, error) {
	for _, o := range staticOperators {
		if strings.EqualFold(s, string(o)) {
			return o, nil
		}
	}
	return "", Errorf(EINVALID, "%s: %q is not one of Equals, NotEquals, GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual", field, clip(s))
}

// ParseDynamicOperator reads a dynamic-threshold operator; the error names field.
func ParseDynamicOperator(field, s string) (Operator, error) {
	for _, o := range dynamicOperators {
		if strings.EqualFold(s, string(o)) {
			return o, nil
		}
	}
	return "", Errorf(EINVALID, "%s: %q is not one of GreaterThan, LessThan, GreaterOrLessThan", field, clip(s))
}

// Compare reports whether value breaches threshold under a static operator.
// Equality is exact: values are sums and counts of whole kernel counters.
func (o Operator) Compare(value, threshold float64) bool {
	switch o {
	case OperatorEquals:
		return value == threshold
	case OperatorNotEquals:
		return value != threshold
	case OperatorGreaterThan:
		return value > threshold
	case OperatorGreaterThanOrEqual:
		return value >= threshold
	case OperatorLessThan:
		return value < threshold
	case OperatorLessThanOrEqual:
		return value <= threshold
	}
	return false
}

// MetricPoint is one second of one series: a host's metric, for one
// interface or (Interface "") for the host as a whole.
type MetricPoint struct {
	// Host is the host's id; the server sets it from the agent's credential
	// and ignores what an agent sends.
	Host      string    `json:"host,omitempty"`
	Interface string    `json:"interface,omitempty"`
	Metric    MetricID  `json:"metric"`
	Time      time.Time `json:"time"`
	Value     float64   `json:"value"`
}

// MaxMetricBatchPoints bounds one batch, so a misbehaving agent cannot make
// the server hold an unbounded request.
const MaxMetricBatchPoints = 100_000

// MetricBatch is what an agent ships: the points sampled since its last batch.
type MetricBatch struct {
	Points []MetricPoint `json:"points"`
}

// Validate checks a batch from an agent; the error names the point and field.
func (b *MetricBatch) Validate() error {
	if len(b.Points) > MaxMetricBatchPoints {
		return Errorf(EINVALID, "points: %d points; at most %d in one batch", len(b.Points), MaxMetricBatchPoints)
	}
	for i, p := range b.Points {
		d, ok := p.Metric.Definition()
		if !ok {
			return Errorf(EINVALID, "points[%d].metric: %q is not a metric", i, clip(string(p.Metric)))
		}
		if p.Interface != "" {
			if !d.PerInterface {
				return Errorf(EINVALID, "points[%d].interface: %s has no per-interface series", i, d.ID)
			}
			if len(p.Interface) > 15 || strings.ContainsAny(p.Interface, "/ \t\n\x00") {
				return Errorf(EINVALID, "points[%d].interface: %q is not a valid interface name", i, clip(p.Interface))
			}
		}
		if p.Time.IsZero() {
			return Errorf(EINVALID, "points[%d].time: required", i)
		}
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			return Errorf(EINVALID, "points[%d].value: must be a finite number", i)
		}
	}
	return nil
}

// clip shortens user input quoted back in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
