package controlplane_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/capturefile"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/internal/blobtest"
	"github.com/tripcap/tripcap/s3"
	"github.com/tripcap/tripcap/sqlite"
)

// zeros is a reader of n zero bytes that holds none of them.
func zeros(n int64) io.Reader { return io.LimitReader(zeroReader{}, n) }

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func createCapture(t *testing.T, f *fixture, name string, p tripcap.PacketCaptureParameters) *tripcap.PacketCapture {
	t.Helper()
	c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: name, Parameters: p})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func storedFiles(t *testing.T, f *fixture, id string) []tripcap.CaptureFile {
	t.Helper()
	c, err := f.svc.FindCapture(f.admin, "", id)
	if err != nil {
		t.Fatal(err)
	}
	var out []tripcap.CaptureFile
	for _, cf := range c.Files {
		if cf.Stored {
			out = append(out, cf)
		}
	}
	return out
}

// Issue 12: an agent uploaded 200 MB to a capture limited to 1 MiB, and 400
// files to one that allows 10. A file through the server is cut off at its
// limit, exactly (the agent never writes more: no slack), and stored not at
// all; a capture stores as many files as it makes.
func TestUploadsHeldToTheCapturesLimits(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	agentCtx, h := f.enroll(t, "web1")

	one := createCapture(t, f, "one", tripcap.PacketCaptureParameters{Target: h.Name, TotalBytesPerSession: 1 << 20})
	_, err := f.svc.UploadFile(agentCtx, one.ID, "one.cap", "", zeros(200<<20))
	wantCode(t, err, tripcap.ELIMIT, "totalBytesPerSession: 1048576 bytes")
	_, err = f.svc.UploadFile(agentCtx, one.ID, "one.cap", "", zeros(1<<20+1))
	wantCode(t, err, tripcap.ELIMIT, "totalBytesPerSession")
	if got := storedFiles(t, f, one.ID); len(got) != 0 {
		t.Fatalf("over-limit uploads stored: %+v", got)
	}
	stored, err := f.svc.UploadFile(agentCtx, one.ID, "one.cap", "", zeros(1<<20))
	if err != nil {
		t.Fatalf("a file of exactly the limit: %v", err)
	}
	// The stored copy stays when a later upload of it is over the limit.
	_, err = f.svc.UploadFile(agentCtx, one.ID, "one.cap", "", zeros(2<<20))
	wantCode(t, err, tripcap.ELIMIT, "totalBytesPerSession")
	if rc, info, err := f.blobs.Open(f.admin, stored.Key); err != nil || info.Size != 1<<20 {
		t.Fatalf("stored copy after a refused re-upload: %+v %v", info, err)
	} else {
		rc.Close()
	}
	// Without continuousCapture a capture makes one file.
	_, err = f.svc.UploadFile(agentCtx, one.ID, "two.cap", "", zeros(10))
	wantCode(t, err, tripcap.ELIMIT, "at most 1 file")
	_, err = f.svc.UploadTarget(agentCtx, one.ID, "one.cap", tripcap.UploadTargetRequest{Size: 1<<20 + 1})
	wantCode(t, err, tripcap.ELIMIT, "totalBytesPerSession")

	// A ring of 10 files of 4 KiB, and its metadata file.
	ring := createCapture(t, f, "ring", tripcap.PacketCaptureParameters{Target: h.Name, IncludeMetadata: true,
		ContinuousCapture: new(true), CaptureSettings: &tripcap.CaptureSettings{FileCount: new(int32(10)), FileSizeInBytes: new(int64(4096))}})
	for i := range 10 {
		if _, err := f.svc.UploadFile(agentCtx, ring.ID, fmt.Sprintf("ring_%05d.cap", i), "", zeros(4096)); err != nil {
			t.Fatalf("file %d of 10: %v", i, err)
		}
	}
	for i := 10; i < 400; i += 97 {
		_, err = f.svc.UploadFile(agentCtx, ring.ID, fmt.Sprintf("ring_%05d.cap", i), "", zeros(100))
		wantCode(t, err, tripcap.ELIMIT, "at most 10 file(s) (captureSettings.fileCount)")
	}
	_, err = f.svc.UploadFile(agentCtx, ring.ID, "ring_00000.cap", "", zeros(4097))
	wantCode(t, err, tripcap.ELIMIT, "captureSettings.fileSizeInBytes: 4096 bytes")
	if _, err := f.svc.UploadFile(agentCtx, ring.ID, "ring"+tripcap.MetadataFileSuffix, "", bytes.NewReader([]byte(`{"hostname":"web1"}`))); err != nil {
		t.Fatalf("the metadata file beside the ring: %v", err)
	}
	_, err = f.svc.UploadFile(agentCtx, ring.ID, "other"+tripcap.MetadataFileSuffix, "", bytes.NewReader([]byte(`{}`)))
	wantCode(t, err, tripcap.ELIMIT, "includeMetadata")
	if got := storedFiles(t, f, ring.ID); len(got) != 11 {
		t.Fatalf("%d files stored, want the ring's 10 and the metadata", len(got))
	}
}

