package arm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/monitor/armmonitor"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup/webhooktest"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/filestore"
	"github.com/tripcap/tripcap/internal/teststore"
	"github.com/tripcap/tripcap/responder"
)

// insightsFixture is the Microsoft.Insights surface over a real control
// plane, monitor and responders, behind an httptest TLS server the
// official armmonitor clients talk to. Every call acts as an Owner: the
// surface's authentication is http.Server's, tested there.
type insightsFixture struct {
	ts    *httptest.Server
	svc   *controlplane.Service
	mon   *controlplane.Monitor
	rsp   *responder.Responders
	admin context.Context
	opts  *azarm.ClientOptions
	cred  azcore.TokenCredential
}

// staticToken hands the SDK a fixed bearer.
type staticToken string

func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func newInsightsFixture(t *testing.T, store tripcap.Store) *insightsFixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	blobs, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc := controlplane.New(store, controlplane.Config{SubscriptionID: insSub, ResourceGroup: "tripcap",
		Storage: map[string]tripcap.BlobStore{"local": blobs}, DefaultStorage: "local"}, log)
	rsp, err := responder.New(svc.ResponderDeps(), log, responder.Config{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mon, err := controlplane.NewMonitor(store, log, controlplane.MonitorConfig{Responder: rsp, WebhookTargets: webhooktest.Targets()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 3)
	for _, run := range []func(context.Context) error{svc.Run, rsp.Run, mon.Run} {
		go func() { _ = run(ctx); done <- struct{}{} }()
	}
	admin := tripcap.NewContextWithPrincipal(context.Background(), &tripcap.Principal{Kind: tripcap.PrincipalBootstrap, Assignments: tripcap.OwnerEverywhere()})
	a := New(log, Services{Control: svc, Monitor: mon, Responders: rsp}, WithSubscriptions(func(_ *http.Request, id string) (bool, error) {
		return strings.EqualFold(id, insSub), nil
	}))
	// The bearer names the caller's one role at "*" ("test" is an Owner).
	ts := httptest.NewTLSServer(a.Handler(func(_ *Route, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := tripcap.PrincipalFromContext(admin)
			if role := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "); role != "test" {
				p = &tripcap.Principal{Kind: tripcap.PrincipalService, Name: role, Assignments: []tripcap.RoleAssignment{{Role: tripcap.RoleName(role), Scope: tripcap.ScopeAll}}}
			}
			h.ServeHTTP(w, r.WithContext(tripcap.NewContextWithPrincipal(r.Context(), p)))
		})
	}))
	t.Cleanup(func() {
		ts.Close()
		cancel()
		for range 3 {
			<-done
		}
	})
	opts := &azarm.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Cloud: cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: ts.URL, Audience: "https://management.azure.com/"},
			}},
			Transport: ts.Client(),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableRPRegistration: true,
	}
	return &insightsFixture{ts: ts, svc: svc, mon: mon, rsp: rsp, admin: admin, opts: opts, cred: staticToken("test")}
}

// enroll enrolls a host filed under sub/rg and returns its agent's context.
func (f *insightsFixture) enroll(t *testing.T, name, rg string) (context.Context, *tripcap.Host) {
	t.Helper()
	return f.enrollAt(t, name, rg, "westeurope")
}

func (f *insightsFixture) enrollAt(t *testing.T, name, rg, location string) (context.Context, *tripcap.Host) {
	t.Helper()
	jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: name, Location: location,
		Labels: map[string]string{tripcap.LabelSubscription: insSub, tripcap.LabelResourceGroup: rg}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.Authenticate(context.Background(), resp.Credential)
	if err != nil {
		t.Fatal(err)
	}
	return tripcap.NewContextWithPrincipal(context.Background(), p), resp.Host
}

// wantARMError checks err is the SDK's error for an ARM answer with status
// and code whose body mentions part.
func wantARMError(t *testing.T, err error, status int, code, part string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("want a %d %s, got %v", status, code, err)
	}
	if re.StatusCode != status || re.ErrorCode != code || !strings.Contains(err.Error(), part) {
		t.Fatalf("want %d %s mentioning %q, got %d %s: %v", status, code, part, re.StatusCode, re.ErrorCode, err)
	}
}

