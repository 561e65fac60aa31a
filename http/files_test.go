package http_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

// A capture deleted with a plain delete keeps its file: the notification's
// downloadUrl (/api/v1/captures/{id}/file) still answers, and the file is
// listed, shown and downloaded (with Range and its SHA-256) by its own id
// until deleted; a deleted file's record stays, marked.
func TestStoredFilesOutliveTheirCapture(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, err := f.admin.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: "x", Parameters: tripcap.PacketCaptureParameters{Target: "web1"}})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789"), 10000)
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	if _, err := f.agent.Upload(ctx, c.ID, "x.cap", hexSum, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if err := f.admin.DeleteCapture(ctx, "", c.ID, false); err != nil {
		t.Fatal(err)
	}

	resp := f.request(t, "GET", "/api/v1/captures/"+c.ID+"/file", f.token, nil)
	if resp.StatusCode != 200 || resp.Header.Get(tchttp.ShaHeader) != hexSum {
		t.Fatalf("downloadUrl of a deleted capture: %s", resp.Status)
	}

	files, err := f.admin.ListFiles(ctx, tchttp.FileQuery{Host: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].CaptureID != c.ID || !files[0].CaptureDeleted || files[0].HostName != "web1" || files[0].SHA256 != hexSum || files[0].Size != int64(len(data)) {
		t.Fatalf("files of web1: %+v", files)
	}
	id := files[0].ID
	if got, err := f.admin.GetFile(ctx, id); err != nil || got.Name != "x.cap" {
		t.Fatalf("file %s: %+v, %v", id, got, err)
	}
	d, err := f.admin.DownloadStoredFile(ctx, id, 50000)
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(d.Body)
	d.Body.Close()
	if d.Offset != 50000 || !bytes.Equal(rest, data[50000:]) || d.SHA256 != hexSum {
		t.Fatalf("range download by file id: offset %d, %d bytes, sha %s", d.Offset, len(rest), d.SHA256)
	}
	for _, q := range []tchttp.FileQuery{{Capture: "x"}, {Since: "2000-01-01T00:00:00Z"}} {
		if got, err := f.admin.ListFiles(ctx, q); err != nil || len(got) != 1 {
			t.Fatalf("files %+v: %d, %v", q, len(got), err)
		}
	}
	if got, err := f.admin.ListFiles(ctx, tchttp.FileQuery{Until: "2000-01-01T00:00:00Z"}); err != nil || len(got) != 0 {
		t.Fatalf("files until 2000: %d, %v", len(got), err)
	}
	resp = f.request(t, "GET", "/api/v1/files?since=yesterday", f.token, nil)
	if e := errorBody(t, resp); resp.StatusCode != 400 || !strings.Contains(e.Message, "since") {
		t.Fatalf("bad since: %s %+v", resp.Status, e)
	}

	del, err := f.admin.DeleteFile(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if del.DeletedAt == nil || del.Stored {
		t.Fatalf("deleted file: %+v", del)
	}
	if _, err := f.admin.DownloadStoredFile(ctx, id, 0); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Fatalf("download of a deleted file: %v", err)
	}
	if got, err := f.admin.ListFiles(ctx, tchttp.FileQuery{}); err != nil || len(got) != 0 {
		t.Fatalf("files after delete: %d, %v", len(got), err)
	}
	if got, err := f.admin.ListFiles(ctx, tchttp.FileQuery{Deleted: true}); err != nil || len(got) != 1 || got[0].DeletedAt == nil {
		t.Fatalf("deleted files: %+v, %v", got, err)
	}
	// The agent cannot store a deleted file again.
	if _, err := f.agent.Upload(ctx, c.ID, "x.cap", hexSum, bytes.NewReader(data), int64(len(data))); tripcap.ErrorCode(err) != tripcap.ECONFLICT {
		t.Fatalf("upload of a deleted file: %v", err)
	}
	if _, err := f.admin.DeleteFile(ctx, "nosuch"); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Fatalf("delete of no file: %v", err)
	}
}
