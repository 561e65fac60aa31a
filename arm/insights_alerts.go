package arm

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// Microsoft.Insights/metricAlerts ⇄ tripcap's alert rules. tripcap's rule
// model is Azure's (root alertrule.go), so the translation is mostly the
// ARM envelope (id, location, tags) and the refusal of what tripcap does
// not do.

const (
	insightsNamespace = "Microsoft.Insights"
	typeMetricAlerts  = "metricAlerts"
	typeActionGroups  = "actionGroups"
	// alertLocation is the location of every metric alert rule, as in Azure.
	alertLocation = "global"
	// vmResourceType is the one targetResourceType tripcap's rules watch.
	vmResourceType = "Microsoft.Compute/virtualMachines"
)

// resource is the ARM envelope of a Microsoft.Insights resource, as ARM
// sends and answers it; P is its properties.
type resource[P any] struct {
	ID         string            `json:"id,omitempty"`
	Name       string            `json:"name,omitempty"`
	Type       string            `json:"type,omitempty"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags,omitempty"`
	Identity   json.RawMessage   `json:"identity,omitempty"`
	SystemData json.RawMessage   `json:"systemData,omitempty"`
	Properties *P                `json:"properties"`
}

// patchBody is the body of a PATCH: the tags and properties it changes.
type patchBody[P any] struct {
	Tags       map[string]string `json:"tags,omitempty"`
	Identity   json.RawMessage   `json:"identity,omitempty"`
	Properties *P                `json:"properties"`
}

// metricAlertResource is Microsoft.Insights/metricAlerts.
type metricAlertResource = resource[metricAlertProperties]

// metricAlertProperties are the rule's properties, every one the 2026-01-01
// API has: those tripcap has no meaning for are refused when set.
type metricAlertProperties struct {
	Description          *string           `json:"description,omitempty"`
	Severity             *int              `json:"severity"`
	Enabled              *bool             `json:"enabled"`
	Scopes               []tripcap.Scope   `json:"scopes"`
	EvaluationFrequency  string            `json:"evaluationFrequency"`
	WindowSize           string            `json:"windowSize,omitempty"`
	TargetResourceType   string            `json:"targetResourceType,omitempty"`
	TargetResourceRegion string            `json:"targetResourceRegion,omitempty"`
	Criteria             json.RawMessage   `json:"criteria"`
	AutoMitigate         *bool             `json:"autoMitigate,omitempty"`
	Actions              []tripcap.Action  `json:"actions"`
	CustomProperties     map[string]string `json:"customProperties,omitempty"`
	ActionProperties     map[string]string `json:"actionProperties,omitempty"`
	ResolveConfiguration json.RawMessage   `json:"resolveConfiguration,omitempty"`
	// Read-only: accepted in a body (a GET sent back) and not kept.
	LastUpdatedTime *time.Time `json:"lastUpdatedTime,omitempty"`
	IsMigrated      *bool      `json:"isMigrated,omitempty"`
}

// criteriaWire is criteria as it arrives: allOf is read item by item, by
// each item's criterionType.
type criteriaWire struct {
	ODataType string            `json:"odata.type"`
	AllOf     []json.RawMessage `json:"allOf"`
}

// Azure's criteria types tripcap does not evaluate, named in the refusal.
var otherCriteria = map[string]string{
	"Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria": "web test availability",
	"Microsoft.Azure.Monitor.PromQLCriteria":                      "PromQL",
}

// decodeCriteria reads criteria strictly: each item against the fields of
// its kind, so a dynamic-only property on a static criterion is refused.
func decodeCriteria(field string, raw json.RawMessage) (tripcap.Criteria, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return tripcap.Criteria{}, invalid(field, "required")
	}
	var w criteriaWire
	if err := decodeStrict(field, raw, &w); err != nil {
		return tripcap.Criteria{}, err
	}
	c := tripcap.Criteria{ODataType: w.ODataType}
	switch {
	case w.ODataType == "":
		return c, invalid(field+".odata.type", "required: %s or %s", tripcap.CriteriaSingleResource, tripcap.CriteriaMultipleResource)
	case strings.EqualFold(w.ODataType, tripcap.CriteriaSingleResource):
		c.ODataType = tripcap.CriteriaSingleResource
	case strings.EqualFold(w.ODataType, tripcap.CriteriaMultipleResource):
		c.ODataType = tripcap.CriteriaMultipleResource
	case otherCriteria[w.ODataType] != "":
		return c, invalid(field+".odata.type", "%s criteria are not something tripcap evaluates; it has metric criteria (%s, %s)",
			otherCriteria[w.ODataType], tripcap.CriteriaSingleResource, tripcap.CriteriaMultipleResource)
	default:
		return c, invalid(field+".odata.type", "%q is not %s or %s", clip(w.ODataType), tripcap.CriteriaSingleResource, tripcap.CriteriaMultipleResource)
	}
	for i, item := range w.AllOf {
		f := fmt.Sprintf("%s.allOf[%d]", field, i)
		var probe struct {
			CriterionType        tripcap.CriterionType `json:"criterionType"`
			SkipMetricValidation *bool                 `json:"skipMetricValidation"`
		}
		if err := json.Unmarshal(item, &probe); err != nil {
			return c, jsonError(f, err)
		}
		var shape any
		switch probe.CriterionType {
		case tripcap.StaticThresholdCriterion, "":
			shape = &tripcap.StaticCriterion{}
		case tripcap.DynamicThresholdCriterion:
			shape = &tripcap.DynamicCriterion{}
			if c.ODataType == tripcap.CriteriaSingleResource {
				return c, invalid(f+".criterionType", "DynamicThresholdCriterion needs odata.type %s (as in Azure)", tripcap.CriteriaMultipleResource)
			}
		default:
			return c, invalid(f+".criterionType", "%q is not StaticThresholdCriterion or DynamicThresholdCriterion", clip(string(probe.CriterionType)))
		}
		if err := decodeStrict(f, item, shape, "skipMetricValidation"); err != nil {
			return c, err
		}
		if probe.SkipMetricValidation != nil && *probe.SkipMetricValidation {
			return c, invalid(f+".skipMetricValidation", "tripcap's hosts have a fixed set of metrics, so a rule on one not yet emitted cannot exist; leave it false")
		}
		var cr tripcap.Criterion
		if err := json.Unmarshal(item, &cr); err != nil {
			return c, jsonError(f, err)
		}
		c.AllOf = append(c.AllOf, cr)
	}
	return c, nil
}

