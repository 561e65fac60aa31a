package controlplane_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/sqlite"
)

// syncBuffer is a log sink written by the service's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// loggedFixture is newFixture with the service's log kept.
func loggedFixture(t *testing.T) (*fixture, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	store, err := sqlite.Open(ctx, t.TempDir()+"/tripcap.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	logs := &syncBuffer{}
	svc := controlplane.New(store, controlplane.Config{}, slog.New(slog.NewTextHandler(io.MultiWriter(logs), nil)))
	admin := tripcap.NewContextWithPrincipal(ctx, &tripcap.Principal{Kind: tripcap.PrincipalUser, Name: "alice", Assignments: tripcap.OwnerEverywhere()})
	return &fixture{svc: svc, store: store, admin: admin}, logs
}

// Issue 12: any join token took over an existing host: enrolling as hostB
// revoked the real agent's credential and handed its captures to the
// caller, and the log said only "host enrolled". Now the enrollment is
// refused, recorded as pending and logged loudly; the host's agent keeps
// working and the token is not used up. Once an admin approves, the
// caller's next try (same token, same address) enrolls; from another
// address it does not.
func TestEnrollUnderAnEnrolledNameNeedsApproval(t *testing.T) {
	f, logs := loggedFixture(t)
	real, hostB := enrollSecret(t, f, "hostB")
	p0, err := f.svc.Authenticate(context.Background(), real)
	if err != nil {
		t.Fatal(err)
	}
	agentCtx := tripcap.NewContextWithPrincipal(context.Background(), p0)
	jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	logs.reset()
	req := tripcap.EnrollRequest{JoinToken: jt.Token, Name: "hostB", Remote: "198.18.0.66", Inventory: tripcap.Inventory{Hostname: "intruder"}}
	_, err = f.svc.Enroll(context.Background(), req)
	wantCode(t, err, tripcap.ECONFLICT, "tripcap host approve hostB")
	wantCode(t, err, tripcap.ECONFLICT, "join-token create --host hostB")
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "host=hostB") ||
		!strings.Contains(logs.String(), "token="+jt.ID) || !strings.Contains(logs.String(), "remote=198.18.0.66") {
		t.Fatalf("the refused takeover is not logged loudly with host, token and remote:\n%s", logs.String())
	}
	// Tried again while pending: the same refusal, one pending record.
	_, err = f.svc.Enroll(context.Background(), req)
	wantCode(t, err, tripcap.ECONFLICT, "approval")

	if _, err := f.svc.Authenticate(context.Background(), real); err != nil {
		t.Fatalf("the real agent was revoked: %v", err)
	}
	toks, err := f.svc.FindJoinTokens(f.admin)
	if err != nil || len(toks) != 1 || toks[0].UsesLeft != 1 {
		t.Fatalf("the token was used up by a refused enrollment: %+v %v", toks, err)
	}
	pending, err := f.svc.FindPendingEnrollments(f.admin)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending: %+v %v", pending, err)
	}
	p := pending[0]
	if p.HostName != "hostB" || p.Remote != "198.18.0.66" || p.Hostname != "intruder" || p.JoinTokenID != jt.ID || p.ApprovedAt != nil {
		t.Fatalf("pending enrollment: %+v", p)
	}
	_, err = f.svc.FindPendingEnrollments(context.Background())
	wantCode(t, err, tripcap.EUNAUTHORIZED, "credential")
	_, err = f.svc.ApproveEnrollment(agentCtx, "hostB", "")
	wantCode(t, err, tripcap.EFORBIDDEN, "hosts/write")
	_, err = f.svc.ApproveEnrollment(f.admin, "nosuch", "")
	wantCode(t, err, tripcap.ENOTFOUND, "nosuch")

	approved, err := f.svc.ApproveEnrollment(f.admin, "hostB", "")
	if err != nil {
		t.Fatal(err)
	}
	if approved.ApprovedAt == nil || approved.ApprovedBy != "alice" {
		t.Fatalf("approval: %+v", approved)
	}
	// From another address the approval does not count.
	other := req
	other.Remote = "198.18.0.67"
	_, err = f.svc.Enroll(context.Background(), other)
	wantCode(t, err, tripcap.ECONFLICT, "approval")
	_, err = f.svc.ApproveEnrollment(f.admin, "hostB", "")
	wantCode(t, err, tripcap.EINVALID, "give the id")

	resp, err := f.svc.Enroll(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Host.ID != hostB.ID {
		t.Fatalf("approved re-enrollment made a new host %s, want %s", resp.Host.ID, hostB.ID)
	}
	if _, err := f.svc.Authenticate(context.Background(), real); err == nil {
		t.Fatal("the old agent's credential still works after the approved re-enrollment")
	}
	if !strings.Contains(logs.String(), "approvedBy=alice") {
		t.Fatalf("the approved takeover is not logged with its approver:\n%s", logs.String())
	}
	left, err := f.svc.FindPendingEnrollments(f.admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		if e.ID == approved.ID {
			t.Fatal("the used approval is still pending")
		}
	}
}

