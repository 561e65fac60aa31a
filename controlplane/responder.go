package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/responder"
)

// SecretPrefixFunction marks a responder's function key.
const SecretPrefixFunction = "tc_fn_"

// ResponderConfig configures Responders.
type ResponderConfig struct {
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
	Notifier *actiongroup.Notifier
	// Lease is how long this server's claim on a run's work (its decision,
	// its completion notifications) lasts unless renewed (default 30 s).
	// Claims are renewed every third of it; every half of it, work no one
	// holds is looked for and resumed — left by a server that stopped, or
	// by a replica that died — so a run is resumed by one server only.
	Lease time.Duration
	// Instance names this server in claims (default a new id each start).
	Instance string
}

// Responders is the alert-triggered capture "function": responder CRUD,
// function keys, the inbound (HTTP) and internal (action group) triggers,
// and the decision logic between an alert and a capture. It creates, stops
// and deletes captures through the Service's own methods, as an admin, so
// every rule those enforce applies here too.
type Responders struct {
	svc      *Service
	store    tripcap.Store
	log      *slog.Logger
	cfg      ResponderConfig
	notifier *actiongroup.Notifier
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
}

type job struct {
	run *tripcap.ResponderRun
	trg responder.Trigger
	rsp *tripcap.Responder
}

// NewResponders returns the responder service over svc's store.
func NewResponders(svc *Service, log *slog.Logger, cfg ResponderConfig) (*Responders, error) {
	if log == nil {
		log = slog.Default()
	}
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
	n := cfg.Notifier
	if n == nil {
		var err error
		if n, err = actiongroup.New(actiongroup.Config{Logger: log}); err != nil {
			return nil, fmt.Errorf("responder notifier: %w", err)
		}
	}
	bg, stop := context.WithCancel(context.Background())
	r := &Responders{
		svc: svc, store: svc.store, log: log, cfg: cfg, notifier: n, now: time.Now,
		jobs: make(chan job, cfg.Queue), bg: bg, stop: stop, active: map[string]bool{},
		// The responder acts for the administrator who configured it.
		admin: tripcap.NewContextWithPrincipal(bg, &tripcap.Principal{Role: tripcap.RoleAdmin, CredentialID: "responder"}),
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
	if err := r.store.ReleaseResponderRuns(rctx, r.cfg.Instance); err != nil {
		r.log.Warn("responder: handing back runs", "err", err)
	}
	return nil
}

// sweepBatch bounds the runs one sweep claims.
const sweepBatch = 100

// sweep claims the open runs no server holds and resumes them.
func (r *Responders) sweep() {
	runs, err := r.store.ClaimResponderRuns(r.bg, r.cfg.Instance, r.cfg.Lease, sweepBatch)
	if err != nil {
		if r.bg.Err() == nil {
			r.log.Warn("responder: looking for work to resume", "err", err)
		}
		return
	}
	for _, run := range runs {
		if !r.track(run.ID) {
			continue
		}
		r.log.Info("responder: resuming run", "run", run.ID, "responder", run.ResponderID, "decision", run.Decision)
		r.resume(run)
	}
}

// resume continues a claimed run where it stopped: its decision, or the
// notifications it still owes.
func (r *Responders) resume(run *tripcap.ResponderRun) {
	if run.Decision != tripcap.DecisionPending {
		held, release := r.keep(run.ID)
		r.wg.Go(func() {
			defer release()
			r.notifyWhenDone(held, run)
		})
		return
	}
	var t responder.Trigger
	if len(run.Trigger) == 0 || json.Unmarshal(run.Trigger, &t) != nil {
		r.finish(r.bg, run, tripcap.DecisionFailed, "the server stopped before deciding, and this run does not hold its alert (it was recorded by an older version)")
		r.untrack(run.ID)
		return
	}
	rs, err := r.store.FindResponder(r.bg, tripcap.ResponderFilter{ID: &run.ResponderID})
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
		r.finish(r.bg, run, tripcap.DecisionFailed, "the responder was deleted before the run was decided")
		r.untrack(run.ID)
		return
	}
	if err != nil {
		// The claim ends with its lease, and a later sweep tries again.
		r.log.Warn("responder: resuming run", "run", run.ID, "err", err)
		r.untrack(run.ID)
		return
	}
	select {
	case r.jobs <- job{run: run, trg: t, rsp: rs}:
	default:
		// Full: as above, a later sweep takes it again.
		r.untrack(run.ID)
	}
}

// track records that this server works on a run; false when it already does.
func (r *Responders) track(id string) bool {
	r.activeMu.Lock()
	defer r.activeMu.Unlock()
	if r.active[id] {
		return false
	}
	r.active[id] = true
	return true
}

func (r *Responders) untrack(id string) {
	r.activeMu.Lock()
	defer r.activeMu.Unlock()
	delete(r.active, id)
}

// claim takes or renews this server's claim on a run.
func (r *Responders) claim(ctx context.Context, id string) error {
	return r.store.ClaimResponderRun(ctx, id, r.cfg.Instance, r.cfg.Lease)
}

