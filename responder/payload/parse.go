package payload

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// expected is what a 400 tells the sender it should have posted.
const expected = `expected one of: Azure common alert schema (schemaId "azureMonitorCommonAlertSchema"), ` +
	`Azure metric alert (schemaId "AzureMonitorMetricAlert"), classic metric alert ("status" and "context"), ` +
	`the 2017 custom JSON ("targetVM", "packetCaptureName", …), Prometheus Alertmanager webhook (version "4" with "alerts"), ` +
	`Grafana webhook (version "1" with "alerts")`

// Parse detects the payload's format and returns its alerts, normalized.
// Every error is an EINVALID *tripcap.Error whose message names the field
// that was wrong or the formats that were expected.
func Parse(body []byte) ([]Trigger, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, tripcap.Errorf(tripcap.EINVALID, "body: empty; %s", expected)
	}
	if len(body) > MaxBodyBytes {
		return nil, tripcap.Errorf(tripcap.EINVALID, "body: larger than %d bytes", MaxBodyBytes)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "body: malformed JSON object: %v", err)
	}
	f, err := Detect(top)
	if err != nil {
		return nil, err
	}
	var ts []Trigger
	switch f {
	case FormatCommon:
		ts, err = parseCommon(body)
	case FormatMetricAlert:
		ts, err = parseMetricAlert(body)
	case FormatClassic:
		ts, err = parseClassic(body)
	case FormatSeed2017:
		ts, err = parseSeed(body)
	case FormatAlertmanager, FormatGrafana:
		ts, err = parseGrouped(f, body)
	}
	if err != nil {
		return nil, err
	}
	return ts, nil
}

// Detect names the format of a decoded top-level object, or returns an
// EINVALID error saying what was expected.
func Detect(top map[string]json.RawMessage) (Format, error) {
	if raw, ok := top["schemaId"]; ok {
		var id string
		if err := json.Unmarshal(raw, &id); err != nil {
			return "", tripcap.Errorf(tripcap.EINVALID, "schemaId: must be a string")
		}
		switch {
		case strings.EqualFold(id, string(FormatCommon)):
			return FormatCommon, nil
		case strings.EqualFold(id, string(FormatMetricAlert)):
			return FormatMetricAlert, nil
		}
		return "", tripcap.Errorf(tripcap.EINVALID, "schemaId: unsupported schema %q; %s", id, expected)
	}
	if _, ok := top["alerts"]; ok {
		var v string
		if raw, ok := top["version"]; ok {
			if err := json.Unmarshal(raw, &v); err != nil {
				return "", tripcap.Errorf(tripcap.EINVALID, "version: must be a string")
			}
		}
		switch v {
		case "4":
			return FormatAlertmanager, nil
		case "1":
			return FormatGrafana, nil
		}
		return "", tripcap.Errorf(tripcap.EINVALID, "version: unsupported webhook version %q (Alertmanager sends \"4\", Grafana \"1\"); %s", v, expected)
	}
	if _, ok := top["context"]; ok {
		if _, ok := top["status"]; ok {
			return FormatClassic, nil
		}
	}
	for _, k := range []string{"targetVM", "packetCaptureName", "networkWatcherName", "storageID"} {
		if _, ok := top[k]; ok {
			return FormatSeed2017, nil
		}
	}
	return "", tripcap.Errorf(tripcap.EINVALID, "body: unrecognized alert payload; %s", expected)
}

func invalid(format string, args ...any) error {
	return tripcap.Errorf(tripcap.EINVALID, format, args...)
}

func decode(body []byte, v any, format Format) error {
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return invalid("%s: wrong type (%s) for the %s format", te.Field, te.Value, format)
		}
		return invalid("body: not a valid %s payload: %v", format, err)
	}
	return nil
}

// parseTime reads the timestamps these senders use: RFC 3339 with any number
// of fractional digits (Azure sends seven). Empty and Go's zero time (which
// Alertmanager and Grafana send for a firing alert's endsAt) are zero.
func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalid("%s: %q is not an RFC 3339 time", field, s)
	}
	if t.Year() <= 1 {
		return time.Time{}, nil
	}
	return t, nil
}

func azureCondition(field, s string) (tripcap.MonitorCondition, error) {
	switch strings.ToLower(s) {
	case "fired", "activated":
		return tripcap.ConditionFired, nil
	case "resolved", "deactivated":
		return tripcap.ConditionResolved, nil
	}
	return "", invalid("%s: %q is not a known alert state (expected Fired/Activated or Resolved)", field, s)
}

// Common alert schema.

