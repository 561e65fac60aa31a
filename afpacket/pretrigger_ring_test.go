//go:build linux

package afpacket

import (
	"context"
	"slices"
	"testing"

	"github.com/tripcap/tripcap/internal/netns"
)

// TestPreTriggerRingReported: the engine reports its buffer for the agent's
// inventory (seconds, memory bound, the interfaces it reads), and nothing
// when it has none.
func TestPreTriggerRingReported(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	e, _ := newTestEngine(t, Config{PreTrigger: PreTriggerConfig{Seconds: 7, Bytes: 8 << 20}})
	if err := n.b.Do(func() error { return e.Open(context.Background()) }); err != nil {
		t.Fatal(err)
	}
	r := e.PreTriggerRing()
	if r.Seconds != 7 || r.CapacityBytes <= 0 || r.CapacityBytes > 8<<20 || !slices.Contains(r.Interfaces, n.link.B.Name) || !slices.IsSorted(r.Interfaces) {
		t.Fatalf("ring %+v, want 7 s, at most 8 MiB, on %s", r, n.link.B.Name)
	}
	off, _ := newTestEngine(t, Config{})
	if r := off.PreTriggerRing(); r.Seconds != 0 || r.CapacityBytes != 0 || r.Interfaces != nil {
		t.Fatalf("no buffer reported as %+v", r)
	}
}
