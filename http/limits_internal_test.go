package http

import (
	"fmt"
	"testing"
	"time"
)

// IPv6 callers are counted per /64: one host commonly holds a whole /64.
func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7:5000":                 "203.0.113.7",
		"[::ffff:203.0.113.7]:5000":        "203.0.113.7",
		"[2001:db8:1:2:3:4:5:6]:443":       "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff:ffff:1:1]:443": "2001:db8:1:2::/64",
		"[::1]:80":                         "::/64",
	} {
		if got := addrKey(in); got != want {
			t.Errorf("addrKey(%s) = %s, want %s", in, got, want)
		}
	}
}

// The failure limiter's memory is bounded whatever addresses fail: a
// million /64s leave at most capacity entries, and a limited address that
// keeps failing stays limited until its window ends.
func TestFailureLimiterBounded(t *testing.T) {
	l := &failureLimiter{max: 3, window: time.Minute, capacity: 1000, entries: map[string]*failureWindow{}}
	now := time.Unix(1_700_000_000, 0)
	for i := range 3 {
		l.fail("198.51.100.1", now.Add(time.Duration(i)*time.Second))
	}
	if left, first := l.retryAfter("198.51.100.1", now.Add(10*time.Second)); left != 50*time.Second || !first {
		t.Fatalf("limited: %s, first %v", left, first)
	}
	if _, first := l.retryAfter("198.51.100.1", now.Add(11*time.Second)); first {
		t.Fatal("logged twice in a window")
	}
	for i := range 1_000_000 {
		l.fail(fmt.Sprintf("2001:db8:%x:%x::/64", i>>16, i&0xffff), now.Add(20*time.Second))
		if len(l.entries) > 1000 {
			t.Fatalf("%d entries after %d addresses", len(l.entries), i+1)
		}
	}
	if left, _ := l.retryAfter("198.51.100.1", now.Add(61*time.Second)); left != 0 {
		t.Fatalf("still limited after the window: %s", left)
	}
}
