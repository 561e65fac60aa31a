//go:build linux

package afpacket

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/testenv"
	"github.com/tripcap/tripcap/internal/trafficgen"
)

// TestExactCounts captures a known number of packets in both directions and
// finds exactly them in the file, by capinfos and by reading it.
func TestExactCounts(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	e, dir := newTestEngine(t, Config{})
	sink(t, n.b, "udp", n.bAddr(7000))
	sink(t, n.a, "udp", n.aAddr(7001))

	s := startIn(t, n.b, e, spec(dir, "counts.cap", tripcap.PacketCaptureParameters{}), SessionOptions{})
	send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 500, PayloadSize: 100, ID: 1})
	// Egress from the capturing namespace is captured too.
	send(t, n.b, trafficgen.Flow{Network: "udp", Dst: n.aAddr(7001), Count: 300, PayloadSize: 200, ID: 2})
	time.Sleep(100 * time.Millisecond)
	res := stopAndWait(t, s, tripcap.StopManuallyStopped)

	if res.StopReason != tripcap.StopManuallyStopped || len(res.Errors) != 0 {
		t.Errorf("stop reason %q errors %v (%s), want ManuallyStopped", res.StopReason, res.Errors, res.Message)
	}
	if res.Stats.Packets != 800 || res.Stats.KernelDrops != 0 {
		t.Errorf("stats %+v, want 800 packets and no drops", res.Stats)
	}
	if len(res.Files) != 1 {
		t.Fatalf("files %v, want one", res.Files)
	}
	if got := capinfosPackets(t, res.Files[0]); got != 800 {
		t.Errorf("capinfos counts %d packets, want 800", got)
	}
	pkts := readCapture(t, res.Files[0])
	ids, _ := stamps(pkts)
	perFlow := map[uint32]int{}
	for _, id := range ids {
		perFlow[id]++
	}
	if perFlow[1] != 500 || perFlow[2] != 300 || len(pkts) != 800 {
		t.Errorf("flows %v in %d packets, want 500 of flow 1 and 300 of flow 2", perFlow, len(pkts))
	}
	var bytes uint64
	for _, p := range pkts {
		bytes += uint64(p.capLen)
		if p.ts.Before(res.StartTime) || p.ts.After(res.StopTime) {
			t.Errorf("packet at %v outside the session %v..%v", p.ts, res.StartTime, res.StopTime)
			break
		}
	}
	if bytes != res.Stats.Bytes {
		t.Errorf("stats say %d bytes, the file holds %d", res.Stats.Bytes, bytes)
	}
}

// TestSnapLen keeps bytesToCapturePerPacket bytes of each packet and the
// original length in each record, in both formats.
func TestSnapLen(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	e, dir := newTestEngine(t, Config{})
	sink(t, n.b, "udp", n.bAddr(7000))
	for _, format := range []string{tripcap.FormatPcap, tripcap.FormatPcapng} {
		t.Run(format, func(t *testing.T) {
			s := startIn(t, n.b, e, spec(dir, "snap."+format, tripcap.PacketCaptureParameters{BytesToCapturePerPacket: 64, Format: format}), SessionOptions{})
			// Frames of 14+20+8+16 = 58 bytes (under the snap length)
			// and 14+20+8+1000 = 1042 bytes.
			send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 20, PayloadSize: 16, ID: 1})
			send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 30, PayloadSize: 1000, ID: 2})
			time.Sleep(100 * time.Millisecond)
			res := stopAndWait(t, s, tripcap.StopManuallyStopped)
			pkts := readCapture(t, res.Files[0])
			if len(pkts) != 50 {
				t.Fatalf("%d packets, want 50", len(pkts))
			}
			for i, p := range pkts {
				wantLen := 58
				if i >= 20 {
					wantLen = 1042
				}
				if p.origLen != wantLen || p.capLen != min(64, wantLen) || len(p.data) != p.capLen {
					t.Errorf("packet %d: caplen %d len %d, want %d %d", i, p.capLen, p.origLen, min(64, wantLen), wantLen)
				}
			}
			if res.Stats.Bytes != 20*58+30*64 {
				t.Errorf("stats bytes %d, want %d", res.Stats.Bytes, 20*58+30*64)
			}
			// tshark agrees on both lengths.
			if got := tsharkCount(t, res.Files[0], "frame.cap_len == 64 && frame.len == 1042"); got != 30 {
				t.Errorf("tshark finds %d truncated frames, want 30", got)
			}
		})
	}
}

