package tripcap

import (
	"strings"
	"testing"
)

// FuzzParseFilterExpression checks that the parser never panics, fails only
// with EINVALID naming where (a token's position, a character's, or the
// end), and parses what it accepts the same way twice.
func FuzzParseFilterExpression(f *testing.F) {
	for _, s := range []string{
		"tcp port 80 and host 198.18.0.2", "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0", "ip[2:2] > 1500",
		"not (udp or icmp6) && ! vlan 100", "src or dst net fd00::/8", "portrange 1-1024 or 80",
		"ether src 02:00:00:00:00:01", "len - 14 > 100", "(((tcp", "tcp[", "host", "net 10 mask 255.0.0.0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseFilterExpression(s)
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("%v is not EINVALID", err)
			}
			msg := ErrorMessage(err)
			if !strings.Contains(msg, "position") && !strings.Contains(msg, "end of the expression") && !strings.Contains(msg, "bytes, more than") {
				t.Fatalf("error %q says not where", msg)
			}
			return
		}
		again, err := ParseFilterExpression(s)
		if err != nil {
			t.Fatalf("second parse: %v", err)
		}
		if (e == nil) != (again == nil) || e != nil && e.Text != s {
			t.Fatalf("parses differ: %+v, %+v", e, again)
		}
	})
}
