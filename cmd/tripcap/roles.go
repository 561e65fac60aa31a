package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/afpacket"
	"github.com/tripcap/tripcap/agent"
	"github.com/tripcap/tripcap/azblob"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/filestore"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/postgres"
	"github.com/tripcap/tripcap/responder"
	"github.com/tripcap/tripcap/s3"
	"github.com/tripcap/tripcap/sqlite"
)

// serverOptions are the control plane's flags, shared by `server` and `up`.
type serverOptions struct {
	listen, data, db, adminTokenFile string
	subscription, group, location    string
	maxCaptures                      int
	heartbeat                        time.Duration
	storage                          []string
}

func (o *serverOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to serve the API on")
	f.StringVar(&o.data, "data", "./tripcap-data", "data directory (SQLite database, file storage, admin token)")
	f.StringVar(&o.db, "db", "", "database: sqlite:///path/tripcap.db (default inside --data) or postgres://…")
	f.StringVar(&o.adminTokenFile, "admin-token-file", "", "admin token file (default <data>/admin.token); replicas may share one")
	f.StringVar(&o.subscription, "subscription", "", "subscription id in hosts' Azure resource ids")
	f.StringVar(&o.group, "resource-group", "", "default resource group of hosts (label azure.resourceGroup overrides)")
	f.StringVar(&o.location, "default-location", "", "location of hosts that enroll without one")
	f.IntVar(&o.maxCaptures, "max-captures", tripcap.DefaultParallelCapturesPerWatcher, "parallel capture limit of new network watchers")
	f.DurationVar(&o.heartbeat, "heartbeat", 10*time.Second, "agent heartbeat interval; hosts go Offline after three missed")
	f.StringArrayVar(&o.storage, "storage", nil, "storage account NAME=URL (file://DIR, s3://BUCKET/PREFIX?endpoint=…, azblob://ACCOUNT/CONTAINER?endpoint=…); the first is the default (default local=file://<data>/storage)")
}

// openStore opens the database a --db URL names.
func openStore(ctx context.Context, db string) (tripcap.Store, error) {
	switch {
	case strings.HasPrefix(db, "sqlite://"):
		return sqlite.Open(ctx, strings.TrimPrefix(db, "sqlite://"))
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		return postgres.Open(ctx, db)
	}
	return nil, fmt.Errorf("--db: %q is not sqlite:///path or postgres://…", db)
}

// openStorageURL opens one storage account by URL; credentials come from the
// server's environment (AWS_*/MINIO_* for S3, AZURE_STORAGE_* for Azure).
func openStorageURL(ctx context.Context, u string) (tripcap.BlobStore, error) {
	switch {
	case strings.HasPrefix(u, "file://"):
		return filestore.Open(strings.TrimPrefix(u, "file://"))
	case strings.HasPrefix(u, "s3://"):
		return s3.Open(ctx, u)
	case strings.HasPrefix(u, "azblob://"):
		return azblob.Open(ctx, u)
	}
	return nil, tripcap.Errorf(tripcap.EINVALID, "url: %q is not file://DIR, s3://BUCKET/PREFIX?… or azblob://ACCOUNT/CONTAINER?…", u)
}

// openStorage opens the storage accounts --storage names.
func openStorage(ctx context.Context, specs []string, data string) (map[string]tripcap.BlobStore, string, error) {
	if len(specs) == 0 {
		specs = []string{"local=file://" + filepath.Join(data, "storage")}
	}
	out := map[string]tripcap.BlobStore{}
	var def string
	for _, spec := range specs {
		name, u, ok := strings.Cut(spec, "=")
		if !ok || name == "" {
			return nil, "", fmt.Errorf("--storage: %q is not NAME=URL", spec)
		}
		b, err := openStorageURL(ctx, u)
		if err != nil {
			return nil, "", fmt.Errorf("--storage %s: %w", name, err)
		}
		out[name] = b
		if def == "" {
			def = name
		}
	}
	return out, def, nil
}

// controlPlane is a running server's parts.
type controlPlane struct {
	store      tripcap.Store
	svc        *controlplane.Service
	http       *tchttp.Server
	adminToken string
	url        string
	listener   net.Listener
	monitor    *controlplane.Monitor
	responders *responder.Responders
}

