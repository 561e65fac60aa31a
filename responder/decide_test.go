package responder_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/actiongroup/webhooktest"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/responder"
)

// refusingRecord is the store with UpdateResponderRun refused as refuse
// says for the n-th call (nil: written).
type refusingRecord struct {
	tripcap.ResponderStore
	refuse func(n int64) error
	calls  atomic.Int64
}

func (s *refusingRecord) UpdateResponderRun(ctx context.Context, r *tripcap.ResponderRun, owner string) error {
	if err := s.refuse(s.calls.Add(1)); err != nil {
		return err
	}
	return s.ResponderStore.UpdateResponderRun(ctx, r, owner)
}

// startOn runs Responders on the fixture's server with store as their
// responder store, leased for 300 ms.
func startOn(t *testing.T, f *fixture, store tripcap.ResponderStore) *responder.Responders {
	t.Helper()
	d := deps(f)
	d.Store = store
	n, err := actiongroup.New(actiongroup.Config{Targets: webhooktest.Targets()})
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := responder.New(d, slog.New(slog.NewTextHandler(io.Discard, nil)), responder.Config{
		PollInterval: 20 * time.Millisecond, Lease: 300 * time.Millisecond, Instance: "server-a", Notifier: n,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rsp.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return rsp
}

// A decision whose record fails is decided again once its lease lapses;
// the second decision finds the captures the first started instead of
// starting (or, with nameConflict replace, replacing) them: one capture
// per host, and the run records them.
func TestResponderDecisionNotRecordedCapturesOnce(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	_, h1 := f.enroll(t, "vm1")
	_, h2 := f.enroll(t, "vm2")
	// The first record of the decision fails, as a database error would.
	store := &refusingRecord{ResponderStore: f.store, refuse: func(n int64) error {
		if n == 1 {
			return tripcap.Errorf(tripcap.EINTERNAL, "injected: the database went away")
		}
		return nil
	}}
	rsp := startOn(t, f, store)

	// The seed's policy: a capture of the template's name is replaced.
	if _, err := rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "pc", NameConflict: tripcap.ConflictReplace}); err != nil {
		t.Fatal(err)
	}
	key, err := rsp.CreateKey(f.admin, "pc", "default")
	if err != nil {
		t.Fatal(err)
	}
	runs, err := rsp.Invoke(context.Background(), "pc", key.Secret, multiTargetAlert(t, h1, h2))
	if err != nil {
		t.Fatal(err)
	}
	id := runs[0].ID
	eventually(t, "the run decided", func() bool { return storedRun(t, f, id).Decision != tripcap.DecisionPending })
	if store.calls.Load() < 2 {
		t.Fatal("the injected failure was never hit")
	}
	run := storedRun(t, f, id)
	if run.Decision != tripcap.DecisionStarted || len(run.Hosts) != 2 {
		b, _ := json.Marshal(run)
		t.Fatalf("run decided again: %s", b)
	}
	// Deleted captures count: a replaced one would be deleted, not gone.
	caps, _, err := f.store.FindCaptures(context.Background(), tripcap.CaptureFilter{IncludeDeleted: true})
	if err != nil {
		t.Fatal(err)
	}
	perHost := map[string][]string{}
	for _, c := range caps {
		perHost[c.HostID] = append(perHost[c.HostID], c.ID)
	}
	for _, rh := range run.Hosts {
		if rh.Decision != tripcap.DecisionStarted {
			t.Fatalf("host %s: %s (%s)", rh.HostName, rh.Decision, rh.Reason)
		}
		if got := perHost[rh.HostID]; len(got) != 1 || got[0] != rh.CaptureID {
			t.Fatalf("host %s: captures %v, want the one the run records (%s)", rh.HostName, got, rh.CaptureID)
		}
	}
	if len(caps) != 2 {
		t.Fatalf("%d captures, want one per host", len(caps))
	}
}

// A server whose record of a run is refused because its lease is lost
// (ECONFLICT: another server holds the run now) stops working on it: it
// does not notify of the capture it started, which is the new holder's to
// tell, and deciding again does not start a second one.
func TestResponderRunTakenOverIsLeft(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	agentCtx, _ := f.enroll(t, "web1")
	rc := webhooktest.Start(t)
	store := &refusingRecord{ResponderStore: f.store, refuse: func(int64) error {
		return tripcap.Errorf(tripcap.ECONFLICT, "lease lost: the run is held by server-b")
	}}
	rsp := startOn(t, f, store)
	if _, err := rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "pc",
		NotifyWebhookReceivers: []tripcap.WebhookReceiver{{Name: "hook", ServiceURI: rc.URL + "/own", UseCommonAlertSchema: true}}}); err != nil {
		t.Fatal(err)
	}
	key, err := rsp.CreateKey(f.admin, "pc", "default")
	if err != nil {
		t.Fatal(err)
	}
	runs, err := rsp.Invoke(context.Background(), "pc", key.Secret, amBody("firing", "web1", "fp1", "2026-01-01T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	var caps []*tripcap.PacketCapture
	eventually(t, "the capture started", func() bool {
		caps, _, err = f.store.FindCaptures(context.Background(), tripcap.CaptureFilter{IncludeDeleted: true})
		return err == nil && len(caps) > 0
	})
	complete(t, f, agentCtx, caps[0].ID, 7)
	// Lease lapses, sweeps and decisions again, several times over.
	time.Sleep(1500 * time.Millisecond)
	if got := rc.Accepted("/own"); len(got) != 0 {
		t.Fatalf("%d notifications from a server that lost the run", len(got))
	}
	if store.calls.Load() < 2 {
		t.Fatalf("the run was recorded %d times: it was not decided again after its lease", store.calls.Load())
	}
	if caps, _, err = f.store.FindCaptures(context.Background(), tripcap.CaptureFilter{IncludeDeleted: true}); err != nil || len(caps) != 1 {
		t.Fatalf("captures %d (%v), want the one", len(caps), err)
	}
	if r := storedRun(t, f, runs[0].ID); r.Decision != tripcap.DecisionPending {
		t.Fatalf("a refused record was written: %s", r.Decision)
	}
}
