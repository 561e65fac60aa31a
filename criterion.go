package tripcap

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

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
