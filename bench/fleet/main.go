// Command fleet measures the control plane under a fleet of simulated agents:
// the real agent (package agent, its HTTP client and protocol) on an
// in-memory capture engine, thousands of them in this process, against one
// `tripcap server` child process, so that the server's CPU is measured apart
// from the agents'.
//
// For each fleet size of the ramp it enrolls agents up to that size, lets
// them settle, measures the idle fleet (heartbeats and long polls only),
// then creates -captures captures spread over the hosts and, while they run
// and report every second, times the admin API (create, get by id and by
// name, list a page and all, delete) at a bounded rate. A size is sustained
// when, over that window, no agent logged a failure, no host went Offline,
// the server stayed under -max-server-cpu, and every single-request
// operation's p99 stayed under -p99.
//
//	go build -o /tmp/tripcap ./cmd/tripcap
//	go run ./bench/fleet -tripcap /tmp/tripcap -db sqlite -ramp 1000,2500,5000,10000
//	go run ./bench/fleet -tripcap /tmp/tripcap -db postgres -dsn "$(scripts/start-postgres)" -agents 5000
//	go run ./bench/fleet -report sqlite.json postgres.json   # the tables of saved -json results
//
// bench/fleet/run.sh runs the ramp on both backends and prints the tables.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tripcap/tripcap"
)

type options struct {
	db, dsn       string
	agents        int
	ramp          []int
	duration      time.Duration
	idle          time.Duration
	settle        time.Duration
	heartbeat     time.Duration
	captures      int
	probeRate     float64
	listAllRate   float64
	enrollRate    float64
	inflight      int
	packetRate    float64
	maxServerCPU  float64
	p99           time.Duration
	tripcapBin    string
	workdir       string
	sourceAddrs   int
	nofile        uint64
	profileDir    string
	jsonOut       bool
	keep          bool
	stopOnFailure bool
	workers       int
	agentNice     int
	enrollTimeout time.Duration
	serverKind    string
	note          string
	// metrics: every agent ships its points, the server evaluates rules on
	// them, and breachRate of the hosts a minute breach (monitor.go).
	metrics    bool
	breachRate float64
}

