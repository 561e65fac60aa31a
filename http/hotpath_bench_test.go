package http_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

// BenchmarkAgentHotPath is what the fleet benchmark's server spends on
// each of the calls it serves most (bench/fleet: ~960 progress reports a
// second of 1,000 running captures, the long polls, the API probe), through
// the whole handler (limits, authentication, audit, JSON) but without the
// network: CPU and allocations per request, the figures docs/performance.md
// quotes for the PostgreSQL fleet.
//
//	go test ./http/ -run '^$' -bench AgentHotPath -benchmem -count 6
func BenchmarkAgentHotPath(b *testing.B) {
	f := newFixtureWith(b, fixtureOptions{audited: true})
	ctx := b.Context()
	c, err := f.admin.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: "hot", Parameters: tripcap.PacketCaptureParameters{Target: "web1"}})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now().UTC()
	report := tripcap.SessionReport{CaptureID: c.ID, Status: tripcap.StatusRunning, StartTime: &start,
		Stats: tripcap.CaptureStats{Packets: 100, Bytes: 6400},
		Files: []tripcap.CaptureFile{{Name: "capture-000.pcap", Size: 6400, LocalPath: "/var/lib/tripcap/c/capture-000.pcap", CreatedAt: start}}}
	// The first Running report is applied at once; later ones wait for the batch.
	if _, err := f.agent.Report(ctx, []tripcap.SessionReport{report}); err != nil {
		b.Fatal(err)
	}
	serve := func(b *testing.B, method, path, token string, body []byte, want int) {
		req := httptest.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
		req.RemoteAddr = "127.0.0.2:40000"
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set(tripcap.AgentProtocolHeader, strconv.Itoa(tripcap.AgentProtocolVersion))
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		f.server.ServeHTTP(w, req)
		if w.Code != want {
			b.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
		}
	}
	b.Run("report", func(b *testing.B) {
		for b.Loop() {
			report.Stats.Packets++
			body, _ := json.Marshal([]tripcap.SessionReport{report})
			serve(b, "POST", "/api/v1/agent/reports", f.credential, body, http.StatusOK)
		}
	})
	b.Run("heartbeat", func(b *testing.B) {
		body := []byte(`{}`)
		for b.Loop() {
			serve(b, "POST", "/api/v1/agent/heartbeat", f.credential, body, http.StatusOK)
		}
	})
	b.Run("poll-changed", func(b *testing.B) {
		for b.Loop() {
			serve(b, "GET", "/api/v1/agent/assignments?revision=-5&wait=0s", f.credential, nil, http.StatusOK)
		}
	})
	// An up-to-date agent's poll (wait 0: the answer is "nothing new").
	as, err := f.agent.Assignments(ctx, -1, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("poll-current", func(b *testing.B) {
		path := "/api/v1/agent/assignments?revision=" + strconv.FormatInt(as.Revision, 10) + "&wait=0s"
		for b.Loop() {
			serve(b, "GET", path, f.credential, nil, http.StatusOK)
		}
	})
	b.Run("get-capture", func(b *testing.B) {
		for b.Loop() {
			serve(b, "GET", "/api/v1/captures/"+c.ID, f.token, nil, http.StatusOK)
		}
	})
}
