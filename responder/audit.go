package responder

import (
	"context"

	"github.com/tripcap/tripcap"
)

// Auditor records what a responder does to captures on its own, not by an
// API call (an *audit.Recorder).
type Auditor interface {
	Record(ctx context.Context, e tripcap.AuditEvent) error
}

// audit records a capture a run started, stopped or replaced: the
// responder is the principal, as a function key when the alert came over
// HTTP (that key's call is recorded too), else as the server itself.
func (r *Responders) audit(ctx context.Context, action string, rs *tripcap.Responder, run *tripcap.ResponderRun, alertID, capture string, h *tripcap.Host, err error) {
	if r.auditor == nil {
		return
	}
	e := tripcap.AuditEvent{Action: "responder." + action, PrincipalID: rs.ID, PrincipalName: rs.Name, PrincipalKind: tripcap.PrincipalSystem,
		Resource: "captures/" + capture, HostID: h.ID, Result: tripcap.AuditSuccess, Detail: "run " + run.ID}
	if run.Source == "http" {
		e.PrincipalKind = tripcap.PrincipalFunctionKey
	}
	if alertID != "" {
		e.Detail += "; alert " + alertID
	}
	if err != nil {
		e.Result = tripcap.AuditFailed
		if tripcap.ErrorCode(err) == tripcap.EFORBIDDEN || tripcap.ErrorCode(err) == tripcap.EUNAUTHORIZED {
			e.Result = tripcap.AuditDenied
		}
		e.Detail += "; " + tripcap.ErrorCode(err)
	}
	// Record logs the event whatever becomes of it; its error says only
	// that the store did not get it, which the recorder reports itself.
	_ = r.auditor.Record(ctx, e)
}
