package storetest

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// testInvalidInput: bad input is refused with EINVALID and a message that
// names the field, before any SQL runs.
func testInvalidInput(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 1)
	w, h := f.w.ID, f.hosts[0].ID
	empty := ""
	bad := "x'; DROP TABLE hosts; --"
	checks := map[string]error{
		"CreateHost without id":   s.CreateHost(ctx, &tripcap.Host{Name: "x", Location: "eastus"}),
		"CreateHost without name": s.CreateHost(ctx, &tripcap.Host{ID: tripcap.NewID(), Location: "eastus"}),
		"CreateHost bad state":    s.CreateHost(ctx, &tripcap.Host{ID: tripcap.NewID(), Name: "x", State: "Sleeping"}),
		"UpdateHostInventory":     s.UpdateHostInventory(ctx, "", tripcap.Inventory{}, base),
		"TouchHosts":              s.TouchHosts(ctx, map[string]time.Time{"": base}),
		"DeleteHost":              s.DeleteHost(ctx, ""),
		"DeleteHost bad id":       s.DeleteHost(ctx, bad),
		"DeleteJoinToken":         s.DeleteJoinToken(ctx, ""),
		"CreateJoinToken no hash": s.CreateJoinToken(ctx, &tripcap.JoinToken{ID: tripcap.NewID(), UsesLeft: 1, ExpiresAt: base}),
		"CreateCredential no hash": s.CreateCredential(ctx,
			&tripcap.Credential{ID: tripcap.NewID(), Role: tripcap.RoleAdmin}),
		"CreateCredential no role": s.CreateCredential(ctx,
			&tripcap.Credential{ID: tripcap.NewID(), Hash: "h"}),
		"DeleteCredentialsOfHost": s.DeleteCredentialsOfHost(ctx, ""),
		"SetWatcherLimit":         s.SetWatcherLimit(ctx, "", 1),
		"CreateCapture no id":     s.CreateCapture(ctx, &tripcap.PacketCapture{Name: "x", WatcherID: w, HostID: h}),
		"CreateCapture no name":   s.CreateCapture(ctx, &tripcap.PacketCapture{ID: tripcap.NewID(), WatcherID: w, HostID: h}),
		"CreateCapture no watcher": s.CreateCapture(ctx,
			&tripcap.PacketCapture{ID: tripcap.NewID(), Name: "x", HostID: h}),
		"CreateCapture no host": s.CreateCapture(ctx,
			&tripcap.PacketCapture{ID: tripcap.NewID(), Name: "x", WatcherID: w}),
		"UpdateCapture no id": s.UpdateCapture(ctx, &tripcap.PacketCapture{Name: "x", WatcherID: w, HostID: h}, 1),
	}
	_, err := s.FindHost(ctx, tripcap.HostFilter{ID: &empty})
	checks["FindHost empty id"] = err
	_, err = s.FindHost(ctx, tripcap.HostFilter{ID: &bad})
	checks["FindHost bad id"] = err
	_, err = s.FindHost(ctx, tripcap.HostFilter{Name: &empty})
	checks["FindHost empty name"] = err
	_, err = s.FindHost(ctx, tripcap.HostFilter{State: new(tripcap.HostState("Sleeping"))})
	checks["FindHost bad state"] = err
	_, _, err = s.FindCaptures(ctx, tripcap.CaptureFilter{HostID: &empty})
	checks["FindCaptures empty host id"] = err
	_, _, err = s.FindCaptures(ctx, tripcap.CaptureFilter{WatcherID: &bad})
	checks["FindCaptures bad watcher id"] = err
	_, err = s.FindCapture(ctx, tripcap.CaptureFilter{ID: &empty})
	checks["FindCapture empty id"] = err
	_, err = s.FindWatcher(ctx, bad, "")
	checks["FindWatcher bad id"] = err
	_, err = s.EnsureWatcher(ctx, Subscription, "eastus2", -1)
	checks["EnsureWatcher negative limit"] = err
	for what, err := range checks {
		if tripcap.ErrorCode(err) != tripcap.EINVALID {
			t.Errorf("%s: got %v, want an EINVALID error", what, err)
		} else if msg := tripcap.ErrorMessage(err); len(msg) < 8 {
			t.Errorf("%s: message %q does not say what is wrong", what, msg)
		}
	}
	// Nothing was written.
	hosts, _, err := s.FindHosts(ctx, tripcap.HostFilter{})
	must(t, err)
	if len(hosts) != 1 {
		t.Fatalf("%d hosts after refused input, want 1", len(hosts))
	}
}
