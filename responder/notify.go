package responder

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/responder/payload"
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
	notice := r.completion(rs, run, c)
	var failed []string
	told := 0
	for _, g := range groups {
		ds := r.notifier.NotifyCompletion(r.bg, g, notice)
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
			continue
		}
		for _, rc := range g.Receivers() {
			if actiongroup.TakesCompletions(rc) {
				told++
			}
		}
	}
	var nerr error
	switch {
	case len(failed) > 0:
		nerr = errors.New("notification failed: " + strings.Join(failed, "; "))
	case told == 0:
		// Responder receivers are not told of completions: with only those,
		// no one was.
		nerr = errors.New("notification not sent: no webhook or email receiver to tell (responder receivers are not told of completed captures)")
	}
	r.recordNotify(run, i, nerr)
}

// stored reports whether the files of a capture bound for a storage
// account are settled: every one stored (files kept on the host count as
// stored), or storage refused one for good.
func stored(c *tripcap.PacketCapture) bool {
	if c.Parameters.StorageLocation.StorageID == "" || storageFailed(c) {
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

func storageFailed(c *tripcap.PacketCapture) bool {
	return slices.Contains(c.Errors, tripcap.CaptureErrStorageFailed)
}

// uploadResult says what became of a capture's files.
func uploadResult(c *tripcap.PacketCapture) actiongroup.CompletedUpload {
	switch {
	case storageFailed(c):
		return actiongroup.CompletedUpload{Result: actiongroup.UploadStorageFailed, Message: c.ErrorMessage}
	case len(c.Files) == 0:
		return actiongroup.CompletedUpload{Result: actiongroup.UploadNoFile}
	case c.Parameters.StorageLocation.StorageID == "":
		return actiongroup.CompletedUpload{Result: actiongroup.UploadKeptOnHost}
	}
	for _, f := range c.Files {
		if !f.Stored {
			return actiongroup.CompletedUpload{Result: actiongroup.UploadPending, Message: fmt.Sprintf("%s not stored when the notice was sent", f.Name)}
		}
	}
	return actiongroup.CompletedUpload{Result: actiongroup.UploadStored}
}

// notifySummaryLines is how much of the capture's summary a notice carries.
const notifySummaryLines = 6

// interfacesEnded lists the interfaces the capture lost while it ran.
func interfacesEnded(c *tripcap.PacketCapture) []actiongroup.InterfaceEnded {
	out := []actiongroup.InterfaceEnded{}
	for _, e := range c.Stats.EndedInterfaces {
		out = append(out, actiongroup.InterfaceEnded{Name: e.Name, At: rfc3339(e.At), Reason: e.Reason})
	}
	return out
}

// completion describes a finished capture as a notice, with its health and what became of its files.
func (r *Responders) completion(rs *tripcap.Responder, run *tripcap.ResponderRun, c *tripcap.PacketCapture) *actiongroup.CaptureCompleted {
	h, _ := r.hosts.FindHost(r.bg, tripcap.HostFilter{ID: &c.HostID})
	var t payload.Trigger
	_ = json.Unmarshal(run.Trigger, &t) // a run kept without its alert tells what the run says
	d := actiongroup.CaptureCompletedData{
		EventID: c.ID, Time: rfc3339(r.now()),
		Responder: actiongroup.CompletedRef{ID: rs.ID, Name: rs.Name}, RunID: run.ID,
		Alert: actiongroup.CompletedAlert{ID: cmp.Or(t.AlertID, run.AlertKey), Condition: string(run.Condition), Rule: t.RuleName, Summary: run.Summary},
		Host:  actiongroup.CompletedHost{ID: c.HostID},
		Capture: actiongroup.CompletedCapture{ID: c.ID, Name: c.Name, Status: string(c.Status), StopReason: c.StopReason,
			Errors: append([]string{}, c.Errors...), ErrorMessage: c.ErrorMessage},
		Stats: actiongroup.CompletedStats{Packets: c.Stats.Packets, Bytes: c.Stats.Bytes, KernelDrops: c.Stats.KernelDrops,
			SnapLength: c.Parameters.BytesToCapturePerPacket, TruncatedPackets: c.Stats.TruncatedPackets, InterfacesEnded: interfacesEnded(c)},
		Upload:      uploadResult(c),
		Files:       []actiongroup.CompletedFile{},
		StoragePath: c.Parameters.StorageLocation.StoragePath,
	}
	if !t.FiredAt.IsZero() {
		d.Alert.FiredDateTime = rfc3339(t.FiredAt)
	}
	if c.Summary != nil {
		d.Summary = c.Summary.TopLines(notifySummaryLines)
	}
	if h != nil {
		d.Host = actiongroup.CompletedHost{ID: h.ID, Name: h.Name, ResourceID: h.ResourceID(), SubscriptionID: h.SubscriptionID, ResourceGroup: h.ResourceGroup, Location: h.Location}
	}
	if c.CaptureStartTime != nil {
		d.Capture.StartTime = rfc3339(*c.CaptureStartTime)
	}
	if c.CaptureStopTime != nil {
		d.Capture.StopTime = rfc3339(*c.CaptureStopTime)
	}
	anyStored := false
	for _, f := range c.Files {
		cf := actiongroup.CompletedFile{Name: f.Name, Size: f.Size, SHA256: f.SHA256, Stored: f.Stored, LocalPath: f.LocalPath}
		if f.Stored {
			anyStored = true
			cf.LocalPath = ""
			if f.Key != "" {
				cf.StoragePath = strings.TrimSuffix(d.StoragePath, c.StorageKey) + f.Key
			}
		}
		d.Files = append(d.Files, cf)
	}
	if c.Parameters.StorageLocation.StorageID == "" && c.Parameters.StorageLocation.LocalPath != "" && len(d.Files) == 0 {
		d.Files = append(d.Files, actiongroup.CompletedFile{Name: c.Name, LocalPath: c.Parameters.StorageLocation.LocalPath})
	}
	if anyStored && r.cfg.PublicURL != "" {
		d.DownloadURL = strings.TrimRight(r.cfg.PublicURL, "/") + "/api/v1/captures/" + c.ID + "/file"
	}
	return &actiongroup.CaptureCompleted{SchemaID: actiongroup.SchemaCaptureCompleted, Data: d}
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

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
