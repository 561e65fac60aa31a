package controlplane

import (
	"context"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
)

// StorageCheck is a storage account's health: whether the server reaches it
// with its credentials now.
type StorageCheck struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	OK   bool   `json:"ok"`
	// Error says what failed, when it did.
	Error     string    `json:"error,omitempty"`
	CheckedAt time.Time `json:"checkedAt"`
}

// How a check is made: a read of an object no capture writes (a backend
// that answers "not found" is reachable and lets the server in), bounded in
// time, and remembered for a while so that pages showing it stay fast.
const (
	storageProbeKey     = "tripcap-health-probe"
	storageCheckTimeout = 3 * time.Second
	storageCheckTTL     = 30 * time.Second
)

// storageChecks remembers the last checks.
type storageChecks struct {
	mu     sync.Mutex
	checks []StorageCheck
	at     time.Time
}

// CheckStorage checks every storage account (the caller needs to read
// them), answering from the last checks when they are recent.
func (s *Service) CheckStorage(ctx context.Context) ([]StorageCheck, error) {
	accts, err := s.FindStorageAccounts(ctx)
	if err != nil {
		return nil, err
	}
	c := &s.storageChecks
	c.mu.Lock()
	defer c.mu.Unlock()
	now := s.now()
	if now.Sub(c.at) < storageCheckTTL && len(c.checks) == len(accts) {
		return append([]StorageCheck(nil), c.checks...), nil
	}
	out := make([]StorageCheck, 0, len(accts))
	for _, a := range accts {
		out = append(out, s.checkStorage(ctx, a))
	}
	c.checks, c.at = out, now
	return append([]StorageCheck(nil), out...), nil
}

func (s *Service) checkStorage(ctx context.Context, a *tripcap.StorageAccount) StorageCheck {
	ctx, cancel := context.WithTimeout(ctx, storageCheckTimeout)
	defer cancel()
	sc := StorageCheck{Name: a.Name, URL: a.URL, CheckedAt: s.now()}
	b, err := s.blobStore(ctx, a.Name)
	if err == nil {
		var rc interface{ Close() error }
		rc, _, err = b.Open(ctx, storageProbeKey)
		if err == nil {
			_ = rc.Close()
		}
		if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
			err = nil
		}
	}
	if err != nil {
		sc.Error = tripcap.RedactURLs(tripcap.ErrorMessage(err))
		if tripcap.ErrorCode(err) == tripcap.EINTERNAL {
			sc.Error = tripcap.RedactURLs(err.Error())
		}
		s.log.Warn("storage account check failed", "account", a.Name, "err", sc.Error)
		return sc
	}
	sc.OK = true
	return sc
}
