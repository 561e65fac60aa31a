package storetest

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// responderTests are the ResponderStore subtests Run registers.
var responderTests = []struct {
	name string
	fn   func(t *testing.T, s tripcap.Store)
}{
	{"Responder/RoundTrip", testResponderRoundTrip},
	{"Responder/NamesAndUpdate", testResponderNames},
	{"Responder/UpdateVersion", testResponderUpdateVersion},
	{"Responder/Keys", testResponderKeys},
	{"Responder/RunsIdempotent", testResponderRunsIdempotent},
	{"Responder/RunsIdempotentConcurrent", testResponderRunsConcurrent},
	{"Responder/RunsFind", testResponderRunsFind},
	{"Responder/RunsClaim", testResponderRunsClaim},
	{"Responder/RunsClaimConcurrent", testResponderRunsClaimConcurrent},
	{"Responder/RunsFenced", testResponderRunsFenced},
	{"Responder/InvalidInput", testResponderInvalid},
}

// fullResponder returns a responder with every field set.
func fullResponder(name string) *tripcap.Responder {
	return &tripcap.Responder{
		ID: tripcap.NewID(), Name: name, Description: "capture ✓ \"quoted\"", Enabled: new(false),
		Capture: tripcap.ResponderCapture{
			Name: "PSAzureFunction", TimeLimitInSeconds: 45, BytesToCapturePerPacket: 128, TotalBytesPerSession: 1 << 20,
			Filters:        []tripcap.PacketCaptureFilter{{Protocol: "TCP", LocalIPAddress: tripcap.PlaceholderHostAddress, RemotePort: "80;443;"}},
			StorageAccount: "blobs", Format: tripcap.FormatPcapng, PreTriggerSeconds: 10, ContinuousCapture: new(true),
			CaptureSettings: &tripcap.CaptureSettings{FileCount: new(int32(3)), FileSizeInBytes: new(int64(4096)), SessionTimeLimitInSeconds: new(int32(600))},
			IncludeMetadata: true,
		},
		NameConflict: tripcap.ConflictUnique, Limit: 7, CooldownMinutes: 5, StopOnResolved: true,
		NotifyActionGroup: "ops", TargetLabels: []string{"instance", "pod_host"},
		CreatedAt: base, UpdatedAt: base.Add(time.Second),
	}
}

func testResponderRoundTrip(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	r := fullResponder("capture-web")
	if err := s.CreateResponder(ctx, r); err != nil {
		t.Fatal(err)
	}
	want := *r
	want.CreatedAt, want.UpdatedAt = base.UTC(), base.Add(time.Second).UTC()
	for _, f := range []tripcap.ResponderFilter{{ID: &r.ID}, {Name: new("CAPTURE-WEB")}} {
		got, err := s.FindResponder(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, &want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, &want)
		}
	}
	if err := s.DeleteResponder(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	_, err := s.FindResponder(ctx, tripcap.ResponderFilter{ID: &r.ID})
	wantCode(t, err, tripcap.ENOTFOUND)
	wantCode(t, s.DeleteResponder(ctx, r.ID), tripcap.ENOTFOUND)
}

