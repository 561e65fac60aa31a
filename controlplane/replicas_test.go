package controlplane_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/filestore"
	"github.com/tripcap/tripcap/internal/pgtest"
	"github.com/tripcap/tripcap/postgres"
	"github.com/tripcap/tripcap/storetest"
)

// pgReplica is a control plane on the PostgreSQL database dsn, running
// until ctx ends.
func pgReplica(t *testing.T, ctx context.Context, dsn string) *controlplane.Service {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	store, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	store.SetSealer(storetest.NewSealer(t))
	t.Cleanup(func() { store.Close() })
	blobs, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := controlplane.Config{Storage: map[string]tripcap.BlobStore{"local": blobs}, DefaultStorage: "local"}
	svc := controlplane.New(store, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return svc
}

// TestReplicasShareOnePostgres: an agent waiting on replica A is woken by a
// capture created through replica B, promptly, through LISTEN/NOTIFY.
func TestReplicasShareOnePostgres(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a, b := pgReplica(t, ctx, dsn), pgReplica(t, ctx, dsn)
	admin := tripcap.NewContextWithPrincipal(ctx, &tripcap.Principal{Kind: tripcap.PrincipalBootstrap, Assignments: tripcap.OwnerEverywhere()})

	jt, err := b.CreateJoinToken(admin, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	enrolled, err := a.Enroll(ctx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(ctx, enrolled.Credential)
	if err != nil {
		t.Fatal(err)
	}
	agentCtx := tripcap.NewContextWithPrincipal(ctx, p)
	first, err := a.Assignments(agentCtx, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	woke := make(chan *tripcap.Assignments, 1)
	go func() {
		as, err := a.Assignments(agentCtx, first.Revision, 20*time.Second)
		if err != nil {
			t.Error(err)
		}
		woke <- as
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	c, err := b.CreateCapture(admin, controlplane.CreateCaptureRequest{Name: "via-b", Parameters: tripcap.PacketCaptureParameters{Target: "web1"}})
	if err != nil {
		t.Fatal(err)
	}
	as := <-woke
	if as == nil || len(as.Assignments) != 1 || as.Assignments[0].ID != c.ID {
		t.Fatalf("replica A's agent got %+v, want the capture made on B", as)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("replica A woke %s after the create on B", d)
	}
	// And the agent's report through A is what B sees.
	if _, err := a.Report(agentCtx, []tripcap.SessionReport{{CaptureID: c.ID, Status: tripcap.StatusRunning}}); err != nil {
		t.Fatal(err)
	}
	got, err := b.FindCapture(admin, "", "via-b")
	if err != nil || got.Status != tripcap.StatusRunning {
		t.Fatalf("replica B sees %v %v", got, err)
	}

	// A host deleted through B: A, which has the agent's credential cached,
	// stops honouring it promptly.
	if err := b.DeleteHost(admin, "web1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, err := a.Authenticate(ctx, enrolled.Credential)
		if tripcap.ErrorCode(err) == tripcap.EUNAUTHORIZED {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica A still accepts the revoked credential 2 s after B deleted the host: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUpToDatePollSeesOtherReplicasChange: an agent whose poll on replica A
// ended with nothing new (A remembers the revision it read) and whose next
// poll starts just as a capture is made through B gets that capture
// promptly, whether B's change reached A before the poll began or after;
// over and over, so that both orders occur.
func TestUpToDatePollSeesOtherReplicasChange(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	ctx := t.Context()
	a, b := pgReplica(t, ctx, dsn), pgReplica(t, ctx, dsn)
	admin := tripcap.NewContextWithPrincipal(ctx, &tripcap.Principal{Kind: tripcap.PrincipalBootstrap, Assignments: tripcap.OwnerEverywhere()})
	jt, err := b.CreateJoinToken(admin, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	enrolled, err := a.Enroll(ctx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(ctx, enrolled.Credential)
	if err != nil {
		t.Fatal(err)
	}
	agentCtx := tripcap.NewContextWithPrincipal(ctx, p)
	as, err := a.Assignments(agentCtx, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		// Nothing new: the poll waits out its time.
		idle, err := a.Assignments(agentCtx, as.Revision, 20*time.Millisecond)
		if err != nil || idle.Revision != as.Revision {
			t.Fatalf("round %d: an idle poll answered %+v, %v", i, idle, err)
		}
		c, err := b.CreateCapture(admin, controlplane.CreateCaptureRequest{Name: fmt.Sprintf("c%d", i), Parameters: tripcap.PacketCaptureParameters{Target: "web1"}})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			time.Sleep(50 * time.Millisecond) // B's signal is in by now
		}
		start := time.Now()
		next, err := a.Assignments(agentCtx, as.Revision, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if next.Revision == as.Revision || !slices.ContainsFunc(next.Assignments, func(x tripcap.Assignment) bool { return x.ID == c.ID }) {
			t.Fatalf("round %d: the poll after B's create answered revision %d (had %d) without it", i, next.Revision, as.Revision)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("round %d: the poll took %s to see B's capture", i, d)
		}
		as = next
	}
}
