package remotewrite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/tripcap/tripcap"
)

// DefaultReadTimeout bounds a chart's remote read: a slow store makes a
// chart fail after it, never an alert wait (rules read only memory).
const DefaultReadTimeout = 10 * time.Second

// maxReadBody bounds one query_range answer (10,000 points of one series
// take well under 1 MB).
const maxReadBody = 8 << 20

// Reader reads series back from a Prometheus-compatible store's HTTP
// API (GET /api/v1/query_range), as tripcap.MetricRangeReader.
type Reader struct {
	base   string // without a trailing slash
	name   string
	client *client
	log    *slog.Logger

	reads, errors atomic.Uint64
}

// NewReader returns a reader of the store whose API is under base
// (Prometheus: its URL, http://HOST:9090).
func NewReader(base string, hc HTTPConfig, log *slog.Logger) (*Reader, error) {
	u, err := checkURL("remote read url", base)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	c, err := newClient(hc, DefaultReadTimeout)
	if err != nil {
		return nil, err
	}
	b := strings.TrimRight(u.String(), "/")
	return &Reader{base: b, name: tripcap.RedactURL(b), client: c, log: log.With("component", "remoteread", "url", tripcap.RedactURL(b))}, nil
}

// Name is the store's URL without credentials.
func (r *Reader) Name() string { return r.name }

// rangeQueries are the PromQL of a range: the aggregation's and the
// points' count. Each series' *_over_time is reduced across series, since
// a host whose labels changed has more than one: the range [step-1ms]
// holds exactly the seconds (t-step, t] whether the store's ranges are
// closed (Prometheus 2) or left-open (3). Average is sum/count, which is
// avg_over_time for one series and the right mean across several.
func rangeQueries(m tripcap.MetricRange) (value, count string, err error) {
	def, ok := m.Metric.Definition()
	if !ok {
		return "", "", tripcap.Errorf(tripcap.EINVALID, "metric: %q is not a metric", m.Metric)
	}
	var sel strings.Builder
	fmt.Fprintf(&sel, "{__name__=%s,%s=%s,%s=%s", strconv.Quote(SeriesName(def)), LabelHostID, strconv.Quote(m.HostID), LabelInterface, strconv.Quote(m.Interface))
	if def.Direction != "" {
		fmt.Fprintf(&sel, ",%s=%s", LabelDirection, strconv.Quote(def.Direction))
	}
	fmt.Fprintf(&sel, "}[%dms]", m.Step.Milliseconds()-1)
	s := sel.String()
	count = "sum(count_over_time(" + s + "))"
	switch m.Aggregation {
	case tripcap.AggregationTotal, tripcap.AggregationAverage:
		value = "sum(sum_over_time(" + s + "))"
	case tripcap.AggregationMinimum:
		value = "min(min_over_time(" + s + "))"
	case tripcap.AggregationMaximum:
		value = "max(max_over_time(" + s + "))"
	case tripcap.AggregationCount:
	default:
		return "", "", tripcap.Errorf(tripcap.EINVALID, "aggregation: %q is not one of Average, Minimum, Maximum, Total, Count", m.Aggregation)
	}
	return value, count, nil
}

// ReadRange answers m from the store: one value per interval that has points.
func (r *Reader) ReadRange(ctx context.Context, m tripcap.MetricRange) ([]tripcap.RangeValue, error) {
	if m.Step < time.Second || m.Step%time.Second != 0 || m.Last.Before(m.First) {
		return nil, tripcap.Errorf(tripcap.EINVALID, "range: step %s from %s to %s", m.Step, m.First, m.Last)
	}
	valueQ, countQ, err := rangeQueries(m)
	if err != nil {
		return nil, err
	}
	r.reads.Add(1)
	var values, counts map[int64]float64
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { counts, err = r.queryRange(gctx, countQ, m); return err })
	if valueQ != "" {
		g.Go(func() (err error) { values, err = r.queryRange(gctx, valueQ, m); return err })
	}
	if err := g.Wait(); err != nil {
		r.errors.Add(1)
		r.log.Warn("remote read failed", "err", err)
		return nil, tripcap.Errorf(tripcap.EUNAVAILABLE, "remote read from %s: %v", r.name, err)
	}
	var out []tripcap.RangeValue
	step := m.Step.Milliseconds()
	for ms := m.First.UnixMilli(); ms <= m.Last.UnixMilli(); ms += step {
		c := counts[ms]
		if c <= 0 {
			continue
		}
		v := c
		switch m.Aggregation {
		case tripcap.AggregationCount:
		case tripcap.AggregationAverage:
			v = values[ms] / c
		default:
			var ok bool
			if v, ok = values[ms]; !ok {
				continue
			}
		}
		out = append(out, tripcap.RangeValue{End: time.UnixMilli(ms).UTC(), Value: v, Count: int64(math.Round(c))})
	}
	return out, nil
}

