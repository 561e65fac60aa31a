package responder_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/filestore"
	"github.com/tripcap/tripcap/responder"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
)

// fixture is a control plane on a real store and file storage: the
// responders' captures are made, reported and stored by it as in a server.
type fixture struct {
	svc   *controlplane.Service
	store tripcap.Store
	blobs tripcap.BlobStore
	admin context.Context
}

// newFixture is a control plane on a fresh SQLite store.
func newFixture(t *testing.T, cfg controlplane.Config) *fixture {
	t.Helper()
	store, err := sqlite.Open(t.Context(), t.TempDir()+"/tripcap.db")
	if err != nil {
		t.Fatal(err)
	}
	store.SetSealer(storetest.NewSealer(t))
	t.Cleanup(func() { store.Close() })
	return fixtureOn(t, store, cfg)
}

// fixtureOn is a control plane on the given store.
func fixtureOn(t *testing.T, store tripcap.Store, cfg controlplane.Config) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	blobs, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage = map[string]tripcap.BlobStore{"local": blobs}
	cfg.DefaultStorage = "local"
	svc := controlplane.New(store, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	admin := tripcap.NewContextWithPrincipal(ctx, &tripcap.Principal{Kind: tripcap.PrincipalBootstrap, Assignments: tripcap.OwnerEverywhere()})
	return &fixture{svc: svc, store: store, blobs: blobs, admin: admin}
}

// deps are the responders' dependencies in the fixture's server.
func deps(f *fixture) responder.Deps { return f.svc.ResponderDeps() }

// enroll enrolls a host and returns a context acting as its agent.
func (f *fixture) enroll(t *testing.T, name string) (context.Context, *tripcap.Host) {
	t.Helper()
	jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: name, Location: "westeurope"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.Authenticate(context.Background(), resp.Credential)
	if err != nil {
		t.Fatal(err)
	}
	return tripcap.NewContextWithPrincipal(f.admin, p), resp.Host
}

func wantCode(t *testing.T, err error, code, msgPart string) {
	t.Helper()
	if tripcap.ErrorCode(err) != code {
		t.Fatalf("error %v: code %q, want %q", err, tripcap.ErrorCode(err), code)
	}
	if !strings.Contains(tripcap.ErrorMessage(err), msgPart) {
		t.Fatalf("error message %q does not mention %q", tripcap.ErrorMessage(err), msgPart)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// multiTargetAlert is the common-schema fixture whose alert names two
// VMs, h1 and h2, by resource id; its configurationItems (the VMs' names)
// are renamed away, so the resource ids alone name the hosts.
func multiTargetAlert(t *testing.T, h1, h2 *tripcap.Host) []byte {
	t.Helper()
	body, err := os.ReadFile("payload/testdata/common_network_out_multi.json")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(
		"/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/lab/providers/Microsoft.Compute/virtualMachines/vm1", h1.ResourceID(),
		"/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/lab/providers/Microsoft.Compute/virtualMachines/vm2", h2.ResourceID(),
	).Replace(string(body))
	return []byte(strings.Replace(s, `"configurationItems"`, `"configurationItems_"`, 1))
}
