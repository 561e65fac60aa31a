package s3

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/capturefile"
	"github.com/tripcap/tripcap/internal/blobtest"
)

func TestParseURL(t *testing.T) {
	good := []struct {
		url                      string
		bucket, prefix, endpoint string
		region                   string
		secure, pathStyle        bool
	}{
		{"s3://caps", "caps", "", "s3.amazonaws.com", "", true, false},
		{"s3://caps/a/b/?region=eu-west-1", "caps", "a/b/", "s3.amazonaws.com", "eu-west-1", true, false},
		{"s3://caps/p?endpoint=127.0.0.1:7070&insecure=true", "caps", "p/", "127.0.0.1:7070", "us-east-1", false, true},
		{"s3://caps?endpoint=http://minio.lan:9000", "caps", "", "minio.lan:9000", "us-east-1", false, true},
		{"s3://caps?endpoint=https://minio.lan&region=home", "caps", "", "minio.lan", "home", true, true},
	}
	for _, g := range good {
		c, err := parseURL(g.url)
		if err != nil {
			t.Errorf("parseURL(%q): %v", g.url, err)
			continue
		}
		if c.bucket != g.bucket || c.prefix != g.prefix || c.endpoint != g.endpoint || c.region != g.region || c.secure != g.secure || c.pathStyle != g.pathStyle {
			t.Errorf("parseURL(%q) = %+v", g.url, c)
		}
	}
	bad := []struct{ url, names string }{
		{"file:///x", "scheme"},
		{"s3:///prefix", "bucket"},
		{"s3://No_Such!", "bucket"},
		{"s3://caps/a/../b", "prefix"},
		{"s3://caps?insecure=maybe", "insecure"},
		{"s3://caps?endpoint=ftp://x", "endpoint"},
		{"s3://caps?endpoint=host/path", "endpoint"},
		{"s3://caps?acl=public", `"acl"`},
		{"s3://key:secret@caps", "credentials"},
	}
	for _, b := range bad {
		_, err := parseURL(b.url)
		if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(err.Error(), b.names) {
			t.Errorf("parseURL(%q) = %v, want EINVALID naming %s", b.url, err, b.names)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("parseURL(%q) leaks the secret: %v", b.url, err)
		}
	}
}

func TestPartSize(t *testing.T) {
	for _, c := range []struct{ size, want int64 }{
		{0, DefaultPartSize},
		{20 << 20, DefaultPartSize},
		{DefaultPartSize * maxParts, DefaultPartSize},
		{DefaultPartSize*maxParts + 1, 9 << 20},
		{5 << 40, 525 << 20},
	} {
		got, err := tripcap.PartSize(c.size, DefaultPartSize, partLimits)
		if err != nil || got != c.want {
			t.Errorf("partSizeFor(%d) = %d, %v; want %d", c.size, got, err, c.want)
		}
		if parts := (c.size + got - 1) / got; parts > maxParts {
			t.Errorf("partSizeFor(%d) = %d: %d parts", c.size, got, parts)
		}
	}
	if _, err := tripcap.PartSize(maxPartSize*maxParts+1, DefaultPartSize, partLimits); tripcap.ErrorCode(err) != tripcap.EINVALID {
		t.Errorf("partSizeFor(too big) = %v, want EINVALID", err)
	}
}

func storeURL(g *blobtest.VersityGW, bucket, prefix string) string {
	return "s3://" + bucket + "/" + prefix + "?endpoint=" + g.Endpoint + "&insecure=true"
}

