package tripcap

import (
	"strconv"
	"time"
)

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
	// Silenced says a silence muted this transition: nothing was delivered.
	Silenced bool `json:"silenced,omitempty"`
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
	// Silenced says an active silence matched the alert's latest
	// transition: it was recorded and nothing was delivered. SilencedBy
	// lists the matching silences' ids.
	Silenced   bool     `json:"silenced,omitempty"`
	SilencedBy []string `json:"silencedBy,omitempty"`
	// Released says the alert's instance (rule, host) has let it go while
	// it stays Fired: the condition cleared under a rule without
	// autoMitigate (such alerts are closed by hand), so the next breach
	// fires a new alert. A Fired alert not Released is its instance's
	// active alert; stores keep at most one per (rule, host).
	Released bool `json:"released,omitempty"`
}

// Active says a is its instance's current alert: the one a continuing
// breach keeps and a clear resolves.
func (a *Alert) Active() bool { return a.MonitorCondition == ConditionFired && !a.Released }

// AlertFencedError is what UpsertAlert returns when the store kept another
// write of the instance's alert: a Fired alert whose (rule, host) already
// has another active alert (another replica fired first), or an alert the
// store holds Resolved already (another replica resolved it). Winner is
// the alert the store holds; the caller adopts it and delivers nothing.
type AlertFencedError struct {
	AlertID  string // the alert refused
	WinnerID string
	Winner   *Alert
}

// Unwrap makes the error ECONFLICT to ErrorCode and ErrorMessage.
func (e *AlertFencedError) Unwrap() error { return &Error{Code: ECONFLICT, Message: e.Error()} }

func (e *AlertFencedError) Error() string {
	if e.WinnerID == e.AlertID {
		return "alert " + e.AlertID + " is resolved already"
	}
	return "alert " + e.AlertID + " lost to alert " + e.WinnerID + ", already active for its rule and host"
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
