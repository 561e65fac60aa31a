package tripcap

import (
	"strings"
	"testing"
)

func TestParseJoinToken(t *testing.T) {
	fp := strings.Repeat("0a", 32)
	secret := NewSecret(SecretPrefixJoin)
	for _, tc := range []struct{ in, secret, fp, err string }{
		{in: secret, secret: secret},
		{in: JoinTokenString(secret, fp), secret: secret, fp: fp},
		{in: secret + "." + strings.ToUpper(fp), err: "not a CA fingerprint"},
		{in: secret + ".abc", err: "not a CA fingerprint"},
		{in: secret + ".", err: "not a CA fingerprint"},
		{in: secret + "." + fp + "." + fp, err: "not a CA fingerprint"},
		{in: "tc_agent_X." + fp, err: "not a tc_join_"},
		{in: "tc_join_", err: "not a tc_join_"},
		{in: "tc_join_a b", err: "white space"},
		{in: "", err: "not a tc_join_"},
	} {
		s, f, err := ParseJoinToken(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "joinToken: ") {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || s != tc.secret || f != tc.fp {
			t.Errorf("%q: %q %q %v", tc.in, s, f, err)
		}
	}
}

func FuzzParseJoinToken(f *testing.F) {
	f.Add(NewSecret(SecretPrefixJoin))
	f.Add(JoinTokenString(NewSecret(SecretPrefixJoin), strings.Repeat("f", 64)))
	f.Add("tc_join_.")
	f.Fuzz(func(t *testing.T, in string) {
		s, fp, err := ParseJoinToken(in)
		if err != nil {
			return
		}
		if JoinTokenString(s, fp) != in {
			t.Fatalf("%q does not round-trip: %q %q", in, s, fp)
		}
	})
}
