package controlplane_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/filestore"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
)

// TestHeartbeatAnswerByAgentProtocol: an agent from before protocol
// versions (none in its context) still hears, as it did, that its open poll
// counts as a heartbeat, so it keeps its old behaviour; an agent at version
// 1 goes by the server's version and gets no such flag. Either way the
// open poll keeps the host Online (TestOpenPollCountsAsHeartbeat runs
// it with an old agent).
func TestHeartbeatAnswerByAgentProtocol(t *testing.T) {
	f := newFixture(t, controlplane.Config{HeartbeatInterval: 100 * time.Millisecond})
	agentCtx, h := f.enroll(t, "web1")
	for _, tc := range []struct {
		name     string
		version  int
		wantFlag bool
	}{
		{"old agent, no version", 0, true},
		{"agent at 1", 1, false},
		{"agent at a later version", 9, false},
	} {
		ctx := agentCtx
		if tc.version > 0 {
			ctx = tripcap.NewContextWithAgentProtocol(agentCtx, tc.version)
		}
		hb, err := f.svc.Heartbeat(ctx, tripcap.Heartbeat{})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if hb.OpenPollIsHeartbeat != tc.wantFlag || hb.HeartbeatSeconds != 0.1 {
			t.Errorf("%s: heartbeat answer %+v, want openPollIsHeartbeat %v every 0.1 s", tc.name, hb, tc.wantFlag)
		}
	}

	// A new agent's poll counts too: the host stays Online with nothing else.
	ctx := tripcap.NewContextWithAgentProtocol(agentCtx, tripcap.AgentProtocolVersion)
	first, err := f.svc.Assignments(ctx, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Assignments(ctx, first.Revision, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if host, err := f.svc.FindHost(f.admin, h.Name); err != nil || host.State != tripcap.HostOnline {
		t.Fatalf("after 1.5 s (five times OfflineAfter) with only its poll open the host is %v (%v)", host.State, err)
	}
}

// TestPollWithoutWatchReadsRevision: a control plane whose change watch is
// not running (no Run) hears of no change, so each poll reads its host's
// revision from the store: a capture made since the last poll is in the
// next one's answer at once.
func TestPollWithoutWatchReadsRevision(t *testing.T) {
	store, err := sqlite.Open(t.Context(), t.TempDir()+"/tripcap.db")
	if err != nil {
		t.Fatal(err)
	}
	store.SetSealer(storetest.NewSealer(t))
	t.Cleanup(func() { store.Close() })
	blobs, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc := controlplane.New(store, controlplane.Config{Storage: map[string]tripcap.BlobStore{"local": blobs}, DefaultStorage: "local"},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	f := &fixture{svc: svc, store: store, blobs: blobs,
		admin: tripcap.NewContextWithPrincipal(t.Context(), &tripcap.Principal{Kind: tripcap.PrincipalBootstrap, Assignments: tripcap.OwnerEverywhere()})}
	agentCtx, _ := f.enroll(t, "web1")
	as, err := svc.Assignments(agentCtx, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if idle, err := svc.Assignments(agentCtx, as.Revision, 10*time.Millisecond); err != nil || idle.Revision != as.Revision {
		t.Fatalf("idle poll: %+v, %v", idle, err)
	}
	c, err := svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "c1", Parameters: tripcap.PacketCaptureParameters{Target: "web1"}})
	if err != nil {
		t.Fatal(err)
	}
	next, err := svc.Assignments(agentCtx, as.Revision, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if next.Revision == as.Revision || len(next.Assignments) != 1 || next.Assignments[0].ID != c.ID {
		t.Fatalf("the poll after the create answered %+v, want revision past %d with %s", next, as.Revision, c.ID)
	}
}
