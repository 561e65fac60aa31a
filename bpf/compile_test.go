package bpf

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
	xbpf "golang.org/x/net/bpf"
)

var (
	host  = netip.MustParseAddr("10.0.0.1")
	peer  = netip.MustParseAddr("198.18.0.2")
	host6 = netip.MustParseAddr("2001:db8::1")
	peer6 = netip.MustParseAddr("2001:db8::2")
)

// incoming and outgoing build the packet the host receives from, or sends to, the peer.
func incoming(proto uint8, peerPort, hostPort uint16) testPacket {
	return testPacket{link: LinkEthernet, src: peer, dst: host, proto: proto, srcPort: peerPort, dstPort: hostPort, transport: 20}
}

func outgoing(proto uint8, hostPort, peerPort uint16) testPacket {
	return testPacket{link: LinkEthernet, src: host, dst: peer, proto: proto, srcPort: hostPort, dstPort: peerPort, transport: 20, pktType: packetOutgoing}
}

func (p testPacket) with(f func(*testPacket)) testPacket {
	f(&p)
	return p
}

func ipv6(p *testPacket) { p.v6, p.src, p.dst = true, map6(p.src), map6(p.dst) }

func map6(a netip.Addr) netip.Addr {
	if a == host {
		return host6
	}
	return peer6
}

