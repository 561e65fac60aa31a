package http

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tripcap/tripcap"
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

// Requests whose credential is being checked count against their address:
// one over the cap is answered 503 with Retry-After without being checked;
// once a check ends its slot is free again.
func TestUnauthenticatedRequestsCapped(t *testing.T) {
	s := &Server{guard: newGuard(Limits{UnauthenticatedPerAddress: 2}, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())}
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			r := httptest.NewRequest("GET", "/api/v1/hosts", nil)
			r.RemoteAddr = "198.51.100.9:4000"
			if err := s.admit(httptest.NewRecorder(), r, credBearer, "tc_x", func() error { started <- struct{}{}; <-release; return nil }); err != nil {
				t.Errorf("within the cap: %v", err)
			}
		})
	}
	<-started
	<-started
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/api/v1/hosts", nil)
	r.RemoteAddr = "198.51.100.9:4001"
	checked := false
	err := s.admit(w, r, credBearer, "tc_x", func() error { checked = true; return nil })
	if st, ok := refusalStatus(err); !ok || st != 503 || checked || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("over the cap: %v (status %d), checked %v, Retry-After %q", err, st, checked, w.Header().Get("Retry-After"))
	}
	// Another address is not held to this one's count.
	r.RemoteAddr = "198.51.100.10:4001"
	if err := s.admit(httptest.NewRecorder(), r, credBearer, "tc_x", func() error { return nil }); err != nil {
		t.Fatalf("another address: %v", err)
	}
	close(release)
	wg.Wait()
	r.RemoteAddr = "198.51.100.9:4002"
	if err := s.admit(httptest.NewRecorder(), r, credBearer, "tc_x", func() error { return nil }); err != nil {
		t.Fatalf("after the checks ended: %v", err)
	}
}

// HTTP/2 streams sent at once on a trusted connection each reach admit
// before any of them fails: only those carrying the credential that made
// the connection trusted skip the limiter; the others, from an address
// over its failures, are answered 429 without being checked, all of them.
func TestTrustedConnectionConcurrentGuesses(t *testing.T) {
	s := &Server{guard: newGuard(Limits{AuthFailures: 3, AuthFailureWindow: time.Minute}, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())}
	const addr = "198.51.100.9"
	conn := &trackedConn{g: s.guard, key: addr}
	req := func(port int) *http.Request {
		r := httptest.NewRequest("GET", "/api/v1/hosts", nil)
		r.RemoteAddr = fmt.Sprintf("%s:%d", addr, port)
		return r.WithContext(context.WithValue(r.Context(), connCtxKey{}, conn))
	}
	if err := s.admit(httptest.NewRecorder(), req(1), credBearer, "tc_valid", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	// Other connections from the address fail until it is limited.
	for i := range 3 {
		r := httptest.NewRequest("GET", "/api/v1/hosts", nil)
		r.RemoteAddr = fmt.Sprintf("%s:%d", addr, 100+i)
		_ = s.admit(httptest.NewRecorder(), r, credBearer, "tc_wrong", func() error { return tripcap.Errorf(tripcap.EUNAUTHORIZED, "wrong") })
	}
	var checked atomic.Int32
	release := make(chan struct{})
	statuses := make(chan int, 50)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			err := s.admit(httptest.NewRecorder(), req(2+i), credBearer, fmt.Sprintf("tc_guess%d", i), func() error {
				checked.Add(1)
				<-release
				return tripcap.Errorf(tripcap.EUNAUTHORIZED, "wrong")
			})
			st, _ := refusalStatus(err)
			statuses <- st
		})
	}
	// Before the fix all 50 were checked, held here until released.
	time.Sleep(200 * time.Millisecond)
	close(release)
	wg.Wait()
	close(statuses)
	if n := checked.Load(); n != 0 {
		t.Fatalf("%d guesses on a trusted connection were checked from a limited address", n)
	}
	for st := range statuses {
		if st != 429 {
			t.Fatalf("a guess on a trusted connection: status %d, want 429", st)
		}
	}
	// The trusted credential is still served on its connection.
	if err := s.admit(httptest.NewRecorder(), req(99), credBearer, "tc_valid", func() error { return nil }); err != nil {
		t.Fatalf("the trusted credential: %v", err)
	}
}

// A login whose password cannot be hashed now (every turn taken, the wait
// over: EUNAVAILABLE) is answered 503 with Retry-After, not 409, and is
// no failure.
func TestClaimBusyUnavailable(t *testing.T) {
	s := &Server{guard: newGuard(Limits{AuthFailures: 1, AuthFailureWindow: time.Minute}, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())}
	for range 3 {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/api/v1/login", nil)
		r.RemoteAddr = "198.51.100.9:4000"
		err := s.admitClaim(w, r, credLogin, func() (string, error) { return "alice", nil }, func() error {
			return tripcap.Errorf(tripcap.EUNAVAILABLE, "too many passwords are being checked at once; retry later")
		})
		if st, ok := refusalStatus(err); !ok || st != 503 || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("busy: %v (status %d), Retry-After %q", err, st, w.Header().Get("Retry-After"))
		}
	}
}
