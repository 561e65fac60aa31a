//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/actiongroup/webhooktest"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/trafficgen"
	"github.com/tripcap/tripcap/metricstore"
)

// TestAlertingEndToEnd: agents ship their hosts' metrics; a rule on Network
// Out Total (made with the CLI, Average over 5 s, every second) fires when
// one host floods another, its alert is delivered, signed, to a webhook
// receiver in each of Azure's two schemas (one receiver failing once, so the
// delivery is retried), survives a server restart while Fired, and resolves
// when the traffic stops.
func TestAlertingEndToEnd(t *testing.T) {
	l := newLab(t)
	h1, h2 := l.addHost("h1"), l.addHost("h2")
	l.link(h1, h2)
	// The receiver runs in this process, reached from the server's
	// namespace over a link of its own to the root namespace.
	rc := webhooktest.StartAt(t, l.net.Veth(nil, l.ctl, netns.LinkOptions{}).A.Addr.Addr())

	var g tripcap.ActionGroup
	if err := l.cliJSON(&g, "action-group", "create", "ops", "--webhook", "common="+rc.URL+"/common",
		"--webhook-original", "original="+rc.URL+"/flaky/original"); err != nil {
		t.Fatal(err)
	}
	if len(g.SigningSecret) < 32 {
		t.Fatalf("action group create did not show the signing secret: %+v", g)
	}
	const threshold = 200_000 // bytes a second; the agents' own chatter is a few kB/s
	var rule tripcap.AlertRule
	if err := l.cliJSON(&rule, "rule", "create", "high-egress", "--metric", "Network Out Total", "--aggregation", "Average",
		"--operator", "GreaterThan", "--threshold", fmt.Sprint(threshold), "--frequency", "1s", "--window", "5s",
		"--action-group", "ops", "--webhook-property", "team=net"); err != nil {
		t.Fatal(err)
	}
	if rule.EvaluationFrequency != "PT1S" || rule.WindowSize != "PT5S" || len(rule.Scopes) != 1 || rule.Scopes[0] != tripcap.ScopeAll {
		t.Fatalf("rule: %+v", rule)
	}

	// The agents' metrics reach the server, and h1's /metrics has them with a host label.
	l.eventually("h1's metrics on the server", 20*time.Second, func() bool {
		return l.points("h1") > 0
	})
	if body := agentMetrics(t, h1); !strings.Contains(body, `tripcap_network_out_bytes_total{host="h1"}`) {
		t.Fatalf("h1's /metrics has no host series of Network Out Total:\n%.2000s", body)
	}
	if alerts := l.alerts(); len(alerts) != 0 {
		t.Fatalf("alerts before any traffic: %+v", alerts)
	}

	stop := l.flood(h1, h2, 7100)
	l.eventually("the alert to fire", 30*time.Second, func() bool { return len(l.alerts()) > 0 })
	fired := l.alerts()
	if len(fired) != 1 || fired[0].HostName != "h1" || fired[0].MonitorCondition != tripcap.ConditionFired || fired[0].RuleName != "high-egress" {
		t.Fatalf("fired alerts: %+v; want one, on h1 (h2 only receives)", fired)
	}
	id := fired[0].ID
	l.eventually("the Fired deliveries", 15*time.Second, func() bool {
		return len(rc.Accepted("/common")) == 1 && len(rc.Accepted("/flaky/original")) == 1
	})

	// A server restarted while the alert is Fired restores it: the same
	// alert resolves, no second one fires while the traffic goes on.
	// Its metric history survives too: the points from before the restart
	// are still there after it (the snapshot in its data directory).
	restartAt := time.Now()
	before := l.pointsBefore("h1", restartAt)
	l.stopServer()
	l.startServer()
	restored := l.pointsBefore("h1", restartAt)
	if before == 0 || restored < before {
		t.Errorf("metric points of h1 before the restart: %d before, %d after it", before, restored)
	}
	time.Sleep(8 * time.Second)
	stop()
	l.eventually("the alert to resolve", 60*time.Second, func() bool {
		as := l.alerts()
		return len(as) == 1 && as[0].MonitorCondition == tripcap.ConditionResolved
	})
	if as := l.alerts(); as[0].ID != id {
		t.Fatalf("resolved alert %s, want the restored %s", as[0].ID, id)
	}
	l.eventually("the Resolved deliveries", 15*time.Second, func() bool {
		return len(rc.Accepted("/common")) == 2 && len(rc.Accepted("/flaky/original")) == 2
	})

	// Each payload: Azure's schema for its receiver's useCommonAlertSchema,
	// signed with the group's secret.
	for _, c := range []struct {
		path   string
		schema string
		state  []string
		// want is what the payload names: the alert (common schema) or the rule's resource id (original).
		want string
	}{
		{"/common", commonAlertSchema, []string{"Fired", "Resolved"}, "/providers/Microsoft.AlertsManagement/alerts/" + id},
		{"/flaky/original", metricAlertSchema, []string{"Activated", "Resolved"}, "/providers/microsoft.insights/metricAlerts/high-egress"},
	} {
		for i, r := range rc.Accepted(c.path) {
			var doc any
			if err := json.Unmarshal(r.Body, &doc); err != nil {
				t.Fatalf("%s payload %d is not JSON: %v", c.path, i, err)
			}
			if errs := validateJSON(mustSchema(t, c.schema), doc); len(errs) > 0 {
				t.Errorf("%s payload %d does not validate against its schema:\n  %s\n%s", c.path, i, strings.Join(errs, "\n  "), r.Body)
			}
			if err := actiongroup.Verify(g.SigningSecret, r.Header.Get(actiongroup.HeaderSignature), r.Header.Get(actiongroup.HeaderTimestamp), r.Body, time.Now(), 0); err != nil {
				t.Errorf("%s payload %d: signature: %v", c.path, i, err)
			}
			if !bytes.Contains(r.Body, []byte(`"`+c.state[i]+`"`)) || !bytes.Contains(r.Body, []byte(`"team":"net"`)) || !bytes.Contains(r.Body, []byte(c.want)) {
				t.Errorf("%s payload %d: want state %s, %s and the custom property: %s", c.path, i, c.state[i], c.want, r.Body)
			}
		}
	}

	// alert show lists the history and every attempt, the failed ones too.
	// The receiver answers before the server records the attempt.
	var d controlplane.AlertDetail
	l.eventually("the delivery log", 10*time.Second, func() bool {
		return l.cliJSON(&d, "alert", "show", id) == nil && len(d.Deliveries) == 6
	})
	if len(d.Alert.History) != 2 || d.Alert.ResolvedAt == nil {
		t.Fatalf("alert show: history %+v", d.Alert.History)
	}
	attempts := map[string]int{}
	for _, dl := range d.Deliveries {
		attempts[fmt.Sprintf("%s/%s/%t", dl.Receiver, dl.MonitorCondition, dl.Success)]++
	}
	want := map[string]int{"common/Fired/true": 1, "common/Resolved/true": 1, "original/Fired/false": 1, "original/Fired/true": 1,
		"original/Resolved/false": 1, "original/Resolved/true": 1}
	if !reflect.DeepEqual(attempts, want) {
		t.Errorf("delivery log %v, want %v", attempts, want)
	}
	text := l.cliText("alert", "show", id)
	if !strings.Contains(text, "Deliveries:") || !strings.Contains(text, "503") {
		t.Errorf("alert show (text) does not list the deliveries:\n%s", text)
	}
	// The chart of what happened.
	chart := l.cliText("metrics", "h1", "Network Out Total", "--window", "3m", "--interval", "5s", "--aggregation", "Average")
	if !strings.Contains(chart, "h1 · Network Out Total") || !strings.ContainsAny(chart, "▁▂▃▄▅▆▇█") {
		t.Errorf("metrics chart:\n%s", chart)
	}
	t.Logf("tripcap metrics h1 \"Network Out Total\":\n%s", chart)
}

