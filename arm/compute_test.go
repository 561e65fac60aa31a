package arm_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/arm"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/filestore"
	"github.com/tripcap/tripcap/internal/teststore"
)

const (
	computeSub = "6b0c1e55-0000-4000-8000-00000000c0de"
	serverSub  = "00000000-0000-4000-8000-000000000005"
)

// computeRig is a control plane on SQLite serving the ARM surface over
// TLS, with hosts enrolled as the compute tests need: web-0..2 in scale set
// web of group Web (web-2 of team b), db-0 without a scale set, and other
// in another subscription.
type computeRig struct {
	svc   *controlplane.Service
	store tripcap.Store
	// agents act as each host's agent.
	agents map[string]context.Context
	url    string
	ts     *httptest.Server
	hosts  map[string]*tripcap.Host
}

// principals are who a bearer token is, in these tests (the server's
// authentication is http.Server's; the ARM layer sees its principal).
var principals = map[string]*tripcap.Principal{
	"admin": {ID: "admin", Kind: tripcap.PrincipalBootstrap, Assignments: tripcap.OwnerEverywhere()},
	"teamA": {ID: "teamA", Kind: tripcap.PrincipalUser, Assignments: []tripcap.RoleAssignment{{Role: tripcap.RoleReader, Scope: "label:team=a"}}},
	// A Reader of the server's subscription, as an Azure role assignment.
	"subReader": {ID: "subReader", Kind: tripcap.PrincipalUser, Assignments: []tripcap.RoleAssignment{{Role: tripcap.RoleReader, Scope: "/subscriptions/" + serverSub}}},
}

func newComputeRig(t *testing.T, store tripcap.Store) *computeRig {
	t.Helper()
	blobs, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc := controlplane.New(store, controlplane.Config{SubscriptionID: serverSub, ResourceGroup: "Captures", DefaultLocation: "westeurope",
		Storage: map[string]tripcap.BlobStore{"capturesacct": blobs}, DefaultStorage: "capturesacct"},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	admin := tripcap.NewContextWithPrincipal(t.Context(), principals["admin"])
	rig := &computeRig{svc: svc, store: store, hosts: map[string]*tripcap.Host{}, agents: map[string]context.Context{}}
	for _, h := range []struct{ name, sub, group, set, team string }{
		{"web-0", computeSub, "Web", "web", "a"}, {"web-1", computeSub, "Web", "web", "a"}, {"web-2", computeSub, "Web", "web", "b"},
		{"db-0", computeSub, "Db", "", "a"}, {"other", serverSub, "Web", "web", "a"},
	} {
		jt, err := svc.CreateJoinToken(admin, time.Hour, 1)
		if err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{tripcap.LabelSubscription: h.sub, tripcap.LabelResourceGroup: h.group, "team": h.team}
		if h.set != "" {
			labels[tripcap.LabelScaleSet] = h.set
		}
		resp, err := svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: h.name, Location: "westeurope", Labels: labels,
			Inventory: tripcap.Inventory{Hostname: h.name + ".lab", OS: "linux", Kernel: "6.12.0", AgentVersion: "1.2.3", Interfaces: []tripcap.Interface{
				{Name: "lo", Index: 1, Up: true, Loopback: true, Addresses: []string{"127.0.0.1/8"}},
				{Name: "eth0", Index: 2, Up: true, MAC: "02:00:00:00:00:01", Addresses: []string{"198.18.0.2/24"}},
				{Name: "eth1", Index: 3, Up: false},
			}}})
		if err != nil {
			t.Fatal(err)
		}
		rig.hosts[h.name] = resp.Host
		agent, err := svc.Authenticate(context.Background(), resp.Credential)
		if err != nil {
			t.Fatal(err)
		}
		rig.agents[h.name] = tripcap.NewContextWithPrincipal(context.Background(), agent)
	}
	api := arm.New(nil, arm.Services{Control: svc}, arm.WithPageSize(2), arm.WithSubscriptions(func(_ *http.Request, id string) (bool, error) {
		return strings.EqualFold(id, computeSub) || strings.EqualFold(id, serverSub), nil
	}))
	rig.ts = httptest.NewTLSServer(api.Handler(func(_ *arm.Route, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := principals[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
			if p == nil {
				arm.WriteError(w, r, arm.Errorf(http.StatusUnauthorized, "InvalidAuthenticationToken", "unknown token"), nil)
				return
			}
			h.ServeHTTP(w, r.WithContext(tripcap.NewContextWithPrincipal(r.Context(), p)))
		})
	}))
	t.Cleanup(rig.ts.Close)
	rig.url = rig.ts.URL
	return rig
}

