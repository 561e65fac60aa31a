package arm

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/monitor/armmonitor"
	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/metricstore"
)

const (
	insSub = "11111111-2222-3333-4444-555555555555"
	insRG  = "monitoring"
)

var insGroupID = "/subscriptions/" + insSub + "/resourceGroups/" + insRG + "/providers/microsoft.insights/actionGroups/capture"

// resolveTest resolves the one action group the tests use.
func resolveTest(field, id string) (string, error) {
	if rid, err := ParseResourceID(field, id); err == nil && rid.Is(insightsNamespace, typeActionGroups) && strings.EqualFold(rid.Name(), "capture") {
		return "01hzzzzzzzzzzzzzzzzzzzzzzz", nil
	}
	return "", invalid(field, "no action group %q", id)
}

// sdkBody is what the SDK sends for v.
func sdkBody(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// seedAlert is the current seed's rule as a user writes it with armmonitor.
func seedAlert() armmonitor.MetricAlertResource {
	return armmonitor.MetricAlertResource{
		Location: to.Ptr("global"),
		Tags:     map[string]*string{"owner": to.Ptr("netops")},
		Properties: &armmonitor.MetricAlertProperties{
			Description:         to.Ptr("Network Out Total above 3"),
			Severity:            to.Ptr[int32](2),
			Enabled:             to.Ptr(true),
			Scopes:              []*string{to.Ptr(tripcap.VMResourceID(insSub, "web", "vm1"))},
			EvaluationFrequency: to.Ptr("PT1M"),
			WindowSize:          to.Ptr("PT5M"),
			AutoMitigate:        to.Ptr(false),
			Criteria: &armmonitor.MetricAlertSingleResourceMultipleMetricCriteria{
				AllOf: []*armmonitor.MetricCriteria{{
					Name: to.Ptr("Metric1"), MetricName: to.Ptr("Network Out Total"), MetricNamespace: to.Ptr("Microsoft.Compute/virtualMachines"),
					TimeAggregation: to.Ptr(armmonitor.AggregationTypeEnumAverage), Operator: to.Ptr(armmonitor.OperatorGreaterThan), Threshold: to.Ptr(3.0),
				}},
			},
			Actions: []*armmonitor.MetricAlertAction{{ActionGroupID: to.Ptr(insGroupID), WebHookProperties: map[string]*string{"capture": to.Ptr("30")}}},
		},
	}
}

func decodeAlert(t *testing.T, body []byte) (*tripcap.AlertRule, error) {
	t.Helper()
	var in metricAlertResource
	if err := decodeStrict("", body, &in); err != nil {
		return nil, err
	}
	if in.Properties != nil {
		if err := in.Properties.checkRequired(); err != nil {
			return nil, err
		}
	}
	r, err := alertRule(&in, insSub, insRG, "seed", resolveTest)
	if err != nil {
		return nil, err
	}
	r.ApplyDefaults()
	return r, withPrefix("properties", r.Validate())
}

func TestMetricAlertFromSDKSeedRule(t *testing.T) {
	r, err := decodeAlert(t, sdkBody(t, seedAlert()))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "seed" || r.SubscriptionID != insSub || r.ResourceGroup != insRG || r.Tags["owner"] != "netops" {
		t.Errorf("placement: %+v", r.AzurePlacement)
	}
	if r.SeverityLevel() != 2 || !r.IsEnabled() || r.Mitigates() || r.EvaluationFrequency != "PT1M" || r.WindowSize != "PT5M" {
		t.Errorf("settings: %+v", r)
	}
	if len(r.Scopes) != 1 || string(r.Scopes[0]) != tripcap.VMResourceID(insSub, "web", "vm1") {
		t.Errorf("scopes: %v", r.Scopes)
	}
	if r.Criteria.ODataType != tripcap.CriteriaSingleResource || len(r.Criteria.AllOf) != 1 {
		t.Fatalf("criteria: %+v", r.Criteria)
	}
	s := r.Criteria.AllOf[0].Static
	if s == nil || s.Metric() != tripcap.MetricNetworkOutBytes || s.Operator != tripcap.OperatorGreaterThan || s.Threshold != 3 || s.TimeAggregation != tripcap.AggregationAverage {
		t.Errorf("criterion: %+v", s)
	}
	if len(r.Actions) != 1 || r.Actions[0].ActionGroupID != "01hzzzzzzzzzzzzzzzzzzzzzzz" || r.Actions[0].WebHookProperties["capture"] != "30" {
		t.Errorf("actions: %+v", r.Actions)
	}
}

func TestMetricAlertDynamicRoundTripThroughSDK(t *testing.T) {
	in := seedAlert()
	ignore := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	in.Properties.Scopes = []*string{to.Ptr("/subscriptions/" + insSub + "/resourceGroups/web")}
	in.Properties.TargetResourceType = to.Ptr("Microsoft.Compute/virtualMachines")
	in.Properties.TargetResourceRegion = to.Ptr("westeurope")
	in.Properties.Criteria = &armmonitor.MetricAlertMultipleResourceMultipleMetricCriteria{
		AllOf: []armmonitor.MultiMetricCriteriaClassification{
			&armmonitor.DynamicMetricCriteria{
				Name: to.Ptr("dyn"), MetricName: to.Ptr("Inbound Flows"), TimeAggregation: to.Ptr(armmonitor.AggregationTypeEnumAverage),
				Operator: to.Ptr(armmonitor.DynamicThresholdOperatorGreaterOrLessThan), AlertSensitivity: to.Ptr(armmonitor.DynamicThresholdSensitivityHigh),
				FailingPeriods:   &armmonitor.DynamicThresholdFailingPeriods{NumberOfEvaluationPeriods: to.Ptr[float32](4), MinFailingPeriodsToAlert: to.Ptr[float32](3)},
				IgnoreDataBefore: &ignore,
			},
			&armmonitor.MetricCriteria{
				Name: to.Ptr("static"), MetricName: to.Ptr("network_in_bytes"), TimeAggregation: to.Ptr(armmonitor.AggregationTypeEnumTotal),
				Operator: to.Ptr(armmonitor.OperatorGreaterThanOrEqual), Threshold: to.Ptr(1e6),
				Dimensions: []*armmonitor.MetricDimension{{Name: to.Ptr("interface"), Operator: to.Ptr("Include"), Values: []*string{to.Ptr("eth0")}}},
			},
		},
	}
	r, err := decodeAlert(t, sdkBody(t, in))
	if err != nil {
		t.Fatal(err)
	}
	if r.TargetResourceRegion != "westeurope" {
		t.Errorf("targetResourceRegion: %q", r.TargetResourceRegion)
	}
	d := r.Criteria.AllOf[0].Dynamic
	if d == nil || d.AlertSensitivity != tripcap.SensitivityHigh || d.FailingPeriods != (tripcap.FailingPeriods{NumberOfEvaluationPeriods: 4, MinFailingPeriodsToAlert: 3}) ||
		d.IgnoreDataBefore == nil || !d.IgnoreDataBefore.Equal(ignore) || d.Operator != tripcap.OperatorGreaterOrLessThan {
		t.Errorf("dynamic: %+v", d)
	}
	r.UpdatedAt = time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)

	// Back out, read by the SDK's own models.
	out := metricAlertOf(r, insSub, insRG, func(string) string { return insGroupID })
	var got armmonitor.MetricAlertResource
	if err := json.Unmarshal(sdkBody(t, out), &got); err != nil {
		t.Fatal(err)
	}
	if *got.ID != insightsID(insSub, insRG, typeMetricAlerts, "seed") || *got.Type != "Microsoft.Insights/metricAlerts" || *got.Location != "global" {
		t.Errorf("envelope: %s %s %s", *got.ID, *got.Type, *got.Location)
	}
	p := got.Properties
	if *p.TargetResourceRegion != "westeurope" || *p.TargetResourceType != vmResourceType || !p.LastUpdatedTime.Equal(r.UpdatedAt) {
		t.Errorf("properties: %+v", p)
	}
	multi, ok := p.Criteria.(*armmonitor.MetricAlertMultipleResourceMultipleMetricCriteria)
	if !ok || len(multi.AllOf) != 2 {
		t.Fatalf("criteria: %T %+v", p.Criteria, p.Criteria)
	}
	dyn, ok := multi.AllOf[0].(*armmonitor.DynamicMetricCriteria)
	if !ok || *dyn.AlertSensitivity != armmonitor.DynamicThresholdSensitivityHigh || *dyn.FailingPeriods.MinFailingPeriodsToAlert != 3 || !dyn.IgnoreDataBefore.Equal(ignore) {
		t.Errorf("dynamic back: %+v", multi.AllOf[0])
	}
	st, ok := multi.AllOf[1].(*armmonitor.MetricCriteria)
	if !ok || *st.MetricName != "Network In Total" || *st.Threshold != 1e6 || *st.Dimensions[0].Values[0] != "eth0" || len(st.AdditionalProperties) != 0 {
		t.Errorf("static back: %+v", multi.AllOf[1])
	}
	if len(p.Actions) != 1 || *p.Actions[0].ActionGroupID != insGroupID || *p.Actions[0].WebHookProperties["capture"] != "30" {
		t.Errorf("actions back: %+v", p.Actions)
	}
	if *got.Tags["owner"] != "netops" {
		t.Errorf("tags back: %v", got.Tags)
	}
}

