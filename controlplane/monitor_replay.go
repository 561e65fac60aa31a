package controlplane

import (
	"context"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/alerting"
)

// DefaultReplayWindow is how far back ReplayRule looks unless told.
const DefaultReplayWindow = time.Hour

// ReplayRule shows what a rule, saved or only being edited, would have
// done on a host over the last window of stored metrics (default an hour,
// at most what the metric store keeps): each evaluation's value against
// the threshold and where it would have fired. Nothing is stored or
// delivered. The caller needs read access to the host.
func (m *MetricIngest) ReplayRule(ctx context.Context, r *tripcap.AlertRule, host string, window time.Duration) (*alerting.Replay, error) {
	if _, err := tripcap.AuthorizeSome(ctx, tripcap.PermRead); err != nil {
		return nil, err
	}
	rule := *r
	rule.ApplyDefaults()
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	if window == 0 {
		window = DefaultReplayWindow
	}
	if keep := m.metrics.Config().Rollup; window < 0 || window > keep {
		return nil, tripcap.Errorf(tripcap.EINVALID, "window: %s is outside 0..%s (the metrics kept)", window, keep)
	}
	if host == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "host: required (the host to replay the rule on)")
	}
	h, err := tripcap.FindHostByRef(ctx, m.hosts, host)
	if err == nil {
		err = tripcap.AuthorizeAt(ctx, tripcap.PermRead, h, tripcap.NoHost(host))
	}
	if err != nil {
		return nil, err
	}
	now := m.now()
	return m.eval.Replay(ctx, &rule, h, now.Add(-window), now)
}
