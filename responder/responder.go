// Package responder is the alert-triggered capture stage. An alert reaches
// a responder (posted to /api/functions/{name}, or from an action group's
// responder receiver) and is recorded as a run (intake.go); the run is
// decided: which hosts (target.go), which capture, skip or stop
// (decide.go); once a capture it started is done and stored, the
// responder's receivers are told (notify.go). Runs are leased to one
// server at a time, so that work left by a server that stopped is resumed
// by exactly one other (lease.go). Responders and their keys are
// administered in admin.go; the alert payload formats are parsed by
// responder/payload.
//
// The stage reaches the rest of the system through the narrow interfaces
// below: the responder store, action groups, hosts, captures and a
// notifier.
package responder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/responder/payload"
)

// SecretPrefixFunction marks a responder's function key.
const SecretPrefixFunction = "tc_fn_"

// Config configures Responders.
type Config struct {
	// Workers bound how many triggers are handled at once (default 4);
	// Queue bounds how many wait (default 256): beyond it an invocation is
	// refused with EUNAVAILABLE rather than piling up.
	Workers int
	Queue   int
	// PollInterval is how often a started capture is checked for
	// completion before notifying (default 500 ms).
	PollInterval time.Duration
	// NotifyTimeout bounds the wait for a capture to complete and be
	// stored before the notification is sent anyway (default 6 h).
	NotifyTimeout time.Duration
	// PublicURL is the server's base URL, for download links in
	// notifications ("" leaves them out).
	PublicURL string
	// Notifier delivers completion notifications; nil builds one with
	// no SMTP (email receivers then fail, recorded in the run).
	Notifier Notifier
	// Lease is how long this server's claim on a run's work (its decision,
	// its completion notifications) lasts unless renewed (default 30 s).
	// Claims are renewed every third of it; every half of it, work no one
	// holds is looked for and resumed — left by a server that stopped, or
	// by a replica that died — so a run is resumed by one server only.
	Lease time.Duration
	// Instance names this server in claims (default a new id each start).
	Instance string
	// KeyRate and KeyBurst bound the runs one function key records: KeyRate
	// a second over time, KeyBurst at once (defaults DefaultKeyRate and
	// DefaultKeyBurst); ResponderRate and ResponderBurst bound the runs of a
	// responder, its keys together. A run is one alert: a payload grouping
	// several takes as many. Beyond them an invocation is refused whole
	// with ERATELIMIT (HTTP 429 with Retry-After) and nothing is recorded.
	// The bounds hold per server: behind a load balancer over n replicas a
	// key may start up to n times as many.
	KeyRate        float64
	KeyBurst       int
	ResponderRate  float64
	ResponderBurst int
}

// Captures is what a responder does to captures. The control plane
// implements it (in controlplane.Service.ResponderDeps) with its own
// methods, as an admin, so every rule those enforce applies here too.
type Captures interface {
	// EnsureWatcher returns the watcher of a host (its subscription's, in
	// its location), made if need be.
	EnsureWatcher(ctx context.Context, h *tripcap.Host) (*tripcap.NetworkWatcher, error)
	FindCapture(ctx context.Context, f tripcap.CaptureFilter) (*tripcap.PacketCapture, error)
	CountCaptures(ctx context.Context, f tripcap.CaptureFilter) (int, error)
	CreateCapture(ctx context.Context, req CaptureRequest) (*tripcap.PacketCapture, error)
	StopCapture(ctx context.Context, id string) (*tripcap.PacketCapture, error)
	// DeleteCapture removes a capture by id; its files stay.
	DeleteCapture(ctx context.Context, id string) error
	// CheckStorage says whether a storage account of this name is configured.
	CheckStorage(ctx context.Context, account string) error
	// DefaultStorage is the account captures without one go to ("" keeps
	// their files on the host).
	DefaultStorage() string
}

// CaptureRequest asks for a capture.
type CaptureRequest struct {
	// ID is the capture's id: a responder derives it from the run and the
	// host, so that a run decided again finds the capture it started.
	ID         string
	Name       string
	Watcher    string
	Parameters tripcap.PacketCaptureParameters
	Cause      string
	// AlertID is recorded on the capture, so its files are found by alert.
	AlertID string
}

// Hosts finds the hosts an alert is about.
type Hosts interface {
	FindHost(ctx context.Context, f tripcap.HostFilter) (*tripcap.Host, error)
	FindHosts(ctx context.Context, f tripcap.HostFilter) ([]*tripcap.Host, string, error)
}

