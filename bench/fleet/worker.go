package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
)

// The simulated agents run in worker processes, this program started with
// -worker: a process may not hold more than RLIMIT_NOFILE descriptors (20,000
// here, and not raisable without CAP_SYS_RESOURCE) and each agent holds two
// or three connections. The coordinator talks to each worker over its stdin
// and stdout, one JSON request and one JSON answer at a time; closing stdin
// stops the worker.

// workerRequest is one command to a worker.
type workerRequest struct {
	Op string `json:"op"` // grow, snapshot, profile, end
	// grow
	To       int     `json:"to,omitempty"` // the fleet's new global size
	Token    string  `json:"token,omitempty"`
	Rate     float64 `json:"rate,omitempty"` // this worker's share of the enrollment rate
	Inflight int     `json:"inflight,omitempty"`
	// Timeout bounds the growth: a server that stops accepting connections
	// would otherwise keep enrollments waiting forever.
	Timeout time.Duration `json:"timeout,omitempty"`
	// profile: start a CPU profile into Path, or stop it when Path is empty
	Path string `json:"path,omitempty"`
	// breaches: the window's breaches (every worker gets all; each takes its agents')
	Breaches []breach `json:"breaches,omitempty"`
}

// workerAnswer is a worker's answer.
type workerAnswer struct {
	Error   string           `json:"error,omitempty"`
	Counts  map[string]int64 `json:"counts,omitempty"`
	Samples []string         `json:"samples,omitempty"`
	Exited  int              `json:"exited"`
	Agents  int              `json:"agents"`
	Running int64            `json:"running"` // stub sessions running
	// With -metrics: the collectors' buffered and dropped points, and the
	// breaches' captures (snapshot).
	Waiting  int                      `json:"waiting,omitempty"`
	Dropped  uint64                   `json:"dropped,omitempty"`
	Breaches []breachResult           `json:"breaches,omitempty"`
	Sampled  *tripcap.LatencySnapshot `json:"sampled,omitempty"`
}

// workerConfig is what a worker is started with.
type workerConfig struct {
	server      string
	root        string
	heartbeat   time.Duration
	packetRate  float64
	index, of   int
	sourceAddrs int
	// nice runs the workers at this niceness (nice(1)), all their threads.
	nice int
	// metrics makes every agent ship simulated metrics.
	metrics bool
}

func (c workerConfig) args() []string {
	return []string{"-worker", "-worker-server", c.server, "-worker-root", c.root,
		"-heartbeat", c.heartbeat.String(), "-packet-rate", strconv.FormatFloat(c.packetRate, 'g', -1, 64),
		"-worker-index", strconv.Itoa(c.index), "-workers", strconv.Itoa(c.of), "-source-addrs", strconv.Itoa(c.sourceAddrs),
		"-metrics=" + strconv.FormatBool(c.metrics)}
}

// runWorker serves the coordinator on stdin and stdout until stdin closes.
func runWorker(cfg workerConfig, log *slog.Logger) error {
	if err := spreadLoopbackSources(cfg.sourceAddrs); err != nil {
		return err
	}
	f := newFleet(cfg.server, cfg.root, cfg.heartbeat, cfg.packetRate, cfg.index, cfg.of, cfg.metrics, log)
	var breaches []breach
	defer f.stop(60 * time.Second)
	var profile *os.File
	dec := json.NewDecoder(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	for {
		var req workerRequest
		if err := dec.Decode(&req); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("worker %d: read request: %w", cfg.index, err)
		}
		var ans workerAnswer
		switch req.Op {
		case "grow":
			ctx, cancel := context.WithTimeout(context.Background(), req.Timeout)
			if err := f.grow(ctx, req.To, req.Token, req.Rate, req.Inflight); err != nil {
				ans.Error = err.Error()
			}
			cancel()
		case "end":
			f.engine.endAll()
		case "snapshot":
			ans.Counts = f.ev.snapshot()
			ans.Samples = f.ev.sampleLines()
			ans.Waiting, ans.Dropped = f.buffered()
			ans.Breaches = f.breachResults(breaches)
			if f.metrics {
				s := f.sampled.Snapshot()
				ans.Sampled = &s
			}
		case "breaches":
			breaches = req.Breaches
			f.setBreaches(breaches)
		case "profile":
			if profile != nil {
				pprof.StopCPUProfile()
				profile.Close()
				profile = nil
			}
			if req.Path != "" {
				p, err := os.Create(req.Path)
				if err == nil {
					err = pprof.StartCPUProfile(p)
				}
				if err != nil {
					ans.Error = err.Error()
				} else {
					profile = p
				}
			}
		default:
			ans.Error = fmt.Sprintf("unknown op %q", req.Op)
		}
		ans.Exited, ans.Agents, ans.Running = f.exited(), len(f.agents), f.engine.running.Load()
		if err := enc.Encode(ans); err != nil {
			return fmt.Errorf("worker %d: write answer: %w", cfg.index, err)
		}
	}
}

// workers is the coordinator's side: every worker process.
type workers struct {
	procs []*workerProc
	size  int // the fleet's global size
	log   *slog.Logger
}

type workerProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	enc *json.Encoder
	dec *json.Decoder
}

// startWorkers starts n worker processes of this executable.
func startWorkers(cfg workerConfig, n int, log *slog.Logger) (*workers, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ws := &workers{log: log}
	for i := range n {
		c := cfg
		c.index, c.of = i, n
		cmd := exec.Command(exe, c.args()...)
		if c.nice != 0 {
			cmd = exec.Command("nice", append([]string{"-n", strconv.Itoa(c.nice), exe}, c.args()...)...)
		}
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			ws.stop()
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			ws.stop()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			ws.stop()
			return nil, fmt.Errorf("start worker %d: %w", i, err)
		}
		ws.procs = append(ws.procs, &workerProc{cmd: cmd, in: in, enc: json.NewEncoder(in), dec: json.NewDecoder(bufio.NewReader(out))})
	}
	return ws, nil
}

// all sends a request to every worker (build makes each one's) and returns their answers.
func (ws *workers) all(build func(i int) workerRequest) ([]workerAnswer, error) {
	answers := make([]workerAnswer, len(ws.procs))
	errs := make([]error, len(ws.procs))
	var wg sync.WaitGroup
	for i, p := range ws.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.enc.Encode(build(i)); err != nil {
				errs[i] = fmt.Errorf("worker %d: %w", i, err)
				return
			}
			if err := p.dec.Decode(&answers[i]); err != nil {
				errs[i] = fmt.Errorf("worker %d: %w", i, err)
				return
			}
			if answers[i].Error != "" {
				errs[i] = fmt.Errorf("worker %d: %s", i, answers[i].Error)
			}
		}()
	}
	wg.Wait()
	return answers, errors.Join(errs...)
}

// grow enrolls agents until the fleet has n, or fails after timeout.
func (ws *workers) grow(n int, token string, rate float64, inflight int, timeout time.Duration) error {
	k := float64(len(ws.procs))
	_, err := ws.all(func(int) workerRequest {
		return workerRequest{Op: "grow", To: n, Token: token, Rate: rate / k, Inflight: max(1, int(float64(inflight)/k)), Timeout: timeout}
	})
	if err == nil {
		ws.size = n
	}
	return err
}

// endSessions ends every running capture session on every worker.
func (ws *workers) endSessions() error {
	_, err := ws.all(func(int) workerRequest { return workerRequest{Op: "end"} })
	return err
}

// fleetSnapshot is every worker's counts, merged.
type fleetSnapshot struct {
	counts   map[string]int64
	samples  []string
	exited   int
	running  int64
	waiting  int
	dropped  uint64
	breaches []breachResult
	sampled  *histogram // the agents' sampling lateness, merged
}

func (ws *workers) snapshot() (fleetSnapshot, error) {
	answers, err := ws.all(func(int) workerRequest { return workerRequest{Op: "snapshot"} })
	s := fleetSnapshot{counts: map[string]int64{}}
	for _, a := range answers {
		for k, v := range a.Counts {
			s.counts[k] += v
		}
		s.samples = append(s.samples, a.Samples...)
		s.exited += a.Exited
		s.running += a.Running
		s.waiting += a.Waiting
		s.dropped += a.Dropped
		s.breaches = append(s.breaches, a.Breaches...)
		if a.Sampled != nil {
			if s.sampled == nil {
				s.sampled = &histogram{buckets: map[float64]uint64{}}
			}
			s.sampled.count += a.Sampled.Count
			for b, c := range a.Sampled.Cumulative() {
				s.sampled.buckets[b] += c
			}
		}
	}
	return s, err
}

// setBreaches sends the window's breaches to every worker.
func (ws *workers) setBreaches(bs []breach) error {
	_, err := ws.all(func(int) workerRequest { return workerRequest{Op: "breaches", Breaches: bs} })
	return err
}

// profile starts CPU profiles into pathFn(i), or stops them when pathFn is nil.
func (ws *workers) profile(pathFn func(i int) string) error {
	_, err := ws.all(func(i int) workerRequest {
		if pathFn == nil {
			return workerRequest{Op: "profile"}
		}
		return workerRequest{Op: "profile", Path: pathFn(i)}
	})
	return err
}

// cpu is the workers' CPU time.
func (ws *workers) cpu() time.Duration {
	var total time.Duration
	for _, p := range ws.procs {
		if d, err := procCPU(p.cmd.Process.Pid, false); err == nil {
			total += d
		}
	}
	return total
}

// stop closes the workers' stdin, which ends their agents, and waits for them.
func (ws *workers) stop() {
	for _, p := range ws.procs {
		p.in.Close()
	}
	for i, p := range ws.procs {
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				ws.log.Warn("worker ended badly", "worker", i, "err", err)
			}
		case <-time.After(90 * time.Second):
			ws.log.Warn("worker did not stop; killing it", "worker", i)
			_ = p.cmd.Process.Kill()
			<-done
		}
	}
}

// failures keeps the warnings and errors of a delta of two snapshots' counts.
func (s fleetSnapshot) failuresSince(before fleetSnapshot) map[string]int64 {
	return failures(before.counts, s.counts)
}