// keep renews the claim on a run while this server works on it; release
// stops renewing and forgets the run.
//
// held ends with release, with Run, or when the run is found taken over:
// work that follows the run (a notification's wait) stops with it.
func (r *Responders) keep(id string) (held context.Context, release func()) {
	held, lost := context.WithCancel(r.bg)
	ctx, cancel := context.WithCancel(held)
	done := make(chan struct{})
	r.wg.Go(func() {
		defer close(done)
		t := time.NewTicker(r.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := r.claim(ctx, id)
			if tripcap.ErrorCode(err) == tripcap.ECONFLICT {
				// Done, or taken over after this server lost touch with
				// the store for a whole lease: stop following it.
				lost()
				return
			}
			if err != nil && ctx.Err() == nil {
				r.log.Warn("responder: renewing claim", "run", id, "err", err)
			}
		}
	})
	return held, func() {
		cancel()
		<-done
		lost()
		r.untrack(id)
	}
}

// resolve finds a responder by id or name.
func (r *Responders) resolve(ctx context.Context, ref string) (*tripcap.Responder, error) {
	if ref == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "responder: required")
	}
	if looksLikeID(ref) {
		if rs, err := r.store.FindResponder(ctx, tripcap.ResponderFilter{ID: &ref}); err == nil {
			return rs, nil
		}
	}
	return r.store.FindResponder(ctx, tripcap.ResponderFilter{Name: &ref})
}

// check validates a responder and what it refers to.
func (r *Responders) check(ctx context.Context, rs *tripcap.Responder) error {
	rs.ApplyDefaults()
	if err := rs.Validate(); err != nil {
		return err
	}
	if rs.NotifyActionGroup != "" {
		if _, err := r.store.FindActionGroup(ctx, tripcap.ActionGroupFilter{Name: &rs.NotifyActionGroup}); err != nil {
			if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
				return tripcap.Errorf(tripcap.EINVALID, "notifyActionGroup: no action group named %q", rs.NotifyActionGroup)
			}
			return err
		}
	}
	if sa := rs.Capture.StorageAccount; sa != "" {
		if _, err := r.svc.blobStore(ctx, sa); err != nil {
			return tripcap.Errorf(tripcap.EINVALID, "capture.storageAccount: %s", tripcap.ErrorMessage(err))
		}
	}
	return nil
}

// CreateResponder validates and stores a responder.
func (r *Responders) CreateResponder(ctx context.Context, in *tripcap.Responder) (*tripcap.Responder, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if in == nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "body: a responder is required")
	}
	rs := *in
	if err := r.check(ctx, &rs); err != nil {
		return nil, err
	}
	now := r.now().UTC()
	rs.ID, rs.CreatedAt, rs.UpdatedAt = tripcap.NewID(), now, now
	if rs.Enabled == nil {
		rs.Enabled = ptr(true)
	}
	if err := r.store.CreateResponder(ctx, &rs); err != nil {
		return nil, err
	}
	r.log.Info("responder created", "responder", rs.Name, "id", rs.ID)
	return &rs, nil
}

// UpdateResponder replaces a responder's settings with in, checked as for
// create; its id, keys, runs and creation time stay. ifMatch, when set
// (and not "*"), must be the responder's current ETag, else EPRECONDITION.
// Without it the last writer wins.
func (r *Responders) UpdateResponder(ctx context.Context, ref string, in *tripcap.Responder, ifMatch string) (*tripcap.Responder, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if in == nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "body: a responder is required")
	}
	for attempt := 0; ; attempt++ {
		cur, err := r.resolve(ctx, ref)
		if err != nil {
			return nil, err
		}
		if ifMatch != "" && ifMatch != "*" && ifMatch != cur.ETag() {
			return nil, tripcap.Errorf(tripcap.EPRECONDITION, "responder %s changed (ETag %s, If-Match %s)", cur.Name, cur.ETag(), ifMatch)
		}
		if in.ID != "" && in.ID != cur.ID {
			return nil, tripcap.Errorf(tripcap.EINVALID, "id: %q is not the responder's (%s); ids do not change", in.ID, cur.ID)
		}
		rs := *in
		if rs.Name == "" {
			rs.Name = cur.Name
		}
		if err := r.check(ctx, &rs); err != nil {
			return nil, err
		}
		rs.ID, rs.CreatedAt = cur.ID, cur.CreatedAt
		if rs.Enabled == nil {
			rs.Enabled = ptr(true)
		}
		err = r.store.UpdateResponder(ctx, &rs, cur.Version)
		// Changed between the read and the write: with If-Match that is
		// the caller's to resolve; without, read again.
		if tripcap.ErrorCode(err) == tripcap.EPRECONDITION && (ifMatch == "" || ifMatch == "*") && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, err
		}
		r.log.Info("responder updated", "responder", rs.Name, "id", rs.ID, "version", rs.Version)
		return &rs, nil
	}
}

// FindResponders lists responders.
func (r *Responders) FindResponders(ctx context.Context) ([]*tripcap.Responder, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	return r.store.FindResponders(ctx, tripcap.ResponderFilter{})
}

// FindResponder returns a responder by id or name.
func (r *Responders) FindResponder(ctx context.Context, ref string) (*tripcap.Responder, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	return r.resolve(ctx, ref)
}

// DeleteResponder removes a responder and its keys; its runs stay.
func (r *Responders) DeleteResponder(ctx context.Context, ref string) error {
	if err := requireAdmin(ctx); err != nil {
		return err
	}
	rs, err := r.resolve(ctx, ref)
	if err != nil {
		return err
	}
	return r.store.DeleteResponder(ctx, rs.ID)
}

