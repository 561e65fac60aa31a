package tripcap

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestISODuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"PT1S", time.Second, "PT1S"},
		{"PT1M", time.Minute, "PT1M"},
		{"PT5M", 5 * time.Minute, "PT5M"},
		{"PT15M", 15 * time.Minute, "PT15M"},
		{"PT1H", time.Hour, "PT1H"},
		{"PT6H", 6 * time.Hour, "PT6H"},
		{"PT24H", 24 * time.Hour, "PT24H"},
		{"P1D", 24 * time.Hour, "PT24H"},
		{"P1DT12H", 36 * time.Hour, "PT36H"},
		{"PT1H30M", 90 * time.Minute, "PT1H30M"},
		{"PT90S", 90 * time.Second, "PT1M30S"},
		{"P1W", 7 * 24 * time.Hour, "PT168H"},
		{"pt5m", 5 * time.Minute, "PT5M"},
		{"PT0S", 0, "PT0S"},
	} {
		got, err := ParseISODuration("windowSize", tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseISODuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		if s := FormatISODuration(got); s != tc.out {
			t.Errorf("FormatISODuration(%v) = %q; want %q", got, s, tc.out)
		}
	}
	for _, bad := range []string{"", "P", "PT", "5M", "PT5", "PTM", "P1M", "P1Y", "PT1.5S", "PT-1S", "PT1M1H", "PT1M1M", "P1DT", "PT1S2", "P400D", "PT9999999999H", "PT1H T1M", "P1T1H"} {
		_, err := ParseISODuration("windowSize", bad)
		if ErrorCode(err) != EINVALID || !strings.HasPrefix(ErrorMessage(err), "windowSize: ") {
			t.Errorf("ParseISODuration(%q) = %v; want EINVALID naming windowSize", bad, err)
		}
	}
}

func validRule() *AlertRule {
	r := &AlertRule{Name: "net-out", Scopes: []Scope{ScopeAll}, Criteria: Criteria{AllOf: []Criterion{{Static: &StaticCriterion{
		MetricCriterion: MetricCriterion{MetricName: "Network Out Total", TimeAggregation: AggregationAverage},
		Operator:        OperatorGreaterThan, Threshold: 3,
	}}}}}
	r.ApplyDefaults()
	return r
}

func TestAlertRuleDefaults(t *testing.T) {
	var r AlertRule
	if err := json.Unmarshal([]byte(`{"name":"x","scopes":["*"],"criteria":{"allOf":[{"metricName":"Network Out Total","timeAggregation":"Total","operator":"GreaterThan","threshold":100}]}}`), &r); err != nil {
		t.Fatal(err)
	}
	r.ApplyDefaults()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.SeverityLevel() != 3 || !r.IsEnabled() || !r.Mitigates() || r.Frequency() != time.Minute || r.Window() != 5*time.Minute {
		t.Fatalf("defaults: %+v", r)
	}
	c := r.Criteria.AllOf[0]
	if c.Static == nil || c.Static.CriterionType != StaticThresholdCriterion || c.Static.MetricNamespace != MetricNamespace || c.Static.Name != "Metric1" {
		t.Fatalf("criterion %+v", c.Static)
	}
	// Severity 0 is kept, not defaulted.
	zero := 0
	r.Severity = &zero
	r.ApplyDefaults()
	if r.SeverityLevel() != 0 {
		t.Fatal("severity 0 overwritten")
	}
	// JSON round trip keeps Azure's names and the criterion type.
	js, _ := json.Marshal(&r)
	for _, k := range []string{`"evaluationFrequency":"PT1M"`, `"windowSize":"PT5M"`, `"autoMitigate":true`, `"criterionType":"StaticThresholdCriterion"`, `"odata.type":"Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria"`, `"threshold":100`} {
		if !strings.Contains(string(js), k) {
			t.Errorf("JSON lacks %s: %s", k, js)
		}
	}
	var back AlertRule
	if err := json.Unmarshal(js, &back); err != nil || back.Criteria.AllOf[0].Static == nil || back.Criteria.AllOf[0].Static.Threshold != 100 {
		t.Fatalf("round trip: %v %+v", err, back)
	}
}

