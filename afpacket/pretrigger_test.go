//go:build linux

package afpacket

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/trafficgen"
)

// TestPreTriggerSeam starts a session with preTriggerSeconds in the middle
// of a steady flow: the file starts with the buffered packets of the last
// second and continues with live ones, with no gap and no duplicate at the
// seam; the session's filter applies to the buffered packets too.
func TestPreTriggerSeam(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	e, dir := newTestEngine(t, Config{PreTrigger: PreTriggerConfig{Seconds: 5, Bytes: 8 << 20}})
	if err := n.b.Do(func() error { return e.Open(context.Background()) }); err != nil {
		t.Fatal(err)
	}
	sink(t, n.b, "udp", n.bAddr(7000))
	sink(t, n.b, "udp", n.bAddr(7001))

	// Two flows, one packet every 2 ms each, for 2.5 s: the session keeps
	// the one to port 7000.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	flow := func(port uint16, id uint32) {
		defer wg.Done()
		_ = n.a.Do(func() error {
			_, err := trafficgen.Send(ctx, trafficgen.Flow{Network: "udp", Dst: n.bAddr(port), Count: 1250, PayloadSize: 80, Interval: 2 * time.Millisecond, ID: id})
			return err
		})
	}
	// A plain session from before the flow starts is the reference for
	// what the buffer should give.
	ref := startIn(t, n.b, e, spec(dir, "ref.cap", tripcap.PacketCaptureParameters{Filters: []tripcap.PacketCaptureFilter{{Protocol: "UDP", LocalPort: "7000"}}}), SessionOptions{})
	wg.Add(2)
	go flow(7000, 1)
	go flow(7001, 2)
	time.Sleep(1500 * time.Millisecond)

	p := tripcap.PacketCaptureParameters{PreTriggerSeconds: 1, Filters: []tripcap.PacketCaptureFilter{{Protocol: "UDP", LocalPort: "7000"}}}
	s := startIn(t, n.b, e, spec(dir, "pre.cap", p), SessionOptions{})
	wg.Wait()
	time.Sleep(100 * time.Millisecond)
	st := e.PreTriggerStats()
	res := stopAndWait(t, s, tripcap.StopManuallyStopped)
	refRes := stopAndWait(t, ref, tripcap.StopManuallyStopped)
	if res.Message != "" {
		t.Errorf("message %q", res.Message)
	}

	pkts := readCapture(t, res.Files[0])
	ids, seqs := stamps(pkts)
	if len(seqs) != len(pkts) {
		t.Fatalf("%d of %d packets are generated ones", len(seqs), len(pkts))
	}
	for _, id := range ids {
		if id != 1 {
			t.Fatalf("flow %d is in the file; the filter keeps flow 1 only", id)
		}
	}
	before := 0
	for i, p := range pkts {
		if p.ts.Before(res.StartTime) {
			before++
		}
		if i > 0 && p.ts.Before(pkts[i-1].ts) {
			t.Errorf("packet %d is older than the one before it", i)
		}
		if i > 0 && seqs[i] != seqs[i-1]+1 {
			t.Fatalf("packet %d: sequence %d follows %d (seam at packet %d)", i, seqs[i], seqs[i-1], before)
		}
	}
	// The buffered part is what the reference captured in the second
	// before the start (a millisecond's margin at the window's far edge,
	// where the two sockets' timestamps of a packet may straddle it).
	window := res.StartTime.Add(-time.Second)
	refPkts := readCapture(t, refRes.Files[0])
	_, refSeqs := stamps(refPkts)
	inFile := map[uint64]bool{}
	for i := range before {
		inFile[seqs[i]] = true
	}
	want := 0
	for i, p := range refPkts {
		switch {
		case p.ts.Before(window.Add(-time.Millisecond)) || !p.ts.Before(res.StartTime):
		case p.ts.Before(window.Add(time.Millisecond)):
			delete(inFile, refSeqs[i]) // at the edge: either way
		default:
			want++
			if !inFile[refSeqs[i]] {
				t.Errorf("packet %d (at start %v) is not in the pre-trigger part", refSeqs[i], p.ts.Sub(res.StartTime))
			}
			delete(inFile, refSeqs[i])
		}
	}
	if len(inFile) > 0 {
		t.Errorf("%d pre-trigger packets are not from the second before the start", len(inFile))
	}
	if before < 100 || want < 100 {
		t.Errorf("%d packets from before the start (%d by the reference); the flow was too slow to test the buffer", before, want)
	}
	if seqs[len(seqs)-1] != 1249 {
		t.Errorf("the last packet is %d, want 1249", seqs[len(seqs)-1])
	}
	// The result says what the pre-trigger part holds.
	if pt := res.Stats.PreTrigger; pt == nil || pt.RequestedSeconds != 1 || pt.Packets != uint64(before) || pt.Seconds <= 0.5 || pt.Seconds > 1 || len(pt.Notes) != 0 {
		t.Errorf("pre-trigger result %+v, want 1 s asked and the %d packets before the start", pt, before)
	}
	if !st.Enabled || st.Packets < 2*1250 || st.AllocatedBytes > st.CapacityBytes || st.CapacityBytes > 8<<20 || st.UsedBytes == 0 {
		t.Errorf("pre-trigger stats %+v", st)
	}
}

