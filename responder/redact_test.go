package responder_test

import (
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// A responder's own webhook URLs are shown redacted, and kept whole when a
// client writes back what it read.
func TestResponderRedactedRoundTrip(t *testing.T) {
	f := startResponders(t, newFixture(t, controlplane.Config{}))
	const uri = "https://hook.example.invalid/done?token=S3cretToken"
	created, _ := f.create(t, tripcap.Responder{Name: "pc", NotifyWebhookReceivers: []tripcap.WebhookReceiver{{Name: "done", ServiceURI: uri}}})
	if created.NotifyWebhookReceivers[0].ServiceURI != "https://hook.example.invalid/REDACTED" {
		t.Fatalf("create answer: %+v", created.NotifyWebhookReceivers)
	}
	got, err := f.rsp.FindResponder(f.admin, "pc")
	if err != nil {
		t.Fatal(err)
	}
	list, err := f.rsp.FindResponders(f.admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append(list, got) {
		if strings.Contains(r.NotifyWebhookReceivers[0].ServiceURI, "S3cretToken") {
			t.Fatalf("answer holds the token: %+v", r.NotifyWebhookReceivers)
		}
	}
	got.Limit = 9
	if _, err := f.rsp.UpdateResponder(f.admin, "pc", got, got.ETag()); err != nil {
		t.Fatal(err)
	}
	stored, err := f.store.FindResponder(f.admin, tripcap.ResponderFilter{Name: new("pc")})
	if err != nil {
		t.Fatal(err)
	}
	if stored.NotifyWebhookReceivers[0].ServiceURI != uri || stored.Limit != 9 {
		t.Fatalf("stored after a write-back of the redacted answer: %+v", stored)
	}
}
