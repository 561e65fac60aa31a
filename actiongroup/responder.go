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

func (r responder) Notify(ctx context.Context, m Message) Result {
	if r.n.cfg.Responder == nil {
		return Result{Err: errors.New("no responder is configured")}
	}
	// A responder's failure is its own to retry: one call.
	return Result{Err: r.n.cfg.Responder.Trigger(ctx, m.Alert, r.ResponderReceiver)}
}
