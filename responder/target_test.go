package responder_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

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

// An alert naming an IP address finds the host with that address, never a
// host named like it: a host enrolled before names like addresses were
// refused (put in the store directly here) does not receive the captures
// meant for the host that has the address. Two hosts with the address: no
// capture, and the run says why.
func TestResponderAddressTargetMatchesAddressesOnly(t *testing.T) {
	f := startResponders(t, newFixture(t, controlplane.Config{}))
	_, victim := f.enroll(t, "web1")
	f.withAddress(t, victim, "10.9.0.7")
	now := time.Now().UTC()
	rogue := &tripcap.Host{ID: tripcap.NewID(), Name: "10.9.0.7", Location: "westeurope", SubscriptionID: "s", ResourceGroup: "g",
		State: tripcap.HostOnline, LastSeen: now, CreatedAt: now, UpdatedAt: now}
	if err := f.store.CreateHost(context.Background(), rogue); err != nil {
		t.Fatal(err)
	}
	f.withAddress(t, rogue, "10.9.0.8")
	_, key := f.create(t, tripcap.Responder{Name: "pc"})
	if _, err := f.rsp.Invoke(context.Background(), "pc", key, amBody("firing", "10.9.0.7:9100", "fp1", "2026-01-01T00:00:00Z")); err != nil {
		t.Fatal(err)
	}
	runs := f.settle(t, "pc", 1)
	if r := runs[0]; r.Decision != tripcap.DecisionStarted || len(r.Hosts) != 1 || r.Hosts[0].HostID != victim.ID {
		t.Fatalf("the alert on 10.9.0.7 went to %+v, want host web1 only", r.Hosts)
	}

	_, twin := f.enroll(t, "web2")
	f.withAddress(t, twin, "10.9.0.7")
	if _, err := f.rsp.Invoke(context.Background(), "pc", key, amBody("firing", "10.9.0.7:9100", "fp2", "2026-01-01T00:01:00Z")); err != nil {
		t.Fatal(err)
	}
	runs = f.settle(t, "pc", 2)
	var r *tripcap.ResponderRun
	for _, x := range runs {
		if x.Decision != tripcap.DecisionStarted {
			r = x
		}
	}
	if r == nil || r.Decision != tripcap.DecisionUnresolved || len(r.Hosts) != 1 || r.Hosts[0].HostID != "" ||
		!strings.Contains(r.Hosts[0].Reason, "address 10.9.0.7 is on 2 hosts (web1, web2)") || !strings.Contains(r.Reason, "is on 2 hosts") {
		b, _ := json.Marshal(runs)
		t.Fatalf("an address two hosts have: %s", b)
	}
}
