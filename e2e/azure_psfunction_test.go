//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/monitor/armmonitor"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"

	"github.com/tripcap/tripcap/internal/netns"
)

// The current seed's PowerShell function, ported to Go. Each cmdlet it
// calls (Connect-AzAccount, Get-AzVM, Get-AzNetworkWatcher,
// Get-/Remove-/New-AzNetworkWatcherPacketCapture) is ported to the calls
// Az PowerShell makes for it, through the official SDK; the two scripts
// (common alert schema, and "the old schema") are ported line for line.
// Only the endpoint and the credentials differ from the seed: the
// function's $env settings and the environment Connect-AzAccount signs in to.

// psEnv is the function app's settings ($env:…) and the environment's endpoints.
type psEnv struct {
	AzureTenant, AzureClientID, AzureCredPassword string
	// The environment (Add-AzEnvironment): where Connect-AzAccount signs in
	// and the ARM endpoint; Az PowerShell asks tokens for the
	// management.core.windows.net audience.
	a *azureLab
}

// azContext is what Connect-AzAccount leaves: a credential and the
// subscription it selected (the first the principal can see).
type azContext struct {
	ctx          context.Context
	cred         azcore.TokenCredential
	opts         *arm.ClientOptions
	subscription string
}

// connectAzAccount is Connect-AzAccount -ServicePrincipal -Tenant
// -Credential: a token for the principal, then the subscriptions it
// sees (GET /subscriptions), the first Enabled one of the tenant selected.
func (e psEnv) connectAzAccount(ctx context.Context) (*azContext, error) {
	cred := e.a.credential(e.AzureClientID, e.AzureCredPassword, armCoreAudience)
	opts := e.a.armOptions(armCoreAudience, nil)
	c, err := arm.NewClient("Az.Accounts", "v5.0.0", cred, opts)
	if err != nil {
		return nil, err
	}
	subs, err := listSubscriptions(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("Connect-AzAccount: %w", err)
	}
	for _, s := range subs {
		if strings.EqualFold(s.TenantID, e.AzureTenant) && s.State == "Enabled" && s.SubscriptionID != "" {
			return &azContext{ctx: ctx, cred: cred, opts: opts, subscription: s.SubscriptionID}, nil
		}
	}
	return nil, fmt.Errorf("Connect-AzAccount: no Enabled subscription of tenant %s among %+v", e.AzureTenant, subs)
}

// subscriptionTenant is Get-AzSubscription's TenantId of the lab's
// subscription, as the principal signed in sees it (GET /subscriptions).
func (a *azureLab) subscriptionTenant(s signIn) string {
	a.t.Helper()
	c, err := arm.NewClient("Az.Accounts", "v5.0.0", s.cred, s.opts)
	if err != nil {
		a.t.Fatal(err)
	}
	subs, err := listSubscriptions(a.t.Context(), c)
	if err != nil {
		a.t.Fatalf("Get-AzSubscription: %v", err)
	}
	for _, sub := range subs {
		if sub.SubscriptionID == azSubscription {
			return sub.TenantID
		}
	}
	a.t.Fatalf("Get-AzSubscription: %s is not among %+v", azSubscription, subs)
	return ""
}

// azSubscriptionJSON is a subscription as GET /subscriptions lists it.
type azSubscriptionJSON struct {
	ID             string `json:"id"`
	SubscriptionID string `json:"subscriptionId"`
	TenantID       string `json:"tenantId"`
	DisplayName    string `json:"displayName"`
	State          string `json:"state"`
}