func testResponderNames(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	a, b := fullResponder("b-responder"), fullResponder("a-responder")
	for _, r := range []*tripcap.Responder{a, b} {
		if err := s.CreateResponder(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	dup := fullResponder("B-RESPONDER")
	wantCode(t, s.CreateResponder(ctx, dup), tripcap.ECONFLICT)
	dup = fullResponder("other")
	dup.ID = a.ID
	wantCode(t, s.CreateResponder(ctx, dup), tripcap.ECONFLICT)

	all, err := s.FindResponders(ctx, tripcap.ResponderFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Name != "a-responder" || all[1].Name != "b-responder" {
		t.Fatalf("listing not ordered by name: %v", names(all))
	}

	// Update: the name may change, but not to a taken one.
	upd := *a
	upd.Name, upd.Limit = "c-responder", 9
	if err := s.UpdateResponder(ctx, &upd, a.Version); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindResponder(ctx, tripcap.ResponderFilter{Name: new("c-responder")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Limit != 9 || got.ID != a.ID || !got.UpdatedAt.After(base) {
		t.Fatalf("update not stored: %+v", got)
	}
	upd.Name = "A-Responder"
	wantCode(t, s.UpdateResponder(ctx, &upd, upd.Version), tripcap.ECONFLICT)
	missing := fullResponder("nobody")
	wantCode(t, s.UpdateResponder(ctx, missing, 1), tripcap.ENOTFOUND)
}

// Updates are conditional on the version: a writer that read an older
// version is refused, and of concurrent writers from one version exactly
// one succeeds.
func testResponderUpdateVersion(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	r := fullResponder("versioned")
	if err := s.CreateResponder(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.Version != 1 {
		t.Fatalf("created at version %d, want 1", r.Version)
	}
	stale := *r
	upd := *r
	upd.Description, upd.CooldownMinutes = "changed", 11
	if err := s.UpdateResponder(ctx, &upd, 1); err != nil {
		t.Fatal(err)
	}
	if upd.Version != 2 {
		t.Fatalf("updated to version %d, want 2", upd.Version)
	}
	got, err := s.FindResponder(ctx, tripcap.ResponderFilter{ID: &r.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 || got.Description != "changed" || got.CooldownMinutes != 11 || got.ETag() != `W/"2"` || !got.CreatedAt.Equal(base) {
		t.Fatalf("after update: %+v", got)
	}
	stale.Description = "lost update"
	wantCode(t, s.UpdateResponder(ctx, &stale, stale.Version), tripcap.EPRECONDITION)
	if got, _ := s.FindResponder(ctx, tripcap.ResponderFilter{ID: &r.ID}); got.Description != "changed" {
		t.Fatalf("a stale update was written: %+v", got)
	}

	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			w := *got
			w.Limit = 20 + i
			errs[i] = s.UpdateResponder(ctx, &w, got.Version)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch tripcap.ErrorCode(err) {
		case "":
			ok++
		case tripcap.EPRECONDITION:
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent updates from one version succeeded, want 1", ok)
	}
	final, _ := s.FindResponder(ctx, tripcap.ResponderFilter{ID: &r.ID})
	if final.Version != 3 {
		t.Fatalf("version %d after one more update, want 3", final.Version)
	}
}

func names(rs []*tripcap.Responder) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func testResponderKeys(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	r := fullResponder("keys")
	if err := s.CreateResponder(ctx, r); err != nil {
		t.Fatal(err)
	}
	k1 := &tripcap.ResponderKey{ID: tripcap.NewID(), ResponderID: r.ID, Name: "default", Hash: "h1", CreatedAt: base}
	k2 := &tripcap.ResponderKey{ID: tripcap.NewID(), ResponderID: r.ID, Name: "alertmanager", Hash: "h2", CreatedAt: base}
	for _, k := range []*tripcap.ResponderKey{k1, k2} {
		if err := s.CreateResponderKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, s.CreateResponderKey(ctx, &tripcap.ResponderKey{ID: tripcap.NewID(), ResponderID: r.ID, Name: "default", Hash: "h3"}), tripcap.ECONFLICT)
	wantCode(t, s.CreateResponderKey(ctx, &tripcap.ResponderKey{ID: tripcap.NewID(), ResponderID: r.ID, Name: "third", Hash: "h1"}), tripcap.ECONFLICT)
	wantCode(t, s.CreateResponderKey(ctx, &tripcap.ResponderKey{ID: tripcap.NewID(), ResponderID: tripcap.NewID(), Name: "x", Hash: "h4"}), tripcap.ENOTFOUND)

	ks, err := s.FindResponderKeys(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 2 || ks[0].Name != "alertmanager" || ks[1].Name != "default" {
		t.Fatalf("keys: %+v", ks)
	}
	got, err := s.FindResponderKeyByHash(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	want := *k1
	want.CreatedAt = base.UTC()
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("by hash:\n got %+v\nwant %+v", got, &want)
	}
	_, err = s.FindResponderKeyByHash(ctx, "nope")
	wantCode(t, err, tripcap.ENOTFOUND)

	if err := s.DeleteResponderKey(ctx, k1.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.DeleteResponderKey(ctx, k1.ID), tripcap.ENOTFOUND)
	_, err = s.FindResponderKeyByHash(ctx, "h1")
	wantCode(t, err, tripcap.ENOTFOUND)

	// Deleting the responder revokes its keys.
	if err := s.DeleteResponder(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.FindResponderKeyByHash(ctx, "h2")
	wantCode(t, err, tripcap.ENOTFOUND)
}

func newRun(responderID, key, alertKey string, at time.Time) *tripcap.ResponderRun {
	return &tripcap.ResponderRun{
		ID: tripcap.NewID(), ResponderID: responderID, Source: "http", Format: "alertmanagerV4",
		IdempotencyKey: key, AlertKey: alertKey, Condition: tripcap.ConditionFired,
		Summary: "NetworkOutHigh", Targets: "labels instance=10.0.0.4:9464", Decision: tripcap.DecisionPending,
		ReceivedAt: at,
	}
}

func testResponderRunsIdempotent(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	rid := tripcap.NewID()
	r := newRun(rid, "am:fp@t:Fired", "fp", base)
	r.Owner = "server-a"
	if err := s.CreateResponderRun(ctx, r, time.Minute); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.CreateResponderRun(ctx, newRun(rid, "am:fp@t:Fired", "fp", base), 0), tripcap.ECONFLICT)
	// Another responder may handle the same alert; runs without a key never conflict.
	for _, other := range []*tripcap.ResponderRun{newRun(tripcap.NewID(), "am:fp@t:Fired", "fp", base), newRun(rid, "", "x", base), newRun(rid, "", "x", base)} {
		if err := s.CreateResponderRun(ctx, other, 0); err != nil {
			t.Fatal(err)
		}
	}
	done := base.Add(3 * time.Second)
	r.Decision, r.Reason, r.FinishedAt = tripcap.DecisionStarted, "", &done
	r.Hosts = []tripcap.ResponderRunHost{{HostID: "h1", HostName: "vm1", Decision: tripcap.DecisionStarted, CaptureID: "c1", CaptureName: "PSAzureFunction", Notified: &done}}
	r.Errors = []string{"notify: 503"}
	if err := s.UpdateResponderRun(ctx, r, "server-a"); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindResponderRuns(ctx, tripcap.ResponderRunFilter{ID: &r.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0], r) {
		t.Fatalf("run round trip:\n got %+v\nwant %+v", got, r)
	}
	missing := newRun(rid, "", "", base)
	wantCode(t, s.UpdateResponderRun(ctx, missing, "server-a"), tripcap.ENOTFOUND)
}

// Concurrent deliveries of the same alert: exactly one run is created.
func testResponderRunsConcurrent(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	rid := tripcap.NewID()
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.CreateResponderRun(ctx, newRun(rid, "same", "a", base.Add(time.Duration(i)*time.Millisecond)), 0)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch tripcap.ErrorCode(err) {
		case "":
			ok++
		case tripcap.ECONFLICT:
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d runs created for one alert", ok)
	}
}

func testResponderRunsFind(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	rid, other := tripcap.NewID(), tripcap.NewID()
	var runs []*tripcap.ResponderRun
	for i := range 5 {
		alert := "a"
		if i%2 == 1 {
			alert = "b"
		}
		r := newRun(rid, fmt.Sprintf("k%d", i), alert, base.Add(time.Duration(i)*time.Minute))
		runs = append(runs, r)
		if err := s.CreateResponderRun(ctx, r, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateResponderRun(ctx, newRun(other, "k0", "a", base), 0); err != nil {
		t.Fatal(err)
	}
	ids := func(rs []*tripcap.ResponderRun) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	got, err := s.FindResponderRuns(ctx, tripcap.ResponderRunFilter{ResponderID: &rid})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{runs[4].ID, runs[3].ID, runs[2].ID, runs[1].ID, runs[0].ID}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("not newest first: %v, want %v", ids(got), want)
	}
	since := base.Add(90 * time.Second)
	got, err = s.FindResponderRuns(ctx, tripcap.ResponderRunFilter{ResponderID: &rid, AlertKey: new("a"), Since: &since})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{runs[4].ID, runs[2].ID}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("alert a since 90s: %v, want %v", ids(got), want)
	}
	got, err = s.FindResponderRuns(ctx, tripcap.ResponderRunFilter{ResponderID: &rid, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != runs[4].ID {
		t.Fatalf("limit: %v", ids(got))
	}
	all, err := s.FindResponderRuns(ctx, tripcap.ResponderRunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 {
		t.Fatalf("all runs: %d", len(all))
	}
}

func testResponderInvalid(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	bad := fullResponder("x")
	bad.ID = "not an id"
	wantCode(t, s.CreateResponder(ctx, bad), tripcap.EINVALID)
	wantCode(t, s.CreateResponder(ctx, fullResponder("")), tripcap.EINVALID)
	wantCode(t, s.CreateResponder(ctx, fullResponder("nul\x00")), tripcap.EINVALID)
	_, err := s.FindResponders(ctx, tripcap.ResponderFilter{ID: new("a b")})
	wantCode(t, err, tripcap.EINVALID)
	wantCode(t, s.DeleteResponder(ctx, "a/b"), tripcap.EINVALID)
	wantCode(t, s.CreateResponderKey(ctx, &tripcap.ResponderKey{ID: tripcap.NewID(), ResponderID: "a b", Name: "k", Hash: "h"}), tripcap.EINVALID)
	wantCode(t, s.CreateResponderKey(ctx, &tripcap.ResponderKey{ID: tripcap.NewID(), ResponderID: tripcap.NewID(), Name: "k"}), tripcap.EINVALID)
	_, err = s.FindResponderKeys(ctx, "a b")
	wantCode(t, err, tripcap.EINVALID)
	run := newRun(tripcap.NewID(), "bad\x00key", "", base)
	wantCode(t, s.CreateResponderRun(ctx, run, 0), tripcap.EINVALID)
	run = newRun(tripcap.NewID(), "k", "\xff", base)
	wantCode(t, s.CreateResponderRun(ctx, run, 0), tripcap.EINVALID)
	run = newRun(tripcap.NewID(), "k", "", time.Time{})
	wantCode(t, s.CreateResponderRun(ctx, run, 0), tripcap.EINVALID)
	// A claim at creation needs a lease.
	run = newRun(tripcap.NewID(), "k", "", base)
	run.Owner = "server-a"
	wantCode(t, s.CreateResponderRun(ctx, run, 0), tripcap.EINVALID)
	wantCode(t, s.UpdateResponderRun(ctx, newRun(tripcap.NewID(), "", "", base), ""), tripcap.EINVALID)
	_, err = s.FindResponderRuns(ctx, tripcap.ResponderRunFilter{Limit: -1})
	wantCode(t, err, tripcap.EINVALID)
}

// Claims: open runs (a decision or a notification left) are handed to one
// owner at a time, until its lease ends or it releases them; closed runs
// are never handed out. Leases run on the database's clock, so this test
// waits for them to end.
func testResponderRunsClaim(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	rid := tripcap.NewID()
	now := base.Add(time.Hour)
	// short leases end during the test; renewed outlasts them; long never does.
	const short, renewed, long = 1500 * time.Millisecond, 3 * time.Second, time.Hour

	// Pending, unheld, with its alert kept.
	pending := newRun(rid, "k1", "a", base)
	pending.Trigger = []byte(`{"format":"alertmanagerV4","condition":"Fired","targets":{"labels":{"instance":"10.0.0.4:9464"}}}`)
	// Decided, a notification pending: open.
	notify := newRun(rid, "k2", "a", base.Add(time.Second))
	notify.Decision, notify.FinishedAt = tripcap.DecisionStarted, &now
	notify.Hosts = []tripcap.ResponderRunHost{{HostID: "h1", Decision: tripcap.DecisionStarted, CaptureID: "c1", Notification: tripcap.NotifyPending}}
	// Decided, notified: closed.
	closed := newRun(rid, "k3", "a", base.Add(2*time.Second))
	closed.Decision, closed.FinishedAt = tripcap.DecisionStarted, &now
	closed.Hosts = []tripcap.ResponderRunHost{{HostID: "h1", Decision: tripcap.DecisionStarted, CaptureID: "c2", Notification: tripcap.NotifySent, Notified: &now}}
	// Pending, held by a live owner.
	held := newRun(rid, "k4", "a", base.Add(3*time.Second))
	held.Owner = "server-c"
	start := time.Now()
	for _, r := range []*tripcap.ResponderRun{pending, notify, closed, held} {
		if err := s.CreateResponderRun(ctx, r, short); err != nil {
			t.Fatal(err)
		}
	}
	wantLease(t, "claim at creation", held.LeaseUntil, start, short)
	if !pending.LeaseUntil.IsZero() {
		t.Fatalf("a run created without an owner has a lease until %s", pending.LeaseUntil)
	}
	got, err := s.FindResponderRuns(ctx, tripcap.ResponderRunFilter{ID: &held.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Owner != "server-c" || !got[0].LeaseUntil.Equal(held.LeaseUntil) {
		t.Fatalf("claim at creation not kept: owner %q until %s, want until %s", got[0].Owner, got[0].LeaseUntil, held.LeaseUntil)
	}

	ids := func(rs []*tripcap.ResponderRun) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	before := time.Now()
	a, err := s.ClaimResponderRuns(ctx, "server-a", short, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{pending.ID, notify.ID}; !reflect.DeepEqual(ids(a), want) {
		t.Fatalf("server-a claimed %v, want the open unheld runs oldest first %v", ids(a), want)
	}
	wantLease(t, "claimed run", a[0].LeaseUntil, before, short)
	if a[0].Owner != "server-a" || string(a[0].Trigger) != string(pending.Trigger) || a[0].Decision != tripcap.DecisionPending {
		t.Fatalf("claimed run: owner %q until %s trigger %s", a[0].Owner, a[0].LeaseUntil, a[0].Trigger)
	}
	if a[1].Hosts[0].Notification != tripcap.NotifyPending {
		t.Fatalf("claimed run lost its pending notification: %+v", a[1].Hosts)
	}
	b, err := s.ClaimResponderRuns(ctx, "server-b", long, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 0 {
		t.Fatalf("server-b got runs other servers hold: %v", ids(b))
	}
	// One run: the holder renews, another owner is refused while the lease lasts.
	if err := s.ClaimResponderRun(ctx, pending.ID, "server-a", renewed); err != nil {
		t.Fatalf("renewal: %v", err)
	}
	renewedAt := time.Now()
	wantCode(t, s.ClaimResponderRun(ctx, pending.ID, "server-b", long), tripcap.ECONFLICT)
	wantCode(t, s.ClaimResponderRun(ctx, closed.ID, "server-b", long), tripcap.ECONFLICT)
	wantCode(t, s.ClaimResponderRun(ctx, tripcap.NewID(), "server-b", long), tripcap.ENOTFOUND)

	// Leases that ended are taken over: notify's (not renewed) and
	// server-c's, but not pending's (renewed).
	time.Sleep(time.Until(start.Add(short + 200*time.Millisecond)))
	b, err = s.ClaimResponderRuns(ctx, "server-b", long, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{notify.ID, held.ID}; !reflect.DeepEqual(ids(b), want) {
		t.Fatalf("server-b took over %v, want the expired %v", ids(b), want)
	}
	wantCode(t, s.ClaimResponderRun(ctx, pending.ID, "server-b", long), tripcap.ECONFLICT)
	time.Sleep(time.Until(renewedAt.Add(renewed + 200*time.Millisecond)))
	if err := s.ClaimResponderRun(ctx, pending.ID, "server-b", long); err != nil {
		t.Fatalf("taking over an expired lease: %v", err)
	}

	// A run whose work is done is no longer handed out, and its update
	// keeps its trigger and claim.
	later := time.Now()
	pending.Decision, pending.FinishedAt = tripcap.DecisionSkipped, &later
	pending.Trigger, pending.Owner = nil, ""
	if err := s.UpdateResponderRun(ctx, pending, "server-b"); err != nil {
		t.Fatal(err)
	}
	got, err = s.FindResponderRuns(ctx, tripcap.ResponderRunFilter{ID: &pending.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Decision != tripcap.DecisionSkipped || got[0].Owner != "server-b" || len(got[0].Trigger) == 0 {
		t.Fatalf("after update: decision %s owner %q trigger %s", got[0].Decision, got[0].Owner, got[0].Trigger)
	}
	wantCode(t, s.ClaimResponderRun(ctx, pending.ID, "server-b", long), tripcap.ECONFLICT)

	// Released claims are free at once.
	if err := s.ReleaseResponderRuns(ctx, "server-b"); err != nil {
		t.Fatal(err)
	}
	a, err = s.ClaimResponderRuns(ctx, "server-a", long, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{notify.ID, held.ID}; !reflect.DeepEqual(ids(a), want) {
		t.Fatalf("after release server-a claimed %v, want %v", ids(a), want)
	}
	// The limit holds.
	if err := s.ReleaseResponderRuns(ctx, "server-a"); err != nil {
		t.Fatal(err)
	}
	a, err = s.ClaimResponderRuns(ctx, "server-a", long, 1)
	if err != nil || len(a) != 1 || a[0].ID != notify.ID {
		t.Fatalf("limit 1: %v %v", ids(a), err)
	}

	_, err = s.ClaimResponderRuns(ctx, "", long, 1)
	wantCode(t, err, tripcap.EINVALID)
	_, err = s.ClaimResponderRuns(ctx, "x", 0, 1)
	wantCode(t, err, tripcap.EINVALID)
	_, err = s.ClaimResponderRuns(ctx, "x", -time.Second, 1)
	wantCode(t, err, tripcap.EINVALID)
	_, err = s.ClaimResponderRuns(ctx, "x", long, 0)
	wantCode(t, err, tripcap.EINVALID)
	wantCode(t, s.ClaimResponderRun(ctx, "a b", "x", long), tripcap.EINVALID)
	wantCode(t, s.ClaimResponderRun(ctx, notify.ID, "x", 0), tripcap.EINVALID)
	wantCode(t, s.ReleaseResponderRuns(ctx, ""), tripcap.EINVALID)
	bad := newRun(rid, "k5", "a", base)
	bad.Trigger = []byte(`{"format":`)
	wantCode(t, s.CreateResponderRun(ctx, bad, 0), tripcap.EINVALID)
}

// wantLease checks that a lease taken at from (on this process's clock, the
// database's being on the same machine) for lease ends about lease later.
func wantLease(t *testing.T, what string, until, from time.Time, lease time.Duration) {
	t.Helper()
	const slack = time.Second
	if lo, hi := from.Add(lease-slack), time.Now().Add(lease+slack); until.Before(lo) || until.After(hi) {
		t.Fatalf("%s: lease until %s, want %s after %s (within %s)", what, until, lease, from, slack)
	}
}

// Fencing: a write to a run is accepted only from the owner of a lease that
// has not ended by the database's clock. A server whose lease lapsed (it
// stalled, or its clock runs slow) cannot overwrite the record of the
// server that took the run over, and a caller's clock does not enter:
// neither a run's own times nor a skewed server's idea of now.
func testResponderRunsFenced(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	rid := tripcap.NewID()
	const short = 500 * time.Millisecond

	// Times from a clock a day ahead: they decide nothing.
	skewed := time.Now().Add(24 * time.Hour)
	run := newRun(rid, "k1", "a", skewed)
	run.Owner = "server-a"
	if err := s.CreateResponderRun(ctx, run, short); err != nil {
		t.Fatal(err)
	}
	run.Summary = "written by a"
	if err := s.UpdateResponderRun(ctx, run, "server-a"); err != nil {
		t.Fatalf("the holder's write: %v", err)
	}
	// Someone who never held the run is refused.
	err := s.UpdateResponderRun(ctx, run, "server-b")
	wantCode(t, err, tripcap.ECONFLICT)
	if !strings.Contains(err.Error(), tripcap.ErrLeaseLost) {
		t.Fatalf("refused write: %v, want it to say %q", err, tripcap.ErrLeaseLost)
	}

	// The lease lapses: the former holder is refused though no one took
	// the run yet.
	time.Sleep(short + 200*time.Millisecond)
	wantCode(t, s.UpdateResponderRun(ctx, run, "server-a"), tripcap.ECONFLICT)

	// server-b takes the run over and writes; server-a's late write is
	// refused and leaves server-b's record.
	if err := s.ClaimResponderRun(ctx, run.ID, "server-b", time.Hour); err != nil {
		t.Fatalf("taking over: %v", err)
	}
	mine := *run
	mine.Summary, mine.Decision = "written by b", tripcap.DecisionSkipped
	if err := s.UpdateResponderRun(ctx, &mine, "server-b"); err != nil {
		t.Fatalf("the new holder's write: %v", err)
	}
	stale := *run
	stale.Summary, stale.Decision = "late write by a", tripcap.DecisionStarted
	wantCode(t, s.UpdateResponderRun(ctx, &stale, "server-a"), tripcap.ECONFLICT)
	got, err := s.FindResponderRuns(ctx, tripcap.ResponderRunFilter{ID: &run.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Summary != "written by b" || got[0].Decision != tripcap.DecisionSkipped || got[0].Owner != "server-b" {
		t.Fatalf("after a lapsed owner's write: summary %q decision %s owner %q", got[0].Summary, got[0].Decision, got[0].Owner)
	}
	// server-a cannot take the run back while server-b's lease lasts,
	// and a run with times from a clock a day behind is no different.
	wantCode(t, s.ClaimResponderRun(ctx, run.ID, "server-a", time.Hour), tripcap.ECONFLICT)
	old := newRun(rid, "k2", "a", time.Now().Add(-24*time.Hour))
	old.Owner = "server-a"
	if err := s.CreateResponderRun(ctx, old, time.Hour); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.ClaimResponderRun(ctx, old.ID, "server-b", time.Hour), tripcap.ECONFLICT)
	rs, err := s.ClaimResponderRuns(ctx, "server-b", time.Hour, 10)
	if err != nil || len(rs) != 0 {
		t.Fatalf("server-b claimed %d runs (%v), want none: both are held", len(rs), err)
	}
	if err := s.UpdateResponderRun(ctx, old, "server-a"); err != nil {
		t.Fatalf("the holder's write: %v", err)
	}
}

// Replicas claiming at once, in batches (a sweep) and one by one (a
// worker): every open run goes to exactly one of them.
func testResponderRunsClaimConcurrent(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	rid := tripcap.NewID()
	const runs, owners = 40, 8
	var ids []string
	for i := range runs {
		r := newRun(rid, fmt.Sprintf("k%d", i), "a", base.Add(time.Duration(i)*time.Millisecond))
		if err := s.CreateResponderRun(ctx, r, 0); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	var (
		mu  sync.Mutex
		got = map[string][]string{}
		wg  sync.WaitGroup
	)
	claimed := func(owner, id string) {
		mu.Lock()
		got[id] = append(got[id], owner)
		mu.Unlock()
	}
	for o := range owners {
		owner := fmt.Sprintf("server-%d", o)
		wg.Go(func() {
			if o%2 == 1 {
				for _, id := range ids {
					switch err := s.ClaimResponderRun(ctx, id, owner, time.Minute); tripcap.ErrorCode(err) {
					case "":
						claimed(owner, id)
					case tripcap.ECONFLICT:
					default:
						t.Error(err)
						return
					}
				}
				return
			}
			for range runs {
				rs, err := s.ClaimResponderRuns(ctx, owner, time.Minute, 3)
				if err != nil {
					t.Error(err)
					return
				}
				for _, r := range rs {
					claimed(owner, r.ID)
				}
			}
		})
	}
	wg.Wait()
	for id, os := range got {
		if len(os) != 1 {
			t.Errorf("run %s handed to %v", id, os)
		}
	}
	if len(got) != runs {
		t.Fatalf("%d of %d runs claimed", len(got), runs)
	}
}
