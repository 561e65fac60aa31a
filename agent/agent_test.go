package agent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/agent"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/filestore"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
	"github.com/tripcap/tripcap/tlscert"
)

// fileEngine stands in for AF_PACKET here: it writes a record every 10 ms
// (of BytesToCapturePerPacket bytes, else a short line) until stopped or out
// of time, so the agent's protocol logic is tested on its own. The real
// engine runs in the e2e tests.
type fileEngine struct{}

type fileSession struct {
	mu      sync.Mutex
	path    string
	packets uint64
	stop    chan string
	done    chan struct{}
	result  tripcap.CaptureResult
}

func (fileEngine) Start(ctx context.Context, spec tripcap.CaptureSpec) (tripcap.CaptureSession, error) {
	if err := os.MkdirAll(filepath.Dir(spec.Path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(spec.Path)
	if err != nil {
		return nil, err
	}
	s := &fileSession{path: spec.Path, stop: make(chan string, 1), done: make(chan struct{})}
	record := []byte("packet\n")
	if n := spec.Parameters.BytesToCapturePerPacket; n > 0 {
		record = bytes.Repeat([]byte{byte(len(spec.ID))}, int(n))
		for i := range record {
			record[i] = byte(i * 31)
		}
	}
	start := time.Now()
	limit := time.Duration(spec.Parameters.TimeLimitInSeconds) * time.Second
	go func() {
		defer close(s.done)
		defer f.Close()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		timeout := time.After(limit)
		reason := ""
		for reason == "" {
			select {
			case reason = <-s.stop:
			case <-timeout:
				reason = tripcap.StopTimeExceeded
			case <-tick.C:
				_, _ = f.Write(record)
				s.mu.Lock()
				s.packets++
				s.mu.Unlock()
			}
		}
		s.result = tripcap.CaptureResult{StopReason: reason, Files: []string{spec.Path}, Stats: s.Stats(), StartTime: start, StopTime: time.Now()}
	}()
	return s, nil
}

func (s *fileSession) Stats() tripcap.CaptureStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return tripcap.CaptureStats{Packets: s.packets}
}
func (s *fileSession) Files() []string { return []string{s.path} }
func (s *fileSession) Stop(reason string) {
	select {
	case s.stop <- reason:
	default:
	}
}
func (s *fileSession) Done() <-chan struct{}         { return s.done }
func (s *fileSession) Result() tripcap.CaptureResult { return s.result }

// server is a control plane on a fixed loopback address, so it can be
// stopped and started again where the agent expects it.
type server struct {
	t     *testing.T
	dir   string
	addr  string
	url   string
	admin *tchttp.Client
	svc   *controlplane.Service
	stop  func()
}

func startServer(t *testing.T, dir, addr string) *server {
	t.Helper()
	return startServerWith(t, dir, addr, nil)
}

// startServerWith adds storage accounts to the default file one.
func startServerWith(t *testing.T, dir, addr string, accounts map[string]tripcap.BlobStore) *server {
	t.Helper()
	return startServerHeartbeat(t, dir, addr, accounts, time.Second)
}

func startServerHeartbeat(t *testing.T, dir, addr string, accounts map[string]tripcap.BlobStore, heartbeat time.Duration) *server {
	t.Helper()
	return startServerTLS(t, dir, addr, accounts, heartbeat, nil)
}

// startServerTLS serves HTTPS with pki's certificate when pki is set; the
// join tokens then carry its CA's fingerprint.
func startServerTLS(t *testing.T, dir, addr string, accounts map[string]tripcap.BlobStore, heartbeat time.Duration, pki *tlscert.Authority) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	store.SetSealer(storetest.NewSealer(t))
	blobs, err := filestore.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	storage := map[string]tripcap.BlobStore{"local": blobs}
	for name, b := range accounts {
		storage[name] = b
	}
	cfg := controlplane.Config{Storage: storage, DefaultStorage: "local", HeartbeatInterval: heartbeat}
	scheme, opts, clientOpts := "http://", []tchttp.Option(nil), []tchttp.ClientOption(nil)
	if pki != nil {
		fp := tlscert.Fingerprint(pki.Anchor())
		cfg.CAFingerprint = func() string { return fp }
		scheme, opts = "https://", []tchttp.Option{tchttp.WithTLS(tlscert.ServerConfig(pki))}
		pool := x509.NewCertPool()
		pool.AddCert(pki.Anchor())
		clientOpts = []tchttp.ClientOption{tchttp.WithTLSConfig(tlscert.ClientConfig(pool))}
	}
	svc := controlplane.New(store, cfg, log)
	token, err := svc.EnsureAdmin(ctx, filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	for i := 0; ; i++ {
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		} else if i == 50 {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = svc.Run(ctx) }()
	go func() { defer wg.Done(); _ = tchttp.NewServer(svc, log, opts...).Serve(ctx, l) }()
	admin, _ := tchttp.NewClient(scheme+l.Addr().String(), token, clientOpts...)
	s := &server{t: t, dir: dir, addr: l.Addr().String(), url: scheme + l.Addr().String(), admin: admin, svc: svc}
	s.stop = func() { cancel(); wg.Wait(); store.Close() }
	t.Cleanup(func() { s.stop() })
	return s
}

func runAgent(t *testing.T, srv *server, stateDir string, joinToken string) (cancel func()) {
	t.Helper()
	return runAgentHeartbeat(t, srv, stateDir, joinToken, 200*time.Millisecond)
}

func runAgentHeartbeat(t *testing.T, srv *server, stateDir string, joinToken string, heartbeat time.Duration) (cancel func()) {
	t.Helper()
	return runAgentWith(t, srv, stateDir, joinToken, heartbeat, fileEngine{})
}

func runAgentWith(t *testing.T, srv *server, stateDir string, joinToken string, heartbeat time.Duration, engine tripcap.CaptureEngine) (cancel func()) {
	t.Helper()
	a, err := agent.New(agent.Config{Server: srv.url, JoinToken: joinToken, Name: "web1", StateDir: stateDir,
		CaptureDir: filepath.Join(stateDir, "captures"), Engine: engine, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		HeartbeatInterval: heartbeat, PollWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	var once sync.Once
	cancel = func() { once.Do(func() { stop(); <-done }) }
	t.Cleanup(cancel)
	return cancel
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func enrolled(t *testing.T, srv *server) string {
	t.Helper()
	jt, err := srv.admin.CreateJoinToken(context.Background(), time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	return jt.Token
}

func capture(t *testing.T, srv *server, name string) *tripcap.PacketCapture {
	t.Helper()
	c, err := srv.admin.GetCapture(context.Background(), "", name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCaptureRunsStopsAndUploads(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	stateDir := t.TempDir()
	runAgent(t, srv, stateDir, enrolled(t, srv))
	ctx := context.Background()
	waitFor(t, "the host to enroll", 5*time.Second, func() bool { hs, _ := srv.admin.ListHosts(ctx); return len(hs) == 1 })

	created := time.Now()
	if _, err := srv.admin.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: "x", Parameters: tripcap.PacketCaptureParameters{Target: "web1"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Running", 2*time.Second, func() bool { return capture(t, srv, "x").Status == tripcap.StatusRunning })
	if d := time.Since(created); d > time.Second {
		t.Errorf("capture took %s to be Running", d)
	}
	waitFor(t, "live statistics", 3*time.Second, func() bool { return capture(t, srv, "x").Stats.Packets > 0 })
	if _, err := srv.admin.StopCapture(ctx, "", "x"); err != nil {
		t.Fatal(err)
	}
	var c *tripcap.PacketCapture
	waitFor(t, "stopped and stored", 5*time.Second, func() bool {
		c = capture(t, srv, "x")
		return c.Status == tripcap.StatusStopped && len(c.Files) == 1 && c.Files[0].Stored
	})
	if c.StopReason != tripcap.StopManuallyStopped {
		t.Fatalf("stop reason %s", c.StopReason)
	}
	d, err := srv.admin.DownloadFile(ctx, "", "x", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(d.Body)
	d.Body.Close()
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != c.Files[0].SHA256 || len(body) == 0 {
		t.Fatal("downloaded file does not match its recorded checksum")
	}
	// The spool copy goes once stored; the journal empties.
	waitFor(t, "spool cleanup", 3*time.Second, func() bool {
		left, _ := filepath.Glob(filepath.Join(stateDir, "captures", "spool", "*"))
		journal, _ := filepath.Glob(filepath.Join(stateDir, "sessions", "*.json"))
		return len(left) == 0 && len(journal) == 0
	})
}

func TestSessionsSurviveServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "127.0.0.1:0")
	addr := srv.addr
	runAgent(t, srv, t.TempDir(), enrolled(t, srv))
	ctx := context.Background()
	waitFor(t, "the host to enroll", 5*time.Second, func() bool { hs, _ := srv.admin.ListHosts(ctx); return len(hs) == 1 })
	if _, err := srv.admin.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: "x", Parameters: tripcap.PacketCaptureParameters{Target: "web1", TimeLimitInSeconds: 3}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Running", 2*time.Second, func() bool { return capture(t, srv, "x").Status == tripcap.StatusRunning })
	srv.stop()
	// The session ends (TimeExceeded) while the server is away.
	time.Sleep(4 * time.Second)
	srv = startServer(t, dir, addr)
	var c *tripcap.PacketCapture
	waitFor(t, "the result after the server returns", 10*time.Second, func() bool {
		c = capture(t, srv, "x")
		return c.Status.Terminal() && len(c.Files) == 1 && c.Files[0].Stored
	})
	if c.Status != tripcap.StatusStopped || c.StopReason != tripcap.StopTimeExceeded || c.Stats.Packets < 100 {
		t.Fatalf("after server restart: %s %s %d packets", c.Status, c.StopReason, c.Stats.Packets)
	}
}

func TestInterruptedSessionIsRecoveredAfterRestart(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	stateDir := t.TempDir()
	stopAgent := runAgent(t, srv, stateDir, enrolled(t, srv))
	ctx := context.Background()
	waitFor(t, "the host to enroll", 5*time.Second, func() bool { hs, _ := srv.admin.ListHosts(ctx); return len(hs) == 1 })
	if _, err := srv.admin.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: "x", Parameters: tripcap.PacketCaptureParameters{Target: "web1"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Running", 2*time.Second, func() bool { return capture(t, srv, "x").Status == tripcap.StatusRunning })
	time.Sleep(200 * time.Millisecond)
	stopAgent()
	// Make it look like a crash: the journal entry has no final report.
	journals, _ := filepath.Glob(filepath.Join(stateDir, "sessions", "*.json"))
	if len(journals) != 1 {
		t.Fatalf("%d journal entries", len(journals))
	}
	b, _ := os.ReadFile(journals[0])
	var e map[string]any
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	delete(e, "final")
	e["reported"] = false
	b, _ = json.Marshal(e)
	if err := os.WriteFile(journals[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	runAgent(t, srv, stateDir, "")
	var c *tripcap.PacketCapture
	waitFor(t, "the recovered file", 10*time.Second, func() bool {
		c = capture(t, srv, "x")
		return len(c.Files) == 1 && c.Files[0].Stored
	})
	if c.Status != tripcap.StatusError || c.StopReason != tripcap.StopAgentStopped || len(c.Errors) != 1 || c.Errors[0] != tripcap.CaptureErrAgentStopped {
		t.Fatalf("recovered session: %s %s %v", c.Status, c.StopReason, c.Errors)
	}
	if c.Files[0].Size == 0 {
		t.Fatal("recovered file is empty")
	}
}

// stuckEngine never finishes starting a capture: Start waits until its
// context ends, as a start held up by a slow interface would.
type stuckEngine struct{ starting chan struct{} }

func (e stuckEngine) Start(ctx context.Context, spec tripcap.CaptureSpec) (tripcap.CaptureSession, error) {
	close(e.starting)
	<-ctx.Done()
	return nil, fmt.Errorf("opening the capture socket: %w", ctx.Err())
}

// TestStartCutShortByShutdownIsAgentStopped: a capture still starting when
// the agent stops ends as every capture running at a shutdown does
// (Error, AgentStopped), not as one the host could not capture.
func TestStartCutShortByShutdownIsAgentStopped(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	stateDir := t.TempDir()
	engine := stuckEngine{starting: make(chan struct{})}
	stopAgent := runAgentWith(t, srv, stateDir, enrolled(t, srv), 200*time.Millisecond, engine)
	ctx := context.Background()
	waitFor(t, "the host to enroll", 5*time.Second, func() bool { hs, _ := srv.admin.ListHosts(ctx); return len(hs) == 1 })
	if _, err := srv.admin.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: "x", Parameters: tripcap.PacketCaptureParameters{Target: "web1"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-engine.starting:
	case <-time.After(5 * time.Second):
		t.Fatal("the capture never began to start")
	}
	stopAgent()
	runAgent(t, srv, stateDir, "")
	var c *tripcap.PacketCapture
	waitFor(t, "the capture's end", 10*time.Second, func() bool { c = capture(t, srv, "x"); return c.Status.Terminal() })
	if c.Status != tripcap.StatusError || c.StopReason != tripcap.StopAgentStopped || len(c.Errors) != 1 || c.Errors[0] != tripcap.CaptureErrAgentStopped {
		t.Fatalf("a start cut short by the agent's shutdown ended %s %s %v (%s)", c.Status, c.StopReason, c.Errors, c.ErrorMessage)
	}
}

// TestAgentHeartbeatsAtTheServersInterval: an agent configured for slow
// heartbeats follows the server's faster interval, so its host stays Online.
// TestOpenPollReplacesHeartbeats: the server counts an open long poll as a
// heartbeat, so an idle agent sends its first heartbeat (which tells it so)
// and then nothing but its poll, and its host stays Online.
func TestOpenPollReplacesHeartbeats(t *testing.T) {
	srv := startServerHeartbeat(t, t.TempDir(), "127.0.0.1:0", nil, 200*time.Millisecond)
	runAgentHeartbeat(t, srv, t.TempDir(), enrolled(t, srv), 200*time.Millisecond)
	ctx := context.Background()
	waitFor(t, "the host to enroll", 5*time.Second, func() bool { hs, _ := srv.admin.ListHosts(ctx); return len(hs) == 1 })
	before := srv.svc.Counters().Heartbeats.Load()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		h, err := srv.admin.GetHost(ctx, "web1")
		if err != nil {
			t.Fatal(err)
		}
		if h.State != tripcap.HostOnline {
			t.Fatalf("host went %s with its agent polling", h.State)
		}
	}
	// 3 s at 200 ms would be 15 heartbeats; a tick that falls between two
	// polls (every 5 s) may still send one.
	if n := srv.svc.Counters().Heartbeats.Load() - before; n > 2 {
		t.Errorf("%d heartbeats in 3 s while the poll was open, want at most 2", n)
	}
}

// TestAgentRefusesAnExistingFile: a capture whose localPath names a file
// that exists (an earlier capture's evidence) ends LocalFileFailed with the
// reason, and the file is left as it was.
func TestAgentRefusesAnExistingFile(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	stateDir := t.TempDir()
	runAgent(t, srv, stateDir, enrolled(t, srv))
	ctx := context.Background()
	waitFor(t, "the host to enroll", 5*time.Second, func() bool { hs, _ := srv.admin.ListHosts(ctx); return len(hs) == 1 })

	earlier := filepath.Join(stateDir, "captures", "incident.cap")
	if err := os.MkdirAll(filepath.Dir(earlier), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(earlier, []byte("evidence"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := tripcap.PacketCaptureParameters{Target: "web1", StorageLocation: tripcap.StorageLocation{LocalPath: "/var/captures/incident.cap"}}
	if _, err := srv.admin.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: "again", Parameters: p}); err != nil {
		t.Fatal(err)
	}
	var c *tripcap.PacketCapture
	waitFor(t, "the capture to end", 5*time.Second, func() bool { c = capture(t, srv, "again"); return c.Status.Terminal() })
	if c.StopReason != tripcap.StopLocalFileFailed || !strings.Contains(c.ErrorMessage, "exists already") {
		t.Fatalf("capture on an existing file: %s %s %q; want LocalFileFailed naming the file", c.Status, c.StopReason, c.ErrorMessage)
	}
	if b, _ := os.ReadFile(earlier); string(b) != "evidence" {
		t.Fatalf("the earlier file was changed: %q", b)
	}
}
