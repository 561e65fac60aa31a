//go:build linux

package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/monitor/armmonitor"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/storage/armstorage"
)

// TestAzureSDKVirtualMachines: hosts are VMs to armcompute: listed and got
// by id, name, location, vmId and network profile, with the agent as the
// NetworkWatcherAgentLinux extension; a VM that is not there is 404
// ResourceNotFound; the subscription's Contributor lists its storage
// accounts (armstorage) and gets one by its resource id's group.
func TestAzureSDKVirtualMachines(t *testing.T) {
	a := newAzureLab(t, nil)
	a.addHost("h1")
	a.addHost("h2")
	s := a.as("automation", "Contributor", "/subscriptions/"+azSubscription)
	vms, err := armcompute.NewVirtualMachinesClient(azSubscription, s.cred, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for p := vms.NewListAllPager(nil); p.More(); {
		page, err := p.NextPage(ctxFor(t, 30*time.Second))
		if err != nil {
			t.Fatalf("listing VMs: %v", err)
		}
		for _, vm := range page.Value {
			names = append(names, deref(vm.Name))
			checkVM(t, vm)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"h1", "h2"}) {
		t.Fatalf("VMs of the subscription: %q, want h1 and h2", names)
	}
	var inGroup int
	for p := vms.NewListPager(azGroup, nil); p.More(); {
		page, err := p.NextPage(ctxFor(t, 30*time.Second))
		if err != nil {
			t.Fatalf("listing VMs of %s: %v", azGroup, err)
		}
		inGroup += len(page.Value)
	}
	if inGroup != 2 {
		t.Errorf("VMs of resource group %s: %d, want 2", azGroup, inGroup)
	}
	got, err := vms.Get(ctxFor(t, 30*time.Second), azGroup, "h2", nil)
	if err != nil {
		t.Fatalf("get h2: %v", err)
	}
	checkVM(t, &got.VirtualMachine)
	// ARM compares names case-insensitively.
	if _, err := vms.Get(ctxFor(t, 30*time.Second), strings.ToUpper(azGroup), "H2", nil); err != nil {
		t.Errorf("get H2 in %s: %v", strings.ToUpper(azGroup), err)
	}
	exts, err := armcompute.NewVirtualMachineExtensionsClient(azSubscription, s.cred, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	list, err := exts.List(ctxFor(t, 30*time.Second), azGroup, "h2", nil)
	if err != nil {
		t.Fatalf("extensions of h2: %v", err)
	}
	var agent bool
	for _, e := range list.Value {
		if e.Properties != nil && deref(e.Properties.Type) == "NetworkWatcherAgentLinux" {
			agent = true
		}
	}
	if !agent {
		t.Errorf("h2's extensions have no NetworkWatcherAgentLinux: %s", describe(list.Value))
	}
	_, err = vms.Get(ctxFor(t, 30*time.Second), azGroup, "no-such-vm", nil)
	wantARMError(t, "get a VM that is not there", err, http.StatusNotFound, "ResourceNotFound")

	// The subscription's storage accounts, as its Contributor sees them in Azure.
	accounts, err := armstorage.NewAccountsClient(azSubscription, s.cred, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	var local *armstorage.Account
	for p := accounts.NewListPager(nil); p.More(); {
		page, err := p.NextPage(ctxFor(t, 30*time.Second))
		if err != nil {
			t.Fatalf("a Contributor of the subscription listing its storage accounts: %v", err)
		}
		for _, acc := range page.Value {
			if deref(acc.Name) == "local" {
				local = acc
			}
		}
	}
	if local == nil {
		t.Fatal("the storage account local is not listed")
	}
	rid, err := arm.ParseResourceID(deref(local.ID))
	if err != nil || !strings.EqualFold(rid.SubscriptionID, azSubscription) || !strings.EqualFold(rid.ResourceType.String(), "Microsoft.Storage/storageAccounts") {
		t.Fatalf("local's id %q: %v", deref(local.ID), err)
	}
	if _, err := accounts.GetProperties(ctxFor(t, 30*time.Second), rid.ResourceGroupName, "local", nil); err != nil {
		t.Errorf("get local in %s: %v", rid.ResourceGroupName, err)
	}
}

func checkVM(t *testing.T, vm *armcompute.VirtualMachine) {
	t.Helper()
	name := deref(vm.Name)
	if !strings.EqualFold(deref(vm.ID), vmID(name)) || deref(vm.Location) != azLocation || deref(vm.Type) != "Microsoft.Compute/virtualMachines" {
		t.Errorf("VM %s: id %q location %q type %q, want %q in %s", name, deref(vm.ID), deref(vm.Location), deref(vm.Type), vmID(name), azLocation)
	}
	if vm.Properties == nil || deref(vm.Properties.VMID) == "" || vm.Properties.NetworkProfile == nil {
		t.Errorf("VM %s: no vmId or networkProfile: %s", name, describe(vm.Properties))
	}
}

// TestAzureSDKNetworkWatchers: the watcher Azure would have made for the
// hosts' location, in NetworkWatcherRG, listed and got; one a user makes
// in another location is created, listed and deleted by its poller; a
// second watcher in a location is refused as Azure refuses it.
func TestAzureSDKNetworkWatchers(t *testing.T) {
	a := newAzureLab(t, nil)
	a.addHost("h1")
	s := a.as("automation", "Contributor", "/subscriptions/"+azSubscription)
	nw, err := armnetwork.NewWatchersClient(azSubscription, s.cred, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	listAll := func() map[string]*armnetwork.Watcher {
		t.Helper()
		out := map[string]*armnetwork.Watcher{}
		for p := nw.NewListAllPager(nil); p.More(); {
			page, err := p.NextPage(ctxFor(t, 30*time.Second))
			if err != nil {
				t.Fatalf("listing watchers: %v", err)
			}
			for _, w := range page.Value {
				out[deref(w.Name)] = w
			}
		}
		return out
	}
	all := listAll()
	w := all[azWatcher]
	if w == nil {
		t.Fatalf("no %s among the subscription's watchers: %s", azWatcher, describe(all))
	}
	if !strings.EqualFold(deref(w.ID), watcherID()) || deref(w.Location) != azLocation || deref(w.Type) != "Microsoft.Network/networkWatchers" ||
		w.Properties == nil || deref(w.Properties.ProvisioningState) != armnetwork.ProvisioningStateSucceeded || deref(w.Etag) == "" {
		t.Errorf("watcher: %s", describe(w))
	}
	got, err := nw.Get(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, nil)
	if err != nil || !strings.EqualFold(deref(got.ID), watcherID()) {
		t.Fatalf("get %s: %v %s", azWatcher, err, describe(got.Watcher))
	}
	var inGroup []string
	for p := nw.NewListPager(azWatcherGroup, nil); p.More(); {
		page, err := p.NextPage(ctxFor(t, 30*time.Second))
		if err != nil {
			t.Fatalf("listing watchers of %s: %v", azWatcherGroup, err)
		}
		for _, w := range page.Value {
			inGroup = append(inGroup, deref(w.Name))
		}
	}
	if !slices.Contains(inGroup, azWatcher) {
		t.Errorf("watchers of %s: %q", azWatcherGroup, inGroup)
	}

	// A user's watcher in another location.
	created, err := nw.CreateOrUpdate(ctxFor(t, 30*time.Second), azGroup, "nw-eastus", armnetwork.Watcher{Location: ptr("eastus"), Tags: map[string]*string{"team": ptr("net")}}, nil)
	if err != nil {
		// Reported; the rest goes on as an Owner, so it is judged too.
		t.Errorf("the subscription's Contributor creating a watcher in eastus: %v", err)
		owner := a.as("portal-user", "Owner", "*")
		if nw, err = armnetwork.NewWatchersClient(azSubscription, owner.cred, owner.opts); err != nil {
			t.Fatal(err)
		}
		s = owner
		if created, err = nw.CreateOrUpdate(ctxFor(t, 30*time.Second), azGroup, "nw-eastus", armnetwork.Watcher{Location: ptr("eastus"), Tags: map[string]*string{"team": ptr("net")}}, nil); err != nil {
			t.Fatalf("an Owner creating a watcher in eastus: %v", err)
		}
	}
	if deref(created.Name) != "nw-eastus" || deref(created.Location) != "eastus" || deref(created.Tags["team"]) != "net" ||
		!strings.EqualFold(deref(created.ID), "/subscriptions/"+azSubscription+"/resourceGroups/"+azGroup+"/providers/Microsoft.Network/networkWatchers/nw-eastus") {
		t.Errorf("created watcher: %s", describe(created.Watcher))
	}
	if listAll()["nw-eastus"] == nil {
		t.Errorf("nw-eastus is not listed")
	}
	// Azure allows one watcher per location and subscription.
	_, err = nw.CreateOrUpdate(ctxFor(t, 30*time.Second), azGroup, "nw-second", armnetwork.Watcher{Location: ptr(azLocation)}, nil)
	wantARMError(t, "a second watcher in "+azLocation, err, http.StatusBadRequest, "NetworkWatcherCountLimitReached")

	n := s.rec.len()
	poller, err := nw.BeginDelete(ctxFor(t, 30*time.Second), azGroup, "nw-eastus", nil)
	if err != nil {
		t.Fatalf("deleting nw-eastus: %v", err)
	}
	if _, err := poller.PollUntilDone(ctxFor(t, 60*time.Second), pollFast); err != nil {
		t.Fatalf("deleting nw-eastus (polling): %v", err)
	}
	if ex, _ := s.rec.since(n); len(ex) > 0 {
		if ex[0].Status == http.StatusAccepted && ex[0].Header.Get("Azure-AsyncOperation") == "" && ex[0].Header.Get("Location") == "" {
			t.Errorf("delete answered 202 with no polling header")
		}
		a.checkPolling("delete watcher", ex, ex[0].Status, "")
	}
	_, err = nw.Get(ctxFor(t, 30*time.Second), azGroup, "nw-eastus", nil)
	wantARMError(t, "get a deleted watcher", err, http.StatusNotFound, "ResourceNotFound", "NotFound")
}

// TestAzureSDKPacketCaptureLifecycle: through armnetwork's PacketCapturesClient,
// a capture on a netns host (UDP to one port, so the other port's traffic is
// left out) is created (BeginCreate: 201 and an async-operation poller),
// got, queried (BeginGetStatus) while Running, stopped (BeginStop),
// queried Stopped, and its file lands in storage at the storagePath
// returned, with exactly the filtered packets (capinfos); listed with
// others through the pager, a running name is a conflict, and deleted
// (BeginDelete) it is 404 PacketCaptureNotFound while its file stays.
func TestAzureSDKPacketCaptureLifecycle(t *testing.T) {
	a := newAzureLab(t, nil)
	h1, h2 := a.addHost("h1"), a.addHost("h2")
	a.link(h1, h2)
	s := a.as("automation", "Contributor", "/subscriptions/"+azSubscription)
	storageID := a.storageAccountID("local")
	pcs, err := armnetwork.NewPacketCapturesClient(azSubscription, s.cred, s.opts)
	if err != nil {
		t.Fatal(err)
	}

	// Create: 201 + Azure-AsyncOperation, then the poller's final GET.
	n := s.rec.len()
	create, err := pcs.BeginCreate(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, "pc1", armnetwork.PacketCapture{Properties: &armnetwork.PacketCaptureParameters{
		Target:             ptr(vmID("h2")),
		TargetType:         ptr(armnetwork.PacketCaptureTargetTypeAzureVM),
		StorageLocation:    &armnetwork.PacketCaptureStorageLocation{StorageID: ptr(storageID)},
		TimeLimitInSeconds: ptr[int32](120),
		Filters:            []*armnetwork.PacketCaptureFilter{{Protocol: ptr(armnetwork.PcProtocolUDP), LocalPort: ptr("7301")}},
	}}, nil)
	if err != nil {
		t.Fatalf("BeginCreate pc1: %v", err)
	}
	created, err := create.PollUntilDone(ctxFor(t, 60*time.Second), pollFast)
	if err != nil {
		t.Fatalf("BeginCreate pc1 (polling): %v", err)
	}
	ex, _ := s.rec.since(n)
	a.checkPolling("create", ex, http.StatusCreated, "Azure-AsyncOperation")
	pc := created.PacketCaptureResult
	checkCapture(t, "created", &pc, "pc1", "h2")
	if p := pc.Properties; p != nil && (deref(p.TimeLimitInSeconds) != 120 || deref(p.TotalBytesPerSession) != 1073741824 || deref(p.BytesToCapturePerPacket) != 0 ||
		len(p.Filters) != 1 || deref(p.Filters[0].LocalPort) != "7301" || deref(p.Filters[0].Protocol) != armnetwork.PcProtocolUDP) {
		t.Errorf("created pc1's properties (given and defaults): %s", describe(p))
	}
	storagePath := ""
	if pc.Properties != nil && pc.Properties.StorageLocation != nil {
		storagePath = deref(pc.Properties.StorageLocation.StoragePath)
		if !strings.EqualFold(deref(pc.Properties.StorageLocation.StorageID), storageID) {
			t.Errorf("storageId %q, want %q", deref(pc.Properties.StorageLocation.StorageID), storageID)
		}
	}
	if !strings.Contains(strings.ToLower(storagePath), strings.ToLower("/subscriptions/"+azSubscription+"/resourcegroups/"+azGroup+"/providers/microsoft.compute/virtualmachines/h2/")) ||
		!strings.HasSuffix(storagePath, ".cap") {
		t.Fatalf("storagePath %q: want Azure's blob path of h2's capture, ending .cap", storagePath)
	}
	got, err := pcs.Get(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, "pc1", nil)
	if err != nil {
		t.Fatalf("get pc1: %v", err)
	}
	checkCapture(t, "got", &got.PacketCaptureResult, "pc1", "h2")
	if got.Properties == nil || got.Properties.StorageLocation == nil || deref(got.Properties.StorageLocation.StoragePath) != storagePath {
		t.Errorf("got pc1's storagePath differs from the created one's %q: %s", storagePath, describe(got.Properties))
	}

	// Query status: Running, with its start time.
	status := func(name string) armnetwork.PacketCaptureQueryStatusResult {
		t.Helper()
		n := s.rec.len()
		p, err := pcs.BeginGetStatus(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, name, nil)
		if err != nil {
			t.Fatalf("BeginGetStatus %s: %v", name, err)
		}
		r, err := p.PollUntilDone(ctxFor(t, 60*time.Second), pollFast)
		if err != nil {
			t.Fatalf("BeginGetStatus %s (polling): %v", name, err)
		}
		ex, _ := s.rec.since(n)
		if ex[0].Status != http.StatusOK {
			a.checkPolling("queryStatus", ex, http.StatusAccepted, "Location")
		}
		return r.PacketCaptureQueryStatusResult
	}
	a.eventually("pc1 Running", 20*time.Second, func() bool { return deref(status("pc1").PacketCaptureStatus) == armnetwork.PcStatusRunning })
	st := status("pc1")
	if deref(st.Name) != "pc1" || !strings.EqualFold(deref(st.ID), watcherID()+"/packetCaptures/pc1") || st.CaptureStartTime == nil ||
		time.Since(*st.CaptureStartTime) > 5*time.Minute || len(st.PacketCaptureError) != 0 {
		t.Errorf("status of a running capture: %s", describe(st))
	}

	// A running capture's name is taken.
	_, err = pcs.BeginCreate(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, "pc1", armnetwork.PacketCapture{Properties: &armnetwork.PacketCaptureParameters{
		Target: ptr(vmID("h1")), StorageLocation: &armnetwork.PacketCaptureStorageLocation{StorageID: ptr(storageID)},
	}}, nil)
	wantARMError(t, "creating pc1 again while it runs", err, http.StatusConflict)

	a.send(h1, h2, 7301, 300, 1)
	a.send(h1, h2, 7302, 100, 2) // not matched by the filter

	// Stop: 200, or 202 and a Location poller.
	n = s.rec.len()
	stop, err := pcs.BeginStop(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, "pc1", nil)
	if err != nil {
		t.Fatalf("BeginStop pc1: %v", err)
	}
	if _, err := stop.PollUntilDone(ctxFor(t, 60*time.Second), pollFast); err != nil {
		t.Fatalf("BeginStop pc1 (polling): %v", err)
	}
	if ex, _ := s.rec.since(n); ex[0].Status != http.StatusOK {
		a.checkPolling("stop", ex, http.StatusAccepted, "Location")
	}
	a.eventually("pc1 Stopped", 30*time.Second, func() bool { return deref(status("pc1").PacketCaptureStatus) == armnetwork.PcStatusStopped })
	if st := status("pc1"); deref(st.StopReason) == "" || deref(st.StopReason) == "TimeExceeded" || len(st.PacketCaptureError) != 0 {
		t.Errorf("status of a stopped capture: %s (want the reason it was stopped: by hand)", describe(st))
	}
	file := a.waitStored(storagePath, 60*time.Second)
	if n := packets(t, file); n != 300 {
		t.Errorf("%d packets in the file at %s, want the 300 to port 7301", n, storagePath)
	}

	// Several captures, all through the pager (absolute nextLinks, if any).
	for _, name := range []string{"pc2", "pc3", "pc4", "pc5"} {
		p, err := pcs.BeginCreate(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, name, armnetwork.PacketCapture{Properties: &armnetwork.PacketCaptureParameters{
			Target: ptr(vmID("h1")), StorageLocation: &armnetwork.PacketCaptureStorageLocation{StorageID: ptr(storageID)}, TimeLimitInSeconds: ptr[int32](60),
		}}, nil)
		if err != nil {
			t.Fatalf("BeginCreate %s: %v", name, err)
		}
		if _, err := p.PollUntilDone(ctxFor(t, 60*time.Second), pollFast); err != nil {
			t.Fatalf("BeginCreate %s (polling): %v", name, err)
		}
	}
	n = s.rec.len()
	var listed []string
	for p := pcs.NewListPager(azWatcherGroup, azWatcher, nil); p.More(); {
		page, err := p.NextPage(ctxFor(t, 30*time.Second))
		if err != nil {
			t.Fatalf("listing captures: %v", err)
		}
		for _, pc := range page.Value {
			listed = append(listed, deref(pc.Name))
			checkCapture(t, "listed", pc, deref(pc.Name), "")
		}
	}
	slices.Sort(listed)
	if !slices.Equal(listed, []string{"pc1", "pc2", "pc3", "pc4", "pc5"}) {
		t.Errorf("listed captures %q", listed)
	}
	ex, _ = s.rec.since(n)
	for _, e := range ex {
		var page struct {
			NextLink string `json:"nextLink"`
		}
		_ = json.Unmarshal(e.Body, &page)
		if page.NextLink != "" && !strings.HasPrefix(page.NextLink, a.apiURL+"/") {
			t.Errorf("nextLink %q is not absolute on %s", page.NextLink, a.apiURL)
		}
	}

	// Delete: 202 + a polling header (or 204); the file stays.
	n = s.rec.len()
	del, err := pcs.BeginDelete(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, "pc1", nil)
	if err != nil {
		t.Fatalf("BeginDelete pc1: %v", err)
	}
	if _, err := del.PollUntilDone(ctxFor(t, 60*time.Second), pollFast); err != nil {
		t.Fatalf("BeginDelete pc1 (polling): %v", err)
	}
	if ex, _ := s.rec.since(n); ex[0].Status != http.StatusNoContent {
		a.checkPolling("delete", ex, http.StatusAccepted, "")
		if ex[0].Header.Get("Azure-AsyncOperation") == "" && ex[0].Header.Get("Location") == "" {
			t.Errorf("delete answered 202 with neither Azure-AsyncOperation nor Location")
		}
	}
	_, err = pcs.Get(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, "pc1", nil)
	wantARMError(t, "get a deleted capture", err, http.StatusNotFound, "PacketCaptureNotFound")
	if _, err := os.Stat(file); err != nil {
		t.Errorf("deleting the capture deleted its stored file: %v", err)
	}
	_, err = pcs.BeginStop(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, "pc1", nil)
	wantARMError(t, "stop a deleted capture", err, http.StatusNotFound, "PacketCaptureNotFound")
	_, err = pcs.BeginGetStatus(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, "pc1", nil)
	wantARMError(t, "queryStatus of a deleted capture", err, http.StatusNotFound, "PacketCaptureNotFound")
	_, err = pcs.Get(ctxFor(t, 30*time.Second), azWatcherGroup, "NetworkWatcher_nowhere", "pc2", nil)
	wantARMError(t, "a capture of a watcher that is not there", err, http.StatusNotFound)
}

// checkCapture checks a packet capture result's read-only fields.
func checkCapture(t *testing.T, what string, pc *armnetwork.PacketCaptureResult, name, host string) {
	t.Helper()
	if deref(pc.Name) != name || !strings.EqualFold(deref(pc.ID), watcherID()+"/packetCaptures/"+name) || deref(pc.Etag) == "" || pc.Properties == nil {
		t.Errorf("%s %s: name %q id %q etag %q: %s", what, name, deref(pc.Name), deref(pc.ID), deref(pc.Etag), describe(pc))
		return
	}
	if deref(pc.Properties.ProvisioningState) != armnetwork.ProvisioningStateSucceeded {
		t.Errorf("%s %s: provisioningState %q", what, name, deref(pc.Properties.ProvisioningState))
	}
	if host != "" && !strings.EqualFold(deref(pc.Properties.Target), vmID(host)) {
		t.Errorf("%s %s: target %q, want %q", what, name, deref(pc.Properties.Target), vmID(host))
	}
}

// TestAzureSDKMetrics: armmonitor reads a VM's Network Out Total, per
// minute, from the metric store, and lists its metric definitions.
func TestAzureSDKMetrics(t *testing.T) {
	a := newAzureLab(t, nil)
	h1, h2 := a.addHost("h1"), a.addHost("h2")
	a.link(h1, h2)
	s := a.as("monitor", "Reader", "/subscriptions/"+azSubscription)
	mc, err := armmonitor.NewMetricsClient(azSubscription, s.cred, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	span := func() string {
		now := time.Now().UTC()
		return now.Add(-10*time.Minute).Format(time.RFC3339) + "/" + now.Add(time.Minute).Format(time.RFC3339)
	}
	var total, before float64
	var last string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the last answer's time series of Network Out Total: %s", last)
		}
	})
	// sumOut is h1's Network Out Total over the last 10 minutes, minute by minute.
	sumOut := func() float64 {
		r, err := mc.List(ctxFor(t, 30*time.Second), vmID("h1"), &armmonitor.MetricsClientListOptions{
			Metricnames: ptr("Network Out Total"), Timespan: ptr(span()), Interval: ptr("PT1M"), Aggregation: ptr("Total"),
		})
		if err != nil {
			t.Fatalf("metrics of h1: %v", err)
		}
		if len(r.Value) != 1 || r.Value[0].Name == nil || deref(r.Value[0].Name.Value) != "Network Out Total" || deref(r.Value[0].Unit) != armmonitor.MetricUnitBytes {
			t.Fatalf("metrics of h1: %s", describe(r.Value))
		}
		if deref(r.Interval) != "PT1M" {
			t.Errorf("interval %q, want PT1M", deref(r.Interval))
		}
		defer func() { last = describe(r.Value[0].Timeseries) }()
		total := 0.0
		for _, ts := range r.Value[0].Timeseries {
			for _, d := range ts.Data {
				total += deref(d.Total)
			}
		}
		return total
	}
	// The agent counts from its start: wait for its first minutes, then send 2 MB.
	a.eventually("h1's Network Out Total through the metrics API", 90*time.Second, func() bool { before = sumOut(); return before > 0 })
	a.sendSized(h1, h2, 7401, 2000, 1000, 1)
	a.eventually("the 2 MB h1 sent in its Network Out Total", 90*time.Second, func() bool { total = sumOut(); return total-before >= 2000*1000 })
	r, err := mc.List(ctxFor(t, 30*time.Second), vmID("h1"), &armmonitor.MetricsClientListOptions{
		Metricnames: ptr("Network Out Total"), Timespan: ptr(span()), Interval: ptr("PT1M"), Aggregation: ptr("Average"),
	})
	if err != nil || len(r.Value) != 1 || len(r.Value[0].Timeseries) == 0 {
		t.Fatalf("Average of Network Out Total over 10 minutes: %v %s", err, describe(r.Value))
	}
	var some bool
	for _, d := range r.Value[0].Timeseries[0].Data {
		if deref(d.Average) > 0 {
			some = true
		}
	}
	if !some {
		t.Errorf("no minute of h1 has an Average of Network Out Total above 0: %s", describe(r.Value[0].Timeseries[0].Data))
	}
	defs, err := armmonitor.NewMetricDefinitionsClient(azSubscription, s.cred, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for p := defs.NewListPager(vmID("h1"), nil); p.More(); {
		page, err := p.NextPage(ctxFor(t, 30*time.Second))
		if err != nil {
			t.Fatalf("metric definitions of h1: %v", err)
		}
		for _, d := range page.Value {
			if d.Name != nil {
				names = append(names, deref(d.Name.Value))
			}
		}
	}
	for _, want := range []string{"Network In Total", "Network Out Total"} {
		if !slices.Contains(names, want) {
			t.Errorf("metric definitions of h1 %q lack %q", names, want)
		}
	}
	_, err = mc.List(ctxFor(t, 30*time.Second), vmID("no-such-vm"), &armmonitor.MetricsClientListOptions{Metricnames: ptr("Network Out Total")})
	wantARMError(t, "metrics of a VM that is not there", err, http.StatusNotFound, "ResourceNotFound")
}

// fullLength reports whether every frame of a capture is whole (captured
// length = wire length): a zero bytesToCapturePerPacket means no truncation.
func fullLength(t *testing.T, file string) bool {
	t.Helper()
	out, err := exec.Command("tshark", "-r", file, "-T", "fields", "-e", "frame.len", "-e", "frame.cap_len").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", file, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || f[0] != f[1] {
			return false
		}
	}
	return true
}