func open(t *testing.T, g *blobtest.VersityGW, bucket, prefix string) *Store {
	t.Helper()
	s, err := OpenWith(blobtest.Context(t, 30*time.Second), storeURL(g, bucket, prefix), Credentials{AccessKeyID: g.AccessKey, SecretAccessKey: g.SecretKey})
	if err != nil {
		t.Fatalf("open versitygw: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	g := blobtest.NewVersityGW(t)
	s := open(t, g, "captures", "network-watcher-logs/tenant1")
	blobtest.BlobStore(t, s)

	t.Run("Prefix", func(t *testing.T) {
		ctx := blobtest.Context(t, 30*time.Second)
		if _, err := s.Put(ctx, "in/prefix.cap", strings.NewReader("confined")); err != nil {
			t.Fatal(err)
		}
		if u := s.URL("in/prefix.cap"); u != "s3://captures/network-watcher-logs/tenant1/in/prefix.cap" {
			t.Errorf("URL = %q", u)
		}
		// The same object seen from the bucket's root.
		root := open(t, g, "captures", "")
		r, info, err := root.Open(ctx, "network-watcher-logs/tenant1/in/prefix.cap")
		if err != nil {
			t.Fatalf("the object is not under the prefix: %v", err)
		}
		defer r.Close()
		if b, _ := io.ReadAll(r); string(b) != "confined" || info.Size != 8 {
			t.Errorf("read %q (%d bytes) from the root", b, info.Size)
		}
		// Nothing landed at the root under the bare key.
		if _, _, err := root.Open(ctx, "in/prefix.cap"); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
			t.Errorf("bare key at the root = %v, want ENOTFOUND", err)
		}
	})
}

func TestDirectUploads(t *testing.T) {
	g := blobtest.NewVersityGW(t)
	s := open(t, g, "direct", "caps")
	blobtest.DirectUploads(t, s, g.Server, tripcap.UploadS3Multipart, "SignatureDoesNotMatch")
}

// TestOpenEnvironment takes the credentials from AWS_* as a deployment would.
func TestOpenEnvironment(t *testing.T) {
	g := blobtest.NewVersityGW(t)
	ctx := blobtest.Context(t, 30*time.Second)
	t.Setenv("AWS_ACCESS_KEY_ID", g.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", g.SecretKey)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	s, err := Open(ctx, storeURL(g, "fromenv", ""))
	if err != nil {
		t.Fatalf("Open with AWS_* credentials: %v", err)
	}
	if _, err := s.Put(ctx, "k.cap", bytes.NewReader([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	// The bucket was created on the posix backend as a directory.
	if _, err := os.Stat(filepath.Join(g.Dir, "fromenv", "k.cap")); err != nil {
		t.Errorf("object not on versitygw's disk: %v", err)
	}

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("MINIO_ROOT_USER", "")
	t.Setenv("MINIO_ACCESS_KEY", "")
	t.Setenv("HOME", t.TempDir())
	if _, err := Open(ctx, storeURL(g, "fromenv", "")); tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("Open without credentials = %v, want EINVALID naming AWS_ACCESS_KEY_ID", err)
	}
}

// TestWrongCredentials: a server configured with a wrong secret fails at
// Open with S3's error, and parts presigned with it are refused for good.
func TestWrongCredentials(t *testing.T) {
	g := blobtest.NewVersityGW(t)
	ctx := blobtest.Context(t, 30*time.Second)
	wrong := Credentials{AccessKeyID: g.AccessKey, SecretAccessKey: "not-the-secret"}
	_, err := OpenWith(ctx, storeURL(g, "wrong", ""), wrong)
	if tripcap.ErrorCode(err) != tripcap.EFORBIDDEN || !strings.Contains(err.Error(), "403") {
		t.Errorf("OpenWith a wrong secret = %v, want EFORBIDDEN with HTTP 403", err)
	}

	good := open(t, g, "wrong", "")
	bad, err := newStore(storeURL(g, "wrong", ""), wrong)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.PrepareUpload(ctx, "x.cap", 10, "", time.Minute)
	if tripcap.ErrorCode(err) != tripcap.EFORBIDDEN || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Errorf("PrepareUpload with a wrong secret = %v, want EFORBIDDEN naming SignatureDoesNotMatch", err)
	}

	// Parts presigned with the wrong secret for a real upload.
	path := filepath.Join(t.TempDir(), "c.cap")
	if err := os.WriteFile(path, []byte("pcap bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	tg, err := good.PrepareUpload(ctx, "x.cap", 10, "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	u, err := bad.client.Presign(ctx, "PUT", "wrong", "x.cap", time.Minute, url.Values{"partNumber": {strconv.Itoa(1)}, "uploadId": {tg.UploadID}})
	if err != nil {
		t.Fatal(err)
	}
	tg.PartURLs[0] = u.String()
	err = capturefile.UploadParts(ctx, nil, tg, path, nil)
	if !capturefile.IsPermanent(err) || tripcap.ErrorCode(err) != tripcap.EFORBIDDEN || !strings.Contains(tripcap.ErrorMessage(err), "SignatureDoesNotMatch") {
		t.Errorf("upload with a wrong signature = %v, want a permanent EFORBIDDEN naming SignatureDoesNotMatch", err)
	}
	t.Logf("agent's error: %v", err)
	if err := good.AbortUpload(ctx, "x.cap", tg); err != nil {
		t.Error(err)
	}
}

// TestUnreachable: storage that does not answer fails Open within the
// caller's deadline, naming the endpoint.
func TestUnreachable(t *testing.T) {
	g := blobtest.NewVersityGW(t)
	g.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := OpenWith(ctx, storeURL(g, "gone", ""), Credentials{AccessKeyID: g.AccessKey, SecretAccessKey: g.SecretKey})
	if err == nil || !strings.Contains(err.Error(), g.Endpoint) {
		t.Errorf("Open of a stopped server = %v, want an error naming %s", err, g.Endpoint)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open of a stopped server took %s", d)
	}
}

// TestDiskFull: versitygw's disk fills mid-upload, then space comes back.
func TestDiskFull(t *testing.T) {
	disk := blobtest.SmallDisk(t, 64<<20)
	gwDir := filepath.Join(disk, "gw")
	if err := os.Mkdir(gwDir, 0o700); err != nil {
		t.Fatal(err)
	}
	g := blobtest.NewVersityGWAt(t, gwDir)
	blobtest.DiskFull(t, open(t, g, "full", ""), disk)
}
