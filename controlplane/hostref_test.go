package controlplane_test

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// TestDottedHostNamesResolveEverywhere: a host enrolled under what
// `hostname -f` gives is found by that name on every path that takes a host.
func TestDottedHostNamesResolveEverywhere(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	_, h := f.enroll(t, "web.example.com")
	f.enroll(t, "db.example.com")

	for _, ref := range []string{"web.example.com", h.ID, h.ResourceID()} {
		got, err := f.svc.FindHost(f.admin, ref)
		if err != nil || got.ID != h.ID {
			t.Fatalf("FindHost(%q) = %v, %v; want host %s", ref, got, err, h.ID)
		}
	}
	c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "x", Parameters: tripcap.PacketCaptureParameters{Target: "web.example.com"}})
	if err != nil {
		t.Fatalf("CreateCapture with target web.example.com: %v", err)
	}
	if c.HostID != h.ID {
		t.Fatalf("capture on host %s, want %s", c.HostID, h.ID)
	}
	caps, _, err := f.svc.FindCaptures(f.admin, "", "web.example.com", "", 0)
	if err != nil || len(caps) != 1 || caps[0].ID != c.ID {
		t.Fatalf("FindCaptures(host web.example.com) = %v, %v; want the one capture", caps, err)
	}
	if _, err := f.svc.FindHost(f.admin, "nope.example.com"); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Fatalf("an unknown dotted name: %v, want ENOTFOUND", err)
	}
	if err := f.svc.DeleteHost(f.admin, "web.example.com"); err != nil {
		t.Fatalf("DeleteHost(web.example.com): %v", err)
	}
	if _, err := f.svc.FindHost(f.admin, "db.example.com"); err != nil {
		t.Fatalf("the other host after deleting web.example.com: %v", err)
	}
}

// TestDotNamesAreRefused: "." and ".." name directories in file paths, not
// hosts or captures.
func TestDotNamesAreRefused(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	for _, name := range []string{".", ".."} {
		jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Enroll(t.Context(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: name, Location: "westeurope"})
		wantCode(t, err, tripcap.EINVALID, "name")
	}
	_, h := f.enroll(t, "web1")
	for _, name := range []string{".", ".."} {
		_, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: name, Parameters: tripcap.PacketCaptureParameters{Target: h.Name}})
		wantCode(t, err, tripcap.EINVALID, "name")
	}
}

// TestOneFilePerLiveCapture: two live captures on one host may not name one
// file (both would write it and both report success); on another host, or
// once the first has ended, the same path is fine here (the agent still
// refuses to overwrite a file that exists).
func TestOneFilePerLiveCapture(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	_, web := f.enroll(t, "web.example.com")
	_, db := f.enroll(t, "db.example.com")
	params := func(h *tripcap.Host) tripcap.PacketCaptureParameters {
		return tripcap.PacketCaptureParameters{Target: h.Name, StorageLocation: tripcap.StorageLocation{LocalPath: "/var/captures/incident.cap"}}
	}
	if _, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "a", Parameters: params(web)}); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "b", Parameters: params(web)})
	wantCode(t, err, tripcap.ECONFLICT, "storageLocation.localPath")
	if _, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "c", Parameters: params(db)}); err != nil {
		t.Fatalf("the same path on another host: %v", err)
	}
}

// TestDeletedCaptureHoldsItsFileUntilItsSessionEnds: re-creating a capture
// with the file of one just deleted is refused (409 naming the field) while
// the old session may still hold the file on the host, and accepted once
// the agent has reported it ended; a deleted capture that never started
// holds nothing.
func TestDeletedCaptureHoldsItsFileUntilItsSessionEnds(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	agent, web := f.enroll(t, "web.example.com")
	for _, c := range []struct {
		field string
		loc   tripcap.StorageLocation
	}{
		{"storageLocation.localPath", tripcap.StorageLocation{LocalPath: "/var/captures/incident.cap"}},
		{"storageLocation.filePath", tripcap.StorageLocation{FilePath: "/var/captures/other.cap"}},
	} {
		req := controlplane.CreateCaptureRequest{Name: "pc1", Parameters: tripcap.PacketCaptureParameters{Target: web.Name, StorageLocation: c.loc}}
		old, err := f.svc.CreateCapture(f.admin, req)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		if _, err := f.svc.Report(agent, []tripcap.SessionReport{{CaptureID: old.ID, Status: tripcap.StatusRunning, StartTime: &now}}); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.DeleteCapture(f.admin, "", "pc1", "", false); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.CreateCapture(f.admin, req)
		wantCode(t, err, tripcap.ECONFLICT, c.field)
		if _, err := f.svc.Report(agent, []tripcap.SessionReport{{CaptureID: old.ID, Status: tripcap.StatusStopped, StopReason: tripcap.StopSessionDeleted}}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.CreateCapture(f.admin, req); err != nil {
			t.Fatalf("%s: once the deleted session ended: %v", c.field, err)
		}
		// Deleted before its agent started it: nothing holds the file.
		if err := f.svc.DeleteCapture(f.admin, "", "pc1", "", false); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.CreateCapture(f.admin, req); err != nil {
			t.Fatalf("%s: after deleting a capture never started: %v", c.field, err)
		}
		if err := f.svc.DeleteCapture(f.admin, "", "pc1", "", false); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCaptureNamesAnyCase: the native API finds a capture by its name in
// any case and refuses a second live capture whose name differs only in
// case, as ARM does; the name keeps the case it was given.
func TestCaptureNamesAnyCase(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	_, web := f.enroll(t, "web.example.com")
	c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "pc1", Parameters: tripcap.PacketCaptureParameters{Target: web.Name}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "PC1", Parameters: tripcap.PacketCaptureParameters{Target: web.Name}})
	wantCode(t, err, tripcap.ECONFLICT, "regardless of case")
	got, err := f.svc.FindCapture(f.admin, "", "PC1")
	if err != nil || got.ID != c.ID || got.Name != "pc1" {
		t.Fatalf("capture PC1: %+v %v; want %s named pc1", got, err, c.ID)
	}
	if _, err := f.svc.StopCapture(f.admin, "", "Pc1", ""); err != nil {
		t.Fatalf("stop Pc1: %v", err)
	}
}
