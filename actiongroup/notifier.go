// Package actiongroup delivers alert transitions to an action group's
// receivers: webhooks (Azure's common alert schema or its
// AzureMonitorMetricAlert schema, HMAC-signed), email over SMTP, and
// tripcap responders (which may start a capture). Each kind is a Receiver
// in a file of its own (webhook.go, email.go, responder.go); the Notifier
// retries every delivery in one loop, with exponential backoff on network
// errors, 5xx and 429, within a bounded number of attempts and time, and
// records every attempt in a DeliveryLog.
package actiongroup

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
)

// DeliveryLog records delivery attempts; the control plane backs it with
// the database, per alert.
type DeliveryLog interface {
	RecordDelivery(ctx context.Context, d tripcap.Delivery) error
}

// Responder acts on an alert for a responder receiver (the responder issue
// implements it: e.g. start a packet capture on the alert's host).
type Responder interface {
	Trigger(ctx context.Context, alert tripcap.Alert, receiver tripcap.ResponderReceiver) error
	// CheckReceiver says whether the receiver names a responder (EINVALID
	// naming field.responderId when it does not).
	CheckReceiver(ctx context.Context, field string, receiver tripcap.ResponderReceiver) error
}

// Retry bounds how a failed delivery is tried again.
type Retry struct {
	// Attempts is the most tries of one delivery, the first included (default 5).
	Attempts int
	// Initial is the wait before the second try; it doubles each time up
	// to Max (defaults 1s and 30s). A 429's Retry-After is honoured up to Max.
	Initial, Max time.Duration
	// Total bounds the whole delivery, retries included (default 2m).
	Total time.Duration
	// PerAttempt bounds one HTTP request or SMTP session (default 10s).
	PerAttempt time.Duration
}

func (r *Retry) defaults() {
	if r.Attempts <= 0 {
		r.Attempts = 5
	}
	if r.Initial <= 0 {
		r.Initial = time.Second
	}
	if r.Max <= 0 {
		r.Max = 30 * time.Second
	}
	if r.Total <= 0 {
		r.Total = 2 * time.Minute
	}
	if r.PerAttempt <= 0 {
		r.PerAttempt = 10 * time.Second
	}
}

// Config configures a Notifier.
type Config struct {
	// Targets says where webhooks may be posted (by default nowhere
	// special: see Targets); every webhook goes through a client that
	// checks it when dialing.
	Targets Targets
	// SMTP is needed for email receivers; nil fails them (logged).
	SMTP      *SMTPConfig
	Responder Responder
	// Log records every attempt; nil keeps them only in Notify's result.
	Log   DeliveryLog
	Retry Retry
	// PortalURL is the base of links in payloads (tripcap's UI or API).
	PortalURL string
	Logger    *slog.Logger
	Now       func() time.Time
}

// Notifier delivers alerts. It is safe for concurrent use.
type Notifier struct {
	cfg  Config
	http *http.Client
}

// New returns a notifier.
func New(cfg Config) (*Notifier, error) {
	cfg.Retry.defaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SMTP != nil {
		if err := cfg.SMTP.validate(); err != nil {
			return nil, err
		}
	}
	return &Notifier{cfg: cfg, http: cfg.Targets.client()}, nil
}

// GroupFunc returns an action group by id.
type GroupFunc func(ctx context.Context, id string) (*tripcap.ActionGroup, error)

