package responder_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/responder"
)

// seedBody is the 2017 seed's custom JSON naming the capture, and
// storageID and timeLimit when given ("" and 0 leave them out).
func seedBody(h *tripcap.Host, captureName, storageID string, timeLimit int) []byte {
	b := map[string]any{"targetVM": h.ResourceID(), "packetCaptureName": captureName}
	if storageID != "" {
		b["storageID"] = storageID
	}
	if timeLimit != 0 {
		b["timeLimit"] = timeLimit
	}
	out, _ := json.Marshal(b)
	return out
}

// Issue 12: a function key replaced a capture an admin made by naming it
// in the 2017 custom body's packetCaptureName. Now the responder replaces
// only the captures it started: the admin's stays, and the alert's capture
// takes a name of its own; the responder's own capture of that name is
// replaced as before.
func TestFunctionKeyCannotReplaceACaptureItDidNotStart(t *testing.T) {
	f := startResponders(t, newFixture(t, controlplane.Config{}))
	_, h := f.enroll(t, "web1")
	admins, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "evidence-web1", Parameters: tripcap.PacketCaptureParameters{Target: h.Name}})
	if err != nil {
		t.Fatal(err)
	}
	_, key := f.create(t, tripcap.Responder{Name: "pc"})
	if _, err := f.rsp.Invoke(context.Background(), "pc", key, seedBody(h, "evidence", "", 0)); err != nil {
		t.Fatal(err)
	}
	runs := f.settle(t, "pc", 1)
	rh := runs[0].Hosts[0]
	if runs[0].Decision != tripcap.DecisionStarted || !strings.HasPrefix(rh.CaptureName, "evidence-web1-") || !strings.Contains(rh.Reason, "not started by responder pc") {
		b, _ := json.Marshal(runs[0])
		t.Fatalf("run: %s", b)
	}
	if c, err := f.svc.FindCapture(f.admin, "", admins.ID); err != nil || c.DeletedAt != nil || c.Name != "evidence-web1" {
		t.Fatalf("the admin's capture was replaced: %v", err)
	}

	// Its own capture of a name the body gives is the responder's to replace.
	if _, err := f.rsp.Invoke(context.Background(), "pc", key, seedBody(h, "mine", "", 0)); err != nil {
		t.Fatal(err)
	}
	first := f.settle(t, "pc", 2)[0].Hosts[0]
	if first.CaptureName != "mine-web1" {
		t.Fatalf("own capture named %s", first.CaptureName)
	}
	if _, err := f.rsp.Invoke(context.Background(), "pc", key, seedBody(h, "mine", "", 0)); err != nil {
		t.Fatal(err)
	}
	again := f.settle(t, "pc", 3)[0].Hosts[0]
	if again.CaptureName != "mine-web1" || again.CaptureID == first.CaptureID || again.Reason != "" {
		t.Fatalf("own capture not replaced: %+v after %+v", again, first)
	}
	if _, err := f.svc.FindCapture(f.admin, "", first.CaptureID); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Fatalf("the responder's first capture is still there: %v", err)
	}

	// Another responder's capture is not this one's either.
	_, other := f.create(t, tripcap.Responder{Name: "other"})
	if _, err := f.rsp.Invoke(context.Background(), "other", other, seedBody(h, "mine", "", 0)); err != nil {
		t.Fatal(err)
	}
	if got := f.settle(t, "other", 1)[0].Hosts[0]; got.CaptureName == "mine-web1" {
		t.Fatalf("responder other replaced pc's capture: %+v", got)
	}
	if _, err := f.svc.FindCapture(f.admin, "", again.CaptureID); err != nil {
		t.Fatalf("pc's capture: %v", err)
	}
}

