// Package remotewrite ships the points the server stores to a
// Prometheus-compatible store by the Prometheus remote-write 1.0 protocol
// (protobuf WriteRequest, snappy block compression), and reads them back
// through the store's Prometheus HTTP API (/api/v1/query_range) for charts
// of windows older than the in-memory metric store holds.
//
// Writing never waits on the network: Writer.SinkPoints queues points in a
// bounded in-memory queue and drops, counting them, what does not fit;
// senders batch by size and by time and retry 5xx and 429 answers with
// backoff. See docs/alerting.md, "Long-term metrics: remote write".
package remotewrite

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tripcap/tripcap"
)

// SeriesName is the Prometheus name a metric's points are written under.
// A counter's point is its increase over one second, which is a rate in
// units per second, not the cumulative count a Prometheus counter is:
// calling it tripcap_network_in_bytes_total would make rate() and
// increase() lie. So counters are written as gauges named
// <name without _total>_per_second (tripcap_network_in_bytes_per_second),
// whose sum_over_time over a window is the window's Total; gauges (flows)
// keep the agent's name, tripcap_flows with its direction label.
func SeriesName(d tripcap.MetricDefinition) string {
	if d.Kind == tripcap.MetricCounter {
		return strings.TrimSuffix(d.Prometheus, "_total") + "_per_second"
	}
	return d.Prometheus
}

// Label names tripcap sets itself; host labels are written as
// label_<key>, so they can never collide with these.
const (
	LabelHost      = "host"
	LabelHostID    = "host_id"
	LabelInterface = "interface"
	LabelDirection = "direction"
	hostLabelPre   = "label_"
	// maxLabelValue bounds a host label's value as written (bytes).
	maxLabelValue = 256
	// MaxLabelKeys bounds --remote-write-label-keys: every key is a
	// label on every series of every host.
	MaxLabelKeys = 10
)

// LabelKey is a host label the operator chose to write, and the
// Prometheus label name it is written as.
type LabelKey struct {
	Key  string // the host label's key (azure.resourceGroup)
	Name string // its Prometheus label name (label_azure_resourceGroup)
}

// ParseLabelKeys checks the host label keys to write on every series; the
// error names field. Keys map to label_<key> with every character
// Prometheus does not allow in a label name ([a-zA-Z0-9_]) replaced by _;
// two keys that map to one name are refused.
func ParseLabelKeys(field string, keys []string) ([]LabelKey, error) {
	if len(keys) > MaxLabelKeys {
		return nil, tripcap.Errorf(tripcap.EINVALID, "%s: %d keys; at most %d (each is a label on every series)", field, len(keys), MaxLabelKeys)
	}
	var out []LabelKey
	for _, k := range keys {
		k = strings.TrimSpace(k)
		if k == "" || len(k) > 63 || !utf8.ValidString(k) {
			return nil, tripcap.Errorf(tripcap.EINVALID, "%s: %q is not a host label key (1 to 63 characters)", field, clip(k))
		}
		name := hostLabelPre + sanitizeLabelName(k)
		for _, o := range out {
			if o.Name == name {
				return nil, tripcap.Errorf(tripcap.EINVALID, "%s: %q and %q are both written as label %s", field, o.Key, k, name)
			}
		}
		out = append(out, LabelKey{Key: k, Name: name})
	}
	slices.SortFunc(out, func(a, b LabelKey) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// sanitizeLabelName replaces what a Prometheus label name may not hold
// with _ (the name gets a prefix, so a leading digit is fine).
func sanitizeLabelName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// labelValue is v as a label value: valid UTF-8 (Prometheus refuses
// anything else) and bounded.
func labelValue(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	if len(v) > maxLabelValue {
		v = v[:maxLabelValue]
		for !utf8.ValidString(v) {
			v = v[:len(v)-1]
		}
	}
	return v
}

func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// label is one name="value" of a series.
type label struct{ name, value string }

// seriesLabels are a series' labels, sorted by name as the protocol asks.
func seriesLabels(host hostLabels, d tripcap.MetricDefinition, iface string) []label {
	ls := make([]label, 0, 5+len(host.extra))
	ls = append(ls, label{"__name__", SeriesName(d)})
	if d.Direction != "" {
		ls = append(ls, label{LabelDirection, d.Direction})
	}
	if host.name != "" {
		ls = append(ls, label{LabelHost, host.name})
	}
	ls = append(ls, label{LabelHostID, host.id})
	if iface != "" {
		ls = append(ls, label{LabelInterface, iface})
	}
	ls = append(ls, host.extra...)
	slices.SortFunc(ls, func(a, b label) int { return strings.Compare(a.name, b.name) })
	return ls
}

// hostLabels are what a host contributes to its series' labels.
type hostLabels struct {
	id, name string
	extra    []label // label_<key>, in name order
}

func newHostLabels(h *tripcap.Host, keys []LabelKey) hostLabels {
	hl := hostLabels{id: h.ID, name: labelValue(h.Name)}
	for _, k := range keys {
		if v := h.Labels[k.Key]; v != "" {
			hl.extra = append(hl.extra, label{k.Name, labelValue(v)})
		}
	}
	return hl
}

func (l label) String() string { return fmt.Sprintf("%s=%q", l.name, l.value) }
