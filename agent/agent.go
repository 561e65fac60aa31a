// Package agent is the per-host tripcap agent (Azure's watcher VM extension):
// it enrolls with the control plane, keeps a long poll open for its desired
// state, runs capture sessions through a tripcap.CaptureEngine, reports their
// status every second, and uploads their files. Sessions keep running while
// the server is away; a journal on disk carries results across restarts.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/atomicfile"
	"github.com/tripcap/tripcap/capturefile"
	"github.com/tripcap/tripcap/hostmetrics"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/pcapfile"
	"github.com/tripcap/tripcap/tlscert"
	"github.com/tripcap/tripcap/triage"
)

// Config configures an agent.
type Config struct {
	Server string
	// JoinToken is tc_join_<secret>[.<CA fingerprint>]; over https:// the
	// fingerprint pins the server's CA on first contact.
	JoinToken string
	// CAFile, when set, holds the CA(s) that verify an https:// server
	// (an organisation's CA) instead of the pinned or system ones.
	CAFile   string
	Name     string
	Location string
	Labels   map[string]string
	// StateDir keeps the agent's credential and session journal.
	StateDir string
	// CaptureDir is where capture files are written; Azure's /var/captures
	// paths map into it.
	CaptureDir string
	Engine     tripcap.CaptureEngine
	Logger     *slog.Logger
	// SpoolMaxBytes bounds what the spool holds: files waiting for upload
	// plus what running sessions may still write (default 10 GiB).
	SpoolMaxBytes int64

	HeartbeatInterval time.Duration
	ReportInterval    time.Duration
	PollWait          time.Duration
	// ApprovalPoll is how often an enrollment that awaits an admin's
	// approval (the name is an enrolled host's) is tried again (default 10 s).
	ApprovalPoll time.Duration

	// Inventory, when set, reads the host's inventory (name, OS,
	// interfaces) instead of the kernel: at every heartbeat, the agent
	// sending it when it changed. bench/fleet gives each simulated host
	// its own. The kernel's is read again only when netlink reports a
	// change of links or addresses, and every few minutes.
	Inventory func() tripcap.Inventory

	// Metrics, when set, samples the host's network metrics every second
	// and ships them to the server (metrics.go).
	Metrics *hostmetrics.Collector
}

// Agent runs on one host.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	client *tchttp.Client
	sender *capturefile.Sender
	hostID string

	mu       sync.Mutex
	sessions map[string]*session
	// starts counts sessions being started, so shutdown waits for them.
	starts sync.WaitGroup
	// opening holds the user-named files of sessions being started, so two
	// captures given one path cannot both open it before either exists.
	opening map[string]string
	// kickReport and kickUpload wake the reporter and the uploader early (a
	// session started or ended).
	kickReport, kickUpload chan struct{}
	// polling is true while a long poll is open: a server that counts it
	// as a heartbeat (protocol version 1) needs no other.
	polling atomic.Bool
}

type session struct {
	journal *journalEntry
	run     tripcap.CaptureSession // nil once the session ended
	stop    string                 // stop reason requested, if any
	// settled is closed once a running session's result is journaled.
	settled chan struct{}
	// starting marks a session whose engine start is under way.
	starting bool
	// reserved is the spool space the session may still fill.
	reserved int64
}

// New returns an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if cfg.Engine == nil {
		return nil, errors.New("agent: no capture engine")
	}
	if cfg.StateDir == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "state directory: required")
	}
	if cfg.CaptureDir == "" {
		cfg.CaptureDir = tripcap.DefaultCaptureDir
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("component", "agent")
	if cfg.ApprovalPoll <= 0 {
		cfg.ApprovalPoll = 10 * time.Second
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = 10 * time.Second
	}
	if cfg.ReportInterval == 0 {
		cfg.ReportInterval = time.Second
	}
	if cfg.PollWait == 0 {
		cfg.PollWait = 30 * time.Second
	}
	if cfg.SpoolMaxBytes == 0 {
		cfg.SpoolMaxBytes = 10 << 30
	}
	return &Agent{cfg: cfg, log: cfg.Logger, sessions: map[string]*session{}, kickReport: make(chan struct{}, 1), kickUpload: make(chan struct{}, 1)}, nil
}