// queryRange runs one query_range and returns its values by timestamp (ms).
func (r *Reader) queryRange(ctx context.Context, query string, m tripcap.MetricRange) (map[int64]float64, error) {
	q := url.Values{}
	q.Set("query", query)
	q.Set("start", strconv.FormatInt(m.First.Unix(), 10))
	q.Set("end", strconv.FormatInt(m.Last.Unix(), 10))
	q.Set("step", strconv.FormatInt(int64(m.Step/time.Second), 10))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/api/v1/query_range?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if err := r.client.authorize(req); err != nil {
		return nil, err
	}
	resp, err := r.client.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /api/v1/query_range: %w", urlErr(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReadBody+1))
	if err != nil {
		return nil, fmt.Errorf("query_range: reading the answer: %w", err)
	}
	if len(body) > maxReadBody {
		return nil, fmt.Errorf("query_range: answer larger than %d bytes", maxReadBody)
	}
	pts, err := ParseQueryRange(body)
	if err != nil {
		return nil, fmt.Errorf("query_range (%s): %w", resp.Status, err)
	}
	out := make(map[int64]float64, len(pts))
	for _, p := range pts {
		out[p.MS] = p.Value
	}
	return out, nil
}

// PromPoint is one value of a query_range answer.
type PromPoint struct {
	MS    int64 // milliseconds since the epoch
	Value float64
}

// ParseQueryRange reads a Prometheus query_range answer of at most one
// series (the queries reduce across series) and returns its points; an
// error answer is returned as an error with the store's message.
func ParseQueryRange(body []byte) ([]PromPoint, error) {
	var a struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Values [][2]json.RawMessage `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("not a Prometheus API answer: %w", err)
	}
	if a.Status != "success" {
		return nil, fmt.Errorf("%s: %s", clip(a.ErrorType), clip(a.Error))
	}
	if a.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("result type %q, want matrix", clip(a.Data.ResultType))
	}
	if len(a.Data.Result) > 1 {
		return nil, fmt.Errorf("%d series, want at most one", len(a.Data.Result))
	}
	var out []PromPoint
	for _, s := range a.Data.Result {
		for i, v := range s.Values {
			var ts float64
			var val string
			if err := json.Unmarshal(v[0], &ts); err != nil || math.IsNaN(ts) || math.IsInf(ts, 0) || math.Abs(ts) > 1e12 {
				return nil, fmt.Errorf("values[%d]: time %s is not a unix time", i, clip(string(v[0])))
			}
			if err := json.Unmarshal(v[1], &val); err != nil {
				return nil, fmt.Errorf("values[%d]: value %s is not a string", i, clip(string(v[1])))
			}
			f, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return nil, fmt.Errorf("values[%d]: value %q is not a number", i, clip(val))
			}
			out = append(out, PromPoint{MS: int64(math.Round(ts * 1000)), Value: f})
		}
	}
	return out, nil
}

// Collectors are the reader's metrics, for the server's /metrics.
func (r *Reader) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tripcap_remote_read_queries_total", Help: "Chart queries answered in part from the remote store."},
			func() float64 { return float64(r.reads.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tripcap_remote_read_errors_total", Help: "Chart queries the remote store could not answer."},
			func() float64 { return float64(r.errors.Load()) }),
	}
}

// urlErr is a client error without its URL (the query string is long, and
// a URL may carry what should not be logged).
func urlErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
