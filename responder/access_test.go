package responder_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/tripcap/tripcap/actiongroup/webhooktest"
	"github.com/tripcap/tripcap/internal/teststore"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// TestAccessResponders: responders and their function keys and runs are
// not tied to a host, so reading them needs Reader at "*" and changing
// them Monitoring Contributor at "*" (and, to write one or its keys,
// Network Contributor at "*": TestResponderWritesNeedCaptureWrite); a
// grant at a narrower scope, or a role without the permission, is refused.
func TestAccessResponders(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := startResponders(t, fixtureOn(t, store, controlplane.Config{}))
		as := func(name string, grants ...tripcap.RoleAssignment) context.Context {
			return tripcap.NewContextWithPrincipal(context.Background(), &tripcap.Principal{ID: name, Name: name, Kind: tripcap.PrincipalUser, Assignments: grants})
		}
		mon := as("monNetAll", tripcap.RoleAssignment{Role: tripcap.RoleMonitoringContributor, Scope: tripcap.ScopeAll},
			tripcap.RoleAssignment{Role: tripcap.RoleNetworkContributor, Scope: tripcap.ScopeAll})
		readers := map[string]context.Context{
			"readerAll": as("readerAll", tripcap.RoleAssignment{Role: tripcap.RoleReader, Scope: tripcap.ScopeAll}),
			"monNetAll": mon,
		}
		refused := map[string]context.Context{
			"readerA": as("readerA", tripcap.RoleAssignment{Role: tripcap.RoleReader, Scope: "label:team=a"}),
			"netA":    as("netA", tripcap.RoleAssignment{Role: tripcap.RoleNetworkContributor, Scope: "label:team=a"}),
			"monA":    as("monA", tripcap.RoleAssignment{Role: tripcap.RoleMonitoringContributor, Scope: "label:team=a"}),
			"filesX":  as("filesX", tripcap.RoleAssignment{Role: tripcap.RoleCaptureFileReader, Scope: "location:xloc"}),
			"none":    as("none"),
		}

		rs, err := f.rsp.CreateResponder(mon, &tripcap.Responder{Name: "pc", Capture: tripcap.ResponderCapture{Name: "pc"}})
		if err != nil {
			t.Fatalf("monNetAll: CreateResponder: %v", err)
		}
		if _, err := f.rsp.CreateKey(mon, "pc", "k1"); err != nil {
			t.Fatalf("monNetAll: CreateKey: %v", err)
		}
		if _, err := f.rsp.RotateKey(mon, "pc", "k1"); err != nil {
			t.Fatalf("monNetAll: RotateKey: %v", err)
		}
		if _, err := f.rsp.UpdateResponder(mon, "pc", &tripcap.Responder{Capture: tripcap.ResponderCapture{Name: "pc2"}}, "*"); err != nil {
			t.Fatalf("monNetAll: UpdateResponder: %v", err)
		}

		for name, ctx := range readers {
			if _, err := f.rsp.FindResponders(ctx); err != nil {
				t.Errorf("%s: FindResponders: %v", name, err)
			}
			if _, err := f.rsp.FindResponder(ctx, rs.ID); err != nil {
				t.Errorf("%s: FindResponder: %v", name, err)
			}
			if keys, err := f.rsp.FindKeys(ctx, "pc"); err != nil || len(keys) != 1 || keys[0].Secret != "" {
				t.Errorf("%s: FindKeys: %+v, %v", name, keys, err)
			}
			if _, err := f.rsp.FindRuns(ctx, "pc", 10); err != nil {
				t.Errorf("%s: FindRuns: %v", name, err)
			}
		}
		readerAll := readers["readerAll"]
		refused["readerAll"] = readerAll
		for name, ctx := range refused {
			check := func(what string, err error) {
				t.Helper()
				if tripcap.ErrorCode(err) != tripcap.EFORBIDDEN {
					t.Errorf("%s: %s: %v, want EFORBIDDEN", name, what, err)
				}
			}
			_, err := f.rsp.CreateResponder(ctx, &tripcap.Responder{Name: "x", Capture: tripcap.ResponderCapture{Name: "x"}})
			check("CreateResponder", err)
			_, err = f.rsp.UpdateResponder(ctx, "pc", &tripcap.Responder{Capture: tripcap.ResponderCapture{Name: "x"}}, "*")
			check("UpdateResponder", err)
			check("DeleteResponder", f.rsp.DeleteResponder(ctx, "pc"))
			_, err = f.rsp.CreateKey(ctx, "pc", "k2")
			check("CreateKey", err)
			_, err = f.rsp.RotateKey(ctx, "pc", "k1")
			check("RotateKey", err)
			check("RevokeKey", f.rsp.RevokeKey(ctx, "pc", "k1"))
			if ctx == readerAll {
				continue
			}
			_, err = f.rsp.FindResponders(ctx)
			check("FindResponders", err)
			_, err = f.rsp.FindResponder(ctx, "pc")
			check("FindResponder", err)
			_, err = f.rsp.FindKeys(ctx, "pc")
			check("FindKeys", err)
			_, err = f.rsp.FindRuns(ctx, "pc", 10)
			check("FindRuns", err)
			_, err = f.rsp.FindRun(ctx, tripcap.NewID())
			check("FindRun", err)
		}
		if err := f.rsp.RevokeKey(mon, "pc", "k1"); err != nil {
			t.Errorf("monNetAll: RevokeKey: %v", err)
		}
		if err := f.rsp.DeleteResponder(mon, "pc"); err != nil {
			t.Errorf("monNetAll: DeleteResponder: %v", err)
		}
	})
}