type commonPayload struct {
	SchemaID string `json:"schemaId"`
	Data     *struct {
		Essentials *struct {
			AlertID          string   `json:"alertId"`
			AlertRule        string   `json:"alertRule"`
			Severity         string   `json:"severity"`
			MonitorCondition string   `json:"monitorCondition"`
			AlertTargetIDs   []string `json:"alertTargetIDs"`
			FiredDateTime    string   `json:"firedDateTime"`
			ResolvedDateTime string   `json:"resolvedDateTime"`
			Description      string   `json:"description"`
		} `json:"essentials"`
	} `json:"data"`
}

func parseCommon(body []byte) ([]Trigger, error) {
	var p commonPayload
	if err := decode(body, &p, FormatCommon); err != nil {
		return nil, err
	}
	if p.Data == nil || p.Data.Essentials == nil {
		return nil, invalid("data.essentials: required by the common alert schema")
	}
	e := p.Data.Essentials
	if e.AlertID == "" {
		return nil, invalid("data.essentials.alertId: required")
	}
	cond, err := azureCondition("data.essentials.monitorCondition", e.MonitorCondition)
	if err != nil {
		return nil, err
	}
	at := e.FiredDateTime
	field := "data.essentials.firedDateTime"
	if cond == tripcap.ConditionResolved && e.ResolvedDateTime != "" {
		at, field = e.ResolvedDateTime, "data.essentials.resolvedDateTime"
	}
	fired, err := parseTime(field, at)
	if err != nil {
		return nil, err
	}
	t := Trigger{
		Format:    FormatCommon,
		AlertID:   e.AlertID,
		FiredAt:   fired,
		Condition: cond,
		RuleName:  e.AlertRule,
		Severity:  e.Severity,
		Summary:   summarize(e.AlertRule, e.Description),
	}
	t.Targets.ResourceIDs = nonEmpty(e.AlertTargetIDs)
	return []Trigger{t}, nil
}

// AzureMonitorMetricAlert and classic metric alert: both have a status and
// a context naming the resource; the former wraps them in data.

type metricContext struct {
	Timestamp         string `json:"timestamp"`
	ID                string `json:"id"`
	Name              string `json:"name"`
	Description       string `json:"description"`
	Severity          any    `json:"severity"`
	ResourceGroupName string `json:"resourceGroupName"`
	ResourceName      string `json:"resourceName"`
	ResourceID        string `json:"resourceId"`
}

func metricTrigger(f Format, prefix, status string, c *metricContext) ([]Trigger, error) {
	if c == nil {
		return nil, invalid("%scontext: required by the %s format", prefix, f)
	}
	cond, err := azureCondition(prefix+"status", status)
	if err != nil {
		return nil, err
	}
	ts, err := parseTime(prefix+"context.timestamp", c.Timestamp)
	if err != nil {
		return nil, err
	}
	t := Trigger{
		Format:    f,
		AlertID:   c.ID,
		FiredAt:   ts,
		Condition: cond,
		RuleName:  c.Name,
		Summary:   summarize(c.Name, c.Description),
	}
	switch s := c.Severity.(type) {
	case string:
		t.Severity = s
	case float64:
		t.Severity = strconv.FormatFloat(s, 'f', -1, 64)
	}
	if c.ResourceID != "" {
		t.Targets.ResourceIDs = []string{c.ResourceID}
	}
	if c.ResourceName != "" {
		t.Targets.Names = []NameTarget{{Name: c.ResourceName, ResourceGroup: c.ResourceGroupName}}
	}
	return []Trigger{t}, nil
}

func parseMetricAlert(body []byte) ([]Trigger, error) {
	var p struct {
		Data *struct {
			Status  string         `json:"status"`
			Context *metricContext `json:"context"`
		} `json:"data"`
	}
	if err := decode(body, &p, FormatMetricAlert); err != nil {
		return nil, err
	}
	if p.Data == nil {
		return nil, invalid("data: required by the AzureMonitorMetricAlert schema")
	}
	return metricTrigger(FormatMetricAlert, "data.", p.Data.Status, p.Data.Context)
}

func parseClassic(body []byte) ([]Trigger, error) {
	var p struct {
		Status  string         `json:"status"`
		Context *metricContext `json:"context"`
	}
	if err := decode(body, &p, FormatClassic); err != nil {
		return nil, err
	}
	return metricTrigger(FormatClassic, "", p.Status, p.Context)
}