// Direct uploads (S3 presigned parts) are held to the same limits: a target
// for more than a file may hold is refused, and so is a completion whose
// target (sent back by the agent) claims more, or whose stored object is
// more, which is deleted.
func TestDirectUploadsHeldToTheCapturesLimits(t *testing.T) {
	g := blobtest.NewVersityGW(t)
	ctx := blobtest.Context(t, 60*time.Second)
	bucket, err := s3.OpenWith(ctx, "s3://limits/caps?endpoint="+g.Endpoint+"&insecure=true", s3.Credentials{AccessKeyID: g.AccessKey, SecretAccessKey: g.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(ctx, t.TempDir()+"/tripcap.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc := controlplane.New(store, controlplane.Config{Storage: map[string]tripcap.BlobStore{"s3": bucket}, DefaultStorage: "s3"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	f := &fixture{svc: svc, store: store, blobs: bucket, admin: tripcap.NewContextWithPrincipal(runCtx, &tripcap.Principal{Kind: tripcap.PrincipalBootstrap, Name: "admin", Assignments: tripcap.OwnerEverywhere()})}
	agentCtx, h := f.enroll(t, "web1")

	c := createCapture(t, f, "one", tripcap.PacketCaptureParameters{Target: h.Name, TotalBytesPerSession: 1 << 20})
	_, err = f.svc.UploadTarget(agentCtx, c.ID, "one.cap", tripcap.UploadTargetRequest{Size: 200 << 20})
	wantCode(t, err, tripcap.ELIMIT, "totalBytesPerSession")

	// A target for 1 KiB; the agent sends 2 MiB to its part URL instead.
	tg, err := f.svc.UploadTarget(agentCtx, c.ID, "one.cap", tripcap.UploadTargetRequest{Size: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if tg.Kind != tripcap.UploadS3Multipart || len(tg.PartURLs) != 1 {
		t.Fatalf("target %+v", tg)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, tg.PartURLs[0], zeros(2<<20))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 2 << 20
	// The part URL signs the part's length: the storage refuses the rest.
	// The storage may answer 403 and hang up while the body is still being
	// written (a reset, on a loaded machine): a refusal too; the checks
	// below prove nothing was stored either way.
	resp, err := http.DefaultClient.Do(req)
	switch {
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
	case err != nil:
		t.Fatal(err)
	default:
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a 2 MiB part to a 1 KiB target's URL: HTTP %d, want 403", resp.StatusCode)
		}
	}
	// Claimed in the completion: refused before the storage is asked.
	big := *tg
	big.Size = 2 << 20
	_, err = f.svc.CompleteUpload(agentCtx, c.ID, "one.cap", "", &big)
	wantCode(t, err, tripcap.ELIMIT, "totalBytesPerSession")
	// As prepared: nothing was stored for it.
	_, err = f.svc.CompleteUpload(agentCtx, c.ID, "one.cap", "", tg)
	wantCode(t, err, tripcap.EPRECONDITION, "part 1")
	if got := storedFiles(t, f, c.ID); len(got) != 0 {
		t.Fatalf("stored: %+v", got)
	}

	// Within the limit it works, and the file count holds here too.
	tg, err = f.svc.UploadTarget(agentCtx, c.ID, "one.cap", tripcap.UploadTargetRequest{Size: 1 << 20, ResumeID: tg.UploadID})
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/one.cap"
	if err := writeZeros(path, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := capturefile.UploadParts(ctx, nil, tg, path, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CompleteUpload(agentCtx, c.ID, "one.cap", "", tg); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.UploadTarget(agentCtx, c.ID, "two.cap", tripcap.UploadTargetRequest{Size: 10})
	wantCode(t, err, tripcap.ELIMIT, "at most 1 file")
}

func writeZeros(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, zeros(n)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
