package tripcap

import (
	"strings"
	"testing"
)

func TestParseResourceID(t *testing.T) {
	for _, tc := range []struct {
		id, sub, group, name string
		ok                   bool
	}{
		{VMSSResourceID("s", "g", "web"), "s", "g", "web", true},
		{"/SUBSCRIPTIONS/s/resourcegroups/g/PROVIDERS/microsoft.compute/VIRTUALMACHINESCALESETS/web/", "s", "g", "web", true},
		{VMResourceID("s", "g", "web"), "", "", "", false},
		{"/subscriptions/s/resourceGroups//providers/Microsoft.Compute/virtualMachineScaleSets/web", "", "", "", false},
		{"/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/0", "", "", "", false},
		{"web", "", "", "", false},
	} {
		sub, group, name, ok := ParseVMSSResourceID(tc.id)
		if sub != tc.sub || group != tc.group || name != tc.name || ok != tc.ok {
			t.Errorf("ParseVMSSResourceID(%q) = %q %q %q %v", tc.id, sub, group, name, ok)
		}
	}
	if _, _, name, ok := ParseStorageAccountResourceID(StorageAccountResourceID("s", "g", "caps")); !ok || name != "caps" {
		t.Errorf("storage account id: %q %v", name, ok)
	}
}

// FuzzParseResourceID: whatever parses builds back to the same resource.
func FuzzParseResourceID(f *testing.F) {
	f.Add(VMSSResourceID("s", "g", "web"))
	f.Add(VMResourceID("00000000-0000-0000-0000-000000000000", "rg", "vm"))
	f.Add("/subscriptions//resourceGroups/g/providers/Microsoft.Compute/virtualMachineScaleSets/x")
	f.Fuzz(func(t *testing.T, id string) {
		sub, group, name, ok := ParseVMSSResourceID(id)
		if !ok {
			return
		}
		if sub == "" || group == "" || name == "" || strings.Contains(sub+group+name, "/") {
			t.Fatalf("%q parsed to %q %q %q", id, sub, group, name)
		}
		s2, g2, n2, ok := ParseVMSSResourceID(VMSSResourceID(sub, group, name))
		if !ok || s2 != sub || g2 != group || n2 != name {
			t.Fatalf("%q does not round-trip", id)
		}
	})
}
