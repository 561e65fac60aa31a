package actiongroup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/tripcap/tripcap"
)

// maxResponseRead bounds how much of a receiver's answer is read (for the
// log); the rest is discarded.
const maxResponseRead = 4096

// webhook posts the alert as JSON (the common alert schema, or Azure's
// AzureMonitorMetricAlert schema), HMAC-signed with the group's secret.
type webhook struct {
	tripcap.WebhookReceiver
	n *Notifier
}

// Check refuses a target the server may not post to (Targets).
func (w webhook) Check(_ context.Context, field string) error {
	return w.n.CheckWebhookTarget(field+".serviceUri", w.ServiceURI)
}

// CheckWebhookTarget says whether a webhook may post to uri (EINVALID
// naming field when not): a responder's own notify webhooks are checked
// with it too.
func (n *Notifier) CheckWebhookTarget(field, uri string) error {
	return n.cfg.Targets.CheckURL(field, uri)
}

func (w webhook) Notify(ctx context.Context, m Message) Result {
	var body []byte
	var err error
	if m.Completion != nil {
		body, err = completionPayload(m, w.UseCommonAlertSchema)
	} else {
		body, err = Payload(m.Alert, m.Custom, w.UseCommonAlertSchema, w.n.cfg.PortalURL)
	}
	if err != nil {
		return Result{Err: fmt.Errorf("building payload: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.ServiceURI, bytes.NewReader(body))
	if err != nil {
		return Result{Err: fmt.Errorf("webhook request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "tripcap/"+tripcap.Version)
	req.Header.Set(HeaderDelivery, m.ID)
	if secret := m.Group.SigningSecret; secret != "" {
		// Signed at each attempt, so a retry carries a fresh timestamp.
		ts := w.n.cfg.Now()
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
		req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	}
	resp, err := w.n.http.Do(req)
	if err != nil {
		// A refused target stays refused: no retry.
		var te *TargetError
		return Result{Err: fmt.Errorf("posting webhook: %w", err), Retry: !errors.As(err, &te)}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseRead))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	res := Result{Status: resp.StatusCode}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return res
	}
	res.Err = fmt.Errorf("webhook answered %s: %s", resp.Status, bytes.TrimSpace(snippet))
	res.Retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout
	if s := resp.Header.Get("Retry-After"); s != "" {
		if sec, err := strconv.Atoi(s); err == nil && sec >= 0 {
			res.RetryAfter = time.Duration(sec) * time.Second
		} else if t, err := http.ParseTime(s); err == nil {
			res.RetryAfter = time.Until(t)
		}
	}
	return res
}