// The 2017 seed's custom JSON (its WebhookInputParameters class). It carries
// no alert state: the seed's function ran on every call, so it is Fired.
func parseSeed(body []byte) ([]Trigger, error) {
	var p struct {
		SubscriptionID              string      `json:"subscriptionId"`
		NetworkWatcherResourceGroup string      `json:"networkWatcherResourceGroup"`
		NetworkWatcherName          string      `json:"networkWatcherName"`
		PacketCaptureName           string      `json:"packetCaptureName"`
		StorageID                   string      `json:"storageID"`
		TimeLimit                   json.Number `json:"timeLimit"`
		TargetVM                    string      `json:"targetVM"`
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&p); err != nil {
		return nil, invalid("body: not a valid 2017 custom JSON payload: %v", err)
	}
	if p.TargetVM == "" {
		return nil, invalid("targetVM: required (the resource id of the VM to capture on)")
	}
	// The name becomes a capture's (with the host's appended): refused
	// here, naming the field, rather than failing the run later.
	if n := p.PacketCaptureName; n != "" && (len(n) > 80 || strings.ContainsAny(n, "/?#%\\ \t\r\n")) {
		return nil, invalid("packetCaptureName: %q must be 1 to 80 characters without /, ?, #, %%, \\ or spaces", clipName(n))
	}
	t := Trigger{
		Format:    FormatSeed2017,
		Condition: tripcap.ConditionFired,
		Summary:   "custom JSON: capture on " + p.TargetVM,
		Overrides: Overrides{
			CaptureName:                 p.PacketCaptureName,
			StorageID:                   p.StorageID,
			SubscriptionID:              p.SubscriptionID,
			NetworkWatcherResourceGroup: p.NetworkWatcherResourceGroup,
			NetworkWatcherName:          p.NetworkWatcherName,
		},
	}
	if p.TimeLimit != "" {
		n, err := strconv.Atoi(strings.Trim(p.TimeLimit.String(), `"`))
		if err != nil || n < 0 || n > 18000 {
			return nil, invalid("timeLimit: %q is not a number of seconds between 0 and 18000", p.TimeLimit.String())
		}
		t.Overrides.TimeLimitSeconds = n
	}
	t.Targets.ResourceIDs = []string{p.TargetVM}
	return []Trigger{t}, nil
}

// Alertmanager v4 and Grafana v1 share the envelope; each alert in the group
// is its own Trigger, with the group's common labels under its own.

type groupedAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt"`
	EndsAt       string            `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

func parseGrouped(f Format, body []byte) ([]Trigger, error) {
	var p struct {
		Status       string            `json:"status"`
		Alerts       []groupedAlert    `json:"alerts"`
		CommonLabels map[string]string `json:"commonLabels"`
		Title        string            `json:"title"`
	}
	if err := decode(body, &p, f); err != nil {
		return nil, err
	}
	if len(p.Alerts) == 0 {
		return nil, invalid("alerts: at least one alert is required")
	}
	out := make([]Trigger, 0, len(p.Alerts))
	for i, a := range p.Alerts {
		field := fmt.Sprintf("alerts[%d]", i)
		status := a.Status
		if status == "" {
			status = p.Status
		}
		var cond tripcap.MonitorCondition
		switch strings.ToLower(status) {
		case "firing":
			cond = tripcap.ConditionFired
		case "resolved":
			cond = tripcap.ConditionResolved
		default:
			return nil, invalid("%s.status: %q is not firing or resolved", field, status)
		}
		starts, err := parseTime(field+".startsAt", a.StartsAt)
		if err != nil {
			return nil, err
		}
		ends, err := parseTime(field+".endsAt", a.EndsAt)
		if err != nil {
			return nil, err
		}
		labels := map[string]string{}
		for k, v := range p.CommonLabels {
			labels[k] = v
		}
		for k, v := range a.Labels {
			labels[k] = v
		}
		fp := a.Fingerprint
		if fp == "" {
			// Older senders omit it; the label set is what Alertmanager
			// fingerprints, so a hash of it identifies the alert as well.
			fp = labelHash(labels)
		}
		t := Trigger{
			Format:      f,
			Fingerprint: fp,
			StartsAt:    starts,
			FiredAt:     starts,
			Condition:   cond,
			RuleName:    labels["alertname"],
			Severity:    labels["severity"],
			Summary:     summarize(labels["alertname"], firstOf(a.Annotations, "summary", "description", "message")),
		}
		if cond == tripcap.ConditionResolved && !ends.IsZero() {
			t.FiredAt = ends
		}
		if len(labels) > 0 {
			t.Targets.Labels = labels
		}
		out = append(out, t)
	}
	return out, nil
}

func clipName(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

func firstOf(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := m[k]; v != "" {
			return v
		}
	}
	return ""
}

func labelHash(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s\x00%s\x00", k, labels[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