func TestMetricAlertRefusesWhatTripcapCannotHonour(t *testing.T) {
	base := string(sdkBody(t, seedAlert()))
	for _, c := range []struct {
		name, from, to, field string
	}{
		{"unknown property", `"enabled":true`, `"enabled":true,"frobnicate":1`, "properties.frobnicate"},
		{"unknown top level", `"location":"global"`, `"location":"global","kind":"x"`, "kind"},
		{"unknown in criterion", `"threshold":3`, `"threshold":3,"alertSensitivity":"High"`, "properties.criteria.allOf[0].alertSensitivity"},
		{"unknown in action", `"webHookProperties"`, `"actionGroupID":"x","webHookProperties"`, "properties.actions[0].actionGroupID"},
		{"regional location", `"location":"global"`, `"location":"westeurope"`, "location"},
		{"managed identity", `"location":"global"`, `"location":"global","identity":{"type":"SystemAssigned"}`, "identity"},
		{"customProperties", `"enabled":true`, `"enabled":true,"customProperties":{"a":"b"}`, "properties.customProperties"},
		{"actionProperties", `"enabled":true`, `"enabled":true,"actionProperties":{"a":"b"}`, "properties.actionProperties"},
		{"resolveConfiguration", `"enabled":true`, `"enabled":true,"resolveConfiguration":{"autoResolved":true}`, "properties.resolveConfiguration"},
		{"other resource type", `"enabled":true`, `"enabled":true,"targetResourceType":"Microsoft.Storage/storageAccounts"`, "properties.targetResourceType"},
		{"skipMetricValidation", `"threshold":3`, `"threshold":3,"skipMetricValidation":true`, "properties.criteria.allOf[0].skipMetricValidation"},
		{"webtest criteria", `"odata.type":"Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"`, `"odata.type":"Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria"`, "properties.criteria.odata.type"},
		{"severity as text", `"severity":2`, `"severity":"Sev2"`, "properties.severity"},
		{"severity out of range", `"severity":2`, `"severity":7`, "properties.severity"},
		{"unknown metric", `"metricName":"Network Out Total"`, `"metricName":"Percentage CPU"`, "properties.criteria.allOf[0].metricName"},
		{"bad operator", `"operator":"GreaterThan"`, `"operator":"Above"`, "properties.criteria.allOf[0].operator"},
		{"group not a resource id", insGroupID, "capture", "properties.actions[0].actionGroupId"},
		{"missing severity", `"severity":2,`, ``, "properties.severity"},
		{"missing criteria", `"criteria":{`, `"x":{`, "properties.x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(base, c.from) {
				t.Fatalf("the SDK's body has no %s: %s", c.from, base)
			}
			_, err := decodeAlert(t, []byte(strings.Replace(base, c.from, c.to, 1)))
			if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.HasPrefix(tripcap.ErrorMessage(err), c.field+":") {
				t.Fatalf("want EINVALID naming %s, got %v", c.field, err)
			}
		})
	}
	// Single-resource criteria take static thresholds only, as in Azure.
	dyn := `{"location":"global","properties":{"severity":3,"enabled":true,"scopes":["*"],"evaluationFrequency":"PT1M","criteria":{"odata.type":"` +
		tripcap.CriteriaSingleResource + `","allOf":[{"criterionType":"DynamicThresholdCriterion","name":"d","metricName":"Inbound Flows","timeAggregation":"Average","operator":"GreaterThan","alertSensitivity":"Low","failingPeriods":{"numberOfEvaluationPeriods":4,"minFailingPeriodsToAlert":4}}]}}}`
	if _, err := decodeAlert(t, []byte(dyn)); !strings.HasPrefix(tripcap.ErrorMessage(err), "properties.criteria.allOf[0].criterionType:") {
		t.Errorf("dynamic in single-resource criteria: %v", err)
	}
	// Fractional failing periods are not whole periods.
	frac := strings.Replace(strings.Replace(dyn, tripcap.CriteriaSingleResource, tripcap.CriteriaMultipleResource, 1), `"minFailingPeriodsToAlert":4`, `"minFailingPeriodsToAlert":3.5`, 1)
	if _, err := decodeAlert(t, []byte(frac)); !strings.HasPrefix(tripcap.ErrorMessage(err), "properties.criteria.allOf[0].failingPeriods.minFailingPeriodsToAlert:") {
		t.Errorf("fractional failing periods: %v", err)
	}
}

