package controlplane

import (
	"log/slog"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/metricstore"
)

// Defaults of MonitorConfig.
const (
	DefaultRuleRefresh  = 10 * time.Second
	DefaultMetricWindow = 15 * time.Minute
	// deliveryGrace is how long a stopping Monitor lets deliveries under
	// way finish before it cancels them.
	deliveryGrace = 10 * time.Second
	// maxAlertList bounds one alert listing.
	maxAlertList = 1000
)

// MonitorConfig configures a Monitor.
type MonitorConfig struct {
	// SMTP is the mail server email receivers are delivered through; without
	// it action groups with email receivers are refused.
	SMTP *actiongroup.SMTPConfig
	// Metrics bounds the in-memory metric store (defaults: 1 h of 1-second
	// points, 24 h of 1-minute rollups).
	Metrics metricstore.Config
	// Retry bounds each delivery (defaults: 5 attempts, 1 s doubling to
	// 30 s, 2 min in all).
	Retry actiongroup.Retry
	// WebhookTargets says where webhooks may be posted (actiongroup.Targets).
	WebhookTargets actiongroup.Targets
	// PortalURL is the base URL alert links in payloads point to.
	PortalURL string
	// RuleRefresh is how often rules are read again from the store, so a
	// rule created through another replica is evaluated here too.
	RuleRefresh time.Duration
	// Responder acts on responder receivers (a *responder.Responders); without it
	// action groups with responder receivers are refused.
	Responder actiongroup.Responder
	// AttachGap is how long without a host's points makes the next ones an
	// attach (monitor_attach.go; default DefaultAttachGap).
	AttachGap time.Duration
	// AttachHold bounds how long an attaching host's evaluation waits for
	// a slot to ask its history, and again for the history once asked
	// (default DefaultAttachHold).
	AttachHold time.Duration
	// AttachHistories is how many agents' histories may be in flight at
	// once (default DefaultAttachHistories): a storm of attaches waits
	// its turn rather than asking every agent at once.
	AttachHistories int
	// Sink, when set, gets a copy of every batch stored (remote write); it
	// must not block (monitor_remote.go).
	Sink tripcap.MetricSink
	// RemoteRead, when set, answers the intervals of chart queries older
	// than the metric store holds; rules never read it (monitor_remote.go).
	RemoteRead tripcap.MetricRangeReader
}

// MonitorStore is what the Monitor keeps in the store: the alerting
// tables, and the hosts alerts are about.
type MonitorStore interface {
	tripcap.AlertStore
	tripcap.HostLister
}

// Monitor is tripcap's counterpart of Azure Monitor metric alerts: it takes
// agents' metric batches into an in-memory metric store, evaluates the alert
// rules as points arrive, persists each alert transition and delivers it to
// the rule's action groups, recording every attempt (MetricIngest); and it
// administers the rules, action groups and alerts (AlertAdmin). Rules,
// action groups, alerts and delivery logs live in the store, so they
// survive a restart; metrics live in memory, snapshotted to a file in the
// data directory every minute and at stop, so they survive one too. Create
// it with NewMonitor and start it with Run.
type Monitor struct {
	*MetricIngest
	*AlertAdmin
}

// NewMonitor returns a Monitor over store.
func NewMonitor(store MonitorStore, log *slog.Logger, cfg MonitorConfig) (*Monitor, error) {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "monitor")
	in, err := NewMetricIngest(store, store, log, cfg)
	if err != nil {
		return nil, err
	}
	ad := &AlertAdmin{store: store, hosts: store, receivers: in.notifier, log: log, now: time.Now,
		keep: in.metrics.Config().Rollup, reload: in.refreshRules}
	return &Monitor{MetricIngest: in, AlertAdmin: ad}, nil
}