func TestCompileCases(t *testing.T) {
	localPort80 := []tripcap.PacketCaptureFilter{{Protocol: "TCP", LocalPort: "80"}}
	remote53 := []tripcap.PacketCaptureFilter{{RemotePort: "53"}}
	const tcp, udp, icmp = 6, 17, 1
	cases := []struct {
		name    string
		filters []tripcap.PacketCaptureFilter
		pkt     testPacket
		want    bool
	}{
		{"localPort 80: request to the host's port 80", localPort80, incoming(tcp, 5000, 80), true},
		{"localPort 80: reply from the host's port 80", localPort80, outgoing(tcp, 80, 5000), true},
		{"localPort 80: the host's own request to port 80", localPort80, outgoing(tcp, 5000, 80), false},
		{"localPort 80: a peer's reply from port 80", localPort80, incoming(tcp, 80, 5000), false},
		{"localPort 80: UDP", localPort80, incoming(udp, 5000, 80), false},
		{"PACKET_OTHERHOST is incoming", localPort80, incoming(tcp, 5000, 80).with(func(p *testPacket) { p.pktType = 3 }), true},
		{"PACKET_LOOPBACK is incoming", localPort80, incoming(tcp, 5000, 80).with(func(p *testPacket) { p.pktType = 5 }), true},
		{"Any with a port: UDP", remote53, outgoing(udp, 40000, 53), true},
		{"Any with a port: TCP", remote53, outgoing(tcp, 40000, 53), true},
		{"Any with a port: ICMP carries none", remote53, outgoing(icmp, 40000, 53), false},
		{"Any with a port: other protocol", remote53, outgoing(132, 40000, 53), false}, // SCTP has ports, but filters name TCP and UDP only
		{"IPv4 first fragment has ports", remote53, outgoing(udp, 40000, 53).with(func(p *testPacket) { p.frag = fragFirst }), true},
		{"IPv4 later fragment has no ports", remote53, outgoing(udp, 40000, 53).with(func(p *testPacket) { p.frag = fragLater }), false},
		{"IPv4 later fragment, no port constraint",
			[]tripcap.PacketCaptureFilter{{Protocol: "UDP", RemoteIPAddress: "198.18.0.2"}},
			outgoing(udp, 40000, 53).with(func(p *testPacket) { p.frag = fragLater }), true},
		{"IPv4 options", remote53, outgoing(udp, 40000, 53).with(func(p *testPacket) { p.ihl = 15 }), true},
		{"transport header too short for ports", remote53, outgoing(udp, 40000, 53).with(func(p *testPacket) { p.transport = 3 }), false},
		{"transport header too short, no port constraint",
			[]tripcap.PacketCaptureFilter{{Protocol: "UDP"}},
			outgoing(udp, 40000, 53).with(func(p *testPacket) { p.transport = 3 }), true},
		{"802.1Q tag", localPort80, incoming(tcp, 5000, 80).with(func(p *testPacket) { p.vlans = []uint16{0x8100} }), true},
		{"802.1ad + 802.1Q tags", localPort80, incoming(tcp, 5000, 80).with(func(p *testPacket) { p.vlans = []uint16{0x88a8, 0x8100} }), true},
		{"three tags are not followed", localPort80, incoming(tcp, 5000, 80).with(func(p *testPacket) { p.vlans = []uint16{0x88a8, 0x8100, 0x8100} }), false},
		{"ARP never matches a constrained filter",
			[]tripcap.PacketCaptureFilter{{LocalIPAddress: "10.0.0.1"}},
			incoming(tcp, 5000, 80).with(func(p *testPacket) { p.etherType = 0x0806 }), false},
		{"ARP matches an unconstrained filter",
			[]tripcap.PacketCaptureFilter{{LocalIPAddress: "10.0.0.1"}, {Protocol: "Any"}},
			incoming(tcp, 5000, 80).with(func(p *testPacket) { p.etherType = 0x0806 }), true},
		{"ARP with no filters", nil, incoming(tcp, 5000, 80).with(func(p *testPacket) { p.etherType = 0x0806 }), true},
		{"raw IP link", localPort80, incoming(tcp, 5000, 80).with(func(p *testPacket) { p.link = LinkRawIP }), true},
		{"raw IP link, IPv6", localPort80, incoming(tcp, 5000, 80).with(func(p *testPacket) { p.link = LinkRawIP; ipv6(p) }), true},
		{"local address of an outgoing packet is its source",
			[]tripcap.PacketCaptureFilter{{LocalIPAddress: "10.0.0.1", RemoteIPAddress: "198.18.0.0-198.18.255.255"}},
			outgoing(icmp, 0, 0), true},
		{"local address of an incoming packet is its destination",
			[]tripcap.PacketCaptureFilter{{LocalIPAddress: "10.0.0.1", RemoteIPAddress: "198.18.0.0-198.18.255.255"}},
			incoming(icmp, 0, 0), true},
		{"addresses swapped",
			[]tripcap.PacketCaptureFilter{{LocalIPAddress: "198.18.0.2"}},
			incoming(icmp, 0, 0), false},
		{"IPv6 port", localPort80, incoming(tcp, 5000, 80).with(ipv6), true},
		{"IPv6 after Hop-by-Hop and Destination Options", localPort80,
			incoming(tcp, 5000, 80).with(func(p *testPacket) { ipv6(p); p.ext = []uint8{0, 60}; p.extLen = 2 }), true},
		{"IPv6 after Routing and a first Fragment", localPort80,
			incoming(tcp, 5000, 80).with(func(p *testPacket) { ipv6(p); p.ext = []uint8{43, 44, 60}; p.frag = fragFirst }), true},
		{"IPv6 later fragment has no ports", localPort80,
			incoming(tcp, 5000, 80).with(func(p *testPacket) { ipv6(p); p.ext = []uint8{0, 44}; p.frag = fragLater }), false},
		{"IPv6 later fragment, protocol only", []tripcap.PacketCaptureFilter{{Protocol: "tcp"}},
			incoming(tcp, 5000, 80).with(func(p *testPacket) { ipv6(p); p.ext = []uint8{0, 44}; p.frag = fragLater }), true},
		{"IPv6 six extension headers are walked", localPort80,
			incoming(tcp, 5000, 80).with(func(p *testPacket) { ipv6(p); p.ext = []uint8{0, 60, 43, 43, 60, 60} }), true},
		{"IPv6 seven extension headers are too many", []tripcap.PacketCaptureFilter{{Protocol: "TCP"}},
			incoming(tcp, 5000, 80).with(func(p *testPacket) { ipv6(p); p.ext = []uint8{0, 60, 43, 43, 60, 60, 60} }), false},
		{"IPv6 range across words, at the top", []tripcap.PacketCaptureFilter{{RemoteIPAddress: "2001:db8::ffff:ffff-2001:db8::1:0:0"}},
			incoming(icmp, 0, 0).with(func(p *testPacket) { ipv6(p); p.src = netip.MustParseAddr("2001:db8::1:0:0") }), true},
		{"IPv6 range across words, inside", []tripcap.PacketCaptureFilter{{RemoteIPAddress: "2001:db8::ffff:ffff-2001:db8::1:0:0"}},
			incoming(icmp, 0, 0).with(func(p *testPacket) { ipv6(p); p.src = netip.MustParseAddr("2001:db8::ffff:ffff") }), true},
		{"IPv6 range across words, below", []tripcap.PacketCaptureFilter{{RemoteIPAddress: "2001:db8::ffff:ffff-2001:db8::1:0:0"}},
			incoming(icmp, 0, 0).with(func(p *testPacket) { ipv6(p); p.src = netip.MustParseAddr("2001:db8::ffff:fffe") }), false},
		{"IPv6 range across words, above", []tripcap.PacketCaptureFilter{{RemoteIPAddress: "2001:db8::ffff:ffff-2001:db8::1:0:0"}},
			incoming(icmp, 0, 0).with(func(p *testPacket) { ipv6(p); p.src = netip.MustParseAddr("2001:db8::1:0:1") }), false},
		{"IPv4 packet, IPv6 filter", []tripcap.PacketCaptureFilter{{RemoteIPAddress: "2001:db8::2"}}, incoming(icmp, 0, 0), false},
		{"IPv4-mapped IPv6 address is not IPv4", []tripcap.PacketCaptureFilter{{RemoteIPAddress: "::ffff:198.18.0.2"}}, incoming(icmp, 0, 0), false},
		{"mixed list, IPv4", []tripcap.PacketCaptureFilter{{RemoteIPAddress: "2001:db8::2;198.18.0.2;"}}, incoming(icmp, 0, 0), true},
		{"mixed list, IPv6", []tripcap.PacketCaptureFilter{{RemoteIPAddress: "198.18.0.2;2001:db8::2"}}, incoming(icmp, 0, 0).with(ipv6), true},
		{"port range", []tripcap.PacketCaptureFilter{{LocalPort: "80-85"}}, incoming(tcp, 5000, 85), true},
		{"port range, outside", []tripcap.PacketCaptureFilter{{LocalPort: "80-85"}}, incoming(tcp, 5000, 86), false},
		{"full port range still needs ports", []tripcap.PacketCaptureFilter{{LocalPort: "0-65535"}}, incoming(icmp, 5000, 86), false},
		{"port list", []tripcap.PacketCaptureFilter{{LocalPort: "22;80;443;"}}, incoming(tcp, 5000, 443), true},
		{"second filter matches", []tripcap.PacketCaptureFilter{{Protocol: "UDP"}, {LocalPort: "443"}}, incoming(tcp, 5000, 443), true},
		{"no filter matches", []tripcap.PacketCaptureFilter{{Protocol: "UDP"}, {LocalPort: "443"}}, incoming(tcp, 443, 5000), false},
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parsed, err := tripcap.ParseFilters(tc.filters)
			if err != nil {
				t.Fatal(err)
			}
			if got := tripcap.MatchFilters(parsed, tc.pkt.expected()); got != tc.want {
				t.Fatalf("reference matcher says %v, want %v", got, tc.want)
			}
			prog, err := Compile(tc.filters, tc.pkt.link, 1500)
			if err != nil {
				t.Fatal(err)
			}
			frame := tc.pkt.bytes(rng)
			if got, want := decodeFrame(frame, tc.pkt.link, tc.pkt.pktType), tc.pkt.expected(); got != want {
				t.Fatalf("decodeFrame = %+v, want %+v", got, want)
			}
			vm := vmCache{prog: prog}
			n := vm.run(t, frame, tc.pkt.pktType)
			if want := map[bool]int{true: 1500, false: 0}[tc.want]; n != want {
				t.Fatalf("program returns %d, want %d\n%s", n, want, Disassemble(prog))
			}
		})
	}
}