func TestMetricAlertReadOnlyPropertiesSentBackAreAccepted(t *testing.T) {
	r, err := decodeAlert(t, sdkBody(t, seedAlert()))
	if err != nil {
		t.Fatal(err)
	}
	r.UpdatedAt = time.Now()
	body := sdkBody(t, metricAlertOf(r, insSub, insRG, func(string) string { return insGroupID }))
	// A client that GETs, changes one thing and PUTs sends id, name, type,
	// lastUpdatedTime and isMigrated back.
	if _, err := decodeAlert(t, body); err != nil {
		t.Fatalf("a GET sent back: %v\n%s", err, body)
	}
}

// insEnv knows one responder, "capture-vm", on https://tripcap.test:8443.
var insEnv = functionEnv{
	local: func(u *url.URL) bool { return strings.EqualFold(u.Host, "tripcap.test:8443") },
	responder: func(name string) (*tripcap.Responder, error) {
		if strings.EqualFold(name, "capture-vm") {
			return &tripcap.Responder{ID: "01hrrrrrrrrrrrrrrrrrrrrrrr", Name: "capture-vm"}, nil
		}
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no responder %q", name)
	},
}

func sdkGroup() armmonitor.ActionGroupResource {
	return armmonitor.ActionGroupResource{
		Location: to.Ptr("Global"),
		Properties: &armmonitor.ActionGroup{
			GroupShortName: to.Ptr("capture"),
			Enabled:        to.Ptr(true),
			EmailReceivers: []*armmonitor.EmailReceiver{{Name: to.Ptr("ops"), EmailAddress: to.Ptr("ops@example.com"), UseCommonAlertSchema: to.Ptr(true)}},
			WebhookReceivers: []*armmonitor.WebhookReceiver{{Name: to.Ptr("hook"), ServiceURI: to.Ptr("https://hooks.example.com/secret/path"),
				UseCommonAlertSchema: to.Ptr(false), UseAADAuth: to.Ptr(false)}},
			AzureFunctionReceivers: []*armmonitor.AzureFunctionReceiver{{Name: to.Ptr("fn"),
				FunctionAppResourceID: to.Ptr("/subscriptions/" + insSub + "/resourceGroups/" + insRG + "/providers/Microsoft.Web/sites/capture-app"),
				FunctionName:          to.Ptr("capture-vm"), HTTPTriggerURL: to.Ptr("https://tripcap.test:8443/api/functions/capture-vm?code=k3y"),
				UseCommonAlertSchema: to.Ptr(true)}},
		},
	}
}

