package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/hostmetrics"
	"github.com/tripcap/tripcap/metricstore"
)

// Server side: the Monitor (metrics, alert rules, action groups, alerts).

// newMonitor builds the control plane's Monitor. The SMTP server for email
// receivers comes from the environment, so its password stays out of the
// process's arguments:
//
//	TRIPCAP_SMTP_ADDR      host:port of the submission server (unset: no email)
//	TRIPCAP_SMTP_FROM      sender address
//	TRIPCAP_SMTP_USERNAME  and TRIPCAP_SMTP_PASSWORD: AUTH PLAIN, over TLS only
//	TRIPCAP_SMTP_TLS       opportunistic (default), required or none
//
// The metric history is kept across restarts in snapshot (a file in the
// data directory; each replica has its own).
func newMonitor(store tripcap.Store, log *slog.Logger, rsp actiongroup.Responder, snapshot string, targets actiongroup.Targets, opts ...func(*controlplane.MonitorConfig)) (*controlplane.Monitor, error) {
	cfg := controlplane.MonitorConfig{SMTP: smtpFromEnv(), Responder: rsp, WebhookTargets: targets,
		Metrics: metricstore.Config{SnapshotPath: snapshot}}
	for _, o := range opts {
		o(&cfg)
	}
	m, err := controlplane.NewMonitor(store, log, cfg)
	if err != nil {
		return nil, fmt.Errorf("TRIPCAP_SMTP_*: %w", err)
	}
	return m, nil
}

// smtpFromEnv is the SMTP server of TRIPCAP_SMTP_* (nil when unset).
func smtpFromEnv() *actiongroup.SMTPConfig {
	addr := os.Getenv("TRIPCAP_SMTP_ADDR")
	if addr == "" {
		return nil
	}
	return &actiongroup.SMTPConfig{Addr: addr, From: os.Getenv("TRIPCAP_SMTP_FROM"), Username: os.Getenv("TRIPCAP_SMTP_USERNAME"),
		Password: os.Getenv("TRIPCAP_SMTP_PASSWORD"), TLS: os.Getenv("TRIPCAP_SMTP_TLS")}
}

// Agent side: the host metrics collector.

// newHostMetrics returns the agent's collector, registered on reg so the
// agent's /metrics shows the host's counters with a host label.
func newHostMetrics(name string, log *slog.Logger, reg prometheus.Registerer) (*hostmetrics.Collector, error) {
	if name == "" {
		name = hostnameOr("")
	}
	hm, err := hostmetrics.New(hostmetrics.Config{Host: name, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := reg.Register(hm); err != nil {
		return nil, fmt.Errorf("register host metrics: %w", err)
	}
	return hm, nil
}
