package tripcap

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzAuditEventSanitize: whatever a caller puts in an event, every store
// can keep it (valid UTF-8, no NUL) and it stays small.
func FuzzAuditEventSanitize(f *testing.F) {
	f.Add("captures/pc", "a\x00b", "\xff\xfe")
	f.Add(strings.Repeat("é", 300), strings.Repeat("x", 600), "")
	f.Fuzz(func(t *testing.T, resource, detail, name string) {
		e := AuditEvent{Resource: resource, Detail: detail, PrincipalName: name, Action: name + resource, PrincipalKind: PrincipalKind(detail)}
		e.Sanitize()
		for field, v := range map[string]string{"resource": e.Resource, "detail": e.Detail, "name": e.PrincipalName, "action": e.Action, "kind": string(e.PrincipalKind)} {
			if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				t.Fatalf("%s: %q", field, v)
			}
			max := MaxAuditFieldLength
			if field == "detail" {
				max = MaxAuditDetailLength
			}
			if len(v) > max {
				t.Fatalf("%s: %d bytes", field, len(v))
			}
		}
		again := e
		again.Sanitize()
		if again != e {
			t.Fatalf("sanitizing twice changed %+v to %+v", e, again)
		}
	})
}