func decodeGroup(t *testing.T, body []byte) (*tripcap.ActionGroup, error) {
	t.Helper()
	var in actionGroupResource
	if err := decodeStrict("", body, &in); err != nil {
		return nil, err
	}
	g, err := actionGroup(&in, insSub, insRG, "capture", insEnv)
	if err != nil {
		return nil, err
	}
	return g, withPrefix("properties", g.Validate())
}

func TestActionGroupFromSDKWithResponderFunction(t *testing.T) {
	g, err := decodeGroup(t, sdkBody(t, sdkGroup()))
	if err != nil {
		t.Fatal(err)
	}
	if len(g.EmailReceivers) != 1 || g.EmailReceivers[0] != (tripcap.EmailReceiver{Name: "ops", EmailAddress: "ops@example.com", UseCommonAlertSchema: true}) {
		t.Errorf("email: %+v", g.EmailReceivers)
	}
	if len(g.WebhookReceivers) != 1 || g.WebhookReceivers[0].ServiceURI != "https://hooks.example.com/secret/path" {
		t.Errorf("webhook: %+v", g.WebhookReceivers)
	}
	want := tripcap.ResponderReceiver{Name: "fn", ResponderID: "01hrrrrrrrrrrrrrrrrrrrrrrr",
		FunctionAppResourceID: "/subscriptions/" + insSub + "/resourceGroups/" + insRG + "/providers/Microsoft.Web/sites/capture-app", UseCommonAlertSchema: true}
	if len(g.ResponderReceivers) != 1 || g.ResponderReceivers[0] != want {
		t.Errorf("responder: %+v", g.ResponderReceivers)
	}

	out := actionGroupOf(g.Redacted(), insSub, insRG, "https://tripcap.test:8443", func(string) string { return "capture-vm" })
	var got armmonitor.ActionGroupResource
	if err := json.Unmarshal(sdkBody(t, out), &got); err != nil {
		t.Fatal(err)
	}
	p := got.Properties
	if *got.Location != "Global" || *p.GroupShortName != "capture" || !*p.Enabled {
		t.Errorf("group back: %+v", got)
	}
	if s := *p.WebhookReceivers[0].ServiceURI; strings.Contains(s, "secret") {
		t.Errorf("the answer shows the webhook's secret path: %s", s)
	}
	fn := p.AzureFunctionReceivers[0]
	if *fn.HTTPTriggerURL != "https://tripcap.test:8443/api/functions/capture-vm" || *fn.FunctionName != "capture-vm" || *fn.FunctionAppResourceID != want.FunctionAppResourceID {
		t.Errorf("function back: %s %s %s", *fn.HTTPTriggerURL, *fn.FunctionName, *fn.FunctionAppResourceID)
	}
	if *p.EmailReceivers[0].Status != armmonitor.ReceiverStatusEnabled {
		t.Errorf("email status: %v", *p.EmailReceivers[0].Status)
	}
	// And what the SDK read, sent back, is accepted.
	if _, err := decodeGroup(t, sdkBody(t, got)); err != nil {
		t.Errorf("a GET sent back: %v", err)
	}
}