func TestDynamicCriterionJSON(t *testing.T) {
	in := `{"criterionType":"DynamicThresholdCriterion","name":"d","metricName":"Inbound Flows","timeAggregation":"Average","operator":"GreaterOrLessThan","alertSensitivity":"High","failingPeriods":{"numberOfEvaluationPeriods":4,"minFailingPeriodsToAlert":3},"ignoreDataBefore":"2026-01-01T00:00:00Z"}`
	var c Criterion
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	d := c.Dynamic
	if d == nil || d.AlertSensitivity != SensitivityHigh || d.FailingPeriods.MinFailingPeriodsToAlert != 3 || d.IgnoreDataBefore == nil || d.Operator != OperatorGreaterOrLessThan {
		t.Fatalf("%+v", d)
	}
	r := validRule()
	r.Criteria.AllOf = []Criterion{c}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.ConditionType() != ConditionTypeDynamic {
		t.Fatal(r.ConditionType())
	}
	if err := json.Unmarshal([]byte(`{"criterionType":"Webtest"}`), &c); ErrorCode(err) != EINVALID {
		t.Fatalf("unknown criterionType: %v", err)
	}
}

func TestAlertRuleValidateNamesField(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(r *AlertRule)
	}{
		{"name", func(r *AlertRule) { r.Name = "" }},
		{"name", func(r *AlertRule) { r.Name = "a/b" }},
		{"severity", func(r *AlertRule) { s := 5; r.Severity = &s }},
		{"scopes", func(r *AlertRule) { r.Scopes = nil }},
		{"scopes[0]", func(r *AlertRule) { r.Scopes = []Scope{"everything"} }},
		{"scopes[1]", func(r *AlertRule) { r.Scopes = []Scope{"*", "label:"} }},
		{"evaluationFrequency", func(r *AlertRule) { r.EvaluationFrequency = "PT2H" }},
		{"evaluationFrequency", func(r *AlertRule) { r.EvaluationFrequency = "5 minutes" }},
		{"windowSize", func(r *AlertRule) { r.WindowSize = "P2D" }},
		{"windowSize", func(r *AlertRule) { r.WindowSize = "PT30S" }},
		{"criteria.allOf", func(r *AlertRule) { r.Criteria.AllOf = nil }},
		{"criteria.allOf[0].metricName", func(r *AlertRule) { r.Criteria.AllOf[0].Static.MetricName = "CPU" }},
		{"criteria.allOf[0].timeAggregation", func(r *AlertRule) { r.Criteria.AllOf[0].Static.TimeAggregation = "Median" }},
		{"criteria.allOf[0].operator", func(r *AlertRule) { r.Criteria.AllOf[0].Static.Operator = "Above" }},
		{"criteria.allOf[0].threshold", func(r *AlertRule) { r.Criteria.AllOf[0].Static.Threshold = math.Inf(1) }},
		{"criteria.allOf[0].metricNamespace", func(r *AlertRule) { r.Criteria.AllOf[0].Static.MetricNamespace = "Microsoft.Storage/storageAccounts" }},
		{"criteria.allOf[0].dimensions[0].name", func(r *AlertRule) {
			r.Criteria.AllOf[0].Static.Dimensions = []Dimension{{Name: "ResourceId", Operator: "Include", Values: []string{"x"}}}
		}},
		{"criteria.allOf[0].dimensions[0].operator", func(r *AlertRule) {
			r.Criteria.AllOf[0].Static.Dimensions = []Dimension{{Name: "interface", Operator: "Only", Values: []string{"eth0"}}}
		}},
		{"criteria.allOf[0]", func(r *AlertRule) { r.Criteria.AllOf[0] = Criterion{} }},
		{"criteria.allOf[0].alertSensitivity", func(r *AlertRule) {
			r.Criteria.AllOf[0] = Criterion{Dynamic: &DynamicCriterion{MetricCriterion: MetricCriterion{MetricName: "Inbound Flows", TimeAggregation: AggregationAverage},
				Operator: OperatorGreaterThan, AlertSensitivity: "Extreme", FailingPeriods: FailingPeriods{4, 4}}}
		}},
		{"criteria.allOf[0].operator", func(r *AlertRule) {
			r.Criteria.AllOf[0] = Criterion{Dynamic: &DynamicCriterion{MetricCriterion: MetricCriterion{MetricName: "Inbound Flows", TimeAggregation: AggregationAverage},
				Operator: OperatorEquals, AlertSensitivity: SensitivityLow, FailingPeriods: FailingPeriods{4, 4}}}
		}},
		{"criteria.allOf[0].failingPeriods.minFailingPeriodsToAlert", func(r *AlertRule) {
			r.Criteria.AllOf[0] = Criterion{Dynamic: &DynamicCriterion{MetricCriterion: MetricCriterion{MetricName: "Inbound Flows", TimeAggregation: AggregationAverage},
				Operator: OperatorGreaterThan, AlertSensitivity: SensitivityLow, FailingPeriods: FailingPeriods{2, 3}}}
		}},
		{"criteria.allOf[0].failingPeriods.numberOfEvaluationPeriods", func(r *AlertRule) {
			r.WindowSize = "PT12H"
			r.Criteria.AllOf[0] = Criterion{Dynamic: &DynamicCriterion{MetricCriterion: MetricCriterion{MetricName: "Inbound Flows", TimeAggregation: AggregationAverage},
				Operator: OperatorGreaterThan, AlertSensitivity: SensitivityLow, FailingPeriods: FailingPeriods{3, 1}}}
		}},
		{"actions[0].actionGroupId", func(r *AlertRule) { r.Actions = []Action{{}} }},
	} {
		r := validRule()
		tc.edit(r)
		err := r.Validate()
		if ErrorCode(err) != EINVALID || !strings.HasPrefix(ErrorMessage(err), tc.field+": ") {
			t.Errorf("want an error naming %s, got %v", tc.field, err)
		}
	}
	// Azure's frequencies and tripcap's down to a second are all fine.
	for _, f := range append([]string{"PT1S", "PT10S"}, AzureEvaluationFrequencies...) {
		r := validRule()
		r.EvaluationFrequency, r.WindowSize = f, "PT1H"
		if err := r.Validate(); err != nil {
			t.Errorf("frequency %s: %v", f, err)
		}
	}
}