// CreateKey makes a function key; its secret is in the result only.
func (r *Responders) CreateKey(ctx context.Context, ref, name string) (*tripcap.ResponderKey, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if name == "" {
		name = "default"
	}
	if err := tripcap.ValidateHostName("name", name); err != nil {
		return nil, err
	}
	rs, err := r.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	secret := tripcap.NewSecret(SecretPrefixFunction)
	k := &tripcap.ResponderKey{ID: tripcap.NewID(), ResponderID: rs.ID, Name: name, Hash: tripcap.HashSecret(secret), CreatedAt: r.now().UTC()}
	if err := r.store.CreateResponderKey(ctx, k); err != nil {
		return nil, err
	}
	k.Secret = secret
	return k, nil
}

// RotateKey replaces the named key with a new secret (the old one stops
// working at once).
func (r *Responders) RotateKey(ctx context.Context, ref, name string) (*tripcap.ResponderKey, error) {
	if err := r.RevokeKey(ctx, ref, name); err != nil {
		return nil, err
	}
	return r.CreateKey(ctx, ref, name)
}

// FindKeys lists a responder's keys (never their secrets).
func (r *Responders) FindKeys(ctx context.Context, ref string) ([]*tripcap.ResponderKey, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	rs, err := r.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	return r.store.FindResponderKeys(ctx, rs.ID)
}

// RevokeKey deletes a responder's key by name.
func (r *Responders) RevokeKey(ctx context.Context, ref, name string) error {
	keys, err := r.FindKeys(ctx, ref)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Name == name {
			return r.store.DeleteResponderKey(ctx, k.ID)
		}
	}
	return tripcap.Errorf(tripcap.ENOTFOUND, "responder %s has no key named %q", ref, name)
}

// FindRuns lists a responder's runs, newest first (limit 0: 100).
func (r *Responders) FindRuns(ctx context.Context, ref string, limit int) ([]*tripcap.ResponderRun, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	rs, err := r.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 100
	}
	return r.store.FindResponderRuns(ctx, tripcap.ResponderRunFilter{ResponderID: &rs.ID, Limit: min(limit, 1000)})
}

// FindRun returns one run by id.
func (r *Responders) FindRun(ctx context.Context, id string) (*tripcap.ResponderRun, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	runs, err := r.store.FindResponderRuns(ctx, tripcap.ResponderRunFilter{ID: &id, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "responder run %q not found", id)
	}
	return runs[0], nil
}

var errBadKey = tripcap.Errorf(tripcap.EUNAUTHORIZED, "missing or wrong function key (give it in ?code= or the x-functions-key header)")

// Invoke is the inbound trigger (POST /api/functions/{name}): it checks the
// key (EUNAUTHORIZED, nothing recorded), parses the body (EINVALID naming
// what was expected), records a run per alert and queues the work, so the
// sender gets its answer at once and does not retry.
func (r *Responders) Invoke(ctx context.Context, name, key string, body []byte) ([]*tripcap.ResponderRun, error) {
	if key == "" {
		return nil, errBadKey
	}
	// An unknown responder answers like a wrong key, so names cannot be probed.
	rs, err := r.store.FindResponder(ctx, tripcap.ResponderFilter{Name: &name})
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND || tripcap.ErrorCode(err) == tripcap.EINVALID {
		return nil, errBadKey
	} else if err != nil {
		return nil, err
	}
	k, err := r.store.FindResponderKeyByHash(ctx, tripcap.HashSecret(key))
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND || (err == nil && k.ResponderID != rs.ID) {
		return nil, errBadKey
	} else if err != nil {
		return nil, err
	}
	triggers, err := responder.Parse(body)
	if err != nil {
		return nil, err
	}
	return r.accept(ctx, rs, "http", triggers)
}

// Trigger is the internal trigger: an action group's responder receiver
// (actiongroup.Responder). ResponderID names the responder by id or name.
func (r *Responders) Trigger(ctx context.Context, a tripcap.Alert, rcv tripcap.ResponderReceiver) error {
	ref := rcv.ResponderID
	if ref == "" {
		ref = rcv.Name
	}
	rs, err := r.resolve(ctx, ref)
	if err != nil {
		return fmt.Errorf("responder receiver %s: %w", rcv.Name, err)
	}
	_, err = r.accept(ctx, rs, "internal", []responder.Trigger{responder.FromAlert(a)})
	return err
}

// accept records a run per trigger and queues the work. A redelivered
// alert is recorded as a duplicate and not queued.
func (r *Responders) accept(ctx context.Context, rs *tripcap.Responder, source string, triggers []responder.Trigger) ([]*tripcap.ResponderRun, error) {
	var runs []*tripcap.ResponderRun
	for _, t := range triggers {
		kept, err := json.Marshal(t)
		if err != nil {
			return runs, fmt.Errorf("record responder run: %w", err)
		}
		now := r.now().UTC()
		run := &tripcap.ResponderRun{
			ID: tripcap.NewID(), ResponderID: rs.ID, Source: source, Format: string(t.Format),
			IdempotencyKey: t.IdempotencyKey(), AlertKey: t.AlertKey(), Condition: t.Condition,
			Summary: clipText(t.Summary, 500), Targets: describeTargets(t.Targets), Decision: tripcap.DecisionPending,
			ReceivedAt: now, Trigger: kept,
		}
		// The run is this server's to decide; once it stops, the run is
		// left to whichever server sweeps first.
		if r.bg.Err() == nil {
			run.Owner = r.cfg.Instance
		}
		err = r.store.CreateResponderRun(ctx, run, r.cfg.Lease)
		if tripcap.ErrorCode(err) == tripcap.ECONFLICT && run.IdempotencyKey != "" {
			run.Decision, run.Reason = tripcap.DecisionDuplicate, "a redelivery of an alert this responder already handled ("+run.IdempotencyKey+")"
			run.IdempotencyKey, run.Trigger, run.Owner, run.LeaseUntil = "", nil, "", time.Time{}
			now := r.now().UTC()
			run.FinishedAt = &now
			err = r.store.CreateResponderRun(ctx, run, 0)
			if err == nil {
				runs = append(runs, run)
				continue
			}
		}
		if err != nil {
			return runs, fmt.Errorf("record responder run: %w", err)
		}
		// The caller gets the run as recorded: the worker changes its own.
		snapshot := *run
		if run.Owner == "" {
			runs = append(runs, &snapshot)
			continue
		}
		r.track(run.ID)
		select {
		case r.jobs <- job{run: run, trg: t, rsp: rs}:
		default:
			r.finish(r.bg, run, tripcap.DecisionFailed, "the responder's queue is full; try again")
			r.untrack(run.ID)
			return runs, tripcap.Errorf(tripcap.EUNAVAILABLE, "responder %s is busy (%d triggers queued); retry later", rs.Name, r.cfg.Queue)
		}
		runs = append(runs, &snapshot)
	}
	return runs, nil
}