func TestActionGroupFunctionElsewhereIsAWebhook(t *testing.T) {
	in := sdkGroup()
	in.Properties.AzureFunctionReceivers[0].HTTPTriggerURL = to.Ptr("https://capture-app.azurewebsites.net/api/AlertPacketCapture?code=k3y")
	in.Properties.AzureFunctionReceivers[0].FunctionName = to.Ptr("AlertPacketCapture")
	g, err := decodeGroup(t, sdkBody(t, in))
	if err != nil {
		t.Fatal(err)
	}
	want := tripcap.WebhookReceiver{Name: "fn", ServiceURI: "https://capture-app.azurewebsites.net/api/AlertPacketCapture?code=k3y", UseCommonAlertSchema: true,
		FunctionName: "AlertPacketCapture", FunctionAppResourceID: "/subscriptions/" + insSub + "/resourceGroups/" + insRG + "/providers/Microsoft.Web/sites/capture-app"}
	if len(g.ResponderReceivers) != 0 || len(g.WebhookReceivers) != 2 || g.WebhookReceivers[1] != want {
		t.Fatalf("receivers: %+v %+v", g.WebhookReceivers, g.ResponderReceivers)
	}
	var got armmonitor.ActionGroupResource
	if err := json.Unmarshal(sdkBody(t, actionGroupOf(g.Redacted(), insSub, insRG, "https://tripcap.test:8443", nil)), &got); err != nil {
		t.Fatal(err)
	}
	p := got.Properties
	if len(p.WebhookReceivers) != 1 || len(p.AzureFunctionReceivers) != 1 {
		t.Fatalf("answer: %d webhooks, %d functions", len(p.WebhookReceivers), len(p.AzureFunctionReceivers))
	}
	fn := p.AzureFunctionReceivers[0]
	if *fn.FunctionName != "AlertPacketCapture" || *fn.FunctionAppResourceID != want.FunctionAppResourceID || !*fn.UseCommonAlertSchema ||
		strings.Contains(*fn.HTTPTriggerURL, "k3y") || !strings.HasPrefix(*fn.HTTPTriggerURL, "https://capture-app.azurewebsites.net/") {
		t.Errorf("function back: %s %s %s", *fn.Name, *fn.FunctionName, *fn.HTTPTriggerURL)
	}
}

func TestActionGroupRefusals(t *testing.T) {
	for _, c := range []struct {
		name  string
		edit  func(g *armmonitor.ActionGroupResource)
		field string
	}{
		{"sms", func(g *armmonitor.ActionGroupResource) {
			g.Properties.SmsReceivers = []*armmonitor.SmsReceiver{{Name: to.Ptr("s"), CountryCode: to.Ptr("1"), PhoneNumber: to.Ptr("5550100")}}
		}, "properties.smsReceivers"},
		{"logic app", func(g *armmonitor.ActionGroupResource) {
			g.Properties.LogicAppReceivers = []*armmonitor.LogicAppReceiver{{Name: to.Ptr("l"), ResourceID: to.Ptr("x"), CallbackURL: to.Ptr("https://x")}}
		}, "properties.logicAppReceivers"},
		{"aad webhook", func(g *armmonitor.ActionGroupResource) { g.Properties.WebhookReceivers[0].UseAADAuth = to.Ptr(true) }, "properties.webhookReceivers[0].useAadAuth"},
		{"function elsewhere without its name", func(g *armmonitor.ActionGroupResource) {
			g.Properties.AzureFunctionReceivers[0].HTTPTriggerURL = to.Ptr("https://capture-app.azurewebsites.net/api/capture-vm?code=k")
			g.Properties.AzureFunctionReceivers[0].FunctionName = nil
		}, "properties.azureFunctionReceivers[0].functionName"},
		{"function not a URL", func(g *armmonitor.ActionGroupResource) {
			g.Properties.AzureFunctionReceivers[0].HTTPTriggerURL = to.Ptr("capture-app/api/capture-vm?code=k")
		}, "properties.azureFunctionReceivers[0].httpTriggerUrl"},

		{"unknown responder", func(g *armmonitor.ActionGroupResource) {
			g.Properties.AzureFunctionReceivers[0].HTTPTriggerURL = to.Ptr("https://tripcap.test:8443/api/functions/nope")
		}, "properties.azureFunctionReceivers[0].httpTriggerUrl"},
		{"function name mismatch", func(g *armmonitor.ActionGroupResource) {
			g.Properties.AzureFunctionReceivers[0].FunctionName = to.Ptr("other")
		},
			"properties.azureFunctionReceivers[0].functionName"},
		{"function app not a site", func(g *armmonitor.ActionGroupResource) {
			g.Properties.AzureFunctionReceivers[0].FunctionAppResourceID = to.Ptr("capture-app")
		}, "properties.azureFunctionReceivers[0].functionAppResourceId"},
		{"short name missing", func(g *armmonitor.ActionGroupResource) { g.Properties.GroupShortName = nil }, "properties.groupShortName"},
		{"short name too long", func(g *armmonitor.ActionGroupResource) { g.Properties.GroupShortName = to.Ptr("thirteenchars") }, "properties.groupShortName"},
		{"bad email", func(g *armmonitor.ActionGroupResource) {
			g.Properties.EmailReceivers[0].EmailAddress = to.Ptr("Ops <ops@example.com>")
		},
			"properties.emailReceivers[0].emailAddress"},
		{"regional", func(g *armmonitor.ActionGroupResource) { g.Location = to.Ptr("swedencentral") }, "location"},
		{"identity", func(g *armmonitor.ActionGroupResource) {
			g.Identity = &armmonitor.ManagedServiceIdentity{Type: to.Ptr(armmonitor.ManagedServiceIdentityTypeSystemAssigned)}
		}, "identity"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := sdkGroup()
			c.edit(&g)
			_, err := decodeGroup(t, sdkBody(t, g))
			if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.HasPrefix(tripcap.ErrorMessage(err), c.field+":") {
				t.Fatalf("want EINVALID naming %s, got %v", c.field, err)
			}
			if strings.Contains(tripcap.ErrorMessage(err), "code=k") {
				t.Errorf("the error shows the trigger URL's key: %v", err)
			}
		})
	}
	// tripcap keeps a function's name on a webhook; a webhook may not say one.
	body := strings.Replace(string(sdkBody(t, sdkGroup())), `"name":"hook"`, `"name":"hook","functionName":"f"`, 1)
	if _, err := decodeGroup(t, []byte(body)); !strings.HasPrefix(tripcap.ErrorMessage(err), "properties.webhookReceivers[0].functionName:") {
		t.Errorf("a webhook with a function's name: %v", err)
	}
}