// A join token bound to a host enrolls that name only: it re-enrolls the
// host with no approval (an agent that lost its state), and refuses any
// other name, logged. An unbound token enrolls a new name as before.
func TestHostBoundJoinToken(t *testing.T) {
	f, logs := loggedFixture(t)
	_, web1 := enrollSecret(t, f, "web1")
	bound, err := f.svc.CreateHostJoinToken(f.admin, "web1", time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	if bound.HostName != "web1" {
		t.Fatalf("token bound to %q, want web1", bound.HostName)
	}
	_, err = f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: bound.Token, Name: "web2", Remote: "198.18.0.5"})
	wantCode(t, err, tripcap.EFORBIDDEN, "bound to host web1")
	if !strings.Contains(logs.String(), "bound to another host") || !strings.Contains(logs.String(), "token="+bound.ID) {
		t.Fatalf("refusal not logged:\n%s", logs.String())
	}
	resp, err := f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: bound.Token, Name: "web1", Remote: "198.18.0.5"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Host.ID != web1.ID {
		t.Fatalf("re-enrolled as a new host")
	}
	// The refusal above spent nothing; the one use did.
	toks, err := f.store.FindJoinTokens(f.admin, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks {
		if tk.ID == bound.ID {
			t.Fatalf("bound token usable after its one use: %+v", tk)
		}
	}
	_, err = f.svc.CreateHostJoinToken(f.admin, "bad name/x", time.Hour, 1)
	wantCode(t, err, tripcap.EINVALID, "host")
	// A name that differs in case only is taken: refused, not waited for.
	other, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: other.Token, Name: "WEB1"})
	wantCode(t, err, tripcap.EINVALID, "enrolled already")
	// A token bound to a name not enrolled yet enrolls it.
	fresh, err := f.svc.CreateHostJoinToken(f.admin, "db1", time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: fresh.Token, Name: "db1"}); err != nil {
		t.Fatal(err)
	}
}

// enrollSecret enrolls a host and returns its agent's credential secret.
func enrollSecret(t *testing.T, f *fixture, name string) (string, *tripcap.Host) {
	t.Helper()
	jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: name, Remote: "198.18.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Credential, resp.Host
}

// Asking from many addresses records a few requests, not one an address:
// the rest are refused the same way.
func TestPendingEnrollmentsPerHostAreBounded(t *testing.T) {
	f, _ := loggedFixture(t)
	enrollSecret(t, f, "web1")
	jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		_, err := f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1", Remote: fmt.Sprintf("fd00::%x", i+1)})
		wantCode(t, err, tripcap.ECONFLICT, "approval")
	}
	pending, err := f.svc.FindPendingEnrollments(f.admin)
	if err != nil || len(pending) != 10 {
		t.Fatalf("%d pending (%v), want the bound of 10", len(pending), err)
	}
}

// A token bound to a host may revoke that host's live agent, so it is for
// one enrollment within a day: more uses or a longer life are refused,
// naming the field; an unbound token keeps its wider limits.
func TestHostBoundJoinTokenLimits(t *testing.T) {
	f, _ := loggedFixture(t)
	_, err := f.svc.CreateHostJoinToken(f.admin, "web1", time.Hour, 2)
	wantCode(t, err, tripcap.EINVALID, "uses: a token bound to host web1 is for one use, not 2")
	_, err = f.svc.CreateHostJoinToken(f.admin, "web1", time.Hour, 100000)
	wantCode(t, err, tripcap.EINVALID, "uses:")
	_, err = f.svc.CreateHostJoinToken(f.admin, "web1", 25*time.Hour, 1)
	wantCode(t, err, tripcap.EINVALID, "ttl: a token bound to host web1 lives at most 24h0m0s")
	_, err = f.svc.CreateHostJoinToken(f.admin, "web1", 365*24*time.Hour, 0)
	wantCode(t, err, tripcap.EINVALID, "ttl:")
	for _, c := range []struct {
		ttl  time.Duration
		uses int
	}{{0, 0}, {24 * time.Hour, 1}, {time.Minute, 0}} {
		jt, err := f.svc.CreateHostJoinToken(f.admin, "web1", c.ttl, c.uses)
		if err != nil || jt.UsesLeft != 1 || time.Until(jt.ExpiresAt) > 24*time.Hour {
			t.Fatalf("ttl %s, uses %d: %+v, %v", c.ttl, c.uses, jt, err)
		}
	}
	if _, err := f.svc.CreateJoinToken(f.admin, 30*24*time.Hour, 50); err != nil {
		t.Fatalf("an unbound token: %v", err)
	}
}

// A host may not be enrolled under a name that is an IP address or has an
// id's form: alerts name hosts by both (TestValidateHostNameRefusesAddressesAndIDs).
func TestEnrollRefusesAddressAndIDNames(t *testing.T) {
	f, _ := loggedFixture(t)
	for _, name := range []string{"10.0.0.5", "198.18.0.9", tripcap.NewID()} {
		jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: name, Remote: "198.18.0.5"})
		wantCode(t, err, tripcap.EINVALID, "name: ")
		_, err = f.svc.CreateHostJoinToken(f.admin, name, time.Hour, 1)
		wantCode(t, err, tripcap.EINVALID, "host: ")
	}
}
