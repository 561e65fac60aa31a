// Package controlplane is tripcap's control plane logic: enrollment, hosts,
// network watchers, captures and the agent protocol, and the monitor's
// metric ingest and alert administration. The HTTP handlers are thin
// adapters over it; tests call it directly.
package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/capturefile"
)

// Config holds the control plane's settings.
type Config struct {
	// SubscriptionID and ResourceGroup give hosts their ARM ids unless a host's
	// labels (azure.subscription, azure.resourceGroup) say otherwise.
	SubscriptionID string
	ResourceGroup  string
	// DefaultLocation is the location of hosts that enroll without one.
	DefaultLocation string
	// MaxCapturesPerWatcher is the parallel limit of new watchers.
	MaxCapturesPerWatcher int
	// HeartbeatInterval is how often agents heartbeat; a host is Offline after
	// OfflineAfter without one.
	HeartbeatInterval time.Duration
	OfflineAfter      time.Duration
	// Storage maps the storage accounts configured at start (storageId) to
	// their backends; OpenStorage opens those added at run time by URL.
	Storage        map[string]tripcap.BlobStore
	DefaultStorage string
	OpenStorage    func(ctx context.Context, url string) (tripcap.BlobStore, error)
	// CAFingerprint, when set, gives the fingerprint of the CA the server
	// presents; join tokens carry it (tripcap.JoinTokenString).
	CAFingerprint func() string
	// FileRetention is how long stored capture files are kept (by their
	// CreatedAt) before the sweeper deletes them; 0 keeps them until a user
	// deletes them. It applies to the files of deleted captures too.
	FileRetention time.Duration
}

func (c *Config) applyDefaults() {
	if c.SubscriptionID == "" {
		c.SubscriptionID = "00000000-0000-0000-0000-000000000000"
	}
	if c.ResourceGroup == "" {
		c.ResourceGroup = "tripcap"
	}
	if c.DefaultLocation == "" {
		c.DefaultLocation = "local"
	}
	if c.MaxCapturesPerWatcher == 0 {
		c.MaxCapturesPerWatcher = tripcap.DefaultParallelCapturesPerWatcher
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.OfflineAfter == 0 {
		c.OfflineAfter = 3 * c.HeartbeatInterval
	}
}

// Service is the control plane. Create it with New and start its background
// work with Run.
type Service struct {
	store tripcap.Store
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	// started is when the service was made: no host is swept Offline before
	// OfflineAfter has passed since, because a restarted server has simply not
	// heard anyone yet.
	started time.Time

	waiters    *waiters
	heartbeats *heartbeatBatch
	progress   *progressBatch
	polls      openPolls
	pollClock  pollClock
	principals principalCache
	auth       authState
	// batching is on while Run flushes batches; without Run every report
	// is written at once.
	batching atomic.Bool
	counters Counters
	storage  storageAccounts
	// storageChecks caches CheckStorage's answer (storage_check.go).
	storageChecks storageChecks

	// Files is the file stage: upload targets, uploads, their completion
	// and downloads, for the captures and storage accounts held here.
	*capturefile.Files
}

// Counters are the control plane's running totals, for /metrics.
type Counters struct {
	PollsWaiting atomic.Int64
	Heartbeats   atomic.Uint64
	Reports      atomic.Uint64
	Uploads      atomic.Uint64
}

// Counters returns the service's running totals.
func (s *Service) Counters() *Counters { return &s.counters }

// New returns a control plane over store.
func New(store tripcap.Store, cfg Config, log *slog.Logger) *Service {
	cfg.applyDefaults()
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "controlplane")
	s := &Service{
		store:      store,
		cfg:        cfg,
		log:        log,
		now:        time.Now,
		started:    time.Now(),
		waiters:    newWaiters(),
		heartbeats: &heartbeatBatch{seen: map[string]time.Time{}},
		progress:   newProgressBatch(),
		storage:    storageAccounts{open: map[string]tripcap.BlobStore{}},
	}
	s.Files = capturefile.New(capturefile.Config{
		Agent:         requireAgent,
		Capture:       s.captureByID,
		FindCapture:   s.FindCapture,
		UpdateCapture: s.updateCapture,
		BlobStore:     s.blobStore,
		Index:         store,
		Hosts:         store,
		Stored:        func() { s.counters.Uploads.Add(1) },
		Now:           func() time.Time { return s.now() },
	})
	return s
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// Run does the background work until ctx ends: it relays host changes to
// waiting agents, flushes heartbeats and capture progress, and sweeps silent
// hosts Offline.
func (s *Service) Run(ctx context.Context) error {
	s.batching.Store(true)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			err := s.store.WatchHostChanges(ctx, s.hostChanged)
			s.waiters.watch(false)
			if ctx.Err() == nil {
				s.log.Error("watching host changes; retrying", "err", err)
				tripcap.Sleep(ctx, time.Second)
			}
		}
	}()
	flush := time.NewTicker(time.Second)
	defer flush.Stop()
	sweepEvery := min(s.cfg.OfflineAfter/3, 5*time.Second)
	sweep := time.NewTicker(max(sweepEvery, 100*time.Millisecond))
	defer sweep.Stop()
	retention := s.retentionTicker()
	defer retention.Stop()
	for {
		select {
		case <-ctx.Done():
			// Record the last heartbeats and progress so a restart does not see them older than they were.
			s.batching.Store(false)
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.flushHeartbeats(fctx)
			s.flushProgress(fctx)
			cancel()
			wg.Wait()
			return nil
		case <-flush.C:
			s.flushHeartbeats(ctx)
			s.flushProgress(ctx)
		case <-sweep.C:
			if err := s.SweepOffline(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("sweeping offline hosts", "err", err)
			}
		case <-retention.C:
			s.sweepFiles(ctx)
		}
	}
}

