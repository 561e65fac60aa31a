package responder_test

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/tripcap/tripcap/internal/teststore"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/capturefile"
	"github.com/tripcap/tripcap/controlplane"
)

// Issue 11: with the seed's nameConflict replace, a later alert on host A
// replaces A's capture; the first capture's file is still listed by host,
// alert and capture name, downloadable by its own id, and the first
// notification's downloadUrl (the capture by id) still reaches it. A capture
// deleted with a plain delete keeps its file reachable too.
func TestReplacedCapturesKeepTheirFiles(t *testing.T) {
	teststore.Each(t, testReplacedCapturesKeepTheirFiles)
}

func testReplacedCapturesKeepTheirFiles(t *testing.T, store tripcap.Store) {
	f := startResponders(t, fixtureOn(t, store, controlplane.Config{}))
	ctxA, a := f.enroll(t, "web1.example.com")
	ctxB, b := f.enroll(t, "web2")
	_, key := f.create(t, tripcap.Responder{Name: "pc"})
	fire := func(host, fp string, n int, at string) (*tripcap.ResponderRun, *tripcap.ResponderRunHost) {
		t.Helper()
		if _, err := f.rsp.Invoke(context.Background(), "pc", key, amBody("firing", host, fp, at)); err != nil {
			t.Fatal(err)
		}
		runs := f.settle(t, "pc", n)
		if runs[0].Decision != tripcap.DecisionStarted {
			b, _ := json.Marshal(runs[0])
			t.Fatalf("alert on %s: %s", host, b)
		}
		return runs[0], &runs[0].Hosts[0]
	}
	runA, onA := fire("web1.example.com", "a", 1, "2026-01-01T00:00:00Z")
	complete(t, f.fixture, ctxA, onA.CaptureID, 3)
	_, onB := fire("web2", "b", 2, "2026-01-01T00:01:00Z")
	complete(t, f.fixture, ctxB, onB.CaptureID, 5)
	_, again := fire("web1.example.com", "a2", 3, "2026-01-01T00:02:00Z")
	complete(t, f.fixture, ctxA, again.CaptureID, 7)
	if again.CaptureName != onA.CaptureName || again.CaptureID == onA.CaptureID {
		t.Fatalf("A's second capture %s (%s), first %s (%s): not a replace", again.CaptureName, again.CaptureID, onA.CaptureName, onA.CaptureID)
	}
	if _, err := f.svc.FindCapture(f.admin, "", onA.CaptureID); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Fatalf("A's first capture was not replaced: %v", err)
	}

	list := func(q capturefile.FileQuery) []*tripcap.StoredFile {
		t.Helper()
		files, _, err := f.svc.FindFiles(f.admin, q)
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	readAll := func(rc io.ReadCloser, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil || len(b) == 0 {
			t.Fatalf("read %d bytes: %v", len(b), err)
		}
		return b
	}
	filesA := list(capturefile.FileQuery{Host: "web1.example.com"})
	if len(filesA) != 2 || filesA[0].CaptureID != onA.CaptureID || !filesA[0].CaptureDeleted || filesA[1].CaptureID != again.CaptureID || filesA[1].CaptureDeleted {
		b, _ := json.Marshal(filesA)
		t.Fatalf("files of A: %s", b)
	}
	if filesA[0].HostName != a.Name || filesA[0].AlertID == "" || filesA[0].AlertID != runA.AlertKey {
		t.Fatalf("A's first file: host %q alert %q (run's alert key %q)", filesA[0].HostName, filesA[0].AlertID, runA.AlertKey)
	}
	rc, _, err := f.svc.OpenStoredFile(f.admin, filesA[0].ID)
	readAll(rc, err)
	// The first notification's downloadUrl names the replaced capture by id.
	rc, _, err = f.svc.OpenFile(f.admin, "", onA.CaptureID, "")
	readAll(rc, err)
	if got := list(capturefile.FileQuery{Alert: runA.AlertKey}); len(got) != 1 || got[0].ID != filesA[0].ID {
		t.Fatalf("files of alert %s: %+v", runA.AlertKey, got)
	}
	if got := list(capturefile.FileQuery{Capture: onA.CaptureName}); len(got) < 2 {
		t.Fatalf("files of captures named %s: %d", onA.CaptureName, len(got))
	}
	until := time.Now().Add(time.Hour)
	if got := list(capturefile.FileQuery{Host: a.ID, Until: &until}); len(got) != 2 {
		t.Fatalf("files of A by id until %v: %d", until, len(got))
	}

	// A plain delete keeps B's file.
	if err := f.svc.DeleteCapture(f.admin, "", onB.CaptureID, "", false); err != nil {
		t.Fatal(err)
	}
	filesB := list(capturefile.FileQuery{Host: b.Name})
	if len(filesB) != 1 || !filesB[0].CaptureDeleted {
		t.Fatalf("files of B after its capture was deleted: %+v", filesB)
	}
	rc, _, err = f.svc.OpenStoredFile(f.admin, filesB[0].ID)
	readAll(rc, err)
	rc, _, err = f.svc.OpenFile(f.admin, "", onB.CaptureID, "")
	readAll(rc, err)
}

// Retention deletes stored files older than it (their blobs and the
// capture's copy) and marks them, those of live and deleted captures alike;
// newer files stay.
func TestFileRetentionDeletesOldFiles(t *testing.T) {
	teststore.Each(t, testFileRetention)
}

func testFileRetention(t *testing.T, store tripcap.Store) {
	const retention = 4 * time.Second
	f := fixtureOn(t, store, controlplane.Config{FileRetention: retention})
	ctx, _ := f.enroll(t, "web1")
	mk := func(name string) *tripcap.PacketCapture {
		t.Helper()
		c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: name, Parameters: tripcap.PacketCaptureParameters{Target: "web1"}})
		if err != nil {
			t.Fatal(err)
		}
		complete(t, f, ctx, c.ID, 1)
		return c
	}
	old, oldDeleted := mk("old"), mk("old-deleted")
	if err := f.svc.DeleteCapture(f.admin, "", oldDeleted.ID, "", false); err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	files, _, err := f.svc.FindFiles(f.admin, capturefile.FileQuery{})
	if err != nil || len(files) != 2 {
		t.Fatalf("files: %d, %v", len(files), err)
	}
	for _, sf := range files {
		keys[sf.CaptureID] = sf.Key
	}
	time.Sleep(retention / 2)
	fresh := mk("fresh")

	deadline := time.Now().Add(10 * time.Second)
	for {
		live, _, err := f.svc.FindFiles(f.admin, capturefile.FileQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(live) == 1 {
			if live[0].CaptureID != fresh.ID {
				t.Fatalf("the file left is %s's, want the fresh capture's", live[0].CaptureName)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d files still stored %s past a retention of %s", len(live), 10*time.Second, retention)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, id := range []string{old.ID, oldDeleted.ID} {
		if _, _, err := f.blobs.Open(context.Background(), keys[id]); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
			t.Fatalf("blob %s of an expired file: %v", keys[id], err)
		}
		if _, _, err := f.svc.OpenFile(f.admin, "", id, ""); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
			t.Fatalf("download of an expired file: %v", err)
		}
	}
	all, _, err := f.svc.FindFiles(f.admin, capturefile.FileQuery{IncludeDeleted: true})
	if err != nil || len(all) != 3 {
		t.Fatalf("files with deleted ones: %d, %v", len(all), err)
	}
	for _, sf := range all {
		if (sf.DeletedAt != nil) == (sf.CaptureID == fresh.ID) {
			t.Fatalf("file of %s: deleted at %v", sf.CaptureName, sf.DeletedAt)
		}
	}
}