// listSubscriptions is GET /subscriptions (Subscriptions_List), every page.
func listSubscriptions(ctx context.Context, c *arm.Client) ([]azSubscriptionJSON, error) {
	var all []azSubscriptionJSON
	next := runtime.JoinPaths(c.Endpoint(), "/subscriptions") + "?api-version=2022-12-01"
	for n := 0; next != "" && n < 100; n++ {
		req, err := runtime.NewRequest(ctx, http.MethodGet, next)
		if err != nil {
			return nil, err
		}
		req.Raw().Header.Set("Accept", "application/json")
		resp, err := c.Pipeline().Do(req)
		if err != nil {
			return nil, fmt.Errorf("listing subscriptions: %w", err)
		}
		if !runtime.HasStatusCode(resp, http.StatusOK) {
			return nil, fmt.Errorf("listing subscriptions: %w", runtime.NewResponseError(resp))
		}
		var page struct {
			Value    []azSubscriptionJSON `json:"value"`
			NextLink string               `json:"nextLink"`
		}
		if err := runtime.UnmarshalAsJSON(resp, &page); err != nil {
			return nil, fmt.Errorf("reading subscriptions: %w", err)
		}
		all = append(all, page.Value...)
		next = page.NextLink
	}
	return all, nil
}

// psVM is what the script reads of a PSVirtualMachine.
type psVM struct{ ID, Name, Location, ResourceGroupName string }

// getAzVMByResourceID is Get-AzVM -ResourceId: the id's group and name, a GET of the VM.
func (az *azContext) getAzVMByResourceID(id string) (*psVM, error) {
	rid, err := arm.ParseResourceID(id)
	if err != nil {
		return nil, fmt.Errorf("Get-AzVM -ResourceId %q: %w", id, err)
	}
	return az.getAzVM(rid.ResourceGroupName, rid.Name)
}

// getAzVM is Get-AzVM -ResourceGroupName -Name.
func (az *azContext) getAzVM(group, name string) (*psVM, error) {
	c, err := armcompute.NewVirtualMachinesClient(az.subscription, az.cred, az.opts)
	if err != nil {
		return nil, err
	}
	r, err := c.Get(az.ctx, group, name, nil)
	if err != nil {
		return nil, fmt.Errorf("Get-AzVM %s/%s: %w", group, name, err)
	}
	return &psVM{ID: deref(r.ID), Name: deref(r.Name), Location: deref(r.Location), ResourceGroupName: group}, nil
}

// psWatcher is a PSNetworkWatcher.
type psWatcher struct{ Name, ResourceGroupName, Location, ID string }

// getAzNetworkWatcher is Get-AzNetworkWatcher -Location: every watcher of
// the subscription, the one whose location matches (case and spaces ignored).
func (az *azContext) getAzNetworkWatcher(location string) (*psWatcher, error) {
	c, err := armnetwork.NewWatchersClient(az.subscription, az.cred, az.opts)
	if err != nil {
		return nil, err
	}
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "")) }
	for p := c.NewListAllPager(nil); p.More(); {
		page, err := p.NextPage(az.ctx)
		if err != nil {
			return nil, fmt.Errorf("Get-AzNetworkWatcher -Location %s: %w", location, err)
		}
		for _, w := range page.Value {
			if norm(deref(w.Location)) == norm(location) {
				rid, err := arm.ParseResourceID(deref(w.ID))
				if err != nil {
					return nil, fmt.Errorf("Get-AzNetworkWatcher: watcher id %q: %w", deref(w.ID), err)
				}
				return &psWatcher{Name: deref(w.Name), ResourceGroupName: rid.ResourceGroupName, Location: deref(w.Location), ID: deref(w.ID)}, nil
			}
		}
	}
	return nil, fmt.Errorf("Get-AzNetworkWatcher: there is no network watcher in location %s", location)
}

// psPacketCapture is a PSGetPacketCaptureResult: the capture and its status.
type psPacketCapture struct {
	Name, Target, PacketCaptureStatus string
}

func (az *azContext) packetCaptures() (*armnetwork.PacketCapturesClient, error) {
	return armnetwork.NewPacketCapturesClient(az.subscription, az.cred, az.opts)
}

