package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tripcap/tripcap/afpacket"
)

// newCaptureEngine builds and opens the agent's AF_PACKET engine, with the
// pre-trigger buffer (on by default), and exports the buffer's memory use.
func newCaptureEngine(ctx context.Context, o *agentOptions, log *slog.Logger, reg prometheus.Registerer) (*afpacket.Engine, error) {
	e := afpacket.NewEngine(afpacket.Config{
		CaptureDir: o.captureDir,
		Logger:     log,
		PreTrigger: afpacket.PreTriggerConfig{Seconds: o.preTriggerSeconds, Bytes: o.preTriggerBytes},
	})
	if err := e.Open(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		// Without the buffer the agent still captures from the trigger on
		// (a capture asking for pre-trigger packets says it got none);
		// without the agent nothing is captured at all.
		log.Error("pre-trigger buffer not started; captures start at their trigger", "err", err)
		_ = e.Close()
		e = afpacket.NewEngine(afpacket.Config{CaptureDir: o.captureDir, Logger: log})
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tripcap_pretrigger_buffer_bytes", Help: "Memory the pre-trigger buffer holds."},
			func() float64 { return float64(e.PreTriggerStats().AllocatedBytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tripcap_pretrigger_buffer_capacity_bytes", Help: "Bound on the pre-trigger buffer's memory."},
			func() float64 { return float64(e.PreTriggerStats().CapacityBytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tripcap_pretrigger_buffer_packets", Help: "Packets in the pre-trigger buffer."},
			func() float64 { return float64(e.PreTriggerStats().Packets) }),
	)
	return e, nil
}