// TestCompileProperty checks the compiled program against the reference
// matcher on random filters and packets: both directions, IPv4 and IPv6,
// TCP, UDP, ICMP and others, VLAN tags, fragments, extension headers, and
// every frame also truncated at a random length.
func TestCompileProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(20240601, 7))
	rounds, perRound := 4000, 16
	if testing.Short() {
		rounds = 500
	}
	var accepted, dropped, cases int
	for round := range rounds {
		link := LinkEthernet
		if round%4 == 3 {
			link = LinkRawIP
		}
		filters := make([]tripcap.PacketCaptureFilter, 1+rng.IntN(4))
		for i := range filters {
			filters[i] = randFilter(rng)
		}
		parsed, err := tripcap.ParseFilters(filters)
		if err != nil {
			t.Fatal(err)
		}
		snap := uint32(rng.IntN(3) * 1000) // 0 means the default
		prog, err := Compile(filters, link, snap)
		if err != nil {
			t.Fatalf("Compile(%+v): %v", filters, err)
		}
		if snap == 0 {
			snap = DefaultSnapLen
		}
		vm := vmCache{prog: prog}
		check := func(frame []byte, pktType uint32, want tripcap.FilterPacket, what string, pkt testPacket) {
			t.Helper()
			cases++
			match := tripcap.MatchFilters(parsed, want)
			n := vm.run(t, frame, pktType)
			if n != 0 && n != int(snap) {
				t.Fatalf("program returned %d, want 0 or %d", n, snap)
			}
			if (n != 0) != match {
				t.Fatalf("round %d, %s: program accepts=%v, reference %v\nfilters %+v\npacket %v\nsees %+v\nframe % x\n%s",
					round, what, n != 0, match, filters, pkt, want, frame, Disassemble(prog))
			}
			if what != "whole frame" {
				return
			}
			if match {
				accepted++
			} else {
				dropped++
			}
		}
		for range perRound {
			pkt := randPacket(rng, link)
			if rng.IntN(3) > 0 {
				steer(rng, &pkt, parsed[rng.IntN(len(parsed))])
			}
			frame := pkt.bytes(rng)
			want := pkt.expected()
			if got := decodeFrame(frame, link, pkt.pktType); got != want {
				t.Fatalf("decodeFrame = %+v, want %+v for %v", got, want, pkt)
			}
			check(frame, pkt.pktType, want, "whole frame", pkt)
			cut := frame[:rng.IntN(len(frame)+1)]
			check(cut, pkt.pktType, decodeFrame(cut, link, pkt.pktType), fmt.Sprintf("frame cut to %d bytes", len(cut)), pkt)
		}
	}
	t.Logf("%d cases; whole frames: %d accepted, %d dropped", cases, accepted, dropped)
	// Guard the generators: a test where everything drops proves little.
	if whole := accepted + dropped; accepted < whole/4 || dropped < whole/4 {
		t.Errorf("generators are lopsided: %d accepted, %d dropped", accepted, dropped)
	}
}

