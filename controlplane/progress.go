package controlplane

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
)

// progressBatch holds agents' reports on captures that are simply still
// Running, so that a thousand running captures reporting every second cost
// one transaction a second instead of a thousand. A report that changes
// anything beyond progress (the first Running, a stop, an error) is applied
// at once; only "still running, here are the counters and file sizes" waits,
// at most a second, for the next flush.
type progressBatch struct {
	mu sync.Mutex
	// running holds captures whose last applied report said Running, by id:
	// the host that reported it and when.
	running map[string]runningCapture
	pending map[string]pendingReport
}

type runningCapture struct {
	hostID string
	seen   time.Time
}

type pendingReport struct {
	hostID string
	report tripcap.SessionReport
}

// forgetRunningAfter drops a capture nobody has reported on for this long
// (its agent went away), so the map does not grow with dead sessions.
const forgetRunningAfter = time.Minute

func newProgressBatch() *progressBatch {
	return &progressBatch{running: map[string]runningCapture{}, pending: map[string]pendingReport{}}
}

// hold keeps r for the next flush when it is progress on a capture that
// hostID was last seen running; false means apply it now.
func (b *progressBatch) hold(hostID string, r tripcap.SessionReport, now time.Time) bool {
	if r.Status != tripcap.StatusRunning {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	rc, ok := b.running[r.CaptureID]
	if !ok || rc.hostID != hostID {
		return false
	}
	b.running[r.CaptureID] = runningCapture{hostID: hostID, seen: now}
	b.pending[r.CaptureID] = pendingReport{hostID: hostID, report: r}
	return true
}

// applied records the outcome of a report applied at once: later progress
// on a capture that is Running may wait for the batch.
func (b *progressBatch) applied(hostID string, c *tripcap.PacketCapture, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c == nil {
		return
	}
	// What was held for this capture is older than the report just applied.
	delete(b.pending, c.ID)
	if c.Status == tripcap.StatusRunning && c.HostID == hostID {
		b.running[c.ID] = runningCapture{hostID: hostID, seen: now}
		return
	}
	delete(b.running, c.ID)
}

// forget stops batching for ids (gone, or now owned by nobody we know).
func (b *progressBatch) forget(ids ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		delete(b.running, id)
	}
}

// take returns the held reports and prunes captures silent for long.
func (b *progressBatch) take(now time.Time) map[string]pendingReport {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, rc := range b.running {
		if now.Sub(rc.seen) > forgetRunningAfter {
			delete(b.running, id)
		}
	}
	if len(b.pending) == 0 {
		return nil
	}
	out := b.pending
	b.pending = map[string]pendingReport{}
	return out
}

// requeue puts back reports a failed flush could not write, unless a newer
// one arrived meanwhile.
func (b *progressBatch) requeue(held map[string]pendingReport) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, p := range held {
		if _, newer := b.pending[id]; !newer {
			b.pending[id] = p
		}
	}
}

// progressChunk bounds one progress transaction, so that an API write
// waiting for SQLite's single writer waits for a hundred captures, not for
// every running one.
const progressChunk = 100

// flushProgress writes the held progress reports, a chunk per transaction.
func (s *Service) flushProgress(ctx context.Context) {
	held := s.progress.take(s.now())
	if held == nil {
		return
	}
	ids := make([]string, 0, len(held))
	for id := range held {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	now := s.now()
	for chunk := range slices.Chunk(ids, progressChunk) {
		missing, err := s.store.UpdateCaptures(ctx, chunk, func(c *tripcap.PacketCapture) bool {
			p := held[c.ID]
			if c.HostID != p.hostID || !applyReport(c, p.report) {
				return false
			}
			c.UpdatedAt = now
			return true
		})
		if err != nil {
			s.log.Error("recording capture progress", "captures", len(chunk), "err", err)
			rest := map[string]pendingReport{}
			for _, id := range ids[slices.Index(ids, chunk[0]):] {
				rest[id] = held[id]
			}
			s.progress.requeue(rest)
			return
		}
		// The agent learns of these at its next report, answered at once: unknown.
		s.progress.forget(missing...)
	}
}
