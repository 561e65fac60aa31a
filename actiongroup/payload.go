package actiongroup

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// The two webhook schemas of Azure Monitor metric alerts, with Azure's
// field names and types: the common alert schema (useCommonAlertSchema on)
// and the AzureMonitorMetricAlert schema (off), which the current seed's
// function reads (data.context.resourceType, resourceGroupName,
// resourceName, resourceId).

// Schema ids.
const (
	SchemaCommon      = "azureMonitorCommonAlertSchema"
	SchemaMetricAlert = "AzureMonitorMetricAlert"
)

// CommonAlert is the common alert schema.
type CommonAlert struct {
	SchemaID string          `json:"schemaId"`
	Data     CommonAlertData `json:"data"`
}

// CommonAlertData holds the three sections.
type CommonAlertData struct {
	Essentials       Essentials        `json:"essentials"`
	AlertContext     AlertContext      `json:"alertContext"`
	CustomProperties map[string]string `json:"customProperties"`
}

// Essentials is the common schema's essentials section.
type Essentials struct {
	AlertID             string   `json:"alertId"`
	AlertRule           string   `json:"alertRule"`
	Severity            string   `json:"severity"`
	SignalType          string   `json:"signalType"`
	MonitorCondition    string   `json:"monitorCondition"`
	MonitoringService   string   `json:"monitoringService"`
	AlertTargetIDs      []string `json:"alertTargetIDs"`
	ConfigurationItems  []string `json:"configurationItems"`
	OriginAlertID       string   `json:"originAlertId"`
	FiredDateTime       string   `json:"firedDateTime"`
	ResolvedDateTime    string   `json:"resolvedDateTime,omitempty"`
	Description         string   `json:"description"`
	EssentialsVersion   string   `json:"essentialsVersion"`
	AlertContextVersion string   `json:"alertContextVersion"`
}

// AlertContext is a metric alert's context.
type AlertContext struct {
	Properties    map[string]string `json:"properties"`
	ConditionType string            `json:"conditionType"`
	Condition     Condition         `json:"condition"`
}

// Condition is the evaluated condition.
type Condition struct {
	WindowSize      string          `json:"windowSize"`
	AllOf           []ConditionItem `json:"allOf"`
	WindowStartTime string          `json:"windowStartTime,omitempty"`
	WindowEndTime   string          `json:"windowEndTime,omitempty"`
}

// ConditionItem is one criterion's result. Threshold is a string and
// MetricValue a number, as Azure sends them.
type ConditionItem struct {
	MetricName       string                   `json:"metricName"`
	MetricNamespace  string                   `json:"metricNamespace"`
	Operator         string                   `json:"operator"`
	Threshold        string                   `json:"threshold"`
	TimeAggregation  string                   `json:"timeAggregation"`
	Dimensions       []tripcap.DimensionValue `json:"dimensions"`
	MetricValue      float64                  `json:"metricValue"`
	WebTestName      *string                  `json:"webTestName"`
	AlertSensitivity string                   `json:"alertSensitivity,omitempty"`
	FailingPeriods   *tripcap.FailingPeriods  `json:"failingPeriods,omitempty"`
	IgnoreDataBefore *string                  `json:"ignoreDataBefore,omitempty"`
}

// MetricAlert is the AzureMonitorMetricAlert schema.
type MetricAlert struct {
	SchemaID string          `json:"schemaId"`
	Data     MetricAlertData `json:"data"`
}

// MetricAlertData is its data section.
type MetricAlertData struct {
	Version    string             `json:"version"`
	Properties map[string]string  `json:"properties"`
	Status     string             `json:"status"`
	Context    MetricAlertContext `json:"context"`
}

// MetricAlertContext describes the rule and the resource.
type MetricAlertContext struct {
	Timestamp         string    `json:"timestamp"`
	ID                string    `json:"id"`
	Name              string    `json:"name"`
	Description       string    `json:"description"`
	ConditionType     string    `json:"conditionType"`
	Severity          string    `json:"severity"`
	Condition         Condition `json:"condition"`
	SubscriptionID    string    `json:"subscriptionId"`
	ResourceGroupName string    `json:"resourceGroupName"`
	ResourceName      string    `json:"resourceName"`
	ResourceType      string    `json:"resourceType"`
	ResourceID        string    `json:"resourceId"`
	PortalLink        string    `json:"portalLink"`
}

// vmResourceType is Azure's resource type of the hosts' ids.
const vmResourceType = "Microsoft.Compute/virtualMachines"

func azureTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }

