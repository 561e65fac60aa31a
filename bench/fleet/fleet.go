package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/agent"
	"github.com/tripcap/tripcap/hostmetrics"
)

// stubEngine is an in-memory tripcap.CaptureEngine: its sessions count fake
// packets at a fixed rate and end on Stop or at their time limit. They write
// no files, so the agents upload nothing and the bench measures the control
// plane, not the disk.
type stubEngine struct {
	// rate is the fake packets a second each session counts; it makes every
	// session's counters change between two reports, as a real capture's do,
	// so each report is a write on the server.
	rate    float64
	running atomic.Int64

	mu       sync.Mutex
	sessions map[*stubSession]struct{} // running ones
}

// endAll ends every running session as if its time limit had passed: the
// bench ends a size's captures this way, which costs the server one final
// report each instead of an admin request and a long-poll round trip.
func (e *stubEngine) endAll() int {
	e.mu.Lock()
	all := make([]*stubSession, 0, len(e.sessions))
	for s := range e.sessions {
		all = append(all, s)
	}
	e.mu.Unlock()
	for _, s := range all {
		s.Stop(tripcap.StopTimeExceeded)
	}
	return len(all)
}

type stubSession struct {
	rate  float64
	start time.Time
	eng   *stubEngine

	mu     sync.Mutex
	stop   time.Time
	reason string
	timer  *time.Timer
	done   chan struct{}
}

func (e *stubEngine) Start(_ context.Context, spec tripcap.CaptureSpec) (tripcap.CaptureSession, error) {
	s := &stubSession{rate: e.rate, start: time.Now(), eng: e, done: make(chan struct{})}
	e.running.Add(1)
	e.mu.Lock()
	if e.sessions == nil {
		e.sessions = map[*stubSession]struct{}{}
	}
	e.sessions[s] = struct{}{}
	e.mu.Unlock()
	if limit := time.Duration(spec.Parameters.TimeLimitInSeconds) * time.Second; limit > 0 {
		// A timer, not a goroutine per session: a thousand sessions cost nothing while they wait.
		s.mu.Lock()
		s.timer = time.AfterFunc(limit, func() { s.Stop(tripcap.StopTimeExceeded) })
		s.mu.Unlock()
	}
	return s, nil
}

func (s *stubSession) Stats() tripcap.CaptureStats {
	s.mu.Lock()
	end := s.stop
	s.mu.Unlock()
	if end.IsZero() {
		end = time.Now()
	}
	packets := uint64(end.Sub(s.start).Seconds() * s.rate)
	return tripcap.CaptureStats{Packets: packets, Bytes: packets * 128}
}

// Files is empty but not nil: nil would make the agent look for the
// session's files in its spool directory.
func (s *stubSession) Files() []string { return []string{} }

func (s *stubSession) Stop(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stop.IsZero() {
		return
	}
	s.stop, s.reason = time.Now(), reason
	if s.timer != nil {
		s.timer.Stop()
	}
	s.eng.running.Add(-1)
	s.eng.mu.Lock()
	delete(s.eng.sessions, s)
	s.eng.mu.Unlock()
	close(s.done)
}

func (s *stubSession) Done() <-chan struct{} { return s.done }

func (s *stubSession) Result() tripcap.CaptureResult {
	st := s.Stats()
	s.mu.Lock()
	defer s.mu.Unlock()
	return tripcap.CaptureResult{StopReason: s.reason, Files: []string{}, Stats: st, StartTime: s.start, StopTime: s.stop}
}

// events counts what the simulated agents log. The agent reports every
// failed heartbeat, poll, report or upload as a warning, so counting its
// warnings and errors is how the bench sees protocol failures without
// reaching into the agent.
type events struct {
	mu      sync.Mutex
	counts  map[string]int64 // "LEVEL message"
	samples []string         // the first few warnings and errors, with their attributes
}

const maxSamples = 20

func newEvents() *events { return &events{counts: map[string]int64{}} }

func (ev *events) record(agentName string, r slog.Record) {
	key := r.Level.String() + " " + r.Message
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.counts[key]++
	if r.Level >= slog.LevelWarn && len(ev.samples) < maxSamples {
		msg := fmt.Sprintf("%s %s: %s", r.Time.Format("15:04:05.000"), agentName, key)
		r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
		ev.samples = append(ev.samples, msg)
	}
}

// snapshot returns a copy of the counts.
func (ev *events) snapshot() map[string]int64 {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	out := make(map[string]int64, len(ev.counts))
	for k, v := range ev.counts {
		out[k] = v
	}
	return out
}

func (ev *events) sampleLines() []string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return append([]string(nil), ev.samples...)
}

// failures keeps the warnings and errors of a delta of counts.
func failures(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 && (hasLevel(k, slog.LevelWarn) || hasLevel(k, slog.LevelError)) {
			out[k] = d
		}
	}
	return out
}

func hasLevel(key string, l slog.Level) bool {
	p := l.String() + " "
	return len(key) > len(p) && key[:len(p)] == p
}

// agentLog is one simulated agent's slog.Handler: it feeds events and notices enrollment.
type agentLog struct {
	ev *events
	sa *simAgent
}

