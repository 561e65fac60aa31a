package payload_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/responder/payload"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFixtures(t *testing.T) {
	const vm = "/subscriptions/11111111-1111-1111-1111-111111111111/resourcegroups/pipelinealertrg/providers/microsoft.compute/virtualmachines/wcus-r2-gen2"
	const alertID = "/subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.AlertsManagement/alerts/12345678-1234-1234-1234-1234567890ab"
	tests := []struct {
		file string
		want []payload.Trigger
		keys []string
	}{
		{
			file: "common_metric_fired.json",
			want: []payload.Trigger{{
				Format: payload.FormatCommon, AlertID: alertID,
				FiredAt: mustTime(t, "2019-03-22T13:58:24.3713213Z"), Condition: tripcap.ConditionFired,
				RuleName: "WCUS-R2-Gen2", Severity: "Sev3", Summary: "WCUS-R2-Gen2",
				Targets: payload.Targets{ResourceIDs: []string{vm}},
			}},
			keys: []string{"azureMonitorCommonAlertSchema:" + alertID + ":Fired"},
		},
		{
			file: "common_resolved.json",
			want: []payload.Trigger{{
				Format: payload.FormatCommon, AlertID: alertID,
				FiredAt: mustTime(t, "2019-03-22T14:03:16.2246313Z"), Condition: tripcap.ConditionResolved,
				RuleName: "WCUS-R2-Gen2", Severity: "Sev3", Summary: "WCUS-R2-Gen2",
				Targets: payload.Targets{ResourceIDs: []string{vm}},
			}},
			keys: []string{"azureMonitorCommonAlertSchema:" + alertID + ":Resolved"},
		},
		{
			file: "common_network_out_multi.json",
			want: []payload.Trigger{{
				Format:    payload.FormatCommon,
				AlertID:   "/subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.AlertsManagement/alerts/b9569717-bc32-442f-add5-83a997729330",
				FiredAt:   mustTime(t, "2026-11-22T06:50:01.1234567Z"),
				Condition: tripcap.ConditionFired, RuleName: "network-out-high", Severity: "Sev2",
				Summary: "network-out-high: Network Out Total above 3 bytes",
				Targets: payload.Targets{ResourceIDs: []string{
					"/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/lab/providers/Microsoft.Compute/virtualMachines/vm1",
					"/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/lab/providers/Microsoft.Compute/virtualMachines/vm2",
				}},
			}},
		},
		{
			file: "metricalert_seed.json",
			want: []payload.Trigger{{
				Format:    payload.FormatMetricAlert,
				AlertID:   "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/test-RG/providers/Microsoft.Insights/metricAlerts/myRule",
				FiredAt:   mustTime(t, "2018-02-28T10:44:10.1714014Z"),
				Condition: tripcap.ConditionFired, RuleName: "myRule", Severity: "3",
				Summary: "myRule: Network Out Total is above 3",
				Targets: payload.Targets{
					ResourceIDs: []string{"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/test-RG/providers/Microsoft.Compute/virtualMachines/test-vm1"},
					Names:       []payload.NameTarget{{Name: "test-vm1", ResourceGroup: "test-RG"}},
				},
			}},
			keys: []string{"AzureMonitorMetricAlert:/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/test-RG/providers/Microsoft.Insights/metricAlerts/myRule@2018-02-28T10:44:10.1714014Z:Fired"},
		},
		{
			file: "classic_metric.json",
			want: []payload.Trigger{{
				Format:    payload.FormatClassic,
				AlertID:   "/subscriptions/s1/resourceGroups/useast/providers/microsoft.insights/alertrules/ruleName1",
				FiredAt:   mustTime(t, "2015-08-14T22:26:41.9975398Z"),
				Condition: tripcap.ConditionFired, RuleName: "ruleName1",
				Summary: "ruleName1: some description",
				Targets: payload.Targets{
					ResourceIDs: []string{"/subscriptions/s1/resourceGroups/useast/providers/microsoft.foo/sites/mysite1"},
					Names:       []payload.NameTarget{{Name: "mysite1", ResourceGroup: "useast"}},
				},
			}},
		},
		{
			file: "seed2017_custom.json",
			want: []payload.Trigger{{
				Format: payload.FormatSeed2017, Condition: tripcap.ConditionFired,
				Summary: "custom JSON: capture on /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/vmrg/providers/Microsoft.Compute/virtualMachines/vm1",
				Targets: payload.Targets{ResourceIDs: []string{"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/vmrg/providers/Microsoft.Compute/virtualMachines/vm1"}},
				Overrides: payload.Overrides{
					CaptureName: "PacketCaptureFromFunction", TimeLimitSeconds: 10,
					StorageID:                   "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/storagerg/providers/Microsoft.Storage/storageAccounts/capturestore",
					SubscriptionID:              "00000000-0000-0000-0000-000000000000",
					NetworkWatcherResourceGroup: "NetworkWatcherRG", NetworkWatcherName: "NetworkWatcher_westcentralus",
				},
			}},
			// A fixed body sent on every firing has no identity.
			keys: []string{""},
		},
		{
			file: "alertmanager_v4.json",
			want: []payload.Trigger{
				{
					Format: payload.FormatAlertmanager, Fingerprint: "b6a3c7d2f0e1a4c9",
					StartsAt: mustTime(t, "2026-11-22T06:50:00.123456789Z"), FiredAt: mustTime(t, "2026-11-22T06:50:00.123456789Z"),
					Condition: tripcap.ConditionFired, RuleName: "NetworkOutHigh", Severity: "warning",
					Summary: "NetworkOutHigh: Network out on 10.200.1.2:9464 is high",
					Targets: payload.Targets{Labels: map[string]string{"alertname": "NetworkOutHigh", "instance": "10.200.1.2:9464", "job": "tripcap-agent", "severity": "warning"}},
				},
				{
					Format: payload.FormatAlertmanager, Fingerprint: "0a1b2c3d4e5f6789",
					StartsAt: mustTime(t, "2026-11-22T06:50:01Z"), FiredAt: mustTime(t, "2026-11-22T06:50:01Z"),
					Condition: tripcap.ConditionFired, RuleName: "NetworkOutHigh", Severity: "warning",
					Summary: "NetworkOutHigh: Network out on h2 is high",
					Targets: payload.Targets{Labels: map[string]string{"alertname": "NetworkOutHigh", "instance": "h2:9464", "host": "h2", "job": "tripcap-agent", "severity": "warning"}},
				},
			},
			keys: []string{
				"alertmanagerV4:b6a3c7d2f0e1a4c9@2026-11-22T06:50:00.123456789Z:Fired",
				"alertmanagerV4:0a1b2c3d4e5f6789@2026-11-22T06:50:01Z:Fired",
			},
		},
		{
			file: "alertmanager_resolved.json",
			want: []payload.Trigger{{
				Format: payload.FormatAlertmanager, Fingerprint: "b6a3c7d2f0e1a4c9",
				StartsAt: mustTime(t, "2026-11-22T06:50:00.123456789Z"), FiredAt: mustTime(t, "2026-11-22T06:55:00Z"),
				Condition: tripcap.ConditionResolved, RuleName: "NetworkOutHigh", Summary: "NetworkOutHigh",
				Targets: payload.Targets{Labels: map[string]string{"alertname": "NetworkOutHigh", "instance": "10.200.1.2:9464", "job": "tripcap-agent"}},
			}},
			keys: []string{"alertmanagerV4:b6a3c7d2f0e1a4c9@2026-11-22T06:50:00.123456789Z:Resolved"},
		},
		{
			file: "grafana_v1.json",
			want: []payload.Trigger{
				{
					Format: payload.FormatGrafana, Fingerprint: "c6eadffa33fcdf37",
					StartsAt: mustTime(t, "2021-10-12T09:51:03.157076+02:00"), FiredAt: mustTime(t, "2021-10-12T09:51:03.157076+02:00"),
					Condition: tripcap.ConditionFired, RuleName: "High memory usage",
					Summary: "High memory usage: This alert was triggered for zone us-1",
					Targets: payload.Targets{Labels: map[string]string{"alertname": "High memory usage", "team": "blue", "zone": "us-1", "nodename": "vm1"}},
				},
				{
					Format: payload.FormatGrafana, Fingerprint: "bc97ff14869b13e3",
					StartsAt: mustTime(t, "2021-10-12T09:56:03.157076+02:00"), FiredAt: mustTime(t, "2021-10-12T09:56:03.157076+02:00"),
					Condition: tripcap.ConditionFired, RuleName: "High CPU usage",
					Summary: "High CPU usage: This alert was triggered for zone eu-1",
					Targets: payload.Targets{Labels: map[string]string{"alertname": "High CPU usage", "team": "blue", "zone": "eu-1", "node": "vm2"}},
				},
			},
			keys: []string{
				"grafanaV1:c6eadffa33fcdf37@2021-10-12T07:51:03.157076Z:Fired",
				"grafanaV1:bc97ff14869b13e3@2021-10-12T07:56:03.157076Z:Fired",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := payload.Parse(fixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			for i, k := range tt.keys {
				if g := got[i].IdempotencyKey(); g != k {
					t.Errorf("alert %d: key %q, want %q", i, g, k)
				}
			}
		})
	}
}

