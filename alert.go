package tripcap

import (
	"encoding/json"
	"fmt"
	"math"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Metric alert rules follow Azure's Microsoft.Insights/metricAlerts resource,
// with its JSON names and defaults; action groups follow
// Microsoft.Insights/actionGroups. Scopes select tripcap hosts rather than
// only Azure resource ids, and evaluationFrequency goes down to one second.

// Defaults and ranges of metricAlerts.
const (
	DefaultAlertSeverity       = 3
	MaxAlertSeverity           = 4
	MinEvaluationFrequency     = time.Second
	MaxEvaluationFrequency     = time.Hour
	MinWindowSize              = time.Second
	MaxWindowSize              = 24 * time.Hour
	DefaultEvaluationFrequency = "PT1M"
	DefaultWindowSize          = "PT5M"
	MaxCriteria                = 5
	MaxRuleActions             = 5
	MaxScopes                  = 100
	MaxFailingPeriods          = 60
	MaxAlertNameLength         = 260
	MaxDescriptionLength       = 2048
)

// AzureEvaluationFrequencies are the values Azure accepts; tripcap accepts any
// whole number of seconds from PT1S to PT1H besides.
var AzureEvaluationFrequencies = []string{"PT1M", "PT5M", "PT15M", "PT30M", "PT1H"}

// ParseISODuration reads an ISO 8601 duration of whole seconds as Azure
// writes them: "PT1S", "PT5M", "PT1H30M", "P1D", "P1DT12H", "P1W". Years and
// months are refused (their length varies); so are fractions and signs.
func ParseISODuration(field, s string) (time.Duration, error) {
	bad := func(why string) error {
		return Errorf(EINVALID, "%s: %q is not an ISO 8601 duration such as PT1M or PT24H (%s)", field, clip(s), why)
	}
	rest, ok := strings.CutPrefix(strings.ToUpper(s), "P")
	if !ok {
		return 0, bad("it must start with P")
	}
	if rest == "" || rest == "T" {
		return 0, bad("it has no amount")
	}
	const limit = 366 * 24 * time.Hour
	var total time.Duration
	inTime := false
	last := 0
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return 0, bad("T appears twice")
			}
			inTime = true
			rest = rest[1:]
			if rest == "" {
				return 0, bad("nothing follows T")
			}
			continue
		}
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, bad("each amount is digits followed by a unit")
		}
		if i > 9 {
			return 0, bad("an amount is too large")
		}
		n, _ := strconv.ParseInt(rest[:i], 10, 64)
		unit := rest[i]
		var d time.Duration
		switch {
		case !inTime && unit == 'W':
			d = 7 * 24 * time.Hour
		case !inTime && unit == 'D':
			d = 24 * time.Hour
		case inTime && unit == 'H':
			d = time.Hour
		case inTime && unit == 'M':
			d = time.Minute
		case inTime && unit == 'S':
			d = time.Second
		case !inTime && (unit == 'Y' || unit == 'M'):
			return 0, bad("years and months have no fixed length")
		default:
			return 0, bad(fmt.Sprintf("unit %q is not allowed there", unit))
		}
		key := string(unit)
		if inTime {
			key = "T" + key
		}
		// Units must appear once each, largest first.
		order := map[string]int{"W": 1, "D": 2, "TH": 3, "TM": 4, "TS": 5}[key]
		if order <= last {
			return 0, bad("units are repeated or out of order")
		}
		last = order
		if time.Duration(n) > limit/d {
			return 0, bad("it is longer than a year")
		}
		total += time.Duration(n) * d
		if total > limit {
			return 0, bad("it is longer than a year")
		}
		rest = rest[i+1:]
	}
	return total, nil
}

// FormatISODuration writes d as Azure does: hours, minutes and seconds
// ("PT5M", "PT24H", "PT1H30M"), "PT0S" for zero. Sub-second parts are
// dropped; negative durations print as their absolute value.
func FormatISODuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	s := int64(d / time.Second)
	if s == 0 {
		return "PT0S"
	}
	var b strings.Builder
	b.WriteString("PT")
	if h := s / 3600; h > 0 {
		b.WriteString(strconv.FormatInt(h, 10) + "H")
	}
	if m := s / 60 % 60; m > 0 {
		b.WriteString(strconv.FormatInt(m, 10) + "M")
	}
	if sec := s % 60; sec > 0 {
		b.WriteString(strconv.FormatInt(sec, 10) + "S")
	}
	return b.String()
}

// Scope selects hosts. Forms:
//
//	"*"                                        every host
//	"/subscriptions/S/resourceGroups/G/providers/Microsoft.Compute/virtualMachines/VM"
//	"/subscriptions/S" or "/subscriptions/S/resourceGroups/G"   hosts in it
//	"host:NAME-OR-ID"                          one host
//	"location:LOCATION"                        hosts of a location
//	"label:KEY=VALUE", "label:KEY!=VALUE", "label:KEY"   label selectors
//
// Resource ids and names compare case-insensitively, as ARM does.
type Scope string

