package controlplane_test

import (
	"context"
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/internal/blobtest"
	"github.com/tripcap/tripcap/s3"
)

// TestCheckStorage checks each account as the server reaches it: the local
// files and an S3 gateway are reachable; once the gateway stops, its
// account fails, naming why (to a server whose last check is not recent).
func TestCheckStorage(t *testing.T) {
	g := blobtest.NewVersityGW(t)
	cfg := controlplane.Config{
		OpenStorage: func(ctx context.Context, u string) (tripcap.BlobStore, error) {
			return s3.OpenWith(ctx, u, s3.Credentials{AccessKeyID: g.AccessKey, SecretAccessKey: g.SecretKey})
		},
	}
	f := newFixture(t, cfg)
	if _, err := f.svc.AddStorageAccount(f.admin, "gw", "s3://health/caps?endpoint="+g.Endpoint+"&insecure=true"); err != nil {
		t.Fatal(err)
	}
	checks, err := f.svc.CheckStorage(f.admin)
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 2 || !checks[0].OK || !checks[1].OK {
		t.Fatalf("checks with everything up: %+v", checks)
	}
	g.Stop()
	// Within the cache's life the answer is the last one.
	if again, _ := f.svc.CheckStorage(f.admin); !again[0].OK || !again[1].OK {
		t.Fatalf("a cached check: %+v", again)
	}
	// Another replica, on the same database, checks afresh.
	other := fixtureOn(t, f.store, cfg)
	checks, err = other.svc.CheckStorage(other.admin)
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 2 || checks[0].Name != "gw" || checks[0].OK || checks[0].Error == "" || !checks[1].OK {
		t.Fatalf("checks with the gateway down: %+v", checks)
	}
	reader := tripcap.NewContextWithPrincipal(f.admin, &tripcap.Principal{Name: "r", Assignments: []tripcap.RoleAssignment{{Role: tripcap.RoleReader, Scope: "host:web1"}}})
	if _, err := f.svc.CheckStorage(reader); tripcap.ErrorCode(err) != tripcap.EFORBIDDEN {
		t.Fatalf("a reader of one host: %v, want EFORBIDDEN (accounts are read at *)", err)
	}
}
