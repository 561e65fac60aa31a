package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/metricstore"
	"github.com/tripcap/tripcap/remotewrite"
)

// The server's metrics flags: the in-memory store's retention, remote
// write of stored points and remote read of older chart windows
// (docs/alerting.md, "Long-term metrics: remote write"). `tripcap up`
// keeps the defaults: these are `server` flags only.

// Environment variables of the remote store's basic auth, so the password
// stays out of the process's arguments.
const (
	envRemoteUsername = "TRIPCAP_REMOTE_USERNAME"
	envRemotePassword = "TRIPCAP_REMOTE_PASSWORD"
)

type metricsOptions struct {
	raw, rollup       time.Duration
	writeURL, readURL string
	tokenFile, caFile string
	labelKeys         []string
	queue             int
	// attachHistories and attachHold bound a storm of hosts attaching
	// (a replica died and its agents came here; docs/alerting.md, "Handoff").
	attachHistories int
	attachHold      time.Duration
}

func (o *metricsOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.DurationVar(&o.raw, "metrics-raw", metricstore.DefaultRaw, "how long the in-memory metric store keeps 1-second points (whole minutes); rules over finer intervals see only these")
	f.DurationVar(&o.rollup, "metrics-rollup", metricstore.DefaultRollup, "how long the in-memory metric store keeps 1-minute rollups (whole minutes, at least --metrics-raw)")
	f.StringVar(&o.writeURL, "remote-write-url", "", "Prometheus remote-write 1.0 endpoint every stored point is also sent to (Prometheus: http://HOST:9090/api/v1/write with --web.enable-remote-write-receiver; default none)")
	f.StringSliceVar(&o.labelKeys, "remote-write-label-keys", nil, fmt.Sprintf("host label keys written on every series as label_<key> (at most %d; comma-separated or repeated)", remotewrite.MaxLabelKeys))
	f.IntVar(&o.queue, "remote-write-queue", remotewrite.DefaultQueueSize, "points waiting for the remote store at most; beyond it points are dropped (counted in tripcap_remote_write_samples_dropped_total)")
	f.StringVar(&o.readURL, "remote-read-url", "", "base URL of the remote store's Prometheus HTTP API (Prometheus: http://HOST:9090): charts of windows older than memory read /api/v1/query_range there (default none)")
	f.StringVar(&o.tokenFile, "remote-bearer-token-file", "", "file holding the bearer token for the remote store (write and read); basic auth instead: "+envRemoteUsername+" and "+envRemotePassword)
	f.IntVar(&o.attachHistories, "metrics-attach-histories", controlplane.DefaultAttachHistories, "agents' metric histories in flight at once while hosts attach (another replica's agents arriving); more attach faster and hold more memory (about 0.1–1.5 MB a history); 0: the default")
	f.DurationVar(&o.attachHold, "metrics-attach-hold", controlplane.DefaultAttachHold, "how long an attaching host's rule evaluation waits for its history (and, in a storm, for a slot to ask it) before it is evaluated without it; 0: the default")
	f.StringVar(&o.caFile, "remote-ca-file", "", "PEM CA bundle the remote store's certificate is checked against (default the system's)")
}

// remoteParts are what the options open: a writer (nil without
// --remote-write-url) and a reader (nil without --remote-read-url).
type remoteParts struct {
	metrics         metricstore.Config
	writer          *remotewrite.Writer
	reader          *remotewrite.Reader
	attachHistories int
	attachHold      time.Duration
}

// The attach bounds' ceilings: a history can be 1.5 MB, and a hold longer
// than a few minutes leaves a host unevaluated for as long.
const (
	maxAttachHistories = 10000
	maxAttachHold      = 5 * time.Minute
)

// open checks the options and builds the writer and the reader; hosts
// looks hosts up for their series' labels.
func (o *metricsOptions) open(hosts tripcap.HostFinder, log *slog.Logger) (*remoteParts, error) {
	p := &remoteParts{metrics: metricstore.Config{Raw: o.raw, Rollup: o.rollup}, attachHistories: o.attachHistories, attachHold: o.attachHold}
	// Zero is what `up` holds (it has no such flags): the defaults.
	if o.attachHistories < 0 || o.attachHistories > maxAttachHistories {
		return nil, fmt.Errorf("--metrics-attach-histories: %d; between 0 (the default) and %d", o.attachHistories, maxAttachHistories)
	}
	if o.attachHold < 0 || o.attachHold > maxAttachHold || (o.attachHold > 0 && o.attachHold < time.Second) {
		return nil, fmt.Errorf("--metrics-attach-hold: %s; 0 (the default) or between 1s and %s", o.attachHold, maxAttachHold)
	}
	// An empty store checks the bounds as the monitor's will, with the flags named.
	if _, err := metricstore.New(metricstore.Config{Raw: o.raw, Rollup: o.rollup, Logger: log}); err != nil {
		return nil, fmt.Errorf("--metrics-raw, --metrics-rollup: %w", err)
	}
	hc := remotewrite.HTTPConfig{BearerTokenFile: o.tokenFile, CAFile: o.caFile,
		Username: os.Getenv(envRemoteUsername), Password: os.Getenv(envRemotePassword)}
	if o.writeURL == "" && len(o.labelKeys) > 0 {
		return nil, fmt.Errorf("--remote-write-label-keys: needs --remote-write-url")
	}
	if o.writeURL != "" {
		keys, err := remotewrite.ParseLabelKeys("--remote-write-label-keys", o.labelKeys)
		if err != nil {
			return nil, err
		}
		if o.queue < 1 {
			return nil, fmt.Errorf("--remote-write-queue: %d; at least 1", o.queue)
		}
		p.writer, err = remotewrite.New(remotewrite.Config{URL: o.writeURL, HTTP: hc, LabelKeys: keys, QueueSize: o.queue, Logger: log,
			Hosts: func(ctx context.Context, id string) (*tripcap.Host, error) {
				return hosts.FindHost(ctx, tripcap.HostFilter{ID: &id})
			}})
		if err != nil {
			return nil, fmt.Errorf("--remote-write-url: %w", err)
		}
	}
	if o.readURL != "" {
		var err error
		if p.reader, err = remotewrite.NewReader(o.readURL, hc, log); err != nil {
			return nil, fmt.Errorf("--remote-read-url: %w", err)
		}
	}
	return p, nil
}

// configure sets the monitor's metric store bounds, sink and remote reader.
func (p *remoteParts) configure(c *controlplane.MonitorConfig) {
	c.Metrics.Raw, c.Metrics.Rollup = p.metrics.Raw, p.metrics.Rollup
	c.AttachHistories, c.AttachHold = p.attachHistories, p.attachHold
	if p.writer != nil {
		c.Sink = p.writer
	}
	if p.reader != nil {
		c.RemoteRead = p.reader
	}
}

// collectors are the writer's and reader's metrics, for /metrics.
func (p *remoteParts) collectors() []prometheus.Collector {
	var cs []prometheus.Collector
	if p.writer != nil {
		cs = append(cs, p.writer.Collectors()...)
	}
	if p.reader != nil {
		cs = append(cs, p.reader.Collectors()...)
	}
	return cs
}
