package arm_test

import (
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/teststore"
)

// TestScaleSetCaptureSDK: the armnetwork client captures on a scale set
// (targetType AzureVMSS, scope include/exclude): one session per selected
// instance, whose agents' reports make the capture's status, through the
// create, stop and delete pollers.
func TestScaleSetCaptureSDK(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) { testScaleSetCaptureSDK(t, store) })
}

func testScaleSetCaptureSDK(t *testing.T, store tripcap.Store) {
	rig := newComputeRig(t, store)
	ctx := t.Context()
	captures, err := armnetwork.NewPacketCapturesClient(computeSub, token("admin"), rig.options())
	if err != nil {
		t.Fatal(err)
	}
	const group, watcher = "NetworkWatcherRG", "NetworkWatcher_westeurope"
	set := tripcap.VMSSResourceID(computeSub, "Web", "web")
	storageID := tripcap.StorageAccountResourceID(serverSub, "Captures", "capturesacct")
	poller, err := captures.BeginCreate(ctx, group, watcher, "vmss-pc", armnetwork.PacketCapture{Properties: &armnetwork.PacketCaptureParameters{
		Target:             new(set),
		TargetType:         new(armnetwork.PacketCaptureTargetTypeAzureVMSS),
		Scope:              &armnetwork.PacketCaptureMachineScope{Exclude: []*string{new("web-2")}},
		StorageLocation:    &armnetwork.PacketCaptureStorageLocation{StorageID: new(storageID)},
		TimeLimitInSeconds: new(int32(30)),
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	admin := tripcap.NewContextWithPrincipal(ctx, principals["admin"])
	c, err := rig.svc.FindCapture(admin, "", "vmss-pc")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sessions) != 2 || c.Sessions[0].InstanceID != "web-0" || c.Sessions[1].InstanceID != "web-1" {
		t.Fatalf("sessions: %+v", c.Sessions)
	}
	report := func(st tripcap.PacketCaptureStatus, reason string) {
		t.Helper()
		for _, s := range c.Sessions {
			now := time.Now().UTC()
			r := tripcap.SessionReport{CaptureID: s.CaptureID, Status: st, StopReason: reason, StartTime: &now}
			if st.Terminal() {
				r.StopTime = &now
			}
			if _, err := rig.svc.Report(rig.agents[s.InstanceID], []tripcap.SessionReport{r}); err != nil {
				t.Fatal(err)
			}
		}
	}
	report(tripcap.StatusRunning, "")
	created, err := poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p := created.Properties
	if *p.Target != set || *p.TargetType != armnetwork.PacketCaptureTargetTypeAzureVMSS || len(p.Scope.Exclude) != 1 || *p.Scope.Exclude[0] != "web-2" ||
		*p.ProvisioningState != armnetwork.ProvisioningStateSucceeded || *p.StorageLocation.StorageID != storageID {
		t.Fatalf("created: target %s type %s state %s", *p.Target, *p.TargetType, *p.ProvisioningState)
	}
	status := func() *armnetwork.PacketCaptureQueryStatusResult {
		t.Helper()
		qp, err := captures.BeginGetStatus(ctx, group, watcher, "vmss-pc", nil)
		if err != nil {
			t.Fatal(err)
		}
		st, err := qp.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return &st.PacketCaptureQueryStatusResult
	}
	if st := status(); *st.PacketCaptureStatus != armnetwork.PcStatusRunning || st.CaptureStartTime == nil {
		t.Fatalf("status: %s", *st.PacketCaptureStatus)
	}

	// The list shows the capture of the scale set, not its sessions.
	list := captures.NewListPager(group, watcher, nil)
	page, err := list.NextPage(ctx)
	if err != nil || len(page.Value) != 1 || *page.Value[0].Name != "vmss-pc" {
		t.Fatalf("list: %v", err)
	}

	// Stop reaches both instances; done once both agents stopped.
	stop, err := captures.BeginStop(ctx, group, watcher, "vmss-pc", nil)
	if err != nil {
		t.Fatal(err)
	}
	report(tripcap.StatusStopped, tripcap.StopManuallyStopped)
	if _, err := stop.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if st := status(); *st.PacketCaptureStatus != armnetwork.PcStatusStopped || *st.StopReason != tripcap.StopManuallyStopped {
		t.Fatalf("after stop: %s %s", *st.PacketCaptureStatus, *st.StopReason)
	}

	del, err := captures.BeginDelete(ctx, group, watcher, "vmss-pc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	_, err = captures.Get(ctx, group, watcher, "vmss-pc", nil)
	wantARMError(t, "deleted", err, 404, "PacketCaptureNotFound")

	// A scope naming no instance is refused, naming the field.
	_, err = captures.BeginCreate(ctx, group, watcher, "bad", armnetwork.PacketCapture{Properties: &armnetwork.PacketCaptureParameters{
		Target: new(set), TargetType: new(armnetwork.PacketCaptureTargetTypeAzureVMSS),
		Scope:           &armnetwork.PacketCaptureMachineScope{Include: []*string{new("web-7")}},
		StorageLocation: &armnetwork.PacketCaptureStorageLocation{StorageID: new(storageID)},
	}}, nil)
	wantARMError(t, "unknown instance", err, 400, "InvalidRequestFormat")
}
