package controlplane_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap/internal/logtest"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/sqlite"
)

// loggedFixture is newFixture with the service's log kept.
func loggedFixture(t *testing.T) (*fixture, *logtest.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	store, err := sqlite.Open(ctx, t.TempDir()+"/tripcap.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	logs := &logtest.Buffer{}
	svc := controlplane.New(store, controlplane.Config{}, slog.New(slog.NewTextHandler(io.MultiWriter(logs), nil)))
	admin := tripcap.NewContextWithPrincipal(ctx, &tripcap.Principal{Kind: tripcap.PrincipalUser, Name: "alice", Assignments: tripcap.OwnerEverywhere()})
	return &fixture{svc: svc, store: store, admin: admin}, logs
}

// Issue 12: any join token took over an existing host: enrolling as hostB
// revoked the real agent's credential and handed its captures to the
// caller, and the log said only "host enrolled". Now the enrollment is
// refused, recorded as pending and logged loudly; the host's agent keeps
// working and the token is not used up. Once an admin approves, the
// caller's next try (same token, same address, the ticket it was given)
// enrolls; from another address it does not.
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
	logs.Reset()
	req := tripcap.EnrollRequest{JoinToken: jt.Token, Name: "hostB", Remote: "198.18.0.66", Inventory: tripcap.Inventory{Hostname: "intruder"}}
	_, err = f.svc.Enroll(context.Background(), req)
	wantCode(t, err, tripcap.ECONFLICT, "tripcap host approve hostB")
	wantCode(t, err, tripcap.ECONFLICT, "join-token create --host hostB")
	req.Ticket = heldTicket(t, err)
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "host=hostB") ||
		!strings.Contains(logs.String(), "token="+jt.ID) || !strings.Contains(logs.String(), "remote=198.18.0.66") {
		t.Fatalf("the refused takeover is not logged loudly with host, token and remote:\n%s", logs.String())
	}
	// Tried again while pending: the same refusal and ticket, one pending record.
	_, err = f.svc.Enroll(context.Background(), req)
	wantCode(t, err, tripcap.ECONFLICT, "approval")
	if got := heldTicket(t, err); got != req.Ticket {
		t.Fatalf("a retry with its ticket was given another: %q, want %q", got, req.Ticket)
	}
	if strings.Contains(logs.String(), req.Ticket) {
		t.Fatalf("the log holds the ticket:\n%s", logs.String())
	}

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
	if p.HostName != "hostB" || p.Remote != "198.18.0.66" || p.Hostname != "intruder" || p.JoinTokenID != jt.ID || p.ApprovedAt != nil || p.TicketHash != tripcap.HashSecret(req.Ticket) {
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
	// Nor without the ticket.
	noTicket := req
	noTicket.Ticket = ""
	_, err = f.svc.Enroll(context.Background(), noTicket)
	wantCode(t, err, tripcap.ECONFLICT, "approval")

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

// heldTicket is the ticket an enrollment put on hold was given.
func heldTicket(t *testing.T, err error) string {
	t.Helper()
	var held *tripcap.EnrollmentHeldError
	if !errors.As(err, &held) || !strings.HasPrefix(held.Ticket, tripcap.SecretPrefixEnrollment) {
		t.Fatalf("an enrollment on hold came without a ticket: %v", err)
	}
	return held.Ticket
}

// Security review of issue 12: an approval went to anyone with the same
// join token and address, so one who shared both (a NAT, a shared token)
// could ask at the same time as the real agent and take the host once an
// admin approved. Now it goes to the holder of the request's ticket only.
func TestEnrollmentApprovalGoesToTheTicketHolder(t *testing.T) {
	f, _ := loggedFixture(t)
	real, hostB := enrollSecret(t, f, "hostB")
	jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 2)
	if err != nil {
		t.Fatal(err)
	}
	mine := tripcap.EnrollRequest{JoinToken: jt.Token, Name: "hostB", Remote: "198.18.0.66"}
	_, err = f.svc.Enroll(context.Background(), mine)
	mine.Ticket = heldTicket(t, err)
	pending, err := f.svc.FindPendingEnrollments(f.admin)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending: %+v %v", pending, err)
	}
	if _, err := f.svc.ApproveEnrollment(f.admin, "hostB", pending[0].ID); err != nil {
		t.Fatal(err)
	}
	// The other, with the same token and address: no ticket, or its own.
	theirs := tripcap.EnrollRequest{JoinToken: jt.Token, Name: "hostB", Remote: "198.18.0.66"}
	_, err = f.svc.Enroll(context.Background(), theirs)
	wantCode(t, err, tripcap.ECONFLICT, "approval")
	theirs.Ticket = heldTicket(t, err)
	if theirs.Ticket == mine.Ticket {
		t.Fatal("two requests were given the same ticket")
	}
	for _, tk := range []string{theirs.Ticket, "tc_enroll_GUESSED", pending[0].TicketHash} {
		theirs.Ticket = tk
		_, err = f.svc.Enroll(context.Background(), theirs)
		wantCode(t, err, tripcap.ECONFLICT, "approval")
	}
	if _, err := f.svc.Authenticate(context.Background(), real); err != nil {
		t.Fatalf("the real agent was revoked: %v", err)
	}
	resp, err := f.svc.Enroll(context.Background(), mine)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Host.ID != hostB.ID {
		t.Fatalf("enrolled as %s, want %s", resp.Host.ID, hostB.ID)
	}
}

