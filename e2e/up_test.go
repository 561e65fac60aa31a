//go:build linux

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/testenv"
	"github.com/tripcap/tripcap/internal/trafficgen"
)

// TestUpQuickStart is the README's quick start: `tripcap up`, then the CLI
// with no flags (it reads the config up wrote), a capture on the local host,
// and the download.
func TestUpQuickStart(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "capinfos")
	ns := netns.New(t).Namespace()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "home", "config.json")
	env := append(os.Environ(), "TRIPCAP_CONFIG="+cfg)

	// A relative --data, as a newcomer's default ./tripcap-data is.
	up := ns.Command(context.Background(), binary, "up", "--data", "data", "--listen", "127.0.0.1:0", "--name", "local")
	up.Env = env
	up.Dir = dir
	lines := startUp(t, up, dir)
	if !lines.Scan() || !strings.Contains(lines.Text(), "tripcap is up at https://127.0.0.1:") {
		t.Fatalf("up printed %q, want its URL", lines.Text())
	}
	var printed []string
	for range 3 {
		if lines.Scan() {
			printed = append(printed, lines.Text())
		}
	}
	// The binary is not on PATH here: up names it as it was started.
	if want := "try: " + binary + " host list"; len(printed) < 2 || printed[1] != want {
		t.Errorf("up printed %q, want the line %q", printed, want)
	}
	go func() {
		for lines.Scan() {
		}
	}()
	st, err := os.Stat(cfg)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("client config %s: %v mode %v, want 0600", cfg, err, st.Mode())
	}

	cli := func(args ...string) []byte {
		t.Helper()
		cmd := ns.Command(t.Context(), append([]string{binary, "-o", "json"}, args...)...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("tripcap %s: %v: %s", strings.Join(args, " "), err, stderr)
		}
		return out
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var hosts []tripcap.Host
		if err := json.Unmarshal(cli("host", "list"), &hosts); err != nil {
			t.Fatal(err)
		}
		if len(hosts) == 1 && hosts[0].State == tripcap.HostOnline {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the local agent did not come online: %+v", hosts)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cli("capture", "create", "first", "--host", "local", "--time-limit", "3s", "--interface", "lo", "--filter", "protocol=UDP,localPort=7001")
	time.Sleep(500 * time.Millisecond)
	err = ns.Do(func() error {
		dst := netip.MustParseAddrPort("127.0.0.1:7001")
		sink, err := trafficgen.Listen("udp", dst)
		if err != nil {
			return err
		}
		defer sink.Close()
		_, err = trafficgen.Send(t.Context(), trafficgen.Flow{Network: "udp", Dst: dst, Count: 250, PayloadSize: 64, Interval: 100 * time.Microsecond, ID: 9})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var c tripcap.PacketCapture
	for deadline := time.Now().Add(15 * time.Second); ; {
		if err := json.Unmarshal(cli("capture", "show", "first"), &c); err != nil {
			t.Fatal(err)
		}
		if c.Status.Terminal() && len(c.Files) == 1 && c.Files[0].Stored {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("capture did not finish: %+v", c)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Nothing nested under the relative data directory's own name.
	if _, err := os.Stat(filepath.Join(dir, "data", "captures", "data")); err == nil {
		t.Errorf("a relative --data nested itself: %s exists", filepath.Join(dir, "data", "captures", "data"))
	}
	file := filepath.Join(dir, "first.cap")
	cli("capture", "download", "first", "-w", file)
	// On lo every packet passes twice (out and in); the engine keeps one copy.
	if n := packets(t, file); n != 250 {
		t.Fatalf("%d packets on lo, want 250", n)
	}
}

// startUp starts a `tripcap up` command, stops it (SIGTERM) when the test
// ends, showing its log if the test failed, and returns a scanner of what it
// prints: the lines a newcomer reads.
func startUp(t *testing.T, up *exec.Cmd, dir string) *bufio.Scanner {
	t.Helper()
	stdout, err := up.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, _ := os.Create(filepath.Join(dir, "up.log"))
	up.Stderr = logf
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = up.Process.Signal(syscall.SIGTERM)
		_ = up.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("--- up ---\n%s", b)
		}
	})
	return bufio.NewScanner(stdout)
}
