package responder_test

import (
	"context"
	"testing"

	"github.com/tripcap/tripcap/internal/teststore"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// TestAccessResponders: responders and their function keys and runs are
// not tied to a host, so reading them needs Reader at "*" and changing
// them Monitoring Contributor at "*"; a grant at a narrower scope, or a
// role without the permission, is refused.
func TestAccessResponders(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := startResponders(t, fixtureOn(t, store, controlplane.Config{}))
		as := func(name string, grants ...tripcap.RoleAssignment) context.Context {
			return tripcap.NewContextWithPrincipal(context.Background(), &tripcap.Principal{ID: name, Name: name, Kind: tripcap.PrincipalUser, Assignments: grants})
		}
		mon := as("monAll", tripcap.RoleAssignment{Role: tripcap.RoleMonitoringContributor, Scope: tripcap.ScopeAll})
		readers := map[string]context.Context{
			"readerAll": as("readerAll", tripcap.RoleAssignment{Role: tripcap.RoleReader, Scope: tripcap.ScopeAll}),
			"monAll":    mon,
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
			t.Fatalf("monAll: CreateResponder: %v", err)
		}
		if _, err := f.rsp.CreateKey(mon, "pc", "k1"); err != nil {
			t.Fatalf("monAll: CreateKey: %v", err)
		}
		if _, err := f.rsp.RotateKey(mon, "pc", "k1"); err != nil {
			t.Fatalf("monAll: RotateKey: %v", err)
		}
		if _, err := f.rsp.UpdateResponder(mon, "pc", &tripcap.Responder{Capture: tripcap.ResponderCapture{Name: "pc2"}}, "*"); err != nil {
			t.Fatalf("monAll: UpdateResponder: %v", err)
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
			t.Errorf("monAll: RevokeKey: %v", err)
		}
		if err := f.rsp.DeleteResponder(mon, "pc"); err != nil {
			t.Errorf("monAll: DeleteResponder: %v", err)
		}
	})
}
