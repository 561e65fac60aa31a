package tripcap

import "testing"

func TestConfineCapturePathRelativeDirectory(t *testing.T) {
	for _, tc := range []struct {
		dir, p, want string
		ok           bool
	}{
		{".", "x.cap", "x.cap", true},
		{".", "sub/x.cap", "sub/x.cap", true},
		{".", "../x.cap", "", false},
		{".", "/tmp/x.cap", "", false},
		{"/var/captures", "x.cap", "/var/captures/x.cap", true},
		{"/var/captures", "/var/captures/a/x.cap", "/var/captures/a/x.cap", true},
		{"/var/captures", "/var/capturesX/x.cap", "", false},
		{"/var/captures", "/var/captures", "", false},
		{"/var/captures", "../etc/x.cap", "", false},
	} {
		got, err := ConfineCapturePath(tc.dir, tc.p)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ConfineCapturePath(%q, %q) = %q, %v; want %q, ok=%v", tc.dir, tc.p, got, err, tc.want, tc.ok)
		}
	}
}
