package controlplane

import (
	"context"
	"time"
)

// retentionTicker ticks when stored files are due a retention sweep: often
// enough that a file outlives its retention by a tenth of it at most (at
// most ten minutes), never when files are kept until deleted.
func (s *Service) retentionTicker() *time.Ticker {
	if s.cfg.FileRetention <= 0 {
		t := time.NewTicker(time.Hour)
		t.Stop() // never ticks
		return t
	}
	return time.NewTicker(min(max(s.cfg.FileRetention/10, 100*time.Millisecond), 10*time.Minute))
}

// sweepFiles deletes the stored files older than the retention and logs
// what it did; a file it could not delete is tried again next time.
func (s *Service) sweepFiles(ctx context.Context) {
	n, err := s.Files.SweepRetention(ctx, s.cfg.FileRetention)
	if n > 0 {
		s.log.Info("deleted stored files past their retention", "files", n, "retention", s.cfg.FileRetention)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Error("deleting stored files past their retention", "err", err)
	}
}
