package arm_test

import (
	"testing"
)

// TestPacketCaptureNamesAnyCase: ARM names are case-insensitive and
// case-preserving. After PUT pc1, GET, DELETE and queryStatus find it by
// any case and answer its name as written; a PUT of PC1 is the same name
// (409 Conflict, as a second PUT of pc1), so the watcher never holds two.
func TestPacketCaptureNamesAnyCase(t *testing.T) {
	f := newNetFixture(t)
	ctx := t.Context()
	client := f.captures(t)
	p, err := client.BeginCreate(ctx, group, watcher, "pc1", captureParams(f.vmID()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PollUntilDone(ctx, poll()); err != nil {
		t.Fatal(err)
	}
	got, err := client.Get(ctx, group, watcher, "PC1", nil)
	if err != nil {
		t.Fatalf("GET PC1 after PUT pc1: %v", err)
	}
	if *got.Name != "pc1" || *got.ID != "/subscriptions/"+sub+"/resourceGroups/"+group+"/providers/Microsoft.Network/networkWatchers/"+watcher+"/packetCaptures/pc1" {
		t.Fatalf("GET PC1: name %s id %s; want pc1 as written", *got.Name, *got.ID)
	}
	_, err = client.BeginCreate(ctx, group, watcher, "PC1", captureParams(f.vmID()), nil)
	respErr(t, err, 409, "Conflict")
	qs, err := client.BeginGetStatus(ctx, group, watcher, "Pc1", nil)
	if err != nil {
		t.Fatalf("queryStatus Pc1: %v", err)
	}
	if _, err := qs.PollUntilDone(ctx, poll()); err != nil {
		t.Fatal(err)
	}
	var names []string
	pager := client.NewListPager(group, watcher, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Value {
			names = append(names, *c.Name)
		}
	}
	if len(names) != 1 || names[0] != "pc1" {
		t.Fatalf("captures %v; want only pc1", names)
	}
	d, err := client.BeginDelete(ctx, group, watcher, "pC1", nil)
	if err != nil {
		t.Fatalf("DELETE pC1: %v", err)
	}
	if _, err := d.PollUntilDone(ctx, poll()); err != nil {
		t.Fatal(err)
	}
	_, err = client.Get(ctx, group, watcher, "pc1", nil)
	respErr(t, err, 404, "PacketCaptureNotFound")
}