// finish records a run's outcome.
func (r *Responders) finish(ctx context.Context, run *tripcap.ResponderRun, decision, reason string) {
	now := r.now().UTC()
	run.Decision, run.Reason, run.FinishedAt = decision, reason, &now
	if err := r.store.UpdateResponderRun(ctx, run, r.cfg.Instance); err != nil {
		r.log.Error("recording responder run", "run", run.ID, "err", err)
	}
}

// handle decides and acts on one trigger, then follows up on the captures
// it started, holding the run's claim throughout.
func (r *Responders) handle(j job) {
	// The claim may have ended while the job waited, and another server
	// taken the run over: then it is that server's.
	if err := r.claim(r.bg, j.run.ID); err != nil {
		if r.bg.Err() == nil {
			r.log.Info("responder: run taken over or done elsewhere", "run", j.run.ID, "err", err)
		}
		r.untrack(j.run.ID)
		return
	}
	held, release := r.keep(j.run.ID)
	cur, err := r.store.FindResponderRuns(r.bg, tripcap.ResponderRunFilter{ID: &j.run.ID, Limit: 1})
	if err != nil || len(cur) == 0 {
		if r.bg.Err() == nil {
			r.log.Error("responder: reading run", "run", j.run.ID, "err", err)
		}
		release()
		return
	}
	j.run = cur[0]
	if j.run.Decision == tripcap.DecisionPending {
		r.decide(j)
	}
	if !j.run.Open() || j.run.Decision == tripcap.DecisionPending {
		// Done, or left undecided to the server that took it over.
		release()
		return
	}
	r.wg.Go(func() {
		defer release()
		r.notifyWhenDone(held, j.run)
	})
}

// decideTimeout bounds a decision carried through a shutdown.
const decideTimeout = 30 * time.Second

// decide acts on one trigger and records the run's decision, with the
// notifications it owes.
func (r *Responders) decide(j job) {
	run, t, rs := j.run, j.trg, j.rsp
	// A decision under way is carried through even when the server stops
	// meanwhile: half a decision (captures started, none recorded) would be
	// decided again by the run's next holder, capturing twice.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.admin), decideTimeout)
	defer cancel()
	// The responder may have changed since the trigger was queued.
	if cur, err := r.store.FindResponder(ctx, tripcap.ResponderFilter{ID: &rs.ID}); err == nil {
		rs = cur
	}
	if !rs.IsEnabled() {
		r.finish(ctx, run, tripcap.DecisionSkipped, "the responder is disabled")
		return
	}
	hosts, unresolved, err := r.resolveTargets(ctx, rs, t)
	if err != nil {
		run.Errors = append(run.Errors, err.Error())
		r.finish(ctx, run, tripcap.DecisionFailed, "resolving targets failed")
		return
	}
	for _, u := range unresolved {
		run.Hosts = append(run.Hosts, tripcap.ResponderRunHost{Decision: tripcap.DecisionUnresolved, Reason: u})
	}
	if len(hosts) == 0 {
		reason := "the alert names no target"
		if len(unresolved) > 0 {
			reason = "no host matches the alert's target: " + strings.Join(unresolved, "; ")
		}
		r.log.Warn("responder: unresolvable target", "responder", rs.Name, "run", run.ID, "targets", run.Targets)
		r.finish(ctx, run, tripcap.DecisionUnresolved, reason)
		return
	}
	for _, h := range hosts {
		// Act only while this server holds the run: one whose lease ran out
		// leaves the rest to the new holder.
		if err := r.claim(ctx, run.ID); err != nil {
			r.log.Warn("responder: run taken over mid-decision; leaving it", "run", run.ID, "err", err)
			return
		}
		var rh tripcap.ResponderRunHost
		if t.Condition == tripcap.ConditionResolved {
			rh = r.onResolved(ctx, rs, run, t, h)
		} else {
			rh = r.onFired(ctx, rs, run, t, h)
			if rh.Decision == tripcap.DecisionStarted && rs.Notifies() {
				rh.Notification = tripcap.NotifyPending
			}
		}
		run.Hosts = append(run.Hosts, rh)
	}
	// The decision and the notifications owed are written together: from
	// here a restart resumes the notifications.
	run.NotifyActionGroup = rs.NotifyActionGroup
	r.finish(ctx, run, overall(run.Hosts), "")
}