// Security review of issue 12: ten requests from ten addresses filled the
// queue of a host's name, and the real agent's request was then refused
// unrecorded, so no admin could approve it. Now the oldest waiting request
// makes room, and one token and address keep at most a few.
func TestPendingQueueCannotBlockTheRealReenrollment(t *testing.T) {
	f, _ := loggedFixture(t)
	_, web1 := enrollSecret(t, f, "web1")
	jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		_, err := f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1", Remote: fmt.Sprintf("fd00::%x", i+1)})
		wantCode(t, err, tripcap.ECONFLICT, "approval")
	}
	real := tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1", Remote: "198.18.0.7", Inventory: tripcap.Inventory{Hostname: "web1-reinstalled"}}
	_, err = f.svc.Enroll(context.Background(), real)
	real.Ticket = heldTicket(t, err)
	pending, err := f.svc.FindPendingEnrollments(f.admin)
	if err != nil || len(pending) != 10 {
		t.Fatalf("%d pending (%v), want the bound of 10", len(pending), err)
	}
	var id string
	for _, p := range pending {
		if p.Remote == real.Remote {
			id = p.ID
		}
		if p.Remote == "fd00::1" {
			t.Fatalf("the oldest request was kept: %+v", p)
		}
	}
	if id == "" {
		t.Fatalf("the real agent's request is not recorded: %+v", pending)
	}
	if _, err := f.svc.ApproveEnrollment(f.admin, "web1", id); err != nil {
		t.Fatal(err)
	}
	// Asking again and again from one address keeps a few requests.
	for range 5 {
		_, err := f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1", Remote: "fd00::99"})
		wantCode(t, err, tripcap.ECONFLICT, "approval")
	}
	pending, err = f.svc.FindPendingEnrollments(f.admin)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range pending {
		if p.Remote == "fd00::99" {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d requests from one token and address, want 3", n)
	}
	if resp, err := f.svc.Enroll(context.Background(), real); err != nil || resp.Host.ID != web1.ID {
		t.Fatalf("approved re-enrollment: %+v %v", resp, err)
	}
}

// An Owner refuses a pending enrollment by deleting it; others may not.
func TestDeletePendingEnrollment(t *testing.T) {
	f, logs := loggedFixture(t)
	real, _ := enrollSecret(t, f, "web1")
	p0, err := f.svc.Authenticate(context.Background(), real)
	if err != nil {
		t.Fatal(err)
	}
	agentCtx := tripcap.NewContextWithPrincipal(context.Background(), p0)
	jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1", Remote: "198.18.0.9"})
	wantCode(t, err, tripcap.ECONFLICT, "approval")
	pending, err := f.svc.FindPendingEnrollments(f.admin)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending: %+v %v", pending, err)
	}
	wantCode(t, f.svc.DeletePendingEnrollment(agentCtx, pending[0].ID), tripcap.EFORBIDDEN, "hosts/write")
	wantCode(t, f.svc.DeletePendingEnrollment(context.Background(), pending[0].ID), tripcap.EUNAUTHORIZED, "credential")
	if err := f.svc.DeletePendingEnrollment(f.admin, pending[0].ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.svc.DeletePendingEnrollment(f.admin, pending[0].ID), tripcap.ENOTFOUND, "not found")
	if left, err := f.svc.FindPendingEnrollments(f.admin); err != nil || len(left) != 0 {
		t.Fatalf("left after delete: %+v %v", left, err)
	}
	if !strings.Contains(logs.String(), "pending enrollment deleted") || !strings.Contains(logs.String(), "by=alice") {
		t.Fatalf("the refusal is not logged with who gave it:\n%s", logs.String())
	}
}

// Asking from many addresses keeps a few requests, not one an address:
// the newest, the oldest making room.
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
