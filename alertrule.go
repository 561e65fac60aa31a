package tripcap

import (
	"fmt"
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
	AutoMitigate *bool    `json:"autoMitigate,omitempty"`
	Actions      []Action `json:"actions,omitempty"`
	// TargetResourceRegion, when set, keeps the rule to hosts of that
	// location (Azure's targetResourceRegion of a rule scoped to a
	// subscription or resource group).
	TargetResourceRegion string `json:"targetResourceRegion,omitempty"`
	AzurePlacement
	CreatedAt time.Time `json:"createdAt,omitzero"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
	// Version counts the rule's writes; its ETag is made from it, so that
	// an update based on an older read is refused (If-Match).
	Version int64 `json:"version,omitempty"`
}

// ETag is the rule's entity tag, from its version.
func (r *AlertRule) ETag() string { return versionETag(r.Version) }

// versionETag is the weak entity tag of a stored object's version: rules,
// action groups and responders share it.
func versionETag(v int64) string { return fmt.Sprintf(`W/"%d"`, v) }

// ApplyDefaults fills unset properties with Azure's defaults.
func (r *AlertRule) ApplyDefaults() {
	if r.Severity == nil {
		r.Severity = new(DefaultAlertSeverity)
	}
	if r.Enabled == nil {
		r.Enabled = new(true)
	}
	if r.AutoMitigate == nil {
		r.AutoMitigate = new(true)
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

// InScope reports whether any of the rule's scopes selects h (and h is in
// the rule's target region, when it has one).
func (r *AlertRule) InScope(h *Host) bool {
	if r.TargetResourceRegion != "" && (h == nil || !strings.EqualFold(r.TargetResourceRegion, h.Location)) {
		return false
	}
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
	if strings.Trim(r.Name, ".") == "" {
		return Errorf(EINVALID, "name: %q is not a name", r.Name)
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
	if r.TargetResourceRegion != "" {
		if err := ValidateName("targetResourceRegion", r.TargetResourceRegion); err != nil {
			return err
		}
	}
	if err := r.ValidatePlacement(); err != nil {
		return err
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