func TestMetricsQueryParsing(t *testing.T) {
	now := time.Date(2026, 12, 2, 1, 30, 0, 0, time.UTC)
	q, err := parseMetricsQuery(url.Values{
		"metricnames": {"Network Out Total,Inbound Flows"}, "timespan": {"2026-12-02T00:30:00Z/2026-12-02T01:30:00Z"},
		"interval": {"PT5M"}, "aggregation": {"average,Total"}, "$filter": {"interface eq 'eth0' or Interface eq 'eth1'"},
		"top": {"3"}, "orderby": {"sum desc"}, "api-version": {"2024-02-01"}, "metricnamespace": {"microsoft.compute/virtualmachines"},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Metrics) != 2 || q.Metrics[0] != tripcap.MetricNetworkOutBytes || q.Metrics[1] != tripcap.MetricInboundFlows {
		t.Errorf("metrics: %v", q.Metrics)
	}
	if len(q.Aggregations) != 2 || q.Aggregations[0] != tripcap.AggregationAverage || q.Aggregations[1] != tripcap.AggregationTotal {
		t.Errorf("aggregations: %v", q.Aggregations)
	}
	if !q.Start.Equal(now.Add(-time.Hour)) || !q.End.Equal(now) || q.Interval != 5*time.Minute {
		t.Errorf("timespan: %s %s %s", q.Start, q.End, q.Interval)
	}
	if q.SplitAll || len(q.Split) != 2 || q.Split[1] != "eth1" || q.Top != 3 || q.OrderBy != tripcap.AggregationTotal || !q.OrderDesc {
		t.Errorf("split: %+v", q)
	}
	for _, c := range []struct {
		span       string
		start, end time.Time
	}{
		{"", now.Add(-time.Hour), now},
		{"PT6H", now.Add(-6 * time.Hour), now},
		{"2026-12-01T00:00:00Z/PT2H", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)},
		{"PT30M/2026-12-01T01:00:00+01:00", time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
	} {
		s, e, err := parseTimespan("timespan", c.span, now)
		if err != nil || !s.Equal(c.start) || !e.Equal(c.end) {
			t.Errorf("timespan %q: %s %s %v", c.span, s, e, err)
		}
	}
	for _, c := range []struct {
		q     url.Values
		field string
	}{
		{url.Values{}, "metricnames"},
		{url.Values{"metricnames": {"Percentage CPU"}}, "metricnames"},
		{url.Values{"metricnames": {"Network In Total"}, "aggregation": {"p99"}}, "aggregation"},
		{url.Values{"metricnames": {"Network In Total"}, "timespan": {"yesterday"}}, "timespan"},
		{url.Values{"metricnames": {"Network In Total"}, "timespan": {"2026-12-02T01:00:00Z/2026-12-02T00:00:00Z"}}, "timespan"},
		{url.Values{"metricnames": {"Network In Total"}, "interval": {"PT0.5S"}}, "interval"},
		{url.Values{"metricnames": {"Network In Total"}, "$filter": {"VMName eq 'a'"}}, "$filter"},
		{url.Values{"metricnames": {"Network In Total"}, "$filter": {"interface ne 'lo'"}}, "$filter"},
		{url.Values{"metricnames": {"Network In Total"}, "$filter": {"interface eq 'eth0' and interface eq 'x'"}}, "$filter"},
		{url.Values{"metricnames": {"Network In Total"}, "$filter": {"interface eq 'eth0"}}, "$filter"},
		{url.Values{"metricnames": {"Network In Total"}, "top": {"0"}}, "top"},
		{url.Values{"metricnames": {"Network In Total"}, "orderby": {"average sideways"}}, "orderby"},
		{url.Values{"metricnames": {"Network In Total"}, "resultType": {"Everything"}}, "resultType"},
		{url.Values{"metricnames": {"Network In Total"}, "metricnamespace": {"Microsoft.Storage/storageAccounts"}}, "metricnamespace"},
		{url.Values{"metricnames": {"Network In Total"}, "ValidateDimensions": {"false"}}, "ValidateDimensions"},
		{url.Values{"metricnames": {"Network In Total"}, "rollupby": {"interface"}}, "rollupby"},
		{url.Values{"metricnames": {"Network In Total"}, "sampling": {"x"}}, "sampling"},
	} {
		_, err := parseMetricsQuery(c.q, now)
		if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.HasPrefix(tripcap.ErrorMessage(err), c.field+":") {
			t.Errorf("%v: want EINVALID naming %s, got %v", c.q, c.field, err)
		}
	}
}

func TestMetricsAnswerReadBySDK(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	res := func(agg tripcap.Aggregation, vals ...float64) *metricstore.Result {
		r := &metricstore.Result{Aggregation: agg}
		for i, v := range vals {
			p := metricstore.Point{Time: t0.Add(time.Duration(i) * time.Minute)}
			if v >= 0 {
				p.Value, p.Count = v, 60
			}
			r.Points = append(r.Points, p)
		}
		return r
	}
	def, _ := tripcap.MetricNetworkOutBytes.Definition()
	vm := tripcap.VMResourceID(insSub, "web", "vm1")
	series := []seriesResults{
		{Interface: "eth0", Results: map[tripcap.Aggregation]*metricstore.Result{tripcap.AggregationTotal: res(tripcap.AggregationTotal, 10, -1, 30), tripcap.AggregationMaximum: res(tripcap.AggregationMaximum, 1, -1, 3)}},
		{Interface: "eth1", Results: map[tripcap.Aggregation]*metricstore.Result{tripcap.AggregationTotal: res(tripcap.AggregationTotal, 100, 200, 300), tripcap.AggregationMaximum: res(tripcap.AggregationMaximum, 5, 5, 5)}},
	}
	series = orderSeries(series, tripcap.AggregationTotal, true, 10)
	if series[0].Interface != "eth1" {
		t.Errorf("order: %s first", series[0].Interface)
	}
	body := metricsResponse{Timespan: "2026-12-02T01:00:00Z/2026-12-02T01:03:00Z", Interval: "PT1M", Namespace: tripcap.MetricNamespace, ResourceRegion: "westeurope",
		Value: []metricSeries{metricSeriesOf(vm, def, []tripcap.Aggregation{tripcap.AggregationTotal, tripcap.AggregationMaximum}, series, true, false)}}
	var got armmonitor.Response
	if err := json.Unmarshal(sdkBody(t, body), &got); err != nil {
		t.Fatal(err)
	}
	m := got.Value[0]
	if *m.Name.Value != "Network Out Total" || *m.Unit != armmonitor.MetricUnitBytes || *m.ID != vm+"/providers/Microsoft.Insights/metrics/Network Out Total" {
		t.Errorf("metric: %+v", m)
	}
	ts := m.Timeseries[1]
	if *ts.Metadatavalues[0].Name.Value != "interface" || *ts.Metadatavalues[0].Value != "eth0" {
		t.Errorf("metadata: %+v", ts.Metadatavalues[0])
	}
	if len(ts.Data) != 3 || *ts.Data[0].Total != 10 || *ts.Data[0].Maximum != 1 || ts.Data[1].Total != nil || ts.Data[1].Maximum != nil || !ts.Data[1].TimeStamp.Equal(t0.Add(time.Minute)) {
		t.Errorf("data: %+v %+v", ts.Data[0], ts.Data[1])
	}
	if *got.Resourceregion != "westeurope" || *got.Interval != "PT1M" {
		t.Errorf("response: %+v", got)
	}

	var defs armmonitor.MetricDefinitionCollection
	if err := json.Unmarshal(sdkBody(t, map[string]any{"value": metricDefinitionsOf(vm, tripcap.MetricDefinitions(), time.Hour, 24*time.Hour)}), &defs); err != nil {
		t.Fatal(err)
	}
	var sawOut bool
	for _, d := range defs.Value {
		if *d.Name.Value == "Network Out Total" {
			sawOut = true
			if *d.PrimaryAggregationType != armmonitor.AggregationTypeTotal || *d.Dimensions[0].Value != "interface" || *d.MetricAvailabilities[1].TimeGrain != "PT1M" {
				t.Errorf("definition: %+v", d)
			}
		}
	}
	if !sawOut || len(defs.Value) != len(tripcap.MetricDefinitions()) {
		t.Errorf("definitions: %d", len(defs.Value))
	}
}

func FuzzMetricsQuery(f *testing.F) {
	for _, s := range []string{
		"metricnames=Network%20Out%20Total&timespan=PT1H&interval=PT1M&aggregation=Average",
		"metricnames=Inbound%20Flows,Network%20In%20Total&$filter=interface%20eq%20'*'&top=3&orderby=sum%20desc",
		"metricnames=x&timespan=2026-12-01T00:00:00Z/PT2H&interval=FULL&resultType=Metadata",
		"metricnames=network_out_bytes&$filter=interface%20eq%20'a''b'%20or%20interface%20eq%20'c'",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 2, 1, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		req, err := parseMetricsQuery(q, now)
		if err != nil {
			if tripcap.ErrorCode(err) != tripcap.EINVALID {
				t.Fatalf("not EINVALID: %v", err)
			}
			return
		}
		if !req.End.After(req.Start) || len(req.Metrics) == 0 || req.Interval < time.Second || req.Top < 1 {
			t.Fatalf("accepted a query it cannot answer: %+v", req)
		}
	})
}