func TestInsightsSDKActionGroupsAndMetricAlerts(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := newInsightsFixture(t, store)
		ctx := context.Background()
		hook := webhooktest.Start(t)
		if _, err := f.rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "capture-vm"}); err != nil {
			t.Fatal(err)
		}
		_, host := f.enroll(t, "vm1", "web")
		groups, err := armmonitor.NewActionGroupsClient(insSub, f.cred, f.opts)
		if err != nil {
			t.Fatal(err)
		}
		alerts, err := armmonitor.NewMetricAlertsClient(insSub, f.cred, f.opts)
		if err != nil {
			t.Fatal(err)
		}

		// An action group with a webhook and the responder as an Azure Function.
		g := armmonitor.ActionGroupResource{Location: to.Ptr("Global"), Tags: map[string]*string{"team": to.Ptr("net")}, Properties: &armmonitor.ActionGroup{
			GroupShortName: to.Ptr("capture"), Enabled: to.Ptr(true),
			WebhookReceivers: []*armmonitor.WebhookReceiver{{Name: to.Ptr("hook"), ServiceURI: to.Ptr(hook.URL + "/alerts?token=s3cret"), UseCommonAlertSchema: to.Ptr(true)}},
			AzureFunctionReceivers: []*armmonitor.AzureFunctionReceiver{{Name: to.Ptr("PacketCapture"),
				FunctionAppResourceID: to.Ptr("/subscriptions/" + insSub + "/resourceGroups/monitoring/providers/Microsoft.Web/sites/netwatch"),
				FunctionName:          to.Ptr("capture-vm"), HTTPTriggerURL: to.Ptr(f.ts.URL + "/api/functions/capture-vm?code=abc"), UseCommonAlertSchema: to.Ptr(false)}},
		}}
		created, err := groups.CreateOrUpdate(ctx, "monitoring", "capture", g, nil)
		if err != nil {
			t.Fatal(err)
		}
		groupID := *created.ID
		if groupID != insightsID(insSub, "monitoring", typeActionGroups, "capture") || *created.Tags["team"] != "net" {
			t.Errorf("created: %s %v", groupID, created.Tags)
		}
		fn := created.Properties.AzureFunctionReceivers[0]
		if *fn.HTTPTriggerURL != f.ts.URL+"/api/functions/capture-vm" || *fn.FunctionName != "capture-vm" {
			t.Errorf("function receiver: %s %s", *fn.HTTPTriggerURL, *fn.FunctionName)
		}
		if s := *created.Properties.WebhookReceivers[0].ServiceURI; strings.Contains(s, "s3cret") {
			t.Errorf("the answer shows the webhook's token: %s", s)
		}
		// It is tripcap's group, with the responder as its receiver.
		tg, err := f.mon.FindActionGroup(f.admin, "capture")
		if err != nil {
			t.Fatal(err)
		}
		if len(tg.ResponderReceivers) != 1 || tg.ResourceGroup != "monitoring" || tg.SubscriptionID != insSub {
			t.Errorf("tripcap's group: %+v", tg)
		}
		// A GET sent back unchanged replaces it with itself (200, the webhook's URL restored).
		got, err := groups.Get(ctx, "monitoring", "capture", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := groups.CreateOrUpdate(ctx, "monitoring", "capture", got.ActionGroupResource, nil); err != nil {
			t.Fatalf("PUT of a GET: %v", err)
		}
		if kept, err := store.FindActionGroup(ctx, tripcap.ActionGroupFilter{Name: to.Ptr("capture")}); err != nil || kept.WebhookReceivers[0].ServiceURI != hook.URL+"/alerts?token=s3cret" {
			t.Errorf("webhook URL not restored: %+v %v", kept, err)
		}
		if _, err := groups.Get(ctx, "elsewhere", "capture", nil); err == nil {
			t.Fatal("found in another resource group")
		} else {
			wantARMError(t, err, 404, "ResourceNotFound", "capture")
		}
		patched, err := groups.Update(ctx, "monitoring", "capture", armmonitor.ActionGroupPatchBody{Properties: &armmonitor.ActionGroupPatch{Enabled: to.Ptr(false)}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if *patched.Properties.Enabled || *patched.Tags["team"] != "net" {
			t.Errorf("patched: enabled %v tags %v", *patched.Properties.Enabled, patched.Tags)
		}
		var listed []string
		for pager := groups.NewListBySubscriptionIDPager(nil); pager.More(); {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range page.Value {
				listed = append(listed, *v.Name)
			}
		}
		if len(listed) != 1 || listed[0] != "capture" {
			t.Errorf("listed by subscription: %v", listed)
		}
		// A receiver kind tripcap does not have is refused by name.
		bad := g
		bad.Properties = &armmonitor.ActionGroup{GroupShortName: to.Ptr("sms"), Enabled: to.Ptr(true),
			SmsReceivers: []*armmonitor.SmsReceiver{{Name: to.Ptr("s"), CountryCode: to.Ptr("1"), PhoneNumber: to.Ptr("5550100")}}}
		_, err = groups.CreateOrUpdate(ctx, "monitoring", "sms", bad, nil)
		wantARMError(t, err, 400, "InvalidRequestFormat", "properties.smsReceivers")

		// The current seed's rule on the VM, notifying the group.
		rule := seedAlert()
		rule.Properties.Scopes = []*string{to.Ptr(host.ResourceID())}
		rule.Properties.Actions = []*armmonitor.MetricAlertAction{{ActionGroupID: to.Ptr(strings.ToLower(groupID)), WebHookProperties: map[string]*string{"capture": to.Ptr("30")}}}
		made, err := alerts.CreateOrUpdate(ctx, "monitoring", "seed", rule, nil)
		if err != nil {
			t.Fatal(err)
		}
		if *made.ID != insightsID(insSub, "monitoring", typeMetricAlerts, "seed") || *made.Properties.Actions[0].ActionGroupID != groupID {
			t.Errorf("made: %s %s", *made.ID, *made.Properties.Actions[0].ActionGroupID)
		}
		crit, ok := made.Properties.Criteria.(*armmonitor.MetricAlertSingleResourceMultipleMetricCriteria)
		if !ok || *crit.AllOf[0].MetricName != "Network Out Total" || *crit.AllOf[0].Threshold != 3 {
			t.Errorf("criteria: %+v", made.Properties.Criteria)
		}
		tr, err := f.mon.FindRule(f.admin, "seed")
		if err != nil {
			t.Fatal(err)
		}
		if !tr.InScope(host) || tr.Actions[0].ActionGroupID != tg.ID || tr.ResourceGroup != "monitoring" {
			t.Errorf("tripcap's rule: %+v", tr)
		}
		upd, err := alerts.Update(ctx, "monitoring", "seed", armmonitor.MetricAlertResourcePatch{Properties: &armmonitor.MetricAlertPropertiesPatch{
			Enabled: to.Ptr(false), Severity: to.Ptr[int32](1)}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if *upd.Properties.Enabled || *upd.Properties.Severity != 1 || *upd.Properties.EvaluationFrequency != "PT1M" || *upd.Properties.Description != "Network Out Total above 3" {
			t.Errorf("patched rule: %+v", upd.Properties)
		}
		var rules []string
		for pager := alerts.NewListByResourceGroupPager("monitoring", nil); pager.More(); {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range page.Value {
				rules = append(rules, *v.Name)
			}
		}
		if len(rules) != 1 || rules[0] != "seed" {
			t.Errorf("listed: %v", rules)
		}
		for pager := alerts.NewListByResourceGroupPager("web", nil); pager.More(); {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Value) != 0 {
				t.Errorf("listed in another group: %d", len(page.Value))
			}
		}

		// What tripcap cannot honour is refused, naming it.
		withCustom := seedAlert()
		withCustom.Properties.CustomProperties = map[string]*string{"a": to.Ptr("b")}
		_, err = alerts.CreateOrUpdate(ctx, "monitoring", "custom", withCustom, nil)
		wantARMError(t, err, 400, "InvalidRequestFormat", "properties.customProperties")
		toNowhere := seedAlert()
		toNowhere.Properties.Actions[0].ActionGroupID = to.Ptr(insightsID(insSub, "elsewhere", typeActionGroups, "capture"))
		_, err = alerts.CreateOrUpdate(ctx, "monitoring", "nowhere", toNowhere, nil)
		wantARMError(t, err, 400, "InvalidRequestFormat", "properties.actions[0].actionGroupId")
		// A name is the server's: the same rule name in another group is a conflict.
		_, err = alerts.CreateOrUpdate(ctx, "other", "SEED", rule, nil)
		wantARMError(t, err, 409, "Conflict", "monitoring")

		// A group a rule uses is not deleted; the rule then the group are.
		_, err = groups.Delete(ctx, "monitoring", "capture", nil)
		wantARMError(t, err, 409, "Conflict", "seed")
		if _, err := alerts.Delete(ctx, "monitoring", "seed", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := alerts.Delete(ctx, "monitoring", "seed", nil); err != nil {
			t.Fatalf("deleting a deleted rule (204): %v", err)
		}
		if _, err := groups.Delete(ctx, "monitoring", "capture", nil); err != nil {
			t.Fatal(err)
		}
		_, err = alerts.Get(ctx, "monitoring", "seed", nil)
		wantARMError(t, err, 404, "ResourceNotFound", "seed")
	})
}

func TestInsightsAPIVersionsPerResourceType(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) { apiVersionsPerResourceType(t, store) })
}

