//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/testenv"
	"github.com/tripcap/tripcap/tlscert"
)

// TestTLSEndToEnd: the server in the control namespace serves HTTPS on
// 198.18 addresses with the CA it created; an agent joins with nothing but
// the join token (its fingerprint pins the CA), captures and uploads; an
// agent given a wrong fingerprint, or none and no CA, is refused before it
// sends anything; and a capture of every packet to and from the server's
// port (tcpdump, read with tshark) holds no plaintext HTTP, nor the join token, the agent's
// credential, the admin token or the capture file's bytes.
func TestTLSEndToEnd(t *testing.T) {
	testenv.RequireBinary(t, "tshark")
	l := newLab(t)
	wire, stopWire := l.captureWire()
	ca, err := os.ReadFile(l.caFile())
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := tlscert.ParseCertificates(ca)
	if err != nil {
		t.Fatal(err)
	}
	fp := tlscert.Fingerprint(caCert[0])

	// Joined by fingerprint: the agent has no CA file.
	h1 := l.newHost("h1")
	joinToken := l.joinToken()
	joinSecret, tokenFP, err := tripcap.ParseJoinToken(joinToken)
	if err != nil || tokenFP != fp {
		t.Fatalf("join token %q: fingerprint %q, want the CA's %s (%v)", joinToken, tokenFP, fp, err)
	}
	if u, err := url.Parse(h1.server); err != nil || u.Scheme != "https" || !netip.MustParsePrefix("198.18.0.0/15").Contains(netip.MustParseAddr(u.Hostname())) {
		t.Fatalf("the agent's server URL is %s, want https on a 198.18.0.0/15 address", h1.server)
	}
	l.startAgent(h1, "--join-token", joinToken)
	l.eventually("h1 to be Online", 15*time.Second, func() bool {
		var got tripcap.Host
		return l.cliJSON(&got, "host", "show", "h1") == nil && got.State == tripcap.HostOnline
	})
	pinned, err := os.ReadFile(filepath.Join(h1.stateDir, "ca.pem"))
	if err != nil || !bytes.Equal(pinned, ca) {
		t.Fatalf("the agent's pinned CA is not the server's: %v", err)
	}
	var id struct {
		Credential string `json:"credential"`
	}
	b, err := os.ReadFile(filepath.Join(h1.stateDir, "agent.json"))
	if err != nil || json.Unmarshal(b, &id) != nil || !strings.HasPrefix(id.Credential, tripcap.SecretPrefixAgent) {
		t.Fatalf("agent identity: %v: %s", err, b)
	}

	// A capture, uploaded over the same TLS connection.
	peer := l.newHost("peer")
	l.link(h1, peer)
	l.cli(nil, "capture", "create", "secret-traffic", "--host", "h1", "--time-limit", "3s", "--filter", udpFilter("7001"))
	l.eventually("the capture to run", 5*time.Second, func() bool { return l.capture("secret-traffic").Status == tripcap.StatusRunning })
	l.send(peer, h1, 7001, 200, 7)
	l.eventually("the capture stored", 20*time.Second, func() bool {
		c := l.capture("secret-traffic")
		return c.Status.Terminal() && len(c.Files) == 1 && c.Files[0].Stored
	})
	file := l.download("secret-traffic")
	if n := packets(t, file); n != 200 {
		t.Fatalf("%d packets captured, want 200", n)
	}

	// A wrong fingerprint: refused at once, naming both; nothing enrolled.
	other, err := tlscert.OpenAuthority(filepath.Join(l.dir, "other-ca"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	wrong := tlscert.Fingerprint(other.Anchor())
	h2 := l.newHost("h2")
	badToken := l.joinToken()
	badSecret, _, _ := tripcap.ParseJoinToken(badToken)
	refused := func(h *host, token, want string, alsoWant ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		out, err := h.ns.Command(ctx, binary, "agent", "--server", h.server, "--join-token", token, "--name", h.name,
			"--state-dir", filepath.Join(l.dir, h.name, "state"), "--capture-dir", filepath.Join(l.dir, h.name, "captures"), "--metrics-listen", "").CombinedOutput()
		if err == nil || ctx.Err() != nil {
			t.Fatalf("agent %s: err %v (ctx %v), want a prompt refusal: %s", h.name, err, ctx.Err(), out)
		}
		for _, w := range append([]string{want}, alsoWant...) {
			if !strings.Contains(string(out), w) {
				t.Errorf("agent %s's refusal does not say %q: %s", h.name, w, out)
			}
		}
		if _, err := os.Stat(filepath.Join(l.dir, h.name, "state", "ca.pem")); err == nil {
			t.Errorf("agent %s saved a CA", h.name)
		}
	}
	refused(h2, tripcap.JoinTokenString(badSecret, wrong), "does not match the join token's fingerprint", "expected sha256 "+wrong, fp)
	// No fingerprint and no CA file: the system roots do not know the server.
	h3 := l.newHost("h3")
	refused(h3, badSecret, "certificate signed by unknown authority")
	var hosts []tripcap.Host
	if err := l.cliJSON(&hosts, "host", "list"); err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 1 {
		t.Errorf("%d hosts enrolled, want h1 alone: %+v", len(hosts), hosts)
	}
	var tokens []tripcap.JoinToken
	if err := l.cliJSON(&tokens, "host", "join-token", "list"); err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 1 || tokens[0].UsesLeft != 1 {
		t.Errorf("join tokens left: %+v; want the refused agents' one, unspent", tokens)
	}

	stopWire()
	raw, err := os.ReadFile(wire)
	if err != nil {
		t.Fatal(err)
	}
	// Port 8080 is one of tshark's HTTP ports: plaintext HTTP, HTTP/1 or
	// h2c, would be dissected as such.
	if out := tsharkRead(t, wire, "-Y", "http || http2"); out != "" {
		t.Errorf("plaintext HTTP on the wire:\n%s", out)
	}
	// TLS 1.3 encrypts the server's ALPN choice; the clients' offers show.
	hellos := tsharkRead(t, wire, "-d", "tcp.port=="+serverPort+",tls", "-Y", `tls.handshake.type == 1 && tls.handshake.extensions_alpn_str == "h2"`, "-T", "fields", "-e", "frame.number")
	if strings.Count(hellos, "\n") < 3 {
		t.Errorf("client hellos offering h2: %q; want the agents' and the CLI's", hellos)
	}
	capBytes, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for what, secret := range map[string][]byte{
		"the join token": []byte(joinSecret), "the wrong-fingerprint join token": []byte(badSecret),
		"the agent credential": []byte(id.Credential), "the admin token": []byte(l.token),
		// A packet record from the middle of the capture file (headers and payload).
		"the capture file's bytes": capBytes[len(capBytes)/2 : len(capBytes)/2+64],
	} {
		if bytes.Contains(raw, secret) {
			t.Errorf("%s is on the wire in clear", what)
		}
	}
	if len(raw) < 64<<10 {
		t.Errorf("the wire capture holds %d bytes: it missed the traffic", len(raw))
	}
}

// captureWire records every packet to and from the server's port in the
// control namespace ("any" sees every link to it, those made later too),
// with tcpdump writing each packet as it comes (-U), and returns once a
// probe connection shows in the file; stop ends the capture.
func (l *lab) captureWire() (file string, stop func()) {
	l.t.Helper()
	testenv.RequireBinary(l.t, "tcpdump")
	file = filepath.Join(l.dir, "wire.pcap")
	log := l.logFile("tcpdump")
	cmd := l.ctl.Command(context.Background(), "tcpdump", "-n", "-U", "-i", "any", "-w", file, "tcp", "port", serverPort)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	// probed waits until a probe connection made now shows in the file:
	// tcpdump writes packets in order, so every earlier one is in too.
	probed := func(what string) {
		l.eventually(what, 15*time.Second, func() bool {
			var port int
			_ = l.ctl.Do(func() error {
				c, err := net.DialTimeout("tcp", "127.0.0.1:"+serverPort, time.Second)
				if err == nil {
					port = c.LocalAddr().(*net.TCPAddr).Port
					c.Close()
				}
				return err
			})
			time.Sleep(50 * time.Millisecond)
			// A file being written may end in half a packet: tshark then
			// fails, but prints what it read.
			out, _ := exec.Command("tshark", "-n", "-r", file, "-Y", "tcp.srcport == "+strconv.Itoa(port)).Output()
			return port != 0 && len(bytes.TrimSpace(out)) > 0
		})
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			probed("tcpdump to write the last packets")
			_ = cmd.Process.Signal(syscall.SIGINT)
			_ = cmd.Wait()
		})
	}
	l.t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGINT); _ = cmd.Wait() })
	probed("tcpdump to capture a probe")
	return file, stop
}

