package arm_test

import (
	"slices"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources/v3"
)

// TestResourceGroups: the official armresources client (what Az's
// Get-AzResourceGroup and az group list call) lists the groups holding the
// subscription's host, its watcher and the storage accounts, and gets one
// by its name in any case; an unknown group is 404 ResourceGroupNotFound.
func TestResourceGroups(t *testing.T) {
	f := newNetFixture(t)
	ctx := t.Context()
	client, err := armresources.NewResourceGroupsClient(sub, staticToken(f.token), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	pager := client.NewListPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range page.Value {
			if *g.ID != "/subscriptions/"+sub+"/resourceGroups/"+*g.Name || *g.Type != "Microsoft.Resources/resourceGroups" || *g.Location == "" || *g.Properties.ProvisioningState != "Succeeded" {
				t.Errorf("group %+v", g)
			}
			names = append(names, *g.Name)
		}
	}
	if !slices.Contains(names, f.host.ResourceGroup) || !slices.Contains(names, group) || !slices.Contains(names, f.svc.Config().ResourceGroup) {
		t.Fatalf("groups %v; want the host's %s, %s and the server's %s", names, f.host.ResourceGroup, group, f.svc.Config().ResourceGroup)
	}
	got, err := client.Get(ctx, "networkwatcherrg", nil)
	if err != nil {
		t.Fatal(err)
	}
	if *got.Name != group || *got.Location != f.host.Location {
		t.Fatalf("get networkwatcherrg: %s in %s; want %s in %s", *got.Name, *got.Location, group, f.host.Location)
	}
	_, err = client.Get(ctx, "Nope", nil)
	respErr(t, err, 404, "ResourceGroupNotFound")
	other, err := armresources.NewResourceGroupsClient("11111111-1111-1111-1111-111111111111", staticToken(f.token), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.NewListPager(nil).NextPage(ctx)
	respErr(t, err, 404, "SubscriptionNotFound")
}