// Run enrolls if needed and serves the control plane until ctx ends. Running
// sessions are stopped on the way out and their results journaled.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.connect(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while enrolling: not a failure
		}
		return err
	}
	a.sender = &capturefile.Sender{Server: a.client, Log: a.log}
	if err := a.recover(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){a.heartbeatLoop, a.pollLoop, a.reportLoop, a.uploadLoop, a.metricsLoop} {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	<-ctx.Done()
	wg.Wait()
	a.shutdown()
	return nil
}

// HostID is the id the server gave this host.
func (a *Agent) HostID() string { return a.hostID }

// connect loads the agent's identity or enrolls with the join token.
func (a *Agent) connect(ctx context.Context) error {
	id, err := a.loadIdentity()
	if err != nil {
		return err
	}
	if id != nil && (a.cfg.Server == "" || a.cfg.Server == id.Server) && (a.cfg.Name == "" || a.cfg.Name == id.Name) {
		trust, err := a.trust(id.Server, "")
		if err != nil {
			return err
		}
		if a.client, err = tchttp.NewClient(id.Server, id.Credential, trust.opts...); err != nil {
			return err
		}
		a.hostID = id.HostID
		a.log.Info("agent identity loaded", "host", id.Name, "server", id.Server)
		return nil
	}
	if a.cfg.Server == "" || a.cfg.JoinToken == "" {
		return tripcap.Errorf(tripcap.EINVALID, "this agent is not enrolled yet: give --server and --join-token (create one with `tripcap host join-token create`)")
	}
	if a.cfg.Name == "" {
		a.cfg.Name = a.readInventory()().Hostname
	}
	secret, fingerprint, err := tripcap.ParseJoinToken(a.cfg.JoinToken)
	if err != nil {
		return err
	}
	trust, err := a.trust(a.cfg.Server, fingerprint)
	if err != nil {
		return err
	}
	c, err := tchttp.NewClient(a.cfg.Server, "", trust.opts...)
	if err != nil {
		return err
	}
	var resp *tripcap.EnrollResponse
	// ticket is what the server put this enrollment on hold with: only
	// the agent that presents it gets the admin's approval. Kept in
	// memory only: an agent restarted asks anew.
	var ticket string
	retry := agentBackoff()
	for {
		resp, err = c.Enroll(ctx, tripcap.EnrollRequest{JoinToken: secret, Ticket: ticket, Name: a.cfg.Name, Location: a.cfg.Location, Labels: a.cfg.Labels, Inventory: a.inventory(a.readInventory())})
		if err == nil {
			break
		}
		if held := (*tripcap.EnrollmentHeldError)(nil); errors.As(err, &held) {
			ticket = held.Ticket
		}
		if tripcap.ErrorCode(err) == tripcap.ECONFLICT && ctx.Err() == nil {
			// The name is an enrolled host's: the server waits for an
			// admin's approval (its message says how to give it, and the
			// alternatives), and this agent enrolls at its next try after it.
			a.log.Warn("enrollment awaits an admin's approval; retrying", "server", a.cfg.Server, "name", a.cfg.Name, "every", a.cfg.ApprovalPoll, "reason", tripcap.ErrorMessage(err))
			tripcap.Sleep(ctx, a.cfg.ApprovalPoll)
			continue
		}
		// EUNAVAILABLE: the server is busy or limits this address (429, 503); it passes.
		if code := tripcap.ErrorCode(err); (code != tripcap.EINTERNAL && code != tripcap.EUNAVAILABLE) || ctx.Err() != nil || tlscert.IsVerificationError(err) {
			return fmt.Errorf("enroll with %s as %s: %w", a.cfg.Server, a.cfg.Name, err)
		}
		a.log.Warn("enrolling failed; retrying", "server", a.cfg.Server, "err", err)
		tripcap.Sleep(ctx, retry.Next())
	}
	if ca := trust.pinned.Load(); ca != nil {
		// Trusted from now on by the ordinary path, as a CA file would be.
		if err := atomicfile.Write(a.caPath(), tlscert.EncodePEM(ca), 0o644); err != nil {
			return fmt.Errorf("save the server's CA: %w", err)
		}
		a.log.Info("server CA pinned by the join token's fingerprint", "fingerprint", tlscert.Fingerprint(ca), "path", a.caPath())
	}
	id = &identity{Server: a.cfg.Server, HostID: resp.Host.ID, Name: resp.Host.Name, Credential: resp.Credential}
	if err := a.saveIdentity(id); err != nil {
		return err
	}
	a.client = c.WithToken(resp.Credential)
	a.hostID = id.HostID
	a.log.Info("agent enrolled", "host", id.Name, "id", id.HostID, "server", id.Server)
	return nil
}

