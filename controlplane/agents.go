package controlplane

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/capturefile"
)

// MaxPollWait bounds an agent's long poll, below common proxy idle timeouts.
const MaxPollWait = 55 * time.Second

// Assignments returns the calling agent's desired state as soon as its
// revision differs from known, or after wait with the same revision. Each
// poll also counts as a heartbeat.
func (s *Service) Assignments(ctx context.Context, known int64, wait time.Duration) (*tripcap.Assignments, error) {
	hostID, err := requireAgent(ctx)
	if err != nil {
		return nil, err
	}
	wait = min(max(wait, 0), MaxPollWait)
	s.counters.PollsWaiting.Add(1)
	defer s.counters.PollsWaiting.Add(-1)
	s.polls.open(hostID, s.now())
	defer s.polls.close(hostID)
	deadline := s.pollClock.after(wait)
	for {
		s.heartbeats.add(hostID, s.now())
		// Take the channel before reading, so a change in between still wakes us.
		changed, rev, remembered := s.waiters.channel(hostID)
		if !remembered {
			if rev, err = s.store.HostRevision(ctx, hostID); err != nil {
				return nil, fmt.Errorf("revision of the agent's host: %w", err)
			}
			s.waiters.remember(hostID, changed, rev)
		}
		if rev != known {
			h, err := s.store.FindHost(ctx, tripcap.HostFilter{ID: &hostID})
			if err != nil {
				return nil, fmt.Errorf("find host of agent: %w", err)
			}
			return s.assignments(ctx, h)
		}
		select {
		case <-changed:
		case <-deadline:
			return &tripcap.Assignments{Revision: known, Assignments: nil}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *Service) assignments(ctx context.Context, h *tripcap.Host) (*tripcap.Assignments, error) {
	caps, _, err := s.store.FindCaptures(ctx, tripcap.CaptureFilter{HostID: &h.ID, ActiveOnly: true, IncludeDeleted: true})
	if err != nil {
		return nil, fmt.Errorf("captures of %s: %w", h.Name, err)
	}
	out := &tripcap.Assignments{Revision: h.Revision, Assignments: make([]tripcap.Assignment, 0, len(caps))}
	for _, c := range caps {
		out.Assignments = append(out.Assignments, tripcap.Assignment{
			ID: c.ID, Name: c.Name, Desired: c.Desired, Status: c.Status,
			Parameters: c.Parameters, Cause: c.Cause, CreatedAt: c.CreatedAt,
		})
	}
	return out, nil
}

// Report applies an agent's session reports. Reports on captures the server
// does not know (or that belong to another host) come back as Unknown.
func (s *Service) Report(ctx context.Context, reports []tripcap.SessionReport) (*tripcap.ReportResult, error) {
	hostID, err := requireAgent(ctx)
	if err != nil {
		return nil, err
	}
	s.heartbeats.add(hostID, s.now())
	s.counters.Reports.Add(uint64(len(reports)))
	res := &tripcap.ReportResult{}
	for _, r := range reports {
		if !validReportStatus(r.Status) {
			return nil, tripcap.Errorf(tripcap.EINVALID, "reports[%s].status: %q is not a session status", r.CaptureID, r.Status)
		}
	}
	now := s.now()
	for _, r := range reports {
		if r.Status == tripcap.StatusRunning && r.StartTime == nil {
			// An agent says when a session started in its final report only;
			// until then the first Running report's arrival stands for it
			// (captureStartTime of a running capture, Azure's queryStatus).
			r.StartTime = &now
		}
		if s.batching.Load() && s.progress.hold(hostID, r, now) {
			continue
		}
		var applied *tripcap.PacketCapture
		err := s.updateCapture(ctx, r.CaptureID, func(c *tripcap.PacketCapture) bool {
			if c.HostID != hostID {
				res.Unknown = append(res.Unknown, r.CaptureID)
				return false
			}
			applied = c
			return applyReport(c, r)
		})
		switch {
		case tripcap.ErrorCode(err) == tripcap.ENOTFOUND:
			res.Unknown = append(res.Unknown, r.CaptureID)
			s.progress.forget(r.CaptureID)
		case err != nil:
			return nil, err
		default:
			s.progress.applied(hostID, applied, now)
		}
	}
	return res, nil
}

func validReportStatus(st tripcap.PacketCaptureStatus) bool {
	switch st {
	case tripcap.StatusNotStarted, tripcap.StatusRunning, tripcap.StatusStopped, tripcap.StatusError:
		return true
	}
	return false
}

// applyReport merges a report into c and says whether anything changed. A
// capture the server already ended (AgentStopped) keeps its status, but still
// takes the agent's final counters and files: that is how a partial file is
// recovered after an agent restarts.
func applyReport(c *tripcap.PacketCapture, r tripcap.SessionReport) bool {
	// Progress on a capture that has ended is older than what ended it (a
	// report held for the batch, or one delayed in flight): the final figures
	// are the file's and must stay.
	if c.Status.Terminal() && !r.Status.Terminal() {
		return false
	}
	before := reportedFields(c)
	if !c.Status.Terminal() {
		c.Status = r.Status
		if r.Status.Terminal() {
			c.StopReason = r.StopReason
			c.Errors = r.Errors
			c.ErrorMessage = r.Message
		}
	}
	// A file the agent could not store is reported after the session ended:
	// it turns an ended capture into an Error one, with the backend's message.
	if slices.Contains(r.Errors, tripcap.CaptureErrStorageFailed) && !slices.Contains(c.Errors, tripcap.CaptureErrStorageFailed) {
		c.Errors = append(c.Errors, tripcap.CaptureErrStorageFailed)
		c.ErrorMessage = strings.TrimPrefix(c.ErrorMessage+"; "+r.Message, "; ")
		if c.Status.Terminal() {
			c.Status = tripcap.StatusError
		}
	}
	if r.StartTime != nil && c.CaptureStartTime == nil {
		c.CaptureStartTime = r.StartTime
	}
	if r.StopTime != nil && c.CaptureStopTime == nil {
		c.CaptureStopTime = r.StopTime
	}
	c.Stats = r.Stats
	if r.Summary != nil {
		c.Summary = r.Summary
	}
	for _, f := range r.Files {
		i := capturefile.Index(c, f.Name)
		if i < 0 {
			c.Files = append(c.Files, tripcap.CaptureFile{Name: f.Name})
			i = len(c.Files) - 1
		}
		cur := &c.Files[i]
		if cur.Stored {
			continue // the stored copy is what counts now
		}
		cur.Size, cur.SHA256, cur.LocalPath, cur.CreatedAt = f.Size, f.SHA256, f.LocalPath, f.CreatedAt
	}
	return !reflect.DeepEqual(before, reportedFields(c))
}

// reportedFields copies what a report may change, to tell whether it did.
func reportedFields(c *tripcap.PacketCapture) tripcap.PacketCapture {
	return tripcap.PacketCapture{
		Status: c.Status, StopReason: c.StopReason, Errors: slices.Clone(c.Errors), ErrorMessage: c.ErrorMessage,
		CaptureStartTime: c.CaptureStartTime, CaptureStopTime: c.CaptureStopTime, Stats: c.Stats, Files: slices.Clone(c.Files),
		Summary: c.Summary,
	}
}

// QueryStatus is Azure's queryStatus: the capture's status fields.
func (s *Service) QueryStatus(ctx context.Context, watcher, ref string) (*tripcap.PacketCapture, error) {
	return s.FindCapture(ctx, watcher, ref)
}
