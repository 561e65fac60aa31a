package responder_test

import (
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// A responder's own notify webhooks are held to the same targets as an
// action group's: the metadata address is refused at create and update,
// naming the field; the loopback receivers of these tests pass because the
// fixture's notifier allows loopback, as an operator would.
func TestResponderNotifyWebhookTargets(t *testing.T) {
	f := startResponders(t, newFixture(t, controlplane.Config{}))
	bad := &tripcap.Responder{Name: "pc", NotifyWebhookReceivers: []tripcap.WebhookReceiver{
		{Name: "ok", ServiceURI: "http://127.0.0.1:9/ok"}, {Name: "meta", ServiceURI: "http://169.254.169.254/latest/"}}}
	_, err := f.rsp.CreateResponder(f.admin, bad)
	if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(tripcap.ErrorMessage(err), "notifyWebhookReceivers[1].serviceUri: 169.254.169.254 is a link-local address") {
		t.Fatalf("create: %v", err)
	}
	if _, err := f.rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "pc"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.rsp.UpdateResponder(f.admin, "pc", bad, "")
	if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(tripcap.ErrorMessage(err), "notifyWebhookReceivers[1].serviceUri") {
		t.Fatalf("update: %v", err)
	}
}
