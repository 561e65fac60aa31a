package responder

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/responder/payload"
)

var errBadKey = tripcap.Errorf(tripcap.EUNAUTHORIZED, "missing or wrong function key (give it in ?code= or the x-functions-key header)")

// Invoke is the inbound trigger (POST /api/functions/{name}): it checks the
// key (EUNAUTHORIZED, nothing recorded), parses the body (EINVALID naming
// what was expected), records a run per alert and queues the work, so the
// sender gets its answer at once and does not retry.
func (r *Responders) Invoke(ctx context.Context, name, key string, body []byte) ([]*tripcap.ResponderRun, error) {
	rs, k, err := r.keyed(ctx, name, key)
	if err != nil {
		return nil, err
	}
	triggers, err := payload.Parse(body)
	if err != nil {
		return nil, err
	}
	for _, t := range triggers {
		if err := checkOverrides(rs, t.Overrides); err != nil {
			return nil, err
		}
	}
	if err := r.limitRuns(rs, k, len(triggers)); err != nil {
		return nil, err
	}
	return r.accept(ctx, rs, "http", triggers)
}

// CheckKey says whether key is a function key of the responder named
// name (EUNAUTHORIZED when not), so that the HTTP layer refuses a sender
// without one before reading its body.
func (r *Responders) CheckKey(ctx context.Context, name, key string) error {
	_, _, err := r.keyed(ctx, name, key)
	return err
}

// keyed returns the responder named name and the key when key is one of its keys.
func (r *Responders) keyed(ctx context.Context, name, key string) (*tripcap.Responder, *tripcap.ResponderKey, error) {
	if key == "" {
		return nil, nil, errBadKey
	}
	// An unknown responder answers like a wrong key, so names cannot be probed.
	rs, err := r.store.FindResponder(ctx, tripcap.ResponderFilter{Name: &name})
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND || tripcap.ErrorCode(err) == tripcap.EINVALID {
		return nil, nil, errBadKey
	} else if err != nil {
		return nil, nil, err
	}
	k, err := r.store.FindResponderKeyByHash(ctx, tripcap.HashSecret(key))
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND || (err == nil && k.ResponderID != rs.ID) {
		return nil, nil, errBadKey
	} else if err != nil {
		return nil, nil, err
	}
	return rs, k, nil
}

// checkOverrides refuses a body that chooses what the responder's template
// does not let it (BodyOverrides): a function key starts the template and
// nothing else. The capture name a body gives is checked when the run is
// decided (onFired): it may only replace a capture the responder made.
func checkOverrides(rs *tripcap.Responder, o payload.Overrides) error {
	allow := rs.BodyOverrides
	if allow == nil {
		allow = &tripcap.BodyOverrides{}
	}
	if o.StorageID != "" && o.StorageID != rs.Capture.StorageAccount && !slices.Contains(allow.StorageAccounts, o.StorageID) {
		return tripcap.Errorf(tripcap.EFORBIDDEN, "storageID: responder %s does not let a body choose the storage account %q (its template stores to %s); an admin can allow it in the responder's bodyOverrides.storageAccounts",
			rs.Name, clipText(o.StorageID, 200), cmp.Or(rs.Capture.StorageAccount, "the default storage"))
	}
	if n := o.TimeLimitSeconds; n > 0 && n != int(rs.Capture.TimeLimitInSeconds) && n > int(allow.MaxTimeLimitInSeconds) {
		if allow.MaxTimeLimitInSeconds == 0 {
			return tripcap.Errorf(tripcap.EFORBIDDEN, "timeLimit: responder %s does not let a body set the time limit (its template's is %d s); an admin can allow it with the responder's bodyOverrides.maxTimeLimitInSeconds",
				rs.Name, rs.Capture.TimeLimitInSeconds)
		}
		return tripcap.Errorf(tripcap.EFORBIDDEN, "timeLimit: %d s is more than responder %s lets a body set (bodyOverrides.maxTimeLimitInSeconds %d)", n, rs.Name, allow.MaxTimeLimitInSeconds)
	}
	return nil
}

// limitRuns takes n runs from the key's and the responder's buckets, or
// refuses them all with ERATELIMIT saying when to retry.
func (r *Responders) limitRuns(rs *tripcap.Responder, k *tripcap.ResponderKey, n int) error {
	keyRate := rate{perSecond: r.cfg.KeyRate, burst: float64(r.cfg.KeyBurst)}
	rsRate := rate{perSecond: r.cfg.ResponderRate, burst: float64(r.cfg.ResponderBurst)}
	wait, first := r.limiter.take(r.now(), n, []string{"key " + k.ID, "responder " + rs.ID}, []rate{keyRate, rsRate})
	if wait == 0 {
		return nil
	}
	if first {
		// Once per episode: a key sending in a loop is one line, not one a request.
		r.log.Warn("function key over its run rate; refusing until it slows down", "responder", rs.Name, "key", k.Name,
			"keyRate", r.cfg.KeyRate, "keyBurst", r.cfg.KeyBurst, "responderRate", r.cfg.ResponderRate, "responderBurst", r.cfg.ResponderBurst)
	}
	return tripcap.RateLimited(wait, "responder %s: more runs than its function keys may start (%g a second per key, %d at once; %g a second per responder, %d at once); retry after %s",
		rs.Name, r.cfg.KeyRate, r.cfg.KeyBurst, r.cfg.ResponderRate, r.cfg.ResponderBurst, wait.Round(time.Millisecond))
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
	_, err = r.accept(ctx, rs, "internal", []payload.Trigger{payload.FromAlert(a)})
	return err
}

// CheckReceiver says whether an action group's responder receiver names a
// responder (by id or name; the receiver's name when responderId is empty).
func (r *Responders) CheckReceiver(ctx context.Context, field string, rcv tripcap.ResponderReceiver) error {
	ref := rcv.ResponderID
	if ref == "" {
		ref = rcv.Name
	}
	_, err := r.resolve(ctx, ref)
	if c := tripcap.ErrorCode(err); c == tripcap.ENOTFOUND || c == tripcap.EINVALID {
		return tripcap.Errorf(tripcap.EINVALID, "%s.responderId: no responder %q", field, ref)
	}
	return err
}

// accept records a run per trigger and queues the work. A redelivered
// alert is recorded as a duplicate and not queued.
func (r *Responders) accept(ctx context.Context, rs *tripcap.Responder, source string, triggers []payload.Trigger) ([]*tripcap.ResponderRun, error) {
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
			r.lease(run)
		}
		err = r.create(ctx, run)
		if tripcap.ErrorCode(err) == tripcap.ECONFLICT && run.IdempotencyKey != "" {
			run.Decision, run.Reason = tripcap.DecisionDuplicate, "a redelivery of an alert this responder already handled ("+run.IdempotencyKey+")"
			run.IdempotencyKey, run.Trigger, run.Owner, run.LeaseUntil = "", nil, "", time.Time{}
			now := r.now().UTC()
			run.FinishedAt = &now
			err = r.create(ctx, run)
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
	var t payload.Trigger
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
		r.log.Warn("resuming run", "run", run.ID, "err", err)
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

func describeTargets(t payload.Targets) string {
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
		keys = payload.DefaultLabelKeys()
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
