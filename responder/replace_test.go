package responder_test

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// With the seed's nameConflict replace and one watcher for the location,
// an alert on one host does not remove another host's capture: each host
// has its own capture of the template's name, and replace replaces only
// that one. Both files stay reachable, by the capture the notice names.
func TestResponderReplaceKeepsOtherHostsCaptures(t *testing.T) {
	f := startResponders(t, newFixture(t, controlplane.Config{}))
	ctxA, a := f.enroll(t, "web1")
	ctxB, b := f.enroll(t, "web2.example.com")
	if a.Location != b.Location {
		t.Fatalf("hosts in %s and %s, want one location", a.Location, b.Location)
	}
	_, key := f.create(t, tripcap.Responder{Name: "pc"})
	if rs, _ := f.rsp.FindResponder(f.admin, "pc"); rs.NameConflict != tripcap.ConflictReplace || rs.Capture.Name != "PSAzureFunction" {
		t.Fatalf("not the seed's defaults: %+v", rs)
	}
	fire := func(host, fp string, n int, at string) *tripcap.ResponderRunHost {
		t.Helper()
		if _, err := f.rsp.Invoke(context.Background(), "pc", key, amBody("firing", host, fp, at)); err != nil {
			t.Fatal(err)
		}
		runs := f.settle(t, "pc", n)
		if runs[0].Decision != tripcap.DecisionStarted {
			b, _ := json.Marshal(runs[0])
			t.Fatalf("alert on %s: %s", host, b)
		}
		return &runs[0].Hosts[0]
	}
	onA := fire("web1", "a", 1, "2026-01-01T00:00:00Z")
	complete(t, f.fixture, ctxA, onA.CaptureID, 3)
	onB := fire("web2.example.com", "b", 2, "2026-01-01T00:01:00Z")
	complete(t, f.fixture, ctxB, onB.CaptureID, 5)

	reachable := func(rh *tripcap.ResponderRunHost, host *tripcap.Host) {
		t.Helper()
		c, err := f.svc.FindCapture(f.admin, "", rh.CaptureID)
		if err != nil {
			t.Fatalf("capture %s of %s: %v", rh.CaptureName, host.Name, err)
		}
		if c.HostID != host.ID || !strings.HasPrefix(c.Name, "PSAzureFunction") || c.Name != rh.CaptureName {
			t.Fatalf("capture of %s: %s on %s", host.Name, c.Name, c.HostID)
		}
		rd, _, err := f.svc.OpenFile(f.admin, "", rh.CaptureID, "")
		if err != nil {
			t.Fatalf("file of %s's capture %s: %v", host.Name, c.Name, err)
		}
		defer rd.Close()
		if b, err := io.ReadAll(rd); err != nil || len(b) == 0 {
			t.Fatalf("file of %s: %d bytes, %v", host.Name, len(b), err)
		}
	}
	reachable(onA, a)
	reachable(onB, b)
	if onA.CaptureName == onB.CaptureName {
		t.Fatalf("both hosts' captures are named %s", onA.CaptureName)
	}

	// A later alert on A replaces A's capture, and only A's.
	again := fire("web1", "a2", 3, "2026-01-01T00:02:00Z")
	if again.CaptureName != onA.CaptureName {
		t.Fatalf("A's capture is now named %s, was %s", again.CaptureName, onA.CaptureName)
	}
	if _, err := f.svc.FindCapture(f.admin, "", onA.CaptureID); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Fatalf("A's first capture was not replaced: %v", err)
	}
	reachable(onB, b)
	if names := captureNames(t, f.fixture); len(names) != 2 {
		t.Fatalf("captures %v, want one per host", names)
	}

	// A capture of A's made by hand under B's name is not B's to replace:
	// B's alert takes a unique name instead.
	if err := f.svc.DeleteCapture(f.admin, "", onB.CaptureID, "", false); err != nil {
		t.Fatal(err)
	}
	byHand, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: onB.CaptureName, Parameters: tripcap.PacketCaptureParameters{Target: a.Name}})
	if err != nil {
		t.Fatal(err)
	}
	onB2 := fire("web2.example.com", "b2", 4, "2026-01-01T00:03:00Z")
	if !strings.HasPrefix(onB2.CaptureName, onB.CaptureName+"-") {
		t.Fatalf("B's capture named %s beside A's %s", onB2.CaptureName, byHand.Name)
	}
	if c, err := f.svc.FindCapture(f.admin, "", byHand.ID); err != nil || c.HostID != a.ID {
		t.Fatalf("A's capture under B's name was replaced: %v", err)
	}
}