// token is a credential that always presents one bearer token.
type token string

func (tk token) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(tk), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// options point an SDK client at the rig, trusting its certificate.
func (rig *computeRig) options() *azarm.ClientOptions {
	return &azarm.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Cloud: cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: rig.url, Audience: "https://management.azure.com/"},
			}},
			Transport: rig.ts.Client(),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableRPRegistration: true,
	}
}

func wantARMError(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("%s: %v, want %d %s", what, err, status, code)
	}
}

var guid = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestVirtualMachinesSDK(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) { testVirtualMachinesSDK(t, store) })
}

func testVirtualMachinesSDK(t *testing.T, store tripcap.Store) {
	rig := newComputeRig(t, store)
	ctx := t.Context()
	vms, err := armcompute.NewVirtualMachinesClient(computeSub, token("admin"), rig.options())
	if err != nil {
		t.Fatal(err)
	}
	got, err := vms.Get(ctx, "web", "WEB-0", &armcompute.VirtualMachinesClientGetOptions{Expand: new(armcompute.InstanceViewTypesInstanceView)})
	if err != nil {
		t.Fatal(err)
	}
	h := rig.hosts["web-0"]
	vm := got.VirtualMachine
	if *vm.ID != h.ResourceID() || *vm.Name != "web-0" || *vm.Location != "westeurope" || *vm.Type != "Microsoft.Compute/virtualMachines" {
		t.Fatalf("vm: id %s name %s location %s type %s", *vm.ID, *vm.Name, *vm.Location, *vm.Type)
	}
	p := vm.Properties
	if !guid.MatchString(*p.VMID) || *p.ProvisioningState != "Succeeded" || *p.OSProfile.ComputerName != "web-0.lab" || *p.StorageProfile.OSDisk.OSType != armcompute.OperatingSystemTypesLinux {
		t.Fatalf("properties: vmId %s, state %s, computer %s", *p.VMID, *p.ProvisioningState, *p.OSProfile.ComputerName)
	}
	if *p.VirtualMachineScaleSet.ID != tripcap.VMSSResourceID(computeSub, "Web", "web") {
		t.Fatalf("scale set %s", *p.VirtualMachineScaleSet.ID)
	}
	nics := p.NetworkProfile.NetworkInterfaces
	if len(nics) != 2 || !strings.HasSuffix(*nics[0].ID, "/providers/Microsoft.Network/networkInterfaces/web-0-eth0") || !*nics[0].Properties.Primary || *nics[1].Properties.Primary {
		t.Fatalf("network interfaces: %d", len(nics))
	}
	if len(vm.Resources) != 1 {
		t.Fatalf("resources: %d, want the watcher extension", len(vm.Resources))
	}
	ext := vm.Resources[0]
	if *ext.Name != "AzureNetworkWatcherExtension" || *ext.Properties.Publisher != "Microsoft.Azure.NetworkWatcher" || *ext.Properties.Type != "NetworkWatcherAgentLinux" || *ext.Properties.ProvisioningState != "Succeeded" {
		t.Fatalf("extension: %s %s %s", *ext.Name, *ext.Properties.Publisher, *ext.Properties.Type)
	}
	iv := p.InstanceView
	if iv == nil || *iv.VMAgent.VMAgentVersion != "1.2.3" || len(iv.Extensions) != 1 || *iv.Extensions[0].Type != "Microsoft.Azure.NetworkWatcher.NetworkWatcherAgentLinux" ||
		*iv.Extensions[0].Statuses[0].Code != "ProvisioningState/succeeded" || *iv.Statuses[1].Code != "PowerState/running" {
		t.Fatalf("instance view: %+v", iv)
	}
	// The same vmId every time.
	again, err := vms.Get(ctx, "Web", "web-0", nil)
	if err != nil || *again.Properties.VMID != *p.VMID || again.Properties.InstanceView != nil {
		t.Fatalf("again: %v", err)
	}
	view, err := vms.InstanceView(ctx, "Web", "web-0", nil)
	if err != nil || *view.VMAgent.VMAgentVersion != "1.2.3" {
		t.Fatalf("instance view call: %v", err)
	}

	// Lists page (two a page here) and stay in their group.
	names := func(pager interface {
		More() bool
	}, next func() ([]*armcompute.VirtualMachine, error)) []string {
		var out []string
		for pager.More() {
			page, err := next()
			if err != nil {
				t.Fatal(err)
			}
			for _, vm := range page {
				out = append(out, *vm.Name)
			}
		}
		slices.Sort(out)
		return out
	}
	web := vms.NewListPager("web", nil)
	if got := names(web, func() ([]*armcompute.VirtualMachine, error) { p, err := web.NextPage(ctx); return p.Value, err }); !slices.Equal(got, []string{"web-0", "web-1", "web-2"}) {
		t.Fatalf("group Web: %v", got)
	}
	all := vms.NewListAllPager(nil)
	if got := names(all, func() ([]*armcompute.VirtualMachine, error) { p, err := all.NextPage(ctx); return p.Value, err }); !slices.Equal(got, []string{"db-0", "web-0", "web-1", "web-2"}) {
		t.Fatalf("subscription: %v", got)
	}
	status := vms.NewListAllPager(&armcompute.VirtualMachinesClientListAllOptions{StatusOnly: new("true")})
	for status.More() {
		page, err := status.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, vm := range page.Value {
			if vm.Properties.InstanceView == nil {
				t.Fatalf("statusOnly=true: %s without its instance view", *vm.Name)
			}
		}
	}
	byLoc := vms.NewListByLocationPager("westeurope", nil)
	if got := names(byLoc, func() ([]*armcompute.VirtualMachine, error) { p, err := byLoc.NextPage(ctx); return p.Value, err }); len(got) != 4 {
		t.Fatalf("location: %v", got)
	}

	// The agent as the extension, by the extensions API too.
	exts, err := armcompute.NewVirtualMachineExtensionsClient(computeSub, token("admin"), rig.options())
	if err != nil {
		t.Fatal(err)
	}
	e, err := exts.Get(ctx, "Web", "web-1", "azurenetworkwatcherextension", &armcompute.VirtualMachineExtensionsClientGetOptions{Expand: new("instanceView")})
	if err != nil || *e.Properties.Type != "NetworkWatcherAgentLinux" || e.Properties.InstanceView == nil {
		t.Fatalf("extension get: %v", err)
	}
	list, err := exts.List(ctx, "Web", "web-1", nil)
	if err != nil || len(list.Value) != 1 {
		t.Fatalf("extension list: %v", err)
	}
	_, err = exts.Get(ctx, "Web", "web-1", "OmsAgentForLinux", nil)
	wantARMError(t, "another extension", err, 404, "ResourceNotFound")

	// 404s as Azure answers them: a VM of another group, of none, and one
	// the caller may not read.
	_, err = vms.Get(ctx, "Db", "web-0", nil)
	wantARMError(t, "VM in another group", err, 404, "ResourceNotFound")
	_, err = vms.Get(ctx, "Web", "nope", nil)
	wantARMError(t, "no VM", err, 404, "ResourceNotFound")
	teamA, err := armcompute.NewVirtualMachinesClient(computeSub, token("teamA"), rig.options())
	if err != nil {
		t.Fatal(err)
	}
	_, err = teamA.Get(ctx, "Web", "web-2", nil)
	wantARMError(t, "team b's VM as team a", err, 404, "ResourceNotFound")
	seen := teamA.NewListPager("Web", nil)
	if got := names(seen, func() ([]*armcompute.VirtualMachine, error) { p, err := seen.NextPage(ctx); return p.Value, err }); !slices.Equal(got, []string{"web-0", "web-1"}) {
		t.Fatalf("team a sees %v", got)
	}

	// A host that stops reporting is still a VM, its state unknown and
	// its extension not ready.
	if _, err := rig.store.MarkHostsOffline(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	off, err := vms.Get(ctx, "Web", "web-0", &armcompute.VirtualMachinesClientGetOptions{Expand: new(armcompute.InstanceViewTypesInstanceView)})
	if err != nil {
		t.Fatal(err)
	}
	if iv := off.Properties.InstanceView; *iv.Statuses[1].Code != "PowerState/unknown" || *iv.Extensions[0].Statuses[0].DisplayStatus != "Not Ready" {
		t.Fatalf("offline: %s, %s", *iv.Statuses[1].Code, *iv.Extensions[0].Statuses[0].DisplayStatus)
	}
}

func TestVirtualMachineScaleSetsSDK(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) { testVirtualMachineScaleSetsSDK(t, store) })
}