func (h *agentLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *agentLog) Handle(_ context.Context, r slog.Record) error {
	switch r.Message {
	case "agent enrolled", "agent identity loaded":
		h.sa.markEnrolled()
	}
	h.ev.record(h.sa.name, r)
	return nil
}

func (h *agentLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *agentLog) WithGroup(string) slog.Handler      { return h }

// hostEngine is one host's view of the shared stub engine: it notes when
// the host starts a breach's capture (the responder's, by its name), the
// moment the capture is Running on the agent.
type hostEngine struct {
	*stubEngine
	sa *simAgent
}

func (h hostEngine) Start(ctx context.Context, spec tripcap.CaptureSpec) (tripcap.CaptureSession, error) {
	s, err := h.stubEngine.Start(ctx, spec)
	if err == nil && strings.HasPrefix(spec.Name, breachCapture) {
		h.sa.mu.Lock()
		h.sa.breachStarts = append(h.sa.breachStarts, time.Now())
		h.sa.mu.Unlock()
	}
	return s, err
}

// simAgent is one simulated host: a real agent.Agent on the stub engine.
type simAgent struct {
	name  string
	index int
	// With -metrics: its values and its collector.
	gen       *valueGen
	collector *hostmetrics.Collector

	mu           sync.Mutex
	breachStarts []time.Time // when the responder's captures started
	once         sync.Once
	enrolled     chan struct{}
	done         chan struct{}
	err          error // Run's error, valid once done is closed
}

func (sa *simAgent) markEnrolled() { sa.once.Do(func() { close(sa.enrolled) }) }

// fleet is one process's share of the simulated agents: those whose global
// index i has i%stride == offset. A worker process runs one fleet.
type fleet struct {
	server         string
	root           string // one state directory per agent under it
	heartbeat      time.Duration
	offset, stride int
	engine         *stubEngine
	// metrics gives every agent a collector of simulated values (-metrics).
	metrics bool
	sampled tripcap.LatencyHistogram // the agents' readings' lateness (valueGen.sampled)
	ev      *events
	log     *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	agents []*simAgent
}

func newFleet(server, root string, heartbeat time.Duration, packetRate float64, offset, stride int, metrics bool, log *slog.Logger) *fleet {
	ctx, cancel := context.WithCancel(context.Background())
	return &fleet{server: server, root: root, heartbeat: heartbeat, offset: offset, stride: stride, metrics: metrics,
		engine: &stubEngine{rate: packetRate}, ev: newEvents(), log: log, ctx: ctx, cancel: cancel}
}

func agentName(i int) string { return fmt.Sprintf("fleet-%05d", i) }

// share is how many of the first n agents are this fleet's.
func (f *fleet) share(n int) int { return max(0, (n-f.offset+f.stride-1)/f.stride) }

// grow starts agents until this fleet has its share of n, enrolling them
// with joinToken at most rate a second and with at most inflight
// enrollments under way, and returns once all have enrolled.
func (f *fleet) grow(ctx context.Context, n int, joinToken string, rate float64, inflight int) error {
	sem := make(chan struct{}, inflight)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var pending []*simAgent
	for len(f.agents) < f.share(n) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d agents started: %w", len(f.agents), ctx.Err())
		case sem <- struct{}{}:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		sa, err := f.start(len(f.agents)*f.stride+f.offset, joinToken)
		if err != nil {
			return err
		}
		pending = append(pending, sa)
		go func() {
			select {
			case <-sa.enrolled:
			case <-sa.done:
			}
			<-sem
		}()
	}
	for i, sa := range pending {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d new agents enrolled: %w", i, len(pending), ctx.Err())
		case <-sa.enrolled:
		case <-sa.done:
			return fmt.Errorf("agent %s stopped before enrolling: %w", sa.name, sa.err)
		}
	}
	return nil
}