// hostChanged wakes the host's long polls and forgets its cached
// credentials (a revocation on any replica signals a change); "" means
// changes may have been missed, so it does both for every host.
func (s *Service) hostChanged(hostID string) {
	s.principals.revokeHost(hostID)
	if hostID == "" {
		// The watch is set up (again): from now on every change is signalled.
		s.waiters.watch(true)
		return
	}
	s.waiters.wake(hostID)
}

// waiters wakes agents' long polls when their host's desired state changes,
// and remembers the revision each host's last poll read, so that a poll
// whose agent is up to date (most of them: a poll ends after its wait and
// the next one asks again) waits without reading the database. A revision
// is remembered only while the store's change watch is live (watching), and
// only if no change of its host was signalled between taking the channel
// and reading it: the signal of any later change forgets it, as it wakes the
// polls already waiting. A poll therefore learns of a change no later than a
// waiting one does: when its signal arrives.
type waiters struct {
	mu sync.Mutex
	ch map[string]chan struct{}
	// rev is the revision read under each host's current channel.
	rev map[string]int64
	// watching is set by the watch's "" (set up, or reconnected: every
	// change since is signalled) and cleared when the watch ends.
	watching bool
}

// maxRemembered bounds the remembered revisions: past it, they start over.
const maxRemembered = 100_000

func newWaiters() *waiters { return &waiters{ch: map[string]chan struct{}{}, rev: map[string]int64{}} }

// channel returns a channel closed at the next change of hostID, and the
// host's revision if one read since the last change is remembered.
func (w *waiters) channel(hostID string) (<-chan struct{}, int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.ch[hostID]
	if !ok {
		c = make(chan struct{})
		w.ch[hostID] = c
	}
	rev, known := w.rev[hostID]
	return c, rev, known && w.watching
}

// remember keeps rev, read from the store after channel returned c, unless
// c has been closed since (a change was signalled: rev may predate it).
func (w *waiters) remember(hostID string, c <-chan struct{}, rev int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.watching || w.ch[hostID] != c {
		return
	}
	if len(w.rev) >= maxRemembered {
		clear(w.rev)
	}
	w.rev[hostID] = rev
}

// wake closes hostID's channel, or every channel for "", and forgets the
// revisions read under them.
func (w *waiters) wake(hostID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if hostID == "" {
		for id, c := range w.ch {
			close(c)
			delete(w.ch, id)
		}
		clear(w.rev)
		return
	}
	delete(w.rev, hostID)
	if c, ok := w.ch[hostID]; ok {
		close(c)
		delete(w.ch, hostID)
	}
}

// watch records whether the store's change watch is live: once it is
// (the watch's ""), every change is signalled; when it ends, changes may go
// unsignalled, so nothing remembered is used until it is live again.
func (w *waiters) watch(live bool) {
	w.mu.Lock()
	w.watching = live
	w.mu.Unlock()
	w.wake("")
}

// heartbeatBatch collects last-seen times so that thousands of agents cost
// one write a second, not one each.
type heartbeatBatch struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (b *heartbeatBatch) add(hostID string, t time.Time) {
	b.mu.Lock()
	b.seen[hostID] = t
	b.mu.Unlock()
}

func (b *heartbeatBatch) take() map[string]time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.seen) == 0 {
		return nil
	}
	out := b.seen
	b.seen = map[string]time.Time{}
	return out
}

