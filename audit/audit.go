// Package audit keeps the audit log: Record stores an event and writes it as
// one structured log line (component=audit); List answers it, to callers
// with tripcap.PermAuditRead; the retention pruner removes what is older
// than the configured period.
//
// Writes are batched by one writer goroutine, so that auditing a request
// costs a channel send, not a database commit. The log never drops an event
// silently: the log line is written before Record returns, whatever happens
// to the database write; when the queue is full Record waits (the request
// waits with it) rather than dropping; an event that still cannot be stored
// (the queue stayed full for Config.QueueWait, the database refused it) is
// logged at error level with every field and counted in Dropped, which the
// server exports as tripcap_audit_events_dropped_total.
package audit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tripcap/tripcap"
)

// DefaultRetention is how long events are kept unless configured.
const DefaultRetention = 90 * 24 * time.Hour

// Config tunes a Recorder; zero values take the defaults.
type Config struct {
	// Retention is how long events are kept (default DefaultRetention);
	// negative keeps them forever.
	Retention time.Duration
	// PruneInterval is how often RunRetention prunes (default 1 h).
	PruneInterval time.Duration
	// Queue is how many events wait for the writer (default 4096).
	Queue int
	// Batch is the most events written in one transaction (default 256).
	Batch int
	// Linger is how long the writer waits for more events before it
	// writes a batch (default 10 ms): the events are in the log at once,
	// in the database this much later at most, a commit per burst.
	Linger time.Duration
	// QueueWait bounds how long Record waits for room in a full queue
	// before it counts the event as dropped (default 10 s).
	QueueWait time.Duration
}

// Recorder records audit events. It is safe for concurrent use.
type Recorder struct {
	store tripcap.AuditStore
	log   *slog.Logger
	cfg   Config
	now   func() time.Time

	queue chan item
	// mu orders Record's sends before Close's close of the queue.
	mu     sync.RWMutex
	closed bool
	done   chan struct{}

	recorded, dropped, pruned atomic.Int64

	idMu   sync.Mutex
	lastID string
}

// item is an event, or (flushed set) a marker the writer closes once
// everything queued before it is written.
type item struct {
	e       *tripcap.AuditEvent
	flushed chan struct{}
}

// New returns a Recorder storing into store and logging to log, and starts
// its writer; Close stops it.
func New(store tripcap.AuditStore, log *slog.Logger, cfg Config) *Recorder {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.PruneInterval <= 0 {
		cfg.PruneInterval = time.Hour
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 4096
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 10 * time.Millisecond
	}
	if cfg.QueueWait <= 0 {
		cfg.QueueWait = 10 * time.Second
	}
	r := &Recorder{store: store, log: log.With("component", "audit"), cfg: cfg, now: time.Now,
		queue: make(chan item, cfg.Queue), done: make(chan struct{})}
	go r.write()
	return r
}

// Recorded counts the events stored; Dropped those that could not be
// (each logged at error level); Pruned those retention removed.
func (r *Recorder) Recorded() int64 { return r.recorded.Load() }
func (r *Recorder) Dropped() int64  { return r.dropped.Load() }
func (r *Recorder) Pruned() int64   { return r.pruned.Load() }

// Record logs e and queues it for the database. It fills in ID and Time
// when unset, and clips e's text (tripcap.AuditEvent.Sanitize). It returns
// an error only when the event could not be queued; the event is then
// logged as dropped, so a caller may go on.
func (r *Recorder) Record(ctx context.Context, e tripcap.AuditEvent) error {
	if e.ID == "" {
		e.ID = r.nextID()
	}
	if e.Time.IsZero() {
		e.Time = r.now()
	}
	e.Time = e.Time.UTC()
	if e.Result == "" {
		e.Result = tripcap.AuditResultOf(e.Status)
	}
	e.Sanitize()
	r.log.LogAttrs(ctx, slog.LevelInfo, "audit", attrs(&e)...)

	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		// The writer is gone (the server is stopping): store it here.
		return r.store1(ctx, &e)
	}
	select {
	case r.queue <- item{e: &e}:
		return nil
	default:
	}
	// Full: the caller waits, bounded, rather than the event being lost.
	t := time.NewTimer(r.cfg.QueueWait)
	defer t.Stop()
	select {
	case r.queue <- item{e: &e}:
		return nil
	case <-t.C:
		err := tripcap.Errorf(tripcap.EUNAVAILABLE, "the audit queue stayed full for %s", r.cfg.QueueWait)
		r.drop(&e, err)
		return err
	case <-ctx.Done():
		err := fmt.Errorf("queue audit event: %w", ctx.Err())
		r.drop(&e, err)
		return err
	}
}

// nextID is an id above every one this recorder made: the log lists
// newest first by id.
func (r *Recorder) nextID() string {
	r.idMu.Lock()
	defer r.idMu.Unlock()
	r.lastID = tripcap.NewIDAfter(r.lastID)
	return r.lastID
}

