package controlplane

import (
	"context"
	"time"

	"github.com/tripcap/tripcap"
)

// MetricInterfaces lists the interfaces a host (name, id or VM resource
// id) has series of for a metric: the values of the metric's interface
// dimension, for queries split by it (Azure's $filter interface eq '*').
func (m *MetricIngest) MetricInterfaces(ctx context.Context, host, metric string) ([]string, error) {
	if _, err := tripcap.AuthorizeSome(ctx, tripcap.PermRead); err != nil {
		return nil, err
	}
	id, err := tripcap.ParseMetric("metric", metric)
	if err != nil {
		return nil, err
	}
	h, err := m.readableHost(ctx, host)
	if err != nil {
		return nil, err
	}
	return m.metrics.Interfaces(h.ID, id), nil
}

// MetricRetention says how long the metric store keeps 1-second points
// and 1-minute rollups.
func (m *MetricIngest) MetricRetention() (raw, rollup time.Duration) {
	cfg := m.metrics.Config()
	return cfg.Raw, cfg.Rollup
}