// recover loads the journal: sessions that were running when the agent died
// end as AgentStopped, with whatever their files hold; their results are
// then reported and uploaded like any other.
func (a *Agent) recover() error {
	entries, err := a.loadJournals()
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Final == nil {
			now := time.Now()
			stats := a.recoverFiles(e)
			files := fileReports(e, nil, true)
			e.Final = &tripcap.SessionReport{
				CaptureID: e.Assignment.ID, Status: tripcap.StatusError, StopReason: tripcap.StopAgentStopped,
				Errors: []string{tripcap.CaptureErrAgentStopped}, Message: "the agent stopped while the session ran; the partial file was recovered",
				StopTime: &now, Files: files, Stats: stats,
			}
			if e.Path != "" {
				e.Final.Summary = a.summarize(e.Assignment, tripcap.CaptureResult{Files: existingSessionFiles(e.Path)})
			}
			if err := a.saveJournal(e); err != nil {
				return err
			}
			a.log.Warn("recovered an interrupted session", "capture", e.Assignment.Name, "files", len(files))
		}
		a.sessions[e.Assignment.ID] = &session{journal: e}
	}
	return nil
}

// recoverFiles cuts an interrupted session's files back to their last whole
// record (the engine's file guard normally has; it may have died too) and
// counts what they hold, so the recovered session's figures are the files'.
func (a *Agent) recoverFiles(e *journalEntry) tripcap.CaptureStats {
	var st tripcap.CaptureStats
	if e.Path == "" {
		return st
	}
	for _, p := range existingSessionFiles(e.Path) {
		if _, err := pcapfile.Repair(p); err != nil {
			a.log.Warn("repairing a recovered capture file", "file", p, "err", err)
		}
		packets, data, err := pcapfile.Count(p)
		if err != nil {
			a.log.Warn("counting the packets of a recovered capture file", "file", p, "err", err)
		}
		st.Packets += packets
		st.Bytes += data
	}
	return st
}

// heartbeatLoop heartbeats at the interval the server asks for (the
// configured one until it answers), with the inventory whenever it changed.
// While the long poll is open and the inventory unchanged it sends nothing
// to a server at agent protocol version 1 or later, which counts an open
// poll as a heartbeat: an idle fleet of thousands then costs the server one
// request per agent per poll wait. An older server gets every heartbeat.
// A change of the host's interfaces is reported at once (inventorySettle),
// not at the next heartbeat.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	inv := &inventoryCache{read: a.readInventory()}
	if a.cfg.Inventory == nil {
		inv.watch = watchInterfaces(ctx, a.log)
	}
	a.heartbeats(ctx, inv)
}

func (a *Agent) heartbeats(ctx context.Context, cache *inventoryCache) {
	var sent *tripcap.Inventory // the inventory the server has
	interval := a.cfg.HeartbeatInterval
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		hb := tripcap.Heartbeat{}
		inv := a.inventory(cache.get)
		if sent == nil || !reflect.DeepEqual(inv, *sent) {
			hb.Inventory = &inv
		}
		var resp *tripcap.HeartbeatResponse
		var err error
		pollCounts := a.client.ServerProtocol() >= 1
		if hb.Inventory != nil || !pollCounts || !a.polling.Load() {
			resp, err = a.client.Heartbeat(ctx, hb)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Warn("heartbeat failed", "err", err)
		case err == nil && resp != nil:
			sent = &inv
			if d := time.Duration(resp.HeartbeatSeconds * float64(time.Second)); d >= 100*time.Millisecond && d != interval {
				interval = d
				t.Reset(interval)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-cache.changed():
			tripcap.Sleep(ctx, inventorySettle)
			select {
			case <-cache.changed(): // the same burst
			default:
			}
			cache.invalidate()
		}
	}
}

