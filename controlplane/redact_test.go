package controlplane_test

import (
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// Answers show action groups' webhook URLs redacted; a client that reads a
// group, changes something else and writes it back keeps the stored URL.
func TestActionGroupRedactedRoundTrip(t *testing.T) {
	m := startMonitor(t, newFixture(t, controlplane.Config{}))
	const uri = "https://fn.example.invalid/api/alert?code=S3cretCode&clientId=default"
	created, err := m.mon.CreateActionGroup(m.admin, &tripcap.ActionGroup{Name: "ops",
		WebhookReceivers: []tripcap.WebhookReceiver{{Name: "fn", ServiceURI: uri}}})
	if err != nil {
		t.Fatal(err)
	}
	if created.WebhookReceivers[0].ServiceURI != "https://fn.example.invalid/REDACTED" || created.SigningSecret == "" {
		t.Fatalf("create answer: %+v", created)
	}
	got, err := m.mon.FindActionGroup(m.admin, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got.WebhookReceivers[0].ServiceURI, "S3cretCode") || got.SigningSecret != "" || !got.SigningSecretSet {
		t.Fatalf("lookup answer: %+v", got)
	}
	got.Enabled = new(false)
	up, err := m.mon.UpdateActionGroup(m.admin, "ops", got, got.ETag())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(up.WebhookReceivers[0].ServiceURI, "S3cretCode") || up.SigningSecret != "" {
		t.Fatalf("update answer: %+v", up)
	}
	stored, err := m.store.FindActionGroup(m.admin, tripcap.ActionGroupFilter{Name: new("ops")})
	if err != nil {
		t.Fatal(err)
	}
	if stored.WebhookReceivers[0].ServiceURI != uri || stored.IsEnabled() || stored.SigningSecret != created.SigningSecret {
		t.Fatalf("stored after a write-back of the redacted answer: %+v", stored)
	}
	// A redacted URL under a receiver that had none it stands for: refused.
	got.WebhookReceivers[0].Name = "other"
	if _, err := m.mon.UpdateActionGroup(m.admin, "ops", got, "*"); tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(err.Error(), "webhookReceivers[0].serviceUri") {
		t.Fatalf("update with an unknown redacted URL: %v", err)
	}
}

// GET /api/v1/storage's service: URLs with their keys redacted.
func TestStorageAccountsRedacted(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	if err := f.store.CreateStorageAccount(f.admin, &tripcap.StorageAccount{Name: "azure", URL: "azblob://acct/c?key=S3cretKey"}); err != nil {
		t.Fatal(err)
	}
	as, err := f.svc.FindStorageAccounts(f.admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if strings.Contains(a.URL, "S3cretKey") {
			t.Fatalf("storage account answer holds the key: %+v", a)
		}
		if a.Name == "azure" && a.URL != "azblob://acct/c?key=REDACTED" {
			t.Fatalf("storage account answer: %+v", a)
		}
	}
}
