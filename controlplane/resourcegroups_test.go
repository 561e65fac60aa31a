package controlplane_test

import (
	"slices"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// TestResourceGroupsOfWhatTheCallerReads: a subscription's groups are those
// of its hosts, watchers and the server's storage accounts, each once
// regardless of case; a Reader of one host sees its host's group and its
// watcher's, not another subscription's nor the server's group it may not
// read.
func TestResourceGroupsOfWhatTheCallerReads(t *testing.T) {
	const other = "11111111-1111-1111-1111-111111111111"
	f := newFixture(t, controlplane.Config{})
	cfg := f.svc.Config()
	jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []tripcap.EnrollRequest{
		{Name: "vm-a", Location: "westeurope", Labels: map[string]string{tripcap.LabelResourceGroup: "Web"}},
		{Name: "vm-b", Location: "westeurope", Labels: map[string]string{tripcap.LabelSubscription: other, tripcap.LabelResourceGroup: "Secret"}},
	} {
		e.JoinToken = jt.Token
		if _, err := f.svc.Enroll(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.svc.PutWatcher(f.admin, tripcap.NetworkWatcher{Name: "mine", SubscriptionID: cfg.SubscriptionID, ResourceGroup: "WEB", Location: "eastus"}); err != nil {
		t.Fatal(err)
	}
	names := func(gs []tripcap.ResourceGroup) []string {
		var out []string
		for _, g := range gs {
			out = append(out, g.Name)
		}
		return out
	}
	gs, err := f.svc.ResourceGroups(f.admin, cfg.SubscriptionID)
	want := []string{tripcap.WatcherResourceGroup, cfg.ResourceGroup, "Web"}
	if err != nil || !slices.Equal(names(gs), want) {
		t.Fatalf("admin's groups %v %v; want %v", names(gs), err, want)
	}
	reader := tripcap.NewContextWithPrincipal(t.Context(), &tripcap.Principal{ID: "r", Kind: tripcap.PrincipalUser,
		Assignments: []tripcap.RoleAssignment{{Role: tripcap.RoleReader, Scope: "host:vm-a"}}})
	gs, err = f.svc.ResourceGroups(reader, cfg.SubscriptionID)
	if want := []string{tripcap.WatcherResourceGroup, "Web"}; err != nil || !slices.Equal(names(gs), want) {
		t.Fatalf("reader's groups %v %v; want %v", names(gs), err, want)
	}
	if gs, err := f.svc.ResourceGroups(reader, other); err != nil || len(gs) != 0 {
		t.Fatalf("reader's groups of the other subscription %v %v; want none", names(gs), err)
	}
	if _, err := f.svc.FindResourceGroup(f.admin, other, "secret"); err != nil {
		t.Fatalf("admin: group Secret: %v", err)
	}
	_, err = f.svc.FindResourceGroup(reader, other, "Secret")
	wantCode(t, err, tripcap.ENOTFOUND, "Secret")
}