// TestPlaintextIsSeenOnTheWire is TestTLSEndToEnd's control: served with
// --insecure-plaintext, the same wire checks find HTTP and the join token,
// and an old-style token (no fingerprint) enrolls.
func TestPlaintextIsSeenOnTheWire(t *testing.T) {
	testenv.RequireBinary(t, "tshark")
	l := newLabWith(t, func(l *lab) { l.serverArgs = []string{"--insecure-plaintext"} })
	wire, stop := l.captureWire()
	h := l.newHost("h1")
	token := l.joinToken()
	if _, fp, err := tripcap.ParseJoinToken(token); err != nil || fp != "" {
		t.Fatalf("a plaintext server's join token %q carries a fingerprint (%v)", token, err)
	}
	l.startAgent(h, "--join-token", token)
	l.eventually("h1 to be Online", 15*time.Second, func() bool {
		var got tripcap.Host
		return l.cliJSON(&got, "host", "show", "h1") == nil && got.State == tripcap.HostOnline
	})
	stop()
	if out := tsharkRead(t, wire, "-Y", "http || http2"); out == "" {
		t.Error("tshark found no HTTP in a plaintext server's traffic: the TLS test's check would prove nothing")
	}
	raw, err := os.ReadFile(wire)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(token)) {
		t.Error("the join token is not in the plaintext capture: the TLS test's byte search would prove nothing")
	}
	b, _ := os.ReadFile(filepath.Join(l.dir, "server.log"))
	if !bytes.Contains(b, []byte("INSECURE: serving plain HTTP beyond loopback")) {
		t.Error("the server did not warn that it serves plain HTTP beyond loopback")
	}
}

// tsharkRead runs tshark on a capture file with args and returns its output.
func tsharkRead(t *testing.T, file string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("tshark", append([]string{"-n", "-r", file}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %v: %v: %s", args, err, stderr.Bytes())
	}
	return strings.TrimSpace(string(out))
}
