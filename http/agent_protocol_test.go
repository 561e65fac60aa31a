package http_test

import (
	"context"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// TestAgentProtocolVersion: every answer to an agent call carries the
// server's agent protocol version; an agent that sends none (one from before
// versions) enrolls and heartbeats as it did and still hears
// openPollIsHeartbeat; one that sends a version does not; a version that is
// not one is refused, naming the header.
func TestAgentProtocolVersion(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	want := strconv.Itoa(tripcap.AgentProtocolVersion)

	jt, err := f.admin.CreateJoinToken(ctx, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp := f.request(t, "POST", "/api/v1/agent/enroll", jt.Token, strings.NewReader(`{"name":"old1"}`), "Content-Type", "application/json")
	if resp.StatusCode != 201 || resp.Header.Get(tripcap.AgentProtocolHeader) != want {
		t.Fatalf("enroll without a version: %s, %s %q", resp.Status, tripcap.AgentProtocolHeader, resp.Header.Get(tripcap.AgentProtocolHeader))
	}
	var enrolled tripcap.EnrollResponse
	if err := json.NewDecoder(resp.Body).Decode(&enrolled); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, sent string
		wantFlag   bool
	}{
		{"old agent, no version", "", true},
		{"agent at 1", "1", false},
		{"agent at a later version", "12", false},
	} {
		var hdr []string
		if tc.sent != "" {
			hdr = []string{tripcap.AgentProtocolHeader, tc.sent}
		}
		resp := f.request(t, "POST", "/api/v1/agent/heartbeat", enrolled.Credential, nil, hdr...)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get(tripcap.AgentProtocolHeader) != want {
			t.Fatalf("%s: heartbeat %s, %s %q: %s", tc.name, resp.Status, tripcap.AgentProtocolHeader, resp.Header.Get(tripcap.AgentProtocolHeader), body)
		}
		if got := strings.Contains(string(body), `"openPollIsHeartbeat":true`); got != tc.wantFlag {
			t.Errorf("%s: heartbeat answer %s: openPollIsHeartbeat %v, want %v", tc.name, body, got, tc.wantFlag)
		}
	}

	resp = f.request(t, "GET", "/api/v1/agent/assignments?wait=0s", enrolled.Credential, nil, tripcap.AgentProtocolHeader, "one")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(body), tripcap.AgentProtocolHeader) {
		t.Errorf("a version that is not one: %s %s, want 400 naming %s", resp.Status, body, tripcap.AgentProtocolHeader)
	}

	// The client sends its version and keeps the server's.
	if _, err := f.agent.Heartbeat(ctx, tripcap.Heartbeat{}); err != nil {
		t.Fatal(err)
	}
	if got := f.agent.ServerProtocol(); got != tripcap.AgentProtocolVersion {
		t.Errorf("ServerProtocol after a heartbeat = %d, want %d", got, tripcap.AgentProtocolVersion)
	}
	// Admin routes carry no agent protocol.
	resp = f.request(t, "GET", "/api/v1/hosts", f.token, nil)
	if v := resp.Header.Get(tripcap.AgentProtocolHeader); v != "" {
		t.Errorf("an admin route answered %s %q", tripcap.AgentProtocolHeader, v)
	}
}
