package responder

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

func TestPreTriggerCountsFromFiring(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	for _, c := range []struct {
		seconds int32
		fired   time.Time
		want    int32
	}{
		{10, now.Add(-2500 * time.Millisecond), 14},
		{10, now.Add(-2 * time.Second), 13},
		{0, now.Add(-2 * time.Second), 0},
		{10, time.Time{}, 10},
		{10, now.Add(time.Second), 10},
		{10, now.Add(-2 * time.Minute), 10},
		{tripcap.MaxPreTriggerSeconds, now.Add(-5 * time.Second), tripcap.MaxPreTriggerSeconds},
	} {
		if got := preTriggerFrom(c.seconds, c.fired, now); got != c.want {
			t.Errorf("preTriggerFrom(%d, %s before) = %d, want %d", c.seconds, now.Sub(c.fired), got, c.want)
		}
	}
}