func (s *Service) flushHeartbeats(ctx context.Context) {
	now := s.now()
	for _, id := range s.polls.due(now, s.cfg.HeartbeatInterval) {
		s.heartbeats.add(id, now)
	}
	seen := s.heartbeats.take()
	if seen == nil {
		return
	}
	// A transaction per chunk, as for progress: an API write waits for a
	// few hundred hosts, not for the whole fleet's second.
	ids := slices.Sorted(maps.Keys(seen))
	for i, chunk := range slices.Collect(slices.Chunk(ids, heartbeatChunk)) {
		part := make(map[string]time.Time, len(chunk))
		for _, id := range chunk {
			part[id] = seen[id]
		}
		if err := s.store.TouchHosts(ctx, part); err != nil {
			s.log.Error("recording heartbeats", "hosts", len(ids)-i*heartbeatChunk, "err", err)
			// Keep them for the next flush unless a newer heartbeat arrived meanwhile.
			s.heartbeats.mu.Lock()
			for _, id := range ids[i*heartbeatChunk:] {
				if cur, ok := s.heartbeats.seen[id]; !ok || cur.Before(seen[id]) {
					s.heartbeats.seen[id] = seen[id]
				}
			}
			s.heartbeats.mu.Unlock()
			return
		}
	}
}

// heartbeatChunk bounds one heartbeat transaction.
const heartbeatChunk = 250

// openPolls are the long polls waiting on this replica, by host. An open
// poll is a live connection from the agent (HTTP/2 pings check it), so it
// counts as a heartbeat every interval for as long as it stays open: an
// idle agent then needs no request but its poll, one every poll wait.
type openPolls struct {
	mu sync.Mutex
	// hosts counts each host's open polls and when it last counted as a heartbeat.
	hosts map[string]*openPoll
}

type openPoll struct {
	n       int
	counted time.Time
}

func (p *openPolls) open(hostID string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hosts == nil {
		p.hosts = map[string]*openPoll{}
	}
	op := p.hosts[hostID]
	if op == nil {
		op = &openPoll{}
		p.hosts[hostID] = op
	}
	op.n++
	op.counted = now
}

func (p *openPolls) close(hostID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if op := p.hosts[hostID]; op != nil {
		if op.n--; op.n <= 0 {
			delete(p.hosts, hostID)
		}
	}
}

// due returns the hosts whose polls have been open for an interval since
// they last counted as a heartbeat, and counts them now.
func (p *openPolls) due(now time.Time, interval time.Duration) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for id, op := range p.hosts {
		if now.Sub(op.counted) >= interval {
			op.counted = now
			ids = append(ids, id)
		}
	}
	return ids
}

// SweepOffline marks hosts silent for OfflineAfter as Offline and ends their
// running captures with AgentStopped.
func (s *Service) SweepOffline(ctx context.Context) error {
	now := s.now()
	if now.Sub(s.started) < s.cfg.OfflineAfter {
		return nil
	}
	// Heartbeats still in the batch are fresher than the database.
	s.flushHeartbeats(ctx)
	hosts, err := s.store.MarkHostsOffline(ctx, now.Add(-s.cfg.OfflineAfter))
	if err != nil {
		return fmt.Errorf("mark hosts offline: %w", err)
	}
	for _, h := range hosts {
		s.log.Warn("host went offline", "host", h.Name, "lastSeen", h.LastSeen)
		caps, _, err := s.store.FindCaptures(ctx, tripcap.CaptureFilter{HostID: &h.ID, ActiveOnly: true, IncludeDeleted: true})
		if err != nil {
			return fmt.Errorf("captures of offline host %s: %w", h.Name, err)
		}
		for _, c := range caps {
			err := s.updateCapture(ctx, c.ID, func(c *tripcap.PacketCapture) bool {
				if c.Status.Terminal() {
					return false
				}
				c.Status = tripcap.StatusError
				c.StopReason = tripcap.StopAgentStopped
				c.Errors = tripcap.AddCaptureError(c.Errors, tripcap.CaptureErrAgentStopped)
				c.ErrorMessage = fmt.Sprintf("the agent on %s stopped reporting (last seen %s)", h.Name, h.LastSeen.UTC().Format(time.RFC3339))
				t := now
				c.CaptureStopTime = &t
				return true
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// updateCapture applies fn to the latest version of a capture and writes it,
// retrying when another writer got there first. fn returns false to write nothing.
func (s *Service) updateCapture(ctx context.Context, id string, fn func(c *tripcap.PacketCapture) bool) error {
	for attempt := 0; ; attempt++ {
		c, err := s.store.FindCapture(ctx, tripcap.CaptureFilter{ID: &id, IncludeDeleted: true})
		if err != nil {
			return err
		}
		if !fn(c) {
			return nil
		}
		c.UpdatedAt = s.now()
		err = s.store.UpdateCapture(ctx, c, c.Version)
		if tripcap.ErrorCode(err) != tripcap.EPRECONDITION || attempt == 20 {
			if err != nil {
				return fmt.Errorf("update capture %s: %w", id, err)
			}
			return nil
		}
	}
}
