//go:build linux

// Package e2e runs the real tripcap binary: a server in its own network
// namespace, agents in test hosts' namespaces, the CLI against the API, and
// traffic between the hosts, checked with tshark and capinfos.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/testenv"
	"github.com/tripcap/tripcap/internal/trafficgen"
	"github.com/tripcap/tripcap/tlscert"
)

// binary is the tripcap binary built once for all tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tripcap-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tripcap")
	build := exec.Command("go", "build", "-o", binary, "../cmd/tripcap")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building tripcap: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const serverPort = "8080"

// lab is a control namespace running the server, and test hosts with agents.
type lab struct {
	t     *testing.T
	net   *netns.Lab
	ctl   *netns.Namespace
	dir   string
	token string
	// api reaches the server from the test process, over a link from the root namespace.
	apiURL string
	// serverArgs and serverEnv are added to every start of the server.
	serverArgs, serverEnv []string
	// scheme is https unless a test serves plain HTTP (--insecure-plaintext
	// in serverArgs); the server's CA is then caFile.
	scheme string

	mu     sync.Mutex
	server *exec.Cmd
	hosts  map[string]*host
}

type host struct {
	name     string
	ns       *netns.Namespace
	server   string // the server's URL as this host sees it
	stateDir string
	capDir   string
	agent    *exec.Cmd
	// data is this host's address on each data link, by peer name.
	data map[string]netip.Addr
	// ctlLink joins the host (side B) to the control namespace (side A).
	ctlLink *netns.Link
}

func newLab(t *testing.T) *lab { return newLabWith(t, nil) }

// newLabWith lets setup start services in the control namespace (reachable
// from every host and the test at l.net.ServiceAddr()) and set the server's
// flags before the server starts.
func newLabWith(t *testing.T, setup func(l *lab)) *lab {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "tshark")
	testenv.RequireBinary(t, "capinfos")
	l := &lab{t: t, net: netns.New(t), dir: t.TempDir(), hosts: map[string]*host{}, scheme: "https"}
	l.ctl = l.net.Namespace()
	root := l.net.Veth(nil, l.ctl, netns.LinkOptions{})
	l.net.AddService(l.ctl)
	l.net.RouteService(root.A, root.B)
	if setup != nil {
		setup(l)
	}
	if slices.Contains(l.serverArgs, "--insecure-plaintext") {
		l.scheme = "http"
	}
	l.apiURL = l.scheme + "://" + root.B.Addr.Addr().String() + ":" + serverPort
	l.startServer()
	t.Cleanup(l.stopAll)
	return l
}

// logFile returns a file in the test's directory for a process's output,
// shown when the test fails.
func (l *lab) logFile(name string) *os.File {
	f, err := os.OpenFile(filepath.Join(l.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		f.Close()
		if l.t.Failed() {
			b, _ := os.ReadFile(f.Name())
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			l.t.Logf("--- %s (tail) ---\n%s", name, b)
		}
	})
	return f
}

func (l *lab) startServer(extra ...string) {
	l.t.Helper()
	args := append([]string{binary, "server", "--listen", "0.0.0.0:" + serverPort, "--data", filepath.Join(l.dir, "server"), "--heartbeat", "1s", "--log-level", "debug"}, l.serverArgs...)
	args = append(args, extra...)
	cmd := l.ctl.Command(context.Background(), args...)
	cmd.Env = append(os.Environ(), l.serverEnv...)
	out := l.logFile("server")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.mu.Lock()
	l.server = cmd
	l.mu.Unlock()
	tokenFile := filepath.Join(l.dir, "server", "admin.token")
	l.eventually("the server to start", 10*time.Second, func() bool {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return false
		}
		l.token = strings.TrimSpace(string(b))
		_, err = l.ctl.Exec(context.Background(), append(l.clientArgs(), "host", "list")...)
		return err == nil
	})
}

// localURL is the server's URL inside the control namespace.
func (l *lab) localURL() string { return l.scheme + "://127.0.0.1:" + serverPort }

// caFile is the CA the server created (agents pin it by the join token's
// fingerprint; the CLI and the test are given the file).
func (l *lab) caFile() string { return filepath.Join(l.dir, "server", "tls", "ca.pem") }