func startControlPlane(ctx context.Context, o *serverOptions, log *slog.Logger) (*controlPlane, error) {
	if err := absPaths(map[string]*string{"--data": &o.data}); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.data, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if o.db == "" {
		o.db = "sqlite://" + filepath.Join(o.data, "tripcap.db")
	}
	if o.adminTokenFile == "" {
		o.adminTokenFile = filepath.Join(o.data, "admin.token")
	}
	store, err := openStore(ctx, o.db)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	blobs, def, err := openStorage(ctx, o.storage, o.data)
	if err != nil {
		store.Close()
		return nil, err
	}
	svc := controlplane.New(store, controlplane.Config{
		SubscriptionID: o.subscription, ResourceGroup: o.group, DefaultLocation: o.location,
		MaxCapturesPerWatcher: o.maxCaptures, HeartbeatInterval: o.heartbeat, Storage: blobs, DefaultStorage: def, OpenStorage: openStorageURL,
	}, log)
	token, err := svc.EnsureAdmin(ctx, o.adminTokenFile)
	if err != nil {
		store.Close()
		return nil, err
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	url := "http://" + l.Addr().String()
	rsp, err := newResponders(svc, log, url)
	if err != nil {
		l.Close()
		store.Close()
		return nil, err
	}
	mon, err := newMonitor(store, log, rsp)
	if err != nil {
		l.Close()
		store.Close()
		return nil, err
	}
	return &controlPlane{store: store, svc: svc, http: tchttp.NewServer(svc, log, tchttp.WithMonitor(mon), tchttp.WithResponders(rsp)), adminToken: token,
		url: url, listener: l, monitor: mon, responders: rsp}, nil
}

// run serves until ctx ends.
func (cp *controlPlane) run(ctx context.Context) error {
	defer cp.store.Close()
	waitMonitor := cp.runMonitor(ctx)
	defer waitMonitor()
	// Responders, like the monitor, stop before the store closes.
	respondersDone := make(chan struct{})
	go func() { defer close(respondersDone); _ = cp.responders.Run(ctx) }()
	defer func() { <-respondersDone }()
	errc := make(chan error, 2)
	go func() { errc <- cp.svc.Run(ctx) }()
	go func() { errc <- cp.http.Serve(ctx, cp.listener) }()
	err := <-errc
	if err2 := <-errc; err == nil {
		err = err2
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func newServerCmd() *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane (REST API, state, agents' coordination)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(cmd)
			cp, err := startControlPlane(cmd.Context(), &o, log)
			if err != nil {
				return err
			}
			log.Info("tripcap server listening", "url", cp.url, "db", redactDSN(o.db), "adminTokenFile", o.adminTokenFile)
			return cp.run(cmd.Context())
		},
	}
	o.addFlags(cmd)
	return cmd
}

// redactDSN hides a database password in logs.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.LastIndex(dsn, "@"); at > i {
			if colon := strings.Index(dsn[i+3:at], ":"); colon >= 0 {
				return dsn[:i+3+colon+1] + "****" + dsn[at:]
			}
		}
	}
	return dsn
}

// agentOptions are the agent's flags, shared by `agent` and `up`.
type agentOptions struct {
	server, joinToken, name, location string
	labels                            []string
	stateDir, captureDir              string
	metricsListen                     string
	preTriggerSeconds                 int
	preTriggerBytes                   int64
	spoolMaxBytes                     int64
}

func (o *agentOptions) addFlags(cmd *cobra.Command, standalone bool) {
	f := cmd.Flags()
	if standalone {
		f.StringVar(&o.server, "server", "", "control plane URL")
		f.StringVar(&o.joinToken, "join-token", "", "join token for the first start (`tripcap host join-token create`)")
		f.StringVar(&o.stateDir, "state-dir", "/var/lib/tripcap", "where the agent keeps its credential and session journal")
		f.StringVar(&o.captureDir, "capture-dir", tripcap.DefaultCaptureDir, "where capture files are written")
		f.StringVar(&o.metricsListen, "metrics-listen", "127.0.0.1:9465", "address for the agent's /metrics and /healthz (empty: off)")
	}
	f.StringVar(&o.name, "name", "", "host name (default: the hostname)")
	f.StringVar(&o.location, "location", "", "location (region) of this host")
	f.StringArrayVar(&o.labels, "label", nil, "label k=v (repeatable)")
	f.IntVar(&o.preTriggerSeconds, "pre-trigger-seconds", afpacket.DefaultPreTriggerSeconds, "keep this many seconds of recent traffic in memory for captures' preTriggerSeconds (0: off)")
	f.Int64Var(&o.preTriggerBytes, "pre-trigger-bytes", afpacket.DefaultPreTriggerBytes, "bound on the pre-trigger buffer's memory (the oldest packets go first)")
	f.Int64Var(&o.spoolMaxBytes, "spool-max-bytes", 10<<30, "bound on capture files waiting for upload plus what running captures may write")
}

func (o *agentOptions) parseLabels() (map[string]string, error) {
	labels := map[string]string{}
	for _, l := range o.labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--label: %q is not k=v", l)
		}
		labels[k] = v
	}
	return labels, nil
}

