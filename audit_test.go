package tripcap

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNewIDAfterIsMonotonic(t *testing.T) {
	prev := ""
	for range 10000 {
		id := NewIDAfter(prev)
		if id <= prev || !IsID(id) {
			t.Fatalf("NewIDAfter(%q) = %q", prev, id)
		}
		prev = id
	}
	// Past the clock: the next id, still an id.
	far := "7zzzzzzzzzzzzzzzzzzzzzzzzw"
	if id := NewIDAfter(far); id <= far || !IsID(id) {
		t.Fatalf("after %q: %q", far, id)
	}
	if id := NewIDAfter("06h37hhtfqp25v0z3cwgs59qz0"); id <= "06h37hhtfqp25v0z3cwgs59qz0" {
		t.Fatalf("after an old id: %q", id)
	}
}

func TestAuditEventSanitize(t *testing.T) {
	e := AuditEvent{Resource: "a\x00b\xffc", Detail: strings.Repeat("é", 1000), Action: strings.Repeat("x", 1000)}
	e.Sanitize()
	if e.Resource != "ab\uFFFDc" {
		t.Fatalf("resource %q", e.Resource)
	}
	if !utf8.ValidString(e.Detail) || len(e.Detail) > MaxAuditDetailLength || !strings.HasSuffix(e.Detail, "…") {
		t.Fatalf("detail: %d bytes, valid %v", len(e.Detail), utf8.ValidString(e.Detail))
	}
	if len(e.Action) != MaxAuditFieldLength {
		t.Fatalf("action: %d bytes", len(e.Action))
	}
}

func TestAuditResultOf(t *testing.T) {
	for code, want := range map[int]AuditResult{200: AuditSuccess, 201: AuditSuccess, 204: AuditSuccess, 304: AuditSuccess,
		400: AuditFailed, 401: AuditDenied, 403: AuditDenied, 404: AuditFailed, 409: AuditFailed, 429: AuditFailed, 500: AuditFailed} {
		if got := AuditResultOf(code); got != want {
			t.Errorf("%d: %s, want %s", code, got, want)
		}
	}
	if ValidateAuditResult("result", "maybe") == nil || ValidateAuditResult("result", AuditDenied) != nil {
		t.Fatal("ValidateAuditResult")
	}
}
