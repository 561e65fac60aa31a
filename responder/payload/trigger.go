// Package payload turns an alert, whichever system sent it, into one
// normalized Trigger the control plane can act on: it detects and parses the
// six payload formats a responder accepts (Azure's common alert schema, the
// AzureMonitorMetricAlert schema the current seed configures, the classic
// metric alert webhook, the 2017 seed's custom JSON, Prometheus Alertmanager
// v4 and Grafana v1 webhooks) and normalizes tripcap's own alerts the same
// way for the internal path.
package payload

import (
	"net"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// Format names the payload a Trigger came from.
type Format string

// The accepted payload formats.
const (
	FormatCommon       Format = "azureMonitorCommonAlertSchema"
	FormatMetricAlert  Format = "AzureMonitorMetricAlert"
	FormatClassic      Format = "classicMetricAlert"
	FormatSeed2017     Format = "seed2017CustomJSON"
	FormatAlertmanager Format = "alertmanagerV4"
	FormatGrafana      Format = "grafanaV1"
	// FormatInternal is a tripcap alert delivered through an action group's
	// responder receiver.
	FormatInternal Format = "tripcap"
)

// MaxBodyBytes bounds an inbound payload. Alertmanager groups are the
// largest senders; a megabyte holds hundreds of alerts, and anything bigger
// is refused before it is parsed.
const MaxBodyBytes = 1 << 20

// NameTarget names a host the way ARM names a VM: by resource name within a
// resource group (the current seed's Get-AzVM -ResourceGroupName -Name).
type NameTarget struct {
	Name          string `json:"name"`
	ResourceGroup string `json:"resourceGroup,omitempty"`
}

// Targets are everything an alert says about which host it is about. The
// control plane resolves them to hosts according to the responder's
// configuration; a parser only reports what the payload carried.
type Targets struct {
	// ResourceIDs are ARM resource ids (alertTargetIDs, resourceId, targetVM).
	ResourceIDs []string `json:"resourceIds,omitempty"`
	// Names are resourceName/resourceGroupName pairs.
	Names []NameTarget `json:"names,omitempty"`
	// Labels are an Alertmanager or Grafana alert's labels.
	Labels map[string]string `json:"labels,omitempty"`
}

// Empty reports whether the payload named no target at all.
func (t Targets) Empty() bool {
	return len(t.ResourceIDs) == 0 && len(t.Names) == 0 && len(t.Labels) == 0
}

// Overrides are capture parameters carried by the payload itself; only the
// 2017 seed's custom JSON has them, and they take precedence over the
// responder's template, as they did in the seed's function.
type Overrides struct {
	CaptureName string `json:"captureName,omitempty"`
	// TimeLimitSeconds is 0 when the payload did not set one.
	TimeLimitSeconds int    `json:"timeLimitInSeconds,omitempty"`
	StorageID        string `json:"storageId,omitempty"`
	// The seed addressed its network watcher explicitly; tripcap has one
	// watcher per host, so these are kept for the run record only.
	SubscriptionID              string `json:"subscriptionId,omitempty"`
	NetworkWatcherResourceGroup string `json:"networkWatcherResourceGroup,omitempty"`
	NetworkWatcherName          string `json:"networkWatcherName,omitempty"`
}

// Trigger is one alert, normalized. A payload that groups several alerts
// (Alertmanager, Grafana) yields one Trigger per alert.
type Trigger struct {
	Format Format `json:"format"`
	// AlertID is the sender's id of this firing (common schema alertId,
	// metric alert context id, tripcap alert id).
	AlertID string `json:"alertId,omitempty"`
	// Fingerprint and StartsAt identify an Alertmanager/Grafana alert.
	Fingerprint string    `json:"fingerprint,omitempty"`
	StartsAt    time.Time `json:"startsAt,omitzero"`
	// FiredAt is when the sender says the condition fired (or resolved, for
	// a Resolved trigger of the classic and metric alert schemas, which
	// only carry one timestamp).
	FiredAt   time.Time                `json:"firedAt,omitzero"`
	Condition tripcap.MonitorCondition `json:"condition"`
	RuleName  string                   `json:"ruleName,omitempty"`
	Severity  string                   `json:"severity,omitempty"`
	Summary   string                   `json:"summary,omitempty"`
	Targets   Targets                  `json:"targets"`
	Overrides Overrides                `json:"overrides,omitzero"`
}

// IdempotencyKey identifies this delivery of this alert transition: a
// redelivered payload has the same key, so it never starts a second capture.
// It is empty when the payload carries no identity (the 2017 seed's custom
// JSON is a fixed body sent on every firing), in which case only the
// responder's cooldown prevents repeats.
func (t Trigger) IdempotencyKey() string {
	var id string
	switch {
	case t.Fingerprint != "":
		id = t.Fingerprint + "@" + t.StartsAt.UTC().Format(time.RFC3339Nano)
	case t.AlertID != "" && (t.Format == FormatMetricAlert || t.Format == FormatClassic):
		// These schemas' id is the rule's, the same on every firing; the
		// timestamp tells firings apart.
		id = t.AlertID + "@" + t.FiredAt.UTC().Format(time.RFC3339Nano)
	case t.AlertID != "":
		id = t.AlertID
	default:
		return ""
	}
	return string(t.Format) + ":" + id + ":" + string(t.Condition)
}

// AlertKey identifies the alert across its transitions (for cooldown and
// for finding the capture a Resolved trigger should stop): the rule and the
// labels for grouped senders, the alert id otherwise.
func (t Trigger) AlertKey() string {
	switch {
	case t.Fingerprint != "":
		return t.Fingerprint
	case t.RuleName != "":
		return t.RuleName
	default:
		return t.AlertID
	}
}

// LabelKeys are the Alertmanager/Grafana labels that name a host, in the
// order they are tried when a responder does not configure its own.
var defaultLabelKeys = []string{"host", "instance", "node", "nodename"}

// DefaultLabelKeys returns the labels tried, in order, to find a host.
func DefaultLabelKeys() []string { return append([]string(nil), defaultLabelKeys...) }

// LabelCandidates returns the values of the given labels (the default keys
// when none are given) that could name a host, in order and without
// duplicates. An instance label is usually host:port (Prometheus's scrape
// target), so a port is stripped; IPv6 brackets are removed with it.
func LabelCandidates(labels map[string]string, keys []string) []string {
	if len(keys) == 0 {
		keys = defaultLabelKeys
	}
	var out []string
	seen := map[string]bool{}
	for _, k := range keys {
		v := strings.TrimSpace(labels[k])
		if v == "" {
			continue
		}
		if h, _, err := net.SplitHostPort(v); err == nil {
			v = h
		}
		v = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// FromAlert normalizes a tripcap alert handed over by an action group's
// responder receiver; it targets the host by id-like ARM resource id and by
// name, so the same resolution applies as for inbound payloads.
func FromAlert(a tripcap.Alert) Trigger {
	t := Trigger{
		Format:    FormatInternal,
		AlertID:   a.ID,
		FiredAt:   a.FiredAt,
		Condition: a.MonitorCondition,
		RuleName:  a.RuleName,
		Severity:  tripcap.SeverityName(a.Severity),
		Summary:   summarize(a.RuleName, a.Description),
	}
	if a.MonitorCondition == tripcap.ConditionResolved && a.ResolvedAt != nil {
		t.FiredAt = *a.ResolvedAt
	}
	if a.TargetResourceID != "" {
		t.Targets.ResourceIDs = []string{a.TargetResourceID}
	}
	if a.HostName != "" {
		t.Targets.Names = []NameTarget{{Name: a.HostName, ResourceGroup: a.ResourceGroup}}
	}
	return t
}

func summarize(parts ...string) string {
	var nonEmpty []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			nonEmpty = append(nonEmpty, p)
		}
	}
	return strings.Join(nonEmpty, ": ")
}
