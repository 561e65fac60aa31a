//go:build linux

package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// TestStoredFilesOutliveCaptures is issue 11 through the binary: a capture
// deleted with a plain `capture delete`, and another of its name made in its
// place, leave both files listable by host (`file list --host`),
// downloadable by id with a verified checksum (`file download`), and the
// deleted capture's downloadUrl answering; `file delete` removes one, and
// the server's --file-retention removes the rest.
func TestStoredFilesOutliveCaptures(t *testing.T) {
	const retention = 40 * time.Second
	l := newLabWith(t, func(l *lab) { l.serverArgs = append(l.serverArgs, "--file-retention", retention.String()) })
	h1, h2 := l.addHost("h1"), l.addHost("h2")
	l.link(h1, h2)

	take := func(id uint32) *tripcap.PacketCapture {
		t.Helper()
		l.cli(nil, "capture", "create", "pc", "--host", "h2", "--time-limit", "2s", "--filter", udpFilter("7001"))
		l.eventually("pc Running", 5*time.Second, func() bool { return l.capture("pc").Status == tripcap.StatusRunning })
		l.send(h1, h2, 7001, 100, id)
		l.eventually("pc stored", 15*time.Second, func() bool {
			c := l.capture("pc")
			return c.Status.Terminal() && len(c.Files) == 1 && c.Files[0].Stored
		})
		return l.capture("pc")
	}
	first := take(1)
	l.cli(nil, "capture", "delete", "pc")
	second := take(2)

	var files []*tripcap.StoredFile
	if err := l.cliJSON(&files, "file", "list", "--host", "h2"); err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].CaptureID != first.ID || !files[0].CaptureDeleted || files[1].CaptureID != second.ID || files[0].HostName != "h2" {
		b, _ := json.Marshal(files)
		t.Fatalf("file list --host h2: %s", b)
	}
	if text := l.cliText("file", "list", "--host", "h2", "--since", "1h"); !strings.Contains(text, "HOST") || !strings.Contains(text, "STORED") || !strings.Contains(text, "pc (deleted)") {
		t.Fatalf("file list text:\n%s", text)
	}
	out := filepath.Join(l.dir, "first.cap")
	var res struct {
		Bytes  int64  `json:"bytes"`
		SHA256 string `json:"sha256"`
	}
	if err := l.cliJSON(&res, "file", "download", files[0].ID, "-w", out); err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != files[0].SHA256 || res.Bytes != files[0].Size {
		t.Fatalf("download: %+v, file %+v", res, files[0])
	}
	if n := packets(t, out); n != 100 {
		t.Fatalf("the deleted capture's file holds %d packets, want 100", n)
	}
	if seqs := stampedSeqs(t, out, 1); len(seqs) != 100 {
		t.Fatalf("the deleted capture's file holds %d of its own flow's datagrams", len(seqs))
	}
	// The downloadUrl a notification gave for the first capture.
	d, err := l.api().DownloadFile(t.Context(), "", first.ID, "", 0)
	if err != nil {
		t.Fatalf("downloadUrl of the deleted capture: %v", err)
	}
	d.Body.Close()

	var deleted tripcap.StoredFile
	if err := l.cliJSON(&deleted, "file", "delete", files[1].ID); err != nil || deleted.DeletedAt == nil {
		t.Fatalf("file delete: %+v, %v", deleted, err)
	}
	var cliErr error
	l.cli(&cliErr, "file", "download", files[1].ID, "-w", filepath.Join(l.dir, "second.cap"))
	if cliErr == nil {
		t.Fatal("a deleted file downloaded")
	}

	// Retention takes the first file too, and says so in the listing.
	l.eventually("retention to delete the first file", retention+20*time.Second, func() bool {
		var left []*tripcap.StoredFile
		return l.cliJSON(&left, "file", "list") == nil && len(left) == 0
	})
	if err := l.cliJSON(&files, "file", "list", "--deleted"); err != nil || len(files) != 2 || files[0].DeletedAt == nil || files[1].DeletedAt == nil {
		t.Fatalf("file list --deleted: %+v, %v", files, err)
	}
}