// getAzNetworkWatcherPacketCapture is Get-AzNetworkWatcherPacketCapture
// -NetworkWatcher: the watcher's captures, each with its queried status.
func (az *azContext) getAzNetworkWatcherPacketCapture(nw *psWatcher) ([]psPacketCapture, error) {
	c, err := az.packetCaptures()
	if err != nil {
		return nil, err
	}
	var out []psPacketCapture
	for p := c.NewListPager(nw.ResourceGroupName, nw.Name, nil); p.More(); {
		page, err := p.NextPage(az.ctx)
		if err != nil {
			return nil, fmt.Errorf("Get-AzNetworkWatcherPacketCapture: %w", err)
		}
		for _, pc := range page.Value {
			ps := psPacketCapture{Name: deref(pc.Name)}
			if pc.Properties != nil {
				ps.Target = deref(pc.Properties.Target)
			}
			poller, err := c.BeginGetStatus(az.ctx, nw.ResourceGroupName, nw.Name, ps.Name, nil)
			if err != nil {
				return nil, fmt.Errorf("Get-AzNetworkWatcherPacketCapture: status of %s: %w", ps.Name, err)
			}
			st, err := poller.PollUntilDone(az.ctx, pollFast)
			if err != nil {
				return nil, fmt.Errorf("Get-AzNetworkWatcherPacketCapture: status of %s: %w", ps.Name, err)
			}
			ps.PacketCaptureStatus = string(deref(st.PacketCaptureStatus))
			out = append(out, ps)
		}
	}
	return out, nil
}

// removeAzNetworkWatcherPacketCapture is Remove-AzNetworkWatcherPacketCapture (it waits).
func (az *azContext) removeAzNetworkWatcherPacketCapture(nw *psWatcher, name string) error {
	c, err := az.packetCaptures()
	if err != nil {
		return err
	}
	p, err := c.BeginDelete(az.ctx, nw.ResourceGroupName, nw.Name, name, nil)
	if err == nil {
		_, err = p.PollUntilDone(az.ctx, pollFast)
	}
	if err != nil {
		return fmt.Errorf("Remove-AzNetworkWatcherPacketCapture %s: %w", name, err)
	}
	return nil
}

// newAzNetworkWatcherPacketCapture is New-AzNetworkWatcherPacketCapture
// -TargetVirtualMachineId -PacketCaptureName -StorageAccountId
// -TimeLimitInSeconds: only what is given is sent; it waits for the create.
func (az *azContext) newAzNetworkWatcherPacketCapture(nw *psWatcher, target, name, storageAccountID string, timeLimit int32) (*armnetwork.PacketCaptureResult, error) {
	c, err := az.packetCaptures()
	if err != nil {
		return nil, err
	}
	p, err := c.BeginCreate(az.ctx, nw.ResourceGroupName, nw.Name, name, armnetwork.PacketCapture{Properties: &armnetwork.PacketCaptureParameters{
		Target:             &target,
		StorageLocation:    &armnetwork.PacketCaptureStorageLocation{StorageID: &storageAccountID},
		TimeLimitInSeconds: &timeLimit,
	}}, nil)
	if err != nil {
		return nil, fmt.Errorf("New-AzNetworkWatcherPacketCapture %s: %w", name, err)
	}
	r, err := p.PollUntilDone(az.ctx, pollFast)
	if err != nil {
		return nil, fmt.Errorf("New-AzNetworkWatcherPacketCapture %s: %w", name, err)
	}
	return &r.PacketCaptureResult, nil
}

// psEq is PowerShell's -eq on strings: case-insensitive.
func psEq(a, b string) bool { return strings.EqualFold(a, b) }

// The seed's variables.
const (
	psPacketCaptureName     = "PSAzureFunction"
	psPacketCaptureLimit    = 100
	psPacketCaptureDuration = 30
)

// psFunction is the function app: an HTTP trigger (auth level "function":
// the key in ?code=) running one of the seed's two scripts.
type psFunction struct {
	env psEnv
	key string
	// storageaccountid is the script's $storageaccountid.
	storageaccountid string
	url              string

	mu   sync.Mutex
	runs []psRun
}

// psRun is one invocation: the script, the alert, what it wrote and how it ended.
type psRun struct {
	Script string
	Body   []byte
	Output []string
	Err    error
}

