package tripcap

import (
	"testing"
	"time"
)

func TestLatencyHistogram(t *testing.T) {
	var h LatencyHistogram
	h.Observe(500*time.Microsecond, 1)  // ≤ 1 ms
	h.Observe(time.Second, 3)           // ≤ 1 s, exactly on the bound
	h.Observe(1001*time.Millisecond, 2) // ≤ 1.5 s
	h.Observe(2*time.Minute, 1)         // over every bound
	h.Observe(time.Hour, 0)             // nothing
	s := h.Snapshot()
	if s.Count != 7 {
		t.Fatalf("count %d, want 7", s.Count)
	}
	c := s.Cumulative()
	if c[0.001] != 1 || c[1] != 4 || c[1.5] != 6 || c[60] != 6 {
		t.Fatalf("cumulative %v", c)
	}
	if want := 0.0005 + 3 + 2.002 + 120; s.SumSeconds < want-1e-6 || s.SumSeconds > want+1e-6 {
		t.Fatalf("sum %v, want %v", s.SumSeconds, want)
	}
}
