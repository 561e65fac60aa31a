package tripcap_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
)

// A host named like an address or an id would receive the captures of
// alerts that name another host by its address or id: such names are
// refused, naming the field and the reason.
func TestValidateHostNameRefusesAddressesAndIDs(t *testing.T) {
	for name, want := range map[string]string{
		"10.0.0.5":              "is an IP address",
		"198.18.0.1":            "is an IP address",
		"010.0.0.5":             "is an IP address",
		"10.5":                  "is an IP address",
		"1.2.3.4.5":             "is an IP address",
		tripcap.NewID():         "has the form of an id",
		strings.Repeat("a", 26): "has the form of an id",
		"10.0.0.5:80":           "has ':'",
		"[::1]":                 "has '['",
		"fd00::1":               "has ':'",
	} {
		err := tripcap.ValidateHostName("name", name)
		if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.HasPrefix(tripcap.ErrorMessage(err), "name: ") || !strings.Contains(tripcap.ErrorMessage(err), want) {
			t.Errorf("%q: %v, want EINVALID naming the field and %q", name, err, want)
		}
	}
	for _, name := range []string{"web1", "web-1.example.com", "10-0-0-5", "host10.0.0.5", "1234", strings.Repeat("a", 25), strings.Repeat("a", 27), "ABCDEFGHJKMNPQRSTVWXYZ0123"} {
		if err := tripcap.ValidateHostName("name", name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
}

func FuzzValidateHostName(f *testing.F) {
	for _, s := range []string{"web1", "10.0.0.5", "::1", tripcap.NewID(), "..", "a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if tripcap.ValidateHostName("name", name) != nil {
			return
		}
		if _, err := netip.ParseAddr(name); err == nil {
			t.Fatalf("%q is accepted, and is an address", name)
		}
		if tripcap.IsID(name) {
			t.Fatalf("%q is accepted, and has an id's form", name)
		}
	})
}

// TestValidateNameAllowsDottedNumbers: only hosts are found by address, so
// other resources (a capture named for a date, a location) may look like one;
// none may look like an id.
func TestValidateNameAllowsDottedNumbers(t *testing.T) {
	for _, name := range []string{"2026.12.01", "10.0.0.5", "v1.2"} {
		if err := tripcap.ValidateName("name", name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	if err := tripcap.ValidateName("name", tripcap.NewID()); tripcap.ErrorCode(err) != tripcap.EINVALID {
		t.Errorf("an id-shaped name: %v", err)
	}
}
