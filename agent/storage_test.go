package agent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/agent"
	"github.com/tripcap/tripcap/azblob"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/internal/blobtest"
	"github.com/tripcap/tripcap/s3"
)

// captureTo runs a one-second capture of about 12 MiB (several parts) into a
// storage account and returns it once it has ended and its file is settled.
func captureTo(t *testing.T, srv *server, name, storageID string, wait time.Duration) *tripcap.PacketCapture {
	t.Helper()
	ctx := context.Background()
	_, err := srv.admin.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: name, Parameters: tripcap.PacketCaptureParameters{Target: "web1",
		TimeLimitInSeconds: 1, BytesToCapturePerPacket: 128 << 10, StorageLocation: tripcap.StorageLocation{StorageID: storageID}}})
	if err != nil {
		t.Fatal(err)
	}
	var c *tripcap.PacketCapture
	waitFor(t, name+" settled", wait, func() bool {
		c = capture(t, srv, name)
		return c.Status.Terminal() && len(c.Files) == 1 && (c.Files[0].Stored || len(c.Errors) > 0 && c.Errors[len(c.Errors)-1] == tripcap.CaptureErrStorageFailed)
	})
	return c
}

// checkStored compares the stored object, read from the backend itself, with
// what the server serves and with the recorded checksum.
func checkStored(t *testing.T, srv *server, blobs tripcap.BlobStore, c *tripcap.PacketCapture) {
	t.Helper()
	ctx := context.Background()
	f := c.Files[0]
	if !f.Stored || f.Size < 5<<20 {
		t.Fatalf("%s: file %+v not stored or too small for a multi-part upload", c.Name, f)
	}
	if !strings.Contains(f.Key, "/providers/microsoft.compute/virtualmachines/web1/") || !strings.HasSuffix(f.Key, ".cap") {
		t.Errorf("%s: key %s does not follow Azure's naming", c.Name, f.Key)
	}
	rc, _, err := blobs.Open(ctx, f.Key)
	if err != nil {
		t.Fatalf("%s: the object is not in the backend: %v", c.Name, err)
	}
	inBackend, _ := io.ReadAll(rc)
	rc.Close()
	d, err := srv.admin.DownloadFile(ctx, "", c.Name, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(d.Body)
	d.Body.Close()
	sum := sha256.Sum256(inBackend)
	if !bytes.Equal(inBackend, served) || hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(served)) != f.Size {
		t.Fatalf("%s: backend (%d B), download (%d B) and record (%d B, %s) differ", c.Name, len(inBackend), len(served), f.Size, f.SHA256)
	}
}