// TestResponderWritesNeedCaptureWrite: a responder starts captures, as the
// server, on whatever host its alerts or triggers name, so a Monitoring
// Contributor without captures/write at "*" may not create or change one,
// nor create or rotate its function keys (a rotation refused leaves the
// old key working); it may still delete one and revoke its keys, which
// starts nothing.
func TestResponderWritesNeedCaptureWrite(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := startResponders(t, fixtureOn(t, store, controlplane.Config{}))
		as := func(name string, grants ...tripcap.RoleAssignment) context.Context {
			return tripcap.NewContextWithPrincipal(context.Background(), &tripcap.Principal{ID: name, Name: name, Kind: tripcap.PrincipalUser, Assignments: grants})
		}
		monAll := tripcap.RoleAssignment{Role: tripcap.RoleMonitoringContributor, Scope: tripcap.ScopeAll}
		if _, err := f.rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "pc", Capture: tripcap.ResponderCapture{Name: "pc"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.rsp.CreateKey(f.admin, "pc", "k1"); err != nil {
			t.Fatal(err)
		}
		for name, ctx := range map[string]context.Context{
			"monAll":     as("monAll", monAll),
			"monAllNetA": as("monAllNetA", monAll, tripcap.RoleAssignment{Role: tripcap.RoleNetworkContributor, Scope: "label:team=a"}),
		} {
			check := func(what string, err error) {
				t.Helper()
				if tripcap.ErrorCode(err) != tripcap.EFORBIDDEN || !strings.Contains(tripcap.ErrorMessage(err), string(tripcap.PermCaptureWrite)) {
					t.Errorf("%s: %s: %v, want EFORBIDDEN naming %s", name, what, err, tripcap.PermCaptureWrite)
				}
			}
			_, err := f.rsp.CreateResponder(ctx, &tripcap.Responder{Name: "x", Capture: tripcap.ResponderCapture{Name: "x"}})
			check("CreateResponder", err)
			_, err = f.rsp.UpdateResponder(ctx, "pc", &tripcap.Responder{Capture: tripcap.ResponderCapture{Name: "x"}}, "*")
			check("UpdateResponder", err)
			_, err = f.rsp.CreateKey(ctx, "pc", "k2")
			check("CreateKey", err)
			_, err = f.rsp.RotateKey(ctx, "pc", "k1")
			check("RotateKey", err)
		}
		if keys, err := f.rsp.FindKeys(f.admin, "pc"); err != nil || len(keys) != 1 || keys[0].Name != "k1" {
			t.Fatalf("keys after refused writes: %+v, %v (a refused rotation must not revoke)", keys, err)
		}
		if rs, err := f.rsp.FindResponder(f.admin, "pc"); err != nil || rs.Capture.Name != "pc" {
			t.Fatalf("responder after a refused update: %+v, %v", rs, err)
		}
		mon := as("monAll", monAll)
		if err := f.rsp.RevokeKey(mon, "pc", "k1"); err != nil {
			t.Errorf("monAll: RevokeKey: %v", err)
		}
		if err := f.rsp.DeleteResponder(mon, "pc"); err != nil {
			t.Errorf("monAll: DeleteResponder: %v", err)
		}
	})
}

