package http_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

// Issue 12, through the API: a function key's 2017 custom body may not
// choose the storage account (403 naming storageID), and a key that sends
// too many runs gets 429 with Retry-After.
func TestFunctionKeyLimitsOverHTTP(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.admin.CreateResponder(ctx, &tripcap.Responder{Name: "pc"}); err != nil {
		t.Fatal(err)
	}
	key, err := f.admin.CreateResponderKey(ctx, "pc", "")
	if err != nil {
		t.Fatal(err)
	}
	path := "/api/functions/pc?code=" + key.Secret
	r := f.request(t, "POST", path, "", strings.NewReader(`{"targetVM":"`+f.host.ResourceID()+`","packetCaptureName":"x","storageID":"elsewhere"}`))
	if e := errorBody(t, r); r.StatusCode != http.StatusForbidden || !strings.Contains(e.Message, "storageID") {
		t.Fatalf("storageID chosen by a body: %d %+v", r.StatusCode, e)
	}

	var limited *http.Response
	accepted := 0
	for i := range 60 {
		r := f.request(t, "POST", path, "", strings.NewReader(alertmanagerBody("web1:9100", fmt.Sprint("fp", i))))
		if r.StatusCode == http.StatusAccepted {
			accepted++
			continue
		}
		limited = r
		break
	}
	if limited == nil {
		t.Fatalf("60 invocations in a row all accepted")
	}
	if limited.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("over the rate: %d %+v", limited.StatusCode, errorBody(t, limited))
	}
	if s, err := strconv.Atoi(limited.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", limited.Header.Get("Retry-After"))
	}
	if e := errorBody(t, limited); e.Code != tripcap.ERATELIMIT || !strings.Contains(e.Message, "retry after") {
		t.Fatalf("429 body %+v", e)
	}
	if accepted < 20 {
		t.Fatalf("only %d accepted before the limit, want the burst of %d", accepted, 20)
	}
}

// Issue 12, through the API: enrolling under an enrolled host's name is
// refused (409 saying how to approve, with a ticket in its
// Tripcap-Enrollment-Ticket header), listed as pending, approved by an
// admin, and then enrolls when the ticket comes back, not without it; an
// admin deletes a pending request; a join token bound to another host is
// refused.
func TestEnrollmentTakeoverOverHTTP(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	anon, err := tchttp.NewClient(f.url, "")
	if err != nil {
		t.Fatal(err)
	}
	jt, err := f.admin.CreateJoinToken(ctx, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = anon.Enroll(ctx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1"})
	var held *tripcap.EnrollmentHeldError
	if tripcap.ErrorCode(err) != tripcap.ECONFLICT || !strings.Contains(tripcap.ErrorMessage(err), "tripcap host approve web1") || !errors.As(err, &held) || held.Ticket == "" {
		t.Fatalf("takeover of web1: %v", err)
	}
	// The real agent still works.
	if _, err := f.agent.Heartbeat(ctx, tripcap.Heartbeat{}); err != nil {
		t.Fatalf("the real agent after a refused takeover: %v", err)
	}
	pending, err := f.admin.ListPendingEnrollments(ctx)
	if err != nil || len(pending) != 1 || pending[0].HostName != "web1" || pending[0].Remote != "127.0.0.1" {
		t.Fatalf("pending: %+v %v", pending, err)
	}
	if _, err := f.agent.ApproveEnrollment(ctx, "web1", ""); tripcap.ErrorCode(err) != tripcap.EFORBIDDEN {
		t.Fatalf("an agent approved an enrollment: %v", err)
	}
	p, err := f.admin.ApproveEnrollment(ctx, "web1", pending[0].ID)
	if err != nil || p.ApprovedAt == nil {
		t.Fatalf("approve: %+v %v", p, err)
	}
	// Without the ticket (another caller with the same token and address)
	// the approval is not its: held again, under another ticket.
	_, err = anon.Enroll(ctx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1"})
	var other *tripcap.EnrollmentHeldError
	if !errors.As(err, &other) || other.Ticket == held.Ticket {
		t.Fatalf("enrollment without the ticket: %v", err)
	}
	all, err := f.admin.ListPendingEnrollments(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("pending: %+v %v", all, err)
	}
	for _, e := range all {
		if e.ID != p.ID {
			if err := f.agent.DeletePendingEnrollment(ctx, e.ID); tripcap.ErrorCode(err) != tripcap.EFORBIDDEN {
				t.Fatalf("an agent deleted a pending enrollment: %v", err)
			}
			if err := f.admin.DeletePendingEnrollment(ctx, e.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.admin.DeletePendingEnrollment(ctx, tripcap.NewID()); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Fatalf("delete of an unknown pending enrollment: %v", err)
	}
	resp, err := anon.Enroll(ctx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1", Ticket: held.Ticket})
	if err != nil || resp.Host.ID != f.host.ID {
		t.Fatalf("approved enrollment: %+v %v", resp, err)
	}
	if _, err := f.agent.Heartbeat(ctx, tripcap.Heartbeat{}); tripcap.ErrorCode(err) != tripcap.EUNAUTHORIZED {
		t.Fatalf("the replaced agent's credential: %v", err)
	}

	bound, err := f.admin.CreateHostJoinToken(ctx, "web1", time.Hour, 1)
	if err != nil || bound.HostName != "web1" {
		t.Fatalf("bound token: %+v %v", bound, err)
	}
	_, err = anon.Enroll(ctx, tripcap.EnrollRequest{JoinToken: bound.Token, Name: "web9"})
	if tripcap.ErrorCode(err) != tripcap.EFORBIDDEN || !strings.Contains(tripcap.ErrorMessage(err), "bound to host web1") {
		t.Fatalf("bound token for another name: %v", err)
	}
}

// Issue 12, through the API: a PUT over the capture's limit is refused and
// nothing is stored; a second file of a one-file capture too.
func TestUploadLimitsOverHTTP(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, err := f.admin.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: "small", Parameters: tripcap.PacketCaptureParameters{Target: "web1", TotalBytesPerSession: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{0}, 3<<20)
	_, err = f.agent.Upload(ctx, c.ID, "small.cap", "", bytes.NewReader(big), int64(len(big)))
	if tripcap.ErrorCode(err) != tripcap.ELIMIT || !strings.Contains(tripcap.ErrorMessage(err), "totalBytesPerSession") {
		t.Fatalf("3 MiB to a 1 MiB capture: %v", err)
	}
	got, err := f.admin.GetCapture(ctx, "", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range got.Files {
		if file.Stored {
			t.Fatalf("stored over the limit: %+v", file)
		}
	}
	if _, err := f.agent.Upload(ctx, c.ID, "small.cap", "", bytes.NewReader(big[:1<<20]), 1<<20); err != nil {
		t.Fatal(err)
	}
	_, err = f.agent.Upload(ctx, c.ID, "again.cap", "", strings.NewReader("x"), 1)
	if tripcap.ErrorCode(err) != tripcap.ELIMIT {
		t.Fatalf("a second file: %v", err)
	}
}
