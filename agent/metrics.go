package agent

import (
	"context"
	"sync"
	"time"
)

// MetricsShipInterval is the longest the agent waits to ship buffered
// metric points; each second's sample is shipped as soon as it is taken.
// The server evaluates rules on the data's clock, so shipping at the sample
// is what turns a breach into a running capture within a few hundred
// milliseconds (bench/trigger), at the cost of one small request per host a
// second.
const MetricsShipInterval = time.Second

// metricsLoop samples the host's metrics every second and ships them until
// ctx ends; it does nothing without Config.Metrics. Shipping failures are
// retried with backoff by the collector, which keeps the points meanwhile
// (bounded), so a server outage loses no data short of that bound.
func (a *Agent) metricsLoop(ctx context.Context) {
	hm := a.cfg.Metrics
	if hm == nil {
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = hm.Run(ctx) }()
	_ = hm.Ship(ctx, MetricsShipInterval, a.client.PostMetrics)
	wg.Wait()
}
