package controlplane_test

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/internal/teststore"
)

// TestListCapturesIncludeDeleted: a deleted capture (one a responder
// replaced, say) is left out of listings unless asked for, then listed
// with its deletion time, newest first.
func TestListCapturesIncludeDeleted(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := fixtureOn(t, store, controlplane.Config{})
		_, h := f.enroll(t, "web1")
		for _, name := range []string{"old", "kept"} {
			// Ids order by the millisecond they were made in; two made in
			// one millisecond have no newest.
			time.Sleep(2 * time.Millisecond)
			if _, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: name, Parameters: tripcap.PacketCaptureParameters{Target: h.Name}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.svc.DeleteCapture(f.admin, "", "old", "", false); err != nil {
			t.Fatal(err)
		}
		live, _, err := f.svc.ListCaptures(f.admin, controlplane.CaptureQuery{Host: h.Name})
		if err != nil || len(live) != 1 || live[0].Name != "kept" {
			t.Fatalf("without deleted: %d captures, %v", len(live), err)
		}
		all, _, err := f.svc.ListCaptures(f.admin, controlplane.CaptureQuery{Host: h.Name, IncludeDeleted: true, NewestFirst: true})
		if err != nil || len(all) != 2 || all[0].Name != "kept" || all[1].Name != "old" || all[1].DeletedAt == nil {
			t.Fatalf("with deleted: %+v, %v", all, err)
		}
	})
}