func main() {
	var o options
	var ramp, report string
	flag.StringVar(&o.db, "db", "sqlite", "backend: sqlite or postgres")
	flag.StringVar(&o.dsn, "dsn", os.Getenv("TRIPCAP_TEST_POSTGRES"), "PostgreSQL cluster URL (postgres://…); the run creates and drops its own database in it")
	flag.IntVar(&o.agents, "agents", 1000, "fleet size, when -ramp is not given")
	flag.StringVar(&ramp, "ramp", "", "fleet sizes to grow through, e.g. 1000,2500,5000,10000")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "steady-state window of each size, with the captures running and the API probed")
	flag.DurationVar(&o.idle, "idle", 20*time.Second, "window of each size with the fleet idle (no captures) before that; 0 skips it")
	flag.DurationVar(&o.settle, "settle", 0, "wait after the fleet grew, before measuring (default: one heartbeat interval + 5s)")
	flag.DurationVar(&o.heartbeat, "heartbeat", 10*time.Second, "agent heartbeat interval (the server's --heartbeat too)")
	flag.IntVar(&o.captures, "captures", 1000, "captures running during the steady-state window, spread over the hosts")
	flag.Float64Var(&o.probeRate, "probe-rate", 25, "API probe requests a second, shared by create, get by id, get by name, list a page, delete")
	flag.Float64Var(&o.listAllRate, "list-all-rate", 0.5, "full capture listings (every page) a second, besides -probe-rate")
	flag.Float64Var(&o.enrollRate, "enroll-rate", 250, "agents started a second while the fleet grows")
	flag.IntVar(&o.inflight, "enroll-inflight", 64, "agents enrolling at once, at most")
	flag.DurationVar(&o.enrollTimeout, "enroll-timeout", 3*time.Minute, "a size whose agents have not all enrolled after this fails")
	flag.Float64Var(&o.packetRate, "packet-rate", 100, "fake packets a second each capture counts")
	flag.Float64Var(&o.maxServerCPU, "max-server-cpu", 0.8, "a size is sustained only if the server (plus PostgreSQL) used less CPU than this, in cores")
	flag.DurationVar(&o.p99, "p99", 100*time.Millisecond, "a size is sustained only if each single-request API operation's p99 is under this")
	flag.StringVar(&o.tripcapBin, "tripcap", "", "tripcap binary (default: go build ./cmd/tripcap into the work directory)")
	flag.StringVar(&o.workdir, "workdir", "", "work directory for the server's data and logs (default: a new temporary directory)")
	flag.IntVar(&o.sourceAddrs, "source-addrs", 4, "loopback source addresses the agents' connections spread over (127.0.0.2…)")
	flag.Uint64Var(&o.nofile, "nofile", 65536, "RLIMIT_NOFILE for this process and the server")
	flag.StringVar(&o.profileDir, "profile", "", "profile each steady-state window into this directory: the machine with perf, the agent processes with runtime/pprof")
	flag.BoolVar(&o.jsonOut, "json", false, "print the results as JSON instead of tables")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory and the PostgreSQL database")
	flag.BoolVar(&o.stopOnFailure, "stop-on-failure", false, "end the ramp at the first size that is not sustained")
	flag.IntVar(&o.agentNice, "agent-nice", 0, "run the agent processes at this niceness, so that on a small machine the simulated fleet (standing for other machines) yields the CPU to the server")
	flag.IntVar(&o.workers, "agent-procs", 0, "processes the agents are spread over (default: one per 3,000 agents of the largest size)")
	flag.StringVar(&o.serverKind, "server", "binary", "binary: the real `tripcap server`; inproc: the same control plane in a child of this program, with pprof (for -profile)")
	flag.BoolVar(&o.metrics, "metrics", false, "every agent ships 1-second metrics (host and two interfaces' series) through the real collector and shipper; the server holds 10 rules on every host and a responder captures on breaching hosts")
	flag.Float64Var(&o.breachRate, "breach-rate", 0.01, "with -metrics: the share of hosts that breach a minute during the load window")
	flag.StringVar(&o.note, "note", "", "a note kept with the results (run.sh: the tree's commit)")
	flag.StringVar(&report, "report", "", "print the tables of saved -json results (comma-separated files) and exit")
	var sc serveConfig
	serve := flag.Bool("serve", false, "internal: run the profiling server")
	flag.StringVar(&sc.listen, "serve-listen", "", "internal: the profiling server's API address")
	flag.StringVar(&sc.pprofListen, "serve-pprof", "", "internal: the profiling server's pprof address")
	flag.StringVar(&sc.data, "serve-data", "", "internal: the profiling server's data directory")
	flag.StringVar(&sc.db, "serve-db", "", "internal: the profiling server's database")
	flag.StringVar(&sc.tokenFile, "serve-token-file", "", "internal: the profiling server's admin token file")
	var wc workerConfig
	worker := flag.Bool("worker", false, "internal: run a share of the agents for a coordinating fleet process")
	flag.StringVar(&wc.server, "worker-server", "", "internal: the server's URL")
	flag.StringVar(&wc.root, "worker-root", "", "internal: the agents' state directories' parent")
	flag.IntVar(&wc.index, "worker-index", 0, "internal: this worker's index")
	flag.IntVar(&wc.of, "workers", 1, "internal: how many workers there are")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if *serve {
		sc.heartbeat = o.heartbeat
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := runServe(ctx, sc, log); err != nil {
			fmt.Fprintln(os.Stderr, "fleet serve:", err)
			os.Exit(1)
		}
		return
	}
	if *worker {
		wc.heartbeat, wc.packetRate, wc.sourceAddrs, wc.metrics = o.heartbeat, o.packetRate, o.sourceAddrs, o.metrics
		_ = raiseNofile(o.nofile)
		if err := runWorker(wc, log.With("worker", wc.index)); err != nil {
			fmt.Fprintln(os.Stderr, "fleet worker:", err)
			os.Exit(1)
		}
		return
	}
	if report != "" {
		if err := printReports(os.Stdout, strings.Split(report, ",")); err != nil {
			fmt.Fprintln(os.Stderr, "fleet:", err)
			os.Exit(1)
		}
		return
	}
	var err error
	if o.ramp, err = parseRamp(ramp, o.agents); err != nil {
		fmt.Fprintln(os.Stderr, "fleet: -ramp:", err)
		os.Exit(2)
	}
	if o.settle == 0 {
		o.settle = o.heartbeat + 5*time.Second
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o, log)
	if res != nil {
		if o.jsonOut {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(res)
		} else {
			printTable(os.Stdout, res)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

func parseRamp(s string, agents int) ([]int, error) {
	if s == "" {
		if agents < 1 {
			return nil, errors.New("-agents must be at least 1")
		}
		return []int{agents}, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a fleet size", f)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("sizes must grow: %d after %d", n, out[len(out)-1])
		}
		out = append(out, n)
	}
	return out, nil
}

// runResult is one backend's ramp.
type runResult struct {
	Backend   string    `json:"backend"`
	DB        string    `json:"db"`
	Command   string    `json:"command"`
	Note      string    `json:"note,omitempty"`
	Started   time.Time `json:"started"`
	Machine   machine   `json:"machine"`
	Heartbeat string    `json:"heartbeat"`
	Captures  int       `json:"captures"`
	ProbeRate float64   `json:"probeRate"`
	ListAll   float64   `json:"listAllRate"`
	Window    string    `json:"window"`
	// Metrics says the run's agents shipped metrics under Rules rules
	// each, BreachRate of the hosts breaching a minute.
	Metrics    bool         `json:"metrics,omitempty"`
	Rules      int          `json:"rules,omitempty"`
	BreachRate float64      `json:"breachRate,omitempty"`
	Steps      []stepResult `json:"steps"`
	// Sustained is the largest fleet size that passed with the captures
	// running and the API probed; SustainedIdle the largest whose idle
	// fleet passed (0 if none).
	Sustained     int `json:"sustained"`
	SustainedIdle int `json:"sustainedIdle"`
}

type machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpuModel"`
	MemoryGiB int64  `json:"memoryGiB"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	Version   string `json:"tripcapVersion"`
}

// stepResult is one fleet size.
type stepResult struct {
	Agents          int     `json:"agents"`
	EnrollSeconds   float64 `json:"enrollSeconds"`
	EnrollPerSecond float64 `json:"enrollPerSecond"`
	// Idle is the fleet alone: heartbeats and long polls.
	Idle *window `json:"idle,omitempty"`
	// SetupSeconds is how long creating the captures and seeing them all
	// Running took; TeardownSeconds ending and deleting them.
	SetupSeconds    float64 `json:"setupSeconds"`
	TeardownSeconds float64 `json:"teardownSeconds"`
	// Load is the steady-state window: the fleet, the running captures, the probe.
	Load        *window            `json:"load,omitempty"`
	API         map[string]latency `json:"api,omitempty"`
	ProbeErrors []string           `json:"probeErrors,omitempty"`
	// Sustained says whether the size passed over the load window; Failed
	// says why not.
	Sustained bool     `json:"sustained"`
	Failed    []string `json:"failed,omitempty"`
	// IdleSustained is the same verdict over the idle window (no captures, no probe).
	IdleSustained bool     `json:"idleSustained"`
	IdleFailed    []string `json:"idleFailed,omitempty"`
}

// window is what one measurement window saw.
type window struct {
	Seconds    float64  `json:"seconds"`
	CPU        cpuUsage `json:"cpu"`
	ServerRSS  int64    `json:"serverRSSMiB"`
	Goroutines float64  `json:"serverGoroutines"`
	// AgentFailures counts the agents' warnings and errors by message.
	AgentFailures map[string]int64 `json:"agentFailures,omitempty"`
	// AgentFailureSamples are the first few, with their errors.
	AgentFailureSamples []string `json:"agentFailureSamples,omitempty"`
	// HostStates counts the fleet's hosts by state at the window's end.
	HostStates map[string]int `json:"hostStates"`
	// WentOffline counts the server's "host went offline" log lines in the window.
	WentOffline int `json:"wentOffline"`
	// ServerErrors counts the server's "request failed" log lines (internal errors).
	ServerErrors int `json:"serverErrors"`
	// AcceptErrors counts the server's "too many open files" accept errors:
	// it ran out of descriptors (RLIMIT_NOFILE) and left connections waiting.
	AcceptErrors int `json:"acceptErrors"`
	// ServerFDs is the server's open descriptors at the window's end.
	ServerFDs int `json:"serverFDs"`
	// Unavailable lists the bench's requests to the server that failed
	// while measuring (metrics, host and capture listings).
	Unavailable []string `json:"unavailable,omitempty"`
	// CaptureStates counts the window's captures by status at its end.
	CaptureStates map[tripcap.PacketCaptureStatus]int `json:"captureStates,omitempty"`
	// Routes is the server's own view of each route in the window.
	Routes            map[string]routeStats `json:"routes"`
	RequestsPerSecond float64               `json:"requestsPerSecond"`
	AgentsExited      int                   `json:"agentsExited"`
	// Metrics is the metric path's window (-metrics).
	Metrics *metricsWindow `json:"metrics,omitempty"`
}

func run(ctx context.Context, o options, log *slog.Logger) (*runResult, error) {
	if o.db != "sqlite" && o.db != "postgres" {
		return nil, fmt.Errorf("-db: %q is not sqlite or postgres", o.db)
	}
	if err := raiseNofile(o.nofile); err != nil {
		// Without CAP_SYS_RESOURCE the hard limit stays; Go raised the soft
		// limit to it at startup, and the server inherits it.
		log.Warn("could not raise RLIMIT_NOFILE; the server keeps the inherited limit", "want", o.nofile, "have", procNofile(os.Getpid()), "err", err)
	}
	workdir := o.workdir
	if workdir == "" {
		var err error
		if workdir, err = os.MkdirTemp("", "tripcap-fleet-"); err != nil {
			return nil, err
		}
	}
	if !o.keep && o.workdir == "" {
		defer os.RemoveAll(workdir)
	}
	if o.serverKind != "binary" && o.serverKind != "inproc" {
		return nil, fmt.Errorf("-server: %q is not binary or inproc", o.serverKind)
	}
	bin := o.tripcapBin
	if bin == "" && o.serverKind == "binary" {
		bin = filepath.Join(workdir, "tripcap")
		log.Info("building tripcap", "out", bin)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/tripcap/tripcap/cmd/tripcap")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("build tripcap (or give -tripcap): %w", err)
		}
	}

	dataDir := filepath.Join(workdir, "server-"+o.db)
	var db *database
	switch o.db {
	case "sqlite":
		db = sqliteDatabase(dataDir)
	case "postgres":
		if o.dsn == "" {
			return nil, errors.New("-db postgres needs -dsn (e.g. -dsn \"$(scripts/start-postgres)\")")
		}
		var err error
		if db, err = postgresDatabase(ctx, o.dsn); err != nil {
			return nil, err
		}
		if !o.keep {
			defer func() {
				dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := db.drop(dctx); err != nil {
					log.Warn("dropping the run's database", "err", err)
				}
			}()
		}
	}

	res := &runResult{Backend: o.db, DB: redact(db.url), Command: strings.Join(os.Args, " "), Note: o.note, Started: time.Now().UTC(),
		Machine: describeMachine(), Heartbeat: o.heartbeat.String(), Captures: o.captures, ProbeRate: o.probeRate, ListAll: o.listAllRate, Window: o.duration.String()}

	srv, err := startServer(ctx, serverConfig{bin: bin, dataDir: dataDir, db: db.url, heartbeat: o.heartbeat, inproc: o.serverKind == "inproc"}, log)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	log.Info("server started", "url", srv.url, "pid", srv.pid(), "db", redact(db.url), "nofile", procNofile(srv.pid()), "postgresPid", db.pid)

	api, err := newAdminAPI(srv.url, srv.adminToken, log)
	if err != nil {
		return res, err
	}
	root, err := agentStateRoot(workdir)
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(root)
	procs := o.workers
	if procs < 1 {
		procs = (slices.Max(o.ramp) + 2999) / 3000
	}
	if o.metrics {
		if res.Rules, err = api.setupMonitoring(ctx); err != nil {
			return res, err
		}
		res.Metrics, res.BreachRate = true, o.breachRate
		log.Info("monitoring set up", "rules", res.Rules)
	}
	fl, err := startWorkers(workerConfig{server: srv.url, root: root, heartbeat: o.heartbeat, packetRate: o.packetRate, sourceAddrs: o.sourceAddrs, nice: o.agentNice, metrics: o.metrics}, procs, log)
	if err != nil {
		return res, err
	}
	defer fl.stop()
	log.Info("agent processes started", "processes", procs)

	b := &bench{o: o, log: log, srv: srv, db: db, api: api, fleet: fl}
	for i, n := range o.ramp {
		step, err := b.step(ctx, i, n)
		if step != nil {
			res.Steps = append(res.Steps, *step)
			if step.Sustained {
				res.Sustained = n
			}
			if step.IdleSustained {
				res.SustainedIdle = n
			}
			log.Info("size done", "agents", n, "sustained", step.Sustained, "failed", step.Failed)
		}
		if err != nil {
			if step != nil {
				res.Steps[len(res.Steps)-1].Failed = append(step.Failed, "not measured: "+err.Error())
			}
			return res, fmt.Errorf("%d agents: %w", n, err)
		}
		if o.stopOnFailure && !step.Sustained {
			break
		}
	}
	if snap, err := fl.snapshot(); err == nil && len(snap.samples) > 0 {
		log.Warn("agent warnings and errors (first few)", "lines", strings.Join(snap.samples, "\n"))
	}
	return res, nil
}

// bench is one run's parts.
type bench struct {
	o     options
	log   *slog.Logger
	srv   *serverProc
	db    *database
	api   *adminAPI
	fleet *workers
}

// step grows the fleet to n and measures it.
func (b *bench) step(ctx context.Context, index, n int) (*stepResult, error) {
	st := &stepResult{Agents: n}
	grow := n - b.fleet.size
	jt, err := b.api.c.CreateJoinToken(ctx, 2*time.Hour, grow)
	if err != nil {
		return nil, fmt.Errorf("create join token: %w", err)
	}
	b.log.Info("growing the fleet", "from", b.fleet.size, "to", n)
	start := time.Now()
	if err := b.fleet.grow(n, jt.Token, b.o.enrollRate, b.o.inflight, b.o.enrollTimeout); err != nil {
		st.EnrollSeconds = time.Since(start).Seconds()
		return st, fmt.Errorf("enroll: %w", err)
	}
	st.EnrollSeconds = time.Since(start).Seconds()
	st.EnrollPerSecond = float64(grow) / st.EnrollSeconds
	b.log.Info("fleet enrolled", "agents", n, "seconds", round(st.EnrollSeconds), "perSecond", round(st.EnrollPerSecond))
	if err := sleep(ctx, b.o.settle); err != nil {
		return st, err
	}
	names := make([]string, n)
	for i := range names {
		names[i] = agentName(i)
	}

	if b.o.idle > 0 {
		b.log.Info("measuring the idle fleet", "agents", n, "for", b.o.idle)
		if st.Idle, err = b.measure(ctx, b.o.idle, names, nil, nil, nil); err != nil {
			return st, err
		}
	}
	if st.Idle != nil {
		st.IdleFailed = b.judge(n, st.Idle, nil)
		st.IdleSustained = len(st.IdleFailed) == 0
	}
	if b.o.captures == 0 {
		st.Failed, st.Sustained = st.IdleFailed, st.IdleSustained
		return st, nil
	}

	// The captures: spread evenly over the fleet, one per host while there
	// are more hosts than captures.
	start = time.Now()
	capNames := make([]string, b.o.captures)
	targets := make([]string, b.o.captures)
	for i := range capNames {
		capNames[i] = fmt.Sprintf("fleet-s%d-%05d", index, i)
		if b.o.captures <= n {
			targets[i] = names[i*n/b.o.captures]
		} else {
			targets[i] = names[i%n]
		}
	}
	b.log.Info("creating captures", "captures", b.o.captures)
	ids, err := b.api.createCaptures(ctx, capNames, targets, 8)
	if err != nil {
		return st, err
	}
	if err := b.api.waitRunning(ctx, ids, 2*time.Minute); err != nil {
		return st, fmt.Errorf("captures did not all start: %w", err)
	}
	st.SetupSeconds = time.Since(start).Seconds()
	b.log.Info("captures running", "captures", len(ids), "setupSeconds", round(st.SetupSeconds))
	// Let the reports' first writes (start times, first stats) pass.
	if err := sleep(ctx, 3*time.Second); err != nil {
		return st, err
	}

	running := make([]*tripcap.PacketCapture, len(ids))
	for i, id := range ids {
		running[i] = &tripcap.PacketCapture{ID: id, Name: capNames[i]}
	}
	p := &probe{api: b.api, hosts: names, running: running, prefix: fmt.Sprintf("probe-s%d", index)}
	var breaches []breach
	if b.o.metrics {
		now := time.Now()
		breaches = scheduleBreaches(n, b.o.breachRate, now.Add(2*time.Second), now.Add(b.o.duration), rand.New(rand.NewPCG(uint64(index), uint64(n))))
		if err := b.fleet.setBreaches(breaches); err != nil {
			return st, err
		}
	}
	b.log.Info("measuring the steady state", "agents", n, "captures", len(ids), "for", b.o.duration, "breaches", len(breaches))
	if st.Load, err = b.measure(ctx, b.o.duration, names, ids, p, breaches); err != nil {
		return st, err
	}
	if b.o.metrics {
		if err := b.fleet.setBreaches(nil); err != nil {
			return st, err
		}
	}
	st.API = p.results()
	st.ProbeErrors = p.errLog
	st.Failed = b.judge(n, st.Load, st.API)
	st.Sustained = len(st.Failed) == 0

	// End the sessions on the agents' side, as a time limit would, then
	// delete the ended captures: deleting running ones costs a write, a
	// long-poll round trip and a final report each, and a saturated server
	// can take minutes over it. The next size starts from no captures.
	b.log.Info("ending the captures", "captures", len(ids))
	start = time.Now()
	if err := b.fleet.endSessions(); err != nil {
		return st, err
	}
	if err := b.api.waitEnded(ctx, ids, 3*time.Minute); err != nil {
		return st, fmt.Errorf("captures did not all end: %w", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := b.api.deleteCaptures(dctx, ids, 8); err != nil {
		return st, err
	}
	st.TeardownSeconds = time.Since(start).Seconds()
	b.log.Info("captures ended and deleted", "seconds", round(st.TeardownSeconds))
	return st, nil
}

// measure samples everything over d, running p (if any) meanwhile.
func (b *bench) measure(ctx context.Context, d time.Duration, names, captures []string, p *probe, breaches []breach) (*window, error) {
	if !b.srv.alive() {
		return nil, errors.New("the server exited")
	}
	// The server's view (metrics, host states) is best effort: a server out
	// of descriptors does not accept the bench's requests either, and the
	// window is still worth recording (CPU, agents' failures), failed.
	var unavailable []string
	scrape0, err := b.srv.scrapeMetrics(ctx)
	if err != nil {
		unavailable = append(unavailable, err.Error())
	}
	offline0, _ := b.srv.logCount("host went offline")
	failed0, _ := b.srv.logCount("request failed")
	emfile0, _ := b.srv.logCount("too many open files")
	ev0, err := b.fleet.snapshot()
	if err != nil {
		return nil, err
	}
	cpu0 := b.sampleCPU()

	stopProfile := b.startProfile(ctx, d, len(names))
	wctx, cancel := context.WithTimeout(ctx, d)
	if p != nil {
		p.run(wctx, b.o.probeRate, b.o.listAllRate)
	} else {
		<-wctx.Done()
	}
	cancel()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	cpu1 := b.sampleCPU()
	stopProfile()
	if !b.srv.alive() {
		return nil, errors.New("the server exited during the window")
	}
	w := &window{Seconds: round(cpu1.at.Sub(cpu0.at).Seconds()), CPU: cpu0.until(cpu1), ServerRSS: procRSS(b.srv.pid()) >> 20}
	ev1, err := b.fleet.snapshot()
	if err != nil {
		return nil, err
	}
	w.AgentFailures = ev1.failuresSince(ev0)
	if len(w.AgentFailures) > 0 {
		w.AgentFailureSamples = ev1.samples
	}
	w.AgentsExited = ev1.exited - ev0.exited
	offline1, _ := b.srv.logCount("host went offline")
	failed1, _ := b.srv.logCount("request failed")
	emfile1, _ := b.srv.logCount("too many open files")
	w.WentOffline, w.ServerErrors, w.AcceptErrors = offline1-offline0, failed1-failed0, emfile1-emfile0
	w.ServerFDs = procFDs(b.srv.pid())

	if scrape1, err := b.srv.scrapeMetrics(ctx); err != nil {
		unavailable = append(unavailable, err.Error())
	} else if scrape0 != nil {
		w.Goroutines = scrape1.goroutines
		w.Routes = routeDelta(scrape0.routes, scrape1.routes)
		if b.o.metrics {
			w.Metrics = metricsDelta(scrape0, scrape1, w.Seconds, len(names))
			w.Metrics.AgentDropped, w.Metrics.AgentWaiting = ev1.dropped-ev0.dropped, ev1.waiting
			w.Metrics.Breaches = summarizeBreaches(ev1.breaches)
			_, w.Metrics.SampledOver1s, _, w.Metrics.SampledP99ms = histDelta(ev0.sampled, ev1.sampled, 1)
			if len(names) > 0 {
				w.Metrics.ServerRSSKiBPerHost = round(float64(procRSS(b.srv.pid())) / 1024 / float64(len(names)))
			}
		}
		var reqs uint64
		for route, r := range w.Routes {
			if route != "" {
				reqs += r.Count
			}
		}
		w.RequestsPerSecond = round(float64(reqs) / w.Seconds)
	}
	if w.HostStates, err = b.api.hostStates(ctx, names); err != nil {
		unavailable = append(unavailable, err.Error())
	}
	if len(captures) > 0 {
		if w.CaptureStates, err = b.api.captureStatuses(ctx, captures); err != nil {
			unavailable = append(unavailable, err.Error())
		}
	}
	w.Unavailable = unavailable
	b.log.Info("window", "agents", len(names), "serverCores", round(w.CPU.Server), "dbCores", round(w.CPU.DB),
		"benchCores", round(w.CPU.Bench), "coordinatorCores", round(w.CPU.Coordinator), "machineBusy", round(w.CPU.Machine), "reqPerSec", w.RequestsPerSecond,
		"hosts", w.HostStates, "agentFailures", w.AgentFailures, "wentOffline", w.WentOffline, "fds", w.ServerFDs,
		"acceptErrors", w.AcceptErrors, "unavailable", w.Unavailable)
	if m := w.Metrics; m != nil {
		b.log.Info("metrics window", "pointsPerSec", m.PointsPerSecond, "expected", m.ExpectedPerSecond, "late", m.Late,
			"delayP99LeMs", m.DelayP99ms, "refused", m.Refused, "agentDropped", m.AgentDropped, "evaluations", m.Evaluations,
			"lagOver1s", m.LagOver1s, "lagP99LeMs", m.LagP99ms, "breaches", m.Breaches.Scheduled, "captured", m.Breaches.Captured,
			"breachP95Ms", m.Breaches.P95ms, "agentSampledP99LeMs", m.SampledP99ms, "rssKiBPerHost", m.ServerRSSKiBPerHost, "storeKiBPerHost", m.StoreKiBPerHost)
	}
	return w, nil
}

func (b *bench) sampleCPU() cpuSample {
	s := cpuSample{at: time.Now()}
	s.server, _ = procCPU(b.srv.pid(), true)
	s.coordinator, _ = procCPU(os.Getpid(), false)
	s.bench = s.coordinator + b.fleet.cpu()
	if b.db.pid > 0 {
		s.db, _ = treeCPU(b.db.pid)
	}
	s.machine, s.machineAll, _ = machineCPU()
	return s
}

// startProfile profiles the window when -profile is set: the whole machine
// with perf (the server, PostgreSQL and the agents, told apart by command
// name in `perf report --sort comm,sym`), which needs nothing from the
// server, and the agent processes with runtime/pprof. The returned func ends both.
func (b *bench) startProfile(ctx context.Context, d time.Duration, agents int) func() {
	if b.o.profileDir == "" {
		return func() {}
	}
	if err := os.MkdirAll(b.o.profileDir, 0o755); err != nil {
		b.log.Warn("profile directory", "err", err)
		return func() {}
	}
	tag := fmt.Sprintf("%s-%d-%s", b.o.db, agents, time.Now().Format("150405"))
	var perf *exec.Cmd
	if p, err := exec.LookPath("perf"); err == nil && b.srv.pprofURL == "" {
		perf = exec.CommandContext(ctx, p, "record", "-F", "499", "-g", "-a", "-q",
			"-o", filepath.Join(b.o.profileDir, "perf-"+tag+".data"), "--", "sleep", strconv.Itoa(int(d.Seconds())))
		if err := perf.Start(); err != nil {
			b.log.Warn("perf", "err", err)
			perf = nil
		}
	}
	done := make(chan struct{})
	if b.srv.pprofURL != "" {
		go func() {
			defer close(done)
			if err := fetchProfiles(ctx, b.srv.pprofURL, b.o.profileDir, tag, d); err != nil {
				b.log.Warn("fetching the server's profiles", "err", err)
			}
		}()
	} else {
		close(done)
	}
	if err := b.fleet.profile(func(i int) string {
		return filepath.Join(b.o.profileDir, fmt.Sprintf("agents-%s-%d.pprof", tag, i))
	}); err != nil {
		b.log.Warn("profiling the agents", "err", err)
	}
	return func() {
		if err := b.fleet.profile(nil); err != nil {
			b.log.Warn("profiling the agents", "err", err)
		}
		if perf != nil {
			_ = perf.Wait()
		}
		<-done
		b.log.Info("profiles written", "dir", b.o.profileDir, "tag", tag)
	}
}

// judge says what kept the size from being sustained over w (nothing: it
// was); api, when not nil, is the window's probe.
func (b *bench) judge(agents int, w *window, api map[string]latency) []string {
	if w == nil {
		return []string{"not measured"}
	}
	var failed []string
	if len(w.AgentFailures) > 0 {
		var n int64
		for _, v := range w.AgentFailures {
			n += v
		}
		failed = append(failed, fmt.Sprintf("%d agent failures (%s)", n, strings.Join(slices.Sorted(maps.Keys(w.AgentFailures)), "; ")))
	}
	if w.AgentsExited > 0 {
		failed = append(failed, fmt.Sprintf("%d agents exited", w.AgentsExited))
	}
	if online := w.HostStates[string(tripcap.HostOnline)]; w.HostStates != nil && online != agents {
		failed = append(failed, fmt.Sprintf("%d of %d hosts Online (%v)", online, agents, w.HostStates))
	}
	if w.WentOffline > 0 {
		failed = append(failed, fmt.Sprintf("%d hosts went Offline", w.WentOffline))
	}
	if w.ServerErrors > 0 {
		failed = append(failed, fmt.Sprintf("%d internal server errors", w.ServerErrors))
	}
	if len(w.Unavailable) > 0 {
		failed = append(failed, fmt.Sprintf("the server did not answer the bench (%s)", strings.Join(w.Unavailable, "; ")))
	}
	if w.AcceptErrors > 0 {
		failed = append(failed, fmt.Sprintf("server out of file descriptors (%d accept errors, %d open)", w.AcceptErrors, w.ServerFDs))
	}
	if cores := w.CPU.Server + w.CPU.DB; cores >= b.o.maxServerCPU {
		failed = append(failed, fmt.Sprintf("server CPU %.2f cores ≥ %.2f", cores, b.o.maxServerCPU))
	}
	if n := w.CaptureStates[tripcap.StatusRunning]; len(w.CaptureStates) > 0 && n != b.o.captures {
		failed = append(failed, fmt.Sprintf("%d of %d captures Running (%v)", n, b.o.captures, w.CaptureStates))
	}
	if b.o.metrics {
		failed = append(failed, judgeMetrics(w.Metrics, defaultMetricLimits)...)
	}
	if api == nil {
		return failed
	}
	limit := float64(b.o.p99) / float64(time.Millisecond)
	for _, op := range judgedOps {
		l := api[op]
		if l.N == 0 {
			failed = append(failed, op+": no samples")
			continue
		}
		if l.Errors > 0 {
			failed = append(failed, fmt.Sprintf("%s: %d errors", op, l.Errors))
		}
		if l.P99ms >= limit {
			failed = append(failed, fmt.Sprintf("%s p99 %.1f ms ≥ %.0f ms", op, l.P99ms, limit))
		}
	}
	return failed
}

func raiseNofile(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= n {
		return nil
	}
	lim.Cur = n
	if lim.Max < n {
		lim.Max = n // root may raise the hard limit too
	}
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Version: tripcap.Version}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemoryGiB = (kb + 1<<19) >> 20
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func round(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
