// Package blobtest runs real storage servers for tests (versitygw for S3,
// Azurite for Azure Blob), and holds the conformance tests every
// tripcap.BlobStore and tripcap.DirectUploads backend passes.
// scripts/install-storage-peers installs the servers.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap/internal/testenv"
)

// Server is a storage server process on a fixed loopback port and data
// directory, which a test can stop and start again (same port, same data).
type Server struct {
	name string
	bin  string
	args []string
	addr string // host:port
	logs *syncBuffer
	// closed, when set, is what the server prints once it has shut down
	// cleanly but may still linger (Azurite waits for clients' keep-alive
	// connections): Stop kills it then rather than waiting.
	closed string

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when cmd has been waited for.
	exited chan struct{}
}

// Start starts the server and waits until it answers HTTP.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("%s is already running", s.name)
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	// Its own process group, so that Ctrl-C in the terminal goes to go test
	// only and the cleanup decides how the server stops.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited

	// Startup on two busy cores (node especially) can take a few seconds.
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("%s exited while starting:\n%s", s.name, s.logs.String())
		default:
		}
		// Any HTTP answer (both answer an anonymous GET with 403) means ready.
		resp, err := client.Get("http://" + s.addr + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.stopLocked()
			return fmt.Errorf("%s did not answer on %s within 60s: %v\n%s", s.name, s.addr, err, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server gracefully (SIGINT lets Azurite save its metadata),
// killing it once it says it has closed or after 15 s, and returns once it
// has exited.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	mark := len(s.logs.String())
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-s.exited:
			break wait
		case <-deadline:
			fmt.Fprintf(s.logs, "[blobtest: %s did not stop within 15s of SIGINT; killing it]\n", s.name)
			break wait
		case <-tick.C:
			if s.closed != "" && strings.Contains(s.logs.String()[mark:], s.closed) {
				break wait
			}
		}
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.addr }

// Logs is what the server printed so far.
func (s *Server) Logs() string { return s.logs.String() }

func startServer(t testing.TB, name, bin string, args []string, addr, closed string) *Server {
	t.Helper()
	s := &Server{name: name, bin: bin, args: args, addr: addr, logs: &syncBuffer{}, closed: closed}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tail(s.logs.String(), 8000))
		}
	})
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// freeAddr finds a free loopback port. Another process could take it before
// the server binds it; on loopback in a test run that is rare enough.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// VersityGW is a versitygw S3 gateway on a posix directory.
type VersityGW struct {
	*Server
	// Endpoint is host:port, plain HTTP.
	Endpoint             string
	AccessKey, SecretKey string
	// Dir is the posix backend's directory: one subdirectory per bucket.
	Dir string
}

// NewVersityGW starts versitygw (VERSITYGW, PATH, or GOPATH/bin, where
// scripts/install-storage-peers puts it) on a free loopback port with a
// fresh directory and random root credentials, and stops it at cleanup.
func NewVersityGW(t testing.TB) *VersityGW {
	t.Helper()
	return NewVersityGWAt(t, t.TempDir())
}

// NewVersityGWAt is NewVersityGW with the posix backend in dir.
func NewVersityGWAt(t testing.TB, dir string) *VersityGW {
	t.Helper()
	bin := findBinary(t, "versitygw", "VERSITYGW", filepath.Join(build.Default.GOPATH, "bin", "versitygw"))
	g := &VersityGW{
		AccessKey: "tripcap" + randomString(4),
		SecretKey: randomString(20),
		Dir:       dir,
		Endpoint:  freeAddr(t),
	}
	args := []string{"--access", g.AccessKey, "--secret", g.SecretKey, "--port", g.Endpoint, "--region", "us-east-1", "--quiet", "posix", g.Dir}
	g.Server = startServer(t, "versitygw", bin, args, g.Endpoint, "")
	return g
}