func apiVersionsPerResourceType(t *testing.T, store tripcap.Store) {
	f := newInsightsFixture(t, store)
	for _, c := range []struct {
		path, version string
		status        int
		code          string
	}{
		{"/resourceGroups/rg/providers/Microsoft.Insights/metricAlerts", "2018-03-01", 200, ""},
		{"/resourceGroups/rg/providers/Microsoft.Insights/metricAlerts", "2024-02-01", 400, "InvalidApiVersionParameter"},
		{"/resourceGroups/rg/providers/Microsoft.Insights/actionGroups", "2019-06-01", 200, ""},
		{"/resourceGroups/rg/providers/Microsoft.Insights/actionGroups", "2026-01-01", 400, "InvalidApiVersionParameter"},
		{"/providers/Microsoft.Insights/metricAlerts", "2099-01-01", 400, "InvalidApiVersionParameter"},
		{"/providers/Microsoft.Insights/metricAlerts", "", 400, "MissingApiVersionParameter"},
		{"/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/nope/providers/Microsoft.Insights/metrics", "2024-02-01", 400, "InvalidRequestFormat"},
		{"/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/nope/providers/Microsoft.Insights/metricDefinitions", "2018-01-01", 404, "ResourceNotFound"},
	} {
		url := f.ts.URL + "/subscriptions/" + insSub + c.path
		if c.version != "" {
			url += "?api-version=" + c.version
		}
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer test")
		resp, err := f.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		code := ""
		if body.Error != nil {
			code = body.Error.Code
		}
		if resp.StatusCode != c.status || code != c.code {
			t.Errorf("%s?api-version=%s: %d %s, want %d %s", c.path, c.version, resp.StatusCode, code, c.status, c.code)
		}
	}
}

