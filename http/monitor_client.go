package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/metricstore"
	"github.com/tripcap/tripcap/metricwire"
)

// PostMetrics ships a batch of the agent's host metrics. Its signature is
// what hostmetrics.Collector.Ship sends with.
func (c *Client) PostMetrics(ctx context.Context, b tripcap.MetricBatch) error {
	return c.do(ctx, "POST", "/api/v1/agent/metrics", nil, b, nil)
}

// Metric paths of agent protocol version 2.
const (
	metricsPath      = "/api/v1/agent/metrics"
	metricStreamPath = "/api/v1/agent/metrics/stream"
	// maxAnswerFrames bounds the frames of one answer to a POST of frames.
	maxAnswerFrames = 4096
)

// PostMetricFrames POSTs metricwire frames (agent protocol version 2,
// when the stream cannot be held) and returns the server's answer frames:
// acknowledgements, and a request for history when the server attached
// the host.
func (c *Client) PostMetricFrames(ctx context.Context, frames []byte) ([]metricwire.Frame, error) {
	req, err := c.newRequest(ctx, "POST", metricsPath, nil, bytes.NewReader(frames))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", metricwire.ContentType)
	req.Header.Set("Idempotency-Key", tripcap.NewID())
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", metricsPath, err)
	}
	defer resp.Body.Close()
	c.noteServerProtocol(metricsPath, resp)
	if resp.StatusCode >= 300 {
		return nil, decodeError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxMetricsBody))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of POST %s: %w", metricsPath, err)
	}
	return metricwire.DecodeAll(b, maxAnswerFrames)
}

// ErrNoMetricStream says the metric stream could not be opened as one
// full-duplex exchange (HTTP/1.1 on the way, or a server that has none):
// the agent POSTs its frames instead.
var ErrNoMetricStream = errors.New("the metric stream cannot be held")

// MetricStream is an open metric stream: the agent writes frames to the
// request body it gave OpenMetricStream and reads the server's from Frames.
type MetricStream struct {
	resp *http.Response
	dec  *metricwire.Decoder
}

// Next returns the server's next frame; io.EOF when the server ended the
// stream.
func (s *MetricStream) Next() (metricwire.Frame, error) { return s.dec.Next() }

// Close ends the answer's side of the stream.
func (s *MetricStream) Close() error { return s.resp.Body.Close() }

// OpenMetricStream opens the agent's metric stream (agent protocol
// version 2): one long-lived POST whose body is body, the frames the agent
// writes as it samples, and whose answer carries the server's frames as it
// reads them. It returns once the server has answered the request's
// headers; over HTTP/1.x, or when the server refuses the stream, the error
// wraps ErrNoMetricStream. Ending ctx ends the stream.
func (c *Client) OpenMetricStream(ctx context.Context, body io.Reader) (*MetricStream, error) {
	req, err := c.newRequest(ctx, "POST", metricStreamPath, nil, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", metricwire.ContentType)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", metricStreamPath, err)
	}
	c.noteServerProtocol(metricStreamPath, resp)
	switch {
	case resp.StatusCode >= 300:
		err := decodeError(resp)
		resp.Body.Close()
		if tripcap.ErrorCode(err) == tripcap.EUNAUTHORIZED || tripcap.ErrorCode(err) == tripcap.EFORBIDDEN {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrNoMetricStream, err)
	case resp.ProtoMajor < 2:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: the exchange is %s", ErrNoMetricStream, resp.Proto)
	case resp.Header.Get("Content-Type") != metricwire.ContentType:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: the answer is %q", ErrNoMetricStream, resp.Header.Get("Content-Type"))
	}
	return &MetricStream{resp: resp, dec: metricwire.NewDecoder(resp.Body)}, nil
}

// MetricDefinitions lists the host metrics.
func (c *Client) MetricDefinitions(ctx context.Context) ([]tripcap.MetricDefinition, error) {
	return listAll[tripcap.MetricDefinition](ctx, c, "/api/v1/metric-definitions", url.Values{})
}

// QueryMetrics returns a host's metric over a window; zero fields take the
// server's defaults.
func (c *Client) QueryMetrics(ctx context.Context, q controlplane.MetricsQuery) (*metricstore.Result, error) {
	v := url.Values{}
	if q.Window > 0 {
		v.Set("window", q.Window.String())
	}
	if q.Interval > 0 {
		v.Set("interval", q.Interval.String())
	}
	if q.Aggregation != "" {
		v.Set("aggregation", q.Aggregation)
	}
	if q.Interface != "" {
		v.Set("interface", q.Interface)
	}
	if !q.End.IsZero() {
		v.Set("end", q.End.UTC().Format(time.RFC3339Nano))
	}
	var res metricstore.Result
	return &res, c.do(ctx, "GET", "/api/v1/hosts/"+url.PathEscape(q.Host)+"/metrics/"+url.PathEscape(q.Metric), v, nil, &res)
}