// ActionGroups finds the action group a responder notifies.
type ActionGroups interface {
	FindActionGroup(ctx context.Context, f tripcap.ActionGroupFilter) (*tripcap.ActionGroup, error)
}

// Notifier delivers a completion notice to the receivers of an action
// group that take one (an *actiongroup.Notifier).
type Notifier interface {
	NotifyCompletion(ctx context.Context, g *tripcap.ActionGroup, c *actiongroup.CaptureCompleted) []tripcap.Delivery
	// CheckWebhookTarget refuses a webhook URL the server may not post to.
	CheckWebhookTarget(field, uri string) error
}

// Deps are what Responders work with.
type Deps struct {
	Store    tripcap.ResponderStore
	Groups   ActionGroups
	Hosts    Hosts
	Captures Captures
	// Audit records the captures responders start, stop and replace (nil: none).
	Audit Auditor
}

// Responders is the alert-triggered capture "function": responder CRUD,
// function keys, the inbound (HTTP) and internal (action group) triggers,
// and the decision logic between an alert and a capture.
type Responders struct {
	store    tripcap.ResponderStore
	groups   ActionGroups
	hosts    Hosts
	captures Captures
	auditor  Auditor
	log      *slog.Logger
	cfg      Config
	notifier Notifier
	now      func() time.Time

	jobs chan job
	// bg is the context of background work (triggers and completion
	// watches): it outlives the request that enqueued them; Run ends it.
	bg    context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	admin context.Context
	// runMu serializes the read-modify-write of a run's notification
	// record: a run's hosts notify concurrently.
	runMu sync.Mutex
	// active holds the runs this server works on, so a sweep that claims
	// one again (its renewal failed for a while) does not start it twice.
	activeMu sync.Mutex
	active   map[string]bool
	// limiter bounds the runs function keys start (Config.KeyRate).
	limiter runLimiter
}

type job struct {
	run *tripcap.ResponderRun
	trg payload.Trigger
	rsp *tripcap.Responder
}

// New returns the responder service over d.
func New(d Deps, log *slog.Logger, cfg Config) (*Responders, error) {
	if d.Store == nil || d.Groups == nil || d.Hosts == nil || d.Captures == nil {
		return nil, errors.New("responder: Store, Groups, Hosts and Captures are required")
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "responder")
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 256
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.NotifyTimeout <= 0 {
		cfg.NotifyTimeout = 6 * time.Hour
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Instance == "" {
		cfg.Instance = tripcap.NewID()
	}
	if cfg.KeyRate <= 0 {
		cfg.KeyRate = DefaultKeyRate
	}
	if cfg.KeyBurst <= 0 {
		cfg.KeyBurst = DefaultKeyBurst
	}
	if cfg.ResponderRate <= 0 {
		cfg.ResponderRate = DefaultResponderRate
	}
	if cfg.ResponderBurst <= 0 {
		cfg.ResponderBurst = DefaultResponderBurst
	}
	n := cfg.Notifier
	if n == nil {
		an, err := actiongroup.New(actiongroup.Config{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("responder notifier: %w", err)
		}
		n = an
	}
	bg, stop := context.WithCancel(context.Background())
	r := &Responders{
		store: d.Store, groups: d.Groups, hosts: d.Hosts, captures: d.Captures, auditor: d.Audit,
		log: log, cfg: cfg, notifier: n, now: time.Now,
		jobs: make(chan job, cfg.Queue), bg: bg, stop: stop, active: map[string]bool{},
		// The responder acts for the administrator who configured it.
		admin: tripcap.NewContextWithPrincipal(bg, &tripcap.Principal{ID: "responder", CredentialID: "responder", Name: "responder", Kind: tripcap.PrincipalSystem, Assignments: tripcap.OwnerEverywhere()}),
	}
	return r, nil
}

// Run handles queued triggers with the worker pool, and resumes the work
// no server holds (runs not decided, notifications not sent), until ctx
// ends; then it waits for the work under way to stop and hands back its
// claims, so the next start or a replica resumes the rest at once.
func (r *Responders) Run(ctx context.Context) error {
	for range r.cfg.Workers {
		r.wg.Go(func() {
			for {
				select {
				case <-r.bg.Done():
					return
				case j := <-r.jobs:
					r.handle(j)
				}
			}
		})
	}
	r.wg.Go(func() {
		t := time.NewTicker(r.cfg.Lease / 2)
		defer t.Stop()
		for {
			r.sweep()
			select {
			case <-r.bg.Done():
				return
			case <-t.C:
			}
		}
	})
	<-ctx.Done()
	r.stop()
	r.wg.Wait()
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.releaseAll(rctx)
	return nil
}