func TestInsightsSDKMetrics(t *testing.T) {
	teststore.Each(t, sdkMetrics)
}

func sdkMetrics(t *testing.T, store tripcap.Store) {
	f := newInsightsFixture(t, store)
	ctx := context.Background()
	agent, host := f.enroll(t, "vm1", "web")
	// Two minutes of one point a second: the host sends 10 bytes a second,
	// 6 on eth0 and 4 on eth1.
	start := time.Now().UTC().Truncate(time.Minute).Add(-3 * time.Minute)
	var b tripcap.MetricBatch
	for i := 1; i <= 120; i++ {
		at := start.Add(time.Duration(i) * time.Second)
		b.Points = append(b.Points,
			tripcap.MetricPoint{Metric: tripcap.MetricNetworkOutBytes, Time: at, Value: 10},
			tripcap.MetricPoint{Metric: tripcap.MetricNetworkOutBytes, Interface: "eth0", Time: at, Value: 6},
			tripcap.MetricPoint{Metric: tripcap.MetricNetworkOutBytes, Interface: "eth1", Time: at, Value: 4},
			tripcap.MetricPoint{Metric: tripcap.MetricInboundFlows, Time: at, Value: float64(i % 3)})
	}
	if _, err := f.mon.IngestMetrics(agent, b); err != nil {
		t.Fatal(err)
	}
	metrics, err := armmonitor.NewMetricsClient(insSub, f.cred, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	span := start.Format(time.RFC3339) + "/" + start.Add(2*time.Minute).Format(time.RFC3339)
	res, err := metrics.List(ctx, host.ResourceID(), &armmonitor.MetricsClientListOptions{
		Metricnames: to.Ptr("Network Out Total,Inbound Flows"), Timespan: to.Ptr(span), Interval: to.Ptr("PT1M"), Aggregation: to.Ptr("Average,Total,Maximum"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if *res.Namespace != tripcap.MetricNamespace || *res.Resourceregion != "westeurope" || *res.Interval != "PT1M" || len(res.Value) != 2 {
		t.Fatalf("response: %+v", res.Response)
	}
	out := res.Value[0]
	if *out.Name.Value != "Network Out Total" || *out.Unit != armmonitor.MetricUnitBytes || len(out.Timeseries) != 1 || len(out.Timeseries[0].Data) != 2 {
		t.Fatalf("Network Out Total: %+v", out)
	}
	for i, d := range out.Timeseries[0].Data {
		if !d.TimeStamp.Equal(start.Add(time.Duration(i)*time.Minute)) || d.Total == nil || *d.Total != 600 || *d.Average != 10 || *d.Maximum != 10 || d.Count != nil {
			t.Errorf("minute %d: %+v", i, d)
		}
	}
	if flows := res.Value[1]; *flows.Name.Value != "Inbound Flows" || *flows.Timeseries[0].Data[0].Maximum != 2 {
		t.Errorf("Inbound Flows: %+v", flows.Timeseries[0].Data[0])
	}

	// Split by interface, busiest first, top 1.
	res, err = metrics.List(ctx, host.ResourceID(), &armmonitor.MetricsClientListOptions{
		Metricnames: to.Ptr("Network Out Total"), Timespan: to.Ptr(span), Interval: to.Ptr("FULL"), Aggregation: to.Ptr("Total"),
		Filter: to.Ptr("interface eq '*'"), Orderby: to.Ptr("Total desc"), Top: to.Ptr[int32](1),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := res.Value[0].Timeseries
	if len(ts) != 1 || *ts[0].Metadatavalues[0].Value != "eth0" || len(ts[0].Data) != 1 || *ts[0].Data[0].Total != 720 {
		t.Errorf("split: %d series, first %+v", len(ts), ts[0])
	}
	// No data is no value, never 0.
	res, err = metrics.List(ctx, host.ResourceID(), &armmonitor.MetricsClientListOptions{
		Metricnames: to.Ptr("Network In Total"), Timespan: to.Ptr(span), Interval: to.Ptr("PT1M"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Value[0].Timeseries[0].Data; len(d) != 2 || d[0].Total != nil || d[0].TimeStamp == nil {
		t.Errorf("no data: %+v", d)
	}
	_, err = metrics.List(ctx, host.ResourceID(), &armmonitor.MetricsClientListOptions{Metricnames: to.Ptr("Percentage CPU")})
	wantARMError(t, err, 400, "InvalidRequestFormat", "metricnames")
	_, err = metrics.List(ctx, host.ResourceID(), &armmonitor.MetricsClientListOptions{Metricnames: to.Ptr("Inbound Flows"), Filter: to.Ptr("interface eq 'eth0'")})
	wantARMError(t, err, 400, "InvalidRequestFormat", "$filter")
	_, err = metrics.List(ctx, tripcap.VMResourceID(insSub, "web", "vm2"), &armmonitor.MetricsClientListOptions{Metricnames: to.Ptr("Network In Total")})
	wantARMError(t, err, 404, "ResourceNotFound", "vm2")

	defs, err := armmonitor.NewMetricDefinitionsClient(insSub, f.cred, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for pager := defs.NewListPager(host.ResourceID(), nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Value {
			names = append(names, *d.Name.Value)
		}
	}
	if len(names) != len(tripcap.MetricDefinitions()) || names[1] != "Network Out Total" {
		t.Errorf("definitions: %v", names)
	}
	nss, err := armmonitor.NewMetricNamespacesClient(f.cred, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	page, err := nss.NewListPager(host.ResourceID(), nil).NextPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Value) != 1 || *page.Value[0].Properties.MetricNamespaceName != tripcap.MetricNamespace {
		t.Errorf("namespaces: %+v", page.Value)
	}
}

// TestInsightsSDKRuleFiresToItsGroup: a rule and group made with the SDK
// are tripcap's: the rule, scoped to a resource group and a region, fires
// on the host there (not on the one in another region) and its group posts
// the alert, with the action's webHookProperties, to the Azure Function it
// names.
func TestInsightsSDKRuleFiresToItsGroup(t *testing.T) {
	teststore.Each(t, ruleFiresToItsGroup)
}

func ruleFiresToItsGroup(t *testing.T, store tripcap.Store) {
	f := newInsightsFixture(t, store)
	ctx := context.Background()
	hook := webhooktest.Start(t)
	agent1, vm1 := f.enroll(t, "vm1", "web")
	agent2, _ := f.enrollAt(t, "vm2", "web", "eastus")
	groups, _ := armmonitor.NewActionGroupsClient(insSub, f.cred, f.opts)
	alerts, _ := armmonitor.NewMetricAlertsClient(insSub, f.cred, f.opts)
	g, err := groups.CreateOrUpdate(ctx, "monitoring", "ops", armmonitor.ActionGroupResource{Location: to.Ptr("Global"), Properties: &armmonitor.ActionGroup{
		GroupShortName: to.Ptr("ops"), Enabled: to.Ptr(true),
		// A function elsewhere, as the current seed's: the alert is posted to its trigger.
		AzureFunctionReceivers: []*armmonitor.AzureFunctionReceiver{{Name: to.Ptr("PacketCaptureFunction"),
			FunctionAppResourceID: to.Ptr("/subscriptions/" + insSub + "/resourceGroups/monitoring/providers/Microsoft.Web/sites/pcap"),
			FunctionName:          to.Ptr("AlertPacketCapture"), HTTPTriggerURL: to.Ptr(hook.URL + "/metric?code=fnkey"), UseCommonAlertSchema: to.Ptr(false)}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fns := g.Properties.AzureFunctionReceivers; len(fns) != 1 || *fns[0].FunctionName != "AlertPacketCapture" || *fns[0].UseCommonAlertSchema || strings.Contains(*fns[0].HTTPTriggerURL, "fnkey") {
		t.Fatalf("the function receiver as created: %+v", g.Properties)
	}
	_, err = alerts.CreateOrUpdate(ctx, "monitoring", "egress", armmonitor.MetricAlertResource{Location: to.Ptr("global"), Properties: &armmonitor.MetricAlertProperties{
		Severity: to.Ptr[int32](1), Enabled: to.Ptr(true), Scopes: []*string{to.Ptr("/subscriptions/" + insSub + "/resourceGroups/web")},
		TargetResourceType: to.Ptr("Microsoft.Compute/virtualMachines"), TargetResourceRegion: to.Ptr("westeurope"),
		EvaluationFrequency: to.Ptr("PT1S"), WindowSize: to.Ptr("PT5S"),
		Criteria: &armmonitor.MetricAlertMultipleResourceMultipleMetricCriteria{AllOf: []armmonitor.MultiMetricCriteriaClassification{&armmonitor.MetricCriteria{
			Name: to.Ptr("Metric1"), MetricName: to.Ptr("Network Out Total"), TimeAggregation: to.Ptr(armmonitor.AggregationTypeEnumAverage),
			Operator: to.Ptr(armmonitor.OperatorGreaterThan), Threshold: to.Ptr(1000.0)}}},
		Actions: []*armmonitor.MetricAlertAction{{ActionGroupID: g.ID, WebHookProperties: map[string]*string{"capture": to.Ptr("30")}}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().Truncate(10 * time.Second).Add(-2 * time.Minute)
	for _, agent := range []context.Context{agent1, agent2} {
		var b tripcap.MetricBatch
		for i := 1; i <= 10; i++ {
			b.Points = append(b.Points, tripcap.MetricPoint{Metric: tripcap.MetricNetworkOutBytes, Time: start.Add(time.Duration(i) * time.Second), Value: 5000})
		}
		if _, err := f.mon.IngestMetrics(agent, b); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(hook.Accepted("/metric")) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // vm2's alert, were it in scope, would be here by now
	got := hook.Accepted("/metric")
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want vm1's alone", len(got))
	}
	var payload struct {
		SchemaID string `json:"schemaId"`
		Data     struct {
			Context struct {
				Name, ResourceName, ResourceID string
			} `json:"context"`
			Properties map[string]string `json:"properties"`
		} `json:"data"`
	}
	if err := json.Unmarshal(got[0].Body, &payload); err != nil {
		t.Fatal(err)
	}
	if payload.SchemaID != "AzureMonitorMetricAlert" || payload.Data.Context.Name != "egress" || payload.Data.Context.ResourceName != "vm1" ||
		!strings.EqualFold(payload.Data.Context.ResourceID, vm1.ResourceID()) || payload.Data.Properties["capture"] != "30" {
		t.Errorf("payload: %s", got[0].Body)
	}
}

// TestInsightsSDKRoles: the services authorize, and the refusals are ARM's.
// A Reader reads rules and groups and writes neither; a Monitoring
// Contributor writes rules and groups but not one with a responder, which
// starts captures.
func TestInsightsSDKRoles(t *testing.T) {
	teststore.Each(t, sdkRoles)
}

func sdkRoles(t *testing.T, store tripcap.Store) {
	f := newInsightsFixture(t, store)
	ctx := context.Background()
	if _, err := f.rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "capture-vm"}); err != nil {
		t.Fatal(err)
	}
	clients := func(role string) (*armmonitor.ActionGroupsClient, *armmonitor.MetricAlertsClient) {
		g, err := armmonitor.NewActionGroupsClient(insSub, staticToken(role), f.opts)
		if err != nil {
			t.Fatal(err)
		}
		a, err := armmonitor.NewMetricAlertsClient(insSub, staticToken(role), f.opts)
		if err != nil {
			t.Fatal(err)
		}
		return g, a
	}
	hookGroup := armmonitor.ActionGroupResource{Location: to.Ptr("Global"), Properties: &armmonitor.ActionGroup{GroupShortName: to.Ptr("cap"), Enabled: to.Ptr(true),
		WebhookReceivers: []*armmonitor.WebhookReceiver{{Name: to.Ptr("w"), ServiceURI: to.Ptr("https://hooks.example.com/x")}}}}
	fnGroup := armmonitor.ActionGroupResource{Location: to.Ptr("Global"), Properties: &armmonitor.ActionGroup{GroupShortName: to.Ptr("cap"), Enabled: to.Ptr(true),
		AzureFunctionReceivers: []*armmonitor.AzureFunctionReceiver{{Name: to.Ptr("fn"), FunctionAppResourceID: to.Ptr("/subscriptions/" + insSub + "/resourceGroups/fn/providers/Microsoft.Web/sites/app"),
			FunctionName: to.Ptr("capture-vm"), HTTPTriggerURL: to.Ptr(f.ts.URL + "/api/functions/capture-vm")}}}}

	readerGroups, readerAlerts := clients(string(tripcap.RoleReader))
	_, err := readerGroups.CreateOrUpdate(ctx, "monitoring", "capture", hookGroup, nil)
	wantARMError(t, err, 403, "AuthorizationFailed", "Microsoft.Insights/actionGroups/write")
	monGroups, monAlerts := clients(string(tripcap.RoleMonitoringContributor))
	_, err = monGroups.CreateOrUpdate(ctx, "monitoring", "responder", fnGroup, nil)
	wantARMError(t, err, 403, "AuthorizationFailed", "")
	if _, err := monGroups.CreateOrUpdate(ctx, "monitoring", "capture", hookGroup, nil); err != nil {
		t.Fatalf("a Monitoring Contributor's group: %v", err)
	}
	rule := seedAlert()
	_, err = readerAlerts.CreateOrUpdate(ctx, "monitoring", "seed", rule, nil)
	wantARMError(t, err, 403, "AuthorizationFailed", "Microsoft.Insights/metricAlerts/write")
	if _, err := monAlerts.CreateOrUpdate(ctx, "monitoring", "seed", rule, nil); err != nil {
		t.Fatalf("a Monitoring Contributor's rule: %v", err)
	}
	if _, err := readerAlerts.Get(ctx, "monitoring", "seed", nil); err != nil {
		t.Errorf("a Reader reads rules: %v", err)
	}
	_, err = readerAlerts.Delete(ctx, "monitoring", "seed", nil)
	wantARMError(t, err, 403, "AuthorizationFailed", "Microsoft.Insights/metricAlerts/delete")
	// A caller with no role at all is refused reading a VM's metrics, by
	// Microsoft.Insights' action (the extension resource's provider).
	_, host := f.enroll(t, "vm1", "web")
	nobody, err := armmonitor.NewMetricsClient(insSub, staticToken("nobody"), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = nobody.List(ctx, host.ResourceID(), &armmonitor.MetricsClientListOptions{Metricnames: to.Ptr("Network Out Total")})
	wantARMError(t, err, 403, "AuthorizationFailed", "'Microsoft.Insights/metrics/read'")
	// An Owner writes the responder's group.
	ownerGroups, _ := clients("test")
	if _, err := ownerGroups.CreateOrUpdate(ctx, "monitoring", "responder", fnGroup, nil); err != nil {
		t.Errorf("an Owner's group with a responder: %v", err)
	}
}