func testVirtualMachineScaleSetsSDK(t *testing.T, store tripcap.Store) {
	rig := newComputeRig(t, store)
	ctx := t.Context()
	sets, err := armcompute.NewVirtualMachineScaleSetsClient(computeSub, token("admin"), rig.options())
	if err != nil {
		t.Fatal(err)
	}
	got, err := sets.Get(ctx, "web", "WEB", nil)
	if err != nil {
		t.Fatal(err)
	}
	ss := got.VirtualMachineScaleSet
	if *ss.ID != tripcap.VMSSResourceID(computeSub, "Web", "web") || *ss.Name != "web" || *ss.Location != "westeurope" || *ss.SKU.Capacity != 3 ||
		!guid.MatchString(*ss.Properties.UniqueID) || *ss.Properties.ProvisioningState != "Succeeded" {
		t.Fatalf("scale set: %s %s %s capacity %d", *ss.ID, *ss.Name, *ss.Location, *ss.SKU.Capacity)
	}
	if e := ss.Properties.VirtualMachineProfile.ExtensionProfile.Extensions; len(e) != 1 || *e[0].Properties.Type != "NetworkWatcherAgentLinux" {
		t.Fatalf("extension profile: %v", e)
	}
	_, err = sets.Get(ctx, "Db", "web", nil)
	wantARMError(t, "scale set of another group", err, 404, "ResourceNotFound")

	var names []string
	for pager := sets.NewListAllPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Value {
			names = append(names, *s.ID)
		}
	}
	if !slices.Equal(names, []string{tripcap.VMSSResourceID(computeSub, "Web", "web")}) {
		t.Fatalf("scale sets of the subscription: %v", names)
	}
	n := 0
	for pager := sets.NewListPager("Db", nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	if n != 0 {
		t.Fatalf("group Db has %d scale sets, want none", n)
	}

	// Instances, paged two at a time; the instance id is the host's name.
	instances, err := armcompute.NewVirtualMachineScaleSetVMsClient(computeSub, token("admin"), rig.options())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for pager := instances.NewListPager("Web", "web", &armcompute.VirtualMachineScaleSetVMsClientListOptions{Expand: new("instanceView")}); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, vm := range page.Value {
			if vm.Properties.InstanceView == nil || *vm.Properties.VirtualMachineResourceID != rig.hosts[*vm.InstanceID].ResourceID() {
				t.Fatalf("instance %s: %+v", *vm.InstanceID, vm.Properties)
			}
			ids = append(ids, *vm.InstanceID)
		}
	}
	if !slices.Equal(ids, []string{"web-0", "web-1", "web-2"}) {
		t.Fatalf("instances: %v", ids)
	}
	one, err := instances.Get(ctx, "Web", "web", "web-1", nil)
	if err != nil || *one.Name != "web_web-1" || *one.ID != tripcap.VMSSResourceID(computeSub, "Web", "web")+"/virtualMachines/web-1" || !guid.MatchString(*one.Properties.VMID) {
		t.Fatalf("instance get: %v", err)
	}
	_, err = instances.Get(ctx, "Web", "web", "db-0", nil)
	wantARMError(t, "a host of no scale set as an instance", err, 404, "ResourceNotFound")

	// Team a's reader sees the instances it may read.
	teamA, err := armcompute.NewVirtualMachineScaleSetsClient(computeSub, token("teamA"), rig.options())
	if err != nil {
		t.Fatal(err)
	}
	seen, err := teamA.Get(ctx, "Web", "web", nil)
	if err != nil || *seen.SKU.Capacity != 2 {
		t.Fatalf("as team a: %v", err)
	}
}

