package tripcap

import (
	"strings"
	"testing"
)

func TestAzurePlacement(t *testing.T) {
	const sub = "11111111-2222-3333-4444-555555555555"
	p := AzurePlacement{SubscriptionID: sub, ResourceGroup: "Monitoring", Tags: map[string]string{"team": "net"}}
	if err := p.ValidatePlacement(); err != nil {
		t.Fatal(err)
	}
	if !p.Placed(strings.ToUpper(sub), "monitoring", "d", "dg") || !p.Placed(sub, "", "d", "dg") || p.Placed(sub, "web", "d", "dg") {
		t.Error("Placed compares subscription and group without case, and any group when none is asked")
	}
	var none AzurePlacement
	if !none.Placed("d", "DG", "d", "dg") || none.Placed(sub, "", "d", "dg") {
		t.Error("an unplaced object is in the defaults")
	}
	// A native update (no placement) keeps the one it had; an ARM one
	// (placement and empty tags) replaces it.
	native := AzurePlacement{}
	native.Inherit(p)
	if native.ResourceGroup != "Monitoring" || native.Tags["team"] != "net" {
		t.Errorf("inherited: %+v", native)
	}
	arm := AzurePlacement{SubscriptionID: sub, ResourceGroup: "web", Tags: map[string]string{}}
	arm.Inherit(p)
	if arm.ResourceGroup != "web" || len(arm.Tags) != 0 {
		t.Errorf("an ARM PUT inherited: %+v", arm)
	}
	for _, c := range []struct {
		p     AzurePlacement
		field string
	}{
		{AzurePlacement{SubscriptionID: sub}, "subscriptionId, resourceGroup"},
		{AzurePlacement{SubscriptionID: "a/b", ResourceGroup: "g"}, "subscriptionId"},
		{AzurePlacement{SubscriptionID: sub, ResourceGroup: "g."}, "resourceGroup"},
		{AzurePlacement{SubscriptionID: sub, ResourceGroup: "g h"}, "resourceGroup"},
		{AzurePlacement{SubscriptionID: sub, ResourceGroup: strings.Repeat("g", 91)}, "resourceGroup"},
		{AzurePlacement{Tags: map[string]string{"a/b": "x"}}, "tags"},
		{AzurePlacement{Tags: map[string]string{"a": strings.Repeat("v", 257)}}, "tags"},
	} {
		err := c.p.ValidatePlacement()
		if ErrorCode(err) != EINVALID || !strings.HasPrefix(ErrorMessage(err), c.field) {
			t.Errorf("%+v: %v, want EINVALID naming %s", c.p, err, c.field)
		}
	}
}

func TestAlertRuleTargetResourceRegion(t *testing.T) {
	r, err := PresetAlertRule(PresetSeed, "seed", []Scope{"/subscriptions/s/resourceGroups/web"})
	if err != nil {
		t.Fatal(err)
	}
	we := &Host{Name: "vm1", SubscriptionID: "s", ResourceGroup: "web", Location: "westeurope"}
	us := &Host{Name: "vm2", SubscriptionID: "s", ResourceGroup: "web", Location: "eastus"}
	if !r.InScope(we) || !r.InScope(us) {
		t.Fatal("without a region the group's hosts are in scope")
	}
	r.TargetResourceRegion = "WestEurope"
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if !r.InScope(we) || r.InScope(us) {
		t.Error("targetResourceRegion keeps the rule to the hosts of that location")
	}
	r.TargetResourceRegion = "west europe"
	if err := r.Validate(); ErrorCode(err) != EINVALID || !strings.HasPrefix(ErrorMessage(err), "targetResourceRegion") {
		t.Errorf("a bad region: %v", err)
	}
}
