//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

// udpFilter selects the test flow's datagrams to port on the capturing host.
func udpFilter(port string) string { return "protocol=UDP,localPort=" + port }

// TestCaptureEndToEnd: three hosts; captures through the CLI and the API on
// two of them at once; traffic between hosts; files downloaded and checked.
func TestCaptureEndToEnd(t *testing.T) {
	l := newLab(t)
	h1, h2, h3 := l.addHost("h1"), l.addHost("h2"), l.addHost("h3")
	l.link(h1, h2)
	l.link(h2, h3)

	// Through the CLI, on h2, two independent sessions at once.
	l.cli(nil, "capture", "create", "cli-a", "--host", "h2", "--time-limit", "4s", "--filter", udpFilter("7001"))
	l.cli(nil, "capture", "create", "cli-b", "--host", "h2", "--time-limit", "4s", "--filter", udpFilter("7001"), "--format", "pcapng", "--bytes-per-packet", "60")
	// Through the API, on h3.
	created, err := l.api().CreateCapture(t.Context(), tchttp.CreateCaptureBody{Name: "api-c", Parameters: tripcap.PacketCaptureParameters{Target: "h3", TimeLimitInSeconds: 4,
		Filters: []tripcap.PacketCaptureFilter{{Protocol: "UDP", LocalPort: "7002"}}}})
	if err != nil || created.Name != "api-c" {
		t.Fatalf("POST /api/v1/captures: %v", err)
	}
	for _, n := range []string{"cli-a", "cli-b", "api-c"} {
		l.eventually(n+" Running", 3*time.Second, func() bool { return l.capture(n).Status == tripcap.StatusRunning })
	}
	l.send(h1, h2, 7001, 500, 1)
	l.send(h3, h2, 7001, 300, 2) // also to h2:7001, from the other side
	l.send(h2, h3, 7002, 200, 3)
	l.send(h1, h2, 7999, 100, 4) // filtered out everywhere

	for _, n := range []string{"cli-a", "cli-b", "api-c"} {
		l.eventually(n+" stored", 15*time.Second, func() bool {
			c := l.capture(n)
			return c.Status.Terminal() && len(c.Files) == 1 && c.Files[0].Stored
		})
		c := l.capture(n)
		if c.Status != tripcap.StatusStopped || c.StopReason != tripcap.StopTimeExceeded {
			t.Errorf("%s ended %s/%s %v %s", n, c.Status, c.StopReason, c.Errors, c.ErrorMessage)
		}
	}
	// cli-b keeps 60 bytes of each 142-byte frame: every packet is counted
	// as truncated; cli-a keeps them whole.
	for n, want := range map[string]uint64{"cli-a": 0, "cli-b": 800} {
		if c := l.capture(n); c.Stats.TruncatedPackets == nil || *c.Stats.TruncatedPackets != want {
			t.Errorf("%s: truncated packets %v, want %d", n, c.Stats.TruncatedPackets, want)
		}
	}
	// Each capture carries the summary of what its file holds, computed on
	// its host when it ended.
	for n, want := range map[string]uint64{"cli-a": 800, "cli-b": 800, "api-c": 200} {
		if c := l.capture(n); c.Summary == nil || c.Summary.Packets != want {
			t.Errorf("%s: summary %+v, want one of %d packets", n, c.Summary, want)
		}
	}
	if text := l.cliText("capture", "show", "cli-a"); !strings.Contains(text, "Summary") || !strings.Contains(text, "800 packets") {
		t.Errorf("capture show does not give the summary:\n%s", text)
	}
	a, b, c := l.download("cli-a"), l.download("cli-b"), l.download("api-c")
	if n := packets(t, a); n != 800 {
		t.Errorf("cli-a: %d packets, want 800", n)
	}
	if n := packets(t, b); n != 800 {
		t.Errorf("cli-b (pcapng): %d packets, want 800", n)
	}
	if n := packets(t, c); n != 200 {
		t.Errorf("api-c: %d packets, want 200", n)
	}
	if seqs := stampedSeqs(t, a, 1); len(seqs) != 500 {
		t.Errorf("cli-a holds %d of flow 1's 500 datagrams", len(seqs))
	}
	// Snap length: every record of cli-b is cut at 60 bytes, with its original length kept.
	out2, err := l.ctl.Exec(t.Context(), "tshark", "-r", b, "-T", "fields", "-e", "frame.cap_len", "-e", "frame.len")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out2)), "\n") {
		if f := strings.Fields(line); len(f) != 2 || f[0] != "60" || f[1] == "60" {
			t.Fatalf("cli-b record cap_len/len %q, want 60 and the original length", line)
		}
	}
	// The stored file sits at Azure's blob path.
	sp := l.capture("cli-a").Parameters.StorageLocation.StoragePath
	if !strings.Contains(sp, "/providers/microsoft.compute/virtualmachines/h2/") {
		t.Errorf("storagePath %s", sp)
	}
	if _, err := os.Stat(strings.TrimPrefix(sp, "file://")); err != nil {
		t.Errorf("stored file: %v", err)
	}
}