// resolveAction turns an action's actionGroupId (an actionGroups resource
// id) into the tripcap id of that group; the error names field.
type resolveAction func(field, resourceID string) (string, error)

// checkGlobal refuses a location other than Azure's "global" of rules and groups.
func checkGlobal(field, location, what string) error {
	if location == "" {
		return invalid(field, "required: %q", alertLocation)
	}
	if !strings.EqualFold(location, alertLocation) {
		return invalid(field, "%q: %s are global in Azure and in tripcap; give %q", clip(location), what, alertLocation)
	}
	return nil
}

// checkNoIdentity refuses a managed identity: tripcap acts as itself.
func checkNoIdentity(field string, raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var id map[string]any
	if err := json.Unmarshal(raw, &id); err != nil {
		return jsonError(field, err)
	}
	if t, _ := id["type"].(string); len(id) <= 1 && (t == "" || strings.EqualFold(t, "None")) {
		return nil
	}
	return invalid(field, "tripcap delivers as the server, with no managed identity; leave it out (or type None)")
}

// alertRule translates a metric alert resource PUT at sub/group/name into a
// tripcap rule; actions resolve through resolve.
func alertRule(in *metricAlertResource, sub, group, name string, resolve resolveAction) (*tripcap.AlertRule, error) {
	if err := checkGlobal("location", in.Location, "metric alert rules"); err != nil {
		return nil, err
	}
	if err := checkNoIdentity("identity", in.Identity); err != nil {
		return nil, err
	}
	if in.Properties == nil {
		return nil, invalid("properties", "required")
	}
	r := &tripcap.AlertRule{Name: name, AzurePlacement: tripcap.AzurePlacement{SubscriptionID: sub, ResourceGroup: group, Tags: maps.Clone(in.Tags)}}
	if r.Tags == nil {
		// Not nil: a PUT replaces the tags, so none given clears them.
		r.Tags = map[string]string{}
	}
	if err := in.Properties.apply(r, resolve); err != nil {
		return nil, err
	}
	return r, nil
}

// apply sets r from the properties present; the refusals name the property.
func (p *metricAlertProperties) apply(r *tripcap.AlertRule, resolve resolveAction) error {
	const pre = "properties"
	if p.Description != nil {
		r.Description = *p.Description
	}
	if p.Severity != nil {
		r.Severity = new(*p.Severity)
	}
	if p.Enabled != nil {
		r.Enabled = new(*p.Enabled)
	}
	if p.AutoMitigate != nil {
		r.AutoMitigate = new(*p.AutoMitigate)
	}
	if p.Scopes != nil {
		r.Scopes = p.Scopes
	}
	if p.EvaluationFrequency != "" {
		r.EvaluationFrequency = p.EvaluationFrequency
	}
	if p.WindowSize != "" {
		r.WindowSize = p.WindowSize
	}
	if p.TargetResourceType != "" && !strings.EqualFold(p.TargetResourceType, vmResourceType) {
		return invalid(pre+".targetResourceType", "%q: tripcap's rules watch hosts, which are %s", clip(p.TargetResourceType), vmResourceType)
	}
	if p.TargetResourceRegion != "" {
		r.TargetResourceRegion = p.TargetResourceRegion
	}
	if len(p.CustomProperties) > 0 {
		return invalid(pre+".customProperties", "not kept by tripcap; give the properties as actions[].webHookProperties, which its payloads carry")
	}
	if len(p.ActionProperties) > 0 {
		return invalid(pre+".actionProperties", "not kept by tripcap; give the properties as actions[].webHookProperties")
	}
	if len(p.ResolveConfiguration) > 0 && string(p.ResolveConfiguration) != "null" {
		return invalid(pre+".resolveConfiguration", "applies to PromQL criteria, which tripcap does not evaluate; use autoMitigate")
	}
	if p.Criteria != nil {
		c, err := decodeCriteria(pre+".criteria", p.Criteria)
		if err != nil {
			return err
		}
		r.Criteria = c
	}
	if p.Actions != nil {
		r.Actions = make([]tripcap.Action, len(p.Actions))
		for i, a := range p.Actions {
			f := fmt.Sprintf("%s.actions[%d].actionGroupId", pre, i)
			if a.ActionGroupID == "" {
				return invalid(f, "required")
			}
			id, err := resolve(f, a.ActionGroupID)
			if err != nil {
				return err
			}
			r.Actions[i] = tripcap.Action{ActionGroupID: id, WebHookProperties: maps.Clone(a.WebHookProperties)}
		}
	}
	return nil
}

