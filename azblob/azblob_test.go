package azblob

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/capturefile"
	"github.com/tripcap/tripcap/internal/blobtest"
)

func TestParseURL(t *testing.T) {
	good := []struct {
		url                                  string
		account, container, prefix, endpoint string
	}{
		{"azblob://acct", "acct", DefaultContainer, "", ""},
		{"azblob://acct/", "acct", DefaultContainer, "", ""},
		{"azblob://acct/caps-1/a/b/", "acct", "caps-1", "a/b/", ""},
		{"azblob://devstoreaccount1/c01?endpoint=http://127.0.0.1:10000/devstoreaccount1/", "devstoreaccount1", "c01", "", "http://127.0.0.1:10000/devstoreaccount1"},
		{"azblob://acct/c01?endpoint=acct.blob.core.chinacloudapi.cn", "acct", "c01", "", "https://acct.blob.core.chinacloudapi.cn"},
	}
	for _, g := range good {
		c, err := parseURL(g.url)
		if err != nil {
			t.Errorf("parseURL(%q): %v", g.url, err)
			continue
		}
		if c.account != g.account || c.container != g.container || c.prefix != g.prefix || c.endpoint != g.endpoint {
			t.Errorf("parseURL(%q) = %+v", g.url, c)
		}
	}
	bad := []struct{ url, names string }{
		{"s3://acct", "scheme"},
		{"azblob:///c01", "account"},
		{"azblob://Acct_1/c01", "account"},
		{"azblob://acct/C01", "container"},
		{"azblob://acct/a--b", "container"},
		{"azblob://acct/ab", "container"},
		{"azblob://acct/c01/../x", "prefix"},
		{"azblob://acct/c01?endpoint=ftp://x", "endpoint"},
		{"azblob://acct/c01?sas=secret", `"sas"`},
	}
	for _, b := range bad {
		_, err := parseURL(b.url)
		if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(err.Error(), b.names) {
			t.Errorf("parseURL(%q) = %v, want EINVALID naming %s", b.url, err, b.names)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("parseURL(%q) leaks the query: %v", b.url, err)
		}
	}
}

func TestConnectionString(t *testing.T) {
	c, err := parseConnectionString("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5PQ==;EndpointSuffix=core.usgovcloudapi.net")
	if err != nil || c.account != "acct" || c.key != "a2V5PQ==" || c.endpoint != "https://acct.blob.core.usgovcloudapi.net" {
		t.Errorf("parse = %+v, %v", c, err)
	}
	c, err = parseConnectionString("UseDevelopmentStorage=true")
	if err != nil || c.account != devAccount || c.endpoint != devEndpoint {
		t.Errorf("parse dev = %+v, %v", c, err)
	}
	for _, bad := range []struct{ cs, names string }{
		{"AccountName=acct;SharedAccessSignature=sv=2020&sig=x", "AccountKey"},
		{"AccountName=acct", "AccountKey"},
		{"AccountName=acct;AccountKey=k;BlobEndpoint=ftp://x", "BlobEndpoint"},
		{"garbage", "'='"},
	} {
		if _, err := parseConnectionString(bad.cs); err == nil || !strings.Contains(err.Error(), bad.names) {
			t.Errorf("parse(%q) = %v, want an error naming %s", bad.cs, err, bad.names)
		}
	}
	_, err = newStore("azblob://other/c01", Credentials{ConnectionString: "AccountName=acct;AccountKey=a2V5PQ=="})
	if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(err.Error(), `"acct"`) {
		t.Errorf("newStore with another account's connection string = %v, want EINVALID naming both", err)
	}
	_, err = newStore("azblob://acct/c01", Credentials{AccountKey: "not base64!"})
	if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(err.Error(), "account key") {
		t.Errorf("newStore with a bad key = %v, want EINVALID naming the account key", err)
	}
}