// points counts the points of a host's Network Out Total in the last minute.
func (l *lab) points(host string) int64 {
	var res metricstore.Result
	if err := l.cliJSON(&res, "metrics", host, "Network Out Total", "--window", "1m", "--interval", "5s"); err != nil {
		return 0
	}
	var n int64
	for _, p := range res.Points {
		n += p.Count
	}
	return n
}

// pointsBefore counts the points of a host's Network Out Total in the last
// two minutes, in the 5-second intervals that end before t.
func (l *lab) pointsBefore(host string, t time.Time) int64 {
	var res metricstore.Result
	if err := l.cliJSON(&res, "metrics", host, "Network Out Total", "--window", "2m", "--interval", "5s"); err != nil {
		l.t.Logf("metrics %s: %v", host, err)
		return 0
	}
	var n int64
	for _, p := range res.Points {
		if p.Time.Add(5 * time.Second).Before(t) {
			n += p.Count
		}
	}
	return n
}

// alerts lists the rule's alerts through the CLI (none while the server restarts).
func (l *lab) alerts() []*tripcap.Alert {
	var as []*tripcap.Alert
	if err := l.cliJSON(&as, "alert", "list", "--rule", "high-egress"); err != nil {
		return nil
	}
	return as
}

// cliText runs a client verb with text output.
func (l *lab) cliText(args ...string) string {
	l.t.Helper()
	argv := append(l.clientArgs(), args...)
	out, err := l.ctl.Exec(context.Background(), argv...)
	if err != nil {
		l.t.Fatalf("tripcap %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// flood sends about 1.2 MB/s of UDP from one host to another until stop.
func (l *lab) flood(from, to *host, port uint16) (stop func()) {
	l.t.Helper()
	dst := netip.AddrPortFrom(to.data[from.name], port)
	var sink *trafficgen.Sink
	if err := to.ns.Do(func() (err error) { sink, err = trafficgen.Listen("udp", dst); return err }); err != nil {
		l.t.Fatalf("listening on %s in %s: %v", dst, to.name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- from.ns.Do(func() error {
			_, err := trafficgen.Send(ctx, trafficgen.Flow{Network: "udp", Src: netip.AddrPortFrom(from.data[to.name], 0), Dst: dst,
				Count: 120_000, PayloadSize: 1200, Interval: time.Millisecond, ID: 7})
			return err
		})
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && ctx.Err() == nil {
				l.t.Errorf("flooding from %s: %v", from.name, err)
			}
			sink.Close()
		})
	}
	l.t.Cleanup(stop)
	return stop
}

// agentMetrics fetches a host's agent /metrics (on its namespace's loopback).
func agentMetrics(t *testing.T, h *host) string {
	t.Helper()
	var body string
	err := h.ns.Do(func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:9465", 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err
	})
	if err != nil {
		t.Fatalf("%s's /metrics: %v", h.name, err)
	}
	return body
}

// Azure's two webhook schemas of metric alerts, written from Azure
// Monitor's documentation of the common alert schema and of the
// AzureMonitorMetricAlert ("original") schema, in the JSON Schema subset
// validateJSON implements. Times are Azure's: UTC with a fractional second.
const (
	azureTimePattern = `"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$"`
	metricOperators  = `["Equals","NotEquals","GreaterThan","GreaterThanOrEqual","LessThan","LessThanOrEqual","GreaterOrLessThan"]`
	conditionTypes   = `["SingleResourceMultipleMetricCriteria","MultipleResourceMultipleMetricCriteria","DynamicThresholdCriteria"]`
	conditionSchema  = `{"type":"object","required":["windowSize","allOf"],"additionalProperties":false,"properties":{
		"windowSize":{"type":"string","pattern":"^PT([0-9]+H)?([0-9]+M)?([0-9]+S)?$"},
		"windowStartTime":{"type":"string","pattern":` + azureTimePattern + `},
		"windowEndTime":{"type":"string","pattern":` + azureTimePattern + `},
		"allOf":{"type":"array","minItems":1,"items":{"type":"object",
			"required":["metricName","metricNamespace","operator","threshold","timeAggregation","dimensions","metricValue"],
			"additionalProperties":false,
			"properties":{
				"metricName":{"type":"string","minLength":1},
				"metricNamespace":{"type":"string"},
				"operator":{"enum":` + metricOperators + `},
				"threshold":{"type":"string","pattern":"^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$"},
				"timeAggregation":{"enum":["Average","Minimum","Maximum","Total","Count"]},
				"dimensions":{"type":"array","items":{"type":"object","required":["name","value"],"additionalProperties":false,
					"properties":{"name":{"type":"string"},"value":{"type":"string"}}}},
				"metricValue":{"type":"number"},
				"webTestName":{"type":["string","null"]},
				"alertSensitivity":{"enum":["Low","Medium","High"]},
				"failingPeriods":{"type":"object"},
				"ignoreDataBefore":{"type":["string","null"]}}}}}}`
	stringMap         = `{"type":["object","null"],"additionalProperties":{"type":"string"}}`
	commonAlertSchema = `{"type":"object","required":["schemaId","data"],"additionalProperties":false,"properties":{
		"schemaId":{"const":"azureMonitorCommonAlertSchema"},
		"data":{"type":"object","required":["essentials","alertContext","customProperties"],"additionalProperties":false,"properties":{
			"essentials":{"type":"object","additionalProperties":false,
				"required":["alertId","alertRule","severity","signalType","monitorCondition","monitoringService","alertTargetIDs",
					"configurationItems","originAlertId","firedDateTime","description","essentialsVersion","alertContextVersion"],
				"properties":{
					"alertId":{"type":"string","pattern":"^/subscriptions/[^/]+/providers/Microsoft.AlertsManagement/alerts/[^/]+$"},
					"alertRule":{"type":"string","minLength":1},
					"severity":{"enum":["Sev0","Sev1","Sev2","Sev3","Sev4"]},
					"signalType":{"enum":["Metric","Log","Activity Log"]},
					"monitorCondition":{"enum":["Fired","Resolved"]},
					"monitoringService":{"enum":["Platform","Application Insights","Log Analytics","Log Alerts V2","Activity Log - Administrative","Resource Health","Service Health"]},
					"alertTargetIDs":{"type":"array","minItems":1,"items":{"type":"string",
						"pattern":"^/subscriptions/[^/A-Z]+/resourcegroups/[^/A-Z]+/providers/microsoft.compute/virtualmachines/[^/A-Z]+$"}},
					"configurationItems":{"type":"array","items":{"type":"string"}},
					"originAlertId":{"type":"string","minLength":1},
					"firedDateTime":{"type":"string","pattern":` + azureTimePattern + `},
					"resolvedDateTime":{"type":"string","pattern":` + azureTimePattern + `},
					"description":{"type":"string"},
					"essentialsVersion":{"const":"1.0"},
					"alertContextVersion":{"const":"1.0"}}},
			"alertContext":{"type":"object","required":["properties","conditionType","condition"],"additionalProperties":false,"properties":{
				"properties":` + stringMap + `,
				"conditionType":{"enum":` + conditionTypes + `},
				"condition":` + conditionSchema + `}},
			"customProperties":` + stringMap + `}}}}`
	metricAlertSchema = `{"type":"object","required":["schemaId","data"],"additionalProperties":false,"properties":{
		"schemaId":{"const":"AzureMonitorMetricAlert"},
		"data":{"type":"object","required":["version","properties","status","context"],"additionalProperties":false,"properties":{
			"version":{"const":"2.0"},
			"properties":` + stringMap + `,
			"status":{"enum":["Activated","Resolved"]},
			"context":{"type":"object","additionalProperties":false,
				"required":["timestamp","id","name","description","conditionType","severity","condition","subscriptionId",
					"resourceGroupName","resourceName","resourceType","resourceId","portalLink"],
				"properties":{
					"timestamp":{"type":"string","pattern":` + azureTimePattern + `},
					"id":{"type":"string","pattern":"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/microsoft.insights/metricAlerts/[^/]+$"},
					"name":{"type":"string","minLength":1},
					"description":{"type":"string"},
					"conditionType":{"enum":` + conditionTypes + `},
					"severity":{"enum":["0","1","2","3","4"]},
					"condition":` + conditionSchema + `,
					"subscriptionId":{"type":"string","minLength":1},
					"resourceGroupName":{"type":"string","minLength":1},
					"resourceName":{"type":"string","minLength":1},
					"resourceType":{"const":"Microsoft.Compute/virtualMachines"},
					"resourceId":{"type":"string","pattern":"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.Compute/virtualMachines/[^/]+$"},
					"portalLink":{"type":"string"}}}}}}}`
)

func mustSchema(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("schema: %v", err)
	}
	return m
}

