package e2e

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// Issue 12: enrolling with the name of an enrolled host took it over (the
// real agent revoked, its captures handed to the caller) and the server
// logged only "host enrolled". With the real binaries on netns hosts: a
// second agent under the name waits, says why and what to do; the server
// logs it loudly; `tripcap host pending` lists it and `tripcap host
// approve` lets it in at its next try (`tripcap host pending delete`
// refuses a request). A token bound to another host is
// refused at once with what to do; one bound to the host re-enrolls it.
// labNet holds the netns hosts' addresses.
var labNet = &net.IPNet{IP: net.IPv4(198, 18, 0, 0), Mask: net.CIDRMask(15, 32)}

func TestEnrollmentTakeoverNeedsApproval(t *testing.T) {
	l := newLab(t)
	real := l.addHost("hostb")

	intruder := l.newHost("intruder")
	l.startAgent(intruder, "--join-token", l.joinToken(), "--name", "hostb")
	logOf := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(l.dir, name+".log"))
		return string(b)
	}
	var pending []*tripcap.PendingEnrollment
	l.eventually("the enrollment to wait for approval", 20*time.Second, func() bool {
		return l.cliJSON(&pending, "host", "pending") == nil && len(pending) == 1
	})
	if p := pending[0]; p.HostName != "hostb" || p.ApprovedAt != nil || !labNet.Contains(net.ParseIP(p.Remote)) {
		t.Fatalf("pending enrollment: %+v", p)
	}
	l.eventually("the agent to say it awaits approval", 10*time.Second, func() bool {
		return strings.Contains(logOf("agent-intruder"), "awaits an admin") && strings.Contains(logOf("agent-intruder"), "tripcap host approve hostb")
	})
	server := logOf("server")
	if !strings.Contains(server, "level=WARN") || !strings.Contains(server, "host=hostb") || !strings.Contains(server, "remote="+pending[0].Remote) {
		t.Fatalf("the refused takeover is not in the server's log with host and address:\n%s", server)
	}
	var h tripcap.Host
	if err := l.cliJSON(&h, "host", "show", "hostb"); err != nil || h.State != tripcap.HostOnline {
		t.Fatalf("the real host after the refused takeover: %+v %v", h, err)
	}
	if _, err := os.Stat(filepath.Join(intruder.stateDir, "agent.json")); err == nil {
		t.Fatal("the waiting agent holds a credential")
	}

	// Bound to another host: refused at once, saying what to do.
	var bound tripcap.JoinToken
	if err := json.Unmarshal(l.cli(nil, "host", "join-token", "create", "--host", "hostb"), &bound); err != nil || bound.HostName != "hostb" {
		t.Fatalf("bound token: %+v %v", bound, err)
	}
	other := l.newHost("other")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := other.ns.Command(ctx, binary, "agent", "--server", other.server, "--join-token", bound.Token, "--name", "other",
		"--state-dir", other.stateDir, "--capture-dir", other.capDir, "--metrics-listen", "").CombinedOutput()
	if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "bound to host hostb") || !strings.Contains(string(out), "join-token create --host other") {
		t.Fatalf("agent with a token bound to another host: %v (ctx %v): %s", err, ctx.Err(), out)
	}

	// Refused by an admin: forgotten; the agent's next try asks anew, with
	// a new ticket, which it presents from then on (one request, not one a try).
	refused := pending[0].ID
	l.cli(nil, "host", "pending", "delete", refused)
	l.eventually("the agent to ask anew", 30*time.Second, func() bool {
		return l.cliJSON(&pending, "host", "pending") == nil && len(pending) == 1 && pending[0].ID != refused
	})
	time.Sleep(2 * time.Second)
	if err := l.cliJSON(&pending, "host", "pending"); err != nil || len(pending) != 1 {
		t.Fatalf("pending while the agent retries with its ticket: %+v %v", pending, err)
	}

	// Approved: the waiting agent enrolls at its next try, as hostb.
	l.cli(nil, "host", "approve", "hostb")
	l.eventually("the approved agent to enroll", 30*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(intruder.stateDir, "agent.json"))
		return err == nil
	})
	if err := l.cliJSON(&pending, "host", "pending"); err != nil || len(pending) != 0 {
		t.Fatalf("pending after the approved enrollment: %+v %v", pending, err)
	}
	if !strings.Contains(logOf("server"), "approvedBy=") {
		t.Fatal("the approved takeover is not logged with its approver")
	}

	// The real host's agent, its state lost, re-enrolls with the bound token.
	l.stopAgent(real, syscall.SIGTERM)
	l.stopAgent(intruder, syscall.SIGTERM)
	if err := os.RemoveAll(real.stateDir); err != nil {
		t.Fatal(err)
	}
	l.startAgent(real, "--join-token", bound.Token)
	l.eventually("hostb re-enrolled by its own agent", 20*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(real.stateDir, "agent.json"))
		return err == nil
	})
	if err := l.cliJSON(&h, "host", "show", "hostb"); err != nil {
		t.Fatal(err)
	}
}
