package responder_test

import (
	"context"
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// An update replaces the settings, checked as for create, and keeps the
// responder's id, keys, runs and creation time; If-Match guards against
// undoing someone else's change.
func TestResponderUpdate(t *testing.T) {
	f := startResponders(t, newFixture(t, controlplane.Config{}))
	orig, key := f.create(t, tripcap.Responder{Name: "pc", Limit: 5})
	if orig.Version != 1 || orig.ETag() != `W/"1"` {
		t.Fatalf("created: version %d etag %s", orig.Version, orig.ETag())
	}
	if _, err := f.rsp.Invoke(context.Background(), "pc", key, amBody("firing", "nowhere", "fp", "2026-01-01T00:00:00Z")); err != nil {
		t.Fatal(err)
	}
	f.settle(t, "pc", 1)

	// Refused: wrong ETag, invalid settings, unknown references, another id.
	_, err := f.rsp.UpdateResponder(f.admin, "pc", &tripcap.Responder{Limit: 9}, `W/"7"`)
	wantCode(t, err, tripcap.EPRECONDITION, "changed")
	_, err = f.rsp.UpdateResponder(f.admin, "pc", &tripcap.Responder{NameConflict: "merge"}, "")
	wantCode(t, err, tripcap.EINVALID, "nameConflict")
	_, err = f.rsp.UpdateResponder(f.admin, "pc", &tripcap.Responder{CooldownMinutes: -1}, "")
	wantCode(t, err, tripcap.EINVALID, "cooldownMinutes")
	_, err = f.rsp.UpdateResponder(f.admin, "pc", &tripcap.Responder{NotifyActionGroup: "nobody"}, "")
	wantCode(t, err, tripcap.EINVALID, "notifyActionGroup")
	_, err = f.rsp.UpdateResponder(f.admin, "pc", &tripcap.Responder{Capture: tripcap.ResponderCapture{StorageAccount: "nowhere"}}, "")
	wantCode(t, err, tripcap.EINVALID, "capture.storageAccount")
	_, err = f.rsp.UpdateResponder(f.admin, "pc", &tripcap.Responder{Capture: tripcap.ResponderCapture{TimeLimitInSeconds: 99999}}, "")
	wantCode(t, err, tripcap.EINVALID, "capture.")
	_, err = f.rsp.UpdateResponder(f.admin, "pc", &tripcap.Responder{ID: tripcap.NewID()}, "")
	wantCode(t, err, tripcap.EINVALID, "id")
	_, err = f.rsp.UpdateResponder(f.admin, "nobody", &tripcap.Responder{}, "")
	wantCode(t, err, tripcap.ENOTFOUND, "nobody")
	_, err = f.rsp.UpdateResponder(f.admin, "pc", nil, "")
	wantCode(t, err, tripcap.EINVALID, "body")
	if _, err := f.rsp.UpdateResponder(context.Background(), "pc", &tripcap.Responder{}, ""); tripcap.ErrorCode(err) == "" {
		t.Fatal("an anonymous caller updated a responder")
	}
	if _, err := f.rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "other"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.rsp.UpdateResponder(f.admin, "pc", &tripcap.Responder{Name: "OTHER"}, "")
	wantCode(t, err, tripcap.ECONFLICT, "OTHER")
	if cur, _ := f.rsp.FindResponder(f.admin, "pc"); cur.Version != 1 || cur.Limit != 5 {
		t.Fatalf("a refused update changed the responder: %+v", cur)
	}

	// Accepted with the current ETag: renamed, new settings, defaults for
	// what the body leaves out, as for create.
	upd, err := f.rsp.UpdateResponder(f.admin, "pc", &tripcap.Responder{Name: "pc2", Limit: 9, CooldownMinutes: 3, StopOnResolved: true,
		Capture: tripcap.ResponderCapture{Name: "cap2", TimeLimitInSeconds: 60}}, orig.ETag())
	if err != nil {
		t.Fatal(err)
	}
	if upd.ID != orig.ID || upd.Version != 2 || !upd.CreatedAt.Equal(orig.CreatedAt) || !upd.UpdatedAt.After(orig.UpdatedAt) ||
		upd.Name != "pc2" || upd.Limit != 9 || upd.CooldownMinutes != 3 || !upd.StopOnResolved || upd.Capture.Name != "cap2" ||
		upd.Capture.TimeLimitInSeconds != 60 || upd.NameConflict != tripcap.ConflictReplace || !upd.IsEnabled() {
		t.Fatalf("updated: %+v", upd)
	}
	got, err := f.rsp.FindResponder(f.admin, orig.ID)
	if err != nil || got.Version != 2 || got.Name != "pc2" {
		t.Fatalf("stored: %+v %v", got, err)
	}
	// The old ETag is stale now.
	_, err = f.rsp.UpdateResponder(f.admin, "pc2", &tripcap.Responder{Limit: 1}, orig.ETag())
	wantCode(t, err, tripcap.EPRECONDITION, "changed")

	// Keys and runs stay: the old key triggers it under its new name, and
	// the run before the update is listed with the new one.
	if _, err := f.rsp.Invoke(context.Background(), "pc2", key, amBody("firing", "nowhere", "fp2", "2026-01-01T00:01:00Z")); err != nil {
		t.Fatalf("the key stopped working: %v", err)
	}
	runs := f.settle(t, "pc2", 2)
	if runs[1].ResponderID != orig.ID {
		t.Fatalf("runs: %+v", runs)
	}

	// Without If-Match the last writer wins; "*" matches any version.
	if upd, err = f.rsp.UpdateResponder(f.admin, orig.ID, &tripcap.Responder{Enabled: new(false)}, ""); err != nil || upd.IsEnabled() || upd.Version != 3 || upd.Name != "pc2" {
		t.Fatalf("update without If-Match: %+v %v", upd, err)
	}
	if upd, err = f.rsp.UpdateResponder(f.admin, "pc2", &tripcap.Responder{}, "*"); err != nil || !upd.IsEnabled() || upd.Version != 4 {
		t.Fatalf("update with If-Match *: %+v %v", upd, err)
	}
}
