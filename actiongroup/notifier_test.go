package actiongroup

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

var fired = time.Date(2026, 3, 2, 10, 4, 0, 0, time.UTC)

// seedAlert is the current seed's rule firing on a host.
func seedAlert() tripcap.Alert {
	eval := tripcap.AlertEvaluation{
		MonitorCondition: tripcap.ConditionFired, Time: fired,
		WindowStartTime: fired.Add(-5 * time.Minute), WindowEndTime: fired,
		AllOf: []tripcap.ConditionResult{{
			Name: "Metric1", MetricName: "Network Out Total", MetricNamespace: tripcap.MetricNamespace, Metric: tripcap.MetricNetworkOutBytes,
			Operator: tripcap.OperatorGreaterThan, TimeAggregation: tripcap.AggregationAverage, Dimensions: []tripcap.DimensionValue{},
			MetricValue: 1234.5, Threshold: 3, Met: true,
		}},
	}
	return tripcap.Alert{
		ID: "a1b2", RuleID: "r1", RuleName: "seed-network-out", Description: "seed rule", Severity: 3,
		HostID: "h1", HostName: "vm1", TargetResourceID: tripcap.VMResourceID("sub1", "RG1", "vm1"),
		SubscriptionID: "sub1", ResourceGroup: "RG1", Location: "westeurope",
		ConditionType: tripcap.ConditionTypeStatic, WindowSize: "PT5M", MonitorCondition: tripcap.ConditionFired,
		FiredAt: fired, Condition: eval, History: []tripcap.AlertEvaluation{eval},
	}
}

type memLog struct {
	mu sync.Mutex
	ds []tripcap.Delivery
}

func (l *memLog) RecordDelivery(_ context.Context, d tripcap.Delivery) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ds = append(l.ds, d)
	return nil
}

func fastRetry() Retry {
	return Retry{Attempts: 4, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Total: 10 * time.Second, PerAttempt: 2 * time.Second}
}

type received struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP server on 127.0.0.1 answering with the given
// statuses in turn (200 once they run out).
func receiver(t *testing.T, statuses ...int) (*httptest.Server, func() []received) {
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Header.Clone(), body})
		n := len(got)
		mu.Unlock()
		if n <= len(statuses) {
			if statuses[n-1] == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "0")
			}
			http.Error(w, "busy", statuses[n-1])
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received { mu.Lock(); defer mu.Unlock(); return append([]received(nil), got...) }
}

