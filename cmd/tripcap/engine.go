package main

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tripcap/tripcap"
)

// newCaptureEngine builds the agent's capture engine.
func newCaptureEngine(captureDir string, log *slog.Logger, reg prometheus.Registerer) (tripcap.CaptureEngine, error) {
	panic("wired when the afpacket engine lands")
}