// overall is a run's decision from its hosts': started when any capture
// started, else stopped, else the first host's.
func overall(hs []tripcap.ResponderRunHost) string {
	for _, want := range []string{tripcap.DecisionStarted, tripcap.DecisionStopped, tripcap.DecisionFailed, tripcap.DecisionSkipped, tripcap.DecisionDuplicate} {
		for _, h := range hs {
			if h.Decision == want {
				return want
			}
		}
	}
	return tripcap.DecisionUnresolved
}

// onFired applies cooldown, the name-conflict policy and the watcher limit,
// then starts the capture.
func (r *Responders) onFired(ctx context.Context, rs *tripcap.Responder, run *tripcap.ResponderRun, t responder.Trigger, h *tripcap.Host) tripcap.ResponderRunHost {
	rh := tripcap.ResponderRunHost{HostID: h.ID, HostName: h.Name}
	skip := func(reason string) tripcap.ResponderRunHost {
		rh.Decision, rh.Reason = tripcap.DecisionSkipped, reason
		return rh
	}
	fail := func(err error) tripcap.ResponderRunHost {
		rh.Decision, rh.Reason = tripcap.DecisionFailed, tripcap.ErrorMessage(err)
		run.Errors = append(run.Errors, fmt.Sprintf("%s: %v", h.Name, err))
		return rh
	}
	if rs.CooldownMinutes > 0 && run.AlertKey != "" {
		since := r.now().Add(-time.Duration(rs.CooldownMinutes) * time.Minute)
		prev, err := r.store.FindResponderRuns(ctx, tripcap.ResponderRunFilter{ResponderID: &rs.ID, AlertKey: &run.AlertKey, Since: &since})
		if err != nil {
			return fail(err)
		}
		for _, p := range prev {
			if p.ID == run.ID {
				continue
			}
			for _, ph := range p.Hosts {
				if ph.HostID == h.ID && ph.Decision == tripcap.DecisionStarted {
					return skip(fmt.Sprintf("cooldown: capture %s started for this alert at %s, less than %d minutes ago", ph.CaptureName, p.ReceivedAt.Format(time.RFC3339), rs.CooldownMinutes))
				}
			}
		}
	}
	w, err := r.store.EnsureWatcher(ctx, h.Location, r.svc.cfg.MaxCapturesPerWatcher)
	if err != nil {
		return fail(err)
	}
	name := rs.Capture.Name
	if t.Overrides.CaptureName != "" {
		name = t.Overrides.CaptureName
	}
	existing, err := r.store.FindCapture(ctx, tripcap.CaptureFilter{WatcherID: &w.ID, Name: &name})
	switch {
	case tripcap.ErrorCode(err) == tripcap.ENOTFOUND:
	case err != nil:
		return fail(err)
	default:
		switch rs.NameConflict {
		case tripcap.ConflictSkip:
			return skip(fmt.Sprintf("a capture named %s already exists in %s (nameConflict skip)", name, w.Name))
		case tripcap.ConflictUnique:
			name = fmt.Sprintf("%s-%s", name, r.now().UTC().Format("20060102T150405.000"))
			name = strings.ReplaceAll(name, ".", "")
		default:
			// The seed: remove the old capture (its file stays), then create.
			// By id (a watcher-scoped reference is a name).
			if err := r.svc.DeleteCapture(ctx, "", existing.ID, "", false); err != nil && tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
				return fail(fmt.Errorf("replace capture %s: %w", name, err))
			}
		}
	}
	caps, _, err := r.store.FindCaptures(ctx, tripcap.CaptureFilter{WatcherID: &w.ID})
	if err != nil {
		return fail(err)
	}
	if len(caps) >= rs.Limit {
		return skip(fmt.Sprintf("limit: watcher %s holds %d captures, the responder's limit is %d", w.Name, len(caps), rs.Limit))
	}
	storage := rs.Capture.StorageAccount
	if t.Overrides.StorageID != "" {
		storage = t.Overrides.StorageID
	}
	local := ""
	if storage == "" && r.svc.cfg.DefaultStorage == "" {
		local = tripcap.DefaultCaptureDir + "/" + name + ".cap"
	}
	p := rs.Capture.Parameters(h.ResourceID(), h.Name, hostAddress(h), storage, local)
	if t.Overrides.TimeLimitSeconds > 0 {
		p.TimeLimitInSeconds = int32(t.Overrides.TimeLimitSeconds)
	}
	p.PreTriggerSeconds = preTriggerFrom(p.PreTriggerSeconds, t.FiredAt, r.now())
	c, err := r.svc.CreateCapture(ctx, CreateCaptureRequest{
		Name: name, Watcher: w.Name, Parameters: p,
		Cause: clipText(fmt.Sprintf("responder %s, run %s: %s", rs.Name, run.ID, t.Summary), 500),
	})
	if err != nil {
		return fail(err)
	}
	r.log.Info("responder started capture", "responder", rs.Name, "run", run.ID, "host", h.Name, "capture", c.Name)
	rh.Decision, rh.CaptureID, rh.CaptureName = tripcap.DecisionStarted, c.ID, c.Name
	return rh
}