// TestServerRestartMidCapture: the session keeps running while the server is
// away, and nothing is lost.
func TestServerRestartMidCapture(t *testing.T) {
	l := newLab(t)
	h1, h2 := l.addHost("h1"), l.addHost("h2")
	l.link(h1, h2)
	l.cli(nil, "capture", "create", "long", "--host", "h2", "--time-limit", "8s", "--filter", udpFilter("7001"))
	l.eventually("Running", 3*time.Second, func() bool { return l.capture("long").Status == tripcap.StatusRunning })
	l.send(h1, h2, 7001, 300, 1)
	l.stopServer()
	l.send(h1, h2, 7001, 300, 1+1)
	time.Sleep(time.Second)
	l.startServer()
	l.send(h1, h2, 7001, 300, 3)
	l.eventually("stored", 20*time.Second, func() bool {
		c := l.capture("long")
		return c.Status.Terminal() && len(c.Files) == 1 && c.Files[0].Stored
	})
	c := l.capture("long")
	if c.Status != tripcap.StatusStopped || c.StopReason != tripcap.StopTimeExceeded || c.Stats.Packets != 900 {
		t.Fatalf("after a server restart: %s/%s, %d packets (want 900), %v", c.Status, c.StopReason, c.Stats.Packets, c.Errors)
	}
	if n := packets(t, l.download("long")); n != 900 {
		t.Fatalf("file holds %d packets, want 900", n)
	}
}

// TestAgentKilledMidCapture: the capture ends AgentStopped while the agent is
// gone, and its partial file is recovered when the agent comes back.
func TestAgentKilledMidCapture(t *testing.T) {
	l := newLab(t)
	h1, h2 := l.addHost("h1"), l.addHost("h2")
	l.link(h1, h2)
	l.cli(nil, "capture", "create", "doomed", "--host", "h2", "--time-limit", "60s", "--filter", udpFilter("7001"))
	l.eventually("Running", 3*time.Second, func() bool { return l.capture("doomed").Status == tripcap.StatusRunning })
	l.send(h1, h2, 7001, 400, 1)
	time.Sleep(1500 * time.Millisecond) // the engine flushes at least every second
	l.stopAgent(h2, syscall.SIGKILL)
	l.eventually("AgentStopped", 10*time.Second, func() bool { return l.capture("doomed").Status == tripcap.StatusError })
	c := l.capture("doomed")
	if c.StopReason != tripcap.StopAgentStopped || len(c.Errors) != 1 || c.Errors[0] != tripcap.CaptureErrAgentStopped {
		t.Fatalf("killed agent's capture: %s %v", c.StopReason, c.Errors)
	}
	var host tripcap.Host
	if err := l.cliJSON(&host, "host", "show", "h2"); err != nil || host.State != tripcap.HostOffline {
		t.Fatalf("h2 is %s (%v), want Offline", host.State, err)
	}
	l.startAgent(h2)
	l.eventually("the recovered file", 15*time.Second, func() bool {
		c := l.capture("doomed")
		return len(c.Files) == 1 && c.Files[0].Stored
	})
	f := l.download("doomed")
	if n := packets(t, f); n != 400 {
		t.Fatalf("recovered file holds %d packets, want 400", n)
	}
	// The recovered session's figures are the file's.
	if c := l.capture("doomed"); c.Stats.Packets != 400 {
		t.Errorf("the recovered capture reports %d packets; its file holds 400", c.Stats.Packets)
	}
	if _, err := l.ctl.Exec(t.Context(), "tshark", "-r", f, "-q"); err != nil {
		t.Fatalf("tshark cannot read the recovered file: %v", err)
	}
}

