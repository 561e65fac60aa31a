//go:build linux

package afpacket

import (
	"testing"
)

// TestExpressionMatcher: the pre-trigger buffer's matcher runs a session's
// expression on frames as the buffer holds them (VLAN tags put back), in
// user space, for an expression with vlan too, whose kernel program reads
// the tag from the metadata.
func TestExpressionMatcher(t *testing.T) {
	untagged := []byte{
		2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
		0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
		0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
	}
	tagged := append(append(append([]byte{}, untagged[:12]...), 0x81, 0x00, 0x00, 100), untagged[12:]...)
	for _, tc := range []struct {
		expr             string
		untagged, tagged bool
	}{
		{"tcp port 80 and host 198.18.0.2", true, false},
		{"vlan 100 and tcp port 80", false, true},
		{"vlan 200 and tcp port 80", false, false},
		{"tcp and not vlan", true, false},
	} {
		f := sessionFilter{expression: tc.expr, snapLen: 65535}
		m, err := f.matcher(framingEthernet)
		if err != nil {
			t.Fatalf("%q: matcher: %v", tc.expr, err)
		}
		if got := m(untagged, false); got != tc.untagged {
			t.Errorf("%q on an untagged SYN: %v", tc.expr, got)
		}
		if got := m(tagged, false); got != tc.tagged {
			t.Errorf("%q on a SYN tagged 100: %v", tc.expr, got)
		}
		if f.describe() != tc.expr {
			t.Errorf("describe: %q", f.describe())
		}
	}
}