// NotifyAlert delivers an alert transition to every action group of its
// rule's actions (a.Actions), with each action's webHookProperties, and
// returns every attempt. Groups that cannot be found are logged and skipped.
func (n *Notifier) NotifyAlert(ctx context.Context, a tripcap.Alert, groups GroupFunc) []tripcap.Delivery {
	var (
		mu  sync.Mutex
		out []tripcap.Delivery
		wg  sync.WaitGroup
	)
	for _, act := range a.Actions {
		g, err := groups(ctx, act.ActionGroupID)
		if err != nil {
			n.cfg.Logger.Warn("actiongroup: action group not found", "actionGroupId", act.ActionGroupID, "alert", a.ID, "err", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ds := n.Notify(ctx, g, a, act.WebHookProperties)
			mu.Lock()
			out = append(out, ds...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// Notify delivers one alert transition to every receiver of g, in
// parallel, and returns every attempt made. A disabled group delivers nothing.
func (n *Notifier) Notify(ctx context.Context, g *tripcap.ActionGroup, a tripcap.Alert, custom map[string]string) []tripcap.Delivery {
	if !g.IsEnabled() {
		return nil
	}
	return n.deliverAll(ctx, n.Receivers(g), Message{Group: g, Alert: a, Custom: custom})
}

// deliverAll delivers m to each of rs in parallel, each delivery with an
// id of its own, and returns every attempt made.
func (n *Notifier) deliverAll(ctx context.Context, rs []Receiver, m Message) []tripcap.Delivery {
	var (
		mu  sync.Mutex
		out []tripcap.Delivery
		wg  sync.WaitGroup
	)
	for _, r := range rs {
		wg.Go(func() {
			m := m
			m.ID = tripcap.NewID()
			ds := n.deliver(ctx, r, m)
			mu.Lock()
			out = append(out, ds...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// deliver is the one retry loop: it tries r until it succeeds, fails for
// good, or the attempts or time run out, recording each attempt.
func (n *Notifier) deliver(ctx context.Context, r Receiver, m Message) []tripcap.Delivery {
	g, kind, name := m.Group, r.ReceiverKind(), r.ReceiverName()
	eventID, cond := m.eventID()
	rc := n.cfg.Retry
	ctx, cancel := context.WithTimeout(ctx, rc.Total)
	defer cancel()
	var out []tripcap.Delivery
	wait := rc.Initial
	for attempt := 1; ; attempt++ {
		start := n.cfg.Now()
		actx, acancel := context.WithTimeout(ctx, rc.PerAttempt)
		res := r.Notify(actx, m)
		acancel()
		d := tripcap.Delivery{
			AlertID: eventID, MonitorCondition: cond, ActionGroupID: g.ID, Receiver: name, ReceiverKind: kind,
			Attempt: attempt, Time: start, Duration: n.cfg.Now().Sub(start).Seconds(), StatusCode: res.Status, Success: res.Err == nil,
		}
		if res.Err != nil {
			// An HTTP client's error quotes the URL it posted to, and a
			// webhook's URL carries its key, in the query (?code=) or the
			// path (Slack, Discord, Teams): the record and the log get the
			// error with every URL reduced to its host.
			d.Error = tripcap.RedactWebhookURLs(res.Err.Error())
		}
		next := max(wait, res.RetryAfter)
		next = min(next, rc.Max)
		deadline, _ := ctx.Deadline()
		d.Final = res.Err == nil || !res.Retry || attempt >= rc.Attempts || ctx.Err() != nil || n.cfg.Now().Add(next).After(deadline)
		out = append(out, d)
		if n.cfg.Log != nil {
			// The log is for people; a failure to write it must not stop delivery.
			if err := n.cfg.Log.RecordDelivery(context.WithoutCancel(ctx), d); err != nil {
				n.cfg.Logger.Warn("actiongroup: recording delivery", "err", err)
			}
		}
		if d.Success {
			return out
		}
		lvl := slog.LevelInfo
		if d.Final {
			lvl = slog.LevelWarn
		}
		n.cfg.Logger.Log(ctx, lvl, "actiongroup: delivery failed", "alert", eventID, "group", g.Name, "receiver", name, "kind", kind,
			"attempt", attempt, "status", res.Status, "err", d.Error, "final", d.Final)
		if d.Final {
			return out
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return out
		case <-t.C:
		}
		wait = min(2*wait, rc.Max)
	}
}