// TestAgentWithoutCapNetRaw: an unprivileged agent says what it lacks.
func TestAgentWithoutCapNetRaw(t *testing.T) {
	l := newLab(t)
	out, err := l.ctl.Command(t.Context(), "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
		binary, "agent", "--server", "http://127.0.0.1:"+serverPort, "--join-token", "x", "--state-dir", filepath.Join(t.TempDir(), "s")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "CAP_NET_RAW") {
		t.Fatalf("unprivileged agent: err %v, output %q; want a CAP_NET_RAW message", err, out)
	}
}

// TestCaptureWaitShowsProgressAndCtrlC: `capture create --wait` shows the
// capture's progress on standard error; Ctrl-C leaves the capture running
// on its host and says how to stop it.
func TestCaptureWaitShowsProgressAndCtrlC(t *testing.T) {
	l := newLab(t)
	l.addHost("h1")
	cmd := l.ctl.Command(t.Context(), append(l.clientArgs(), "capture", "create", "waited", "--host", "h1", "--time-limit", "60s", "--wait")...)
	var stderr lockedWriter
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l.eventually("a progress line saying Running", 10*time.Second, func() bool {
		return strings.Contains(stderr.String(), "waited: Running, ")
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if err == nil {
		t.Fatal("an interrupted --wait exited 0")
	}
	if out := stderr.String(); !strings.Contains(out, "goes on until its limits") || !strings.Contains(out, "capture stop waited") {
		t.Fatalf("after Ctrl-C, stderr:\n%s", out)
	}
	if c := l.capture("waited"); c.Status != tripcap.StatusRunning {
		t.Fatalf("the capture is %s after Ctrl-C, want it still Running", c.Status)
	}
	l.cli(nil, "capture", "stop", "waited")
}

// lockedWriter collects a process's output while the test reads it.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestCaptureOnFullDisk: a capture directory already full when a capture
// starts fails it LocalFileFailed, with the kernel's reason.
func TestCaptureOnFullDisk(t *testing.T) {
	l := newLab(t)
	// Mounted before the agent starts: it runs in a mount namespace of
	// its own (ip netns exec), made when it starts.
	capDir := filepath.Join(l.dir, "h1", "captures")
	if err := os.MkdirAll(capDir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tripcap-e2e", capDir, "tmpfs", 0, "size=65536,mode=0750"); err != nil {
		t.Fatalf("mounting a small tmpfs on the capture directory: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(capDir, syscall.MNT_DETACH) })
	fill, err := os.Create(filepath.Join(capDir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 64 && err == nil; i++ {
		_, err = fill.Write(make([]byte, 4096))
	}
	fill.Close()
	if err == nil {
		t.Fatal("the 64 KiB tmpfs never filled")
	}
	l.addHost("h1")
	l.cli(nil, "capture", "create", "full", "--host", "h1", "--time-limit", "5s")
	l.eventually("the capture to fail", 10*time.Second, func() bool { return l.capture("full").Status.Terminal() })
	c := l.capture("full")
	if c.Status != tripcap.StatusError || c.StopReason != tripcap.StopLocalFileFailed || len(c.Errors) != 1 || c.Errors[0] != tripcap.CaptureErrLocalFile ||
		!strings.Contains(c.ErrorMessage, "no space left on device") {
		t.Fatalf("capture on a full disk: %s %s %v %q; want Error, LocalFileFailed with the reason", c.Status, c.StopReason, c.Errors, c.ErrorMessage)
	}
}
