package actiongroup

import (
	"context"
	"time"

	"github.com/tripcap/tripcap"
)

// A Receiver delivers to one receiver of an action group. Each kind is one
// file (webhook.go, email.go, responder.go) with its Notify; its fields and
// their Validate are the tripcap.ReceiverConfig it wraps. A new kind is a
// new file, a case in Receivers, and its array on tripcap.ActionGroup.
type Receiver interface {
	tripcap.ReceiverConfig
	// Check says whether this server can deliver to the receiver (what
	// the kind needs is configured, what it names exists), before a group
	// holding it is stored; field names it (emailReceivers[0]).
	Check(ctx context.Context, field string) error
	// Notify makes one attempt at delivering m; deliver, the one retry
	// loop, decides from the Result whether another follows.
	Notify(ctx context.Context, m Message) Result
}

// Message is what one delivery carries to a receiver.
type Message struct {
	Group *tripcap.ActionGroup
	// Alert and Custom are an alert transition and its custom properties;
	// Completion, when set, is a capture completion notice instead.
	Alert      tripcap.Alert
	Custom     map[string]string
	Completion *CaptureCompleted
	// ID names the delivery, the same in each of its attempts, so a
	// receiver can tell a retry from a new alert.
	ID string
}

// eventID and condition name what m tells of in the delivery log: the
// alert and its transition, or the completed capture.
func (m Message) eventID() (string, tripcap.MonitorCondition) {
	if m.Completion != nil {
		return m.Completion.Data.EventID, ""
	}
	return m.Alert.ID, m.Alert.MonitorCondition
}

// Result is the outcome of one attempt.
type Result struct {
	// Status is the receiver's answer code (HTTP status, SMTP reply), 0 when none.
	Status int
	Err    error
	// Retry says the failure may pass (network, 5xx, 429, SMTP 4xx).
	Retry      bool
	RetryAfter time.Duration
}

// Receivers returns the deliverers of g's receivers, every kind.
func (n *Notifier) Receivers(g *tripcap.ActionGroup) []Receiver {
	cs := g.Receivers()
	out := make([]Receiver, 0, len(cs))
	for _, c := range cs {
		switch c := c.(type) {
		case tripcap.WebhookReceiver:
			out = append(out, webhook{WebhookReceiver: c, n: n})
		case tripcap.EmailReceiver:
			out = append(out, email{EmailReceiver: c, n: n})
		case tripcap.ResponderReceiver:
			out = append(out, responder{ResponderReceiver: c, n: n})
		default:
			// A kind added to tripcap.ActionGroup and not here: say so in
			// the delivery log rather than dropping it unseen.
			out = append(out, unknown{c})
		}
	}
	return out
}

// Check says whether this server can deliver to every receiver of g; the
// error names the first that it cannot.
func (n *Notifier) Check(ctx context.Context, g *tripcap.ActionGroup) error {
	rs := n.Receivers(g)
	cs := make([]tripcap.ReceiverConfig, len(rs))
	for i, r := range rs {
		cs[i] = r
	}
	for i, field := range tripcap.ReceiverFields("", cs) {
		if err := rs[i].Check(ctx, field); err != nil {
			return err
		}
	}
	return nil
}

// unknown is a receiver kind this package does not deliver to.
type unknown struct{ tripcap.ReceiverConfig }

func (u unknown) Check(_ context.Context, field string) error {
	return tripcap.Errorf(tripcap.EINVALID, "%s: this server does not deliver to receivers of kind %s", field, u.ReceiverKind())
}

func (u unknown) Notify(context.Context, Message) Result {
	return Result{Err: tripcap.Errorf(tripcap.EINTERNAL, "receivers of kind %s are not delivered by this server", u.ReceiverKind())}
}
