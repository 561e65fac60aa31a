package controlplane_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/controlplane"
)

// An action group's webhook may not target a cloud metadata address, nor
// the server's own API, unless the operator allows it; the refusal names
// the field.
func TestActionGroupWebhookTargetsRefused(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	mon, err := controlplane.NewMonitor(f.store, slog.New(slog.NewTextHandler(io.Discard, nil)), controlplane.MonitorConfig{
		WebhookTargets: actiongroup.Targets{Own: []string{"198.18.0.1:8443"}}})
	if err != nil {
		t.Fatal(err)
	}
	for uri, want := range map[string]string{
		"http://169.254.169.254/latest/meta-data/iam/": "webhookReceivers[1].serviceUri: 169.254.169.254 is a link-local address",
		"https://198.18.0.1:8443/api/v1/hosts":         "webhookReceivers[1].serviceUri: 198.18.0.1:8443 is this server's own address",
		"http://127.0.0.1:8080/hook":                   "webhookReceivers[1].serviceUri: 127.0.0.1 is a loopback address",
	} {
		g := &tripcap.ActionGroup{Name: "ops", WebhookReceivers: []tripcap.WebhookReceiver{
			{Name: "fine", ServiceURI: "https://hooks.example.test/a"}, {Name: "bad", ServiceURI: uri}}}
		_, err := mon.CreateActionGroup(f.admin, g)
		wantCode(t, err, tripcap.EINVALID, want)
	}
	if _, err := mon.CreateActionGroup(f.admin, &tripcap.ActionGroup{Name: "ops", WebhookReceivers: []tripcap.WebhookReceiver{
		{Name: "fine", ServiceURI: "https://198.18.0.1:9000/hook"}}}); err != nil {
		t.Fatalf("a test-net address at another port: %v", err)
	}
	// Updating is checked as creating.
	_, err = mon.UpdateActionGroup(f.admin, "ops", &tripcap.ActionGroup{WebhookReceivers: []tripcap.WebhookReceiver{
		{Name: "bad", ServiceURI: "http://[fe80::a9fe:a9fe]/"}}}, "*")
	wantCode(t, err, tripcap.EINVALID, "webhookReceivers[0].serviceUri")
}
