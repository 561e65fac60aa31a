package tripcap

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// AuditResult is how an audited action ended.
type AuditResult string

const (
	AuditSuccess AuditResult = "success"
	// AuditDenied is a refused credential or a missing grant (401, 403).
	AuditDenied AuditResult = "denied"
	// AuditFailed is any other error.
	AuditFailed AuditResult = "failed"
)

// ValidateAuditResult refuses a result that is none of the three.
func ValidateAuditResult(field string, r AuditResult) error {
	switch r {
	case AuditSuccess, AuditDenied, AuditFailed:
		return nil
	}
	return Errorf(EINVALID, "%s: %q is not one of success, denied, failed", field, clip(string(r)))
}

// AuditResultOf classifies an HTTP status code.
func AuditResultOf(status int) AuditResult {
	switch {
	case status == 401 || status == 403:
		return AuditDenied
	case status >= 400:
		return AuditFailed
	}
	return AuditSuccess
}

// AuditEvent records who did what to which resource, from where, when, and
// how it ended: every mutating call, capture start/stop/delete, file
// download, enrollment and refused credential. It never holds a secret.
type AuditEvent struct {
	ID            string        `json:"id"`
	Time          time.Time     `json:"time"`
	PrincipalID   string        `json:"principalId,omitempty"`
	PrincipalKind PrincipalKind `json:"principalKind,omitempty"`
	PrincipalName string        `json:"principalName,omitempty"`
	// CredentialID is the token or credential the principal used (an API
	// token's id, a JWT's jti, an agent's credential): a token an Owner
	// made for someone else shows as that token, whose record names its
	// maker.
	CredentialID string `json:"credentialId,omitempty"`
	// Action is the API operation id ("createCapture") or, for what the
	// server does on its own, "component.operation" ("responder.startCapture").
	Action string `json:"action"`
	// Resource is the kind and name or id of what was acted on
	// ("captures/cap1", "watchers/NetworkWatcher_westeurope/captures/cap1").
	Resource string `json:"resource,omitempty"`
	HostID   string `json:"hostId,omitempty"`
	// RemoteAddr is the caller's address as the connection shows it
	// (proxies' headers are not trusted); "" for the server itself.
	RemoteAddr string      `json:"remoteAddr,omitempty"`
	Result     AuditResult `json:"result"`
	// Status is the HTTP status answered (0 for the server's own actions).
	Status int `json:"status,omitempty"`
	// Detail is a short note: an error code, an alert id; never a secret.
	Detail string `json:"detail,omitempty"`
}

// Audit events' text fields are clipped to these lengths, so a caller
// cannot make one large.
const (
	MaxAuditFieldLength  = 256
	MaxAuditDetailLength = 512
)

// Sanitize clips e's text fields and makes them valid UTF-8 without NUL,
// so that every store keeps every event as given.
func (e *AuditEvent) Sanitize() {
	for _, f := range []*string{&e.ID, &e.PrincipalID, &e.PrincipalName, &e.CredentialID, &e.Action, &e.Resource, &e.HostID, &e.RemoteAddr} {
		*f = cleanAuditText(*f, MaxAuditFieldLength)
	}
	e.PrincipalKind = PrincipalKind(cleanAuditText(string(e.PrincipalKind), MaxAuditFieldLength))
	e.Detail = cleanAuditText(e.Detail, MaxAuditDetailLength)
}

func cleanAuditText(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) <= n {
		return s
	}
	// The mark counts in n, so a clipped text is clipped no further.
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// AuditFilter selects audit events in a listing, newest first.
type AuditFilter struct {
	// Principal matches a principal's id or name.
	Principal *string
	Action    *string
	// ResourcePrefix matches resources starting with it ("captures/").
	ResourcePrefix *string
	Result         *AuditResult
	// Since and Until bound Time: at or after Since, before Until.
	Since, Until *time.Time
	Cursor       string // list after this id (from a previous page)
	Limit        int    // 0 means no limit
}

// AuditStore persists the audit log; Store embeds it.
type AuditStore interface {
	// AppendAuditEvents inserts events, whose IDs (NewID, so that ids sort
	// by time) and times the caller sets, in one transaction. ECONFLICT
	// when an id is taken, EINVALID for a missing id, action or result.
	AppendAuditEvents(ctx context.Context, events []*AuditEvent) error
	// FindAuditEvents lists the events f selects, newest (highest id)
	// first, and the cursor of the next page ("" at the end).
	FindAuditEvents(ctx context.Context, f AuditFilter) ([]*AuditEvent, string, error)
	// DeleteAuditEventsBefore removes the events older than t and says how many.
	DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int64, error)
}

// NewIDAfter returns a NewID greater than prev: the next id after prev when
// the clock has not moved past it (ids made in one millisecond otherwise
// sort at random), so that one writer's events list in the order made.
func NewIDAfter(prev string) string {
	id := NewID()
	if id > prev {
		return id
	}
	b, err := idEncoding.DecodeString(prev)
	if err != nil || len(b) != 16 {
		return id
	}
	for i := len(b) - 1; i >= 0; i-- {
		b[i]++
		if b[i] != 0 {
			break
		}
	}
	return idEncoding.EncodeToString(b)
}