func TestDirectUploadsToS3AndAzureBlob(t *testing.T) {
	ctx := context.Background()
	gw := blobtest.NewVersityGW(t)
	s3s, err := s3.OpenWith(ctx, "s3://captures/tripcap?endpoint="+gw.Endpoint+"&insecure=true", s3.Credentials{AccessKeyID: gw.AccessKey, SecretAccessKey: gw.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	az := blobtest.NewAzurite(t)
	azs, err := azblob.OpenWith(ctx, "azblob://"+az.Account+"?endpoint="+az.BlobEndpoint, azblob.Credentials{ConnectionString: az.ConnectionString})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServerWith(t, t.TempDir(), "127.0.0.1:0", map[string]tripcap.BlobStore{"s3": s3s, "blob": azs})
	runAgent(t, srv, t.TempDir(), enrolled(t, srv))
	waitFor(t, "the host to enroll", 5*time.Second, func() bool { hs, _ := srv.admin.ListHosts(ctx); return len(hs) == 1 })

	c := captureTo(t, srv, "to-s3", "s3", 30*time.Second)
	checkStored(t, srv, s3s, c)
	if !strings.HasPrefix(c.Parameters.StorageLocation.StoragePath, "s3://captures/tripcap/subscriptions/") {
		t.Errorf("storagePath %s", c.Parameters.StorageLocation.StoragePath)
	}
	c = captureTo(t, srv, "to-blob", "blob", 30*time.Second)
	checkStored(t, srv, azs, c)
	if !strings.HasPrefix(c.Parameters.StorageLocation.StoragePath, az.BlobEndpoint+"/network-watcher-logs/subscriptions/") {
		t.Errorf("storagePath %s, want Azure's blob URL", c.Parameters.StorageLocation.StoragePath)
	}
}

// TestUploadRidesOutStorageOutage: the S3 server is down when the capture
// ends; the file waits in the spool and is stored once, whole, when it returns.
func TestUploadRidesOutStorageOutage(t *testing.T) {
	ctx := context.Background()
	gw := blobtest.NewVersityGW(t)
	s3s, err := s3.OpenWith(ctx, "s3://captures?endpoint="+gw.Endpoint+"&insecure=true", s3.Credentials{AccessKeyID: gw.AccessKey, SecretAccessKey: gw.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServerWith(t, t.TempDir(), "127.0.0.1:0", map[string]tripcap.BlobStore{"s3": s3s})
	stateDir := t.TempDir()
	runAgent(t, srv, stateDir, enrolled(t, srv))
	waitFor(t, "the host to enroll", 5*time.Second, func() bool { hs, _ := srv.admin.ListHosts(ctx); return len(hs) == 1 })
	gw.Stop()
	go func() {
		time.Sleep(4 * time.Second)
		if err := gw.Start(); err != nil {
			t.Error(err)
		}
	}()
	c := captureTo(t, srv, "outage", "s3", 60*time.Second)
	checkStored(t, srv, s3s, c)
	if len(c.Errors) != 0 {
		t.Fatalf("errors after an outage the upload rode out: %v %s", c.Errors, c.ErrorMessage)
	}
	objects, _ := filepath.Glob(filepath.Join(gw.Dir, "captures", "subscriptions", "*", "resourcegroups", "*", "providers", "microsoft.compute", "virtualmachines", "web1", "*", "*", "*", "*.cap"))
	if len(objects) != 1 {
		t.Fatalf("%d objects in the bucket, want exactly one: %v", len(objects), objects)
	}
	waitFor(t, "spool cleanup", 3*time.Second, func() bool {
		left, _ := filepath.Glob(filepath.Join(stateDir, "captures", "spool", "*"))
		return len(left) == 0
	})
}

// TestRevokedStorageCredentials: the S3 keys change under the server; the
// upload is refused for good, the capture says StorageFailed with the
// backend's reason, and the file stays in the spool.
func TestRevokedStorageCredentials(t *testing.T) {
	ctx := context.Background()
	gw := blobtest.NewVersityGW(t)
	s3s, err := s3.OpenWith(ctx, "s3://captures?endpoint="+gw.Endpoint+"&insecure=true", s3.Credentials{AccessKeyID: gw.AccessKey, SecretAccessKey: gw.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServerWith(t, t.TempDir(), "127.0.0.1:0", map[string]tripcap.BlobStore{"s3": s3s})
	stateDir := t.TempDir()
	runAgent(t, srv, stateDir, enrolled(t, srv))
	waitFor(t, "the host to enroll", 5*time.Second, func() bool { hs, _ := srv.admin.ListHosts(ctx); return len(hs) == 1 })
	gw.Stop()
	rekeyed := gw.Rekeyed(t)
	if err := rekeyed.Start(); err != nil {
		t.Fatal(err)
	}
	c := captureTo(t, srv, "revoked", "s3", 60*time.Second)
	if c.Status != tripcap.StatusError || !slices.Contains(c.Errors, tripcap.CaptureErrStorageFailed) {
		t.Fatalf("capture %s %v, want Error with StorageFailed", c.Status, c.Errors)
	}
	// AWS says InvalidAccessKeyId for an unknown key; versitygw says XAdminUserNotFound.
	if !strings.Contains(c.ErrorMessage, "InvalidAccessKeyId") && !strings.Contains(c.ErrorMessage, "XAdminUserNotFound") && !strings.Contains(c.ErrorMessage, "SignatureDoesNotMatch") {
		t.Fatalf("message %q does not carry the backend's error", c.ErrorMessage)
	}
	if left, _ := filepath.Glob(filepath.Join(stateDir, "captures", "spool", "*")); len(left) != 1 {
		t.Fatalf("spool holds %d files, want the refused one kept", len(left))
	}
}

// TestSpoolBound: a session that could overflow the spool is refused at once
// with LocalFileFailed and a message that says why.
func TestSpoolBound(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	stateDir := t.TempDir()
	a, err := agent.New(agent.Config{Server: srv.url, JoinToken: enrolled(t, srv), Name: "web1", StateDir: stateDir,
		CaptureDir: filepath.Join(stateDir, "captures"), Engine: fileEngine{}, SpoolMaxBytes: 1 << 20,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), HeartbeatInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the host to enroll", 5*time.Second, func() bool { hs, _ := srv.admin.ListHosts(ctx); return len(hs) == 1 })
	// 512 KiB fits; 2 MiB does not.
	for _, tc := range []struct {
		name  string
		bytes int64
	}{{"fits", 512 << 10}, {"overflows", 2 << 20}} {
		if _, err := srv.admin.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: tc.name, Parameters: tripcap.PacketCaptureParameters{Target: "web1",
			TimeLimitInSeconds: 1, TotalBytesPerSession: tc.bytes}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both settled", 10*time.Second, func() bool {
		return capture(t, srv, "fits").Status.Terminal() && capture(t, srv, "overflows").Status.Terminal()
	})
	if c := capture(t, srv, "fits"); c.Status != tripcap.StatusStopped {
		t.Fatalf("a session that fits: %s %v %s", c.Status, c.Errors, c.ErrorMessage)
	}
	c := capture(t, srv, "overflows")
	if c.Status != tripcap.StatusError || c.StopReason != tripcap.StopLocalFileFailed || !strings.Contains(c.ErrorMessage, "spool is full") {
		t.Fatalf("a session that overflows the spool: %s %s %v %q", c.Status, c.StopReason, c.Errors, c.ErrorMessage)
	}
}
