//go:build linux

package afpacket

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/testenv"
	"github.com/tripcap/tripcap/internal/trafficgen"
	"github.com/tripcap/tripcap/pcapfile"
)

// tripcapBinary builds cmd/tripcap once per test run.
func tripcapBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tripcap-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBinary = filepath.Join(dir, "tripcap")
		cmd := exec.Command("go", "build", "-o", builtBinary, "../cmd/tripcap")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("building tripcap: %v", buildErr)
	}
	return builtBinary
}

var (
	buildOnce   sync.Once
	builtBinary string
	buildErr    error
)

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBinary != "" {
		os.RemoveAll(filepath.Dir(builtBinary))
	}
	os.Exit(code)
}

// capProc is a running `tripcap capture run`.
type capProc struct {
	cmd *exec.Cmd
	exit
	stdout, stderr *lockedBuffer
}

// exit is a child process's end, waited for by any number of callers.
type exit struct {
	done chan struct{} // closed once err is set
	err  error         // Wait's result
}

func newExit() exit { return exit{done: make(chan struct{})} }

func (e *exit) set(err error) {
	e.err = err
	close(e.done)
}

// wait waits for the process to exit (and its output to close), and
// returns Wait's result, or DeadlineExceeded after d.
func (e *exit) wait(d time.Duration) error {
	select {
	case <-e.done:
		return e.err
	case <-time.After(d):
		return context.DeadlineExceeded
	}
}

// runCapture starts `tripcap capture run` inside ns and returns once it
// captures. The caller ends it.
func runCapture(t *testing.T, ns *netns.Namespace, args ...string) *capProc {
	t.Helper()
	return runCaptureIn(t, ns, "", args...)
}

// runCaptureIn is runCapture with the working directory dir ("" for the test's).
func runCaptureIn(t *testing.T, ns *netns.Namespace, dir string, args ...string) *capProc {
	t.Helper()
	return runCaptureOut(t, ns, dir, nil, args...)
}

// runCaptureOut is runCaptureIn with standard output going to stdout (a
// pipe's write end, for -w -) instead of p.stdout, when not nil.
func runCaptureOut(t *testing.T, ns *netns.Namespace, dir string, stdout *os.File, args ...string) *capProc {
	t.Helper()
	bin := tripcapBinary(t)
	p := &capProc{exit: newExit(), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	p.cmd = ns.Command(context.Background(), append([]string{bin, "capture", "run", "--log-level", "warn"}, args...)...)
	p.cmd.Dir = dir
	p.cmd.Stdout = p.stdout
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	pr, pw := io.Pipe()
	p.cmd.Stderr = pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.wait(10 * time.Second)
	})
	started := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		ok := false
		for sc.Scan() {
			p.stderr.WriteString(sc.Text() + "\n")
			if !ok && strings.HasPrefix(sc.Text(), "capturing to ") {
				ok = true
				started <- true
			}
		}
		if !ok {
			started <- false
		}
	}()
	go func() {
		err := p.cmd.Wait()
		pw.Close()
		p.set(err)
	}()
	select {
	case ok := <-started:
		if !ok {
			t.Fatalf("tripcap capture run did not start:\n%s", p.stderr)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("tripcap capture run did not start in time:\n%s", p.stderr)
	}
	return p
}

