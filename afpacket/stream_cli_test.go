//go:build linux

package afpacket

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/testenv"
	"github.com/tripcap/tripcap/internal/trafficgen"
)

// tsharkProc is tshark reading a capture from its standard input.
type tsharkProc struct {
	cmd *exec.Cmd
	exit
	stdout, stderr *lockedBuffer
}

// startTshark starts tshark with args, its standard input the read end of
// a new pipe, and returns the pipe's write end for the capture's output.
// The caller closes that end once the capture has it.
func startTshark(t *testing.T, args ...string) (*tsharkProc, *os.File) {
	t.Helper()
	bin := testenv.RequireBinary(t, "tshark")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	tp := &tsharkProc{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, exit: newExit()}
	tp.cmd = exec.Command(bin, args...)
	tp.cmd.Stdin, tp.cmd.Stdout, tp.cmd.Stderr = pr, tp.stdout, tp.stderr
	if err := tp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	go func() { tp.set(tp.cmd.Wait()) }()
	t.Cleanup(func() {
		_ = tp.cmd.Process.Kill()
		_ = tp.wait(10 * time.Second)
	})
	return tp, pw
}

// lines counts tshark's output lines that contain s ("" for all).
func (tp *tsharkProc) lines(s string) int {
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(tp.stdout.String()), "\n") {
		if l != "" && strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// waitLines waits until tshark has printed n lines containing s.
func (tp *tsharkProc) waitLines(t *testing.T, s string, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for tp.lines(s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("tshark printed %d lines with %q within %v, want %d:\n%s\n%s", tp.lines(s), s, d, n, tp.stdout, tp.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stderrJSON is the -o json result a `capture run -w -` prints on standard
// error, after its status line.
func stderrJSON(t *testing.T, stderr string) captureRunJSON {
	t.Helper()
	var res captureRunJSON
	i := strings.Index(stderr, "\n{")
	if i < 0 {
		t.Fatalf("no JSON result on standard error:\n%s", stderr)
	}
	if err := json.Unmarshal([]byte(stderr[i+1:]), &res); err != nil {
		t.Fatalf("the JSON result on standard error: %v\n%s", err, stderr)
	}
	return res
}

// TestCLIStream pipes `tripcap capture run -w -` into `tshark -l -r -`, as
// `tripcap capture run -w - | wireshark -k -i -` would be: tshark prints
// the packets while the capture still runs; after SIGINT both end cleanly,
// tshark having read every packet the capture counted; the result (-o
// json) is on standard error, standard output holding nothing but the
// capture. pcap, pcapng (--format), and a tcpdump expression.
func TestCLIStream(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	sink(t, n.b, "udp", n.bAddr(7000))
	sink(t, n.b, "udp", n.bAddr(7001))
	ifc := n.link.B.Name
	for _, tc := range []struct {
		name string
		args []string
		// iface is the interface name tshark reads from the stream:
		// pcapng names it, pcap cannot.
		iface string
		exact bool // the capture holds the 7000 flow only
	}{
		{"pcap", nil, "", false},
		{"pcapng", []string{"--format", "pcapng"}, ifc, false},
		{"expression", []string{"udp port 7000"}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, pw := startTshark(t, "-l", "-n", "-r", "-", "-T", "fields", "-E", "separator=,", "-e", "frame.interface_name", "-e", "udp.dstport")
			p := runCaptureOut(t, n.b, "", pw, append([]string{"-o", "json", "-w", "-", "-i", ifc}, tc.args...)...)
			pw.Close() // tshark's end of file is tripcap's exit
			send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7001), Count: 20, PayloadSize: 80, ID: 2})
			send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 30, PayloadSize: 80, ID: 1})
			want := tc.iface + ",7000"
			tp.waitLines(t, want, 30, 5*time.Second)
			if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if err := p.wait(10 * time.Second); err != nil {
				t.Fatalf("tripcap's exit: %v\n%s", err, p.stderr)
			}
			if err := tp.wait(10 * time.Second); err != nil {
				t.Fatalf("tshark's exit, after the capture's: %v\n%s", err, tp.stderr)
			}
			if strings.Contains(tp.stderr.String(), "cut short") || strings.Contains(tp.stderr.String(), "appears to be damaged") {
				t.Errorf("tshark on the stream: %s", tp.stderr)
			}
			res := stderrJSON(t, p.stderr.String())
			total := tp.lines("")
			if res.StopReason != tripcap.StopManuallyStopped || res.Packets != uint64(total) || res.Files == nil || len(res.Files) != 0 {
				t.Errorf("result %+v, want ManuallyStopped, %d packets (what tshark read), files []", res, total)
			}
			if got := tp.lines(want); got != 30 {
				t.Errorf("tshark read %d packets of the 7000 flow as %q, want 30:\n%s", got, want, tp.stdout)
			}
			if got := tp.lines(",7001"); tc.exact && (got != 0 || total != 30) {
				t.Errorf("the expression let through %d packets of the 7001 flow, %d in all", got, total)
			} else if !tc.exact && got != 20 {
				t.Errorf("tshark read %d packets of the 7001 flow, want 20", got)
			}
			if p.stdout.String() != "" {
				t.Errorf("standard output went elsewhere than the pipe: %q", p.stdout)
			}
		})
	}
}

