package tripcap_test

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// Each wait is in the upper half of a doubling bound, never above Max;
// Reset starts from Min again.
func TestBackoff(t *testing.T) {
	b := tripcap.Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for round := range 2 {
		bound := 100 * time.Millisecond
		for i := range 8 {
			d := b.Next()
			if d < bound/2 || d > bound {
				t.Fatalf("round %d, attempt %d: waits %s, want within [%s, %s]", round, i, d, bound/2, bound)
			}
			bound = min(2*bound, time.Second)
		}
		b.Reset()
	}
	var zero tripcap.Backoff
	if d := zero.Next(); d < 500*time.Millisecond || d > time.Second {
		t.Fatalf("the zero value's first wait is %s, want 0.5–1 s", d)
	}
	// Max below Min: Min bounds every wait.
	odd := tripcap.Backoff{Min: time.Second, Max: time.Millisecond}
	for range 3 {
		if d := odd.Next(); d > time.Second || d < 500*time.Millisecond {
			t.Fatalf("Max below Min: waits %s", d)
		}
	}
}
