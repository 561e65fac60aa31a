package responder_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap/actiongroup/webhooktest"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/responder"
)

type responderFixture struct {
	*fixture
	rsp *responder.Responders
}

func startResponders(t *testing.T, f *fixture) *responderFixture {
	t.Helper()
	n, err := actiongroup.New(actiongroup.Config{Targets: webhooktest.Targets(), Retry: actiongroup.Retry{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, Total: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := responder.New(deps(f), slog.New(slog.NewTextHandler(io.Discard, nil)), responder.Config{
		PollInterval: 20 * time.Millisecond, PublicURL: "https://tripcap.example", Notifier: n,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rsp.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &responderFixture{fixture: f, rsp: rsp}
}

// withAddress records an inventory for the host, as its agent would.
func (f *responderFixture) withAddress(t *testing.T, h *tripcap.Host, addr string) {
	t.Helper()
	inv := tripcap.Inventory{Hostname: h.Name, OS: "linux", AgentVersion: "test", Interfaces: []tripcap.Interface{{Name: "eth0", Addresses: []string{addr + "/24"}}}}
	if err := f.store.UpdateHostInventory(context.Background(), h.ID, inv, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func (f *responderFixture) create(t *testing.T, r tripcap.Responder) (*tripcap.Responder, string) {
	t.Helper()
	got, err := f.rsp.CreateResponder(f.admin, &r)
	if err != nil {
		t.Fatal(err)
	}
	k, err := f.rsp.CreateKey(f.admin, got.Name, "default")
	if err != nil {
		t.Fatal(err)
	}
	return got, k.Secret
}

// settle waits for every run of the responder to leave pending, and
// returns them, newest first.
func (f *responderFixture) settle(t *testing.T, name string, want int) []*tripcap.ResponderRun {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runs, err := f.rsp.FindRuns(f.admin, name, 0)
		if err != nil {
			t.Fatal(err)
		}
		done := len(runs) == want
		for _, r := range runs {
			if r.Decision == tripcap.DecisionPending {
				done = false
			}
		}
		if done {
			return runs
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(runs, "", " ")
			t.Fatalf("runs of %s did not settle to %d: %s", name, want, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func amBody(status, instance, fingerprint, startsAt string) []byte {
	return fmt.Appendf(nil, `{"receiver":"tripcap","status":%[1]q,"version":"4","groupKey":"{}","alerts":[{"status":%[1]q,
		"labels":{"alertname":"NetworkOutHigh","instance":%[2]q},"annotations":{},"startsAt":%[4]q,"endsAt":"0001-01-01T00:00:00Z","fingerprint":%[3]q}]}`,
		status, instance, fingerprint, startsAt)
}

func captureNames(t *testing.T, f *fixture) []string {
	t.Helper()
	cs, _, err := f.svc.FindCaptures(f.admin, "", "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestResponderCRUDAndKeys(t *testing.T) {
	f := startResponders(t, newFixture(t, controlplane.Config{}))
	_, err := f.rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "x", NameConflict: "merge"})
	wantCode(t, err, tripcap.EINVALID, "nameConflict")
	_, err = f.rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "x", NotifyActionGroup: "nobody"})
	wantCode(t, err, tripcap.EINVALID, "notifyActionGroup")
	_, err = f.rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "x", Capture: tripcap.ResponderCapture{StorageAccount: "nowhere"}})
	wantCode(t, err, tripcap.EINVALID, "capture.storageAccount")
	_, err = f.rsp.CreateResponder(context.Background(), &tripcap.Responder{Name: "x"})
	if tripcap.ErrorCode(err) == "" {
		t.Fatal("an anonymous caller created a responder")
	}

	r, err := f.rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "pc"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Capture.Name != "PSAzureFunction" || r.Capture.TimeLimitInSeconds != 30 || r.Limit != 100 || r.NameConflict != tripcap.ConflictReplace || !r.IsEnabled() {
		t.Fatalf("seed defaults not applied: %+v", r)
	}
	_, err = f.rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "PC"})
	wantCode(t, err, tripcap.ECONFLICT, "PC")

	k1, err := f.rsp.CreateKey(f.admin, "pc", "default")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k1.Secret, responder.SecretPrefixFunction) {
		t.Fatalf("secret %q", k1.Secret)
	}
	keys, err := f.rsp.FindKeys(f.admin, "pc")
	if err != nil || len(keys) != 1 || keys[0].Secret != "" || keys[0].Hash == k1.Secret {
		t.Fatalf("keys listing shows secrets or is wrong: %+v %v", keys, err)
	}
	k2, err := f.rsp.RotateKey(f.admin, "pc", "default")
	if err != nil {
		t.Fatal(err)
	}
	body := amBody("firing", "nowhere:9100", "fp", "2026-01-01T00:00:00Z")
	_, err = f.rsp.Invoke(context.Background(), "pc", k1.Secret, body)
	wantCode(t, err, tripcap.EUNAUTHORIZED, "function key")
	if _, err := f.rsp.Invoke(context.Background(), "pc", k2.Secret, body); err != nil {
		t.Fatalf("rotated key refused: %v", err)
	}
	if err := f.rsp.RevokeKey(f.admin, "pc", "default"); err != nil {
		t.Fatal(err)
	}
	_, err = f.rsp.Invoke(context.Background(), "pc", k2.Secret, body)
	wantCode(t, err, tripcap.EUNAUTHORIZED, "function key")
	wantCode(t, f.rsp.RevokeKey(f.admin, "pc", "default"), tripcap.ENOTFOUND, "default")
	if err := f.rsp.DeleteResponder(f.admin, "pc"); err != nil {
		t.Fatal(err)
	}
	_, err = f.rsp.FindResponder(f.admin, "pc")
	wantCode(t, err, tripcap.ENOTFOUND, "pc")
}

func TestResponderInvokeBadInputStartsNothing(t *testing.T) {
	f := startResponders(t, newFixture(t, controlplane.Config{}))
	_, h := f.enroll(t, "web1")
	f.withAddress(t, h, "10.9.0.2")
	_, key := f.create(t, tripcap.Responder{Name: "pc"})
	other, err := f.rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := f.rsp.CreateKey(f.admin, other.Name, "k")
	if err != nil {
		t.Fatal(err)
	}
	good := amBody("firing", "10.9.0.2:9100", "fp", "2026-01-01T00:00:00Z")
	for _, c := range []struct {
		name, responder, key string
		body                 []byte
		code, msg            string
	}{
		{"no key", "pc", "", good, tripcap.EUNAUTHORIZED, "function key"},
		{"wrong key", "pc", "tc_fn_wrong", good, tripcap.EUNAUTHORIZED, "function key"},
		{"another responder's key", "pc", otherKey.Secret, good, tripcap.EUNAUTHORIZED, "function key"},
		{"unknown responder", "nobody", key, good, tripcap.EUNAUTHORIZED, "function key"},
		{"malformed JSON", "pc", key, []byte(`{"alerts":`), tripcap.EINVALID, "malformed JSON"},
		{"unknown schema", "pc", key, []byte(`{"schemaId":"Microsoft.Insights/activityLogs","data":{}}`), tripcap.EINVALID, "azureMonitorCommonAlertSchema"},
		{"unknown object", "pc", key, []byte(`{"hello":1}`), tripcap.EINVALID, "Alertmanager"},
	} {
		_, err := f.rsp.Invoke(context.Background(), c.responder, c.key, c.body)
		if tripcap.ErrorCode(err) != c.code || !strings.Contains(tripcap.ErrorMessage(err), c.msg) {
			t.Errorf("%s: %v, want %s mentioning %q", c.name, err, c.code, c.msg)
		}
	}
	runs, err := f.rsp.FindRuns(f.admin, "pc", 0)
	if err != nil || len(runs) != 0 {
		t.Fatalf("bad input recorded runs: %+v %v", runs, err)
	}
	if names := captureNames(t, f.fixture); len(names) != 0 {
		t.Fatalf("bad input started captures: %v", names)
	}
}

func TestResponderAlertmanagerStartsOnceAndStopsOnResolved(t *testing.T) {
	f := startResponders(t, newFixture(t, controlplane.Config{}))
	_, h1 := f.enroll(t, "web1")
	_, h2 := f.enroll(t, "web2")
	f.withAddress(t, h1, "10.9.0.2")
	f.withAddress(t, h2, "10.9.0.3")
	_, key := f.create(t, tripcap.Responder{Name: "pc", StopOnResolved: true, Capture: tripcap.ResponderCapture{
		PreTriggerSeconds: 5,
		Filters:           []tripcap.PacketCaptureFilter{{Protocol: "TCP", LocalIPAddress: tripcap.PlaceholderHostAddress}},
	}})
	body := amBody("firing", "10.9.0.3:9100", "fp1", "2026-01-01T00:00:00Z")
	runs, err := f.rsp.Invoke(context.Background(), "pc", key, body)
	if err != nil || len(runs) != 1 || runs[0].Decision != tripcap.DecisionPending {
		t.Fatalf("invoke: %+v %v", runs, err)
	}
	// The redelivery is recorded but starts nothing.
	if _, err := f.rsp.Invoke(context.Background(), "pc", key, body); err != nil {
		t.Fatal(err)
	}
	got := f.settle(t, "pc", 2)
	byDecision := map[string]*tripcap.ResponderRun{}
	for _, r := range got {
		byDecision[r.Decision] = r
	}
	started, dup := byDecision[tripcap.DecisionStarted], byDecision[tripcap.DecisionDuplicate]
	if started == nil || dup == nil {
		t.Fatalf("want one started and one duplicate run: %+v", got)
	}
	if len(started.Hosts) != 1 || started.Hosts[0].HostName != "web2" || started.Hosts[0].CaptureName != "PSAzureFunction-web2" {
		t.Fatalf("capture not on the alert's host: %+v", started.Hosts)
	}
	c, err := f.svc.FindCapture(f.admin, "", started.Hosts[0].CaptureID)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Parameters
	if c.HostID != h2.ID || p.TimeLimitInSeconds != 30 || p.PreTriggerSeconds != 5 || p.Filters[0].LocalIPAddress != "10.9.0.3" || !strings.Contains(c.Cause, "responder pc") {
		t.Fatalf("capture parameters: %+v cause %q", p, c.Cause)
	}
	if names := captureNames(t, f.fixture); len(names) != 1 {
		t.Fatalf("captures: %v", names)
	}

	// Resolved: the capture this alert started is stopped.
	if _, err := f.rsp.Invoke(context.Background(), "pc", key, amBody("resolved", "10.9.0.3:9100", "fp1", "2026-01-01T00:00:00Z")); err != nil {
		t.Fatal(err)
	}
	got = f.settle(t, "pc", 3)
	if got[0].Decision != tripcap.DecisionStopped || got[0].Hosts[0].CaptureID != c.ID {
		t.Fatalf("resolved run: %+v", got[0])
	}
	c, _ = f.svc.FindCapture(f.admin, "", c.ID)
	if c.Desired != tripcap.DesiredStopped {
		t.Fatalf("capture not asked to stop: %s", c.Desired)
	}
}

func TestResponderDecisions(t *testing.T) {
	f := startResponders(t, newFixture(t, controlplane.Config{}))
	_, h := f.enroll(t, "web1")
	f.withAddress(t, h, "10.9.0.2")
	invoke := func(name, key string, body []byte) {
		t.Helper()
		if _, err := f.rsp.Invoke(context.Background(), name, key, body); err != nil {
			t.Fatal(err)
		}
	}
	at := func(i int) string { return time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC).Format(time.RFC3339) }

	// replace (the seed): the same name again replaces the old capture.
	_, key := f.create(t, tripcap.Responder{Name: "replace"})
	invoke("replace", key, amBody("firing", "web1", "a", at(0)))
	f.settle(t, "replace", 1)
	first, _ := f.svc.FindCapture(f.admin, "", "PSAzureFunction-web1")
	invoke("replace", key, amBody("firing", "web1", "a", at(1)))
	runs := f.settle(t, "replace", 2)
	if runs[0].Decision != tripcap.DecisionStarted || runs[0].Hosts[0].CaptureID == first.ID {
		b, _ := json.Marshal(runs[0])
		t.Fatalf("replace: %s", b)
	}
	if names := captureNames(t, f.fixture); len(names) != 1 {
		t.Fatalf("replace left %v", names)
	}

	// skip: a taken name is recorded as skipped.
	_, key = f.create(t, tripcap.Responder{Name: "skip", NameConflict: tripcap.ConflictSkip})
	invoke("skip", key, amBody("firing", "web1", "b", at(2)))
	runs = f.settle(t, "skip", 1)
	if runs[0].Decision != tripcap.DecisionSkipped || !strings.Contains(runs[0].Hosts[0].Reason, "already exists") {
		b, _ := json.Marshal(runs[0])
		t.Fatalf("skip: %s", b)
	}

	// unique: a suffixed name.
	_, key = f.create(t, tripcap.Responder{Name: "unique", NameConflict: tripcap.ConflictUnique})
	invoke("unique", key, amBody("firing", "web1", "c", at(3)))
	runs = f.settle(t, "unique", 1)
	if runs[0].Decision != tripcap.DecisionStarted || !strings.HasPrefix(runs[0].Hosts[0].CaptureName, "PSAzureFunction-web1-") {
		b, _ := json.Marshal(runs[0])
		t.Fatalf("unique: %s", b)
	}

	// limit: the watcher holds 2 captures now.
	_, key = f.create(t, tripcap.Responder{Name: "limit", Limit: 2, Capture: tripcap.ResponderCapture{Name: "lim"}})
	invoke("limit", key, amBody("firing", "web1", "d", at(4)))
	runs = f.settle(t, "limit", 1)
	if runs[0].Decision != tripcap.DecisionSkipped || !strings.Contains(runs[0].Hosts[0].Reason, "limit") {
		b, _ := json.Marshal(runs[0])
		t.Fatalf("limit: %s", b)
	}

	// cooldown: the same alert (fingerprint) firing again soon is skipped.
	_, key = f.create(t, tripcap.Responder{Name: "cool", CooldownMinutes: 10, NameConflict: tripcap.ConflictUnique, Capture: tripcap.ResponderCapture{Name: "cool"}})
	invoke("cool", key, amBody("firing", "web1", "e", at(5)))
	f.settle(t, "cool", 1)
	invoke("cool", key, amBody("firing", "web1", "e", at(6)))
	runs = f.settle(t, "cool", 2)
	if runs[0].Decision != tripcap.DecisionSkipped || !strings.Contains(runs[0].Hosts[0].Reason, "cooldown") {
		b, _ := json.Marshal(runs[0])
		t.Fatalf("cooldown: %s", b)
	}
	// Another alert is not in that cooldown.
	invoke("cool", key, amBody("firing", "web1", "f", at(7)))
	runs = f.settle(t, "cool", 3)
	if runs[0].Decision != tripcap.DecisionStarted {
		t.Fatalf("another alert in cooldown: %+v", runs[0])
	}

	// Unresolvable target: recorded with the target, nothing started.
	_, key = f.create(t, tripcap.Responder{Name: "nohost", Capture: tripcap.ResponderCapture{Name: "nohost"}})
	invoke("nohost", key, amBody("firing", "10.99.99.99:9100", "g", at(8)))
	runs = f.settle(t, "nohost", 1)
	if runs[0].Decision != tripcap.DecisionUnresolved || !strings.Contains(runs[0].Reason, "instance=10.99.99.99:9100") {
		b, _ := json.Marshal(runs[0])
		t.Fatalf("unresolved: %s", b)
	}

	// Resolved without stopOnResolved: recorded, nothing stopped.
	invoke("cool", key2(t, f, "cool"), amBody("resolved", "web1", "f", at(7)))
	runs = f.settle(t, "cool", 4)
	if runs[0].Decision != tripcap.DecisionSkipped || !strings.Contains(runs[0].Hosts[0].Reason, "stopOnResolved") {
		b, _ := json.Marshal(runs[0])
		t.Fatalf("resolved: %s", b)
	}

	// Disabled: recorded as skipped.
	_, key = f.create(t, tripcap.Responder{Name: "off", Enabled: new(false), Capture: tripcap.ResponderCapture{Name: "off"}})
	invoke("off", key, amBody("firing", "web1", "h", at(9)))
	runs = f.settle(t, "off", 1)
	if runs[0].Decision != tripcap.DecisionSkipped || !strings.Contains(runs[0].Reason, "disabled") {
		b, _ := json.Marshal(runs[0])
		t.Fatalf("disabled: %s", b)
	}
}

func key2(t *testing.T, f *responderFixture, name string) string {
	t.Helper()
	k, err := f.rsp.CreateKey(f.admin, name, fmt.Sprintf("k%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	return k.Secret
}

// Every payload format reaches the right host, from the fixtures the parser
// is tested with, with the hosts named as the fixtures name them.
func TestResponderEveryFormat(t *testing.T) {
	f := startResponders(t, newFixture(t, controlplane.Config{}))
	cases := []struct{ fixture, host string }{
		{"common_metric_fired.json", "wcus-r2-gen2"},
		{"metricalert_seed.json", "test-vm1"},
		{"classic_metric.json", "mysite1"},
		{"seed2017_custom.json", "vm1"},
		{"alertmanager_v4.json", "h2"},
		{"grafana_v1.json", "vm1"},
	}
	for i, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			body, err := os.ReadFile("payload/testdata/" + c.fixture)
			if err != nil {
				t.Fatal(err)
			}
			// The fixtures' ARM ids name subscriptions and groups: give
			// the host those by re-pointing the fixture at this host.
			_, h := f.enroll(t, fmt.Sprintf("%s-%d", c.host, i))
			repl := strings.NewReplacer(
				"/subscriptions/11111111-1111-1111-1111-111111111111/resourcegroups/pipelinealertrg/providers/microsoft.compute/virtualmachines/wcus-r2-gen2", h.ResourceID(),
				"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/test-RG/providers/Microsoft.Compute/virtualMachines/test-vm1", h.ResourceID(),
				`"resourceGroupName": "test-RG"`, `"resourceGroupName": "`+h.ResourceGroup+`"`,
				`"resourceName": "test-vm1"`, `"resourceName": "`+h.Name+`"`,
				"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/vmrg/providers/Microsoft.Compute/virtualMachines/vm1", h.ResourceID(),
				`"storageID": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/storagerg/providers/Microsoft.Storage/storageAccounts/capturestore"`, `"storageID": "local"`,
				`"resourceName": "mysite1"`, `"resourceName": "`+h.Name+`"`,
				`"resourceGroupName": "useast"`, `"resourceGroupName": "`+h.ResourceGroup+`"`,
				`"host": "h2"`, `"host": "`+h.Name+`"`,
				`"nodename": "vm1"`, `"nodename": "`+h.Name+`"`,
			)
			body = []byte(repl.Replace(string(body)))
			name := fmt.Sprintf("fmt%d", i)
			// The custom JSON chooses its storage and time limit: the
			// responder must allow that (bodyOverrides), as it does here.
			_, key := f.create(t, tripcap.Responder{Name: name, NameConflict: tripcap.ConflictUnique, Capture: tripcap.ResponderCapture{Name: name},
				BodyOverrides: &tripcap.BodyOverrides{StorageAccounts: []string{"local"}, MaxTimeLimitInSeconds: 60}})
			runs, err := f.rsp.Invoke(context.Background(), name, key, body)
			if err != nil {
				t.Fatal(err)
			}
			got := f.settle(t, name, len(runs))
			var onHost bool
			for _, r := range got {
				for _, rh := range r.Hosts {
					if rh.HostID == h.ID && rh.Decision == tripcap.DecisionStarted {
						onHost = true
						if c.fixture == "seed2017_custom.json" {
							cp, err := f.svc.FindCapture(f.admin, "", rh.CaptureID)
							if err != nil {
								t.Fatal(err)
							}
							// The custom JSON's own name, time limit and storage.
							if cp.Name != "PacketCaptureFromFunction-"+h.Name || cp.Parameters.TimeLimitInSeconds != 10 || cp.Parameters.StorageLocation.StorageID != "local" {
								t.Fatalf("custom JSON overrides not applied: %s %+v", cp.Name, cp.Parameters)
							}
						}
					}
				}
			}
			if !onHost {
				b, _ := json.MarshalIndent(got, "", " ")
				t.Fatalf("no capture on %s: %s", h.Name, b)
			}
		})
	}
}

