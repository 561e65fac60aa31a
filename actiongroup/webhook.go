package actiongroup

import (
	"bytes"
	"context"
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

// Check has nothing to check: any server can post.
func (webhook) Check(context.Context, string) error { return nil }

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
	resp, err := w.n.cfg.HTTPClient.Do(req)
	if err != nil {
		return Result{Err: fmt.Errorf("posting webhook: %w", err), Retry: true}
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