// TestCompileLongJumps uses filters long enough that conditional jumps need
// ja trampolines (their reach is 255 instructions).
func TestCompileLongJumps(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 30 {
		var filters []tripcap.PacketCaptureFilter
		for range 2 + rng.IntN(3) {
			var addrs []string
			for range 10 + rng.IntN(40) {
				addrs = append(addrs, randAddr(rng, rng.IntN(3) > 0).String())
			}
			f := randFilter(rng)
			f.RemoteIPAddress = strings.Join(addrs, ";")
			if _, err := f.Parse(); err != nil {
				f.LocalIPAddress = ""
			}
			filters = append(filters, f)
		}
		parsed, err := tripcap.ParseFilters(filters)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := Compile(filters, LinkEthernet, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(prog) < 300 {
			t.Fatalf("round %d: only %d instructions; the test wants long jumps", round, len(prog))
		}
		vm := vmCache{prog: prog}
		for range 200 {
			pkt := randPacket(rng, LinkEthernet)
			if rng.IntN(2) == 0 { // aim at the listed addresses
				ps := parsed[rng.IntN(len(parsed))].RemoteAddrs
				if r := ps[rng.IntN(len(ps))]; r.From.Is4() != pkt.v6 {
					if pkt.pktType == packetOutgoing {
						pkt.dst = r.From
					} else {
						pkt.src = r.From
					}
				}
			}
			match := tripcap.MatchFilters(parsed, pkt.expected())
			if n := vm.run(t, pkt.bytes(rng), pkt.pktType); (n != 0) != match {
				t.Fatalf("round %d: program accepts=%v, reference %v for %v", round, n != 0, match, pkt)
			}
		}
	}
}

func TestCompileAcceptAll(t *testing.T) {
	for _, filters := range [][]tripcap.PacketCaptureFilter{nil, {}, {{Protocol: "TCP"}, {Protocol: "Any"}}, {{}}} {
		prog, err := Compile(filters, LinkRawIP, 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := []xbpf.RawInstruction{{Op: clsRET | retK, K: DefaultSnapLen}}; fmt.Sprint(prog) != fmt.Sprint(want) {
			t.Errorf("Compile(%+v) = %v, want %v", filters, prog, want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	many := make([]string, 600)
	for i := range many {
		many[i] = fmt.Sprintf("2001:db8::%x", i)
	}
	cases := []struct {
		filters []tripcap.PacketCaptureFilter
		link    LinkType
		want    string
	}{
		{[]tripcap.PacketCaptureFilter{{}, {LocalPort: "90-80"}}, LinkEthernet, `filters[1].localPort: "90-80" is a reversed range`},
		{[]tripcap.PacketCaptureFilter{{Protocol: "ICMP"}}, LinkEthernet, `filters[0].protocol: "ICMP" is not one of TCP, UDP, Any`},
		{[]tripcap.PacketCaptureFilter{{LocalPort: "80"}}, 0, "unsupported link type"},
		{[]tripcap.PacketCaptureFilter{{RemoteIPAddress: strings.Join(many, ";")}}, LinkEthernet, "more than the kernel's limit of 4096"},
	}
	for _, tc := range cases {
		_, err := Compile(tc.filters, tc.link, 0)
		if err == nil || !strings.Contains(err.Error(), tc.want) || tripcap.ErrorCode(err) != tripcap.EINVALID {
			t.Errorf("Compile(%+v, %v) = %v, want EINVALID containing %q", tc.filters, tc.link, err, tc.want)
		}
	}
}

// TestCompiledAncillaryLoads pins the test's one substitution: the program
// uses `ld #type` and no other ancillary load, so rewriting it is all the
// VM needs.
func TestCompiledAncillaryLoads(t *testing.T) {
	for _, link := range []LinkType{LinkEthernet, LinkRawIP} {
		prog, err := Compile([]tripcap.PacketCaptureFilter{{Protocol: "TCP", LocalPort: "80"}}, link, 0)
		if err != nil {
			t.Fatal(err)
		}
		types := 0
		for i, ins := range prog {
			if ins == ldPktType {
				types++
				continue
			}
			if ins.Op&0x07 == clsLD && ins.Op&0xe0 == modeABS && ins.K >= skfADOff {
				t.Errorf("instruction %d: unexpected ancillary load %v", i, ins)
			}
		}
		if types != 3 { // one per direction choice: IPv4 addresses, IPv6 addresses, ports
			t.Errorf("%v: %d ld #type instructions, want 3\n%s", link, types, Disassemble(prog))
		}
	}
}

func TestAssembleTrampolines(t *testing.T) {
	var a asm
	far, near := a.label(), a.label()
	a.ldImm(1)
	a.jeq(1, far, near)
	a.mark(near)
	for range 300 {
		a.ldImm(0)
	}
	a.ret(0)
	a.mark(far)
	a.ret(7)
	prog, err := a.assemble()
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) != 306 {
		t.Fatalf("%d instructions, want 306 (the jump widened by two)", len(prog))
	}
	if err := Validate(prog); err != nil {
		t.Fatal(err)
	}
	vm := vmCache{prog: prog}
	if n := vm.run(t, []byte{0}, 0); n != 7 {
		t.Fatalf("program returned %d, want 7\n%s", n, Disassemble(prog))
	}
}

func TestLinkTypeFromARPHRD(t *testing.T) {
	for hatype, want := range map[uint16]LinkType{1: LinkEthernet, 772: LinkEthernet, 0xfffe: LinkRawIP, 519: LinkRawIP, 32: 0} {
		if got, ok := LinkTypeFromARPHRD(hatype); got != want || ok != (want != 0) {
			t.Errorf("LinkTypeFromARPHRD(%d) = %v, %v; want %v", hatype, got, ok, want)
		}
	}
}
