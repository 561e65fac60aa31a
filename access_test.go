package tripcap_test

import (
	"slices"
	"testing"

	"github.com/tripcap/tripcap"
)

// TestContributor: Azure's Contributor is everything an Owner may do but
// granting access (principals, tokens, role assignments, the admin token).
func TestContributor(t *testing.T) {
	owner, contrib := tripcap.RolePermissions(tripcap.RoleOwner), tripcap.RolePermissions(tripcap.RoleContributor)
	if slices.Contains(contrib, tripcap.PermAccessWrite) {
		t.Fatalf("Contributor grants %s", tripcap.PermAccessWrite)
	}
	for _, p := range owner {
		if p != tripcap.PermAccessWrite && !slices.Contains(contrib, p) {
			t.Errorf("Contributor lacks %s", p)
		}
	}
	if len(contrib) != len(owner)-1 {
		t.Errorf("Contributor %v, Owner %v", contrib, owner)
	}
	if err := tripcap.ValidateRoleName("role", "Contributor"); err != nil {
		t.Fatal(err)
	}
	if i, j := slices.Index(tripcap.RoleNames(), tripcap.RoleContributor), slices.Index(tripcap.RoleNames(), tripcap.RoleOwner); i < 0 || i+1 != j {
		t.Errorf("role order %v: Contributor just below Owner", tripcap.RoleNames())
	}
	p := &tripcap.Principal{Assignments: []tripcap.RoleAssignment{{Role: tripcap.RoleContributor, Scope: "label:team=a"}}}
	a := &tripcap.Host{Name: "a", Labels: map[string]string{"team": "a"}}
	b := &tripcap.Host{Name: "b", Labels: map[string]string{"team": "b"}}
	if !p.Can(tripcap.PermCaptureWrite, a) || !p.Can(tripcap.PermFileRead, a) || p.Can(tripcap.PermCaptureWrite, b) || p.Can(tripcap.PermStorageWrite, nil) {
		t.Error("a Contributor at label:team=a acts on team a's hosts only")
	}
}