// TestActionGroupResponderReceiverNeedsCaptureWrite: an action group with a
// responder receiver, with any rule, starts that responder's captures, so
// creating or updating one needs what writing a responder needs; a group
// without one stays a Monitoring Contributor's.
func TestActionGroupResponderReceiverNeedsCaptureWrite(t *testing.T) {
	f := startResponders(t, newFixture(t, controlplane.Config{}))
	mon, err := controlplane.NewMonitor(f.store, slog.New(slog.NewTextHandler(io.Discard, nil)), controlplane.MonitorConfig{WebhookTargets: webhooktest.Targets(), Responder: f.rsp})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := f.rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "pc"})
	if err != nil {
		t.Fatal(err)
	}
	as := func(name string, grants ...tripcap.RoleAssignment) context.Context {
		return tripcap.NewContextWithPrincipal(context.Background(), &tripcap.Principal{ID: name, Name: name, Kind: tripcap.PrincipalUser, Assignments: grants})
	}
	monAll := as("monAll", tripcap.RoleAssignment{Role: tripcap.RoleMonitoringContributor, Scope: tripcap.ScopeAll})
	monNetAll := as("monNetAll", tripcap.RoleAssignment{Role: tripcap.RoleMonitoringContributor, Scope: tripcap.ScopeAll},
		tripcap.RoleAssignment{Role: tripcap.RoleNetworkContributor, Scope: tripcap.ScopeAll})
	hook := []tripcap.WebhookReceiver{{Name: "w", ServiceURI: "http://127.0.0.1:9/hook"}}
	capture := []tripcap.ResponderReceiver{{Name: "cap", ResponderID: rs.ID}}

	_, err = mon.CreateActionGroup(monAll, &tripcap.ActionGroup{Name: "capture", ResponderReceivers: capture})
	wantCode(t, err, tripcap.EFORBIDDEN, string(tripcap.PermCaptureWrite))
	if _, err := mon.CreateActionGroup(monAll, &tripcap.ActionGroup{Name: "ops", WebhookReceivers: hook}); err != nil {
		t.Fatalf("monAll: a group without a responder receiver: %v", err)
	}
	_, err = mon.UpdateActionGroup(monAll, "ops", &tripcap.ActionGroup{WebhookReceivers: hook, ResponderReceivers: capture}, "*")
	wantCode(t, err, tripcap.EFORBIDDEN, string(tripcap.PermCaptureWrite))
	if g, err := mon.FindActionGroup(f.admin, "ops"); err != nil || len(g.ResponderReceivers) != 0 {
		t.Fatalf("ops after a refused update: %+v, %v", g, err)
	}
	if _, err := mon.CreateActionGroup(monNetAll, &tripcap.ActionGroup{Name: "capture", ResponderReceivers: capture}); err != nil {
		t.Fatalf("monNetAll: CreateActionGroup: %v", err)
	}
	if _, err := mon.UpdateActionGroup(monNetAll, "ops", &tripcap.ActionGroup{WebhookReceivers: hook, ResponderReceivers: capture}, "*"); err != nil {
		t.Fatalf("monNetAll: UpdateActionGroup: %v", err)
	}
	// Taking the receiver out again starts nothing: a Monitoring Contributor's.
	if _, err := mon.UpdateActionGroup(monAll, "ops", &tripcap.ActionGroup{WebhookReceivers: hook}, "*"); err != nil {
		t.Fatalf("monAll: removing the responder receiver: %v", err)
	}
}
