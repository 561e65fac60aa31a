package responder

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/responder/payload"
)

// finish records a run's outcome. An error means the outcome is not
// recorded: the run stays pending in the store, to be decided again.
func (r *Responders) finish(ctx context.Context, run *tripcap.ResponderRun, decision, reason string) error {
	now := r.now().UTC()
	run.Decision, run.Reason, run.FinishedAt = decision, reason, &now
	err := r.record(ctx, run)
	if err != nil {
		r.log.Error("recording responder run", "run", run.ID, "err", err)
	}
	return err
}

// handle decides and acts on one trigger, then follows up on the captures
// it started, holding the run's claim throughout.
func (r *Responders) handle(j job) {
	// The claim may have ended while the job waited, and another server
	// taken the run over: then it is that server's.
	if err := r.claim(r.bg, j.run.ID); err != nil {
		if r.bg.Err() == nil {
			r.log.Info("run taken over or done elsewhere", "run", j.run.ID, "err", err)
		}
		r.untrack(j.run.ID)
		return
	}
	held, release := r.keep(j.run.ID)
	cur, err := r.store.FindResponderRuns(r.bg, tripcap.ResponderRunFilter{ID: &j.run.ID, Limit: 1})
	if err != nil || len(cur) == 0 {
		if r.bg.Err() == nil {
			r.log.Error("reading run", "run", j.run.ID, "err", err)
		}
		release()
		return
	}
	j.run = cur[0]
	if j.run.Decision == tripcap.DecisionPending {
		if err := r.decide(j); err != nil {
			// Taken over, or the decision could not be recorded: the run is
			// decided again by its next holder once this lease lapses
			// (reusing any capture this decision started, see captureID),
			// and its notifications follow from that record, not this one.
			release()
			return
		}
	}
	if !j.run.Open() {
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
// notifications it owes. An error means the decision is not recorded.
func (r *Responders) decide(j job) error {
	run, t, rs := j.run, j.trg, j.rsp
	// A decision under way is carried through even when the server stops
	// meanwhile, so that what it started is recorded now rather than found
	// again (captureID) by the run's next holder.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.admin), decideTimeout)
	defer cancel()
	// The responder may have changed since the trigger was queued.
	if cur, err := r.store.FindResponder(ctx, tripcap.ResponderFilter{ID: &rs.ID}); err == nil {
		rs = cur
	}
	if !rs.IsEnabled() {
		return r.finish(ctx, run, tripcap.DecisionSkipped, "the responder is disabled")
	}
	hosts, unresolved, err := r.resolveTargets(ctx, rs, t)
	if err != nil {
		run.Errors = append(run.Errors, err.Error())
		return r.finish(ctx, run, tripcap.DecisionFailed, "resolving targets failed")
	}
	for _, u := range unresolved {
		run.Hosts = append(run.Hosts, tripcap.ResponderRunHost{Decision: tripcap.DecisionUnresolved, Reason: u})
	}
	if len(hosts) == 0 {
		reason := "the alert names no target"
		if len(unresolved) > 0 {
			reason = "no host matches the alert's target: " + strings.Join(unresolved, "; ")
		}
		r.log.Warn("unresolvable target", "responder", rs.Name, "run", run.ID, "targets", run.Targets)
		return r.finish(ctx, run, tripcap.DecisionUnresolved, reason)
	}
	for _, h := range hosts {
		// Act only while this server holds the run: one whose lease ran out
		// leaves the rest to the new holder.
		if err := r.claim(ctx, run.ID); err != nil {
			r.log.Warn("run taken over mid-decision; leaving it", "run", run.ID, "err", err)
			return fmt.Errorf("%w: %w", errTakenOver, err)
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
	return r.finish(ctx, run, overall(run.Hosts), "")
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
func (r *Responders) onFired(ctx context.Context, rs *tripcap.Responder, run *tripcap.ResponderRun, t payload.Trigger, h *tripcap.Host) tripcap.ResponderRunHost {
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
	// A decision made before and not recorded (the store failed, or the
	// server stopped) started this capture already: it is this decision's.
	id := captureID(run, h)
	switch c, err := r.captures.FindCapture(ctx, tripcap.CaptureFilter{ID: &id, IncludeDeleted: true}); {
	case err == nil:
		r.log.Info("run decided again; its capture is already started", "run", run.ID, "host", h.Name, "capture", c.Name)
		rh.Decision, rh.CaptureID, rh.CaptureName = tripcap.DecisionStarted, c.ID, c.Name
		return rh
	case tripcap.ErrorCode(err) != tripcap.ENOTFOUND:
		return fail(err)
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
	w, err := r.captures.EnsureWatcher(ctx, h)
	if err != nil {
		return fail(err)
	}
	name := rs.Capture.Name
	if t.Overrides.CaptureName != "" {
		name = t.Overrides.CaptureName
	}
	// Names are unique per watcher, and a watcher serves every host of its
	// location: the host's own name keeps one host's alert from replacing
	// another's capture.
	name = hostCaptureName(name, h)
	// A scale-set capture's sessions share its name: the capture is the one to find.
	existing, err := r.captures.FindCapture(ctx, tripcap.CaptureFilter{WatcherID: &w.ID, Name: &name, ScaleSetID: new("")})
	switch {
	case tripcap.ErrorCode(err) == tripcap.ENOTFOUND:
	case err != nil:
		return fail(err)
	default:
		conflict := rs.NameConflict
		if existing.HostID != h.ID && conflict != tripcap.ConflictSkip {
			// Someone gave a capture of another host this host's name:
			// it is not this host's to replace.
			conflict = tripcap.ConflictUnique
		}
		if conflict == tripcap.ConflictReplace {
			// A responder replaces only what it started: the name may come
			// from the alert's body (the 2017 custom JSON's
			// packetCaptureName), and a function key must not reach a
			// capture an admin, or another responder, made.
			own, err := r.startedBy(ctx, rs, existing)
			if err != nil {
				return fail(err)
			}
			if !own {
				conflict = tripcap.ConflictUnique
				rh.Reason = fmt.Sprintf("capture %s was not started by responder %s, so it is kept; this one has a name of its own", name, rs.Name)
				r.log.Warn("responder kept a capture it did not start instead of replacing it", "responder", rs.Name, "run", run.ID, "capture", existing.Name, "id", existing.ID)
			}
		}
		switch conflict {
		case tripcap.ConflictSkip:
			return skip(fmt.Sprintf("a capture named %s already exists in %s (nameConflict skip)", name, w.Name))
		case tripcap.ConflictUnique:
			name = uniqueCaptureName(name, r.now())
		default:
			// The seed: remove the old capture (its file stays), then create.
			// By id (a watcher-scoped reference is a name).
			err := r.captures.DeleteCapture(ctx, existing.ID)
			if tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
				r.audit(ctx, "deleteCapture", rs, run, alertID(t, run), name, h, err)
			}
			if err != nil && tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
				return fail(fmt.Errorf("replace capture %s: %w", name, err))
			}
		}
	}
	// Counted as the seed counts them, in the watcher's list (scale-set captures, not their sessions).
	held, err := r.captures.CountCaptures(ctx, tripcap.CaptureFilter{WatcherID: &w.ID, ScaleSetID: new("")})
	if err != nil {
		return fail(err)
	}
	if held >= rs.Limit {
		return skip(fmt.Sprintf("limit: watcher %s holds %d captures, the responder's limit is %d", w.Name, held, rs.Limit))
	}
	storage := rs.Capture.StorageAccount
	if t.Overrides.StorageID != "" {
		storage = t.Overrides.StorageID
	}
	local := ""
	if storage == "" && r.captures.DefaultStorage() == "" {
		local = tripcap.DefaultCaptureDir + "/" + name + ".cap"
	}
	p := rs.Capture.Parameters(h.ResourceID(), h.Name, hostAddress(h), storage, local)
	if t.Overrides.TimeLimitSeconds > 0 {
		p.TimeLimitInSeconds = int32(t.Overrides.TimeLimitSeconds)
	}
	p.PreTriggerSeconds = preTriggerFrom(p.PreTriggerSeconds, t.FiredAt, r.now())
	c, err := r.captures.CreateCapture(ctx, CaptureRequest{ID: id,
		Name: name, Watcher: w.Name, Parameters: p,
		Cause:   clipText(causeOf(rs, run, t), 500),
		AlertID: alertID(t, run),
	})
	r.audit(ctx, "startCapture", rs, run, alertID(t, run), name, h, err)
	if err != nil {
		return fail(err)
	}
	r.log.Info("responder started capture", "responder", rs.Name, "run", run.ID, "host", h.Name, "capture", c.Name)
	rh.Decision, rh.CaptureID, rh.CaptureName = tripcap.DecisionStarted, c.ID, c.Name
	return rh
}

// startedBy reports whether responder rs started capture c: the run its
// cause names (causeOf) is one of rs's, and c is that run's capture on its
// host.
func (r *Responders) startedBy(ctx context.Context, rs *tripcap.Responder, c *tripcap.PacketCapture) (bool, error) {
	rest, ok := strings.CutPrefix(c.Cause, "responder ")
	if !ok {
		return false, nil
	}
	if _, rest, ok = strings.Cut(rest, ", run "); !ok || len(rest) < 26 || !tripcap.IsID(rest[:26]) {
		return false, nil
	}
	id := rest[:26]
	runs, err := r.store.FindResponderRuns(ctx, tripcap.ResponderRunFilter{ID: &id, Limit: 1})
	if err != nil {
		return false, fmt.Errorf("find the run that started capture %s: %w", c.Name, err)
	}
	if len(runs) == 0 || runs[0].ResponderID != rs.ID {
		return false, nil
	}
	// The id, not the run's record of it: a decision not yet recorded
	// started it all the same (captureID).
	return c.ID == captureID(runs[0], &tripcap.Host{ID: c.HostID}), nil
}

// onResolved stops the capture this alert started on the host, when the
// responder says so.
func (r *Responders) onResolved(ctx context.Context, rs *tripcap.Responder, run *tripcap.ResponderRun, _ payload.Trigger, h *tripcap.Host) tripcap.ResponderRunHost {
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
			c, err := r.captures.StopCapture(ctx, ph.CaptureID)
			r.audit(ctx, "stopCapture", rs, run, run.AlertKey, ph.CaptureName, h, err)
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

// alertID is the sender's alert id, else the responder's key of the alert
// (an Alertmanager fingerprint): what `tripcap file list --alert` takes.
func alertID(t payload.Trigger, run *tripcap.ResponderRun) string {
	return clipText(cmp.Or(t.AlertID, run.AlertKey), 500)
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

// hostCaptureName is the name of the capture a responder starts on h: the
// template's name and the host's, within the 80 characters a name may
// have (a long pair keeps the host's id digest instead of its tail).
func hostCaptureName(name string, h *tripcap.Host) string {
	full := name + "-" + h.Name
	if len(full) <= maxCaptureName {
		return full
	}
	sum := sha256.Sum256([]byte(h.ID))
	tag := "-" + hex.EncodeToString(sum[:4])
	return strings.TrimRight(full[:maxCaptureName-len(tag)], ".-") + tag
}

// uniqueCaptureName suffixes name with the time (nameConflict unique),
// within the length a name may have.
func uniqueCaptureName(name string, now time.Time) string {
	suffix := "-" + strings.ReplaceAll(now.UTC().Format("20060102T150405.000"), ".", "")
	return name[:min(len(name), maxCaptureName-len(suffix))] + suffix
}

// maxCaptureName is the longest capture name (tripcap.ValidateName).
const maxCaptureName = 80

// captureID is the id of the capture a run starts on a host: the same
// whenever the run is decided, so a decision made again (its record was
// lost) finds the capture instead of starting a second one. It has the
// form of tripcap.NewID and sorts with the run: the run id's time prefix,
// then a digest (hex, within NewID's alphabet) of the run and the host.
func captureID(run *tripcap.ResponderRun, h *tripcap.Host) string {
	sum := sha256.Sum256([]byte(run.ID + "\x00" + h.ID))
	digest := hex.EncodeToString(sum[:])
	prefix := run.ID
	if !tripcap.IsID(prefix) {
		prefix = digest[16:]
	}
	return prefix[:10] + digest[:16]
}

// causeOf is a responder capture's cause, which the pcapng comment carries:
// the responder, the run and, before the alert's summary (so clipping never
// cuts it), the time the alert fired, by which triage splits before from after.
func causeOf(rs *tripcap.Responder, run *tripcap.ResponderRun, t payload.Trigger) string {
	if t.FiredAt.IsZero() {
		return fmt.Sprintf("responder %s, run %s: %s", rs.Name, run.ID, t.Summary)
	}
	return fmt.Sprintf("responder %s, run %s, %s; %s", rs.Name, run.ID, tripcap.AlertComment(t.FiredAt), t.Summary)
}