// runAgent runs an agent with the AF_PACKET engine until ctx ends.
func (o *agentOptions) runAgent(ctx context.Context, log *slog.Logger, reg prometheus.Registerer) error {
	labels, err := o.parseLabels()
	if err != nil {
		return err
	}
	// Absolute from here on: the agent joins paths under these, and a
	// relative one would nest (captures/captures/spool) and escape the
	// spool bound.
	if err := absPaths(map[string]*string{"--state-dir": &o.stateDir, "--capture-dir": &o.captureDir}); err != nil {
		return err
	}
	engine, err := newCaptureEngine(ctx, o, log, reg)
	if err != nil {
		return err
	}
	defer engine.Close()
	hm, err := newHostMetrics(o.name, log, reg)
	if err != nil {
		return err
	}
	a, err := agent.New(agent.Config{Server: o.server, JoinToken: o.joinToken, Name: o.name, Location: o.location, Labels: labels,
		StateDir: o.stateDir, CaptureDir: o.captureDir, Engine: engine, Logger: log, SpoolMaxBytes: o.spoolMaxBytes, Metrics: hm})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func newAgentCmd() *cobra.Command {
	var o agentOptions
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the per-host agent: reports the host and runs its capture sessions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(cmd)
			if !agent.CanCapture() {
				return errors.New("capturing needs root or CAP_NET_RAW (e.g. `sudo setcap cap_net_raw,cap_net_admin+ep $(which tripcap)`); this agent cannot capture as it is")
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			var wg sync.WaitGroup
			if o.metricsListen != "" {
				l, err := net.Listen("tcp", o.metricsListen)
				if err != nil {
					return fmt.Errorf("--metrics-listen %s: %w", o.metricsListen, err)
				}
				wg.Add(1)
				go func() { defer wg.Done(); serveAgentMetrics(ctx, l, reg, log) }()
			}
			err := o.runAgent(ctx, log, reg)
			cancel()
			wg.Wait()
			return err
		},
	}
	o.addFlags(cmd, true)
	return cmd
}

func serveAgentMetrics(ctx context.Context, l net.Listener, reg *prometheus.Registry, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = hs.Close() }()
	if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("agent metrics server", "err", err)
	}
}

func newUpCmd() *cobra.Command {
	var so serverOptions
	var ao agentOptions
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a server and a local agent in one process, with embedded defaults",
		Long:  "up runs the control plane on SQLite with file storage under --data, enrolls a local agent, and writes a client config so the CLI works at once.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(cmd)
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			cp, err := startControlPlane(ctx, &so, log)
			if err != nil {
				return err
			}
			token := cp.adminToken
			if token == "" {
				b, err := os.ReadFile(so.adminTokenFile)
				if err != nil {
					return fmt.Errorf("this data directory's admin token is not in %s: %w", so.adminTokenFile, err)
				}
				token = strings.TrimSpace(string(b))
			}
			cfgPath, err := writeClientConfig(clientConfig{Server: cp.url, Token: token})
			if err != nil {
				return err
			}
			adminCtx := tripcap.NewContextWithPrincipal(ctx, &tripcap.Principal{Role: tripcap.RoleAdmin})
			jt, err := cp.svc.CreateJoinToken(adminCtx, 10*time.Minute, 1)
			if err != nil {
				return err
			}
			ao.server, ao.joinToken = cp.url, jt.Token
			ao.stateDir = filepath.Join(so.data, "agent")
			ao.captureDir = filepath.Join(so.data, "captures")
			self := invokedAs()
			fmt.Fprintf(cmd.OutOrStdout(), "tripcap is up at %s\nclient config: %s\ntry: %s host list\n     %s capture create first --host %s --time-limit 10s --wait\n",
				cp.url, cfgPath, self, self, hostnameOr(ao.name))
			if !agent.CanCapture() {
				log.Warn("capturing needs root or CAP_NET_RAW: the local agent's captures will fail with CaptureFailed until tripcap runs with it")
			}
			errc := make(chan error, 2)
			go func() { errc <- cp.run(ctx) }()
			go func() { errc <- ao.runAgent(ctx, log, cp.http.Registry()) }()
			err = <-errc
			cancel()
			if err2 := <-errc; err == nil {
				err = err2
			}
			return err
		},
	}
	so.addFlags(cmd)
	ao.addFlags(cmd, false)
	return cmd
}

func hostnameOr(name string) string {
	if name != "" {
		return name
	}
	h, _ := os.Hostname()
	return h
}

// absPaths makes each flag's path absolute, naming the flag on failure.
func absPaths(paths map[string]*string) error {
	for flag, p := range paths {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("%s %s: %w", flag, *p, err)
		}
		*p = abs
	}
	return nil
}

// invokedAs is how the user can run this binary again: "tripcap" when that
// is what PATH finds, "go run ./cmd/tripcap" under go run (the binary lives
// in a temporary build directory), else the path it was started by.
func invokedAs() string {
	exe, err := os.Executable()
	if err != nil {
		return "tripcap"
	}
	if onPath, err := exec.LookPath("tripcap"); err == nil {
		if a, b := resolved(onPath), resolved(exe); a == b {
			return "tripcap"
		}
	}
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/tripcap"
	}
	return os.Args[0]
}

func resolved(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}