// ScopeAll selects every host.
const ScopeAll Scope = "*"

type scopeKind int

const (
	scopeAll scopeKind = iota
	scopeVM
	scopeSubscription
	scopeGroup
	scopeHost
	scopeLocation
	scopeLabelEq
	scopeLabelNe
	scopeLabelExists
)

type parsedScope struct {
	kind              scopeKind
	sub, group, name  string
	key, value        string
	hostOrID, locName string
}

func (s Scope) parse() (parsedScope, error) {
	str := string(s)
	switch {
	case str == "*":
		return parsedScope{kind: scopeAll}, nil
	case strings.HasPrefix(str, "/"):
		if sub, group, vm, ok := ParseVMResourceID(str); ok {
			return parsedScope{kind: scopeVM, sub: sub, group: group, name: vm}, nil
		}
		parts := strings.Split(strings.Trim(str, "/"), "/")
		if len(parts) == 2 && strings.EqualFold(parts[0], "subscriptions") && parts[1] != "" {
			return parsedScope{kind: scopeSubscription, sub: parts[1]}, nil
		}
		if len(parts) == 4 && strings.EqualFold(parts[0], "subscriptions") && strings.EqualFold(parts[2], "resourceGroups") && parts[1] != "" && parts[3] != "" {
			return parsedScope{kind: scopeGroup, sub: parts[1], group: parts[3]}, nil
		}
		return parsedScope{}, fmt.Errorf("%q is not a subscription, resource group or virtual machine resource id", clip(str))
	case strings.HasPrefix(str, "host:"):
		v := strings.TrimPrefix(str, "host:")
		if v == "" {
			return parsedScope{}, fmt.Errorf("%q names no host", clip(str))
		}
		return parsedScope{kind: scopeHost, hostOrID: v}, nil
	case strings.HasPrefix(str, "location:"):
		v := strings.TrimPrefix(str, "location:")
		if v == "" {
			return parsedScope{}, fmt.Errorf("%q names no location", clip(str))
		}
		return parsedScope{kind: scopeLocation, locName: v}, nil
	case strings.HasPrefix(str, "label:"):
		v := strings.TrimPrefix(str, "label:")
		if k, val, ok := strings.Cut(v, "!="); ok {
			if k == "" {
				return parsedScope{}, fmt.Errorf("%q names no label key", clip(str))
			}
			return parsedScope{kind: scopeLabelNe, key: k, value: val}, nil
		}
		if k, val, ok := strings.Cut(v, "="); ok {
			if k == "" {
				return parsedScope{}, fmt.Errorf("%q names no label key", clip(str))
			}
			return parsedScope{kind: scopeLabelEq, key: k, value: val}, nil
		}
		if v == "" {
			return parsedScope{}, fmt.Errorf("%q names no label key", clip(str))
		}
		return parsedScope{kind: scopeLabelExists, key: v}, nil
	}
	return parsedScope{}, fmt.Errorf("%q is not \"*\", a resource id, host:NAME, location:NAME or label:KEY=VALUE", clip(str))
}

// Validate checks the scope's form.
func (s Scope) Validate() error {
	_, err := s.parse()
	return err
}

// Matches reports whether the scope selects h. An invalid scope selects nothing.
func (s Scope) Matches(h *Host) bool {
	p, err := s.parse()
	if err != nil || h == nil {
		return false
	}
	switch p.kind {
	case scopeAll:
		return true
	case scopeVM:
		return strings.EqualFold(p.name, h.Name) && strings.EqualFold(p.sub, h.SubscriptionID) && strings.EqualFold(p.group, h.ResourceGroup)
	case scopeSubscription:
		return strings.EqualFold(p.sub, h.SubscriptionID)
	case scopeGroup:
		return strings.EqualFold(p.sub, h.SubscriptionID) && strings.EqualFold(p.group, h.ResourceGroup)
	case scopeHost:
		return p.hostOrID == h.ID || strings.EqualFold(p.hostOrID, h.Name)
	case scopeLocation:
		return strings.EqualFold(p.locName, h.Location)
	case scopeLabelEq:
		v, ok := h.Labels[p.key]
		return ok && v == p.value
	case scopeLabelNe:
		return h.Labels[p.key] != p.value
	case scopeLabelExists:
		_, ok := h.Labels[p.key]
		return ok
	}
	return false
}

// CriterionType is Azure's criterionType discriminator.
type CriterionType string

const (
	StaticThresholdCriterion  CriterionType = "StaticThresholdCriterion"
	DynamicThresholdCriterion CriterionType = "DynamicThresholdCriterion"
)

// Azure's criteria odata.type and alert conditionType values.
const (
	CriteriaSingleResource   = "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
	CriteriaMultipleResource = "Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria"
	ConditionTypeStatic      = "SingleResourceMultipleMetricCriteria"
	ConditionTypeDynamic     = "DynamicThresholdCriteria"
)

