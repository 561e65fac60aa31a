package responder

import (
	"context"
	"encoding/json"
	"fmt"
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
	rs, err := r.keyed(ctx, name, key)
	if err != nil {
		return nil, err
	}
	triggers, err := payload.Parse(body)
	if err != nil {
		return nil, err
	}
	return r.accept(ctx, rs, "http", triggers)
}

// CheckKey says whether key is a function key of the responder named
// name (EUNAUTHORIZED when not), so that the HTTP layer refuses a sender
// without one before reading its body.
func (r *Responders) CheckKey(ctx context.Context, name, key string) error {
	_, err := r.keyed(ctx, name, key)
	return err
}

// keyed returns the responder named name when key is one of its keys.
func (r *Responders) keyed(ctx context.Context, name, key string) (*tripcap.Responder, error) {
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
	return rs, nil
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
