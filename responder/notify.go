package responder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
)

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
		cur, err := r.captures.FindCapture(r.bg, tripcap.CaptureFilter{ID: &rh.CaptureID, IncludeDeleted: true})
		if err == nil {
			c = cur
		} else if r.bg.Err() == nil {
			r.log.Warn("watching capture", "capture", rh.CaptureID, "err", err)
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
			r.log.Warn("notification left to the run's holder", "run", run.ID, "err", err)
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
		g, err := r.groups.FindActionGroup(r.bg, tripcap.ActionGroupFilter{Name: &run.NotifyActionGroup})
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
	h, _ := r.hosts.FindHost(r.bg, tripcap.HostFilter{ID: &c.HostID})
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
		r.log.Error("reading run for notification", "run", run.ID, "err", ferr)
		return
	}
	rr := cur[0]
	if i >= len(rr.Hosts) {
		return
	}
	if err != nil {
		rr.Errors = append(rr.Errors, err.Error())
		rr.Hosts[i].Notification = tripcap.NotifyFailed
		r.log.Warn("notification", "run", run.ID, "err", err)
	} else {
		now := r.now().UTC()
		rr.Hosts[i].Notification, rr.Hosts[i].Notified = tripcap.NotifySent, &now
	}
	if uerr := r.record(r.bg, rr); errors.Is(uerr, errTakenOver) {
		// Another server holds the run now: what it records stands.
		r.log.Info("notification not recorded: the run was taken over", "run", run.ID, "err", uerr)
	} else if uerr != nil {
		r.log.Error("recording notification", "run", run.ID, "err", uerr)
	}
}
