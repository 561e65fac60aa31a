package controlplane_test

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// TestWatchersPerSubscription: a host of another subscription (its
// azure.subscription label) gets that subscription's watcher of its
// location; a name two subscriptions share is refused as ambiguous by the
// native API, which takes the watcher's id instead; a capture lands in its
// host's subscription's watcher, and naming another watcher is refused.
func TestWatchersPerSubscription(t *testing.T) {
	const other = "11111111-1111-1111-1111-111111111111"
	f := newFixture(t, controlplane.Config{})
	agentA, a := f.enroll(t, "vm-a")
	jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.svc.Enroll(t.Context(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: "vm-b", Location: "westeurope", Labels: map[string]string{tripcap.LabelSubscription: other}})
	if err != nil {
		t.Fatal(err)
	}
	b := resp.Host
	wa, err := f.svc.FindWatcherByResource(f.admin, a.SubscriptionID, tripcap.WatcherResourceGroup, "networkwatcher_westeurope")
	if err != nil {
		t.Fatal(err)
	}
	wb, err := f.svc.FindWatcherByResource(f.admin, other, "networkwatcherrg", tripcap.WatcherName("westeurope"))
	if err != nil {
		t.Fatal(err)
	}
	if wa.ID == wb.ID || wb.SubscriptionID != other {
		t.Fatalf("watchers %+v %+v", wa, wb)
	}
	_, err = f.svc.SetWatcherLimit(f.admin, wa.Name, 5)
	wantCode(t, err, tripcap.EINVALID, "give its id")
	if w, err := f.svc.SetWatcherLimit(f.admin, wb.ID, 5); err != nil || w.ID != wb.ID || w.MaxCaptures != 5 {
		t.Fatalf("limit by id: %+v %v", w, err)
	}
	if _, err := f.svc.Heartbeat(agentA, tripcap.Heartbeat{}); err != nil {
		t.Fatal(err)
	}
	agentB, err := f.svc.Authenticate(t.Context(), resp.Credential)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Heartbeat(tripcap.NewContextWithPrincipal(f.admin, agentB), tripcap.Heartbeat{}); err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "pc", Parameters: tripcap.PacketCaptureParameters{Target: b.Name}})
	if err != nil || c.WatcherID != wb.ID {
		t.Fatalf("capture of vm-b: %+v %v; want watcher %s", c, err, wb.ID)
	}
	_, err = f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "pc2", Watcher: wa.ID, Parameters: tripcap.PacketCaptureParameters{Target: b.Name}})
	wantCode(t, err, tripcap.EINVALID, "target")
	if got, err := f.svc.FindCapture(f.admin, wb.ID, "pc"); err != nil || got.ID != c.ID {
		t.Fatalf("find by watcher id: %+v %v", got, err)
	}
	subs, err := f.svc.Subscriptions(f.admin)
	if err != nil || len(subs) != 2 || subs[1] != other {
		t.Fatalf("subscriptions %v %v", subs, err)
	}

	// A user's watcher: created once per location, its tags replaced on a
	// second PUT, its location fixed.
	mine := tripcap.NetworkWatcher{Name: "mine", SubscriptionID: other, ResourceGroup: "Ops", Location: "eastus", Tags: map[string]string{"a": "1"}}
	w, created, err := f.svc.PutWatcher(f.admin, mine)
	if err != nil || !created || w.MaxCaptures != tripcap.DefaultParallelCapturesPerWatcher {
		t.Fatalf("put: %+v %v %v", w, created, err)
	}
	mine.Tags = nil
	w, created, err = f.svc.PutWatcher(f.admin, mine)
	if err != nil || created || w.Tags != nil {
		t.Fatalf("second put: %+v %v %v", w, created, err)
	}
	mine.Location = "westus"
	_, _, err = f.svc.PutWatcher(f.admin, mine)
	wantCode(t, err, tripcap.EINVALID, "cannot change")
	_, _, err = f.svc.PutWatcher(f.admin, tripcap.NetworkWatcher{Name: "again", SubscriptionID: other, ResourceGroup: "Ops", Location: "eastus"})
	wantCode(t, err, tripcap.ECONFLICT, "one per location")
	if err := f.svc.DeleteWatcher(f.admin, other, "ops", "MINE"); err != nil {
		t.Fatal(err)
	}
	err = f.svc.DeleteWatcher(f.admin, other, tripcap.WatcherResourceGroup, wb.Name)
	wantCode(t, err, tripcap.ECONFLICT, "captures")
	// Changing watchers takes hosts/write.
	reader := tripcap.NewContextWithPrincipal(t.Context(), &tripcap.Principal{Kind: tripcap.PrincipalUser, Name: "r", Assignments: []tripcap.RoleAssignment{{Role: tripcap.RoleReader, Scope: tripcap.ScopeAll}}})
	_, _, err = f.svc.PutWatcher(reader, mine)
	wantCode(t, err, tripcap.EFORBIDDEN, "")
}

// TestWatcherVisibleOnlyInItsHostsSubscription: a Reader of one host sees
// the watcher of its host's subscription and location, not another
// subscription's watcher of the same location (nor its tags), by listing,
// by resource id, or as the watcher of a capture listing.
func TestWatcherVisibleOnlyInItsHostsSubscription(t *testing.T) {
	const other = "11111111-1111-1111-1111-111111111111"
	f := newFixture(t, controlplane.Config{})
	_, a := f.enroll(t, "vm-a")
	jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Enroll(t.Context(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: "vm-b", Location: "westeurope", Labels: map[string]string{tripcap.LabelSubscription: other}}); err != nil {
		t.Fatal(err)
	}
	wb, err := f.svc.FindWatcherByResource(f.admin, other, tripcap.WatcherResourceGroup, tripcap.WatcherName("westeurope"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.PutWatcher(f.admin, tripcap.NetworkWatcher{Name: wb.Name, SubscriptionID: other, ResourceGroup: wb.ResourceGroup, Location: "westeurope", Tags: map[string]string{"secret": "b"}}); err != nil {
		t.Fatal(err)
	}
	reader := tripcap.NewContextWithPrincipal(t.Context(), &tripcap.Principal{ID: "r", Kind: tripcap.PrincipalUser,
		Assignments: []tripcap.RoleAssignment{{Role: tripcap.RoleReader, Scope: tripcap.Scope("host:" + a.Name)}}})
	ws, err := f.svc.FindWatchers(reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].SubscriptionID != a.SubscriptionID {
		t.Fatalf("reader of vm-a sees watchers %+v; want only its own subscription's", ws)
	}
	_, err = f.svc.FindWatcherByResource(reader, other, tripcap.WatcherResourceGroup, tripcap.WatcherName("westeurope"))
	wantCode(t, err, tripcap.ENOTFOUND, "not found")
	_, _, err = f.svc.FindCaptures(reader, wb.ID, "", "", 0)
	wantCode(t, err, tripcap.ENOTFOUND, "watches a host you may read")
	if _, err := f.svc.FindWatcherByResource(reader, a.SubscriptionID, tripcap.WatcherResourceGroup, tripcap.WatcherName("westeurope")); err != nil {
		t.Fatalf("reader of vm-a: its own watcher: %v", err)
	}
}