// AlertResourceID is the alert's Azure-style id.
func AlertResourceID(a tripcap.Alert) string {
	return "/subscriptions/" + a.SubscriptionID + "/providers/Microsoft.AlertsManagement/alerts/" + a.ID
}

// RuleResourceID is the rule's Azure-style id (in the host's resource group).
func RuleResourceID(a tripcap.Alert) string {
	return "/subscriptions/" + a.SubscriptionID + "/resourceGroups/" + a.ResourceGroup + "/providers/microsoft.insights/metricAlerts/" + a.RuleName
}

func condition(a tripcap.Alert) Condition {
	c := Condition{WindowSize: a.WindowSize, AllOf: []ConditionItem{}}
	if !a.Condition.WindowStartTime.IsZero() {
		c.WindowStartTime = azureTime(a.Condition.WindowStartTime)
		c.WindowEndTime = azureTime(a.Condition.WindowEndTime)
	}
	for _, r := range a.Condition.AllOf {
		dims := r.Dimensions
		if dims == nil {
			dims = []tripcap.DimensionValue{}
		}
		item := ConditionItem{
			MetricName: r.MetricName, MetricNamespace: r.MetricNamespace, Operator: string(r.Operator),
			Threshold:       strconv.FormatFloat(r.Threshold, 'f', -1, 64),
			TimeAggregation: string(r.TimeAggregation), Dimensions: dims, MetricValue: r.MetricValue,
		}
		if r.AlertSensitivity != "" {
			item.AlertSensitivity = string(r.AlertSensitivity)
			item.FailingPeriods = r.FailingPeriods
		}
		c.AllOf = append(c.AllOf, item)
	}
	return c
}

func props(p map[string]string) map[string]string {
	if len(p) == 0 {
		return nil
	}
	return p
}

// NewCommonAlert builds the common alert schema for an alert transition;
// custom are the rule action's webHookProperties.
func NewCommonAlert(a tripcap.Alert, custom map[string]string) CommonAlert {
	e := Essentials{
		AlertID: AlertResourceID(a), AlertRule: a.RuleName, Severity: tripcap.SeverityName(a.Severity),
		SignalType: "Metric", MonitorCondition: string(a.MonitorCondition), MonitoringService: "Platform",
		AlertTargetIDs: []string{strings.ToLower(a.TargetResourceID)}, ConfigurationItems: []string{a.HostName},
		OriginAlertID: a.RuleID + "_" + a.HostID + "_" + a.ID, FiredDateTime: azureTime(a.FiredAt),
		Description: a.Description, EssentialsVersion: "1.0", AlertContextVersion: "1.0",
	}
	if a.ResolvedAt != nil && a.MonitorCondition == tripcap.ConditionResolved {
		e.ResolvedDateTime = azureTime(*a.ResolvedAt)
	}
	return CommonAlert{SchemaID: SchemaCommon, Data: CommonAlertData{
		Essentials:       e,
		AlertContext:     AlertContext{ConditionType: a.ConditionType, Condition: condition(a)},
		CustomProperties: props(custom),
	}}
}

// NewMetricAlert builds the AzureMonitorMetricAlert schema; portal is the
// base URL alert links point to ("" for none).
func NewMetricAlert(a tripcap.Alert, custom map[string]string, portal string) MetricAlert {
	status := "Activated"
	ts := a.FiredAt
	if a.MonitorCondition == tripcap.ConditionResolved {
		status = "Resolved"
		if a.ResolvedAt != nil {
			ts = *a.ResolvedAt
		}
	}
	link := ""
	if portal != "" {
		link = strings.TrimRight(portal, "/") + "/alerts/" + a.ID
	}
	return MetricAlert{SchemaID: SchemaMetricAlert, Data: MetricAlertData{
		Version: "2.0", Properties: props(custom), Status: status,
		Context: MetricAlertContext{
			Timestamp: azureTime(ts), ID: RuleResourceID(a), Name: a.RuleName, Description: a.Description,
			ConditionType: a.ConditionType, Severity: strconv.Itoa(a.Severity), Condition: condition(a),
			SubscriptionID: a.SubscriptionID, ResourceGroupName: a.ResourceGroup, ResourceName: a.HostName,
			ResourceType: vmResourceType, ResourceID: a.TargetResourceID, PortalLink: link,
		},
	}}
}

// Payload returns the JSON body a webhook receiver gets.
func Payload(a tripcap.Alert, custom map[string]string, common bool, portal string) ([]byte, error) {
	if common {
		return json.Marshal(NewCommonAlert(a, custom))
	}
	return json.Marshal(NewMetricAlert(a, custom, portal))
}
