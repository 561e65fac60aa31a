package agent

import (
	"context"
	"sync"
	"time"
)

// MetricsShipInterval is how often the agent ships its buffered metric
// points. The server evaluates rules on the data's clock, so this bounds
// how late an alert can be: at one second, a breach under a 1 s rule turns
// into a running capture within about two seconds (bench/trigger), at the
// cost of one small request per host a second.
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