func TestCommonAlertSchemaWebhook(t *testing.T) {
	srv, got := receiver(t)
	log := &memLog{}
	n, err := New(Config{Log: log, Retry: fastRetry(), Targets: loopback})
	if err != nil {
		t.Fatal(err)
	}
	secret := NewSecret()
	g := &tripcap.ActionGroup{ID: "ag1", Name: "oncall", SigningSecret: secret,
		WebhookReceivers: []tripcap.WebhookReceiver{{Name: "fn", ServiceURI: srv.URL + "/api/alert?code=k", UseCommonAlertSchema: true}}}
	a := seedAlert()
	ds := n.Notify(context.Background(), g, a, map[string]string{"captureName": "seed"})
	if len(ds) != 1 || !ds[0].Success || ds[0].StatusCode != 200 || !ds[0].Final || ds[0].ReceiverKind != "webhook" || ds[0].AlertID != "a1b2" {
		t.Fatalf("deliveries %+v", ds)
	}
	if len(log.ds) != 1 {
		t.Fatalf("log %+v", log.ds)
	}
	r := got()
	if len(r) != 1 {
		t.Fatalf("%d requests", len(r))
	}
	if err := Verify(secret, r[0].header.Get(HeaderSignature), r[0].header.Get(HeaderTimestamp), r[0].body, time.Now(), 0); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if r[0].header.Get(HeaderDelivery) == "" || !strings.HasPrefix(r[0].header.Get("Content-Type"), "application/json") {
		t.Fatalf("headers %v", r[0].header)
	}
	var p map[string]any
	if err := json.Unmarshal(r[0].body, &p); err != nil {
		t.Fatal(err)
	}
	data := p["data"].(map[string]any)
	ess := data["essentials"].(map[string]any)
	want := map[string]any{
		"alertId": "/subscriptions/sub1/providers/Microsoft.AlertsManagement/alerts/a1b2", "alertRule": "seed-network-out",
		"severity": "Sev3", "signalType": "Metric", "monitorCondition": "Fired", "monitoringService": "Platform",
		"firedDateTime": "2026-03-02T10:04:00.0000000Z", "description": "seed rule", "essentialsVersion": "1.0", "alertContextVersion": "1.0",
	}
	if p["schemaId"] != "azureMonitorCommonAlertSchema" {
		t.Errorf("schemaId %v", p["schemaId"])
	}
	for k, v := range want {
		if ess[k] != v {
			t.Errorf("essentials.%s = %v; want %v", k, ess[k], v)
		}
	}
	if ids := ess["alertTargetIDs"].([]any); len(ids) != 1 || ids[0] != "/subscriptions/sub1/resourcegroups/rg1/providers/microsoft.compute/virtualmachines/vm1" {
		t.Errorf("alertTargetIDs %v", ids)
	}
	if _, ok := ess["resolvedDateTime"]; ok {
		t.Error("resolvedDateTime on a fired alert")
	}
	ctx := data["alertContext"].(map[string]any)
	if ctx["conditionType"] != "SingleResourceMultipleMetricCriteria" || ctx["properties"] != nil {
		t.Errorf("alertContext %v", ctx)
	}
	cond := ctx["condition"].(map[string]any)
	if cond["windowSize"] != "PT5M" || cond["windowStartTime"] != "2026-03-02T09:59:00.0000000Z" || cond["windowEndTime"] != "2026-03-02T10:04:00.0000000Z" {
		t.Errorf("condition %v", cond)
	}
	c := cond["allOf"].([]any)[0].(map[string]any)
	// threshold is a string and metricValue a number, as Azure sends them.
	if c["threshold"] != "3" || c["metricValue"] != 1234.5 || c["metricName"] != "Network Out Total" ||
		c["operator"] != "GreaterThan" || c["timeAggregation"] != "Average" || c["metricNamespace"] != "Microsoft.Compute/virtualMachines" {
		t.Errorf("allOf[0] %v", c)
	}
	if cp := data["customProperties"].(map[string]any); cp["captureName"] != "seed" {
		t.Errorf("customProperties %v", cp)
	}
}

