package tripcap

import "testing"

func TestScopeCoversGroup(t *testing.T) {
	const sub = "00000000-0000-0000-0000-0000000000aa"
	for _, c := range []struct {
		scope Scope
		want  bool
	}{
		{ScopeAll, true},
		{"/subscriptions/" + sub, true},
		{"/SUBSCRIPTIONS/00000000-0000-0000-0000-0000000000AA", true},
		{"/subscriptions/" + sub + "/resourceGroups/networkwatcherrg", true},
		{"/subscriptions/" + sub + "/resourceGroups/rg-other", false},
		{"/subscriptions/00000000-0000-0000-0000-0000000000bb", false},
		{"/subscriptions/" + sub + "/resourceGroups/NetworkWatcherRG/providers/Microsoft.Compute/virtualMachines/vm1", false},
		{"location:westus", false},
		{"host:vm1", false},
		{"label:team=net", false},
		{"bogus", false},
	} {
		if got := c.scope.CoversGroup(sub, "NetworkWatcherRG"); got != c.want {
			t.Errorf("%q covers the group: %v, want %v", c.scope, got, c.want)
		}
	}
	p := &Principal{Assignments: []RoleAssignment{{Role: RoleReader, Scope: "/subscriptions/" + sub}, {Role: RoleNetworkContributor, Scope: "/subscriptions/" + sub + "/resourceGroups/ops"}}}
	if !p.CanInGroup(PermRead, sub, "x") || p.CanInGroup(PermCaptureWrite, sub, "x") || !p.CanInGroup(PermCaptureWrite, sub, "OPS") {
		t.Error("CanInGroup does not follow the assignments' roles and scopes")
	}
	var none *Principal
	if none.CanInGroup(PermRead, sub, "x") {
		t.Error("a nil principal can")
	}
}