// onResolved stops the capture this alert started on the host, when the
// responder says so.
func (r *Responders) onResolved(ctx context.Context, rs *tripcap.Responder, run *tripcap.ResponderRun, _ responder.Trigger, h *tripcap.Host) tripcap.ResponderRunHost {
	rh := tripcap.ResponderRunHost{HostID: h.ID, HostName: h.Name}
	if !rs.StopOnResolved {
		rh.Decision, rh.Reason = tripcap.DecisionSkipped, "the alert resolved; stopOnResolved is off, so the capture runs to its limits"
		return rh
	}
	prev, err := r.store.FindResponderRuns(ctx, tripcap.ResponderRunFilter{ResponderID: &rs.ID, AlertKey: &run.AlertKey, Limit: 50})
	if err != nil {
		rh.Decision, rh.Reason = tripcap.DecisionFailed, err.Error()
		return rh
	}
	for _, p := range prev {
		for _, ph := range p.Hosts {
			if ph.HostID != h.ID || ph.Decision != tripcap.DecisionStarted {
				continue
			}
			c, err := r.svc.StopCapture(ctx, "", ph.CaptureID, "")
			if err != nil {
				rh.Decision, rh.Reason = tripcap.DecisionFailed, tripcap.ErrorMessage(err)
				run.Errors = append(run.Errors, fmt.Sprintf("%s: stop %s: %v", h.Name, ph.CaptureName, err))
				return rh
			}
			rh.Decision, rh.CaptureID, rh.CaptureName, rh.Reason = tripcap.DecisionStopped, c.ID, c.Name, "the alert resolved"
			return rh
		}
	}
	rh.Decision, rh.Reason = tripcap.DecisionSkipped, "the alert resolved; no capture of this alert is running on the host"
	return rh
}

// resolveTargets maps a trigger's targets to hosts, and says which targets
// matched none. The metric alert schemas name one resource twice (id and
// name): that is one target, resolved by either.
func (r *Responders) resolveTargets(ctx context.Context, rs *tripcap.Responder, t responder.Trigger) ([]*tripcap.Host, []string, error) {
	var (
		hosts      []*tripcap.Host
		seen       = map[string]bool{}
		unresolved []string
	)
	add := func(h *tripcap.Host) {
		if !seen[h.ID] {
			seen[h.ID] = true
			hosts = append(hosts, h)
		}
	}
	type target struct {
		desc string
		try  []func() (*tripcap.Host, error)
	}
	byID := func(id string) func() (*tripcap.Host, error) {
		return func() (*tripcap.Host, error) { return r.store.FindHost(ctx, tripcap.HostFilter{ResourceID: &id}) }
	}
	byName := func(n responder.NameTarget) func() (*tripcap.Host, error) {
		return func() (*tripcap.Host, error) {
			h, err := r.store.FindHost(ctx, tripcap.HostFilter{Name: &n.Name})
			if err == nil && n.ResourceGroup != "" && !strings.EqualFold(h.ResourceGroup, n.ResourceGroup) {
				return nil, tripcap.Errorf(tripcap.ENOTFOUND, "host %s is in resource group %s, not %s", h.Name, h.ResourceGroup, n.ResourceGroup)
			}
			return h, err
		}
	}
	var targets []target
	ts := t.Targets
	if len(ts.ResourceIDs) == 1 && len(ts.Names) == 1 {
		targets = append(targets, target{desc: "resource " + ts.ResourceIDs[0], try: []func() (*tripcap.Host, error){byID(ts.ResourceIDs[0]), byName(ts.Names[0])}})
	} else {
		for _, id := range ts.ResourceIDs {
			targets = append(targets, target{desc: "resource " + id, try: []func() (*tripcap.Host, error){byID(id)}})
		}
		for _, n := range ts.Names {
			targets = append(targets, target{desc: "resource " + n.ResourceGroup + "/" + n.Name, try: []func() (*tripcap.Host, error){byName(n)}})
		}
	}
	if len(ts.Labels) > 0 {
		cands := responder.LabelCandidates(ts.Labels, rs.TargetLabels)
		tg := target{desc: "labels " + describeLabels(ts.Labels, rs.TargetLabels)}
		for _, c := range cands {
			tg.try = append(tg.try, func() (*tripcap.Host, error) { return r.hostByNameOrAddress(ctx, c) })
		}
		targets = append(targets, tg)
	}
	for _, tg := range targets {
		var found *tripcap.Host
		for _, try := range tg.try {
			h, err := try()
			if err == nil {
				found = h
				break
			}
			if c := tripcap.ErrorCode(err); c != tripcap.ENOTFOUND && c != tripcap.EINVALID {
				return nil, nil, err
			}
		}
		if found == nil {
			unresolved = append(unresolved, tg.desc)
			continue
		}
		add(found)
	}
	return hosts, unresolved, nil
}

// hostByNameOrAddress finds a host by name, else by an interface address.
func (r *Responders) hostByNameOrAddress(ctx context.Context, v string) (*tripcap.Host, error) {
	if h, err := r.store.FindHost(ctx, tripcap.HostFilter{Name: &v}); err == nil {
		return h, nil
	} else if c := tripcap.ErrorCode(err); c != tripcap.ENOTFOUND && c != tripcap.EINVALID {
		return nil, err
	}
	addr, err := netip.ParseAddr(v)
	if err != nil {
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no host named %q", v)
	}
	cursor := ""
	for {
		hs, next, err := r.store.FindHosts(ctx, tripcap.HostFilter{Cursor: cursor, Limit: 500})
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			for _, a := range h.Inventory.Addresses() {
				if b, err := netip.ParseAddr(a); err == nil && b.Unmap() == addr.Unmap() {
					return h, nil
				}
			}
		}
		if next == "" {
			return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no host named or addressed %q", v)
		}
		cursor = next
	}
}

