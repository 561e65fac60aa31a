package controlplane

import (
	"testing"
	"time"
)

// TestPollClock: each channel closes once its time has passed, no earlier
// and at most a tick (plus scheduling) later, whatever order the polls
// asked in; a poll that asks for no wait has its answer at once.
func TestPollClock(t *testing.T) {
	var c pollClock
	select {
	case <-c.after(0):
	default:
		t.Fatal("after(0) is not closed")
	}
	start := time.Now()
	waits := []time.Duration{300 * time.Millisecond, 50 * time.Millisecond, 120 * time.Millisecond, 50 * time.Millisecond, 10 * time.Millisecond, 460 * time.Millisecond}
	chans := make([]<-chan struct{}, len(waits))
	for i, d := range waits {
		chans[i] = c.after(d)
	}
	order := []int{4, 1, 3, 2, 0, 5} // by wait, so each is timed as it closes
	for _, i := range order {
		d := waits[i]
		select {
		case <-chans[i]:
		case <-time.After(5 * time.Second):
			t.Fatalf("wait %s: not closed after 5 s", d)
		}
		if got := time.Since(start); got < d || got > d+pollTick+time.Second {
			t.Errorf("wait %s: closed after %s", d, got)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.due) != 0 || c.armed != 0 {
		t.Fatalf("after every deadline passed the clock holds %d ticks, armed %d", len(c.due), c.armed)
	}
}