// startPSFunction serves the function on a link of its own to the server's namespace.
func startPSFunction(t *testing.T, a *azureLab, env psEnv, storageAccountID string) *psFunction {
	t.Helper()
	addr := a.net.Veth(nil, a.ctl, netns.LinkOptions{}).A.Addr.Addr()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	f := &psFunction{env: env, key: "fnkey-5d1e0c9a7b3f", storageaccountid: storageAccountID, url: "http://" + ln.Addr().String()}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: f}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

// triggerURL is the function's URL with its key, as the portal shows it.
func (f *psFunction) triggerURL(script string) string {
	return f.url + "/api/" + script + "?code=" + f.key
}

func (f *psFunction) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Query().Get("code") != f.key && r.Header.Get("x-functions-key") != f.key {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// One invocation at a time: a retried delivery runs after the first.
	f.mu.Lock()
	defer f.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := psRun{Script: strings.TrimPrefix(r.URL.Path, "/api/"), Body: body}
	switch run.Script {
	case "common":
		run.Err = f.commonSchemaScript(ctx, body, &run.Output)
	case "original":
		run.Err = f.oldSchemaScript(ctx, body, &run.Output)
	default:
		http.NotFound(w, r)
		return
	}
	f.runs = append(f.runs, run)
	w.WriteHeader(http.StatusOK)
}

func (f *psFunction) snapshot() []psRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]psRun(nil), f.runs...)
}

// commonSchemaScript is the seed's first script (common alert schema).
func (f *psFunction) commonSchemaScript(ctx context.Context, rawBody []byte, out *[]string) error {
	var request struct {
		Body struct {
			Data struct {
				Essentials struct {
					AlertTargetIDs []string `json:"alertTargetIDs"`
				} `json:"essentials"`
				AlertContext struct {
					Condition struct {
						AllOf []struct {
							MetricNamespace string `json:"metricNamespace"`
						} `json:"allOf"`
					} `json:"condition"`
				} `json:"alertContext"`
			} `json:"data"`
		}
	}
	if err := json.Unmarshal(rawBody, &request.Body); err != nil {
		return fmt.Errorf("the request body: %w", err)
	}
	essentials := request.Body.Data.Essentials
	alertContext := request.Body.Data.AlertContext
	az, err := f.env.connectAzAccount(ctx)
	if err != nil {
		return err
	}
	// $alertContext.condition.allOf.metricNamespace -eq "…": the array of
	// namespaces filtered by -eq, true when any matches.
	var isVM bool
	for _, c := range alertContext.Condition.AllOf {
		isVM = isVM || psEq(c.MetricNamespace, "Microsoft.Compute/virtualMachines")
	}
	if !isVM {
		*out = append(*out, "(not a VM alert: nothing done)")
		return nil
	}
	if len(essentials.AlertTargetIDs) == 0 {
		return fmt.Errorf("Get-AzVM -ResourceId $essentials.alertTargetIDs[0]: the alert has no alertTargetIDs")
	}
	vm, err := az.getAzVMByResourceID(essentials.AlertTargetIDs[0])
	if err != nil {
		return err
	}
	return f.captureOn(az, vm.Location, vm.ID, out)
}

// oldSchemaScript is the seed's second script (the metric alert schema
// without the common schema: data.context.resource…). The seed's text
// drops the '$' of "$packetCaptures =" in this script; the port runs what
// the script means, as the first script writes it.
func (f *psFunction) oldSchemaScript(ctx context.Context, rawBody []byte, out *[]string) error {
	var request struct {
		Body struct {
			Data struct {
				Context struct {
					ResourceType      string `json:"resourceType"`
					ResourceGroupName string `json:"resourceGroupName"`
					ResourceName      string `json:"resourceName"`
					ResourceID        string `json:"resourceId"`
				} `json:"context"`
			} `json:"data"`
		}
	}
	if err := json.Unmarshal(rawBody, &request.Body); err != nil {
		return fmt.Errorf("the request body: %w", err)
	}
	requestBody := request.Body.Data
	az, err := f.env.connectAzAccount(ctx)
	if err != nil {
		return err
	}
	if !psEq(requestBody.Context.ResourceType, "Microsoft.Compute/virtualMachines") {
		*out = append(*out, "(not a VM alert: nothing done)")
		return nil
	}
	vm, err := az.getAzVM(requestBody.Context.ResourceGroupName, requestBody.Context.ResourceName)
	if err != nil {
		return err
	}
	return f.captureOn(az, vm.Location, requestBody.Context.ResourceID, out)
}