// pollLoop keeps a long poll open and reconciles on every answer.
func (a *Agent) pollLoop(ctx context.Context) {
	revision := int64(-1)
	retry := agentBackoff()
	for ctx.Err() == nil {
		a.polling.Store(true)
		as, err := a.client.Assignments(ctx, revision, a.cfg.PollWait)
		a.polling.Store(false)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("polling the server failed; sessions keep running", "err", err)
			tripcap.Sleep(ctx, retry.Next())
			continue
		}
		retry.Reset()
		if as.Revision != revision {
			a.reconcile(ctx, as.Assignments)
			revision = as.Revision
		}
	}
}

// reconcile moves local sessions toward the server's desired state.
func (a *Agent) reconcile(ctx context.Context, assignments []tripcap.Assignment) {
	for _, as := range assignments {
		a.mu.Lock()
		s := a.sessions[as.ID]
		a.mu.Unlock()
		switch {
		case s == nil && as.Desired == tripcap.DesiredRunning:
			// Sessions start side by side: opening sockets and rings takes
			// a moment each, and no capture should wait for another's.
			a.mu.Lock()
			a.sessions[as.ID] = &session{journal: &journalEntry{Assignment: as}, starting: true}
			a.mu.Unlock()
			a.starts.Add(1)
			go func() { defer a.starts.Done(); a.start(ctx, as) }()
		case s == nil:
			// Stopped or deleted before it ever ran here: close it on the server.
			a.finishWithoutRunning(as, stopReasonFor(as.Desired), nil, "")
		case s.starting:
			// start() applies the desired state once the session exists.
			a.mu.Lock()
			s.journal.Assignment = as
			a.mu.Unlock()
		case s.run != nil && as.Desired != tripcap.DesiredRunning:
			a.mu.Lock()
			if s.stop == "" {
				s.stop = stopReasonFor(as.Desired)
				s.run.Stop(s.stop)
			}
			a.mu.Unlock()
		}
	}
}

func stopReasonFor(d tripcap.DesiredState) string {
	if d == tripcap.DesiredDeleted {
		return tripcap.StopSessionDeleted
	}
	return tripcap.StopManuallyStopped
}

// capturePath places a session's first file: the user's filePath/localPath
// (Azure's /var/captures/… mapped into the capture directory), else the spool.
func (a *Agent) capturePath(as tripcap.Assignment) (string, bool, error) {
	loc := as.Parameters.StorageLocation
	user := loc.LocalPath
	if user == "" {
		user = loc.FilePath
	}
	if user == "" {
		ext := ".cap"
		if as.Parameters.Format == tripcap.FormatPcapng {
			ext = ".pcapng"
		}
		return filepath.Join(a.cfg.CaptureDir, "spool", as.ID+ext), false, nil
	}
	rel := user
	if strings.HasPrefix(path.Clean(user), tripcap.DefaultCaptureDir+"/") {
		rel = strings.TrimPrefix(path.Clean(user), tripcap.DefaultCaptureDir+"/")
	}
	p, err := tripcap.ConfineCapturePath(a.cfg.CaptureDir, rel)
	return p, true, err
}

// claimFile refuses a user-named capture file that exists already (another
// capture's evidence: writing it again would truncate or interleave it) or
// that another session is opening; release ends the claim.
func (a *Agent) claimFile(id, p string) (release func(), err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if other, ok := a.opening[p]; ok && other != id {
		return nil, fmt.Errorf("%s is being opened by capture %s; give this capture its own localPath", p, other)
	}
	if _, err := os.Lstat(p); err == nil {
		return nil, fmt.Errorf("%s exists already (an earlier capture's file?); give this capture its own localPath", p)
	}
	if a.opening == nil {
		a.opening = map[string]string{}
	}
	a.opening[p] = id
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.opening[p] == id {
			delete(a.opening, p)
		}
	}, nil
}

