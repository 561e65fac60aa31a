package storetest

import (
	"fmt"
	"reflect"
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
	{"Responder/Keys", testResponderKeys},
	{"Responder/RunsIdempotent", testResponderRunsIdempotent},
	{"Responder/RunsIdempotentConcurrent", testResponderRunsConcurrent},
	{"Responder/RunsFind", testResponderRunsFind},
	{"Responder/InvalidInput", testResponderInvalid},
}

// fullResponder returns a responder with every field set.
func fullResponder(name string) *tripcap.Responder {
	return &tripcap.Responder{
		ID: tripcap.NewID(), Name: name, Description: "capture ✓ \"quoted\"", Enabled: ptr(false),
		Capture: tripcap.ResponderCapture{
			Name: "PSAzureFunction", TimeLimitInSeconds: 45, BytesToCapturePerPacket: 128, TotalBytesPerSession: 1 << 20,
			Filters:        []tripcap.PacketCaptureFilter{{Protocol: "TCP", LocalIPAddress: tripcap.PlaceholderHostAddress, RemotePort: "80;443;"}},
			StorageAccount: "blobs", Format: tripcap.FormatPcapng, PreTriggerSeconds: 10, ContinuousCapture: ptr(true),
			CaptureSettings: &tripcap.CaptureSettings{FileCount: ptr(int32(3)), FileSizeInBytes: ptr(int64(4096)), SessionTimeLimitInSeconds: ptr(int32(600))},
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
	for _, f := range []tripcap.ResponderFilter{{ID: &r.ID}, {Name: ptr("CAPTURE-WEB")}} {
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
	if err := s.UpdateResponder(ctx, &upd); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindResponder(ctx, tripcap.ResponderFilter{Name: ptr("c-responder")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Limit != 9 || got.ID != a.ID || !got.UpdatedAt.After(base) {
		t.Fatalf("update not stored: %+v", got)
	}
	upd.Name = "A-Responder"
	wantCode(t, s.UpdateResponder(ctx, &upd), tripcap.ECONFLICT)
	missing := fullResponder("nobody")
	wantCode(t, s.UpdateResponder(ctx, missing), tripcap.ENOTFOUND)
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
	if err := s.CreateResponderRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.CreateResponderRun(ctx, newRun(rid, "am:fp@t:Fired", "fp", base)), tripcap.ECONFLICT)
	// Another responder may handle the same alert; runs without a key never conflict.
	for _, other := range []*tripcap.ResponderRun{newRun(tripcap.NewID(), "am:fp@t:Fired", "fp", base), newRun(rid, "", "x", base), newRun(rid, "", "x", base)} {
		if err := s.CreateResponderRun(ctx, other); err != nil {
			t.Fatal(err)
		}
	}
	done := base.Add(3 * time.Second)
	r.Decision, r.Reason, r.FinishedAt = tripcap.DecisionStarted, "", &done
	r.Hosts = []tripcap.ResponderRunHost{{HostID: "h1", HostName: "vm1", Decision: tripcap.DecisionStarted, CaptureID: "c1", CaptureName: "PSAzureFunction", Notified: &done}}
	r.Errors = []string{"notify: 503"}
	if err := s.UpdateResponderRun(ctx, r); err != nil {
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
	wantCode(t, s.UpdateResponderRun(ctx, missing), tripcap.ENOTFOUND)
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
			errs[i] = s.CreateResponderRun(ctx, newRun(rid, "same", "a", base.Add(time.Duration(i)*time.Millisecond)))
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
		if err := s.CreateResponderRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateResponderRun(ctx, newRun(other, "k0", "a", base)); err != nil {
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
	got, err = s.FindResponderRuns(ctx, tripcap.ResponderRunFilter{ResponderID: &rid, AlertKey: ptr("a"), Since: &since})
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
	_, err := s.FindResponders(ctx, tripcap.ResponderFilter{ID: ptr("a b")})
	wantCode(t, err, tripcap.EINVALID)
	wantCode(t, s.DeleteResponder(ctx, "a/b"), tripcap.EINVALID)
	wantCode(t, s.CreateResponderKey(ctx, &tripcap.ResponderKey{ID: tripcap.NewID(), ResponderID: "a b", Name: "k", Hash: "h"}), tripcap.EINVALID)
	wantCode(t, s.CreateResponderKey(ctx, &tripcap.ResponderKey{ID: tripcap.NewID(), ResponderID: tripcap.NewID(), Name: "k"}), tripcap.EINVALID)
	_, err = s.FindResponderKeys(ctx, "a b")
	wantCode(t, err, tripcap.EINVALID)
	run := newRun(tripcap.NewID(), "bad\x00key", "", base)
	wantCode(t, s.CreateResponderRun(ctx, run), tripcap.EINVALID)
	run = newRun(tripcap.NewID(), "k", "\xff", base)
	wantCode(t, s.CreateResponderRun(ctx, run), tripcap.EINVALID)
	run = newRun(tripcap.NewID(), "k", "", time.Time{})
	wantCode(t, s.CreateResponderRun(ctx, run), tripcap.EINVALID)
	_, err = s.FindResponderRuns(ctx, tripcap.ResponderRunFilter{Limit: -1})
	wantCode(t, err, tripcap.EINVALID)
}
