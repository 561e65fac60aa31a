package controlplane_test

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
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
