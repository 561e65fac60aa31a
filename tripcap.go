// Package tripcap holds the domain of tripcap: hosts, network watchers, packet
// captures, and the interfaces the pipeline stages implement. It depends on
// nothing but the standard library; every subpackage adapts one dependency or
// one stage (metric → rule → alert → responder → capture → file → triage) to it.
package tripcap

import (
	"context"
	"time"
)

// Version is the build's version, set with -ldflags "-X github.com/tripcap/tripcap.Version=…".
var Version = "0.1.0-dev"

// Commit and BuildDate name the build's source, set with -ldflags -X like
// Version; empty, the binary reports what Go stamped from the VCS.
var (
	Commit    = ""
	BuildDate = ""
)

// Sleep waits for d or until ctx ends, whichever is first; false when ctx
// ended. Retry and backoff loops of every stage wait with it.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