// attrs are an event's log fields; an event holds no secret.
func attrs(e *tripcap.AuditEvent) []slog.Attr {
	return []slog.Attr{
		slog.String("id", e.ID), slog.Time("time", e.Time), slog.String("action", e.Action),
		slog.String("principalId", e.PrincipalID), slog.String("principalKind", string(e.PrincipalKind)),
		slog.String("principal", e.PrincipalName), slog.String("resource", e.Resource), slog.String("hostId", e.HostID),
		slog.String("remoteAddr", e.RemoteAddr), slog.String("result", string(e.Result)), slog.Int("status", e.Status),
		slog.String("detail", e.Detail),
	}
}

// drop counts an event that will not be stored and logs it whole, so the
// log keeps what the database could not.
func (r *Recorder) drop(e *tripcap.AuditEvent, err error) {
	r.dropped.Add(1)
	r.log.LogAttrs(context.Background(), slog.LevelError, "audit event not stored", append(attrs(e), slog.String("err", err.Error()))...)
}

// store1 writes one event directly (after Close), with a bounded wait.
func (r *Recorder) store1(ctx context.Context, e *tripcap.AuditEvent) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.QueueWait)
	defer cancel()
	if err := r.store.AppendAuditEvents(ctx, []*tripcap.AuditEvent{e}); err != nil {
		r.drop(e, err)
		return err
	}
	r.recorded.Add(1)
	return nil
}

// write is the writer: it takes what is queued, up to Batch events at a
// time, and stores them in one transaction, until Close closes the queue.
func (r *Recorder) write() {
	defer close(r.done)
	var batch []*tripcap.AuditEvent
	var flushed []chan struct{}
	linger := time.NewTimer(0)
	<-linger.C
	for it := range r.queue {
		batch, flushed = r.add(batch, flushed, it)
		// Wait a little for more, so that a burst of calls costs one
		// commit, not one each; a Flush, a full batch or Close end the wait.
		linger.Reset(r.cfg.Linger)
	more:
		for len(batch) < r.cfg.Batch && len(flushed) == 0 {
			select {
			case it, ok := <-r.queue:
				if !ok {
					break more
				}
				batch, flushed = r.add(batch, flushed, it)
			case <-linger.C:
				break more
			}
		}
		linger.Stop()
		r.flush(batch)
		for _, c := range flushed {
			close(c)
		}
		batch, flushed = batch[:0], flushed[:0]
	}
}

func (r *Recorder) add(batch []*tripcap.AuditEvent, flushed []chan struct{}, it item) ([]*tripcap.AuditEvent, []chan struct{}) {
	if it.flushed != nil {
		return batch, append(flushed, it.flushed)
	}
	return append(batch, it.e), flushed
}

// flush stores a batch, trying again a few times (the database may be
// restarting); then it stores the events one by one, so one the store
// refuses does not take the others with it, and drops, loudly, what fails.
func (r *Recorder) flush(batch []*tripcap.AuditEvent) {
	if len(batch) == 0 {
		return
	}
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.QueueWait)
		err = r.store.AppendAuditEvents(ctx, batch)
		cancel()
		if err == nil {
			r.recorded.Add(int64(len(batch)))
			return
		}
		if tripcap.ErrorCode(err) == tripcap.EINVALID || tripcap.ErrorCode(err) == tripcap.ECONFLICT {
			break
		}
	}
	r.log.Warn("storing a batch of audit events failed; storing them one by one", "events", len(batch), "err", err)
	for _, e := range batch {
		_ = r.store1(context.Background(), e)
	}
}

// Flush waits until every event recorded before it is stored (or dropped).
func (r *Recorder) Flush(ctx context.Context) error {
	c := make(chan struct{})
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return nil
	}
	select {
	case r.queue <- item{flushed: c}:
	case <-ctx.Done():
		r.mu.RUnlock()
		return ctx.Err()
	}
	r.mu.RUnlock()
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stores what is queued and stops the writer; later events are
// stored one at a time. Safe to call more than once.
func (r *Recorder) Close() error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.queue)
	}
	r.mu.Unlock()
	<-r.done
	return nil
}

// List answers the audit log to a caller holding tripcap.PermAuditRead,
// with what this process recorded already stored.
func (r *Recorder) List(ctx context.Context, f tripcap.AuditFilter) ([]*tripcap.AuditEvent, string, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermAuditRead, nil); err != nil {
		return nil, "", err
	}
	if err := r.Flush(ctx); err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	return r.store.FindAuditEvents(ctx, f)
}

// Prune removes the events older than the retention, now; a negative
// retention keeps everything.
func (r *Recorder) Prune(ctx context.Context) (int64, error) {
	if r.cfg.Retention < 0 {
		return 0, nil
	}
	cutoff := r.now().Add(-r.cfg.Retention)
	n, err := r.store.DeleteAuditEventsBefore(ctx, cutoff)
	if err != nil {
		return 0, fmt.Errorf("prune audit events: %w", err)
	}
	r.pruned.Add(n)
	if n > 0 {
		r.log.Info("audit events past retention deleted", "events", n, "before", cutoff.UTC().Format(time.RFC3339), "retention", r.cfg.Retention.String())
	}
	return n, nil
}

// RunRetention prunes at once and then every PruneInterval, until ctx
// ends. A failed prune is logged and tried again at the next interval.
func (r *Recorder) RunRetention(ctx context.Context) error {
	t := time.NewTicker(r.cfg.PruneInterval)
	defer t.Stop()
	for {
		if _, err := r.Prune(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("audit retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
