//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// TestAuditLog is the audit log through the binary: an enrollment, a
// capture created and deleted, and a refused token are each in
// `tripcap audit list`, with who, from where and how it ended, filtered by
// principal, action, resource, result and time; each is a structured line
// in the server's log, which holds none of the secrets used; and the log
// outlives a restart of the server.
func TestAuditLog(t *testing.T) {
	l := newLabWith(t, func(l *lab) { l.serverArgs = append(l.serverArgs, "--audit-retention", "P30D") })
	h := l.addHost("h1")
	l.cli(nil, "capture", "create", "pc", "--host", "h1", "--time-limit", "30s")
	l.eventually("pc Running", 10*time.Second, func() bool { return l.capture("pc").Status == tripcap.StatusRunning })
	l.cli(nil, "capture", "stop", "pc")
	l.eventually("pc stored", 15*time.Second, func() bool {
		c := l.capture("pc")
		return c.Status.Terminal() && len(c.Files) == 1 && c.Files[0].Stored
	})
	l.cli(nil, "capture", "delete", "pc")
	bogus := tripcap.NewSecret(tripcap.SecretPrefixAdmin)
	if out, err := l.ctl.Exec(context.Background(), binary, "--server", l.localURL(), "--token", bogus, "--ca-file", l.caFile(), "host", "list"); err == nil {
		t.Fatalf("a bogus token listed hosts: %s", out)
	}

	list := func(args ...string) []*tripcap.AuditEvent {
		t.Helper()
		var events []*tripcap.AuditEvent
		if err := l.cliJSON(&events, append([]string{"audit", "list"}, args...)...); err != nil {
			t.Fatalf("audit list %v: %v", args, err)
		}
		return events
	}
	actions := func(events []*tripcap.AuditEvent) []string {
		var out []string
		for _, e := range events {
			out = append(out, e.Action)
		}
		return out
	}
	byAction := map[string]*tripcap.AuditEvent{}
	var all []*tripcap.AuditEvent
	l.eventually("the audit events", 10*time.Second, func() bool {
		all = list()
		for _, e := range all {
			byAction[e.Action] = e
		}
		return len(byAction) >= 7
	})
	// Newest first, and nothing for the reads (host list, capture show,
	// the agent's polls and heartbeats).
	want := []string{"listHosts", "deleteCapture", "agentUploadFile", "stopCapture", "createCapture", "agentEnroll", "createJoinToken"}
	if got := actions(all); strings.Join(got, ",") != strings.Join(want, ",") {
		b, _ := json.MarshalIndent(all, "", " ")
		t.Fatalf("audit list: %v, want %v\n%s", got, want, b)
	}
	admin := func(e *tripcap.AuditEvent) bool {
		return e.PrincipalKind == tripcap.PrincipalBootstrap && e.Result == tripcap.AuditSuccess && strings.HasPrefix(e.RemoteAddr, "127.0.0.1:")
	}
	if e := byAction["createJoinToken"]; !admin(e) || e.Status != 201 {
		t.Fatalf("join token: %+v", e)
	}
	enroll := byAction["agentEnroll"]
	hostAddr := h.ctlLink.B.Addr.Addr().String()
	if enroll.PrincipalKind != tripcap.PrincipalAgent || enroll.PrincipalName != "agent h1" || enroll.Resource != "hosts/h1" || enroll.HostID == "" ||
		!strings.HasPrefix(enroll.RemoteAddr, hostAddr+":") || enroll.Status != 201 {
		t.Fatalf("enrollment (from %s): %+v", hostAddr, enroll)
	}
	if e := byAction["createCapture"]; !admin(e) || e.Resource != "captures/pc" || e.HostID != enroll.HostID {
		t.Fatalf("create: %+v", e)
	}
	if e := byAction["stopCapture"]; !admin(e) || e.Resource != "captures/pc" || e.Status != 200 {
		t.Fatalf("stop: %+v", e)
	}
	if e := byAction["agentUploadFile"]; e.PrincipalName != "agent h1" || e.HostID != enroll.HostID || !strings.HasPrefix(e.Resource, "captures/") ||
		!strings.HasPrefix(e.RemoteAddr, hostAddr+":") || e.Result != tripcap.AuditSuccess {
		t.Fatalf("upload: %+v", e)
	}
	if e := byAction["deleteCapture"]; !admin(e) || e.Resource != "captures/pc" || e.Status != 204 {
		t.Fatalf("delete: %+v", e)
	}
	if e := byAction["listHosts"]; e.Result != tripcap.AuditDenied || e.Status != 401 || e.PrincipalName != "" || e.Detail != "credential refused: tc_admin_…" {
		t.Fatalf("bogus token: %+v", e)
	}

	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--principal", "agent h1"}, []string{"agentUploadFile", "agentEnroll"}},
		{[]string{"--action", "createCapture"}, []string{"createCapture"}},
		{[]string{"--resource", "captures/pc"}, []string{"deleteCapture", "stopCapture", "createCapture"}},
		{[]string{"--result", "denied"}, []string{"listHosts"}},
		{[]string{"--since", "1h", "--limit", "2"}, []string{"listHosts", "deleteCapture"}},
		{[]string{"--until", "1h"}, nil},
	} {
		if got := actions(list(c.args...)); strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Fatalf("audit list %v: %v, want %v", c.args, got, c.want)
		}
	}
	var err error
	l.cli(&err, "audit", "list", "--result", "maybe")
	if err == nil || !strings.Contains(err.Error(), "result") {
		t.Fatalf("--result maybe: %v", err)
	}
	text, err := l.ctl.Exec(context.Background(), append(l.clientArgs(), "audit", "list", "--action", "agentEnroll")...)
	if err != nil || !strings.Contains(string(text), "PRINCIPAL") || !strings.Contains(string(text), "agent h1 (agent)") || !strings.Contains(string(text), "success 201") {
		t.Fatalf("audit list text: %v\n%s", err, text)
	}

	// One structured log line an event, and no secret in the log.
	logs, err := os.ReadFile(filepath.Join(l.dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.Contains(line, "component=audit") && strings.Contains(line, "msg=audit ") {
			lines++
		}
	}
	if lines != len(all) {
		t.Fatalf("%d audit log lines, %d events", lines, len(all))
	}
	var identity struct{ Credential string }
	if b, err := os.ReadFile(filepath.Join(h.stateDir, "agent.json")); err != nil || json.Unmarshal(b, &identity) != nil || identity.Credential == "" {
		t.Fatalf("the agent's identity: %v", err)
	}
	for _, s := range []string{l.token, bogus, identity.Credential} {
		// The part after the kind's prefix (tc_admin_), which is named on purpose.
		if strings.Contains(string(logs), s[len(tripcap.SecretPrefixAdmin):]) {
			t.Fatalf("a secret (%s…) is in the server's log", s[:9])
		}
	}

	// Stored, not just logged: a restarted server lists them.
	l.stopServer()
	l.startServer()
	if got := actions(list()); len(got) < len(want) || strings.Join(got[len(got)-len(want):], ",") != strings.Join(want, ",") {
		t.Fatalf("after a restart: %v", got)
	}
}
