package arm_test

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/storage/armstorage"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/internal/teststore"
)

func TestStorageAccountsSDK(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) { testStorageAccountsSDK(t, store) })
}

func testStorageAccountsSDK(t *testing.T, store tripcap.Store) {
	rig := newComputeRig(t, store)
	ctx := t.Context()
	accounts, err := armstorage.NewAccountsClient(serverSub, token("admin"), rig.options())
	if err != nil {
		t.Fatal(err)
	}
	got, err := accounts.GetProperties(ctx, "captures", "CapturesAcct", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := got.Account
	wantID := tripcap.StorageAccountResourceID(serverSub, "Captures", "capturesacct")
	if *a.ID != wantID || *a.Name != "capturesacct" || *a.Type != "Microsoft.Storage/storageAccounts" || *a.Location != "westeurope" ||
		*a.Kind != armstorage.KindStorageV2 || *a.Properties.ProvisioningState != armstorage.ProvisioningStateSucceeded || *a.Properties.PrimaryEndpoints.Blob == "" {
		t.Fatalf("account: %s %s %s %s", *a.ID, *a.Name, *a.Type, *a.Location)
	}

	ids := func(next func() ([]*armstorage.Account, bool, error)) []string {
		var out []string
		for {
			page, more, err := next()
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range page {
				out = append(out, *a.ID)
			}
			if !more {
				return out
			}
		}
	}
	all := accounts.NewListPager(nil)
	if got := ids(func() ([]*armstorage.Account, bool, error) {
		p, err := all.NextPage(ctx)
		return p.Value, all.More(), err
	}); len(got) != 1 || got[0] != wantID {
		t.Fatalf("subscription's accounts: %v", got)
	}
	byGroup := accounts.NewListByResourceGroupPager("Captures", nil)
	if got := ids(func() ([]*armstorage.Account, bool, error) {
		p, err := byGroup.NextPage(ctx)
		return p.Value, byGroup.More(), err
	}); len(got) != 1 {
		t.Fatalf("group's accounts: %v", got)
	}
	other := accounts.NewListByResourceGroupPager("Web", nil)
	if got := ids(func() ([]*armstorage.Account, bool, error) {
		p, err := other.NextPage(ctx)
		return p.Value, other.More(), err
	}); len(got) != 0 {
		t.Fatalf("another group's accounts: %v", got)
	}
	_, err = accounts.GetProperties(ctx, "Captures", "nope", nil)
	wantARMError(t, "no account", err, 404, "ResourceNotFound")
	_, err = accounts.GetProperties(ctx, "Web", "capturesacct", nil)
	wantARMError(t, "account in another group", err, 404, "ResourceNotFound")

	// Reading accounts needs read over the server's resource group, where they are.
	scoped, err := armstorage.NewAccountsClient(serverSub, token("teamA"), rig.options())
	if err != nil {
		t.Fatal(err)
	}
	_, err = scoped.GetProperties(ctx, "Captures", "capturesacct", nil)
	wantARMError(t, "scoped reader", err, 403, "AuthorizationFailed")

	// A Reader of the subscription reads them, as in Azure.
	subReader, err := armstorage.NewAccountsClient(serverSub, token("subReader"), rig.options())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := subReader.GetProperties(ctx, "Captures", "capturesacct", nil); err != nil {
		t.Fatalf("subscription reader: %v", err)
	}

	// The id the answer gives is a capture's storageId.
	admin := tripcap.NewContextWithPrincipal(ctx, principals["admin"])
	c, err := rig.svc.CreateCapture(admin, controlplane.CreateCaptureRequest{Name: "pc", Parameters: tripcap.PacketCaptureParameters{
		Target: rig.hosts["web-0"].ResourceID(), StorageLocation: tripcap.StorageLocation{StorageID: *a.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Parameters.StorageLocation.StorageID != *a.ID || c.Parameters.StorageLocation.StoragePath == "" {
		t.Fatalf("storage location %+v", c.Parameters.StorageLocation)
	}
}
