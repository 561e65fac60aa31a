// Package webhooktest is a real HTTP webhook receiver for tests: it
// records every request it gets, so a test can check what an action group
// delivered (headers, signature, body) and how often.
package webhooktest

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap/actiongroup"
)

// Server is a webhook receiver. Paths starting /flaky answer
// 503 to the first request of each delivery id (actiongroup.HeaderDelivery),
// so a test sees a delivery retried; every other request is answered 200.
type Server struct {
	// URL is the server's base URL; receivers post to URL + a path.
	URL string
	mu  sync.Mutex
	got []Request
}

// Request is one request the server got, with its answer.
type Request struct {
	Path   string
	Header http.Header
	Body   []byte
	Status int
}

// Start starts a receiver on loopback, closed when the test ends.
func Start(t testing.TB) *Server {
	return StartAt(t, netip.MustParseAddr("127.0.0.1"))
}

// StartAt starts a receiver on a free port of addr (a test host's address,
// for a server in another network namespace), closed when the test ends.
func StartAt(t testing.TB, addr netip.Addr) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatalf("webhooktest: listen on %s: %v", addr, err)
	}
	s := &Server{URL: "http://" + ln.Addr().String()}
	seen := map[string]bool{}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		status := http.StatusOK
		if id := r.Header.Get(actiongroup.HeaderDelivery); strings.HasPrefix(r.URL.Path, "/flaky") && !seen[id] {
			seen[id] = true
			status = http.StatusServiceUnavailable
		}
		s.got = append(s.got, Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: b, Status: status})
		w.WriteHeader(status)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return s
}

// Accepted returns the requests to path answered 200, in arrival order.
func (s *Server) Accepted(path string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.got {
		if r.Path == path && r.Status == http.StatusOK {
			out = append(out, r)
		}
	}
	return out
}

// Targets allows webhooks to loopback, where Start's receivers listen, as
// an operator would with --allow-webhook-target 127.0.0.0/8 and ::1: a
// server under test is configured with it, its default refusing loopback.
func Targets() actiongroup.Targets {
	return actiongroup.Targets{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
}
