//go:build linux

package afpacket

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/testenv"
	"github.com/tripcap/tripcap/internal/trafficgen"
)

// TestRingRotation writes a continuous capture into a ring of three small
// files: the oldest are removed, the survivors hold the newest packets
// without a gap, and no file exceeds its size.
func TestRingRotation(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	e, dir := newTestEngine(t, Config{})
	sink(t, n.b, "udp", n.bAddr(7000))
	on := true
	count, size := int32(3), int64(4096)
	// The interface named: a whole-host capture is pcapng whatever the format.
	p := tripcap.PacketCaptureParameters{ContinuousCapture: &on, CaptureSettings: &tripcap.CaptureSettings{FileCount: &count, FileSizeInBytes: &size},
		Interfaces: []string{n.link.B.Name}}
	s := startIn(t, n.b, e, spec(dir, "ring.cap", p), SessionOptions{})
	// 142-byte frames, 158 bytes per record: 25 per 4096-byte file, so
	// 200 packets make 8 files.
	send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 200, PayloadSize: 100, ID: 5})
	waitPackets(t, s, 200)
	live := s.Files()
	res := stopAndWait(t, s, tripcap.StopManuallyStopped)

	want := []string{filepath.Join(dir, "ring_00005.cap"), filepath.Join(dir, "ring_00006.cap"), filepath.Join(dir, "ring_00007.cap")}
	if strings.Join(res.Files, " ") != strings.Join(want, " ") || strings.Join(live, " ") != strings.Join(want, " ") {
		t.Fatalf("files %v (live %v), want %v", res.Files, live, want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only the 3 newest files", names)
	}
	var seqs []uint64
	for _, f := range res.Files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > size {
			t.Errorf("%s is %d bytes, over the %d limit", f, st.Size(), size)
		}
		_, s := stamps(readCapture(t, f))
		seqs = append(seqs, s...)
	}
	// Files 5 and 6 are full (25 each); 7 holds the last 25 (200 = 8×25).
	if len(seqs) != 75 || seqs[0] != 125 || seqs[74] != 199 {
		t.Fatalf("the ring holds %d packets, sequences %v…, want 125..199", len(seqs), seqs[:min(3, len(seqs))])
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("gap at %d: %d after %d", i, seqs[i], seqs[i-1])
		}
	}
	if res.Stats.Packets != 200 {
		t.Errorf("stats count %d packets, want all 200 captured", res.Stats.Packets)
	}
}

// TestPcapngForTshark checks what tshark and capinfos read from a pcapng
// capture: the section comment, one interface block per interface with its
// name, packets on the right interface, and a statistics block per interface
// with the kernel's drop count.
func TestPcapngForTshark(t *testing.T) {
	lab := netns.New(t)
	a, b := lab.Namespace(), lab.Namespace()
	l1 := lab.Veth(a, b, netns.LinkOptions{})
	l2 := lab.Veth(a, b, netns.LinkOptions{})
	e, dir := newTestEngine(t, Config{})
	sink(t, b, "udp", netipPort(l1.B.Addr, 7000))
	sink(t, b, "udp", netipPort(l2.B.Addr, 7000))
	sp := spec(dir, "two.pcapng", tripcap.PacketCaptureParameters{Format: tripcap.FormatPcapng, Interfaces: []string{l1.B.Name, l2.B.Name}})
	sp.Comment = "tripcap capture two (id 42); cause: alert HighLatency on web-1"
	s := startIn(t, b, e, sp, SessionOptions{})
	send(t, a, trafficgen.Flow{Network: "udp", Dst: netipPort(l1.B.Addr, 7000), Count: 40, PayloadSize: 64, ID: 1})
	send(t, a, trafficgen.Flow{Network: "udp", Dst: netipPort(l2.B.Addr, 7000), Count: 60, PayloadSize: 64, ID: 2})
	time.Sleep(100 * time.Millisecond)
	res := stopAndWait(t, s, tripcap.StopManuallyStopped)
	file := res.Files[0]

	capinfos := testenv.RequireBinary(t, "capinfos")
	out, err := exec.Command(capinfos, file).CombinedOutput()
	if err != nil {
		t.Fatalf("capinfos: %v\n%s", err, out)
	}
	for _, want := range []string{
		"Capture comment:     " + sp.Comment,
		"Number of interfaces in file: 2",
		"Name = " + l1.B.Name,
		"Name = " + l2.B.Name,
		"Number of stat entries = 1",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("capinfos lacks %q:\n%s", want, out)
		}
	}
	if got := tsharkCount(t, file, "frame.interface_name == \""+l1.B.Name+"\" && udp.dstport == 7000"); got != 40 {
		t.Errorf("tshark: %d packets on %s, want 40", got, l1.B.Name)
	}
	if got := tsharkCount(t, file, "frame.interface_name == \""+l2.B.Name+"\""); got != 60 {
		t.Errorf("tshark: %d packets on %s, want 60", got, l2.B.Name)
	}
	// The statistics blocks carry the kernel counters.
	isbs := readISBs(t, file)
	if len(isbs) != 2 {
		t.Fatalf("%d statistics blocks, want 2", len(isbs))
	}
	for i, want := range []uint64{40, 60} {
		if isbs[i].iface != uint32(i) || isbs[i].recv != want || isbs[i].osdrop != 0 || isbs[i].hasOSDrop == false {
			t.Errorf("statistics block %d: %+v, want %d received, 0 dropped", i, isbs[i], want)
		}
	}
}