// A redelivery (the same body again) has the same key; the next firing of
// the same rule (a new timestamp) has another.
func TestIdempotencyKeySeparatesFirings(t *testing.T) {
	body := fixture(t, "metricalert_seed.json")
	a, _ := payload.Parse(body)
	b, _ := payload.Parse(body)
	if a[0].IdempotencyKey() != b[0].IdempotencyKey() {
		t.Fatal("redelivery changed the key")
	}
	next := strings.Replace(string(body), "2018-02-28T10:44:10.1714014Z", "2018-02-28T11:44:10.1714014Z", 1)
	c, err := payload.Parse([]byte(next))
	if err != nil {
		t.Fatal(err)
	}
	if c[0].IdempotencyKey() == a[0].IdempotencyKey() {
		t.Fatal("a new firing kept the old key")
	}
	if c[0].AlertKey() != a[0].AlertKey() {
		t.Fatal("a new firing of the same rule changed the alert key")
	}
}

// What tripcap's own action groups send (both schemas) is accepted, so a
// tripcap webhook receiver can point at another tripcap's responder.
func TestParseTripcapPayloads(t *testing.T) {
	fired := time.Date(2026, 11, 22, 6, 50, 1, 123456700, time.UTC)
	a := tripcap.Alert{
		ID: "a1", RuleID: "r1", RuleName: "net-out", Severity: 2, HostID: "h1", HostName: "vm1",
		TargetResourceID: "/subscriptions/sub/resourceGroups/lab/providers/Microsoft.Compute/virtualMachines/vm1",
		SubscriptionID:   "sub", ResourceGroup: "lab", ConditionType: "SingleResourceMultipleMetricCriteria",
		WindowSize: "PT1M", MonitorCondition: tripcap.ConditionFired, FiredAt: fired,
	}
	for _, common := range []bool{true, false} {
		body, err := actiongroup.Payload(a, nil, common, "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := payload.Parse(body)
		if err != nil {
			t.Fatalf("common=%v: %v", common, err)
		}
		if len(got) != 1 || got[0].Condition != tripcap.ConditionFired || !got[0].FiredAt.Equal(fired) || got[0].RuleName != "net-out" {
			t.Fatalf("common=%v: %+v", common, got)
		}
		if len(got[0].Targets.ResourceIDs) != 1 || !strings.EqualFold(got[0].Targets.ResourceIDs[0], a.TargetResourceID) {
			t.Fatalf("common=%v: targets %+v", common, got[0].Targets)
		}
	}
	in := payload.FromAlert(a)
	if in.Format != payload.FormatInternal || in.AlertID != "a1" || in.Targets.Names[0].Name != "vm1" || in.IdempotencyKey() != "tripcap:a1:Fired" {
		t.Fatalf("FromAlert: %+v", in)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, body string
		// want are substrings of the error message (it names the field or
		// the expected formats).
		want []string
	}{
		{"empty", "", []string{"body: empty", "azureMonitorCommonAlertSchema"}},
		{"malformed", `{"schemaId":`, []string{"body: malformed JSON"}},
		{"not an object", `[1,2]`, []string{"body: malformed JSON object"}},
		{"unknown object", `{"hello":"world"}`, []string{"unrecognized alert payload", "AzureMonitorMetricAlert", "Alertmanager", "Grafana", "targetVM"}},
		{"unknown schema", `{"schemaId":"Microsoft.Insights/activityLogs","data":{}}`, []string{"schemaId: unsupported schema", "azureMonitorCommonAlertSchema"}},
		{"schemaId type", `{"schemaId":5}`, []string{"schemaId: must be a string"}},
		{"webhook version", `{"version":"3","alerts":[]}`, []string{"version: unsupported webhook version \"3\""}},
		{"no alerts", `{"version":"4","alerts":[]}`, []string{"alerts: at least one"}},
		{"am status", `{"version":"4","alerts":[{"status":"pending","startsAt":"2026-01-01T00:00:00Z"}]}`, []string{"alerts[0].status"}},
		{"am time", `{"version":"4","alerts":[{"status":"firing","startsAt":"yesterday"}]}`, []string{"alerts[0].startsAt"}},
		{"am labels type", `{"version":"4","alerts":[{"status":"firing","labels":[1]}]}`, []string{"alerts.labels: wrong type"}},
		{"common no essentials", `{"schemaId":"azureMonitorCommonAlertSchema","data":{}}`, []string{"data.essentials: required"}},
		{"common no id", `{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{"monitorCondition":"Fired"}}}`, []string{"data.essentials.alertId"}},
		{"common condition", `{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{"alertId":"x","monitorCondition":"Maybe"}}}`, []string{"data.essentials.monitorCondition"}},
		{"common targets type", `{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{"alertId":"x","monitorCondition":"Fired","alertTargetIDs":"vm"}}}`, []string{"data.essentials.alertTargetIDs: wrong type"}},
		{"metric no data", `{"schemaId":"AzureMonitorMetricAlert"}`, []string{"data: required"}},
		{"metric no context", `{"schemaId":"AzureMonitorMetricAlert","data":{"status":"Activated"}}`, []string{"data.context: required"}},
		{"metric status", `{"schemaId":"AzureMonitorMetricAlert","data":{"status":"Maybe","context":{}}}`, []string{"data.status"}},
		{"classic time", `{"status":"Activated","context":{"timestamp":"noon"}}`, []string{"context.timestamp"}},
		{"seed no target", `{"packetCaptureName":"x"}`, []string{"targetVM: required"}},
		{"seed capture name with a slash", `{"targetVM":"/subscriptions/s/vm1","packetCaptureName":"a/../b"}`, []string{"packetCaptureName:", "without /"}},
		{"seed capture name too long", `{"targetVM":"/subscriptions/s/vm1","packetCaptureName":"` + strings.Repeat("n", 81) + `"}`, []string{"packetCaptureName:", "1 to 80"}},
		{"seed time limit", `{"targetVM":"/x","timeLimit":99999}`, []string{"timeLimit"}},
		{"seed time limit type", `{"targetVM":"/x","timeLimit":"soon"}`, []string{"2017 custom JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := payload.Parse([]byte(tt.body))
			if tripcap.ErrorCode(err) != tripcap.EINVALID {
				t.Fatalf("err = %v, want EINVALID", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(tripcap.ErrorMessage(err), w) {
					t.Errorf("message %q lacks %q", tripcap.ErrorMessage(err), w)
				}
			}
		})
	}
}

func TestParseOversized(t *testing.T) {
	body := []byte(`{"targetVM":"/x","pad":"` + strings.Repeat("a", payload.MaxBodyBytes) + `"}`)
	_, err := payload.Parse(body)
	if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(tripcap.ErrorMessage(err), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

func TestGrafanaWithoutFingerprint(t *testing.T) {
	body := `{"version":"1","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"a","instance":"vm1:9100"},"startsAt":"2026-01-01T00:00:00Z"}]}`
	a, err := payload.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := payload.Parse([]byte(body))
	if a[0].Fingerprint == "" || a[0].IdempotencyKey() != b[0].IdempotencyKey() {
		t.Fatalf("fingerprint not derived from labels: %+v", a[0])
	}
}

func TestLabelCandidates(t *testing.T) {
	tests := []struct {
		labels map[string]string
		keys   []string
		want   []string
	}{
		{map[string]string{"instance": "10.0.0.4:9464"}, nil, []string{"10.0.0.4"}},
		{map[string]string{"instance": "vm1"}, nil, []string{"vm1"}},
		{map[string]string{"instance": "[fd00::4]:9464"}, nil, []string{"fd00::4"}},
		{map[string]string{"host": "vm1", "instance": "vm1:9100", "node": "vm2", "nodename": " "}, nil, []string{"vm1", "vm2"}},
		{map[string]string{"host": "vm1", "pod_host": "vm3"}, []string{"pod_host"}, []string{"vm3"}},
		{map[string]string{"job": "x"}, nil, nil},
	}
	for _, tt := range tests {
		if got := payload.LabelCandidates(tt.labels, tt.keys); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("LabelCandidates(%v, %v) = %v, want %v", tt.labels, tt.keys, got, tt.want)
		}
	}
}