// DimensionInterface is the one dimension tripcap's host metrics have.
const DimensionInterface = "interface"

// Dimension selects series of a metric by a dimension's values (Azure's
// metric dimension filter). The only dimension is "interface"; with it the
// criterion is met on a host when any selected interface's series is.
type Dimension struct {
	Name     string   `json:"name"`
	Operator string   `json:"operator"` // Include or Exclude
	Values   []string `json:"values"`   // "*" with Include: every interface
}

// MetricCriterion holds what static and dynamic criteria share.
type MetricCriterion struct {
	CriterionType   CriterionType `json:"criterionType"`
	Name            string        `json:"name"`
	MetricName      string        `json:"metricName"`
	MetricNamespace string        `json:"metricNamespace,omitempty"`
	TimeAggregation Aggregation   `json:"timeAggregation"`
	Dimensions      []Dimension   `json:"dimensions,omitempty"`
}

// StaticCriterion is met when the window's aggregated value compares true with Threshold.
type StaticCriterion struct {
	MetricCriterion
	Operator  Operator `json:"operator"`
	Threshold float64  `json:"threshold"`
}

// Sensitivity sets how wide a dynamic threshold's band is: High alerts on
// smaller deviations.
type Sensitivity string

const (
	SensitivityLow    Sensitivity = "Low"
	SensitivityMedium Sensitivity = "Medium"
	SensitivityHigh   Sensitivity = "High"
)

// FailingPeriods: the criterion is met when at least MinFailingPeriodsToAlert
// of the last NumberOfEvaluationPeriods windows were outside the band.
type FailingPeriods struct {
	NumberOfEvaluationPeriods int `json:"numberOfEvaluationPeriods"`
	MinFailingPeriodsToAlert  int `json:"minFailingPeriodsToAlert"`
}

// DynamicCriterion is met when the window's value leaves a band learned from
// the host's own history (see docs/alerting.md for the method).
type DynamicCriterion struct {
	MetricCriterion
	Operator         Operator       `json:"operator"`
	AlertSensitivity Sensitivity    `json:"alertSensitivity"`
	FailingPeriods   FailingPeriods `json:"failingPeriods"`
	// IgnoreDataBefore keeps older data out of the learned baseline.
	IgnoreDataBefore *time.Time `json:"ignoreDataBefore,omitempty"`
}

// Criterion is one item of criteria.allOf: exactly one of Static and Dynamic.
type Criterion struct {
	Static  *StaticCriterion
	Dynamic *DynamicCriterion
}

// Base returns the fields both kinds share.
func (c *Criterion) Base() *MetricCriterion {
	if c.Static != nil {
		return &c.Static.MetricCriterion
	}
	if c.Dynamic != nil {
		return &c.Dynamic.MetricCriterion
	}
	return &MetricCriterion{}
}

// MarshalJSON writes the criterion flat, with its criterionType.
func (c Criterion) MarshalJSON() ([]byte, error) {
	switch {
	case c.Static != nil:
		s := *c.Static
		s.CriterionType = StaticThresholdCriterion
		return json.Marshal(s)
	case c.Dynamic != nil:
		d := *c.Dynamic
		d.CriterionType = DynamicThresholdCriterion
		return json.Marshal(d)
	}
	return []byte("null"), nil
}