// TestCLIRun runs `tripcap capture run` with a filter and with a raw BPF
// program, stops it with SIGINT, and reads its JSON statistics.
func TestCLIRun(t *testing.T) {
	tcpdump := testenv.RequireBinary(t, "tcpdump")
	n := newTestNet(t, netns.LinkOptions{})
	dir := t.TempDir()
	sink(t, n.b, "udp", n.bAddr(7000))
	sink(t, n.b, "udp", n.bAddr(7001))

	prog, err := exec.Command(tcpdump, "-ddd", "-y", "EN10MB", "udp dst port 7001").Output()
	if err != nil {
		t.Fatalf("tcpdump -ddd: %v", err)
	}
	bpfFile := filepath.Join(t.TempDir(), "prog.txt")
	if err := os.WriteFile(bpfFile, prog, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, ext string
		args      []string
		want      uint32 // the flow the capture keeps
	}{
		{"filter", ".cap", []string{"--filter", "protocol=UDP,localPort=7000"}, 1},
		{"bpf-file", ".cap", []string{"--bpf-file", bpfFile}, 2},
		// The format follows the extension, as Wireshark's tools expect.
		{"pcapng-by-extension", ".pcapng", []string{"--filter", "protocol=UDP,localPort=7000"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.name + tc.ext
			// -w is relative to the working directory, as with tcpdump.
			// One interface named: a whole-host capture is pcapng
			// whatever the extension (interfaces may appear).
			p := runCaptureIn(t, n.b, dir, append([]string{"-o", "json", "-w", file, "-i", n.link.B.Name}, tc.args...)...)
			send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 30, PayloadSize: 50, ID: 1})
			send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7001), Count: 40, PayloadSize: 50, ID: 2})
			time.Sleep(150 * time.Millisecond)
			if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if err := p.wait(10 * time.Second); err != nil {
				t.Fatalf("exit: %v\n%s", err, p.stderr)
			}
			var res captureRunJSON
			if err := json.Unmarshal([]byte(p.stdout.String()), &res); err != nil {
				t.Fatalf("output %q: %v", p.stdout, err)
			}
			wantCount := uint64(30)
			if tc.want == 2 {
				wantCount = 40
			}
			if res.StopReason != tripcap.StopManuallyStopped || res.Packets != wantCount || res.KernelDrops != 0 ||
				len(res.Files) != 1 || res.Files[0] != filepath.Join(dir, file) {
				t.Errorf("result %+v, want %d packets, ManuallyStopped", res, wantCount)
			}
			head := make([]byte, 4)
			if f, err := os.Open(res.Files[0]); err == nil {
				_, _ = io.ReadFull(f, head)
				f.Close()
			}
			if isNG := string(head) == "\x0a\x0d\x0d\x0a"; isNG != (tc.ext == ".pcapng") {
				t.Errorf("%s: pcapng=%v (magic % x)", file, isNG, head)
			}
			ids, _ := stamps(readCapture(t, res.Files[0]))
			for _, id := range ids {
				if id != tc.want {
					t.Fatalf("flow %d in a capture of flow %d", id, tc.want)
				}
			}
		})
	}
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type captureRunJSON struct {
	Packets     uint64   `json:"packets"`
	Bytes       uint64   `json:"bytes"`
	KernelDrops uint64   `json:"kernelDrops"`
	StopReason  string   `json:"stopReason"`
	Files       []string `json:"files"`
}

// TestKill9 kills `tripcap capture run` with SIGKILL in the middle of a
// flood, several times: each file left ends at a record boundary, so tshark
// and capinfos read it without complaint. The capture directory is a tmpfs,
// so the floods cost no disk I/O.
func TestKill9(t *testing.T) {
	capinfos := testenv.RequireBinary(t, "capinfos")
	tshark := testenv.RequireBinary(t, "tshark")
	n := newTestNet(t, netns.LinkOptions{})
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1g"); err != nil {
		testenv.Unavailable(t, "mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	sink(t, n.b, "udp", n.bAddr(7000))
	for i := range 2 {
		format := []string{tripcap.FormatPcap, tripcap.FormatPcapng}[i%2]
		t.Run(fmt.Sprintf("%s-%d", format, i), func(t *testing.T) {
			file := fmt.Sprintf("killed-%d.%s", i, format)
			p := runCapture(t, n.b, "-w", filepath.Join(dir, file), "--format", format)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				// Odd sizes, so records straddle the write buffer's end.
				_ = n.a.Do(func() error {
					_, err := trafficgen.Send(ctx, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 1_000_000, PayloadSize: 777, ID: 1})
					return err
				})
			}()
			// Mid-flood: the capture writes its buffer every few
			// milliseconds. When the kill lands inside a write, the
			// file guard reports the partial record it removed.
			time.Sleep(500 * time.Millisecond)
			if err := p.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			cancel()
			<-done
			// Waiting for the process's standard error to close also
			// waits for its file guard, which shares it.
			if err := p.wait(10 * time.Second); err == context.DeadlineExceeded {
				t.Fatal("the killed capture's output did not close")
			}
			t.Logf("stderr:\n%s", p.stderr)
			path := filepath.Join(dir, file)
			defer os.Remove(path)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatalf("%v\n%s", err, p.stderr)
			}
			out, err := exec.Command(capinfos, "-c", "-M", path).CombinedOutput()
			if err != nil || strings.Contains(string(out), "cut short") {
				t.Fatalf("capinfos on the killed capture (%d bytes): %v\n%s", st.Size(), err, out)
			}
			if m := capinfosCount.FindSubmatch(out); m == nil || len(m[1]) < 4 {
				t.Errorf("capinfos finds too few packets from a flood:\n%s", out)
			} else if n, _, err := pcapfile.Count(path); err != nil || strconv.FormatUint(n, 10) != string(m[1]) {
				// What an agent recovering the file reports.
				t.Errorf("pcapfile.Count finds %d packets (%v); capinfos %s", n, err, m[1])
			}
			// Reading every record is the point, not dissecting them.
			tcmd := exec.Command(tshark, "-n", "--disable-protocol", "eth", "-r", path, "-T", "fields", "-e", "frame.number")
			var terr strings.Builder
			tcmd.Stderr = &terr
			if _, err := tcmd.Output(); err != nil || strings.Contains(terr.String(), "cut short") {
				t.Errorf("tshark on the killed capture: %v\n%s", err, terr.String())
			}
		})
	}
}