// clientArgs are a CLI verb's connection flags: the binary, server, token, CA.
func (l *lab) clientArgs() []string {
	args := []string{binary, "--server", l.localURL(), "--token", l.token}
	if l.scheme == "https" {
		args = append(args, "--ca-file", l.caFile())
	}
	return args
}

// httpClient is an http.Client that trusts the server, for raw requests.
func (l *lab) httpClient() *http.Client {
	l.t.Helper()
	if l.scheme != "https" {
		return http.DefaultClient
	}
	pool, err := tlscert.LoadPool(l.caFile())
	if err != nil {
		l.t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tlscert.ClientConfig(pool), ForceAttemptHTTP2: true}}
}

// stopServer ends the server with SIGTERM and waits for it.
func (l *lab) stopServer() {
	l.mu.Lock()
	cmd := l.server
	l.server = nil
	l.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
}

func (l *lab) stopAll() {
	l.mu.Lock()
	hosts := l.hosts
	l.mu.Unlock()
	for _, h := range hosts {
		l.stopAgent(h, syscall.SIGTERM)
	}
	l.stopServer()
}

// addHost creates a host namespace linked to the control namespace and
// starts its agent, joined by a join token (which pins the server's CA).
func (l *lab) addHost(name string) *host {
	l.t.Helper()
	h := l.newHost(name)
	l.startAgent(h, "--join-token", l.joinToken())
	l.eventually(name+" to be Online", 10*time.Second, func() bool {
		var got tripcap.Host
		return l.cliJSON(&got, "host", "show", name) == nil && got.State == tripcap.HostOnline
	})
	return h
}

// joinToken creates a one-use join token.
func (l *lab) joinToken() string {
	l.t.Helper()
	jt := l.cli(nil, "host", "join-token", "create")
	var tok tripcap.JoinToken
	if err := json.Unmarshal(jt, &tok); err != nil {
		l.t.Fatalf("join token: %v: %s", err, jt)
	}
	return tok.Token
}

// newHost creates a host namespace linked to the control namespace, with no agent.
func (l *lab) newHost(name string) *host {
	l.t.Helper()
	ns := l.net.Namespace()
	link := l.net.Veth(l.ctl, ns, netns.LinkOptions{})
	l.net.RouteService(link.B, link.A)
	h := &host{name: name, ns: ns, server: l.scheme + "://" + link.A.Addr.Addr().String() + ":" + serverPort,
		stateDir: filepath.Join(l.dir, name, "state"), capDir: filepath.Join(l.dir, name, "captures"), data: map[string]netip.Addr{}, ctlLink: link}
	l.mu.Lock()
	l.hosts[name] = h
	l.mu.Unlock()
	return h
}

func (l *lab) startAgent(h *host, extra ...string) {
	l.t.Helper()
	args := append([]string{binary, "agent", "--server", h.server, "--name", h.name, "--location", "westeurope",
		"--state-dir", h.stateDir, "--capture-dir", h.capDir, "--log-level", "debug"}, extra...)
	cmd := h.ns.Command(context.Background(), args...)
	out := l.logFile("agent-" + h.name)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.mu.Lock()
	h.agent = cmd
	l.mu.Unlock()
}

func (l *lab) stopAgent(h *host, sig syscall.Signal) {
	l.mu.Lock()
	cmd := h.agent
	h.agent = nil
	l.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(sig)
		_ = cmd.Wait()
	}
}

// link joins two hosts with a data link and records their addresses.
func (l *lab) link(a, b *host) {
	l.t.Helper()
	ln := l.net.Veth(a.ns, b.ns, netns.LinkOptions{})
	a.data[b.name] = ln.A.Addr.Addr()
	b.data[a.name] = ln.B.Addr.Addr()
}

