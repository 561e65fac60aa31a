package controlplane_test

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/internal/teststore"
)

// TestReplayRule: an unsaved rule replayed over a host's last minutes of
// Network Out Total fires where the points crossed the threshold; nothing
// is stored; a caller who may not read the host is told it does not
// exist, and bad input names its field.
func TestReplayRule(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := newAccessFixture(t, store)
		m := startMonitor(t, f.fixture)
		start := time.Now().Add(-90 * time.Second).Truncate(time.Second)
		values := append(append(repeat(10, 30), repeat(1000, 20)...), repeat(10, 40)...)
		ingest(t, m.mon, f.agents["a1"], start, values...)

		r := egressRule("draft", "ops", 500)
		r.Scopes = []tripcap.Scope{"host:a1"}
		r.Actions = nil
		rp, err := m.mon.ReplayRule(f.who["readerA"], r, "a1", 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		fired, resolved := 0, 0
		var firedAt time.Time
		for _, p := range rp.Evaluations {
			switch p.Transition {
			case tripcap.ConditionFired:
				fired++
				firedAt = p.Time
			case tripcap.ConditionResolved:
				resolved++
			}
		}
		if fired != 1 || resolved != 1 || rp.Fired != 1 || rp.Host != "a1" {
			t.Fatalf("replay on a1: fired %d, resolved %d (%d), host %s", fired, resolved, rp.Fired, rp.Host)
		}
		if burst := start.Add(30 * time.Second); firedAt.Before(burst) || firedAt.After(burst.Add(10*time.Second)) {
			t.Errorf("fired at %s, the burst began at %s", firedAt, burst)
		}
		if as := alertsOf(t, f.fixture); len(as) != 0 {
			t.Errorf("the replay stored %d alerts", len(as))
		}
		if _, err := m.mon.ReplayRule(f.who["readerA"], r, "x1", controlplane.DefaultReplayWindow); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
			t.Errorf("readerA on x1: %v, want ENOTFOUND", err)
		}
		if _, err := m.mon.ReplayRule(f.who["none"], r, "a1", 0); tripcap.ErrorCode(err) != tripcap.EFORBIDDEN {
			t.Errorf("none: %v, want EFORBIDDEN", err)
		}
		bad := *r
		bad.WindowSize = "PT0S"
		if _, err := m.mon.ReplayRule(f.who["readerA"], &bad, "a1", 0); tripcap.ErrorCode(err) != tripcap.EINVALID || tripcap.ErrorMessage(err)[:10] != "windowSize" {
			t.Errorf("bad window size: %v", err)
		}
		if _, err := m.mon.ReplayRule(f.who["readerA"], r, "a1", 48*time.Hour); tripcap.ErrorCode(err) != tripcap.EINVALID {
			t.Errorf("48 h: %v, want EINVALID", err)
		}
		if _, err := m.mon.ReplayRule(f.who["readerA"], r, "", 0); tripcap.ErrorCode(err) != tripcap.EINVALID {
			t.Errorf("no host: %v, want EINVALID", err)
		}
	})
}