// Rekeyed returns a gateway on the same address and directory with new root
// credentials, not started: stop g first, then Start the result. Clients that
// hold g's credentials (or URLs signed with them) are then refused, as after
// a key rotation.
func (g *VersityGW) Rekeyed(t testing.TB) *VersityGW {
	t.Helper()
	bin := findBinary(t, "versitygw", "VERSITYGW", filepath.Join(build.Default.GOPATH, "bin", "versitygw"))
	n := &VersityGW{AccessKey: "tripcap" + randomString(4), SecretKey: randomString(20), Dir: g.Dir, Endpoint: g.Endpoint}
	args := []string{"--access", n.AccessKey, "--secret", n.SecretKey, "--port", n.Endpoint, "--region", "us-east-1", "--quiet", "posix", n.Dir}
	n.Server = &Server{name: "versitygw", bin: bin, args: args, addr: n.Endpoint, logs: &syncBuffer{}}
	t.Cleanup(n.Stop)
	return n
}

// StartVersityGW starts versitygw as NewVersityGW does and returns its
// endpoint (host:port, plain HTTP) and root credentials.
func StartVersityGW(t testing.TB) (endpoint, accessKey, secretKey string) {
	g := NewVersityGW(t)
	return g.Endpoint, g.AccessKey, g.SecretKey
}

// Azurite is an Azurite blob service with its well-known dev account.
type Azurite struct {
	*Server
	// BlobEndpoint is the account's blob service URL.
	BlobEndpoint     string
	Account, Key     string
	ConnectionString string
	Dir              string
}

// NewAzurite starts azurite-blob (AZURITE_BLOB, or PATH, where
// scripts/install-storage-peers puts it with npm install -g) on a free
// loopback port with a fresh directory, and stops it at cleanup.
// --skipApiVersionCheck lets the Azure SDK, usually newer than Azurite,
// through; --loose accepts headers Azurite does not implement.
func NewAzurite(t testing.TB) *Azurite {
	t.Helper()
	return NewAzuriteAt(t, t.TempDir())
}

// NewAzuriteAt is NewAzurite with Azurite's data in dir.
func NewAzuriteAt(t testing.TB, dir string) *Azurite {
	t.Helper()
	testenv.RequireBinary(t, "node")
	bin := findBinary(t, "azurite-blob", "AZURITE_BLOB", "")
	a := &Azurite{Account: devAccountName, Key: devAccountKey, Dir: dir}
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	a.BlobEndpoint = "http://" + addr + "/" + a.Account
	a.ConnectionString = fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;", a.Account, a.Key, a.BlobEndpoint)
	args := []string{"--blobHost", host, "--blobPort", port, "--location", a.Dir, "--skipApiVersionCheck", "--loose", "--disableProductStyleUrl", "--silent"}
	a.Server = startServer(t, "azurite-blob", bin, args, addr, "Azurite Blob service successfully closed")
	return a
}

// StartAzurite starts Azurite as NewAzurite does and returns a connection
// string for its dev account.
func StartAzurite(t testing.TB) (connectionString string) {
	return NewAzurite(t).ConnectionString
}

// Azurite's well-known development account (public, in Azure's docs).
const (
	devAccountName = "devstoreaccount1"
	devAccountKey  = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// findBinary looks for a program in the environment variable env, then in
// PATH, then at fallback; missing, the test skips (fails under CI).
func findBinary(t testing.TB, name, env, fallback string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if fallback != "" {
		if st, err := os.Stat(fallback); err == nil && !st.IsDir() {
			return fallback
		}
	}
	testenv.Unavailable(t, "%s is not installed (scripts/install-storage-peers installs it; or set %s)", name, env)
	return ""
}

// SmallDisk mounts a tmpfs of size bytes for a test's storage server, so
// that the test can fill it, and unmounts it at cleanup. It needs root.
func SmallDisk(t testing.TB, size int64) string {
	t.Helper()
	testenv.RequireRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tripcap-test", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		testenv.Unavailable(t, "mount a tmpfs: %v", err)
	}
	// Registered after TempDir's cleanup, so it runs first: the directory
	// is removed once unmounted.
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Context returns a context bounded by d and by the test's own.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
