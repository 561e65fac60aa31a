//go:build linux

package afpacket

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/testenv"
	"github.com/tripcap/tripcap/internal/trafficgen"
	"github.com/tripcap/tripcap/pcapfile"
)

// TestFiltersMatchTshark runs one session per filter form next to an
// unfiltered one over a mix of traffic (UDP and TCP both ways, IPv4 and
// IPv6, ICMP echo, ARP and neighbour discovery), and checks that each
// filtered file holds exactly the frames that the equivalent tshark display
// filter selects from the unfiltered file.
//
// "Local" is the capturing namespace's side: for a frame it received, the
// destination; for one it sent (Ethernet source is its own MAC), the source.
func TestFiltersMatchTshark(t *testing.T) {
	tshark := testenv.RequireBinary(t, "tshark")
	lab := netns.New(t)
	a, b := lab.Namespace(), lab.Namespace()
	link := lab.Veth(a, b, netns.LinkOptions{IPv6: true, DynamicNeighbours: true})
	A, B := link.A.Addr.Addr(), link.B.Addr.Addr()
	A6, B6 := link.A.Addr6.Addr(), link.B.Addr6.Addr()
	A0 := link.A.Addr.Masked().Addr() // the /30's network address, just below A

	type filterCase struct {
		name   string
		flags  []string // --filter values, OR-ed
		tshark string   // "" selects every frame
	}
	in, out := "eth.src != "+link.B.MAC.String(), "eth.src == "+link.B.MAC.String()
	dir := func(inExpr, outExpr string) string {
		return fmt.Sprintf("((%s && %s) || (%s && %s))", in, inExpr, out, outExpr)
	}
	cases := []filterCase{
		{"tcp", []string{"protocol=TCP"}, "tcp"},
		{"udp", []string{"protocol=UDP"}, "udp"},
		{"any", []string{"protocol=Any"}, ""},
		{"local port any protocol", []string{"localPort=7000"},
			dir("(tcp.dstport == 7000 || udp.dstport == 7000)", "(tcp.srcport == 7000 || udp.srcport == 7000)")},
		{"local port range", []string{"protocol=UDP,localPort=7000-7002"},
			"udp && " + dir("udp.dstport >= 7000 && udp.dstport <= 7002", "udp.srcport >= 7000 && udp.srcport <= 7002")},
		{"remote port list", []string{"protocol=UDP,remotePort=9000;9001"},
			"udp && " + dir("(udp.srcport == 9000 || udp.srcport == 9001)", "(udp.dstport == 9000 || udp.dstport == 9001)")},
		{"local tcp port", []string{"localPort=80"},
			dir("(tcp.dstport == 80 || udp.dstport == 80)", "(tcp.srcport == 80 || udp.srcport == 80)")},
		{"remote tcp port", []string{"protocol=TCP,remotePort=443"}, "tcp && " + dir("tcp.srcport == 443", "tcp.dstport == 443")},
		{"local address", []string{"localIPAddress=" + B.String()}, dir("ip.dst == "+B.String(), "ip.src == "+B.String())},
		{"remote address", []string{"remoteIPAddress=" + A.String()}, dir("ip.src == "+A.String(), "ip.dst == "+A.String())},
		{"remote address range", []string{"remoteIPAddress=" + A0.String() + "-" + A.String()},
			dir(fmt.Sprintf("ip.src >= %s && ip.src <= %s", A0, A), fmt.Sprintf("ip.dst >= %s && ip.dst <= %s", A0, A))},
		{"five fields", []string{fmt.Sprintf("protocol=UDP,localIPAddress=%s,remoteIPAddress=%s,localPort=7000,remotePort=5001", B, A)},
			"udp && " + dir(fmt.Sprintf("ip.dst == %s && ip.src == %s && udp.dstport == 7000 && udp.srcport == 5001", B, A),
				fmt.Sprintf("ip.src == %s && ip.dst == %s && udp.srcport == 7000 && udp.dstport == 5001", B, A))},
		{"ipv6 local address", []string{"localIPAddress=" + B6.String()}, dir("ipv6.dst == "+B6.String(), "ipv6.src == "+B6.String())},
		{"ipv6 remote tcp", []string{"protocol=TCP,remoteIPAddress=" + A6.String()}, "tcp && " + dir("ipv6.src == "+A6.String(), "ipv6.dst == "+A6.String())},
		{"mixed family list", []string{"localIPAddress=" + B.String() + ";" + B6.String()},
			dir(fmt.Sprintf("(ip.dst == %s || ipv6.dst == %s)", B, B6), fmt.Sprintf("(ip.src == %s || ipv6.src == %s)", B, B6))},
		{"two filters", []string{"protocol=TCP,localPort=80", "protocol=UDP,remotePort=9001"},
			fmt.Sprintf("(tcp && %s) || (udp && %s)", dir("tcp.dstport == 80", "tcp.srcport == 80"), dir("udp.srcport == 9001", "udp.dstport == 9001"))},
		{"port range from 1", []string{"protocol=UDP,localPort=1-6001"},
			"udp && " + dir("udp.dstport >= 1 && udp.dstport <= 6001", "udp.srcport >= 1 && udp.srcport <= 6001")},
	}

	e, capDir := newTestEngine(t, Config{RingBytes: 1})
	ref := startIn(t, b, e, spec(capDir, "all.cap", tripcap.PacketCaptureParameters{}), SessionOptions{})
	sessions := make([]*Session, len(cases))
	for i, c := range cases {
		var p tripcap.PacketCaptureParameters
		for _, fl := range c.flags {
			f, err := tripcap.ParseFilterFlag(fl)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			p.Filters = append(p.Filters, f)
		}
		sessions[i] = startIn(t, b, e, spec(capDir, fmt.Sprintf("f%02d.cap", i), p), SessionOptions{})
	}

	generateMix(t, a, b, A, B, A6, B6)
	time.Sleep(150 * time.Millisecond)

	// Stop all at once. Each session's first and last moments differ a
	// little, and stray packets (neighbour discovery) come at any time,
	// so only the packets of the window every session covered are
	// compared.
	ref.Stop(tripcap.StopManuallyStopped)
	for _, s := range sessions {
		s.Stop(tripcap.StopManuallyStopped)
	}
	refRes := waitDone(t, ref, 10*time.Second)
	from, to := refRes.StartTime, refRes.StopTime
	results := make([]tripcap.CaptureResult, len(sessions))
	for i, s := range sessions {
		results[i] = waitDone(t, s, 10*time.Second)
		from = latest(from, results[i].StartTime)
		to = earliest(to, results[i].StopTime)
	}
	refPkts := within(readCapture(t, refRes.Files[0]), from, to)
	if len(refPkts) < 80 {
		t.Fatalf("only %d packets in the unfiltered capture", len(refPkts))
	}
	refFile := filepath.Join(t.TempDir(), "window.pcap")
	writePcap(t, refFile, refPkts)
	for i, c := range cases {
		res := results[i]
		t.Run(c.name, func(t *testing.T) {
			if res.Stats.KernelDrops != 0 || refRes.Stats.KernelDrops != 0 {
				t.Fatalf("kernel drops: %d here, %d in the reference", res.Stats.KernelDrops, refRes.Stats.KernelDrops)
			}
			want := tsharkFrames(t, tshark, refFile, c.tshark, refPkts)
			got := frameHashes(within(readCapture(t, res.Files[0]), from, to))
			if len(want) == 0 && c.tshark != "" {
				t.Fatalf("tshark selects nothing with %q: the traffic mix does not exercise this filter", c.tshark)
			}
			if !slices.Equal(got, want) {
				t.Errorf("filter %q kept %d frames; tshark %q selects %d", c.flags, len(got), c.tshark, len(want))
			}
		})
	}
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// within keeps the packets stamped in [from, to].
func within(pkts []packet, from, to time.Time) []packet {
	var out []packet
	for _, p := range pkts {
		if !p.ts.Before(from) && !p.ts.After(to) {
			out = append(out, p)
		}
	}
	return out
}

// writePcap writes packets to an Ethernet pcap file.
func writePcap(t *testing.T, path string, pkts []packet) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pcapfile.NewPcapWriter(f, pcapfile.LinkTypeEthernet, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		if err := w.WritePacket(0, p.ts.UnixNano(), p.origLen, p.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
}

// generateMix sends the traffic TestFiltersMatchTshark filters.
func generateMix(t *testing.T, a, b *netns.Namespace, A, B, A6, B6 netip.Addr) {
	t.Helper()
	ap := func(ip netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(ip, port) }
	// Every destination has a listener: no ICMP errors, whose quoted
	// headers tshark would match as if they were the packet's own.
	for _, p := range []uint16{7000, 7001, 8000} {
		sink(t, b, "udp", ap(B, p))
	}
	sink(t, b, "udp", ap(B6, 7000))
	sink(t, b, "tcp", ap(B, 80))
	sink(t, b, "tcp", ap(B6, 80))
	sink(t, a, "udp", ap(A, 9000))
	sink(t, a, "udp", ap(A, 9001))
	sink(t, a, "tcp", ap(A, 443))
	flows := []struct {
		ns *netns.Namespace
		f  trafficgen.Flow
	}{
		{a, trafficgen.Flow{Network: "udp", Src: ap(A, 5001), Dst: ap(B, 7000), Count: 5, PayloadSize: 40, ID: 1}},
		{a, trafficgen.Flow{Network: "udp", Src: ap(A, 5002), Dst: ap(B, 7001), Count: 6, PayloadSize: 40, ID: 2}},
		{a, trafficgen.Flow{Network: "udp", Src: ap(A, 5003), Dst: ap(B, 8000), Count: 7, PayloadSize: 40, ID: 3}},
		{b, trafficgen.Flow{Network: "udp", Src: ap(B, 6001), Dst: ap(A, 9000), Count: 8, PayloadSize: 40, ID: 4}},
		{b, trafficgen.Flow{Network: "udp", Src: ap(B, 6002), Dst: ap(A, 9001), Count: 9, PayloadSize: 40, ID: 5}},
		{b, trafficgen.Flow{Network: "udp", Src: ap(B, 7002), Dst: ap(A, 9000), Count: 4, PayloadSize: 40, ID: 6}},
		{a, trafficgen.Flow{Network: "udp", Src: ap(A6, 5004), Dst: ap(B6, 7000), Count: 5, PayloadSize: 40, ID: 7}},
		{a, trafficgen.Flow{Network: "tcp", Dst: ap(B, 80), Count: 3, PayloadSize: 100, Interval: time.Millisecond, ID: 8}},
		{b, trafficgen.Flow{Network: "tcp", Dst: ap(A, 443), Count: 3, PayloadSize: 100, Interval: time.Millisecond, ID: 9}},
		{a, trafficgen.Flow{Network: "tcp", Dst: ap(B6, 80), Count: 3, PayloadSize: 100, Interval: time.Millisecond, ID: 10}},
	}
	for _, fl := range flows {
		send(t, fl.ns, fl.f)
	}
	if err := a.Do(func() error { return ping(B, 3) }); err != nil {
		t.Fatal(err)
	}
	// Let TCP closes finish.
	time.Sleep(200 * time.Millisecond)
}

// ping sends n ICMP echo requests to dst and waits for the replies.
func ping(dst netip.Addr, n int) error {
	c, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return fmt.Errorf("opening an ICMP socket: %w", err)
	}
	defer c.Close()
	for seq := range n {
		msg := []byte{8, 0, 0, 0, 0x12, 0x34, 0, byte(seq), 'p', 'i', 'n', 'g'}
		sum := 0
		for i := 0; i < len(msg); i += 2 {
			sum += int(msg[i])<<8 | int(msg[i+1])
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		msg[2], msg[3] = byte(^sum>>8), byte(^sum)
		if _, err := c.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return fmt.Errorf("sending an echo request: %w", err)
		}
		buf := make([]byte, 1500)
		if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
			return err
		}
		if _, _, err := c.ReadFrom(buf); err != nil {
			return fmt.Errorf("waiting for the echo reply: %w", err)
		}
	}
	return nil
}

// tsharkFrames returns the sorted hashes of the frames of a file a display
// filter selects; pkts are the file's frames in order.
func tsharkFrames(t *testing.T, tshark, path, filter string, pkts []packet) []string {
	t.Helper()
	args := []string{"-r", path, "-T", "fields", "-e", "frame.number"}
	if filter != "" {
		args = append(args, "-Y", filter)
	}
	cmd := exec.CommandContext(context.Background(), tshark, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -Y %q: %v\n%s", filter, err, stderr.String())
	}
	var sel []packet
	for _, f := range strings.Fields(string(outb)) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > len(pkts) {
			t.Fatalf("tshark printed frame %q", f)
		}
		sel = append(sel, pkts[n-1])
	}
	return frameHashes(sel)
}

func frameHashes(pkts []packet) []string {
	out := make([]string, len(pkts))
	for i, p := range pkts {
		out[i] = fmt.Sprintf("%x", sha256.Sum256(p.data))
	}
	slices.Sort(out)
	return out
}