// validateJSON checks a decoded JSON value against a JSON Schema (draft
// 2020-12) using the keywords the schemas above use: type, const, enum,
// pattern, minLength, required, properties, additionalProperties, items,
// minItems. It returns every violation, with its JSON path.
func validateJSON(schema map[string]any, v any) []string {
	var errs []string
	var check func(path string, s map[string]any, v any)
	check = func(path string, s map[string]any, v any) {
		fail := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
		if typ, ok := s["type"]; ok {
			var types []string
			switch tv := typ.(type) {
			case string:
				types = []string{tv}
			case []any:
				for _, x := range tv {
					types = append(types, x.(string))
				}
			}
			if !slicesContains(types, jsonType(v)) && !(jsonType(v) == "integer" && slicesContains(types, "number")) {
				fail("is %s, want %s", jsonType(v), strings.Join(types, " or "))
				return
			}
		}
		if c, ok := s["const"]; ok && !reflect.DeepEqual(c, v) {
			fail("is %v, want %v", v, c)
		}
		if enum, ok := s["enum"].([]any); ok {
			found := false
			for _, e := range enum {
				found = found || reflect.DeepEqual(e, v)
			}
			if !found {
				fail("%v is not one of %v", v, enum)
			}
		}
		if str, ok := v.(string); ok {
			if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
				fail("%q does not match %s", str, p)
			}
			if n, ok := s["minLength"].(float64); ok && float64(len([]rune(str))) < n {
				fail("%q is shorter than %v", str, n)
			}
		}
		if obj, ok := v.(map[string]any); ok {
			if req, ok := s["required"].([]any); ok {
				for _, k := range req {
					if _, ok := obj[k.(string)]; !ok {
						fail("%s is required", k)
					}
				}
			}
			props, _ := s["properties"].(map[string]any)
			for k, val := range obj {
				if ps, ok := props[k].(map[string]any); ok {
					check(path+"."+k, ps, val)
					continue
				}
				switch ap := s["additionalProperties"].(type) {
				case bool:
					if !ap {
						fail("%s is not a property of the schema", k)
					}
				case map[string]any:
					check(path+"."+k, ap, val)
				}
			}
		}
		if arr, ok := v.([]any); ok {
			if n, ok := s["minItems"].(float64); ok && float64(len(arr)) < n {
				fail("has %d items, want at least %v", len(arr), n)
			}
			if items, ok := s["items"].(map[string]any); ok {
				for i, x := range arr {
					check(fmt.Sprintf("%s[%d]", path, i), items, x)
				}
			}
		}
	}
	check("$", schema, v)
	return errs
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestSchemaValidatorRejects keeps validateJSON honest: a payload with a
// wrong type, a missing field, an unknown field or a bad value fails.
func TestSchemaValidatorRejects(t *testing.T) {
	a := tripcap.Alert{ID: "06h03sm38k5r3vnb2h420x8my0", RuleID: "r", RuleName: "high-egress", Severity: 3, HostID: "h", HostName: "h1",
		TargetResourceID: tripcap.VMResourceID("00000000-0000-0000-0000-000000000000", "tripcap", "h1"), SubscriptionID: "00000000-0000-0000-0000-000000000000",
		ResourceGroup: "tripcap", ConditionType: tripcap.ConditionTypeStatic, WindowSize: "PT5S", MonitorCondition: tripcap.ConditionFired,
		FiredAt: time.Now(), Condition: tripcap.AlertEvaluation{AllOf: []tripcap.ConditionResult{{MetricName: "Network Out Total",
			MetricNamespace: tripcap.MetricNamespace, Operator: tripcap.OperatorGreaterThan, TimeAggregation: tripcap.AggregationAverage, MetricValue: 1.5, Threshold: 1}}}}
	for _, c := range []struct {
		schema string
		common bool
	}{{commonAlertSchema, true}, {metricAlertSchema, false}} {
		body, err := actiongroup.Payload(a, nil, c.common, "")
		if err != nil {
			t.Fatal(err)
		}
		schema := mustSchema(t, c.schema)
		var good any
		_ = json.Unmarshal(body, &good)
		if errs := validateJSON(schema, good); len(errs) > 0 {
			t.Fatalf("a real payload fails: %v", errs)
		}
		for _, mutate := range []struct{ from, to string }{
			{`"threshold":"1"`, `"threshold":1`},
			{`"metricValue":1.5`, `"metricValue":"1.5"`},
			{`"schemaId":"`, `"extra":1,"schemaId":"`},
			{`"windowSize":"PT5S",`, ``},
			{`"metricName":"Network Out Total"`, `"metricName":""`},
		} {
			bad := strings.Replace(string(body), mutate.from, mutate.to, 1)
			if bad == string(body) {
				t.Fatalf("mutation %q does not apply to %s", mutate.from, body)
			}
			var doc any
			if err := json.Unmarshal([]byte(bad), &doc); err != nil {
				t.Fatal(err)
			}
			if errs := validateJSON(schema, doc); len(errs) == 0 {
				t.Errorf("common=%t: %q → %q still validates", c.common, mutate.from, mutate.to)
			}
		}
	}
}