// checkRequired refuses a PUT without the properties Azure requires, so a
// rule that works here works in Azure too.
func (p *metricAlertProperties) checkRequired() error {
	switch {
	case p.Severity == nil:
		return invalid("properties.severity", "required (0 to 4)")
	case p.Enabled == nil:
		return invalid("properties.enabled", "required")
	case p.Scopes == nil:
		return invalid("properties.scopes", "required")
	case p.EvaluationFrequency == "":
		return invalid("properties.evaluationFrequency", "required (an ISO 8601 duration such as PT1M)")
	case p.Criteria == nil:
		return invalid("properties.criteria", "required")
	}
	return nil
}

// groupRef gives the actionGroups resource id of a tripcap action group id.
type groupRef func(id string) string

// metricAlertOf is the resource of rule r, filed at sub/group.
func metricAlertOf(r *tripcap.AlertRule, sub, group string, ref groupRef) *metricAlertResource {
	p := &metricAlertProperties{
		Description: new(r.Description), Severity: new(r.SeverityLevel()), Enabled: new(r.IsEnabled()),
		Scopes: r.Scopes, EvaluationFrequency: r.EvaluationFrequency, WindowSize: r.WindowSize,
		TargetResourceRegion: r.TargetResourceRegion, AutoMitigate: new(r.Mitigates()),
		Actions: []tripcap.Action{},
	}
	if p.Scopes == nil {
		p.Scopes = []tripcap.Scope{}
	}
	if r.Criteria.ODataType == tripcap.CriteriaMultipleResource || r.TargetResourceRegion != "" {
		p.TargetResourceType = vmResourceType
	}
	if !r.UpdatedAt.IsZero() {
		p.LastUpdatedTime = new(r.UpdatedAt.UTC())
	}
	p.IsMigrated = new(false)
	p.Criteria, _ = json.Marshal(azureCriteria(r.Criteria))
	for _, a := range r.Actions {
		wp := a.WebHookProperties
		if wp == nil {
			wp = map[string]string{}
		}
		p.Actions = append(p.Actions, tripcap.Action{ActionGroupID: ref(a.ActionGroupID), WebHookProperties: wp})
	}
	return envelope(sub, group, typeMetricAlerts, r.Name, alertLocation, r.Tags, p)
}

// azureCriteria is c with each metric named as Azure names it ("Network
// Out Total"), whichever of its names the rule was written with.
func azureCriteria(c tripcap.Criteria) tripcap.Criteria {
	out := tripcap.Criteria{ODataType: c.ODataType, AllOf: make([]tripcap.Criterion, len(c.AllOf))}
	if out.ODataType == "" {
		out.ODataType = tripcap.CriteriaMultipleResource
	}
	for i, cr := range c.AllOf {
		switch {
		case cr.Static != nil:
			s := *cr.Static
			s.MetricName = azureMetricName(s.MetricName)
			out.AllOf[i].Static = &s
		case cr.Dynamic != nil:
			d := *cr.Dynamic
			d.MetricName = azureMetricName(d.MetricName)
			out.AllOf[i].Dynamic = &d
		}
	}
	return out
}

// azureMetricName is the Azure name of a metric given by any of its names.
func azureMetricName(name string) string {
	if m, err := tripcap.ParseMetric("", name); err == nil {
		if d, ok := m.Definition(); ok {
			return d.DisplayName
		}
	}
	return name
}

// envelope is the resource typ/name filed at sub/group, with its properties.
func envelope[P any](sub, group, typ, name, location string, tags map[string]string, p *P) *resource[P] {
	return &resource[P]{ID: insightsID(sub, group, typ, name), Name: name, Type: insightsNamespace + "/" + typ,
		Location: location, Tags: tags, Properties: p}
}

// insightsID is the resource id of a Microsoft.Insights resource.
func insightsID(sub, group, typ, name string) string {
	return "/subscriptions/" + sub + "/resourceGroups/" + group + "/providers/" + insightsNamespace + "/" + typ + "/" + name
}

// clip shortens user input quoted back in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