// cli runs a tripcap client verb in the control namespace with -o json and
// returns its standard output; it fails the test on error unless errOut is given.
func (l *lab) cli(errOut *error, args ...string) []byte {
	l.t.Helper()
	argv := append(append(l.clientArgs(), "-o", "json"), args...)
	out, err := l.ctl.Exec(context.Background(), argv...)
	if errOut != nil {
		*errOut = err
	} else if err != nil {
		l.t.Fatalf("tripcap %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (l *lab) cliJSON(v any, args ...string) error {
	var err error
	out := l.cli(&err, args...)
	if err != nil {
		return err
	}
	return json.Unmarshal(out, v)
}

// api returns an admin client of the native API.
func (l *lab) api() *tchttp.Client {
	l.t.Helper()
	var opts []tchttp.ClientOption
	if l.scheme == "https" {
		pool, err := tlscert.LoadPool(l.caFile())
		if err != nil {
			l.t.Fatal(err)
		}
		opts = append(opts, tchttp.WithTLSConfig(tlscert.ClientConfig(pool)))
	}
	c, err := tchttp.NewClient(l.apiURL, l.token, opts...)
	if err != nil {
		l.t.Fatal(err)
	}
	return c
}

func (l *lab) capture(name string) *tripcap.PacketCapture {
	l.t.Helper()
	var c tripcap.PacketCapture
	if err := l.cliJSON(&c, "capture", "show", name); err != nil {
		l.t.Fatalf("capture show %s: %v", name, err)
	}
	return &c
}

func (l *lab) eventually(what string, timeout time.Duration, cond func() bool) {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			l.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// send sends count UDP datagrams from one host to another's data address.
func (l *lab) send(from, to *host, port uint16, count int, id uint32) {
	l.t.Helper()
	l.sendSized(from, to, port, count, 100, id)
}

// sendSized sends count UDP datagrams of size payload bytes.
func (l *lab) sendSized(from, to *host, port uint16, count, size int, id uint32) {
	l.t.Helper()
	src := from.data[to.name]
	dst := netip.AddrPortFrom(to.data[from.name], port)
	// A listener on the receiver, so no ICMP port-unreachable comes back.
	var sink *trafficgen.Sink
	if err := to.ns.Do(func() (err error) { sink, err = trafficgen.Listen("udp", dst); return err }); err != nil {
		l.t.Fatalf("listening on %s in %s: %v", dst, to.name, err)
	}
	defer sink.Close()
	err := from.ns.Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r, err := trafficgen.Send(ctx, trafficgen.Flow{Network: "udp", Src: netip.AddrPortFrom(src, 0), Dst: dst, Count: count, PayloadSize: size, Interval: 200 * time.Microsecond, ID: id})
		if err == nil && r.Sent != count {
			err = fmt.Errorf("sent %d of %d", r.Sent, count)
		}
		return err
	})
	if err != nil {
		l.t.Fatalf("sending from %s to %s: %v", from.name, to.name, err)
	}
}

// download fetches a capture's file through the CLI into the test's directory.
func (l *lab) download(name string) string {
	l.t.Helper()
	p := filepath.Join(l.dir, name+".cap")
	l.cli(nil, "capture", "download", name, "-w", p, "-o", "json")
	return p
}

// packets counts the packets in a capture file with capinfos.
func packets(t *testing.T, file string) int {
	t.Helper()
	out, err := exec.Command("capinfos", "-M", "-c", "-T", file).CombinedOutput()
	if err != nil {
		t.Fatalf("capinfos %s: %v: %s", file, err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) == 2 {
			if n, err := strconv.Atoi(strings.TrimSpace(fields[1])); err == nil {
				return n
			}
		}
	}
	t.Fatalf("capinfos %s: no packet count in %q", file, out)
	return 0
}

// stampedSeqs reads the trafficgen sequence numbers of a flow from a capture with tshark.
func stampedSeqs(t *testing.T, file string, id uint32) []uint64 {
	t.Helper()
	out, err := exec.Command("tshark", "-r", file, "-T", "fields", "-e", "udp.payload").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", file, err)
	}
	var seqs []uint64
	for _, line := range strings.Fields(string(out)) {
		b, err := decodeHex(line)
		if err != nil {
			continue
		}
		if fid, seq, ok := trafficgen.Stamp(b); ok && fid == id {
			seqs = append(seqs, seq)
		}
	}
	return seqs
}

func decodeHex(s string) ([]byte, error) { return hex.DecodeString(strings.ReplaceAll(s, ":", "")) }