// TestPreTriggerBounds keeps the buffer within its bytes and seconds.
func TestPreTriggerBounds(t *testing.T) {
	r := &preRing{keep: time.Second, chunkSize: 4096, maxChunks: 4}
	data := make([]byte, 1000)
	base := time.Now().UnixNano()
	for i := range 100 {
		r.append(1, i%2 == 0, base+int64(i)*int64(time.Millisecond), 1000, data)
	}
	st := r.stats()
	if st.AllocatedBytes > 4*4096 || st.Packets == 0 || st.Packets > 16 {
		t.Errorf("after 100 KB into a 16 KiB ring: %+v", st)
	}
	// The newest packets are kept.
	recs := r.snapshot(base, base+int64(time.Hour), map[int]int{1: 0}, func(int, []byte, bool) bool { return true })
	if len(recs) != st.Packets || recs[len(recs)-1].ts != base+99*int64(time.Millisecond) {
		t.Errorf("snapshot has %d records ending at %d", len(recs), recs[len(recs)-1].ts-base)
	}
	// Ten seconds on, the old chunks are evicted as new ones start.
	later := base + int64(10*time.Second)
	for i := range 8 {
		r.append(1, false, later+int64(i), 1000, data)
	}
	recs = r.snapshot(base, later, map[int]int{1: 0}, func(int, []byte, bool) bool { return true })
	if len(recs) != 0 {
		t.Errorf("%d records older than the window survive", len(recs))
	}
	// Direction and filtering reach the matcher.
	var out, in int
	r.snapshot(0, later+int64(time.Hour), map[int]int{1: 0}, func(_ int, _ []byte, outgoing bool) bool {
		if outgoing {
			out++
		} else {
			in++
		}
		return false
	})
	if in == 0 || out != 0 {
		t.Errorf("matcher saw %d incoming, %d outgoing; want only incoming after eviction", in, out)
	}
}

// TestPreTriggerUnmetIsReported: a capture asking for packets from before
// its start on an engine without the buffer says so in its statistics,
// while it runs and when it ends.
func TestPreTriggerUnmetIsReported(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	e, dir := newTestEngine(t, Config{})
	p := tripcap.PacketCaptureParameters{PreTriggerSeconds: 10}
	s := startIn(t, n.b, e, spec(dir, "unmet.cap", p), SessionOptions{})
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().PreTrigger == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if pt := s.Stats().PreTrigger; pt == nil || pt.RequestedSeconds != 10 || pt.Packets != 0 || len(pt.Notes) != 1 || !strings.Contains(pt.Notes[0], "not enabled") {
		t.Fatalf("live pre-trigger result %+v, want 10 s asked, none given, and why", pt)
	}
	res := stopAndWait(t, s, tripcap.StopManuallyStopped)
	if pt := res.Stats.PreTrigger; pt == nil || len(pt.Notes) != 1 || !strings.Contains(res.Message, "not enabled") {
		t.Fatalf("final pre-trigger result %+v, message %q", pt, res.Message)
	}
}
