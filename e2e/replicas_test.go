//go:build linux

package e2e

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/pgtest"
	"github.com/tripcap/tripcap/internal/testenv"
	"github.com/tripcap/tripcap/internal/trafficgen"
	"github.com/tripcap/tripcap/tlscert"
)

// TestReplicasOnPostgres runs two `tripcap server` replicas on one
// PostgreSQL database and one shared storage directory: the agent talks to
// replica A only, the capture is created and downloaded through replica B.
func TestReplicasOnPostgres(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "capinfos")
	dsn := pgtest.FreshDatabase(t)
	dir := t.TempDir()
	lab := netns.New(t)
	h1, peer := lab.Namespace(), lab.Namespace()
	ctlLink := lab.Veth(nil, h1, netns.LinkOptions{})
	data := lab.Veth(peer, h1, netns.LinkOptions{})

	// A listens where the test host can reach it; B on loopback, for the test.
	rs := newReplicaSet(t, dsn, "--heartbeat", "1s")
	aAddr := ctlLink.A.Addr.Addr().String() + ":8080"
	rs.start("replica-a", aAddr)
	bURL := rs.start("replica-b", "127.0.0.1:0").url
	token := rs.token()
	caFile := rs.caFile()
	pool, err := tlscert.LoadPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tchttp.NewClient(bURL, token, tchttp.WithTLSConfig(tlscert.ClientConfig(pool)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	jt, err := b.CreateJoinToken(ctx, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	agent := h1.Command(context.Background(), binary, "agent", "--server", "https://"+aAddr, "--join-token", jt.Token, "--name", "h1",
		"--state-dir", filepath.Join(dir, "h1-state"), "--capture-dir", filepath.Join(dir, "h1-captures"), "--metrics-listen", "")
	alog, _ := os.Create(filepath.Join(dir, "agent.log"))
	agent.Stdout, agent.Stderr = alog, alog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Signal(syscall.SIGTERM); _ = agent.Wait() })
	eventually(t, "h1 online via replica B", 10*time.Second, func() bool {
		h, err := b.GetHost(ctx, "h1")
		return err == nil && h.State == tripcap.HostOnline
	})

	created := time.Now()
	if _, err := b.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: "via-b", Parameters: tripcap.PacketCaptureParameters{Target: "h1", TimeLimitInSeconds: 3,
		Filters: []tripcap.PacketCaptureFilter{{Protocol: "UDP", LocalPort: "7001"}}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Running", 3*time.Second, func() bool {
		c, err := b.GetCapture(ctx, "", "via-b")
		return err == nil && c.Status == tripcap.StatusRunning
	})
	t.Logf("created on B, Running (via A's agent) after %s", time.Since(created).Round(time.Millisecond))
	dst := netip.AddrPortFrom(data.B.Addr.Addr(), 7001)
	var sink *trafficgen.Sink
	if err := h1.Do(func() (err error) { sink, err = trafficgen.Listen("udp", dst); return err }); err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if err := peer.Do(func() error {
		_, err := trafficgen.Send(ctx, trafficgen.Flow{Network: "udp", Dst: dst, Count: 200, PayloadSize: 64, Interval: 200 * time.Microsecond, ID: 5})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var c *tripcap.PacketCapture
	eventually(t, "stored", 15*time.Second, func() bool {
		c, err = b.GetCapture(ctx, "", "via-b")
		return err == nil && c.Status.Terminal() && len(c.Files) == 1 && c.Files[0].Stored
	})
	file := filepath.Join(dir, "via-b.cap")
	out, err := exec.Command(binary, "--server", bURL, "--token", token, "--ca-file", caFile, "capture", "download", "via-b", "-w", file).CombinedOutput()
	if err != nil {
		t.Fatalf("download through B: %v: %s", err, out)
	}
	if n := packets(t, file); n != 200 {
		t.Fatalf("%d packets, want 200", n)
	}
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitFile(t *testing.T, p string) {
	t.Helper()
	eventually(t, p, 10*time.Second, func() bool { _, err := os.Stat(p); return err == nil })
}

// waitListening reads a server's URL from its log.
func waitListening(t *testing.T, logPath string) string {
	t.Helper()
	var url string
	eventually(t, "the server to listen", 10*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		_, rest, ok := strings.Cut(string(b), "url=")
		if !ok {
			return false
		}
		url, _, _ = strings.Cut(rest, " ")
		return true
	})
	return url
}