// hostAddress is the address ${host.address} stands for: the first global
// IPv4 address, else the first non-loopback one.
func hostAddress(h *tripcap.Host) string {
	var fallback string
	for _, a := range h.Inventory.Addresses() {
		ip, err := netip.ParseAddr(a)
		if err != nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			continue
		}
		if ip.Is4() {
			return ip.String()
		}
		if fallback == "" {
			fallback = ip.String()
		}
	}
	return fallback
}

// notifyWhenDone tells the run's notify action group of each capture the
// run started, once it has ended and its files are stored.
func (r *Responders) notifyWhenDone(held context.Context, run *tripcap.ResponderRun) {
	var wg sync.WaitGroup
	for i, rh := range run.Hosts {
		if rh.Notification == tripcap.NotifyPending {
			wg.Go(func() { r.notifyHost(held, run, i) })
		}
	}
	wg.Wait()
}

// notifyHost waits for the capture of the run's host i to end and its
// files to be stored, then notifies. Shutting down leaves the notification
// pending, for the next start (or a replica) to send.
func (r *Responders) notifyHost(held context.Context, run *tripcap.ResponderRun, i int) {
	// The wait counts from the decision, across restarts.
	from := run.ReceivedAt
	if run.FinishedAt != nil {
		from = *run.FinishedAt
	}
	ctx, cancel := context.WithDeadline(held, from.Add(r.cfg.NotifyTimeout))
	defer cancel()
	rh := run.Hosts[i]
	tick := time.NewTicker(r.cfg.PollInterval)
	defer tick.Stop()
	var c *tripcap.PacketCapture
wait:
	for {
		// Looked up even when the wait is over (a server resuming long
		// after the capture ended), so what is known is told.
		cur, err := r.store.FindCapture(r.bg, tripcap.CaptureFilter{ID: &rh.CaptureID, IncludeDeleted: true})
		if err == nil {
			c = cur
		} else if r.bg.Err() == nil {
			r.log.Warn("responder: watching capture", "capture", rh.CaptureID, "err", err)
		}
		if c != nil && c.Status.Terminal() && stored(c) {
			break
		}
		select {
		case <-ctx.Done():
			if held.Err() != nil {
				return // shutting down, or the run is another server's now
			}
			if c == nil {
				r.recordNotify(run, i, fmt.Errorf("notify: capture %s of %s not found within %s", rh.CaptureName, rh.HostName, r.cfg.NotifyTimeout))
				return
			}
			// Timed out: notify with what is known.
			break wait
		case <-tick.C:
		}
	}
	// Only the server holding the run notifies (a check just before the
	// one action that cannot be undone).
	if err := r.claim(r.bg, run.ID); err != nil {
		if r.bg.Err() == nil {
			r.log.Warn("responder: notification left to the run's holder", "run", run.ID, "err", err)
		}
		return
	}
	rs, err := r.store.FindResponder(r.bg, tripcap.ResponderFilter{ID: &run.ResponderID})
	switch {
	case tripcap.ErrorCode(err) == tripcap.ENOTFOUND:
		// Deleted since: its action group is still told; its own receivers went with it.
		rs = &tripcap.Responder{ID: run.ResponderID, Name: run.ResponderID}
	case err != nil:
		if r.bg.Err() == nil {
			r.recordNotify(run, i, fmt.Errorf("notify: find responder %s: %w", run.ResponderID, err))
		}
		return
	}
	var groups []*tripcap.ActionGroup
	if run.NotifyActionGroup != "" {
		g, err := r.store.FindActionGroup(r.bg, tripcap.ActionGroupFilter{Name: &run.NotifyActionGroup})
		if err != nil {
			if r.bg.Err() == nil {
				r.recordNotify(run, i, fmt.Errorf("notify action group %s: %w", run.NotifyActionGroup, err))
			}
			return
		}
		groups = append(groups, g)
	}
	if own := rs.OwnReceivers(); own != nil {
		groups = append(groups, own)
	}
	if len(groups) == 0 {
		r.recordNotify(run, i, errors.New("notification not sent: no receivers left (the responder was deleted, or its own receivers removed)"))
		return
	}
	alert, props := r.completion(rs, run, c)
	var failed []string
	for _, g := range groups {
		ds := r.notifier.Notify(r.bg, g, alert, props)
		if r.bg.Err() != nil {
			// Cut short by shutdown: sent again after it.
			return
		}
		// A receiver failed when its final attempt did not succeed.
		for _, d := range ds {
			if d.Final && !d.Success {
				failed = append(failed, fmt.Sprintf("%s %s: %s", d.ReceiverKind, d.Receiver, d.Error))
			}
		}
		if !g.IsEnabled() {
			failed = append(failed, fmt.Sprintf("action group %s is disabled", g.Name))
		}
	}
	var nerr error
	if len(failed) > 0 {
		nerr = errors.New("notification failed: " + strings.Join(failed, "; "))
	}
	r.recordNotify(run, i, nerr)
}

// stored reports whether every file of a capture bound for a storage
// account has reached it (files kept on the host count as stored).
func stored(c *tripcap.PacketCapture) bool {
	if c.Parameters.StorageLocation.StorageID == "" {
		return true
	}
	if len(c.Files) == 0 {
		// A capture that failed before writing has nothing to wait for.
		return c.Stats.Packets == 0 || c.Status == tripcap.StatusError
	}
	for _, f := range c.Files {
		if !f.Stored {
			return false
		}
	}
	return true
}