// isb is what a test reads back from an interface statistics block.
type isb struct {
	iface                     uint32
	recv, ifdrop, osdrop, del uint64
	hasOSDrop                 bool
}

// readISBs walks a little-endian pcapng file and decodes its statistics blocks.
func readISBs(t *testing.T, path string) []isb {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	var out []isb
	for off := 0; off+12 <= len(data); {
		typ, n := le.Uint32(data[off:]), int(le.Uint32(data[off+4:]))
		if n < 12 || off+n > len(data) {
			t.Fatalf("bad block at %d", off)
		}
		if typ == 5 {
			body := data[off+8 : off+n-4]
			st := isb{iface: le.Uint32(body)}
			for o := body[12:]; len(o) >= 4; {
				code, l := le.Uint16(o), int(le.Uint16(o[2:]))
				if code == 0 {
					break
				}
				v := o[4 : 4+l]
				switch code {
				case 4:
					st.recv = le.Uint64(v)
				case 5:
					st.ifdrop = le.Uint64(v)
				case 7:
					st.osdrop, st.hasOSDrop = le.Uint64(v), true
				case 8:
					st.del = le.Uint64(v)
				}
				o = o[4+(l+3)&^3:]
			}
			out = append(out, st)
		}
		off += n
	}
	return out
}

// TestKernelDrops stalls the writer while a flood fills the ring: the
// kernel drops what does not fit, the session reports the drops, and every
// packet sent is either in the file or counted as dropped.
func TestKernelDrops(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	// The smallest ring: two blocks of 260 KiB.
	e, dir := newTestEngine(t, Config{RingBytes: 1})
	sink(t, n.b, "udp", n.bAddr(7000))
	// Two interfaces (lo idle), so that readers share the writer lock,
	// which the test holds to stall them.
	p := tripcap.PacketCaptureParameters{Format: tripcap.FormatPcapng, Interfaces: []string{n.link.B.Name, "lo"}}
	s := startIn(t, n.b, e, spec(dir, "drops.pcapng", p), SessionOptions{})
	const sent = 3000
	s.wmu.Lock() // the reader blocks on its first packet
	send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: sent, PayloadSize: 1000, ID: 6})
	time.Sleep(100 * time.Millisecond)
	live := s.Stats()
	s.wmu.Unlock()
	time.Sleep(200 * time.Millisecond)
	res := stopAndWait(t, s, tripcap.StopManuallyStopped)

	if live.KernelDrops == 0 || res.Stats.KernelDrops < live.KernelDrops {
		t.Fatalf("drops: %d live, %d at the end; want some", live.KernelDrops, res.Stats.KernelDrops)
	}
	if got := res.Stats.Packets + res.Stats.KernelDrops; got != sent {
		t.Errorf("%d captured + %d dropped = %d, want the %d sent", res.Stats.Packets, res.Stats.KernelDrops, got, sent)
	}
	if got := capinfosPackets(t, res.Files[0]); uint64(got) != res.Stats.Packets {
		t.Errorf("%d packets in the file, stats say %d", got, res.Stats.Packets)
	}
	isbs := readISBs(t, res.Files[0])
	if len(isbs) != 2 || isbs[1].recv != 0 || isbs[0].osdrop != res.Stats.KernelDrops || isbs[0].ifdrop != res.Stats.KernelDrops ||
		isbs[0].recv != sent || isbs[0].del != res.Stats.Packets {
		t.Errorf("statistics block %+v, want %d received, %d dropped, %d delivered", isbs, sent, res.Stats.KernelDrops, res.Stats.Packets)
	}
}
