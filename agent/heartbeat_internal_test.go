package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

// TestHeartbeatFollowsTheServer: the agent takes its heartbeat interval from
// the server's answer, and sends none while its poll is open only once the
// server says it counts an open poll as a heartbeat.
func TestHeartbeatFollowsTheServer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		pollCounts bool
		polling    bool
		min, max   int32
	}{
		{"server's interval, no poll open", false, false, 5, 30},
		{"poll open, server does not count it", false, true, 5, 30},
		{"poll open and counted", true, true, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == "PRI" {
					return // the client's h2c attempt; it falls back to HTTP/1.1
				}
				n.Add(1)
				_ = json.NewEncoder(w).Encode(tripcap.HeartbeatResponse{HeartbeatSeconds: 0.1, OpenPollIsHeartbeat: tc.pollCounts})
			}))
			defer srv.Close()
			c, err := tchttp.NewClient(srv.URL, "agent")
			if err != nil {
				t.Fatal(err)
			}
			// Configured for 30 s: only the server's answer makes it 100 ms.
			a := &Agent{cfg: Config{HeartbeatInterval: 30 * time.Second}, log: slog.New(slog.NewTextHandler(io.Discard, nil)), client: c}
			a.polling.Store(tc.polling)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			a.heartbeatLoop(ctx)
			if got := n.Load(); got < tc.min || got > tc.max {
				t.Errorf("%d heartbeats in 1 s, want %d to %d", got, tc.min, tc.max)
			}
		})
	}
}