// captureOn is the part both scripts share, line for line.
func (f *psFunction) captureOn(az *azContext, location, target string, out *[]string) error {
	networkWatcher, err := az.getAzNetworkWatcher(location)
	if err != nil {
		return err
	}
	packetCaptures, err := az.getAzNetworkWatcherPacketCapture(networkWatcher)
	if err != nil {
		return err
	}
	for _, pc := range packetCaptures {
		if psEq(pc.Name, psPacketCaptureName) {
			if err := az.removeAzNetworkWatcherPacketCapture(networkWatcher, psPacketCaptureName); err != nil {
				return err
			}
			*out = append(*out, "removed "+pc.Name+" (target "+pc.Target+", "+pc.PacketCaptureStatus+")")
		}
	}
	if len(packetCaptures) < psPacketCaptureLimit {
		*out = append(*out, "Initiating Packet Capture")
		if _, err := az.newAzNetworkWatcherPacketCapture(networkWatcher, target, psPacketCaptureName, f.storageaccountid, psPacketCaptureDuration); err != nil {
			return err
		}
	}
	return nil
}

// TestAzurePowerShellFunction: the seed's setup made with armmonitor (an
// action group calling the function, a metric alert on the VM's Network
// Out Total, Average > 3 over 5 minutes, checked every minute), the
// seed's function ported to Go and run unmodified but for endpoint and
// credentials. An alert in the common schema on h1 makes it find h1 by
// alertTargetIDs[0], the watcher by location, list the captures, delete
// the PSAzureFunction left from before and create one on h1 (30 s, the
// storage account); then an alert in the old schema on h2 (VM by
// resourceGroupName/resourceName) replaces it with one on h2. Each
// capture's file lands at its storagePath.
func TestAzurePowerShellFunction(t *testing.T) {
	a := newAzureLab(t, nil)
	h1, h2 := a.addHost("h1"), a.addHost("h2")
	a.link(h1, h2)
	// The function's own principal, Contributor on the subscription (the seed's New-AzRoleAssignment).
	clientID, secret := a.servicePrincipal("ExampleAutomationAccount_MF", "Contributor", "/subscriptions/"+azSubscription)
	// The person setting up alerts in the portal.
	storageID := a.storageAccountID("local")
	portal := *a.owner
	// The seed's setup reads AzureTenant off the subscription:
	// (Get-AzSubscription -SubscriptionName "<subscriptionName>").TenantId.
	tenant := a.subscriptionTenant(portal)
	if tenant != a.tenant {
		t.Errorf("Get-AzSubscription's TenantId is %q, want the server's tenant %s", tenant, a.tenant)
		tenant = a.tenant
	}
	fn := startPSFunction(t, a, psEnv{AzureTenant: tenant, AzureClientID: clientID, AzureCredPassword: secret, a: a}, storageID)

	// A PSAzureFunction capture from an earlier alert, on h2.
	pcs, err := armnetwork.NewPacketCapturesClient(azSubscription, portal.cred, portal.opts)
	if err != nil {
		t.Fatal(err)
	}
	old, err := pcs.BeginCreate(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, psPacketCaptureName, armnetwork.PacketCapture{Properties: &armnetwork.PacketCaptureParameters{
		Target: ptr(vmID("h2")), StorageLocation: &armnetwork.PacketCaptureStorageLocation{StorageID: ptr(storageID)}, TimeLimitInSeconds: ptr[int32](600),
	}}, nil)
	if err != nil {
		t.Fatalf("the earlier PSAzureFunction: %v", err)
	}
	if _, err := old.PollUntilDone(ctxFor(t, 60*time.Second), pollFast); err != nil {
		t.Fatalf("the earlier PSAzureFunction (polling): %v", err)
	}

	groups, err := armmonitor.NewActionGroupsClient(azSubscription, portal.cred, portal.opts)
	if err != nil {
		t.Fatal(err)
	}
	alerts, err := armmonitor.NewMetricAlertsClient(azSubscription, portal.cred, portal.opts)
	if err != nil {
		t.Fatal(err)
	}
	actionGroup := func(name, script string, common bool) string {
		t.Helper()
		r, err := groups.CreateOrUpdate(ctxFor(t, 30*time.Second), azGroup, name, armmonitor.ActionGroupResource{
			Location: ptr("Global"),
			Properties: &armmonitor.ActionGroup{GroupShortName: ptr("pcap"), Enabled: ptr(true), AzureFunctionReceivers: []*armmonitor.AzureFunctionReceiver{{
				Name:                  ptr("PacketCaptureFunction"),
				FunctionAppResourceID: ptr("/subscriptions/" + azSubscription + "/resourceGroups/" + azGroup + "/providers/Microsoft.Web/sites/pcap-functions"),
				FunctionName:          ptr("AlertPacketCapture"),
				HTTPTriggerURL:        ptr(fn.triggerURL(script)),
				UseCommonAlertSchema:  ptr(common),
			}}},
		}, nil)
		if err != nil {
			// Reported; the function is then reached as a webhook (the same
			// POST Azure makes to a function's httpTriggerUrl), so the rest
			// of the seed's flow is judged too.
			t.Errorf("action group %s with the seed's Azure Function receiver: %v", name, err)
			r, err = groups.CreateOrUpdate(ctxFor(t, 30*time.Second), azGroup, name, armmonitor.ActionGroupResource{
				Location: ptr("Global"),
				Properties: &armmonitor.ActionGroup{GroupShortName: ptr("pcap"), Enabled: ptr(true), WebhookReceivers: []*armmonitor.WebhookReceiver{{
					Name: ptr("PacketCaptureFunction"), ServiceURI: ptr(fn.triggerURL(script)), UseCommonAlertSchema: ptr(common),
				}}},
			}, nil)
			if err != nil {
				t.Fatalf("action group %s with a webhook receiver: %v", name, err)
			}
			return deref(r.ID)
		}
		if r.Properties == nil || len(r.Properties.AzureFunctionReceivers) != 1 || deref(r.Properties.AzureFunctionReceivers[0].UseCommonAlertSchema) != common {
			t.Fatalf("action group %s as created: %s", name, describe(r.ActionGroupResource))
		}
		return deref(r.ID)
	}
	metricAlert := func(name, host, actionGroupID string) {
		t.Helper()
		r, err := alerts.CreateOrUpdate(ctxFor(t, 30*time.Second), azGroup, name, armmonitor.MetricAlertResource{
			Location: ptr("global"),
			Properties: &armmonitor.MetricAlertProperties{
				Description: ptr("the seed's rule: Network Out Total above 3"), Severity: ptr[int32](3), Enabled: ptr(true),
				Scopes: []*string{ptr(vmID(host))}, EvaluationFrequency: ptr("PT1M"), WindowSize: ptr("PT5M"), AutoMitigate: ptr(true),
				TargetResourceType: ptr("Microsoft.Compute/virtualMachines"), TargetResourceRegion: ptr(azLocation),
				Criteria: &armmonitor.MetricAlertSingleResourceMultipleMetricCriteria{
					ODataType: ptr(armmonitor.OdatatypeMicrosoftAzureMonitorSingleResourceMultipleMetricCriteria),
					AllOf: []*armmonitor.MetricCriteria{{
						Name: ptr("Metric1"), CriterionType: ptr(armmonitor.CriterionTypeStaticThresholdCriterion),
						MetricName: ptr("Network Out Total"), MetricNamespace: ptr("Microsoft.Compute/virtualMachines"),
						Operator: ptr(armmonitor.OperatorGreaterThan), Threshold: ptr(3.0), TimeAggregation: ptr(armmonitor.AggregationTypeEnumAverage),
					}},
				},
				Actions: []*armmonitor.MetricAlertAction{{ActionGroupID: ptr(actionGroupID)}},
			},
		}, nil)
		if err != nil {
			t.Fatalf("metric alert %s: %v", name, err)
		}
		if r.Properties == nil || deref(r.Properties.EvaluationFrequency) != "PT1M" || deref(r.Properties.WindowSize) != "PT5M" || len(r.Properties.Scopes) != 1 {
			t.Fatalf("metric alert %s as created: %s", name, describe(r.MetricAlertResource))
		}
	}
	// waitRun waits for the function's next run and checks it went through.
	// A PT5M window fires once the host has 4 of its 5 minutes of data
	// (tripcap's evaluator calls less "no data"): up to 7 minutes after the start.
	waitRun := func(n int, script string) psRun {
		t.Helper()
		a.eventually("the alert to reach the function ("+script+")", 7*time.Minute, func() bool { return len(fn.snapshot()) > n })
		run := fn.snapshot()[n]
		if run.Script != script || run.Err != nil {
			t.Fatalf("function run %d (%s): %v\noutput: %q\nalert: %s", n, run.Script, run.Err, run.Output, run.Body)
		}
		return run
	}
	checkPS := func(host string) string {
		t.Helper()
		got, err := pcs.Get(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, psPacketCaptureName, nil)
		if err != nil {
			t.Fatalf("PSAzureFunction after the run: %v", err)
		}
		p := got.Properties
		if p == nil || !strings.EqualFold(deref(p.Target), vmID(host)) || deref(p.TimeLimitInSeconds) != psPacketCaptureDuration ||
			p.StorageLocation == nil || !strings.EqualFold(deref(p.StorageLocation.StorageID), storageID) || deref(p.StorageLocation.StoragePath) == "" {
			t.Fatalf("PSAzureFunction after the run: want on %s, 30 s, in %s: %s", host, storageID, describe(got.PacketCaptureResult))
		}
		return deref(p.StorageLocation.StoragePath)
	}

	// alertRuns fires a rule on host (flooding from it) in an action group
	// of the script's schema, and checks the run replaced the capture on
	// before with one on host whose file lands at its storagePath.
	alertRuns := func(n int, on, peer *host, script string, common bool, schemaID, before string, port uint16) string {
		t.Helper()
		metricAlert(on.name+"-network-out", on.name, actionGroup("pcap-"+script, script, common))
		stop := a.flood(on, peer, port)
		run := waitRun(n, script)
		stop()
		var alert struct {
			SchemaID string `json:"schemaId"`
		}
		_ = json.Unmarshal(run.Body, &alert)
		if alert.SchemaID != schemaID || !strings.Contains(strings.Join(run.Output, "\n"), "removed PSAzureFunction (target "+vmID(before)) {
			t.Errorf("the %s run: schemaId %q (want %s), output %q (want the capture on %s removed)", script, alert.SchemaID, schemaID, run.Output, before)
		}
		path := checkPS(on.name)
		a.sendSized(on, peer, port+1, 100, 500, uint32(n+1))
		if got := packets(t, a.waitStored(path, 90*time.Second)); got < 100 {
			t.Errorf("%s's capture at %s: %d packets, want the 100 sent and more", on.name, path, got)
		}
		return path
	}
	// The common schema: the rule on h1 fires, the function replaces the
	// earlier capture on h2 with one on h1; then the old schema, a rule on h2.
	path1 := alertRuns(0, h1, h2, "common", true, "azureMonitorCommonAlertSchema", "h2", 7601)
	path2 := alertRuns(1, h2, h1, "original", false, "AzureMonitorMetricAlert", "h1", 7603)
	if path2 == path1 {
		t.Errorf("the second capture reuses the first's storagePath %s", path1)
	}
	if runs := fn.snapshot(); len(runs) > 2 {
		for _, r := range runs[2:] {
			t.Logf("a further run (%s, a resolve or a retry): err %v, output %q", r.Script, r.Err, r.Output)
		}
	}
}