// TestLoopbackOnce captures on lo, where each packet passes the tap twice,
// and finds each packet once.
func TestLoopbackOnce(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	e, dir := newTestEngine(t, Config{})
	lo := netip.MustParseAddrPort("127.0.0.1:7000")
	sink(t, n.b, "udp", lo)
	s := startIn(t, n.b, e, spec(dir, "lo.cap", tripcap.PacketCaptureParameters{Interfaces: []string{"lo"}}), SessionOptions{})
	send(t, n.b, trafficgen.Flow{Network: "udp", Dst: lo, Count: 200, PayloadSize: 50, ID: 9})
	time.Sleep(100 * time.Millisecond)
	res := stopAndWait(t, s, tripcap.StopManuallyStopped)
	pkts := readCapture(t, res.Files[0])
	_, seqs := stamps(pkts)
	if len(pkts) != 200 || len(seqs) != 200 {
		t.Fatalf("%d packets (%d generated), want 200", len(pkts), len(seqs))
	}
	for i, seq := range seqs {
		if seq != uint64(i) {
			t.Fatalf("packet %d has sequence %d", i, seq)
		}
	}
}

// TestStopReasons ends sessions each way and checks the recorded reason.
func TestStopReasons(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	e, dir := newTestEngine(t, Config{})
	sink(t, n.b, "udp", n.bAddr(7000))

	t.Run("TimeExceeded", func(t *testing.T) {
		t.Parallel()
		s := startIn(t, n.b, e, spec(dir, "time.cap", tripcap.PacketCaptureParameters{TimeLimitInSeconds: 1}), SessionOptions{})
		res := waitDone(t, s, 5*time.Second)
		if res.StopReason != tripcap.StopTimeExceeded || len(res.Errors) != 0 {
			t.Errorf("reason %q errors %v, want TimeExceeded", res.StopReason, res.Errors)
		}
		if d := res.StopTime.Sub(res.StartTime); d < time.Second || d > 1500*time.Millisecond {
			t.Errorf("ran %v, want about 1s", d)
		}
	})
	t.Run("SessionDeleted", func(t *testing.T) {
		t.Parallel()
		s := startIn(t, n.b, e, spec(dir, "deleted.cap", tripcap.PacketCaptureParameters{}), SessionOptions{})
		res := stopAndWait(t, s, tripcap.StopSessionDeleted)
		if res.StopReason != tripcap.StopSessionDeleted || len(res.Errors) != 0 {
			t.Errorf("reason %q errors %v, want SessionDeleted", res.StopReason, res.Errors)
		}
		// A later stop does not change the reason.
		s.Stop(tripcap.StopManuallyStopped)
		if s.Result().StopReason != tripcap.StopSessionDeleted {
			t.Errorf("reason changed to %q", s.Result().StopReason)
		}
	})
	for _, format := range []string{tripcap.FormatPcap, tripcap.FormatPcapng} {
		t.Run("TotalBytesExceeded/"+format, func(t *testing.T) {
			// A 142-byte frame takes 158 bytes in pcap, 176 in pcapng.
			limit := int64(24 + 10*158)
			if format == tripcap.FormatPcapng {
				limit = probeHeaderSize(t, n, e, dir) + 10*176 + 100 // and the statistics block
			}
			// The interface named: a whole-host capture is pcapng whatever the format.
			s := startIn(t, n.b, e, spec(dir, "total."+format, tripcap.PacketCaptureParameters{TotalBytesPerSession: limit, Format: format, Interfaces: []string{n.link.B.Name}}), SessionOptions{})
			send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 25, PayloadSize: 100, ID: 3})
			res := waitDone(t, s, 5*time.Second)
			if res.StopReason != tripcap.StopTotalBytesExceeded || len(res.Errors) != 0 {
				t.Errorf("reason %q errors %v, want TotalBytesExceeded", res.StopReason, res.Errors)
			}
			st, err := os.Stat(res.Files[0])
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() != limit {
				t.Errorf("file is %d bytes, want exactly the limit %d", st.Size(), limit)
			}
			if got := capinfosPackets(t, res.Files[0]); got != 10 || res.Stats.Packets != 10 {
				t.Errorf("%d packets in the file, %d in stats, want 10", got, res.Stats.Packets)
			}
		})
	}
	t.Run("CaptureFailed", func(t *testing.T) {
		// An interface of its own, deleted under the capture.
		lab := netns.New(t)
		c := lab.Namespace()
		link := lab.Veth(c, nil, netns.LinkOptions{})
		s := startIn(t, c, e, spec(dir, "failed.cap", tripcap.PacketCaptureParameters{Interfaces: []string{link.A.Name}}), SessionOptions{})
		if _, err := c.Exec(context.Background(), "ip", "link", "del", link.A.Name); err != nil {
			t.Fatal(err)
		}
		res := waitDone(t, s, 5*time.Second)
		if res.StopReason != tripcap.StopCaptureFailed || !slices.Equal(res.Errors, []string{tripcap.CaptureErrCaptureFailed}) || res.Message == "" {
			t.Errorf("reason %q errors %v message %q, want CaptureFailed", res.StopReason, res.Errors, res.Message)
		}
		if capinfosPackets(t, res.Files[0]) != 0 {
			t.Error("packets in a capture of an idle interface")
		}
	})
	t.Run("LocalFileFailed", func(t *testing.T) {
		// A capture directory on a 1 MiB tmpfs fills up: 1.4 MB are sent.
		small := t.TempDir()
		if err := unix.Mount("tmpfs", small, "tmpfs", 0, "size=1m"); err != nil {
			testenv.Unavailable(t, "mounting a tmpfs: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(small, unix.MNT_DETACH) })
		e2, _ := newTestEngine(t, Config{CaptureDir: small})
		s := startIn(t, n.b, e2, spec(small, "full.cap", tripcap.PacketCaptureParameters{}), SessionOptions{})
		send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 1000, PayloadSize: 1400, ID: 4})
		res := waitDone(t, s, 10*time.Second)
		if res.StopReason != tripcap.StopLocalFileFailed || !slices.Contains(res.Errors, tripcap.CaptureErrLocalFile) {
			t.Errorf("reason %q errors %v message %q, want LocalFileFailed", res.StopReason, res.Errors, res.Message)
		}
		if !strings.Contains(res.Message, "no space") {
			t.Errorf("message %q does not say why", res.Message)
		}
		// What was written is whole records, and the counters say so.
		if got := capinfosPackets(t, res.Files[0]); got == 0 || uint64(got) != res.Stats.Packets {
			t.Errorf("%d packets in the file, stats say %d", got, res.Stats.Packets)
		}
	})
}

// probeHeaderSize returns the size of an empty pcapng file of a session on
// b's interface (the section header's OS option varies by host).
func probeHeaderSize(t *testing.T, n *testNet, e *Engine, dir string) int64 {
	t.Helper()
	s := startIn(t, n.b, e, spec(dir, "probe.pcapng", tripcap.PacketCaptureParameters{Format: tripcap.FormatPcapng}), SessionOptions{})
	st, err := os.Stat(s.Files()[0])
	if err != nil {
		t.Fatal(err)
	}
	stopAndWait(t, s, tripcap.StopManuallyStopped)
	return st.Size()
}