// completion describes a finished capture as an alert (the run's) with the
// capture's facts as custom properties, so every receiver kind and both
// webhook schemas carry them.
func (r *Responders) completion(rs *tripcap.Responder, run *tripcap.ResponderRun, c *tripcap.PacketCapture) (tripcap.Alert, map[string]string) {
	h, _ := r.store.FindHost(r.bg, tripcap.HostFilter{ID: &c.HostID})
	// The capture's id is the alert's: one notification per capture, the
	// same id if it is ever sent twice (a server stopped mid-send), so
	// receivers can tell.
	a := tripcap.Alert{
		ID: c.ID, RuleID: rs.ID, RuleName: "responder " + rs.Name, Severity: 4,
		Description: "packet capture " + c.Name + " completed: " + string(c.Status),
		HostID:      c.HostID, MonitorCondition: tripcap.ConditionFired, FiredAt: r.now().UTC(),
		ConditionType: "PacketCaptureCompleted", WindowSize: "PT1M",
	}
	if h != nil {
		a.HostName, a.TargetResourceID, a.SubscriptionID, a.ResourceGroup, a.Location = h.Name, h.ResourceID(), h.SubscriptionID, h.ResourceGroup, h.Location
	}
	props := map[string]string{
		"responder":      rs.Name,
		"runId":          run.ID,
		"captureId":      c.ID,
		"captureName":    c.Name,
		"host":           a.HostName,
		"status":         string(c.Status),
		"stopReason":     c.StopReason,
		"packets":        strconv.FormatUint(c.Stats.Packets, 10),
		"storagePath":    c.Parameters.StorageLocation.StoragePath,
		"localPath":      c.Parameters.StorageLocation.LocalPath,
		"errors":         strings.Join(c.Errors, ","),
		"downloadUrl":    "",
		"errorMessage":   c.ErrorMessage,
		"alertSummary":   run.Summary,
		"alertCondition": string(run.Condition),
	}
	if r.cfg.PublicURL != "" {
		props["downloadUrl"] = strings.TrimRight(r.cfg.PublicURL, "/") + "/api/v1/captures/" + c.ID + "/file"
	}
	for k, v := range props {
		if v == "" && !slices.Contains(completionFields, k) {
			delete(props, k)
		}
	}
	return a, props
}

// completionFields are the properties every completion notification
// carries, empty when there is nothing to say (no errors, no storage, no
// public URL), so that a receiver can read them without checking.
var completionFields = []string{"captureName", "host", "storagePath", "downloadUrl", "packets", "stopReason", "errors"}

// recordNotify writes a notification's outcome into the run.
func (r *Responders) recordNotify(run *tripcap.ResponderRun, i int, err error) {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	cur, ferr := r.store.FindResponderRuns(r.bg, tripcap.ResponderRunFilter{ID: &run.ID, Limit: 1})
	if ferr != nil || len(cur) == 0 {
		r.log.Error("responder: reading run for notification", "run", run.ID, "err", ferr)
		return
	}
	rr := cur[0]
	if i >= len(rr.Hosts) {
		return
	}
	if err != nil {
		rr.Errors = append(rr.Errors, err.Error())
		rr.Hosts[i].Notification = tripcap.NotifyFailed
		r.log.Warn("responder: notification", "run", run.ID, "err", err)
	} else {
		now := r.now().UTC()
		rr.Hosts[i].Notification, rr.Hosts[i].Notified = tripcap.NotifySent, &now
	}
	if uerr := r.store.UpdateResponderRun(r.bg, rr, r.cfg.Instance); uerr != nil {
		r.log.Error("responder: recording notification", "run", run.ID, "err", uerr)
	}
}

func describeTargets(t responder.Targets) string {
	var parts []string
	if len(t.ResourceIDs) > 0 {
		parts = append(parts, "resourceIds "+strings.Join(t.ResourceIDs, ","))
	}
	for _, n := range t.Names {
		parts = append(parts, "resource "+n.ResourceGroup+"/"+n.Name)
	}
	if len(t.Labels) > 0 {
		parts = append(parts, "labels "+describeLabels(t.Labels, nil))
	}
	if len(parts) == 0 {
		return "(none)"
	}
	return clipText(strings.Join(parts, "; "), 1000)
}

func describeLabels(labels map[string]string, keys []string) string {
	if len(keys) == 0 {
		keys = responder.DefaultLabelKeys()
	}
	var parts []string
	for _, k := range keys {
		if v, ok := labels[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	if len(parts) == 0 {
		return "(none of " + strings.Join(keys, ", ") + ")"
	}
	return strings.Join(parts, ",")
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// preTriggerFrom makes preTriggerSeconds count back from when the alert
// fired rather than from when the capture starts: the delay between the
// two (metric shipping, evaluation, delivery) is added, plus a second for
// the session to start on the host after it is created, so the file holds
// the seconds before the alert the responder asked for, as far as the
// agent's buffer reaches. An alert more than a minute old (a replay, a
// sender's clock far off) is not corrected: its lead is long gone.
func preTriggerFrom(seconds int32, firedAt, now time.Time) int32 {
	if seconds <= 0 || firedAt.IsZero() {
		return seconds
	}
	lag := now.Sub(firedAt)
	if lag <= 0 || lag > time.Minute {
		return seconds
	}
	return min(seconds+int32((lag+time.Second-1)/time.Second)+1, tripcap.MaxPreTriggerSeconds)
}
