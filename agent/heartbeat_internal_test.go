package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

// TestHeartbeatFollowsTheServer: the agent takes its heartbeat interval from
// the server's answer, and sends none while its poll is open only to a
// server at agent protocol version 1 or later. A server that sends no
// version (as before versions, even one that says openPollIsHeartbeat) gets
// every heartbeat. Every call carries the agent's own version.
func TestHeartbeatFollowsTheServer(t *testing.T) {
	for _, tc := range []struct {
		name          string
		serverVersion string // "" sends no header
		polling       bool
		min, max      int32
	}{
		{"server at 1, no poll open", "1", false, 5, 30},
		{"poll open, server sends no version", "", true, 5, 30},
		{"poll open, server at 1", "1", true, 1, 1},
		{"poll open, server at a later version", "7", true, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			var badHeader atomic.Value
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == "PRI" {
					return // the client's h2c attempt; it falls back to HTTP/1.1
				}
				n.Add(1)
				if got := r.Header.Get(tripcap.AgentProtocolHeader); got != strconv.Itoa(tripcap.AgentProtocolVersion) {
					badHeader.Store(got)
				}
				if tc.serverVersion != "" {
					w.Header().Set(tripcap.AgentProtocolHeader, tc.serverVersion)
				}
				// A server from before versions said so in the body: the
				// agent must go by the version alone.
				_ = json.NewEncoder(w).Encode(tripcap.HeartbeatResponse{HeartbeatSeconds: 0.1, OpenPollIsHeartbeat: tc.serverVersion == ""})
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
			if v := badHeader.Load(); v != nil {
				t.Errorf("a heartbeat carried %s %q, want %d", tripcap.AgentProtocolHeader, v, tripcap.AgentProtocolVersion)
			}
		})
	}
}
