package actiongroup

import (
	"context"
	"errors"

	"github.com/tripcap/tripcap"
)

// responder hands the alert to a tripcap responder (Config.Responder).
type responder struct {
	tripcap.ResponderReceiver
	n *Notifier
}

// Check needs the responder service, and the responder the receiver names.
func (r responder) Check(ctx context.Context, field string) error {
	if r.n.cfg.Responder == nil {
		return tripcap.Errorf(tripcap.EINVALID, "%s: this server has no responder service configured; use webhookReceivers or emailReceivers", field)
	}
	return r.n.cfg.Responder.CheckReceiver(ctx, field, r.ResponderReceiver)
}

func (r responder) Notify(ctx context.Context, m Message) Result {
	if m.Completion != nil {
		// NotifyCompletion does not hand notices to responders; one that
		// got here must not start a capture on it.
		return Result{Err: errors.New("a capture completion notice is not an alert a responder acts on")}
	}
	if r.n.cfg.Responder == nil {
		return Result{Err: errors.New("no responder is configured")}
	}
	// A responder's failure is its own to retry: one call.
	return Result{Err: r.n.cfg.Responder.Trigger(ctx, m.Alert, r.ResponderReceiver)}
}