// CreateAlertRule creates a metric alert rule.
func (c *Client) CreateAlertRule(ctx context.Context, r *tripcap.AlertRule) (*tripcap.AlertRule, error) {
	var out tripcap.AlertRule
	return &out, c.do(ctx, "POST", "/api/v1/alert-rules", nil, r, &out)
}

// ListAlertRules lists metric alert rules.
func (c *Client) ListAlertRules(ctx context.Context) ([]*tripcap.AlertRule, error) {
	return listAll[*tripcap.AlertRule](ctx, c, "/api/v1/alert-rules", url.Values{})
}

// GetAlertRule returns a rule by name or id.
func (c *Client) GetAlertRule(ctx context.Context, ref string) (*tripcap.AlertRule, error) {
	var out tripcap.AlertRule
	return &out, c.do(ctx, "GET", "/api/v1/alert-rules/"+url.PathEscape(ref), nil, nil, &out)
}

// UpdateAlertRule replaces a rule's settings with r. ifMatch is the ETag
// the change is based on (tripcap.AlertRule.ETag of the rule as read), or
// "*": the server refuses with EPRECONDITION if the rule changed since.
func (c *Client) UpdateAlertRule(ctx context.Context, ref string, r *tripcap.AlertRule, ifMatch string) (*tripcap.AlertRule, error) {
	var out tripcap.AlertRule
	return &out, c.doWith(ctx, "PUT", "/api/v1/alert-rules/"+url.PathEscape(ref), nil, http.Header{"If-Match": {ifMatch}}, r, &out)
}

// DeleteAlertRule deletes a rule.
func (c *Client) DeleteAlertRule(ctx context.Context, ref string) error {
	return c.do(ctx, "DELETE", "/api/v1/alert-rules/"+url.PathEscape(ref), nil, nil, nil)
}

// CreateActionGroup creates an action group; the answer holds its signing secret.
func (c *Client) CreateActionGroup(ctx context.Context, g *tripcap.ActionGroup) (*tripcap.ActionGroup, error) {
	var out tripcap.ActionGroup
	return &out, c.do(ctx, "POST", "/api/v1/action-groups", nil, g, &out)
}

// ListActionGroups lists action groups.
func (c *Client) ListActionGroups(ctx context.Context) ([]*tripcap.ActionGroup, error) {
	return listAll[*tripcap.ActionGroup](ctx, c, "/api/v1/action-groups", url.Values{})
}

// GetActionGroup returns an action group by name or id.
func (c *Client) GetActionGroup(ctx context.Context, ref string) (*tripcap.ActionGroup, error) {
	var out tripcap.ActionGroup
	return &out, c.do(ctx, "GET", "/api/v1/action-groups/"+url.PathEscape(ref), nil, nil, &out)
}

// UpdateActionGroup replaces an action group's settings with g (its
// signing secret stays); ifMatch as for UpdateAlertRule.
func (c *Client) UpdateActionGroup(ctx context.Context, ref string, g *tripcap.ActionGroup, ifMatch string) (*tripcap.ActionGroup, error) {
	var out tripcap.ActionGroup
	return &out, c.doWith(ctx, "PUT", "/api/v1/action-groups/"+url.PathEscape(ref), nil, http.Header{"If-Match": {ifMatch}}, g, &out)
}

// CreateSilence mutes alerts for a period.
func (c *Client) CreateSilence(ctx context.Context, sl *tripcap.Silence) (*tripcap.Silence, error) {
	var out tripcap.Silence
	return &out, c.do(ctx, "POST", "/api/v1/silences", nil, sl, &out)
}

// ListSilences lists the silences not yet ended, or every one kept.
func (c *Client) ListSilences(ctx context.Context, all bool) ([]*tripcap.Silence, error) {
	v := url.Values{}
	if all {
		v.Set("all", "true")
	}
	return listAll[*tripcap.Silence](ctx, c, "/api/v1/silences", v)
}

// ExpireSilence ends a silence now.
func (c *Client) ExpireSilence(ctx context.Context, id string) (*tripcap.Silence, error) {
	var out tripcap.Silence
	return &out, c.do(ctx, "DELETE", "/api/v1/silences/"+url.PathEscape(id), nil, nil, &out)
}

// DeleteActionGroup deletes an action group.
func (c *Client) DeleteActionGroup(ctx context.Context, ref string) error {
	return c.do(ctx, "DELETE", "/api/v1/action-groups/"+url.PathEscape(ref), nil, nil, nil)
}

// ListAlerts lists alerts, newest first.
func (c *Client) ListAlerts(ctx context.Context, q controlplane.AlertQuery) ([]*tripcap.Alert, error) {
	v := url.Values{}
	for k, s := range map[string]string{"rule": q.Rule, "host": q.Host, "state": q.State} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return listAll[*tripcap.Alert](ctx, c, "/api/v1/alerts", v)
}

// GetAlert returns an alert with its delivery log.
func (c *Client) GetAlert(ctx context.Context, id string) (*controlplane.AlertDetail, error) {
	var out controlplane.AlertDetail
	return &out, c.do(ctx, "GET", "/api/v1/alerts/"+url.PathEscape(id), nil, nil, &out)
}
