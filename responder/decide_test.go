package responder_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/responder"
)

// failingRecord is the store with the first UpdateResponderRun failing, as
// a database error would: the decision is made (its captures started) but
// not recorded.
type failingRecord struct {
	tripcap.ResponderStore
	failed atomic.Bool
}

func (s *failingRecord) UpdateResponderRun(ctx context.Context, r *tripcap.ResponderRun) error {
	if s.failed.CompareAndSwap(false, true) {
		return tripcap.Errorf(tripcap.EINTERNAL, "injected: the database went away")
	}
	return s.ResponderStore.UpdateResponderRun(ctx, r)
}

// A decision whose record fails is decided again once its lease lapses;
// the second decision finds the captures the first started instead of
// starting (or, with nameConflict replace, replacing) them: one capture
// per host, and the run records them.
func TestResponderDecisionNotRecordedCapturesOnce(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	_, h1 := f.enroll(t, "vm1")
	_, h2 := f.enroll(t, "vm2")
	store := &failingRecord{ResponderStore: f.store}
	d := deps(f)
	d.Store = store
	rsp, err := responder.New(d, slog.New(slog.NewTextHandler(io.Discard, nil)), responder.Config{
		PollInterval: 20 * time.Millisecond, Lease: 300 * time.Millisecond, Instance: "server-a",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rsp.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// The seed's policy: a capture of the template's name is replaced.
	if _, err := rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "pc", NameConflict: tripcap.ConflictReplace}); err != nil {
		t.Fatal(err)
	}
	key, err := rsp.CreateKey(f.admin, "pc", "default")
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile("payload/testdata/common_network_out_multi.json")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(
		"/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/lab/providers/Microsoft.Compute/virtualMachines/vm1", h1.ResourceID(),
		"/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/lab/providers/Microsoft.Compute/virtualMachines/vm2", h2.ResourceID(),
	).Replace(string(body))
	s = strings.Replace(s, `"configurationItems"`, `"configurationItems_"`, 1)
	runs, err := rsp.Invoke(context.Background(), "pc", key.Secret, []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	id := runs[0].ID
	eventually(t, "the run decided", func() bool { return storedRun(t, f, id).Decision != tripcap.DecisionPending })
	if !store.failed.Load() {
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
