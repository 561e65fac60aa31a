package tripcap

import (
	"context"
	"time"
)

// MetricSink takes the points the server stored, to ship them elsewhere (a
// Prometheus-compatible store, by remote write). SinkPoints must return at
// once: it is called on the ingest path, before alerts are evaluated, so a
// sink queues what it can and drops (and counts) the rest. It must not
// keep points: the caller owns the slice.
type MetricSink interface {
	SinkPoints(hostID string, points []MetricPoint)
}

// MetricRange asks a remote store for one series of a host at a step: the
// values of the intervals (End-Step, End] for End from First to Last in
// steps of Step, as the in-memory store's query buckets them.
type MetricRange struct {
	HostID      string
	Metric      MetricID
	Interface   string
	Aggregation Aggregation
	First, Last time.Time
	Step        time.Duration
}

// RangeValue is one interval of a MetricRange: the aggregation's value and
// the number of points it was computed from (intervals without points are
// absent).
type RangeValue struct {
	End   time.Time
	Value float64
	Count int64
}

// MetricRangeReader reads series from a remote store, for charts of
// windows older than the in-memory store holds. Name says which store (a
// URL without credentials), for errors.
type MetricRangeReader interface {
	ReadRange(ctx context.Context, r MetricRange) ([]RangeValue, error)
	Name() string
}
