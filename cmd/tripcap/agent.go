package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/afpacket"
	"github.com/tripcap/tripcap/agent"
)

// The agent role: its flags, its resources and its command.

// agentOptions are the agent's flags, shared by `agent` and `up`.
type agentOptions struct {
	server, joinToken, name, location string
	caFile                            string
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
	a, err := agent.New(agent.Config{Server: o.server, JoinToken: o.joinToken, CAFile: o.caFile, Name: o.name, Location: o.location, Labels: labels,
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
			o.caFile, _ = cmd.Flags().GetString("ca-file")
			if !agent.CanCapture() {
				return errors.New("capturing needs root or CAP_NET_RAW (e.g. `sudo setcap cap_net_raw,cap_net_admin+ep $(which tripcap)`); this agent cannot capture as it is")
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			var l net.Listener
			if o.metricsListen != "" {
				var err error
				if l, err = net.Listen("tcp", o.metricsListen); err != nil {
					return fmt.Errorf("--metrics-listen %s: %w", o.metricsListen, err)
				}
			}
			g, ctx := errgroup.WithContext(cmd.Context())
			if l != nil {
				g.Go(func() error { return named("agent metrics server", serveAgentMetrics(ctx, l, reg)) })
			}
			g.Go(func() error { return o.runAgent(ctx, log, reg) })
			return g.Wait()
		},
	}
	o.addFlags(cmd, true)
	addConfigFlag(cmd, defaultAgentConfig)
	return cmd
}

// serveAgentMetrics serves /metrics and /healthz on l until ctx ends.
func serveAgentMetrics(ctx context.Context, l net.Listener, reg *prometheus.Registry) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { <-ctx.Done(); _ = hs.Close() }()
	if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
