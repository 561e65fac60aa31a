package responder_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap/internal/teststore"

	"github.com/tripcap/tripcap/actiongroup/webhooktest"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/responder"
)

// responderServer is one server's Responders on a shared store, as a
// replica or a restarted server has.
type responderServer struct {
	*responder.Responders
	stop func()
}

func newResponderServer(t *testing.T, f *fixture, instance string, notifier *actiongroup.Notifier, run bool) *responderServer {
	t.Helper()
	if notifier == nil {
		var err error
		if notifier, err = actiongroup.New(actiongroup.Config{Targets: webhooktest.Targets(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Retry: actiongroup.Retry{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, Total: 2 * time.Second}}); err != nil {
			t.Fatal(err)
		}
	}
	rsp, err := responder.New(deps(f), slog.New(slog.NewTextHandler(io.Discard, nil)), responder.Config{
		PollInterval: 20 * time.Millisecond, PublicURL: "https://tripcap.example", Notifier: notifier,
		Lease: 300 * time.Millisecond, Instance: instance,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &responderServer{Responders: rsp, stop: func() {}}
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = rsp.Run(ctx) }()
		var once sync.Once
		s.stop = func() { once.Do(func() { cancel(); <-done }) }
		t.Cleanup(s.stop)
	}
	return s
}

// storedRun reads a run as the store has it (claim included).
func storedRun(t *testing.T, f *fixture, id string) *tripcap.ResponderRun {
	t.Helper()
	runs, err := f.store.FindResponderRuns(context.Background(), tripcap.ResponderRunFilter{ID: &id})
	if err != nil || len(runs) != 1 {
		t.Fatalf("run %s: %v %v", id, runs, err)
	}
	return runs[0]
}

// complete ends a capture as its agent would, with its file stored.
func complete(t *testing.T, f *fixture, agentCtx context.Context, captureID string, packets uint64, errs ...string) {
	t.Helper()
	now := time.Now().UTC()
	status := tripcap.StatusStopped
	if len(errs) > 0 {
		status = tripcap.StatusError
	}
	if _, err := f.svc.Report(agentCtx, []tripcap.SessionReport{{CaptureID: captureID, Status: status, StopReason: "TimeExceeded", Errors: errs,
		StartTime: &now, Stats: tripcap.CaptureStats{Packets: packets}}}); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("pcap"), 100)
	sum := sha256.Sum256(data)
	if _, err := f.svc.UploadFile(agentCtx, captureID, "x.cap", hex.EncodeToString(sum[:]), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

// A server stops with a capture's completion notification owed, and
// another crashes (never runs its workers) with an alert accepted but not
// decided. Two servers then start on the same store: the run is decided
// and every notification sent, each exactly once.
func TestResponderWorkSurvivesRestart(t *testing.T) {
	teststore.Each(t, testResponderWorkSurvivesRestart)
}

func testResponderWorkSurvivesRestart(t *testing.T, store tripcap.Store) {
	f := fixtureOn(t, store, controlplane.Config{})
	agentCtx, _ := f.enroll(t, "web1")
	rc := webhooktest.Start(t)
	mon, err := controlplane.NewMonitor(f.store, slog.New(slog.NewTextHandler(io.Discard, nil)), controlplane.MonitorConfig{WebhookTargets: webhooktest.Targets()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mon.CreateActionGroup(f.admin, &tripcap.ActionGroup{Name: "ops", WebhookReceivers: []tripcap.WebhookReceiver{{Name: "hook", ServiceURI: rc.URL + "/done", UseCommonAlertSchema: true}}}); err != nil {
		t.Fatal(err)
	}

	a := newResponderServer(t, f, "server-a", nil, true)
	if _, err := a.CreateResponder(f.admin, &tripcap.Responder{Name: "pc", NotifyActionGroup: "ops", NameConflict: tripcap.ConflictUnique}); err != nil {
		t.Fatal(err)
	}
	key, err := a.CreateKey(f.admin, "pc", "default")
	if err != nil {
		t.Fatal(err)
	}
	runs, err := a.Invoke(context.Background(), "pc", key.Secret, amBody("firing", "web1", "fp1", "2026-01-01T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	first := runs[0].ID
	eventually(t, "the first run decided", func() bool { return storedRun(t, f, first).Decision != tripcap.DecisionPending })
	a.stop()
	run1 := storedRun(t, f, first)
	if run1.Decision != tripcap.DecisionStarted || run1.Hosts[0].Notification != tripcap.NotifyPending || run1.NotifyActionGroup != "ops" {
		b, _ := json.Marshal(run1)
		t.Fatalf("before the restart: %s", b)
	}
	if run1.Owner != "" {
		t.Fatalf("a stopped server kept its claim on the run (owner %q)", run1.Owner)
	}

	// Accepted (the sender got its 202), then the server died.
	crashed := newResponderServer(t, f, "server-crashed", nil, false)
	runs, err = crashed.Invoke(context.Background(), "pc", key.Secret, amBody("firing", "web1", "fp2", "2026-01-01T00:01:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	second := runs[0].ID
	if r := storedRun(t, f, second); r.Decision != tripcap.DecisionPending || r.Owner != "server-crashed" {
		t.Fatalf("accepted run: decision %s owner %q", r.Decision, r.Owner)
	}
	if len(rc.Accepted("/done")) != 0 {
		t.Fatal("notified before any capture completed")
	}

	// Two replicas start on the store.
	newResponderServer(t, f, "server-b", nil, true)
	newResponderServer(t, f, "server-c", nil, true)
	eventually(t, "the accepted run decided after its claim ran out", func() bool {
		return storedRun(t, f, second).Decision != tripcap.DecisionPending
	})
	run2 := storedRun(t, f, second)
	if run2.Decision != tripcap.DecisionStarted || run2.Hosts[0].Notification != tripcap.NotifyPending {
		b, _ := json.Marshal(run2)
		t.Fatalf("resumed run: %s", b)
	}
	if names := captureNames(t, f); len(names) != 2 {
		t.Fatalf("captures %v: want one per alert", names)
	}

	complete(t, f, agentCtx, run1.Hosts[0].CaptureID, 42)
	complete(t, f, agentCtx, run2.Hosts[0].CaptureID, 7)
	eventually(t, "both notifications", func() bool { return len(rc.Accepted("/done")) >= 2 })
	eventually(t, "both notifications recorded", func() bool {
		return storedRun(t, f, first).Hosts[0].Notification == tripcap.NotifySent && storedRun(t, f, second).Hosts[0].Notification == tripcap.NotifySent
	})
	// Several renewals and sweeps later, still once each.
	time.Sleep(time.Second)
	got := rc.Accepted("/done")
	if len(got) != 2 {
		t.Fatalf("%d notifications, want 2 (one per capture)", len(got))
	}
	seen := map[string]string{}
	for _, d := range got {
		var p actiongroup.CommonAlert
		if err := json.Unmarshal(d.Body, &p); err != nil {
			t.Fatal(err)
		}
		seen[p.Data.CustomProperties["captureId"]] = p.Data.CustomProperties["packets"]
	}
	if seen[run1.Hosts[0].CaptureID] != "42" || seen[run2.Hosts[0].CaptureID] != "7" {
		t.Fatalf("notifications: %v", seen)
	}
	for _, id := range []string{first, second} {
		if r := storedRun(t, f, id); r.Hosts[0].Notified == nil || len(r.Errors) != 0 {
			t.Fatalf("run %s: notified %v errors %v", id, r.Hosts[0].Notified, r.Errors)
		}
	}
}

// A pending run that holds no alert (as those recorded before runs kept
// their alert) is recorded as failed after a restart, with the reason, not
// left pending for ever. (The migration's marking of such runs as open is
// not exercised here: the run is written through today's store.)
func TestResponderRunWithoutItsAlertFailsAfterRestart(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	rs := &tripcap.Responder{ID: tripcap.NewID(), Name: "pc"}
	if err := f.store.CreateResponder(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	old := &tripcap.ResponderRun{ID: tripcap.NewID(), ResponderID: rs.ID, Source: "http", Format: "alertmanagerV4",
		Condition: tripcap.ConditionFired, Decision: tripcap.DecisionPending, ReceivedAt: time.Now()}
	if err := f.store.CreateResponderRun(context.Background(), old, 0); err != nil {
		t.Fatal(err)
	}
	newResponderServer(t, f, "server-a", nil, true)
	eventually(t, "the old run decided", func() bool { return storedRun(t, f, old.ID).Decision != tripcap.DecisionPending })
	if r := storedRun(t, f, old.ID); r.Decision != tripcap.DecisionFailed || r.Reason == "" || r.Open() {
		t.Fatalf("old run: %+v", r)
	}
}
