package capturefile_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/capturefile"
)

// The direct uploads themselves run against real servers in the s3 and
// azblob packages (internal/blobtest.DirectUploads); these tests cover
// what needs no server.

func TestTargetParts(t *testing.T) {
	for _, c := range []struct {
		kind           string
		size, partSize int64
		parts          int
		last           int64
	}{
		{tripcap.UploadS3Multipart, 20<<20 + 1, 8 << 20, 3, 4<<20 + 1},
		{tripcap.UploadS3Multipart, 16 << 20, 8 << 20, 2, 8 << 20},
		{tripcap.UploadS3Multipart, 0, 8 << 20, 1, 0},
		{tripcap.UploadAzureBlocks, 0, 8 << 20, 0, 0},
		{tripcap.UploadAzureBlocks, 1, 8 << 20, 1, 1},
	} {
		tg := &tripcap.UploadTarget{Kind: c.kind, Size: c.size, PartSize: c.partSize}
		if got := tg.Parts(); got != c.parts {
			t.Errorf("%s size %d: Parts() = %d, want %d", c.kind, c.size, got, c.parts)
			continue
		}
		if c.parts == 0 {
			continue
		}
		var total int64
		for n := 1; n <= c.parts; n++ {
			off, l := tg.PartRange(n)
			if off != total {
				t.Errorf("%s size %d: part %d at %d, want %d", c.kind, c.size, n, off, total)
			}
			total += l
		}
		if _, l := tg.PartRange(c.parts); total != c.size || l != c.last {
			t.Errorf("%s size %d: parts cover %d bytes, last %d; want %d, %d", c.kind, c.size, total, l, c.size, c.last)
		}
	}
}

func TestBlockID(t *testing.T) {
	tg := &tripcap.UploadTarget{UploadID: "0123456789abcdef"}
	first, later := tg.BlockID(1), tg.BlockID(49999)
	if len(first) != len(later) {
		t.Errorf("block ids %q and %q differ in length; Azure needs one length per blob", first, later)
	}
	raw, err := base64.StdEncoding.DecodeString(first)
	if err != nil || string(raw) != "0123456789abcdef-000001" {
		t.Errorf("BlockID(1) = %q (%q, %v)", first, raw, err)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		t     tripcap.UploadTarget
		names string
	}{
		{tripcap.UploadTarget{Kind: "ftp"}, "kind"},
		{tripcap.UploadTarget{Kind: tripcap.UploadS3Multipart, Size: 10, PartSize: 5}, "uploadId"},
		{tripcap.UploadTarget{Kind: tripcap.UploadS3Multipart, Size: 10, PartSize: 5, UploadID: "u", PartURLs: []string{"x"}}, "partUrls"},
		{tripcap.UploadTarget{Kind: tripcap.UploadAzureBlocks, Size: 10, PartSize: 5, UploadID: "u"}, "url"},
		{tripcap.UploadTarget{Kind: tripcap.UploadAzureBlocks, Size: 10, URL: "http://x", UploadID: "u"}, "partSize"},
		{tripcap.UploadTarget{Kind: tripcap.UploadServer}, "url"},
	} {
		err := c.t.Validate()
		if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(err.Error(), c.names) {
			t.Errorf("Validate(%+v) = %v, want EINVALID naming %s", c.t, err, c.names)
		}
	}
}

func TestIsPermanent(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{tripcap.Errorf(tripcap.EFORBIDDEN, "denied"), true},
		{tripcap.Errorf(tripcap.EUNAUTHORIZED, "denied"), true},
		{tripcap.Errorf(tripcap.ENOTFOUND, "no such upload"), true},
		{tripcap.Errorf(tripcap.EUNAVAILABLE, "down"), false},
		{context.Canceled, false},
		{errors.New("disk read error"), false},
		{nil, false},
	} {
		if got := capturefile.IsPermanent(c.err); got != c.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestFileRefuses checks what is refused before anything is sent.
func TestFileRefuses(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "c.cap")
	if err := os.WriteFile(path, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Nothing listens here: a request would fail differently.
	s3 := func(size int64) *tripcap.UploadTarget {
		return &tripcap.UploadTarget{Kind: tripcap.UploadS3Multipart, Size: size, PartSize: 8, UploadID: "u",
			PartURLs: []string{"http://127.0.0.1:9/b/k?partNumber=1", "http://127.0.0.1:9/b/k?partNumber=2"}, ExpiresAt: time.Now().Add(time.Minute)}
	}
	for name, c := range map[string]struct {
		target *tripcap.UploadTarget
		path   string
		code   string
		says   string
	}{
		"nil target":    {nil, path, tripcap.EINVALID, "no target"},
		"server kind":   {&tripcap.UploadTarget{Kind: tripcap.UploadServer, URL: "http://x"}, path, tripcap.EINVALID, "server"},
		"size mismatch": {s3(11), path, tripcap.EINVALID, "10 bytes"},
		"missing file":  {s3(10), path + ".gone", tripcap.EINTERNAL, "no such file"},
	} {
		err := capturefile.UploadParts(ctx, nil, c.target, c.path, nil)
		if tripcap.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: File = %v, want %s saying %q", name, err, c.code, c.says)
		}
	}
	// All parts done: nothing to send, progress reports the whole file.
	done := s3(10)
	done.DoneParts = []int{1, 2}
	var got []int64
	if err := capturefile.UploadParts(ctx, nil, done, path, func(n int64) { got = append(got, n) }); err != nil || len(got) != 1 || got[0] != 10 {
		t.Errorf("File with every part done = %v, progress %v; want nil, [10]", err, got)
	}
}
