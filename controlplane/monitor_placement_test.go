package controlplane_test

import (
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// TestNativeUpdateKeepsAzurePlacement: a rule and group filed in a resource
// group (through the Azure surface) stay there, with their tags, when the
// native API, which knows nothing of placements, replaces them.
func TestNativeUpdateKeepsAzurePlacement(t *testing.T) {
	m := startMonitor(t, newFixture(t, controlplane.Config{}))
	place := tripcap.AzurePlacement{SubscriptionID: "11111111-2222-3333-4444-555555555555", ResourceGroup: "monitoring", Tags: map[string]string{"team": "net"}}
	g, err := m.mon.CreateActionGroup(m.admin, &tripcap.ActionGroup{Name: "ops", AzurePlacement: place,
		WebhookReceivers: []tripcap.WebhookReceiver{{Name: "w", ServiceURI: "https://hooks.example.com/x"}}})
	if err != nil {
		t.Fatal(err)
	}
	in := egressRule("egress", g.ID, 1000)
	in.AzurePlacement = place
	r, err := m.mon.CreateRule(m.admin, in)
	if err != nil {
		t.Fatal(err)
	}
	native := egressRule("egress", g.ID, 2000)
	r2, err := m.mon.UpdateRule(m.admin, r.ID, native, r.ETag())
	if err != nil {
		t.Fatal(err)
	}
	if r2.ResourceGroup != "monitoring" || r2.SubscriptionID != place.SubscriptionID || r2.Tags["team"] != "net" {
		t.Errorf("rule's placement after a native update: %+v", r2.AzurePlacement)
	}
	g2, err := m.mon.UpdateActionGroup(m.admin, g.ID, &tripcap.ActionGroup{Name: "ops", Enabled: new(false),
		WebhookReceivers: []tripcap.WebhookReceiver{{Name: "w", ServiceURI: "https://hooks.example.com/y"}}}, g.ETag())
	if err != nil {
		t.Fatal(err)
	}
	if g2.ResourceGroup != "monitoring" || g2.Tags["team"] != "net" {
		t.Errorf("group's placement after a native update: %+v", g2.AzurePlacement)
	}
	// Half a placement is refused, naming both fields.
	bad := egressRule("half", g.ID, 1)
	bad.SubscriptionID = place.SubscriptionID
	_, err = m.mon.CreateRule(m.admin, bad)
	wantCode(t, err, tripcap.EINVALID, "subscriptionId, resourceGroup")
}