func (a *Agent) start(ctx context.Context, as tripcap.Assignment) {
	p, keep, err := a.capturePath(as)
	if err != nil {
		a.finishWithoutRunning(as, tripcap.StopLocalFileFailed, []string{tripcap.CaptureErrLocalFile}, err.Error())
		return
	}
	if keep {
		release, err := a.claimFile(as.ID, p)
		if err != nil {
			a.finishWithoutRunning(as, tripcap.StopLocalFileFailed, []string{tripcap.CaptureErrLocalFile}, err.Error())
			return
		}
		// Once the engine has created the file, the file itself refuses
		// the next claim.
		defer release()
	}
	if err := a.reserveSpool(as.ID, sessionBytes(as.Parameters)); err != nil {
		a.finishWithoutRunning(as, tripcap.StopLocalFileFailed, []string{tripcap.CaptureErrLocalFile}, err.Error())
		return
	}
	e := &journalEntry{Assignment: as, Path: p, Keep: keep}
	if err := a.saveJournal(e); err != nil {
		a.finishWithoutRunning(as, tripcap.StopLocalFileFailed, []string{tripcap.CaptureErrLocalFile}, err.Error())
		return
	}
	comment := fmt.Sprintf("tripcap capture %s (id %s)", as.Name, as.ID)
	if as.Cause != "" {
		comment += "; cause: " + as.Cause
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	run, err := a.cfg.Engine.Start(sctx, tripcap.CaptureSpec{ID: as.ID, Name: as.Name, Parameters: as.Parameters, Path: p, Comment: comment})
	cancel()
	if err != nil {
		a.log.Error("capture failed to start", "capture", as.Name, "err", err)
		_ = a.removeJournal(as.ID)
		if ctx.Err() != nil {
			// The agent is stopping: the capture ends as any running one
			// does at shutdown, not as a capture that could not start.
			a.finishWithoutRunning(as, tripcap.StopAgentStopped, []string{tripcap.CaptureErrAgentStopped}, "the agent stopped before the capture started")
			return
		}
		if lfe := (*tripcap.LocalFileError)(nil); errors.As(err, &lfe) {
			a.finishWithoutRunning(as, tripcap.StopLocalFileFailed, []string{tripcap.CaptureErrLocalFile}, err.Error())
			return
		}
		a.finishWithoutRunning(as, tripcap.StopCaptureFailed, []string{tripcap.CaptureErrCaptureFailed}, tripcap.ErrorMessage(err)+detail(err))
		return
	}
	s := &session{journal: e, run: run, settled: make(chan struct{}), reserved: sessionBytes(as.Parameters)}
	a.mu.Lock()
	if prev := a.sessions[as.ID]; prev != nil && prev.journal.Assignment.Desired != tripcap.DesiredRunning {
		s.stop = stopReasonFor(prev.journal.Assignment.Desired)
		run.Stop(s.stop)
	}
	a.sessions[as.ID] = s
	a.mu.Unlock()
	a.log.Info("capture started", "capture", as.Name, "id", as.ID, "path", p)
	a.kickNow()
	go a.await(s)
}

// sessionBytes is the most a session can write: its byte limit, or for
// continuous capture the ring.
func sessionBytes(p tripcap.PacketCaptureParameters) int64 {
	if p.Continuous() && p.CaptureSettings != nil && p.CaptureSettings.FileCount != nil && p.CaptureSettings.FileSizeInBytes != nil {
		return int64(*p.CaptureSettings.FileCount) * *p.CaptureSettings.FileSizeInBytes
	}
	return p.TotalBytesPerSession
}

// reserveSpool refuses a session when the files waiting for upload and what
// running sessions may still write leave no room for it, so a storage outage
// fills the spool up to its bound and no further.
func (a *Agent) reserveSpool(id string, need int64) error {
	var used int64
	spooled, _ := filepath.Glob(filepath.Join(a.cfg.CaptureDir, "spool", "*"))
	for _, f := range spooled {
		if st, err := os.Stat(f); err == nil {
			used += st.Size()
		}
	}
	a.mu.Lock()
	for _, s := range a.sessions {
		used += s.reserved
	}
	a.mu.Unlock()
	if used+need > a.cfg.SpoolMaxBytes {
		return tripcap.Errorf(tripcap.ELIMIT, "the spool is full: %d bytes used or reserved of %d (files waiting for upload in %s); this session may write %d bytes; free space there or raise --spool-max-bytes",
			used, a.cfg.SpoolMaxBytes, filepath.Join(a.cfg.CaptureDir, "spool"), need)
	}
	return nil
}

// detail adds an internal error's text, which the agent may show (it is the host's own).
func detail(err error) string {
	if tripcap.ErrorCode(err) == tripcap.EINTERNAL {
		return ": " + err.Error()
	}
	return ""
}

// await journals a session's result when it ends.
func (a *Agent) await(s *session) {
	defer close(s.settled)
	<-s.run.Done()
	res := s.run.Result()
	e := s.journal
	files := fileReports(e, res.Files, true)
	start, stop := res.StartTime, res.StopTime
	if res.StopReason == tripcap.StopAgentStopped {
		res.Errors = tripcap.AddCaptureError(res.Errors, tripcap.CaptureErrAgentStopped)
	}
	status := tripcap.StatusStopped
	if len(res.Errors) > 0 {
		status = tripcap.StatusError
	}
	final := &tripcap.SessionReport{CaptureID: e.Assignment.ID, Status: status, StopReason: res.StopReason, Errors: res.Errors,
		Message: res.Message, Stats: res.Stats, Files: files}
	if !start.IsZero() {
		final.StartTime = &start
	}
	if !stop.IsZero() {
		final.StopTime = &stop
	}
	final.Summary = a.summarize(e.Assignment, res)
	a.mu.Lock()
	e.Final = final
	s.run = nil
	s.reserved = 0
	a.mu.Unlock()
	if err := a.saveJournal(e); err != nil {
		a.log.Error("journaling a finished session", "capture", e.Assignment.Name, "err", err)
	}
	a.log.Info("capture ended", "capture", e.Assignment.Name, "reason", res.StopReason, "packets", res.Stats.Packets, "files", len(files))
	a.kickNow()
}

// summarize reads what a finished session's files hold (triage), here on
// the host where the files are, bounded in memory and time: the server
// gets a few kilobytes instead of the capture. nil when there is nothing
// to read or the reading failed (logged; the capture is not affected).
func (a *Agent) summarize(as tripcap.Assignment, res tripcap.CaptureResult) *tripcap.CaptureSummary {
	var files []string
	for _, f := range res.Files {
		if !strings.HasSuffix(f, tripcap.MetadataFileSuffix) {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return nil
	}
	// The alert's time, when a responder recorded it, splits before from
	// after; else the session's start (where the pre-trigger part ends).
	alert, ok := tripcap.ParseAlertComment(as.Cause)
	if !ok {
		alert = res.StartTime
	}
	ctx, cancel := context.WithTimeout(context.Background(), summaryTimeout)
	defer cancel()
	sum, err := triage.AnalyzeFiles(ctx, files, triage.Options{AlertTime: alert, MaxFlows: summaryMaxFlows})
	if err != nil {
		a.log.Warn("summarizing a capture", "capture", as.Name, "err", err)
		if sum == nil {
			return nil
		}
	}
	return sum
}

// The agent's summary is bounded: a host under incident is no place for an
// unbounded analysis. 50,000 flows take about 30 MB at most.
const (
	summaryTimeout  = time.Minute
	summaryMaxFlows = 50_000
)

// finishWithoutRunning records a session that never ran here.
func (a *Agent) finishWithoutRunning(as tripcap.Assignment, reason string, errs []string, msg string) {
	now := time.Now()
	status := tripcap.StatusStopped
	if len(errs) > 0 {
		status = tripcap.StatusError
	}
	e := &journalEntry{Assignment: as, Final: &tripcap.SessionReport{CaptureID: as.ID, Status: status, StopReason: reason, Errors: errs, Message: msg, StopTime: &now}}
	a.mu.Lock()
	a.sessions[as.ID] = &session{journal: e}
	a.mu.Unlock()
	if err := a.saveJournal(e); err != nil {
		a.log.Error("journaling a session", "capture", as.Name, "err", err)
	}
	a.kickNow()
}

func (a *Agent) kickNow() {
	for _, c := range []chan struct{}{a.kickReport, a.kickUpload} {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// idleRecheck is how often an idle reporter or uploader looks for work it
// was not woken for; a session starting or ending wakes them at once.
const idleRecheck = 30 * time.Second

// reportLoop sends every session's status each ReportInterval (and at once
// when a session starts or ends), until the server has each final report.
// With nothing to report it sleeps until woken: an idle agent makes no
// wake-ups a second.
func (a *Agent) reportLoop(ctx context.Context) {
	busy := true // sessions recovered from the journal
	for {
		wait := a.cfg.ReportInterval
		if !busy {
			wait = idleRecheck
		}
		if !awaitWork(ctx, wait, a.kickReport) {
			return
		}
		busy = a.reportOnce(ctx)
	}
}

// awaitWork waits for wait to pass or for kick, and is false once ctx ends.
func awaitWork(ctx context.Context, wait time.Duration, kick <-chan struct{}) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-kick:
	}
	return true
}

// reportOnce reports every session that has news, and says whether any had.
func (a *Agent) reportOnce(ctx context.Context) bool {
	var reports []tripcap.SessionReport
	a.mu.Lock()
	for _, s := range a.sessions {
		switch {
		case s.run != nil:
			st := s.run.Stats()
			r := tripcap.SessionReport{CaptureID: s.journal.Assignment.ID, Status: tripcap.StatusRunning, Stats: st,
				Files: fileReports(s.journal, s.run.Files(), false)}
			reports = append(reports, r)
		case s.journal.Final != nil && !s.journal.Reported:
			reports = append(reports, *s.journal.Final)
		}
	}
	a.mu.Unlock()
	if len(reports) == 0 {
		return false
	}
	res, err := a.client.Report(ctx, reports)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("reporting failed; will retry", "err", err)
		}
		return true
	}
	unknown := map[string]bool{}
	for _, id := range res.Unknown {
		unknown[id] = true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range reports {
		s := a.sessions[r.CaptureID]
		if s == nil {
			continue
		}
		if unknown[r.CaptureID] {
			// The server no longer has this capture: stop it and forget it.
			a.log.Warn("server does not know this capture; dropping it", "capture", s.journal.Assignment.Name)
			if s.run != nil {
				s.run.Stop(tripcap.StopSessionDeleted)
				continue
			}
			delete(a.sessions, r.CaptureID)
			_ = a.removeJournal(r.CaptureID)
			continue
		}
		if r.Status.Terminal() && s.journal.Final != nil && !s.journal.Reported {
			s.journal.Reported = true
			if err := a.saveJournal(s.journal); err != nil {
				a.log.Error("journaling a report", "err", err)
			}
			a.forgetIfDone(s)
		}
	}
	return true
}

// forgetIfDone drops a session whose final report and uploads the server has,
// and its spool files. Called with a.mu held.
func (a *Agent) forgetIfDone(s *session) {
	e := s.journal
	if !e.Reported || len(a.pendingUploads(e)) > 0 {
		return
	}
	if !e.Keep {
		for _, f := range e.Final.Files {
			if f.LocalPath != "" && e.Uploaded[f.Name] != "" {
				a.removeFile(f.LocalPath)
			}
		}
	}
	delete(a.sessions, e.Assignment.ID)
	if err := a.removeJournal(e.Assignment.ID); err != nil {
		a.log.Error("removing a session journal", "err", err)
	}
}

func (a *Agent) shutdown() {
	// A start in flight ends now (its context is done) or yields a session
	// to stop with the others; either way its result is journaled first.
	a.starts.Wait()
	a.mu.Lock()
	var running []*session
	for _, s := range a.sessions {
		if s.run != nil {
			running = append(running, s)
		}
	}
	a.mu.Unlock()
	// A stopping agent ends its sessions as a crashed one would, but cleanly:
	// files flushed and results journaled, to be reported at the next start.
	for _, s := range running {
		s.run.Stop(tripcap.StopAgentStopped)
	}
	for _, s := range running {
		select {
		case <-s.settled:
		case <-time.After(10 * time.Second):
			a.log.Error("a session did not stop in time", "capture", s.journal.Assignment.Name)
		}
	}
}

// Sessions returns the ids of the sessions the agent holds, running or not yet settled.
func (a *Agent) Sessions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(maps.Keys(a.sessions))
}

// agentBackoff is the wait between an agent's retries of the server
// (enrolling, polling, uploading): from 250 ms to 15 s, jittered so that
// a replica's agents do not all come back at once.
func agentBackoff() tripcap.Backoff {
	return tripcap.Backoff{Min: 250 * time.Millisecond, Max: 15 * time.Second}
}
