package responder

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/responder/payload"
)

func TestCauseCarriesTheAlertTime(t *testing.T) {
	fired := time.Date(2026, 12, 1, 2, 3, 4, 567_000_000, time.UTC)
	c := causeOf(&tripcap.Responder{Name: "pc"}, &tripcap.ResponderRun{ID: "r1"}, payload.Trigger{FiredAt: fired, Summary: "Network Out Total > 1000000: host web.example.com"})
	got, ok := tripcap.ParseAlertComment(c)
	if !ok || !got.Equal(fired) {
		t.Fatalf("cause %q gives the alert time %v, %v; want %v", c, got, ok, fired)
	}
}
