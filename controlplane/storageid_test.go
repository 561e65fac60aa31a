package controlplane_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// TestStorageIDByResourceID: a capture's storageId may be the storage
// account's Azure resource id, as a user would write it in Azure; the
// file lands in that account.
func TestStorageIDByResourceID(t *testing.T) {
	f := newFixture(t, controlplane.Config{SubscriptionID: "11111111-2222-3333-4444-555555555555", ResourceGroup: "Captures"})
	agent, h := f.enroll(t, "web1")
	id := f.svc.StorageAccountResourceID("local")
	if id != "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/Captures/providers/Microsoft.Storage/storageAccounts/local" {
		t.Fatalf("resource id %s", id)
	}
	c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "pc", Parameters: tripcap.PacketCaptureParameters{
		Target: h.ResourceID(), StorageLocation: tripcap.StorageLocation{StorageID: strings.ToUpper(id[:40]) + id[40:]}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := f.blobs.URL(c.StorageKey); c.Parameters.StorageLocation.StoragePath != want || c.StorageKey == "" {
		t.Fatalf("storagePath %q, want %q", c.Parameters.StorageLocation.StoragePath, want)
	}
	data := []byte("packets")
	sum := sha256.Sum256(data)
	if _, err := f.svc.UploadFile(agent, c.ID, "f.cap", hex.EncodeToString(sum[:]), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	rc, _, err := f.blobs.Open(t.Context(), c.StorageKey)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("stored %q, want %q", got, data)
	}

	for _, tc := range []struct{ id, msg string }{
		{"/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/Other/providers/Microsoft.Storage/storageAccounts/local", "resource group Captures"},
		{"/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/Captures/providers/Microsoft.Storage/storageAccounts/nope", `no storage account "nope"`},
		{"/subscriptions/x/resourceGroups/Captures/providers/Microsoft.Storage/blobServices/local", "neither a storage account's name nor its resource id"},
	} {
		_, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "pc2", Parameters: tripcap.PacketCaptureParameters{
			Target: h.Name, StorageLocation: tripcap.StorageLocation{StorageID: tc.id}}})
		wantCode(t, err, tripcap.EINVALID, "storageLocation.storageId")
		wantCode(t, err, tripcap.EINVALID, tc.msg)
	}
}