// simInventory is simulated host i's inventory: its own name, interfaces
// (those valueGen simulates) and addresses (in 198.18.0.0/15 and fd00::/8),
// not the bench machine's, which each agent would otherwise read from the
// kernel as its own.
func simInventory(i int, name string) func() tripcap.Inventory {
	v4 := netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)})
	v6 := netip.AddrFrom16([16]byte{0: 0xfd, 1: 0x00, 2: 0xf1, 3: 0xee, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
	mac := func(n byte) string {
		return net.HardwareAddr{0x02, 0xf1, byte(i >> 16), byte(i >> 8), byte(i), n}.String()
	}
	inv := tripcap.Inventory{Hostname: name, OS: "Simulated Linux", Kernel: "6.1.0-fleet", AgentVersion: tripcap.Version,
		Interfaces: []tripcap.Interface{
			{Name: "lo", Index: 1, MTU: 65536, Up: true, Loopback: true, Addresses: []string{"127.0.0.1/8", "::1/128"}},
			{Name: "eth0", Index: 2, MAC: mac(0), MTU: 1500, Up: true, Addresses: []string{netip.PrefixFrom(v4, 15).String(), netip.PrefixFrom(v6, 64).String()}},
			{Name: "eth1", Index: 3, MAC: mac(1), MTU: 1500, Up: true},
		}}
	return func() tripcap.Inventory { return inv }
}

func (f *fleet) start(i int, joinToken string) (*simAgent, error) {
	sa := &simAgent{name: agentName(i), index: i, enrolled: make(chan struct{}), done: make(chan struct{})}
	dir := filepath.Join(f.root, sa.name)
	log := slog.New(&agentLog{ev: f.ev, sa: sa})
	cfg := agent.Config{
		Server: f.server, JoinToken: joinToken, Name: sa.name,
		StateDir: filepath.Join(dir, "state"), CaptureDir: filepath.Join(dir, "captures"),
		Engine: hostEngine{f.engine, sa}, Logger: log,
		HeartbeatInterval: f.heartbeat, Inventory: simInventory(i, sa.name),
	}
	if f.metrics {
		// The real collector and shipper, on simulated counters.
		sa.gen = newValueGen(uint64(i) + 1)
		sa.gen.sampled = &f.sampled
		c, err := hostmetrics.New(hostmetrics.Config{Host: sa.name, Read: sa.gen.Read, Now: sa.gen.Now, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("agent %s: metrics: %w", sa.name, err)
		}
		sa.collector, cfg.Metrics = c, c
		cfg.Labels = map[string]string{fleetLabel: fleetLabelValue}
	}
	a, err := agent.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", sa.name, err)
	}
	f.agents = append(f.agents, sa)
	go func() {
		defer close(sa.done)
		sa.err = a.Run(f.ctx)
		if sa.err != nil && f.ctx.Err() == nil {
			f.log.Error("simulated agent stopped", "agent", sa.name, "err", sa.err)
		}
	}()
	return sa, nil
}

// setBreaches gives each of this fleet's agents its breaches of bs (by
// global index) and forgets the captures of earlier ones.
func (f *fleet) setBreaches(bs []breach) {
	by := map[int][]span{}
	for _, b := range bs {
		by[b.Agent] = append(by[b.Agent], b.Span)
	}
	for _, sa := range f.agents {
		if sa.gen != nil {
			sa.gen.setBreaches(by[sa.index])
		}
		sa.mu.Lock()
		sa.breachStarts = nil
		sa.mu.Unlock()
	}
}

// breachResults says, for each breach of bs this fleet's agents have, when
// its capture started: the first breach capture at or after its first
// breaching second.
func (f *fleet) breachResults(bs []breach) []breachResult {
	by := map[int]*simAgent{}
	for _, sa := range f.agents {
		by[sa.index] = sa
	}
	var out []breachResult
	for _, b := range bs {
		sa := by[b.Agent]
		if sa == nil {
			continue
		}
		r := breachResult{breach: b}
		from := time.Unix(b.Span.From, 0)
		sa.mu.Lock()
		for _, t := range sa.breachStarts {
			if !t.Before(from) && (r.Started.IsZero() || t.Before(r.Started)) {
				r.Started = t
			}
		}
		sa.mu.Unlock()
		out = append(out, r)
	}
	return out
}

// buffered sums the collectors' waiting and dropped points.
func (f *fleet) buffered() (waiting int, dropped uint64) {
	for _, sa := range f.agents {
		if sa.collector != nil {
			w, d := sa.collector.Buffered()
			waiting += w
			dropped += d
		}
	}
	return waiting, dropped
}

// stop ends every agent (their sessions end as AgentStopped, journaled) and waits for them.
func (f *fleet) stop(timeout time.Duration) {
	f.cancel()
	deadline := time.After(timeout)
	for _, sa := range f.agents {
		select {
		case <-sa.done:
		case <-deadline:
			f.log.Warn("some simulated agents did not stop in time")
			return
		}
	}
}

// exited counts agents whose Run returned while the fleet was running.
func (f *fleet) exited() int {
	n := 0
	for _, sa := range f.agents {
		select {
		case <-sa.done:
			n++
		default:
		}
	}
	return n
}

// spreadLoopbackSources makes the agents' connections come from n loopback
// addresses (127.0.0.2 …) in turn. 10,000 agents hold about 20,000
// connections (a long poll plus a heartbeat connection each) to one server
// address, close to the 28,000 ephemeral ports one source address has, and a
// ramp step closing and opening many leaves TIME_WAIT behind. Every
// tchttp.Client clones http.DefaultTransport, so changing its dialer here,
// before any client exists, reaches the agents without touching their code.
func spreadLoopbackSources(n int) error {
	if n <= 1 {
		return nil
	}
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return errors.New("http.DefaultTransport is not an *http.Transport")
	}
	var next atomic.Uint32
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		i := next.Add(1) % uint32(n)
		d := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second,
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}}
		return d.DialContext(ctx, network, addr)
	}
	return nil
}

// agentStateRoot picks a tmpfs for the agents' state directories when there
// is one: the simulated hosts' disks are not the server's, and 10,000
// journals fsynced on the server's disk would measure that disk.
func agentStateRoot(workdir string) (string, error) {
	base := workdir
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	return os.MkdirTemp(base, "tripcap-fleet-agents-")
}
