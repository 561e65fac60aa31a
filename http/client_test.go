package http_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

// TestAgentCallsSurviveAClosedReusedConnection: a server may close an idle
// keep-alive connection just as the agent sends on it (Go's server does so at
// its header timeout). Heartbeats and reports are replayed on a new
// connection; enrollment, which spends a join token, is not.
func TestAgentCallsSurviveAClosedReusedConnection(t *testing.T) {
	var heartbeats, enrolls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hangUp := false
		switch r.URL.Path {
		case "/api/v1/agent/heartbeat":
			hangUp = heartbeats.Add(1) == 1
		case "/api/v1/agent/enroll":
			hangUp = enrolls.Add(1) == 1
		}
		if hangUp {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			_ = conn.Close()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c, err := tchttp.NewClient(srv.URL, "agent-token")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Each call first puts a connection in the idle pool, so the next one is sent on a reused connection.
	if _, err := c.Assignments(ctx, -1, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Heartbeat(ctx, tripcap.Heartbeat{}); err != nil {
		t.Fatalf("heartbeat on a connection the server closed: %v", err)
	}
	if got := heartbeats.Load(); got != 2 {
		t.Errorf("heartbeat sent %d times, want 2 (one replay)", got)
	}
	if _, err := c.Assignments(ctx, -1, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enroll(ctx, tripcap.EnrollRequest{JoinToken: "j"}); err == nil {
		t.Error("enrollment on a closed connection succeeded: it was replayed with a spent join token")
	}
	if got := enrolls.Load(); got != 1 {
		t.Errorf("enroll sent %d times, want 1", got)
	}
}

// TestClientPicksHTTP2AndFallsBack: against a server that speaks h2c the
// client uses one HTTP/2 connection; behind an HTTP/1-only front it falls
// back to HTTP/1.1 at the first exchange and stays there.
func TestClientPicksHTTP2AndFallsBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		h2c  bool
		want int
	}{{"h2c server", true, 2}, {"HTTP/1-only server", false, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			var protos []int
			var mu sync.Mutex
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == "PRI" {
					return // an HTTP/1 server hands the h2c preface to the handler
				}
				mu.Lock()
				protos = append(protos, r.ProtoMajor)
				mu.Unlock()
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = io.WriteString(w, `{}`)
			}))
			if tc.h2c {
				srv.Config.Protocols = new(http.Protocols)
				srv.Config.Protocols.SetHTTP1(true)
				srv.Config.Protocols.SetUnencryptedHTTP2(true)
			}
			srv.Start()
			defer srv.Close()
			c, err := tchttp.NewClient(srv.URL, "agent-token")
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := c.Heartbeat(ctx, tripcap.Heartbeat{}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Assignments(ctx, -1, 0); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(protos) != 2 || protos[0] != tc.want || protos[1] != tc.want {
				t.Errorf("requests arrived as HTTP/%v, want two as HTTP/%d", protos, tc.want)
			}
		})
	}
}