// TestNetworkInterfacesSDK: a VM's networkProfile leads to its
// interfaces and their addresses, as in Azure.
func TestNetworkInterfacesSDK(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) { testNetworkInterfacesSDK(t, store) })
}

func testNetworkInterfacesSDK(t *testing.T, store tripcap.Store) {
	rig := newComputeRig(t, store)
	ctx := t.Context()
	vms, err := armcompute.NewVirtualMachinesClient(computeSub, token("admin"), rig.options())
	if err != nil {
		t.Fatal(err)
	}
	vm, err := vms.Get(ctx, "Web", "web-0", nil)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := azarm.ParseResourceID(*vm.Properties.NetworkProfile.NetworkInterfaces[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	nics, err := armnetwork.NewInterfacesClient(computeSub, token("admin"), rig.options())
	if err != nil {
		t.Fatal(err)
	}
	got, err := nics.Get(ctx, ref.ResourceGroupName, ref.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := got.Properties
	if *got.Name != "web-0-eth0" || *p.MacAddress != "02-00-00-00-00-01" || !*p.Primary || *p.VirtualMachine.ID != rig.hosts["web-0"].ResourceID() || len(p.IPConfigurations) != 1 {
		t.Fatalf("interface: %s mac %s", *got.Name, *p.MacAddress)
	}
	ip := p.IPConfigurations[0].Properties
	if *ip.PrivateIPAddress != "198.18.0.2" || *ip.PrivateIPAddressPrefixLength != 24 || *ip.PrivateIPAddressVersion != armnetwork.IPVersionIPv4 {
		t.Fatalf("address %s/%d %s", *ip.PrivateIPAddress, *ip.PrivateIPAddressPrefixLength, *ip.PrivateIPAddressVersion)
	}
	_, err = nics.Get(ctx, "Web", "web-0-eth9", nil)
	wantARMError(t, "no such interface", err, 404, "ResourceNotFound")
	_, err = nics.Get(ctx, "Db", "web-0-eth0", nil)
	wantARMError(t, "interface of another group", err, 404, "ResourceNotFound")
	var names []string
	for pager := nics.NewListPager("Web", nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range page.Value {
			names = append(names, *n.Name)
		}
	}
	slices.Sort(names)
	if want := []string{"web-0-eth0", "web-0-eth1", "web-1-eth0", "web-1-eth1", "web-2-eth0", "web-2-eth1"}; !slices.Equal(names, want) {
		t.Fatalf("group's interfaces: %v", names)
	}
}
