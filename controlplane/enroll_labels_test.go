package controlplane_test

import (
	"context"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// TestEnrollRefusesMalformedAzureLabels: the labels that place a host in
// Azure's ids are checked at enrollment (a subscription is a GUID, a
// resource group follows Azure's rule), naming the label, and the join
// token is not spent on a refusal.
func TestEnrollRefusesMalformedAzureLabels(t *testing.T) {
	f, _ := loggedFixture(t)
	jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	for labels, want := range map[[2]string]string{
		{tripcap.LabelSubscription, "not-a-guid"}:  "labels." + tripcap.LabelSubscription + ": ",
		{tripcap.LabelResourceGroup, "rg/../x"}:    "labels." + tripcap.LabelResourceGroup + ": ",
		{tripcap.LabelResourceGroup, "ends-in-a."}: "labels." + tripcap.LabelResourceGroup + ": ",
	} {
		_, err := f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: "h1", Remote: "198.18.0.5", Labels: map[string]string{labels[0]: labels[1]}})
		wantCode(t, err, tripcap.EINVALID, want)
	}
	sub, group := "5E7C9D1A-1B2C-4D3E-8F90-A1B2C3D4E5F6", "rg(1)_a.b-c"
	res, err := f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: "h1", Remote: "198.18.0.5",
		Labels: map[string]string{tripcap.LabelSubscription: sub, tripcap.LabelResourceGroup: group}})
	if err != nil {
		t.Fatalf("well-formed labels, on the token the refusals did not spend: %v", err)
	}
	if res.Host.SubscriptionID != sub || res.Host.ResourceGroup != group {
		t.Fatalf("host placed in %s/%s", res.Host.SubscriptionID, res.Host.ResourceGroup)
	}
}