func TestScopes(t *testing.T) {
	h := &Host{ID: "h-1", Name: "Web1", Location: "westeurope", SubscriptionID: "sub", ResourceGroup: "RG", Labels: map[string]string{"tier": "web"}}
	for s, want := range map[Scope]bool{
		"*": true, "host:web1": true, "host:h-1": true, "host:web2": false,
		"location:WestEurope": true, "location:eastus": false,
		"label:tier=web": true, "label:tier=db": false, "label:tier!=db": true, "label:tier": true, "label:zone": false,
		"/subscriptions/sub": true, "/subscriptions/other": false, "/subscriptions/sub/resourceGroups/rg": true,
		Scope(VMResourceID("sub", "rg", "web1")): true, Scope(VMResourceID("sub", "rg", "web2")): false,
		"nonsense": false,
	} {
		if got := s.Matches(h); got != want {
			t.Errorf("%s.Matches = %v; want %v", s, got, want)
		}
	}
}

func TestPresets(t *testing.T) {
	r, err := PresetAlertRule(PresetSeed, "seed", []Scope{"host:vm1"}, "ag1")
	if err != nil {
		t.Fatal(err)
	}
	s := r.Criteria.AllOf[0].Static
	if s.MetricName != "Network Out Total" || s.TimeAggregation != AggregationAverage || s.Operator != OperatorGreaterThan || s.Threshold != 3 ||
		r.EvaluationFrequency != "PT1M" || r.WindowSize != "PT5M" || r.Actions[0].ActionGroupID != "ag1" {
		t.Fatalf("seed preset %+v %+v", r, s)
	}
	r, err = PresetAlertRule(PresetSeed2017, "seed2017", []Scope{"*"})
	if err != nil || r.Criteria.AllOf[0].Static.Metric() != MetricTCPSegmentsSent || r.Criteria.AllOf[0].Static.Threshold != 100 {
		t.Fatalf("2017 preset %+v %v", r, err)
	}
	if _, err := PresetAlertRule("cpu", "x", []Scope{"*"}); ErrorCode(err) != EINVALID || !strings.HasPrefix(ErrorMessage(err), "preset: ") {
		t.Fatalf("unknown preset: %v", err)
	}
}

