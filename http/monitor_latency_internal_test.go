package http

import (
	"testing"

	"github.com/tripcap/tripcap/controlplane"
)

// One scrape asks every monitor collector; the stats are read once for all.
func TestScrapeStatsReadsOncePerScrape(t *testing.T) {
	calls := 0
	stats := scrapeStats(func() controlplane.MonitorStats {
		calls++
		return controlplane.MonitorStats{PointsIngested: uint64(calls)}
	})
	for range 25 {
		if got := stats().PointsIngested; got != 1 {
			t.Fatalf("stats read %d times within one scrape", got)
		}
	}
	if calls != 1 {
		t.Fatalf("get called %d times, want 1", calls)
	}
}