// The internal path: an action group's responder receiver, then the
// notification to the responder's notify group once the capture ended and
// its file is stored.
func TestResponderInternalTriggerAndNotification(t *testing.T) {
	f := startResponders(t, newFixture(t, controlplane.Config{}))
	agentCtx, h := f.enroll(t, "web1")
	rc := webhooktest.Start(t)
	mon, err := controlplane.NewMonitor(f.store, slog.New(slog.NewTextHandler(io.Discard, nil)), controlplane.MonitorConfig{WebhookTargets: webhooktest.Targets(), Responder: f.rsp})
	if err != nil {
		t.Fatal(err)
	}
	notify, err := mon.CreateActionGroup(f.admin, &tripcap.ActionGroup{Name: "ops", WebhookReceivers: []tripcap.WebhookReceiver{{Name: "hook", ServiceURI: rc.URL + "/done", UseCommonAlertSchema: true}}})
	if err != nil {
		t.Fatal(err)
	}
	_ = notify
	rs, err := f.rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "pc", NotifyActionGroup: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = mon.CreateActionGroup(f.admin, &tripcap.ActionGroup{Name: "bad", ResponderReceivers: []tripcap.ResponderReceiver{{Name: "cap", ResponderID: "nobody"}}})
	wantCode(t, err, tripcap.EINVALID, "responderReceivers[0].responderId")
	if _, err := mon.CreateActionGroup(f.admin, &tripcap.ActionGroup{Name: "capture", ResponderReceivers: []tripcap.ResponderReceiver{{Name: "cap", ResponderID: rs.ID}}}); err != nil {
		t.Fatal(err)
	}

	a := tripcap.Alert{ID: tripcap.NewID(), RuleID: "r", RuleName: "net-out", HostID: h.ID, HostName: h.Name, TargetResourceID: h.ResourceID(),
		ResourceGroup: h.ResourceGroup, MonitorCondition: tripcap.ConditionFired, FiredAt: time.Now()}
	if err := f.rsp.Trigger(context.Background(), a, tripcap.ResponderReceiver{Name: "cap", ResponderID: rs.ID}); err != nil {
		t.Fatal(err)
	}
	// The same alert again (a redelivery) is a duplicate.
	if err := f.rsp.Trigger(context.Background(), a, tripcap.ResponderReceiver{Name: "cap", ResponderID: rs.ID}); err != nil {
		t.Fatal(err)
	}
	runs := f.settle(t, "pc", 2)
	var run *tripcap.ResponderRun
	for _, r := range runs {
		if r.Decision == tripcap.DecisionStarted {
			run = r
		}
	}
	if run == nil || run.Source != "internal" {
		t.Fatalf("runs: %+v", runs)
	}
	capID := run.Hosts[0].CaptureID

	// The agent ends the capture and uploads its file.
	now := time.Now().UTC()
	if _, err := f.svc.Report(agentCtx, []tripcap.SessionReport{{CaptureID: capID, Status: tripcap.StatusStopped, StopReason: "TimeExceeded", StartTime: &now, Stats: tripcap.CaptureStats{Packets: 42}}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if len(rc.Accepted("/done")) != 0 {
		t.Fatal("notified before the file was stored")
	}
	data := bytes.Repeat([]byte("pcap"), 100)
	sum := sha256.Sum256(data)
	if _, err := f.svc.UploadFile(agentCtx, capID, "x.cap", hex.EncodeToString(sum[:]), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "notification", func() bool { return len(rc.Accepted("/done")) == 1 })
	var payload actiongroup.CommonAlert
	if err := json.Unmarshal(rc.Accepted("/done")[0].Body, &payload); err != nil {
		t.Fatal(err)
	}
	cp := payload.Data.CustomProperties
	if cp["captureName"] != "PSAzureFunction-web1" || cp["host"] != "web1" || cp["packets"] != "42" || cp["stopReason"] != "TimeExceeded" ||
		!strings.HasPrefix(cp["storagePath"], "file://") || cp["downloadUrl"] != "https://tripcap.example/api/v1/captures/"+capID+"/file" {
		t.Fatalf("notification properties: %v", cp)
	}
	eventually(t, "notification recorded", func() bool {
		r, err := f.rsp.FindRun(f.admin, run.ID)
		return err == nil && r.Hosts[0].Notified != nil
	})
}

// An alert for several hosts captures on each; a target that matches no
// host is recorded beside them.
func TestResponderSeveralTargets(t *testing.T) {
	f := startResponders(t, newFixture(t, controlplane.Config{}))
	_, h1 := f.enroll(t, "vm1")
	_, h2 := f.enroll(t, "vm2")
	s := string(multiTargetAlert(t, h1, h2))
	s = strings.Replace(s, h2.ResourceID()+`"`, h2.ResourceID()+`", "/subscriptions/x/resourceGroups/y/providers/Microsoft.Compute/virtualMachines/ghost"`, 1)
	_, key := f.create(t, tripcap.Responder{Name: "multi"})
	if _, err := f.rsp.Invoke(context.Background(), "multi", key, []byte(s)); err != nil {
		t.Fatal(err)
	}
	runs := f.settle(t, "multi", 1)
	hosts := map[string]string{}
	for _, rh := range runs[0].Hosts {
		hosts[rh.HostName+rh.Reason] = rh.Decision
	}
	if runs[0].Decision != tripcap.DecisionStarted || hosts["vm1"] != tripcap.DecisionStarted || hosts["vm2"] != tripcap.DecisionStarted ||
		hosts["resource /subscriptions/x/resourceGroups/y/providers/Microsoft.Compute/virtualMachines/ghost"] != tripcap.DecisionUnresolved {
		b, _ := json.Marshal(runs[0])
		t.Fatalf("several targets: %s", b)
	}
}