// UnmarshalJSON reads a criterion by its criterionType; without one, a
// criterion with alertSensitivity is dynamic and any other static. Fields of
// the wrong kind are errors, so a mistyped rule does not silently drop them.
func (c *Criterion) UnmarshalJSON(b []byte) error {
	var probe struct {
		CriterionType    CriterionType    `json:"criterionType"`
		AlertSensitivity *json.RawMessage `json:"alertSensitivity"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return err
	}
	kind := probe.CriterionType
	if kind == "" {
		kind = StaticThresholdCriterion
		if probe.AlertSensitivity != nil {
			kind = DynamicThresholdCriterion
		}
	}
	*c = Criterion{}
	switch kind {
	case StaticThresholdCriterion:
		c.Static = &StaticCriterion{}
		if err := json.Unmarshal(b, c.Static); err != nil {
			return err
		}
		c.Static.CriterionType = kind
	case DynamicThresholdCriterion:
		c.Dynamic = &DynamicCriterion{}
		if err := json.Unmarshal(b, c.Dynamic); err != nil {
			return err
		}
		c.Dynamic.CriterionType = kind
	default:
		return Errorf(EINVALID, "criterionType: %q is not StaticThresholdCriterion or DynamicThresholdCriterion", clip(string(kind)))
	}
	return nil
}

// Criteria is the rule's condition: every criterion in AllOf must be met.
type Criteria struct {
	ODataType string      `json:"odata.type,omitempty"`
	AllOf     []Criterion `json:"allOf"`
}

// Action names an action group to notify, with custom properties that
// webhook payloads carry (Azure's webHookProperties).
type Action struct {
	ActionGroupID     string            `json:"actionGroupId"`
	WebHookProperties map[string]string `json:"webHookProperties,omitempty"`
}

// AlertRule is a metric alert rule. Each host its scopes select is its own
// alert instance, evaluated and alerted on separately.
type AlertRule struct {
	ID          string `json:"id,omitempty"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Severity is 0 (critical) to 4 (verbose); nil means 3.
	Severity *int `json:"severity,omitempty"`
	// Enabled defaults to true.
	Enabled *bool   `json:"enabled,omitempty"`
	Scopes  []Scope `json:"scopes"`
	// EvaluationFrequency and WindowSize are ISO 8601 durations.
	EvaluationFrequency string   `json:"evaluationFrequency"`
	WindowSize          string   `json:"windowSize"`
	Criteria            Criteria `json:"criteria"`
	// AutoMitigate resolves a fired alert when its condition is no longer met; defaults to true.
	AutoMitigate *bool     `json:"autoMitigate,omitempty"`
	Actions      []Action  `json:"actions,omitempty"`
	CreatedAt    time.Time `json:"createdAt,omitzero"`
	UpdatedAt    time.Time `json:"updatedAt,omitzero"`
}

// ApplyDefaults fills unset properties with Azure's defaults.
func (r *AlertRule) ApplyDefaults() {
	if r.Severity == nil {
		r.Severity = ptr(DefaultAlertSeverity)
	}
	if r.Enabled == nil {
		r.Enabled = ptr(true)
	}
	if r.AutoMitigate == nil {
		r.AutoMitigate = ptr(true)
	}
	if r.EvaluationFrequency == "" {
		r.EvaluationFrequency = DefaultEvaluationFrequency
	}
	if r.WindowSize == "" {
		r.WindowSize = DefaultWindowSize
	}
	if r.Criteria.ODataType == "" {
		r.Criteria.ODataType = CriteriaMultipleResource
	}
	for i := range r.Criteria.AllOf {
		b := r.Criteria.AllOf[i].Base()
		if b.MetricNamespace == "" {
			b.MetricNamespace = MetricNamespace
		}
		if b.Name == "" {
			b.Name = fmt.Sprintf("Metric%d", i+1)
		}
		if d := r.Criteria.AllOf[i].Dynamic; d != nil {
			if d.FailingPeriods.NumberOfEvaluationPeriods == 0 && d.FailingPeriods.MinFailingPeriodsToAlert == 0 {
				d.FailingPeriods = FailingPeriods{NumberOfEvaluationPeriods: 4, MinFailingPeriodsToAlert: 4}
			}
			if d.AlertSensitivity == "" {
				d.AlertSensitivity = SensitivityMedium
			}
		}
	}
}

// SeverityLevel is the rule's severity, 3 when unset.
func (r *AlertRule) SeverityLevel() int {
	if r.Severity == nil {
		return DefaultAlertSeverity
	}
	return *r.Severity
}

// IsEnabled reports whether the rule is evaluated (true when unset).
func (r *AlertRule) IsEnabled() bool { return r.Enabled == nil || *r.Enabled }

// Mitigates reports whether fired alerts resolve by themselves (true when unset).
func (r *AlertRule) Mitigates() bool { return r.AutoMitigate == nil || *r.AutoMitigate }

// Frequency is the parsed evaluationFrequency (the default when unset or invalid; Validate first).
func (r *AlertRule) Frequency() time.Duration {
	return durationOr(r.EvaluationFrequency, DefaultEvaluationFrequency)
}

// Window is the parsed windowSize (the default when unset or invalid; Validate first).
func (r *AlertRule) Window() time.Duration { return durationOr(r.WindowSize, DefaultWindowSize) }

func durationOr(s, def string) time.Duration {
	if d, err := ParseISODuration("", s); err == nil && d > 0 {
		return d
	}
	d, _ := ParseISODuration("", def)
	return d
}

// ConditionType is Azure's conditionType of the rule's alerts.
func (r *AlertRule) ConditionType() string {
	for _, c := range r.Criteria.AllOf {
		if c.Dynamic != nil {
			return ConditionTypeDynamic
		}
	}
	return ConditionTypeStatic
}

// InScope reports whether any of the rule's scopes selects h.
func (r *AlertRule) InScope(h *Host) bool {
	for _, s := range r.Scopes {
		if s.Matches(h) {
			return true
		}
	}
	return false
}

// Validate checks the rule; the error names the field and the reason.
// Call ApplyDefaults first to accept omitted optional fields.
func (r *AlertRule) Validate() error {
	if strings.TrimSpace(r.Name) == "" || len(r.Name) > MaxAlertNameLength {
		return Errorf(EINVALID, "name: must be 1 to %d characters", MaxAlertNameLength)
	}
	if strings.ContainsAny(r.Name, "<>*%&:\\?+/\x00") {
		return Errorf(EINVALID, "name: %q contains one of < > * %% & : \\ ? + / (Azure refuses them)", clip(r.Name))
	}
	if len(r.Description) > MaxDescriptionLength {
		return Errorf(EINVALID, "description: longer than %d characters", MaxDescriptionLength)
	}
	if r.Severity != nil && (*r.Severity < 0 || *r.Severity > MaxAlertSeverity) {
		return Errorf(EINVALID, "severity: %d is outside 0..%d", *r.Severity, MaxAlertSeverity)
	}
	if len(r.Scopes) == 0 {
		return Errorf(EINVALID, "scopes: required; use [\"*\"] for every host")
	}
	if len(r.Scopes) > MaxScopes {
		return Errorf(EINVALID, "scopes: %d scopes; at most %d", len(r.Scopes), MaxScopes)
	}
	for i, s := range r.Scopes {
		if err := s.Validate(); err != nil {
			return Errorf(EINVALID, "scopes[%d]: %v", i, err)
		}
	}
	freq, err := ParseISODuration("evaluationFrequency", r.EvaluationFrequency)
	if err != nil {
		return err
	}
	if freq < MinEvaluationFrequency || freq > MaxEvaluationFrequency {
		return Errorf(EINVALID, "evaluationFrequency: %s is outside PT1S..PT1H", r.EvaluationFrequency)
	}
	window, err := ParseISODuration("windowSize", r.WindowSize)
	if err != nil {
		return err
	}
	if window < MinWindowSize || window > MaxWindowSize {
		return Errorf(EINVALID, "windowSize: %s is outside PT1S..PT24H", r.WindowSize)
	}
	if window < freq {
		return Errorf(EINVALID, "windowSize: %s is shorter than evaluationFrequency %s; every point must fall in some window", r.WindowSize, r.EvaluationFrequency)
	}
	switch r.Criteria.ODataType {
	case "", CriteriaSingleResource, CriteriaMultipleResource:
	default:
		return Errorf(EINVALID, "criteria.odata.type: %q is not %s or %s", clip(r.Criteria.ODataType), CriteriaSingleResource, CriteriaMultipleResource)
	}
	if len(r.Criteria.AllOf) == 0 {
		return Errorf(EINVALID, "criteria.allOf: at least one criterion is required")
	}
	if len(r.Criteria.AllOf) > MaxCriteria {
		return Errorf(EINVALID, "criteria.allOf: %d criteria; at most %d", len(r.Criteria.AllOf), MaxCriteria)
	}
	names := map[string]bool{}
	for i := range r.Criteria.AllOf {
		field := fmt.Sprintf("criteria.allOf[%d]", i)
		if err := r.Criteria.AllOf[i].validate(field, window); err != nil {
			return err
		}
		if n := r.Criteria.AllOf[i].Base().Name; n != "" {
			if names[n] {
				return Errorf(EINVALID, "%s.name: %q is used by another criterion", field, clip(n))
			}
			names[n] = true
		}
	}
	if len(r.Actions) > MaxRuleActions {
		return Errorf(EINVALID, "actions: %d actions; at most %d", len(r.Actions), MaxRuleActions)
	}
	for i, a := range r.Actions {
		if strings.TrimSpace(a.ActionGroupID) == "" {
			return Errorf(EINVALID, "actions[%d].actionGroupId: required", i)
		}
		for k := range a.WebHookProperties {
			if k == "" {
				return Errorf(EINVALID, "actions[%d].webHookProperties: empty key", i)
			}
		}
	}
	return nil
}

func (c *Criterion) validate(field string, window time.Duration) error {
	if (c.Static == nil) == (c.Dynamic == nil) {
		return Errorf(EINVALID, "%s: must be a StaticThresholdCriterion or a DynamicThresholdCriterion", field)
	}
	b := c.Base()
	if len(b.Name) > 260 {
		return Errorf(EINVALID, "%s.name: longer than 260 characters", field)
	}
	if _, err := ParseMetric(field+".metricName", b.MetricName); err != nil {
		return err
	}
	if b.MetricNamespace != "" && !strings.EqualFold(b.MetricNamespace, MetricNamespace) && !strings.EqualFold(b.MetricNamespace, "tripcap") {
		return Errorf(EINVALID, "%s.metricNamespace: %q is not %s (or tripcap)", field, clip(b.MetricNamespace), MetricNamespace)
	}
	if _, err := ParseAggregation(field+".timeAggregation", string(b.TimeAggregation)); err != nil {
		return err
	}
	m, _ := ParseMetric("", b.MetricName)
	def, _ := m.Definition()
	for j, d := range b.Dimensions {
		df := fmt.Sprintf("%s.dimensions[%d]", field, j)
		if !strings.EqualFold(d.Name, DimensionInterface) {
			return Errorf(EINVALID, "%s.name: %q is not a dimension; the only one is %q", df, clip(d.Name), DimensionInterface)
		}
		if !def.PerInterface {
			return Errorf(EINVALID, "%s.name: %s has no per-interface series", df, def.DisplayName)
		}
		if d.Operator != "Include" && d.Operator != "Exclude" {
			return Errorf(EINVALID, "%s.operator: %q is not Include or Exclude", df, clip(d.Operator))
		}
		if len(d.Values) == 0 {
			return Errorf(EINVALID, "%s.values: at least one value is required", df)
		}
		for k, v := range d.Values {
			if v == "" || len(v) > 15 || (v == "*" && d.Operator == "Exclude") {
				return Errorf(EINVALID, "%s.values[%d]: %q is not an interface name", df, k, clip(v))
			}
		}
	}
	if j := len(b.Dimensions); j > 1 {
		return Errorf(EINVALID, "%s.dimensions: give the interface dimension once", field)
	}
	if s := c.Static; s != nil {
		if _, err := ParseOperator(field+".operator", string(s.Operator)); err != nil {
			return err
		}
		if math.IsNaN(s.Threshold) || math.IsInf(s.Threshold, 0) {
			return Errorf(EINVALID, "%s.threshold: must be a finite number", field)
		}
		return nil
	}
	d := c.Dynamic
	if _, err := ParseDynamicOperator(field+".operator", string(d.Operator)); err != nil {
		return err
	}
	switch d.AlertSensitivity {
	case SensitivityLow, SensitivityMedium, SensitivityHigh:
	default:
		return Errorf(EINVALID, "%s.alertSensitivity: %q is not one of Low, Medium, High", field, clip(string(d.AlertSensitivity)))
	}
	fp := d.FailingPeriods
	if fp.NumberOfEvaluationPeriods < 1 || fp.NumberOfEvaluationPeriods > MaxFailingPeriods {
		return Errorf(EINVALID, "%s.failingPeriods.numberOfEvaluationPeriods: %d is outside 1..%d", field, fp.NumberOfEvaluationPeriods, MaxFailingPeriods)
	}
	if fp.MinFailingPeriodsToAlert < 1 || fp.MinFailingPeriodsToAlert > fp.NumberOfEvaluationPeriods {
		return Errorf(EINVALID, "%s.failingPeriods.minFailingPeriodsToAlert: %d is outside 1..numberOfEvaluationPeriods (%d)", field, fp.MinFailingPeriodsToAlert, fp.NumberOfEvaluationPeriods)
	}
	if time.Duration(fp.NumberOfEvaluationPeriods)*window > MaxWindowSize {
		return Errorf(EINVALID, "%s.failingPeriods.numberOfEvaluationPeriods: %d periods of %s look back more than 24 hours", field, fp.NumberOfEvaluationPeriods, FormatISODuration(window))
	}
	return nil
}

// Metric is the criterion's metric id (Validate first).
func (b *MetricCriterion) Metric() MetricID {
	m, _ := ParseMetric("", b.MetricName)
	return m
}

// Rule presets: the seeds' rules, so one command recreates them.
const (
	// PresetSeed is the current seed's rule: Network Out Total, Average,
	// GreaterThan 3, every minute over 5 minutes.
	PresetSeed = "seed"
	// PresetSeed2017 is the 2017 seed's rule: TCP segments sent > 100 over 5 minutes.
	PresetSeed2017 = "seed-2017"
)

// PresetAlertRule returns a preset rule scoped to scopes and notifying the
// given action groups; defaults are applied.
func PresetAlertRule(preset, name string, scopes []Scope, actionGroupIDs ...string) (*AlertRule, error) {
	r := &AlertRule{Name: name, Scopes: scopes, EvaluationFrequency: "PT1M", WindowSize: "PT5M"}
	switch preset {
	case PresetSeed:
		r.Description = "Network Out Total average above 3 over 5 minutes (the current seed's rule)"
		r.Criteria.AllOf = []Criterion{{Static: &StaticCriterion{
			MetricCriterion: MetricCriterion{Name: "Metric1", MetricName: "Network Out Total", TimeAggregation: AggregationAverage},
			Operator:        OperatorGreaterThan, Threshold: 3,
		}}}
	case PresetSeed2017:
		r.Description = "TCP segments sent above 100 over 5 minutes (the 2017 seed's rule)"
		r.Criteria.AllOf = []Criterion{{Static: &StaticCriterion{
			MetricCriterion: MetricCriterion{Name: "Metric1", MetricName: "TCP Segments Sent", TimeAggregation: AggregationTotal},
			Operator:        OperatorGreaterThan, Threshold: 100,
		}}}
	default:
		return nil, Errorf(EINVALID, "preset: %q is not one of %s, %s", clip(preset), PresetSeed, PresetSeed2017)
	}
	for _, id := range actionGroupIDs {
		r.Actions = append(r.Actions, Action{ActionGroupID: id})
	}
	r.ApplyDefaults()
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// MonitorCondition is an alert's state, Azure's monitorCondition.
type MonitorCondition string

const (
	ConditionFired    MonitorCondition = "Fired"
	ConditionResolved MonitorCondition = "Resolved"
)

// DimensionValue is a dimension of the series that met a criterion.
type DimensionValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ConditionResult is one criterion evaluated over one window: Azure's
// alertContext.condition.allOf item, plus the band of a dynamic threshold.
type ConditionResult struct {
	Name            string           `json:"name,omitempty"`
	MetricName      string           `json:"metricName"`
	MetricNamespace string           `json:"metricNamespace"`
	Metric          MetricID         `json:"metric"`
	Operator        Operator         `json:"operator"`
	TimeAggregation Aggregation      `json:"timeAggregation"`
	Dimensions      []DimensionValue `json:"dimensions"`
	// MetricValue is the window's aggregated value.
	MetricValue float64 `json:"metricValue"`
	// Threshold is the static threshold, or the edge of the dynamic band
	// the value crossed (the nearer edge when it did not).
	Threshold float64 `json:"threshold"`
	// Met says whether the criterion held for this window.
	Met bool `json:"met"`
	// Dynamic thresholds only.
	AlertSensitivity Sensitivity     `json:"alertSensitivity,omitempty"`
	FailingPeriods   *FailingPeriods `json:"failingPeriods,omitempty"`
	LowerBound       *float64        `json:"lowerBound,omitempty"`
	UpperBound       *float64        `json:"upperBound,omitempty"`
	// FailedPeriods is how many of the failing-periods lookback were outside the band.
	FailedPeriods int `json:"failedPeriods,omitempty"`
}

// AlertEvaluation is the evaluation that changed an alert's state: the
// window and every criterion's value.
type AlertEvaluation struct {
	MonitorCondition MonitorCondition  `json:"monitorCondition"`
	Time             time.Time         `json:"time"`
	WindowStartTime  time.Time         `json:"windowStartTime"`
	WindowEndTime    time.Time         `json:"windowEndTime"`
	AllOf            []ConditionResult `json:"allOf"`
}

// Alert is one firing of a rule on one host, from Fired to Resolved. A rule
// fires again on the same host as a new alert.
type Alert struct {
	ID          string `json:"id"`
	RuleID      string `json:"ruleId"`
	RuleName    string `json:"alertRule"`
	Description string `json:"description,omitempty"`
	Severity    int    `json:"severity"`
	HostID      string `json:"hostId"`
	HostName    string `json:"hostName"`
	// TargetResourceID is the host's VM resource id (Azure's alertTargetIDs).
	TargetResourceID string           `json:"targetResourceId"`
	SubscriptionID   string           `json:"subscriptionId,omitempty"`
	ResourceGroup    string           `json:"resourceGroup,omitempty"`
	Location         string           `json:"location,omitempty"`
	ConditionType    string           `json:"conditionType"`
	WindowSize       string           `json:"windowSize"`
	MonitorCondition MonitorCondition `json:"monitorCondition"`
	FiredAt          time.Time        `json:"firedDateTime"`
	ResolvedAt       *time.Time       `json:"resolvedDateTime,omitempty"`
	// Condition is the evaluation behind the latest transition.
	Condition AlertEvaluation `json:"condition"`
	// History lists every transition, Fired first.
	History []AlertEvaluation `json:"history"`
	// Actions are the rule's actions when the alert fired.
	Actions []Action `json:"actions,omitempty"`
}

// SeverityName is Azure's "Sev0".."Sev4".
func SeverityName(sev int) string { return "Sev" + strconv.Itoa(sev) }

// AlertFilter selects alerts in a listing.
type AlertFilter struct {
	ID               *string
	RuleID           *string
	HostID           *string
	MonitorCondition *MonitorCondition
	Limit            int
}

// Match reports whether a passes the filter (Limit aside).
func (f AlertFilter) Match(a *Alert) bool {
	return (f.ID == nil || *f.ID == a.ID) && (f.RuleID == nil || *f.RuleID == a.RuleID) &&
		(f.HostID == nil || *f.HostID == a.HostID) && (f.MonitorCondition == nil || *f.MonitorCondition == a.MonitorCondition)
}

// Action group receivers.

// WebhookReceiver posts the alert to ServiceURI: the common alert schema when
// UseCommonAlertSchema is set, Azure's AzureMonitorMetricAlert schema otherwise.
type WebhookReceiver struct {
	Name                 string `json:"name"`
	ServiceURI           string `json:"serviceUri"`
	UseCommonAlertSchema bool   `json:"useCommonAlertSchema"`
}

// EmailReceiver mails the alert.
type EmailReceiver struct {
	Name                 string `json:"name"`
	EmailAddress         string `json:"emailAddress"`
	UseCommonAlertSchema bool   `json:"useCommonAlertSchema"`
}

// ResponderReceiver hands the alert to a tripcap responder (which may start
// a packet capture on the host); ResponderID names its configuration.
type ResponderReceiver struct {
	Name        string `json:"name"`
	ResponderID string `json:"responderId,omitempty"`
}

// ActionGroup is a set of receivers alerts are delivered to.
type ActionGroup struct {
	ID             string `json:"id,omitempty"`
	Name           string `json:"name"`
	GroupShortName string `json:"groupShortName,omitempty"`
	// Enabled defaults to true; a disabled group delivers nothing.
	Enabled            *bool               `json:"enabled,omitempty"`
	EmailReceivers     []EmailReceiver     `json:"emailReceivers,omitempty"`
	WebhookReceivers   []WebhookReceiver   `json:"webhookReceivers,omitempty"`
	ResponderReceivers []ResponderReceiver `json:"responderReceivers,omitempty"`
	// SigningSecret keys the HMAC signature of webhook deliveries. It is
	// generated at creation and shown to the caller then, so receivers can
	// verify; listings leave it out.
	SigningSecret string    `json:"signingSecret,omitempty"`
	CreatedAt     time.Time `json:"createdAt,omitzero"`
	UpdatedAt     time.Time `json:"updatedAt,omitzero"`
}

// checkReceivers checks receivers' names (each unique among them) and
// addresses. prefix goes before the field names, so a responder's own
// receivers are named as its fields are (notifyWebhookReceivers[0]).
func checkReceivers(prefix string, webhooks []WebhookReceiver, emails []EmailReceiver, responders []ResponderReceiver) error {
	field := func(kind string, i int) string {
		if prefix != "" {
			kind = prefix + strings.ToUpper(kind[:1]) + kind[1:]
		}
		return fmt.Sprintf("%s[%d]", kind, i)
	}
	names := map[string]bool{}
	checkName := func(field, name string) error {
		if strings.TrimSpace(name) == "" {
			return Errorf(EINVALID, "%s.name: required", field)
		}
		if names[name] {
			return Errorf(EINVALID, "%s.name: %q is used by another receiver", field, clip(name))
		}
		names[name] = true
		return nil
	}
	for i, w := range webhooks {
		field := field("webhookReceivers", i)
		if err := checkName(field, w.Name); err != nil {
			return err
		}
		u, err := url.Parse(w.ServiceURI)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Errorf(EINVALID, "%s.serviceUri: %q is not an http or https URL", field, clip(w.ServiceURI))
		}
	}
	for i, e := range emails {
		field := field("emailReceivers", i)
		if err := checkName(field, e.Name); err != nil {
			return err
		}
		a, err := mail.ParseAddress(e.EmailAddress)
		if err != nil || a.Name != "" || a.Address != e.EmailAddress {
			return Errorf(EINVALID, "%s.emailAddress: %q is not an email address", field, clip(e.EmailAddress))
		}
	}
	for i, r := range responders {
		if err := checkName(field("responderReceivers", i), r.Name); err != nil {
			return err
		}
	}
	return nil
}

// IsEnabled reports whether the group delivers (true when unset).
func (g *ActionGroup) IsEnabled() bool { return g.Enabled == nil || *g.Enabled }

// Validate checks the group; the error names the field and the reason.
func (g *ActionGroup) Validate() error {
	if strings.TrimSpace(g.Name) == "" || len(g.Name) > MaxAlertNameLength {
		return Errorf(EINVALID, "name: must be 1 to %d characters", MaxAlertNameLength)
	}
	if len(g.GroupShortName) > 12 {
		return Errorf(EINVALID, "groupShortName: %q is longer than 12 characters", clip(g.GroupShortName))
	}
	if err := checkReceivers("", g.WebhookReceivers, g.EmailReceivers, g.ResponderReceivers); err != nil {
		return err
	}
	if len(g.WebhookReceivers)+len(g.EmailReceivers)+len(g.ResponderReceivers) == 0 {
		return Errorf(EINVALID, "receivers: give at least one of webhookReceivers, emailReceivers, responderReceivers")
	}
	return nil
}

// Delivery is one attempt to deliver an alert transition to one receiver.
type Delivery struct {
	AlertID          string           `json:"alertId"`
	MonitorCondition MonitorCondition `json:"monitorCondition"`
	ActionGroupID    string           `json:"actionGroupId"`
	Receiver         string           `json:"receiver"`
	// ReceiverKind is webhook, email or responder.
	ReceiverKind string    `json:"receiverKind"`
	Attempt      int       `json:"attempt"`
	Time         time.Time `json:"time"`
	Duration     float64   `json:"durationSeconds"`
	// StatusCode is the webhook's HTTP status (0 when none came back).
	StatusCode int    `json:"statusCode,omitempty"`
	Success    bool   `json:"success"`
	Error      string `json:"error,omitempty"`
	// Final says no further attempt follows this one.
	Final bool `json:"final"`
}