func TestMetricAlertSchemaWebhook(t *testing.T) {
	srv, got := receiver(t)
	n, _ := New(Config{Retry: fastRetry(), PortalURL: "https://tripcap.example/", Targets: loopback})
	g := &tripcap.ActionGroup{ID: "ag1", Name: "fn", WebhookReceivers: []tripcap.WebhookReceiver{{Name: "fn", ServiceURI: srv.URL}}}
	a := seedAlert()
	resolved := fired.Add(3 * time.Minute)
	a.MonitorCondition, a.ResolvedAt = tripcap.ConditionResolved, &resolved
	if ds := n.Notify(context.Background(), g, a, nil); len(ds) != 1 || !ds[0].Success {
		t.Fatalf("deliveries %+v", ds)
	}
	r := got()[0]
	if r.header.Get(HeaderSignature) != "" {
		t.Error("signed without a secret")
	}
	// The current seed's function reads data.context.resource*.
	var p struct {
		SchemaID string `json:"schemaId"`
		Data     struct {
			Version    string            `json:"version"`
			Status     string            `json:"status"`
			Properties map[string]string `json:"properties"`
			Context    map[string]any    `json:"context"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	c := p.Data.Context
	if p.SchemaID != "AzureMonitorMetricAlert" || p.Data.Version != "2.0" || p.Data.Status != "Resolved" || p.Data.Properties != nil {
		t.Errorf("envelope %+v", p)
	}
	want := map[string]any{
		"resourceType": "Microsoft.Compute/virtualMachines", "resourceGroupName": "RG1", "resourceName": "vm1",
		"resourceId":     "/subscriptions/sub1/resourceGroups/RG1/providers/Microsoft.Compute/virtualMachines/vm1",
		"subscriptionId": "sub1", "severity": "3", "name": "seed-network-out", "conditionType": "SingleResourceMultipleMetricCriteria",
		"timestamp": "2026-03-02T10:07:00.0000000Z", "portalLink": "https://tripcap.example/alerts/a1b2",
		"id": "/subscriptions/sub1/resourceGroups/RG1/providers/microsoft.insights/metricAlerts/seed-network-out",
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("context.%s = %v; want %v", k, c[k], v)
		}
	}
	item := c["condition"].(map[string]any)["allOf"].([]any)[0].(map[string]any)
	if item["threshold"] != "3" || item["metricValue"] != 1234.5 {
		t.Errorf("allOf[0] %v", item)
	}
}

func TestWebhookRetries(t *testing.T) {
	srv, got := receiver(t, 500, 429, 503)
	log := &memLog{}
	n, _ := New(Config{Log: log, Retry: fastRetry(), Targets: loopback})
	g := &tripcap.ActionGroup{ID: "ag1", Name: "g", SigningSecret: "s", WebhookReceivers: []tripcap.WebhookReceiver{{Name: "w", ServiceURI: srv.URL}}}
	ds := n.Notify(context.Background(), g, seedAlert(), nil)
	if len(ds) != 4 {
		t.Fatalf("want 4 attempts: %+v", ds)
	}
	for i, d := range ds {
		if d.Attempt != i+1 || d.Success != (i == 3) || d.Final != (i == 3) {
			t.Errorf("attempt %d: %+v", i+1, d)
		}
	}
	if ds[0].StatusCode != 500 || ds[1].StatusCode != 429 || ds[2].StatusCode != 503 || ds[3].StatusCode != 200 {
		t.Errorf("statuses %+v", ds)
	}
	if len(log.ds) != 4 {
		t.Errorf("log has %d", len(log.ds))
	}
	// One delivery id across retries, a fresh signature per attempt.
	r := got()
	for _, x := range r[1:] {
		if x.header.Get(HeaderDelivery) != r[0].header.Get(HeaderDelivery) {
			t.Error("delivery id changed between retries")
		}
		if err := Verify("s", x.header.Get(HeaderSignature), x.header.Get(HeaderTimestamp), x.body, time.Now(), 0); err != nil {
			t.Error(err)
		}
	}
}

func TestWebhookPermanentAndExhausted(t *testing.T) {
	srv, _ := receiver(t, 400)
	n, _ := New(Config{Retry: fastRetry(), Targets: loopback})
	g := &tripcap.ActionGroup{ID: "ag1", Name: "g", WebhookReceivers: []tripcap.WebhookReceiver{{Name: "w", ServiceURI: srv.URL}}}
	if ds := n.Notify(context.Background(), g, seedAlert(), nil); len(ds) != 1 || ds[0].Success || !ds[0].Final || ds[0].StatusCode != 400 {
		t.Fatalf("400: %+v", ds)
	}
	// Nobody listening: network errors, retried up to the attempt limit.
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	g.WebhookReceivers[0].ServiceURI = url
	ds := n.Notify(context.Background(), g, seedAlert(), nil)
	if len(ds) != 4 || !ds[3].Final || ds[3].Success || ds[0].Error == "" {
		t.Fatalf("unreachable: %+v", ds)
	}
	// The total time bound ends retries early.
	n2, _ := New(Config{Retry: Retry{Attempts: 100, Initial: 20 * time.Millisecond, Max: 20 * time.Millisecond, Total: 200 * time.Millisecond}, Targets: loopback})
	start := time.Now()
	ds = n2.Notify(context.Background(), g, seedAlert(), nil)
	if el := time.Since(start); el > 2*time.Second || len(ds) >= 100 || !ds[len(ds)-1].Final {
		t.Fatalf("total bound: %d attempts in %v", len(ds), el)
	}
}

type fakeResponder struct {
	calls atomic.Int32
	err   error
}

func (f *fakeResponder) Trigger(_ context.Context, a tripcap.Alert, r tripcap.ResponderReceiver) error {
	if a.ID != "a1b2" || r.Name != "capture" {
		return errors.New("wrong alert or receiver")
	}
	f.calls.Add(1)
	return f.err
}

func (f *fakeResponder) CheckReceiver(_ context.Context, field string, r tripcap.ResponderReceiver) error {
	if r.ResponderID != "pc1" {
		return tripcap.Errorf(tripcap.EINVALID, "%s.responderId: no responder %q", field, r.ResponderID)
	}
	return nil
}

// Check refuses, naming the field, a receiver this server cannot deliver
// to: email without SMTP, a responder without the responder service or
// naming no responder. Webhooks need nothing.
func TestCheckReceivers(t *testing.T) {
	bare, _ := New(Config{})
	withResponder, _ := New(Config{Responder: &fakeResponder{}, SMTP: &SMTPConfig{Addr: "127.0.0.1:25", From: "alerts@example.test"}})
	hook := tripcap.WebhookReceiver{Name: "w", ServiceURI: "https://example.test/hook"}
	for _, c := range []struct {
		n    *Notifier
		g    tripcap.ActionGroup
		want string
	}{
		{bare, tripcap.ActionGroup{WebhookReceivers: []tripcap.WebhookReceiver{hook}}, ""},
		{bare, tripcap.ActionGroup{WebhookReceivers: []tripcap.WebhookReceiver{hook}, EmailReceivers: []tripcap.EmailReceiver{{Name: "e", EmailAddress: "ops@example.test"}}}, "emailReceivers[0]: this server has no SMTP server"},
		{bare, tripcap.ActionGroup{ResponderReceivers: []tripcap.ResponderReceiver{{Name: "r", ResponderID: "pc1"}}}, "responderReceivers[0]: this server has no responder service"},
		{withResponder, tripcap.ActionGroup{EmailReceivers: []tripcap.EmailReceiver{{Name: "e", EmailAddress: "ops@example.test"}},
			ResponderReceivers: []tripcap.ResponderReceiver{{Name: "r", ResponderID: "pc1"}, {Name: "s", ResponderID: "gone"}}}, `responderReceivers[1].responderId: no responder "gone"`},
	} {
		err := c.n.Check(context.Background(), &c.g)
		if c.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", c.g, err)
			}
			continue
		}
		if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(tripcap.ErrorMessage(err), c.want) {
			t.Errorf("%+v: %v, want EINVALID with %q", c.g, err, c.want)
		}
	}
}

func TestResponderAndGroups(t *testing.T) {
	fr := &fakeResponder{}
	n, _ := New(Config{Responder: fr, Retry: fastRetry()})
	g := &tripcap.ActionGroup{ID: "ag1", Name: "g", ResponderReceivers: []tripcap.ResponderReceiver{{Name: "capture", ResponderID: "pc1"}}}
	a := seedAlert()
	a.Actions = []tripcap.Action{{ActionGroupID: "ag1"}, {ActionGroupID: "missing"}}
	ds := n.NotifyAlert(context.Background(), a, func(_ context.Context, id string) (*tripcap.ActionGroup, error) {
		if id == "ag1" {
			return g, nil
		}
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no group %s", id)
	})
	if len(ds) != 1 || !ds[0].Success || ds[0].ReceiverKind != "responder" || fr.calls.Load() != 1 {
		t.Fatalf("responder deliveries %+v", ds)
	}
	fr.err = errors.New("capture limit")
	if ds := n.Notify(context.Background(), g, a, nil); len(ds) != 1 || ds[0].Success || ds[0].Error != "capture limit" || !ds[0].Final {
		t.Fatalf("failing responder %+v", ds)
	}
	off := false
	g.Enabled = &off
	if ds := n.Notify(context.Background(), g, a, nil); len(ds) != 0 {
		t.Fatalf("disabled group delivered %+v", ds)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"a":1}`)
	now := time.Unix(1_800_000_000, 0)
	sig := Sign("k", now, body)
	ts := "1800000000"
	if err := Verify("k", sig, ts, body, now.Add(time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	if err := Verify("k", sig, ts, []byte(`{"a":2}`), now, 0); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered body: %v", err)
	}
	if err := Verify("other", sig, ts, body, now, 0); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong secret: %v", err)
	}
	if err := Verify("k", sig, "1800000001", body, now, 0); !errors.Is(err, ErrBadSignature) {
		t.Errorf("moved timestamp: %v", err)
	}
	if err := Verify("k", sig, ts, body, now.Add(10*time.Minute), 0); !errors.Is(err, ErrStale) {
		t.Errorf("replayed later: %v", err)
	}
	if err := Verify("k", sig, "yesterday", body, now, 0); err == nil {
		t.Error("bad timestamp accepted")
	}
}
