package http_test

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	tchttp "github.com/tripcap/tripcap/http"
)

// TestMetricsIngestAndQuery: an agent's batch is stored under its own host
// whatever the points say, a catching-up batch larger than ordinary bodies
// is taken, and the query answers by host name with ISO or Go durations.
func TestMetricsIngestAndQuery(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	start := time.Now().Truncate(time.Minute).Add(-55 * time.Minute)
	var b tripcap.MetricBatch
	for i := range 50 * 60 { // 50 minutes of four series: over 1 MiB of JSON
		at := start.Add(time.Duration(i) * time.Second)
		for _, m := range []tripcap.MetricID{tripcap.MetricNetworkOutBytes, tripcap.MetricNetworkInBytes} {
			b.Points = append(b.Points,
				tripcap.MetricPoint{Host: "not-me", Metric: m, Time: at, Value: 10},
				tripcap.MetricPoint{Host: "not-me", Metric: m, Interface: "eth0", Time: at, Value: 10})
		}
	}
	body, _ := json.Marshal(b)
	if len(body) <= tchttp.MaxJSONBody {
		t.Fatalf("the batch is only %d bytes", len(body))
	}
	if err := f.agent.PostMetrics(ctx, b); err != nil {
		t.Fatal(err)
	}
	res, err := f.admin.QueryMetrics(ctx, controlplane.MetricsQuery{Host: "web1", Metric: "Network Out Total", Window: 20 * time.Minute,
		Interval: 5 * time.Minute, Aggregation: "Total", End: start.Add(20 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Points) != 4 || res.Host != "web1" || res.DisplayName != "Network Out Total" {
		t.Fatalf("query: %+v", res)
	}
	for _, p := range res.Points[1:] {
		if p.Count != 300 || p.Value != 3000 {
			t.Fatalf("query points %+v: want 300 points totalling 3000 per 5 minutes", res.Points)
		}
	}
	r := f.request(t, "GET", "/api/v1/hosts/web1/metrics/network_out_bytes?window=PT3M&interval=PT1M&interface=eth0", f.token, nil)
	var iso struct {
		Interface string `json:"interface"`
		Window    string `json:"window"`
		Points    []struct {
			Value *float64 `json:"value"`
			Count int      `json:"count"`
		} `json:"points"`
	}
	if err := json.NewDecoder(r.Body).Decode(&iso); err != nil || r.StatusCode != 200 || iso.Window != "PT3M" || iso.Interface != "eth0" || len(iso.Points) != 3 {
		t.Fatalf("ISO query: %s %+v %v", r.Status, iso, err)
	}
	// The data ends five minutes ago: the last three minutes are null, never 0.
	for _, p := range iso.Points {
		if p.Value != nil || p.Count != 0 {
			t.Fatalf("points without data: %+v", iso.Points)
		}
	}

	for q, field := range map[string]string{"window=forever": "window", "interval=PT0.5S": "interval", "aggregation=Median": "aggregation", "end=yesterday": "end"} {
		r := f.request(t, "GET", "/api/v1/hosts/web1/metrics/network_out_bytes?"+q, f.token, nil)
		if e := errorBody(t, r); r.StatusCode != 400 || !strings.Contains(e.Message, field) {
			t.Errorf("%s: %s %+v; want 400 naming %s", q, r.Status, e, field)
		}
	}
	jt, err := f.admin.CreateJoinToken(ctx, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	web2, err := f.admin.Enroll(ctx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web2"})
	if err != nil {
		t.Fatal(err)
	}
	r = f.request(t, "POST", "/api/v1/agent/metrics", web2.Credential, strings.NewReader(`{"points":[{"metric":"cpu","time":"2025-01-01T00:00:00Z","value":1}]}`))
	if e := errorBody(t, r); r.StatusCode != 400 || !strings.Contains(e.Message, "points[0].metric") {
		t.Errorf("unknown metric: %s %+v", r.Status, e)
	}
	r = f.request(t, "POST", "/api/v1/agent/metrics", f.token, strings.NewReader(`{"points":[]}`))
	if r.StatusCode != 403 {
		t.Errorf("an admin shipping metrics: %s, want 403", r.Status)
	}
}

// TestActionGroupSecretShownOnce: the create answer holds the signing
// secret (and is not to be cached); no later answer does.
func TestActionGroupSecretShownOnce(t *testing.T) {
	f := newFixture(t)
	body := `{"name":"ops","webhookReceivers":[{"name":"w","serviceUri":"https://example.invalid/hook","useCommonAlertSchema":true}]}`
	r := f.request(t, "POST", "/api/v1/action-groups", f.token, strings.NewReader(body))
	var g tripcap.ActionGroup
	if err := json.NewDecoder(r.Body).Decode(&g); err != nil || r.StatusCode != 201 || len(g.SigningSecret) < 32 || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %s %+v %v", r.Status, g, err)
	}
	for _, p := range []string{"/api/v1/action-groups/ops", "/api/v1/action-groups/" + g.ID, "/api/v1/action-groups"} {
		r := f.request(t, "GET", p, f.token, nil)
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 || bytes.Contains(b, []byte(g.SigningSecret)) || bytes.Contains(b, []byte(`"signingSecret":`)) || !bytes.Contains(b, []byte(`"signingSecretSet":true`)) {
			t.Fatalf("GET %s: %s shows the secret: %s", p, r.Status, b)
		}
	}
	// A rule naming the group; the group cannot go while the rule uses it.
	rule := `{"name":"high-egress","scopes":["*"],"evaluationFrequency":"PT1M","windowSize":"PT5M","criteria":{"allOf":[{"criterionType":"StaticThresholdCriterion","metricName":"Network Out Total","timeAggregation":"Average","operator":"GreaterThan","threshold":3}]},"actions":[{"actionGroupId":"ops"}]}`
	if r := f.request(t, "POST", "/api/v1/alert-rules", f.token, strings.NewReader(rule)); r.StatusCode != 201 {
		t.Fatalf("create rule: %s %+v", r.Status, errorBody(t, r))
	}
	if r := f.request(t, "DELETE", "/api/v1/action-groups/ops", f.token, nil); r.StatusCode != 409 || !strings.Contains(errorBody(t, r).Message, "high-egress") {
		t.Fatalf("deleting a group in use: %s", r.Status)
	}
	bad := strings.Replace(rule, `"threshold":3`, `"threshold":"3"`, 1)
	if r := f.request(t, "POST", "/api/v1/alert-rules", f.token, strings.NewReader(bad)); r.StatusCode != 400 || !strings.Contains(errorBody(t, r).Message, "threshold") {
		t.Fatalf("a string threshold: %s", r.Status)
	}
	alerts, err := f.admin.ListAlerts(t.Context(), controlplane.AlertQuery{Rule: "high-egress", State: "Fired"})
	if err != nil || len(alerts) != 0 {
		t.Fatalf("alerts of a quiet rule: %v %v", alerts, err)
	}
}

// TestMetricsIngestInstrumented: /metrics says how late points arrived and
// how many the store refused, and has the evaluator's lag histogram.
func TestMetricsIngestInstrumented(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	now := time.Now().Truncate(time.Second)
	b := tripcap.MetricBatch{Points: []tripcap.MetricPoint{
		{Metric: tripcap.MetricNetworkOutBytes, Time: now, Value: 1},
		{Metric: tripcap.MetricNetworkInBytes, Time: now, Value: 1},
		{Metric: tripcap.MetricNetworkInBytes, Time: now.Add(-3 * time.Second), Value: 1},
	}}
	if err := f.agent.PostMetrics(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := f.agent.PostMetrics(ctx, b); err != nil { // every point again: duplicates
		t.Fatal(err)
	}
	r := f.request(t, "GET", "/metrics", f.token, nil)
	body, _ := io.ReadAll(r.Body)
	text := string(body)
	for _, want := range []string{
		"tripcap_metric_point_delay_seconds_count 6",
		`tripcap_metric_point_delay_seconds_bucket{le="2"} 4`, // the -3 s point, twice, is later
		`tripcap_metric_points_refused_total{reason="duplicate"} 3`,
		`tripcap_metric_points_refused_total{reason="too_old"} 0`,
		"tripcap_alert_evaluation_lag_seconds_count",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
