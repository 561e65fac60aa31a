package tripcap_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
)

func TestParseAgentProtocol(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"", 0, true}, {"0", 0, true}, {"1", 1, true}, {"42", 42, true},
		{"-1", 0, false}, {"+1", 0, false}, {" 1", 0, false}, {"1.0", 0, false}, {"one", 0, false}, {"1234567890", 0, false},
	} {
		got, err := tripcap.ParseAgentProtocol(c.in)
		if c.ok != (err == nil) || got != c.want {
			t.Errorf("ParseAgentProtocol(%q) = %d, %v; want %d, ok %v", c.in, got, err, c.want, c.ok)
		}
		if err != nil && (tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.HasPrefix(tripcap.ErrorMessage(err), tripcap.AgentProtocolHeader)) {
			t.Errorf("ParseAgentProtocol(%q): error %v must be EINVALID and name the header", c.in, err)
		}
	}
}

// FuzzParseAgentProtocol: the header parser never panics, and what it
// accepts is a version that prints back as it was sent.
func FuzzParseAgentProtocol(f *testing.F) {
	for _, s := range []string{"", "0", "1", "007", "-1", "+1", "99999999999999999999", "1\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := tripcap.ParseAgentProtocol(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseAgentProtocol(%q) = %d, negative", s, n)
		}
		if s != "" {
			if back, _ := strconv.Atoi(s); back != n {
				t.Fatalf("ParseAgentProtocol(%q) = %d", s, n)
			}
		}
	})
}
