// Package promtest starts Debian's stock Prometheus for tests: on the
// test's loopback as a remote-write receiver (Start), or as a test needs
// it (Run: its own configuration, in an e2e lab's network namespace).
package promtest

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap/internal/testenv"
)

// Options say how to run Prometheus. The zero value runs it on a free
// loopback port with no scrape targets.
type Options struct {
	// Config is prometheus.yml (default: no scrape targets, a 1 m interval).
	Config string
	// Listen is --web.listen-address (default a free 127.0.0.1 port); URL
	// is where the test reaches it (default http://Listen).
	Listen, URL string
	// RemoteWrite enables the remote-write receiver.
	RemoteWrite bool
	// Command makes the process from its argv (default exec.Command); an
	// e2e lab runs it in its control namespace.
	Command func(ctx context.Context, argv ...string) *exec.Cmd
	// Log takes its output (default a file whose tail is shown when the
	// test fails).
	Log io.Writer
}

// Start runs Prometheus with its remote-write receiver on a free
// loopback port and returns its base URL (Run).
func Start(t testing.TB) string {
	t.Helper()
	return Run(t, Options{RemoteWrite: true})
}

// Run starts Prometheus as o says, waits until it is ready, stops it when
// the test ends and returns its base URL. Without the binary the test
// skips, or fails under CI=true.
func Run(t testing.TB, o Options) string {
	t.Helper()
	testenv.RequireBinary(t, "prometheus")
	if o.Listen == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		o.Listen = l.Addr().String()
		l.Close()
	}
	if o.URL == "" {
		o.URL = "http://" + o.Listen
	}
	if o.Config == "" {
		o.Config = "global:\n  scrape_interval: 1m\n"
	}
	if o.Command == nil {
		o.Command = func(ctx context.Context, argv ...string) *exec.Cmd {
			return exec.CommandContext(ctx, argv[0], argv[1:]...)
		}
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(o.Config), 0o644); err != nil {
		t.Fatal(err)
	}
	if o.Log == nil {
		out, err := os.Create(filepath.Join(dir, "prometheus.log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			out.Close()
			if t.Failed() {
				b, _ := os.ReadFile(out.Name())
				t.Logf("--- prometheus (tail) ---\n%s", b[max(0, len(b)-4000):])
			}
		})
		o.Log = out
	}
	argv := []string{"prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, "data"), "--web.listen-address=" + o.Listen}
	if o.RemoteWrite {
		argv = append(argv, "--web.enable-remote-write-receiver")
	}
	cmd := o.Command(context.Background(), argv...)
	cmd.Stdout, cmd.Stderr = o.Log, o.Log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Registered after the log's cleanup, so it runs first: the process
	// has stopped writing when its log is read.
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(o.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return o.URL
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus at %s not ready after 20s: %v", o.URL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