func FuzzMetricAlertBody(f *testing.F) {
	f.Add([]byte(`{"location":"global","properties":{"severity":3,"enabled":true,"scopes":["*"],"evaluationFrequency":"PT1M","criteria":{"odata.type":"Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria","allOf":[{"criterionType":"StaticThresholdCriterion","name":"m","metricName":"Network Out Total","timeAggregation":"Average","operator":"GreaterThan","threshold":3}]}}}`))
	f.Add([]byte(`{"location":"global","properties":{"criteria":{"odata.type":"Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria","allOf":[{"criterionType":"DynamicThresholdCriterion","alertSensitivity":"Low","failingPeriods":{"numberOfEvaluationPeriods":1e400}}]}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var in metricAlertResource
		if err := decodeStrict("", body, &in); err != nil {
			if tripcap.ErrorCode(err) != tripcap.EINVALID {
				t.Fatalf("not EINVALID: %v", err)
			}
			return
		}
		r, err := alertRule(&in, insSub, insRG, "fuzz", resolveTest)
		if err != nil {
			if tripcap.ErrorCode(err) != tripcap.EINVALID {
				t.Fatalf("not EINVALID: %v", err)
			}
			return
		}
		r.ApplyDefaults()
		_ = r.Validate()
	})
}

func FuzzActionGroupBody(f *testing.F) {
	f.Add([]byte(`{"location":"Global","properties":{"groupShortName":"g","enabled":true,"azureFunctionReceivers":[{"name":"f","functionAppResourceId":"","functionName":"capture-vm","httpTriggerUrl":"https://tripcap.test:8443/api/functions/capture-vm?code=x"}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var in actionGroupResource
		if err := decodeStrict("", body, &in); err != nil {
			if tripcap.ErrorCode(err) != tripcap.EINVALID {
				t.Fatalf("not EINVALID: %v", err)
			}
			return
		}
		g, err := actionGroup(&in, insSub, insRG, "fuzz", insEnv)
		if err != nil {
			if tripcap.ErrorCode(err) != tripcap.EINVALID {
				t.Fatalf("not EINVALID: %v", err)
			}
			return
		}
		_ = g.Validate()
	})
}

func TestMetricsFullIntervalGrain(t *testing.T) {
	at := func(h, m, s int) time.Time { return time.Date(2026, 12, 2, h, m, s, 0, time.UTC) }
	for _, c := range []struct {
		start, end time.Time
		step       time.Duration
	}{
		{at(10, 0, 0), at(12, 0, 0), time.Hour},
		{at(10, 1, 0), at(12, 0, 0), time.Minute},
		{at(10, 0, 30), at(10, 5, 30), time.Second},
	} {
		if step, err := fullStep(c.start, c.end); err != nil || step != c.step {
			t.Errorf("%s–%s: %s %v, want %s", c.start, c.end, step, err, c.step)
		}
	}
	if _, err := fullStep(at(0, 0, 1), at(23, 0, 0)); !strings.HasPrefix(tripcap.ErrorMessage(err), "timespan:") {
		t.Errorf("a long unaligned timespan: %v", err)
	}
	t0 := at(10, 0, 0)
	res := &metricstore.Result{Points: []metricstore.Point{{Time: t0, Value: 2, Count: 10}, {Time: t0.Add(time.Minute)}, {Time: t0.Add(2 * time.Minute), Value: 5, Count: 30}}}
	r := reduced(res, tripcap.AggregationAverage, t0)
	if len(r.Points) != 1 || r.Points[0].Count != 40 || r.Points[0].Value != (2*10+5*30)/40.0 || !r.Points[0].Time.Equal(t0) {
		t.Errorf("reduced average: %+v", r.Points)
	}
	if r := reduced(&metricstore.Result{Points: []metricstore.Point{{Time: t0}}}, tripcap.AggregationTotal, t0); r.Points[0].Count != 0 {
		t.Errorf("no data reduced to a value: %+v", r.Points)
	}
}
