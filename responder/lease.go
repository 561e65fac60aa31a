package responder

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tripcap/tripcap"
)

// Every store call that takes, renews, fences or hands back a run's lease
// is in this file (claimBatch, claim, lease, create, record, releaseAll),
// so that how leases are kept changes in one place. Leases are timed on
// the database's clock, never a replica's, and every write of a run is
// fenced by its lease: a server whose lease lapsed cannot overwrite the
// record of the server that took the run over.

// sweepBatch bounds the runs one sweep claims.
const sweepBatch = 100

// sweep claims the open runs no server holds and resumes them.
func (r *Responders) sweep() {
	runs, err := r.claimBatch(r.bg, sweepBatch)
	if err != nil {
		if r.bg.Err() == nil {
			r.log.Warn("looking for work to resume", "err", err)
		}
		return
	}
	for _, run := range runs {
		if !r.track(run.ID) {
			continue
		}
		r.log.Info("resuming run", "run", run.ID, "responder", run.ResponderID, "decision", run.Decision)
		r.resume(run)
	}
}

// track records that this server works on a run; false when it already does.
func (r *Responders) track(id string) bool {
	r.activeMu.Lock()
	defer r.activeMu.Unlock()
	if r.active[id] {
		return false
	}
	r.active[id] = true
	return true
}

func (r *Responders) untrack(id string) {
	r.activeMu.Lock()
	defer r.activeMu.Unlock()
	delete(r.active, id)
}

// claimBatch takes up to limit open runs no server holds.
func (r *Responders) claimBatch(ctx context.Context, limit int) ([]*tripcap.ResponderRun, error) {
	return r.store.ClaimResponderRuns(ctx, r.cfg.Instance, r.cfg.Lease, limit)
}

// claim takes or renews this server's claim on a run.
func (r *Responders) claim(ctx context.Context, id string) error {
	return r.store.ClaimResponderRun(ctx, id, r.cfg.Instance, r.cfg.Lease)
}

// lease makes a new run this server's to decide, once created.
func (r *Responders) lease(run *tripcap.ResponderRun) {
	run.Owner = r.cfg.Instance
}

// create stores a new run, with the lease lease() asked for (if any) taken
// on the database's clock.
func (r *Responders) create(ctx context.Context, run *tripcap.ResponderRun) error {
	return r.store.CreateResponderRun(ctx, run, r.cfg.Lease)
}

// errTakenOver is what record answers when the run is no longer this
// server's: another took it over after its lease lapsed.
var errTakenOver = errors.New("the run was taken over by another server")

// record writes a run this server holds. A write the store refuses because
// the lease is gone (ECONFLICT) comes back as errTakenOver, and the caller
// stops working on the run: it is the new holder's.
func (r *Responders) record(ctx context.Context, run *tripcap.ResponderRun) error {
	err := r.store.UpdateResponderRun(ctx, run, r.cfg.Instance)
	if tripcap.ErrorCode(err) == tripcap.ECONFLICT {
		return fmt.Errorf("%w: %w", errTakenOver, err)
	}
	if err != nil {
		return fmt.Errorf("record %s: %w", run, err)
	}
	return nil
}

// releaseAll hands back this server's claims (a clean shutdown), so that
// another server takes the work at once instead of when leases end.
func (r *Responders) releaseAll(ctx context.Context) {
	if err := r.store.ReleaseResponderRuns(ctx, r.cfg.Instance); err != nil {
		r.log.Warn("handing back runs", "err", err)
	}
}

// keep renews the claim on a run while this server works on it; release
// stops renewing and forgets the run.
//
// held ends with release, with Run, or when the run is found taken over:
// work that follows the run (a notification's wait) stops with it.
func (r *Responders) keep(id string) (held context.Context, release func()) {
	held, lost := context.WithCancel(r.bg)
	ctx, cancel := context.WithCancel(held)
	done := make(chan struct{})
	r.wg.Go(func() {
		defer close(done)
		t := time.NewTicker(r.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := r.claim(ctx, id)
			if tripcap.ErrorCode(err) == tripcap.ECONFLICT {
				// Done, or taken over after this server lost touch with
				// the store for a whole lease: stop following it.
				lost()
				return
			}
			if err != nil && ctx.Err() == nil {
				r.log.Warn("renewing claim", "run", id, "err", err)
			}
		}
	})
	return held, func() {
		cancel()
		<-done
		lost()
		r.untrack(id)
	}
}