func TestActionGroupValidate(t *testing.T) {
	ok := ActionGroup{Name: "g", WebhookReceivers: []WebhookReceiver{{Name: "w", ServiceURI: "https://fn.example/api/x?code=1"}},
		EmailReceivers: []EmailReceiver{{Name: "e", EmailAddress: "ops@example.com"}}, ResponderReceivers: []ResponderReceiver{{Name: "r"}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for field, edit := range map[string]func(g *ActionGroup){
		"name":                           func(g *ActionGroup) { g.Name = "" },
		"webhookReceivers[0].serviceUri": func(g *ActionGroup) { g.WebhookReceivers[0].ServiceURI = "ftp://x" },
		"emailReceivers[0].emailAddress": func(g *ActionGroup) { g.EmailReceivers[0].EmailAddress = "Ops <ops@example.com>" },
		"responderReceivers[0].name":     func(g *ActionGroup) { g.ResponderReceivers[0].Name = "w" },
		"receivers":                      func(g *ActionGroup) { g.WebhookReceivers, g.EmailReceivers, g.ResponderReceivers = nil, nil, nil },
		"groupShortName":                 func(g *ActionGroup) { g.GroupShortName = "much-too-long-name" },
	} {
		g := ok
		g.WebhookReceivers = append([]WebhookReceiver(nil), ok.WebhookReceivers...)
		g.EmailReceivers = append([]EmailReceiver(nil), ok.EmailReceivers...)
		g.ResponderReceivers = append([]ResponderReceiver(nil), ok.ResponderReceivers...)
		edit(&g)
		err := g.Validate()
		if ErrorCode(err) != EINVALID || !strings.HasPrefix(ErrorMessage(err), field+": ") {
			t.Errorf("want an error naming %s, got %v", field, err)
		}
	}
}

func TestMetricParsing(t *testing.T) {
	for in, want := range map[string]MetricID{
		"Network Out Total": MetricNetworkOutBytes, "network out total": MetricNetworkOutBytes, "network_out_bytes": MetricNetworkOutBytes,
		"tripcap_network_out_bytes_total": MetricNetworkOutBytes, "Inbound Flows": MetricInboundFlows, "TCP Segments Sent": MetricTCPSegmentsSent,
		"tripcap_tcp_segments_sent_total": MetricTCPSegmentsSent,
	} {
		if got, err := ParseMetric("metric", in); err != nil || got != want {
			t.Errorf("ParseMetric(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseMetric("metric", "tripcap_flows"); ErrorCode(err) != EINVALID || !strings.HasPrefix(ErrorMessage(err), "metric: ") {
		t.Errorf("tripcap_flows (two metrics) = %v", err)
	}
	for _, d := range MetricDefinitions() {
		if d.DefaultAggregation == "" || d.Unit == "" || d.Prometheus == "" {
			t.Errorf("incomplete definition %+v", d)
		}
	}
	for _, a := range []string{"Average", "minimum", "MAXIMUM", "Total", "Count"} {
		if _, err := ParseAggregation("timeAggregation", a); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseAggregation("timeAggregation", "p95"); !strings.HasPrefix(ErrorMessage(err), "timeAggregation: ") {
		t.Error(err)
	}
	if _, err := ParseOperator("operator", "GreaterOrLessThan"); err == nil {
		t.Error("GreaterOrLessThan accepted as a static operator")
	}
	if _, err := ParseDynamicOperator("operator", "GreaterOrLessThan"); err != nil {
		t.Error(err)
	}
}

func TestSummary(t *testing.T) {
	var s Summary
	if _, ok := s.Value(AggregationCount); ok {
		t.Fatal("empty summary has a count")
	}
	for _, v := range []float64{4, -2, 10} {
		s.Add(v)
	}
	var o Summary
	o.Add(100)
	s.Merge(o)
	for a, want := range map[Aggregation]float64{AggregationAverage: 28, AggregationMinimum: -2, AggregationMaximum: 100, AggregationTotal: 112, AggregationCount: 4} {
		if got, ok := s.Value(a); !ok || got != want {
			t.Errorf("%s = %v", a, got)
		}
	}
}

func TestDotNamesAreRefusedForRulesAndGroups(t *testing.T) {
	for _, name := range []string{".", ".."} {
		r, err := PresetAlertRule(PresetSeed, name, []Scope{ScopeAll})
		if err == nil || ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), "name") {
			t.Errorf("rule named %q: %v, %v; want EINVALID naming name", name, r, err)
		}
		g := &ActionGroup{Name: name, WebhookReceivers: []WebhookReceiver{{Name: "w", ServiceURI: "https://198.18.0.1/hook"}}}
		if err := g.Validate(); ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), "name") {
			t.Errorf("action group named %q: %v; want EINVALID naming name", name, err)
		}
	}
}
