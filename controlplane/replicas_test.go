package controlplane_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/filestore"
	"github.com/tripcap/tripcap/internal/pgtest"
	"github.com/tripcap/tripcap/postgres"
	"github.com/tripcap/tripcap/storetest"
)

// TestReplicasShareOnePostgres: an agent waiting on replica A is woken by a
// capture created through replica B, promptly, through LISTEN/NOTIFY.
func TestReplicasShareOnePostgres(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	replica := func() *controlplane.Service {
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
	a, b := replica(), replica()
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