var streamClosedLine = regexp.MustCompile(`(?m)^stop reason:\s+StreamClosed$`)

// TestCLIStreamReaderGone ends the stream's reader early: the capture ends
// promptly, by itself, with exit status 0 (as tcpdump's does), not killed
// by SIGPIPE, its statistics on standard error with StreamClosed. tshark
// -c 5 leaves on a quiet interface (only the watch of standard output can
// tell, and the pcapng trailer then meets the closed pipe); a reader that
// closes while packets keep coming is found out by the writes.
func TestCLIStreamReaderGone(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	sink(t, n.b, "udp", n.bAddr(7000))
	ifc := n.link.B.Name
	ended := func(t *testing.T, p *capProc) {
		t.Helper()
		err := p.wait(5 * time.Second)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the capture did not end after its reader:\n%s", p.stderr)
		}
		if err != nil {
			t.Fatalf("exit: %v, want status 0\n%s", err, p.stderr)
		}
		if !streamClosedLine.MatchString(p.stderr.String()) {
			t.Errorf("no StreamClosed stop reason on standard error:\n%s", p.stderr)
		}
	}

	t.Run("tshark-c", func(t *testing.T) {
		tp, pw := startTshark(t, "-n", "-r", "-", "-c", "5")
		p := runCaptureOut(t, n.b, "", pw, "-w", "-", "-i", ifc, "--format", "pcapng")
		pw.Close()
		send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 20, PayloadSize: 80, ID: 1})
		if err := tp.wait(10 * time.Second); err != nil {
			t.Fatalf("tshark -c 5: %v\n%s", err, tp.stderr)
		}
		ended(t, p)
	})

	t.Run("traffic-goes-on", func(t *testing.T) {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		p := runCaptureOut(t, n.b, "", pw, "-w", "-", "-i", ifc)
		pw.Close()
		sr := readStream(pr)
		send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 5, PayloadSize: 80, ID: 1})
		sr.waitFlow(t, 1, 5, 5*time.Second)
		pr.Close()
		<-sr.done
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			_ = n.a.Do(func() error {
				_, err := trafficgen.Send(ctx, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 2000, PayloadSize: 80, Interval: time.Millisecond, ID: 2})
				return err
			})
		}()
		ended(t, p)
	})
}

// TestCLIStreamRefused: options that need files are refused with -w -,
// naming the flags, before anything is captured or written.
func TestCLIStreamRefused(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	for _, tc := range []struct{ flag, want string }{
		{"--continuous", "--continuous and -w -"},
		{"--metadata", "--metadata and -w -"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := n.b.Command(ctx, tripcapBinary(t), "capture", "run", tc.flag, "-w", "-", "-i", n.link.B.Name)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 {
			t.Errorf("%s -w -: %v, stdout %q, stderr %q; want exit 1 with %q", tc.flag, err, stdout.String(), stderr.String(), tc.want)
		}
	}
}