// Issue 12: a function key picked any storage account with storageID (and
// any time limit). A body's choice is refused, naming the field, unless the
// responder allows it; nothing is recorded for a refused body.
func TestFunctionKeyBodyChoicesNeedTheResponder(t *testing.T) {
	f := startResponders(t, newFixture(t, controlplane.Config{}))
	_, h := f.enroll(t, "web1")
	_, key := f.create(t, tripcap.Responder{Name: "pc", Capture: tripcap.ResponderCapture{StorageAccount: "local"}})

	_, err := f.rsp.Invoke(context.Background(), "pc", key, seedBody(h, "x", "attacker", 0))
	wantCode(t, err, tripcap.EFORBIDDEN, "storageID")
	_, err = f.rsp.Invoke(context.Background(), "pc", key, seedBody(h, "x", "", 600))
	wantCode(t, err, tripcap.EFORBIDDEN, "timeLimit")
	if runs, _ := f.rsp.FindRuns(f.admin, "pc", 0); len(runs) != 0 {
		t.Fatalf("%d runs recorded for refused bodies", len(runs))
	}
	// The template's own values are no choice.
	if _, err := f.rsp.Invoke(context.Background(), "pc", key, seedBody(h, "x", "local", 30)); err != nil {
		t.Fatal(err)
	}

	// Allowed by the responder: taken, within the bound.
	rs, err := f.rsp.FindResponder(f.admin, "pc")
	if err != nil {
		t.Fatal(err)
	}
	rs.BodyOverrides = &tripcap.BodyOverrides{StorageAccounts: []string{"archive"}, MaxTimeLimitInSeconds: 600}
	if _, err := f.rsp.UpdateResponder(f.admin, "pc", rs, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rsp.Invoke(context.Background(), "pc", key, seedBody(h, "y", "archive", 600)); err != nil {
		t.Fatal(err)
	}
	_, err = f.rsp.Invoke(context.Background(), "pc", key, seedBody(h, "y", "", 601))
	wantCode(t, err, tripcap.EFORBIDDEN, "maxTimeLimitInSeconds 600")
	_, err = f.rsp.Invoke(context.Background(), "pc", key, seedBody(h, "y", "elsewhere", 0))
	wantCode(t, err, tripcap.EFORBIDDEN, "storageID")
}

// Issue 12: a key holder created 15,000 runs in 3.5 s. Runs per key and per
// responder are bounded by token buckets: beyond the burst an invocation is
// refused with ERATELIMIT and a wait, nothing recorded; after the wait it
// passes again. A grouped payload larger than the burst passes whole once.
func TestFunctionKeyRunRate(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	rsp, err := responder.New(deps(f), slog.New(slog.NewTextHandler(io.Discard, nil)), responder.Config{
		KeyRate: 5, KeyBurst: 10, ResponderRate: 8, ResponderBurst: 15,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "pc"}); err != nil {
		t.Fatal(err)
	}
	k1, err := rsp.CreateKey(f.admin, "pc", "one")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := rsp.CreateKey(f.admin, "pc", "two")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	fire := func(key string) error {
		n++
		_, err := rsp.Invoke(context.Background(), "pc", key, amBody("firing", "web1", fmt.Sprint("fp", n), "2026-01-01T00:00:00Z"))
		return err
	}
	accepted := 0
	var limited error
	for range 40 {
		if err := fire(k1.Secret); err == nil {
			accepted++
		} else {
			limited = err
		}
	}
	// 10 at once, and the few the refill allows while the loop runs.
	if accepted < 10 || accepted > 12 {
		t.Fatalf("one key: %d of 40 accepted at once, want its burst of 10", accepted)
	}
	wantCode(t, limited, tripcap.ERATELIMIT, "retry after")
	wait, ok := tripcap.RetryAfter(limited)
	if !ok || wait <= 0 || wait > time.Second {
		t.Fatalf("retry after %s (%v), want up to a token's 200 ms", wait, ok)
	}
	// The responder's bucket holds the keys together: the second key gets
	// what is left of its 15.
	accepted2 := 0
	for range 20 {
		if fire(k2.Secret) == nil {
			accepted2++
		}
	}
	if accepted+accepted2 < 15 || accepted+accepted2 > 17 {
		t.Fatalf("both keys: %d accepted, want the responder's burst of 15", accepted+accepted2)
	}
	runs, err := rsp.FindRuns(f.admin, "pc", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != accepted+accepted2 {
		t.Fatalf("%d runs recorded, %d accepted: refused invocations recorded runs", len(runs), accepted+accepted2)
	}
	time.Sleep(wait + 250*time.Millisecond)
	if err := fire(k1.Secret); err != nil {
		t.Fatalf("after the wait: %v", err)
	}

	// A group of 30 alerts, more than the burst, passes whole once the
	// buckets refill; the debt it leaves refuses the next at once.
	time.Sleep(3 * time.Second)
	var alerts []string
	for i := range 30 {
		alerts = append(alerts, fmt.Sprintf(`{"status":"firing","labels":{"alertname":"A","instance":"web1","i":"%d"},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"g%d"}`, i, i))
	}
	group := []byte(`{"version":"4","status":"firing","alerts":[` + strings.Join(alerts, ",") + `]}`)
	got, err := rsp.Invoke(context.Background(), "pc", k1.Secret, group)
	if err != nil || len(got) != 30 {
		t.Fatalf("a group of 30: %d runs, %v", len(got), err)
	}
	err = fire(k1.Secret)
	wantCode(t, err, tripcap.ERATELIMIT, "retry after")
	if wait, _ := tripcap.RetryAfter(err); wait < 2*time.Second {
		t.Fatalf("after a group of 30 the wait is %s, want the debt's (over 2 s at 5 a second)", wait)
	}
}