func open(t *testing.T, a *blobtest.Azurite, container string) *Store {
	t.Helper()
	s, err := OpenWith(blobtest.Context(t, 30*time.Second), "azblob://"+a.Account+"/"+container, Credentials{ConnectionString: a.ConnectionString})
	if err != nil {
		t.Fatalf("open azurite: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	a := blobtest.NewAzurite(t)
	s := open(t, a, "")
	blobtest.BlobStore(t, s)

	t.Run("URL", func(t *testing.T) {
		want := a.BlobEndpoint + "/network-watcher-logs/subscriptions/s1/x%20y.cap"
		if u := s.URL("subscriptions/s1/x y.cap"); u != want {
			t.Errorf("URL = %q, want %q", u, want)
		}
	})
	t.Run("Prefix", func(t *testing.T) {
		ctx := blobtest.Context(t, 30*time.Second)
		p := open(t, a, "network-watcher-logs/tenant1")
		if _, err := p.Put(ctx, "in/prefix.cap", strings.NewReader("confined")); err != nil {
			t.Fatal(err)
		}
		r, info, err := s.Open(ctx, "tenant1/in/prefix.cap")
		if err != nil {
			t.Fatalf("the blob is not under the prefix: %v", err)
		}
		defer r.Close()
		if b, _ := io.ReadAll(r); string(b) != "confined" || info.Size != 8 {
			t.Errorf("read %q (%d bytes) from the container's root", b, info.Size)
		}
		if _, _, err := s.Open(ctx, "in/prefix.cap"); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
			t.Errorf("bare key at the root = %v, want ENOTFOUND", err)
		}
	})
	t.Run("ReplacedWhileReading", func(t *testing.T) {
		ctx := blobtest.Context(t, 30*time.Second)
		if _, err := s.Put(ctx, "replaced.cap", strings.NewReader("version one")); err != nil {
			t.Fatal(err)
		}
		r, _, err := s.Open(ctx, "replaced.cap")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := s.Put(ctx, "replaced.cap", strings.NewReader("version two")); err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(r); err == nil {
			t.Errorf("reading a blob replaced since Open gave %q, want an error", b)
		}
	})
}

func TestDirectUploads(t *testing.T) {
	a := blobtest.NewAzurite(t)
	s := open(t, a, "direct")
	blobtest.DirectUploads(t, s, a.Server, tripcap.UploadAzureBlocks, "AuthorizationFailure")
}

// TestOpenEnvironment takes the credentials from the environment as a
// deployment would, and creates the default container.
func TestOpenEnvironment(t *testing.T) {
	a := blobtest.NewAzurite(t)
	ctx := blobtest.Context(t, 30*time.Second)
	u := "azblob://" + a.Account + "?endpoint=" + a.BlobEndpoint

	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	t.Setenv("AZURE_STORAGE_KEY", a.Key)
	s, err := Open(ctx, u)
	if err != nil {
		t.Fatalf("Open with AZURE_STORAGE_KEY: %v", err)
	}
	if _, err := s.Put(ctx, "k.cap", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL("k.cap"), a.BlobEndpoint+"/network-watcher-logs/") {
		t.Errorf("URL = %s, want the default container", s.URL("k.cap"))
	}

	t.Setenv("AZURE_STORAGE_KEY", "")
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", a.ConnectionString)
	if _, err := Open(ctx, "azblob://"+a.Account+"/fromenv"); err != nil {
		t.Fatalf("Open with AZURE_STORAGE_CONNECTION_STRING: %v", err)
	}

	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	if _, err := Open(ctx, u); tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(err.Error(), "AZURE_STORAGE_CONNECTION_STRING") {
		t.Errorf("Open without credentials = %v, want EINVALID naming the variables", err)
	}
	// The discouraged way still works.
	if _, err := Open(ctx, u+"&key="+strings.ReplaceAll(a.Key, "+", "%2B")); err != nil {
		t.Errorf("Open with ?key=: %v", err)
	}
}

// TestWrongCredentials: a server configured with a wrong key fails at Open
// with Azure's error, and SAS URLs signed with it are refused for good.
func TestWrongCredentials(t *testing.T) {
	a := blobtest.NewAzurite(t)
	ctx := blobtest.Context(t, 30*time.Second)
	u := "azblob://" + a.Account + "/wrong?endpoint=" + a.BlobEndpoint
	wrong := Credentials{AccountKey: "d3Jvbmcga2V5IGZvciB0aGUgYWNjb3VudA=="}
	_, err := OpenWith(ctx, u, wrong)
	if tripcap.ErrorCode(err) != tripcap.EFORBIDDEN || !strings.Contains(err.Error(), "403") {
		t.Errorf("OpenWith a wrong key = %v, want EFORBIDDEN with HTTP 403", err)
	}

	open(t, a, "wrong")
	bad, err := newStore(u, wrong)
	if err != nil {
		t.Fatal(err)
	}
	// A new upload's SAS is signed offline: the refusal comes at Put Block.
	path := filepath.Join(t.TempDir(), "c.cap")
	if err := os.WriteFile(path, []byte("pcap bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	tg, err := bad.PrepareUpload(ctx, "x.cap", 10, "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	err = capturefile.UploadParts(ctx, nil, tg, path, nil)
	if !capturefile.IsPermanent(err) || tripcap.ErrorCode(err) != tripcap.EFORBIDDEN || !strings.Contains(tripcap.ErrorMessage(err), "AuthorizationFailure") {
		t.Errorf("upload with a SAS signed by a wrong key = %v, want a permanent EFORBIDDEN naming Azure's error code", err)
	}
	if strings.Contains(err.Error(), "sig=") {
		t.Errorf("the error leaks the SAS: %v", err)
	}
	t.Logf("agent's error: %v", err)
}

// TestUnreachable: storage that does not answer fails Open within the
// caller's deadline, naming the endpoint.
func TestUnreachable(t *testing.T) {
	a := blobtest.NewAzurite(t)
	a.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := OpenWith(ctx, "azblob://"+a.Account+"/gone", Credentials{ConnectionString: a.ConnectionString})
	if err == nil || !strings.Contains(err.Error(), a.Addr()) {
		t.Errorf("Open of a stopped server = %v, want an error naming %s", err, a.Addr())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open of a stopped server took %s", d)
	}
}

// TestDiskFull: Azurite's disk fills mid-upload, then space comes back.
func TestDiskFull(t *testing.T) {
	disk := blobtest.SmallDisk(t, 64<<20)
	dir := filepath.Join(disk, "azurite")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	a := blobtest.NewAzuriteAt(t, dir)
	blobtest.DiskFull(t, open(t, a, "full"), disk)
}
