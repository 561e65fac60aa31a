package bpf

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/testenv"
	xbpf "golang.org/x/net/bpf"
)

// exprCorpus is what SREs type, and the corners of the grammar. Each is
// compiled by tcpdump and by CompileCapture, and both programs must select
// the same packets.
var exprCorpus = []string{
	"tcp port 80 and host 198.18.0.2",
	"tcp", "udp", "icmp", "icmp6", "ip", "ip6", "arp", "rarp", "sctp", "igmp",
	"host 198.18.0.2",
	"src host 198.18.0.2",
	"dst host 198.18.0.3",
	"src and dst host 198.18.0.2",
	"src or dst host 198.18.0.2",
	"ip host 198.18.0.2",
	"arp host 198.18.0.2",
	"host fd00::2",
	"src host fd00::1",
	"ip6 dst host fd00::2",
	"net 198.18.0.0/15",
	"src net 198.18.0.0/24",
	"dst net 10.0.0.0/8",
	"net 10",
	"net 198.18 ",
	"net 198.18.0.0 mask 255.255.255.0",
	"net fd00::/8",
	"ip6 src net fd00::/64",
	"net fd00:0:0:1::/64",
	"net 0.0.0.0/0",
	"port 80",
	"port 53",
	"tcp port 443",
	"udp port 53",
	"src port 80",
	"dst port 8080",
	"tcp src port 80",
	"udp dst port 53",
	"port 80 or 443",
	"port 80 or 443 or 22",
	"portrange 1-1024",
	"tcp portrange 8000-8100",
	"udp src portrange 50000-60000",
	"sctp port 80",
	"vlan",
	"vlan 100",
	"vlan and tcp port 80",
	"vlan 100 and host 198.18.0.2",
	"vlan and vlan 200 and ip",
	"tcp or vlan and udp",
	"ether host 02:00:00:00:00:01",
	"ether src 02:00:00:00:00:01",
	"ether dst 02:00:00:00:00:02",
	"ether broadcast",
	"ether multicast",
	"broadcast",
	"multicast",
	"ip multicast",
	"ip6 multicast",
	"ether proto 0x88cc",
	"ether proto \\arp",
	"ip proto 47",
	"ip6 proto 6",
	"proto 17",
	"ip proto \\tcp",
	"tcp[13] & 2 != 0",
	"tcp[tcpflags] & (tcp-syn|tcp-ack) != 0",
	"tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack = 0",
	"tcp[tcpflags] == tcp-rst",
	"ip[2:2] > 1500",
	"ip[6] & 0x20 != 0",
	"ip[6:2] & 0x1fff != 0",
	"ip[0] & 0xf > 5",
	"ip[8] < 10",
	"ip6[6] = 58",
	"udp[0:2] = 53 or udp[2:2] = 53",
	"icmp[icmptype] == icmp-echo",
	"icmp[0] = 0 or icmp[0] = 8",
	"icmp6[icmp6type] = icmp6-echo",
	"icmp6[0] = 135",
	"ether[0] & 1 = 0",
	"ether[12:2] = 0x0800",
	"arp[6:2] = 1",
	"tcp[(tcp[12] >> 4) * 4] = 0x47",
	"tcp[((tcp[12] & 0xf0) >> 2):4] = 0x47455420",
	"ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) != 0",
	"len > 100",
	"len <= 64",
	"len >= 60 and len < 200",
	"len - 14 > 100",
	"len * 2 > 300",
	"len / 4 = 20",
	"len % 7 = 3",
	"len | 1 = 101",
	"len ^ 0xff > 100",
	"ip[0] + tcp[0] = 0x45",
	"ip[2:2] = udp[4:2] + 20",
	"tcp[ip[0] & 0xf] > 0",
	"ip[1] = ip[8]",
	"ip[ip[0] & 0xf] != 0",
	"ip[2:2] > len - 14",
	"greater 100",
	"less 100",
	"not tcp",
	"! tcp",
	"not (tcp or udp)",
	"tcp and not port 22",
	"tcp && ! port 22 && ! port 443",
	"host 198.18.0.2 and (port 80 or port 443)",
	"(tcp port 80 or udp port 53) and src net 198.18.0.0/15",
	"tcp or udp and port 53",
	"udp and port 53 or tcp",
	"not not ip",
	"ip and not net 10.0.0.0/8 and not net 198.18.0.0/15",
	"ip6 and tcp and dst port 443",
	"icmp or icmp6 or arp",
	"(((tcp)))",
	"(tcp[13] & 2) != 0",
	"(tcp[13] & 2 != 0)",
	"tcp and (tcp[13] & 2 != 0 or tcp[13] & 1 != 0)",
	"host 198.18.0.2 or 198.18.0.3",
	"src host 198.18.0.2 and not dst port 80",
	"0x10 = tcp[13]",
	"port 80 and not 443",
	"tcp dst port 80 or 8080",
	"src net 10 or 198.18.0.0/15",
	"ip6 and net fd00::/8 and udp port 53",
	"host fd00::1 or fd00::2",
	"ether src 02:00:00:00:00:01 or 02:00:00:00:00:02",
	"vlan 100 or vlan 200",
	"tcp and not vlan",
	"icmp6 and ip6[40] = 128",
	"tcp[13] = 022",
}

// tcpdumpProgram compiles expr with tcpdump for Ethernet, or for raw IP
// through an empty pcap file of link type RAW (tcpdump compiles for the
// file's link type). ok is false when tcpdump refuses the expression.
func tcpdumpProgram(t *testing.T, bin string, expr string, link LinkType) (prog []xbpf.RawInstruction, msg string, ok bool) {
	t.Helper()
	args := []string{"-ddd", "-y", "EN10MB", "--", expr}
	if link == LinkRawIP {
		args = []string{"-ddd", "-r", rawPcap(t), "--", expr}
	}
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, strings.TrimSpace(stderr.String()), false
	}
	prog, err = ParseRaw(string(out))
	if err != nil {
		t.Fatalf("tcpdump %q: ParseRaw: %v", expr, err)
	}
	return prog, "", true
}

var rawPcapPath string

// rawPcap writes an empty pcap file of LINKTYPE_RAW (101).
func rawPcap(t *testing.T) string {
	if rawPcapPath != "" {
		if _, err := os.Stat(rawPcapPath); err == nil {
			return rawPcapPath
		}
	}
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], DefaultSnapLen) // tcpdump returns the file's snap length
	binary.LittleEndian.PutUint32(hdr[20:], 101)
	dir, err := os.MkdirTemp("", "tripcap-bpf-raw")
	if err != nil {
		t.Fatal(err)
	}
	rawPcapPath = filepath.Join(dir, "raw.pcap")
	if err := os.WriteFile(rawPcapPath, hdr, 0o644); err != nil {
		t.Fatal(err)
	}
	return rawPcapPath
}

// vmFor runs prog on frames with their VLAN tags in the frame.
func vmFor(t *testing.T, prog []xbpf.RawInstruction) *xbpf.VM {
	t.Helper()
	ins, ok := xbpf.Disassemble(WithoutVLANMetadata(prog))
	if !ok {
		t.Fatalf("program does not disassemble:\n%s", Disassemble(prog))
	}
	vm, err := xbpf.NewVM(ins)
	if err != nil {
		t.Fatalf("NewVM: %v\n%s", err, Disassemble(prog))
	}
	return vm
}

func run(t *testing.T, vm *xbpf.VM, frame []byte) int {
	t.Helper()
	n, err := vm.Run(frame)
	if err != nil {
		t.Fatalf("VM: %v", err)
	}
	return n
}

// TestExpressionsMatchTcpdump is the proof: for every expression of the
// corpus, on both link types the engine captures, our program and
// tcpdump's select exactly the same crafted and random packets.
func TestExpressionsMatchTcpdump(t *testing.T) {
	bin := testenv.RequireBinary(t, "tcpdump")
	if len(exprCorpus) < 60 {
		t.Fatalf("the corpus has %d expressions; the proof needs at least 60", len(exprCorpus))
	}
	const randomPackets = 3000
	for _, link := range []LinkType{LinkEthernet, LinkRawIP} {
		rng := rand.New(rand.NewPCG(2026, uint64(link)))
		frames := craftedFrames(link)
		crafted := len(frames)
		for range randomPackets {
			frames = append(frames, randomFrame(rng, link))
		}
		var short [][]byte
		for range randomPackets / 3 {
			short = append(short, shortFrame(rng, link))
		}
		compared, shortDiffs, shortRuns := 0, 0, 0
		for _, expr := range exprCorpus {
			want, msg, ok := tcpdumpProgram(t, bin, expr, link)
			got, err := CompileCapture(nil, expr, link, 0)
			if !ok {
				// tcpdump refuses what cannot be on this link (ether on raw
				// IP) or what selects nothing ("expression rejects all
				// packets"): we refuse the first and drop everything on the second.
				if err == nil && !strings.Contains(msg, "rejects all packets") {
					t.Errorf("%v %q: tcpdump refuses it (%s) but it compiles", link, expr, msg)
				}
				if err == nil {
					vm := vmFor(t, got)
					for _, f := range frames {
						if run(t, vm, f) != 0 {
							t.Errorf("%v %q: tcpdump says it rejects all packets, ours accepts %x", link, expr, f)
							break
						}
					}
				}
				continue
			}
			if err != nil {
				t.Errorf("%v %q: tcpdump compiles it, we refuse it: %v", link, expr, err)
				continue
			}
			compared++
			ours, theirs := vmFor(t, got), vmFor(t, want)
			matched, fails := 0, 0
			for i, f := range frames {
				a, b := run(t, ours, f), run(t, theirs, f)
				if a != 0 {
					matched++
				}
				if a != b && fails < 3 {
					fails++
					kind := "random"
					if i < crafted {
						kind = "crafted"
					}
					t.Errorf("%v %q: %s frame %d: ours returns %d, tcpdump's %d\nframe %x\nours:\n%s\ntcpdump's:\n%s",
						link, expr, kind, i, a, b, f, Disassemble(got), Disassemble(want))
				}
			}
			// A frame cut short inside a header the expression reads makes a
			// load fail, which drops the packet; libpcap's optimizer may
			// read the fields in another order than written ("host A or
			// B" compares both sources before loading a destination), so
			// such a frame may be dropped by one program and kept by the
			// other. Complete frames above must agree exactly; here the
			// divergences are counted and reported.
			for _, f := range short {
				shortRuns++
				if run(t, ours, f) != run(t, theirs, f) {
					shortDiffs++
				}
			}
			// A test that selects all or nothing proves little: the
			// generator must reach both sides of every expression.
			if matched == 0 || matched == len(frames) {
				t.Errorf("%v %q: %d of %d frames match; the generator misses a side", link, expr, matched, len(frames))
			}
		}
		t.Logf("%v: %d expressions compared with tcpdump on %d crafted and %d random frames: all agree; on frames cut short inside a header, %d of %d runs differ",
			link, compared, crafted, randomPackets, shortDiffs, shortRuns)
	}
}

// Addresses, ports and MACs the generator draws from, so the corpus's
// values come up often.
var (
	genV4    = [][4]byte{{198, 18, 0, 2}, {198, 18, 0, 3}, {198, 18, 0, 1}, {198, 19, 1, 1}, {10, 1, 2, 3}, {192, 0, 2, 1}, {224, 0, 0, 251}, {255, 255, 255, 255}, {0, 0, 0, 0}, {8, 0, 0, 1}}
	genV6    = []string{"fd00::1", "fd00::2", "fd00::1:2", "fd00:0:0:1::5", "2001:db8::1", "ff02::1", "fe80::1", "::1"}
	genPorts = []uint16{80, 443, 53, 22, 8080, 8050, 1024, 1025, 55000, 0, 65535, 123}
	genMACs  = [][6]byte{{2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {1, 0, 0x5e, 0, 0, 0xfb}, {0x33, 0x33, 0, 0, 0, 1}, {2, 0, 0, 0, 1, 1}}
)

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }

func v6(s string) [16]byte {
	return netip.MustParseAddr(s).As16()
}

// frameSpec describes a frame; randomFrame fills it at random, craftedFrames by hand.
type frameSpec struct {
	macDst, macSrc [6]byte
	tags           []uint16 // VLAN TPIDs; each tag gets vid from vids
	vids           []uint16
	etherType      uint16
	v6             bool
	src4, dst4     [4]byte
	src6, dst6     [16]byte
	proto          uint8
	ihl            int    // IPv4 header words, 5..15
	frag           uint16 // IPv4 flags+offset, or IPv6 fragment offset word
	v6ext          []uint8
	sport, dport   uint16
	tcpFlags       uint8
	tcpOff         uint8 // TCP data offset words
	icmpType       uint8
	payload        []byte
	ttl, tos       uint8
	totalLen       int // IPv4 total length field; 0 = real
}

func (s frameSpec) bytes(link LinkType) []byte {
	var b []byte
	if link == LinkEthernet {
		b = append(b, s.macDst[:]...)
		b = append(b, s.macSrc[:]...)
		for i, tpid := range s.tags {
			b = binary.BigEndian.AppendUint16(b, tpid)
			b = binary.BigEndian.AppendUint16(b, s.vids[i])
		}
		b = binary.BigEndian.AppendUint16(b, s.etherType)
	}
	var l4 []byte
	switch s.proto {
	case tripcap.IPProtoTCP:
		l4 = binary.BigEndian.AppendUint16(l4, s.sport)
		l4 = binary.BigEndian.AppendUint16(l4, s.dport)
		l4 = append(l4, 0, 0, 0, 1, 0, 0, 0, 0, s.tcpOff<<4, s.tcpFlags, 0xff, 0xff, 0, 0, 0, 0)
		for len(l4) < int(s.tcpOff)*4 {
			l4 = append(l4, 1)
		}
	case tripcap.IPProtoUDP, ipProtoSCTP:
		l4 = binary.BigEndian.AppendUint16(l4, s.sport)
		l4 = binary.BigEndian.AppendUint16(l4, s.dport)
		l4 = append(l4, 0, 8, 0, 0)
	case ipProtoICMP, ipProtoICMPv6:
		l4 = append(l4, s.icmpType, 0, 0, 0, 0, 1, 0, 1)
	}
	l4 = append(l4, s.payload...)
	switch {
	case s.etherType == etherTypeARP || s.etherType == etherTypeRARP:
		arp := []byte{0, 1, 8, 0, 6, 4, 0, 1}
		arp = append(arp, s.macSrc[:]...)
		arp = append(arp, s.src4[:]...)
		arp = append(arp, s.macDst[:]...)
		arp = append(arp, s.dst4[:]...)
		b = append(b, arp...)
	case s.v6:
		var ext []byte
		nh := s.proto
		for i := len(s.v6ext) - 1; i >= 0; i-- {
			h := s.v6ext[i]
			if h == ipv6FragmentHdr {
				ext = append([]byte{nh, 0, byte(s.frag >> 8), byte(s.frag), 0, 0, 0, 1}, ext...)
			} else {
				ext = append([]byte{nh, 0, 1, 4, 0, 0, 0, 0}, ext...)
			}
			nh = h
		}
		ip := []byte{0x60, 0, 0, 0}
		ip = binary.BigEndian.AppendUint16(ip, uint16(len(ext)+len(l4)))
		ip = append(ip, nh, 64)
		ip = append(ip, s.src6[:]...)
		ip = append(ip, s.dst6[:]...)
		b = append(b, ip...)
		b = append(b, ext...)
		b = append(b, l4...)
	case s.etherType == etherTypeIPv4 || link == LinkRawIP:
		hl := s.ihl * 4
		ip := []byte{0x40 | byte(s.ihl), s.tos}
		tl := hl + len(l4)
		if s.totalLen != 0 {
			tl = s.totalLen
		}
		ip = binary.BigEndian.AppendUint16(ip, uint16(tl))
		ip = append(ip, 0, 1)
		ip = binary.BigEndian.AppendUint16(ip, s.frag)
		ip = append(ip, s.ttl, s.proto, 0, 0)
		ip = append(ip, s.src4[:]...)
		ip = append(ip, s.dst4[:]...)
		for len(ip) < hl {
			ip = append(ip, 1) // NOP options
		}
		b = append(b, ip...)
		b = append(b, l4...)
	default:
		b = append(b, s.payload...)
	}
	return b
}

func randomFrame(rng *rand.Rand, link LinkType) []byte {
	s := frameSpec{macDst: pick(rng, genMACs), macSrc: pick(rng, genMACs), ihl: 5, tcpOff: 5, ttl: pick(rng, []uint8{1, 5, 64, 128, 255}), tos: pick(rng, []uint8{0, 0, 5, 64})}
	if link == LinkEthernet && rng.IntN(4) == 0 {
		for range 1 + rng.IntN(2) {
			s.tags = append(s.tags, pick(rng, []uint16{etherTypeVLAN, etherTypeQinQ, etherTypeQinQv1}))
			s.vids = append(s.vids, pick(rng, []uint16{100, 200, 0x1064, 7}))
		}
	}
	switch r := rng.IntN(20); {
	case r < 9:
		s.etherType = etherTypeIPv4
	case r < 16:
		s.etherType, s.v6 = etherTypeIPv6, true
	case r < 18:
		s.etherType = pick(rng, []uint16{etherTypeARP, etherTypeRARP})
	default:
		s.etherType = pick(rng, []uint16{0x88cc, 0x8863, uint16(rng.IntN(0x10000))})
	}
	if link == LinkRawIP && !s.v6 {
		s.etherType = etherTypeIPv4 // raw IP carries only IP
	}
	s.src4, s.dst4 = pick(rng, genV4), pick(rng, genV4)
	s.src6, s.dst6 = v6(pick(rng, genV6)), v6(pick(rng, genV6))
	s.proto = pick(rng, []uint8{tripcap.IPProtoTCP, tripcap.IPProtoTCP, tripcap.IPProtoUDP, tripcap.IPProtoUDP, ipProtoICMP, ipProtoICMPv6, ipProtoSCTP, ipProtoIGMP, 47, uint8(rng.IntN(256))})
	if s.v6 && s.proto == ipProtoICMP && rng.IntN(2) == 0 {
		s.proto = ipProtoICMPv6
	}
	if rng.IntN(4) == 0 {
		s.ihl = 5 + rng.IntN(11) // options
	}
	switch rng.IntN(6) {
	case 0:
		s.frag = uint16(rng.IntN(0x2000)) // a later fragment
	case 1:
		s.frag = 0x2000 // MF: a first fragment
	case 2:
		s.frag = 0x4000 // DF
	}
	if s.v6 && rng.IntN(3) == 0 {
		for range 1 + rng.IntN(2) {
			s.v6ext = append(s.v6ext, pick(rng, []uint8{0, ipv6FragmentHdr, 60}))
		}
		if rng.IntN(2) == 0 {
			s.frag = 0
		}
	}
	s.sport, s.dport = pick(rng, genPorts), pick(rng, genPorts)
	if rng.IntN(3) == 0 {
		s.sport = uint16(rng.IntN(0x10000))
	}
	s.tcpFlags = pick(rng, []uint8{0x02, 0x12, 0x10, 0x18, 0x04, 0x11, 0x01, uint8(rng.IntN(256))})
	if rng.IntN(4) == 0 {
		s.tcpOff = uint8(5 + rng.IntN(11))
	}
	s.icmpType = pick(rng, []uint8{0, 8, 3, 128, 129, 135, 136, uint8(rng.IntN(256))})
	n := pick(rng, []int{0, 0, 4, 30, 100, 1400})
	s.payload = make([]byte, n)
	for i := range s.payload {
		s.payload[i] = byte(rng.IntN(256))
	}
	if rng.IntN(3) == 0 {
		copy(s.payload, "GET / HTTP/1.1")
	}
	if rng.IntN(5) == 0 {
		s.totalLen = rng.IntN(3000)
	}
	return s.bytes(link)
}

// shortFrame is a random frame cut short, maybe inside its headers.
func shortFrame(rng *rand.Rand, link LinkType) []byte {
	f := randomFrame(rng, link)
	return f[:rng.IntN(min(len(f), 80))]
}

// craftedFrames are the packets an SRE has in mind: a SYN to a web server,
// DNS, pings, ARP, tagged traffic, fragments, options, extension headers.
func craftedFrames(link LinkType) [][]byte {
	base := frameSpec{macDst: genMACs[1], macSrc: genMACs[0], etherType: etherTypeIPv4, ihl: 5, tcpOff: 5,
		src4: [4]byte{198, 18, 0, 1}, dst4: [4]byte{198, 18, 0, 2}, src6: v6("fd00::1"), dst6: v6("fd00::2"),
		proto: tripcap.IPProtoTCP, sport: 40000, dport: 80, tcpFlags: 0x02, ttl: 64}
	v6 := func(s frameSpec) frameSpec { s.etherType, s.v6 = etherTypeIPv6, true; return s }
	with := func(f func(*frameSpec)) frameSpec { s := base; s.tags = nil; f(&s); return s }
	specs := []frameSpec{
		base,
		with(func(s *frameSpec) { s.tcpFlags = 0x12; s.sport, s.dport = 80, 40000; s.src4, s.dst4 = s.dst4, s.src4 }),
		with(func(s *frameSpec) { s.tcpFlags = 0x10; s.payload = []byte("GET / HTTP/1.1\r\n") }),
		with(func(s *frameSpec) { s.tcpFlags = 0x04 }),
		with(func(s *frameSpec) { s.dport = 443 }),
		with(func(s *frameSpec) { s.dport = 22 }),
		with(func(s *frameSpec) { s.proto, s.dport = tripcap.IPProtoUDP, 53 }),
		with(func(s *frameSpec) { s.proto, s.sport, s.dport = tripcap.IPProtoUDP, 53, 33000 }),
		with(func(s *frameSpec) { s.proto, s.icmpType = ipProtoICMP, 8 }),
		with(func(s *frameSpec) { s.proto, s.icmpType = ipProtoICMP, 0 }),
		with(func(s *frameSpec) { s.proto = ipProtoSCTP }),
		with(func(s *frameSpec) { s.proto = ipProtoIGMP; s.dst4 = [4]byte{224, 0, 0, 1}; s.macDst = genMACs[3] }),
		with(func(s *frameSpec) { s.proto = 47 }),
		with(func(s *frameSpec) { s.ihl = 8 }),                      // options
		with(func(s *frameSpec) { s.frag = 0x2000 }),                // first fragment
		with(func(s *frameSpec) { s.frag = 0x00b9 }),                // later fragment
		with(func(s *frameSpec) { s.payload = make([]byte, 1600) }), // big
		with(func(s *frameSpec) { s.src4 = [4]byte{10, 1, 2, 3} }),
		with(func(s *frameSpec) {
			s.macDst = genMACs[2]
			s.proto = tripcap.IPProtoUDP
			s.dst4 = [4]byte{255, 255, 255, 255}
		}),
		v6(base),
		v6(with(func(s *frameSpec) { s.dport = 443 })),
		v6(with(func(s *frameSpec) { s.proto, s.dport = tripcap.IPProtoUDP, 53 })),
		v6(with(func(s *frameSpec) { s.proto, s.icmpType = ipProtoICMPv6, 128 })),
		v6(with(func(s *frameSpec) {
			s.proto, s.icmpType = ipProtoICMPv6, 135
			s.dst6 = [16]byte{0xff, 2, 15: 1}
			s.macDst = genMACs[4]
		})),
		v6(with(func(s *frameSpec) { s.v6ext = []uint8{ipv6FragmentHdr} })),
		v6(with(func(s *frameSpec) { s.v6ext = []uint8{0} })),
		v6(with(func(s *frameSpec) { s.src6 = [16]byte{0xfd, 0, 0, 0, 0, 0, 0, 1, 15: 5} })),
		with(func(s *frameSpec) { s.etherType = etherTypeARP }),
		with(func(s *frameSpec) { s.etherType = etherTypeARP; s.macDst = genMACs[2] }),
		with(func(s *frameSpec) { s.etherType = etherTypeRARP }),
		with(func(s *frameSpec) { s.etherType = 0x88cc; s.payload = make([]byte, 40) }),
		with(func(s *frameSpec) { s.tags, s.vids = []uint16{etherTypeVLAN}, []uint16{100} }),
		with(func(s *frameSpec) { s.tags, s.vids = []uint16{etherTypeVLAN}, []uint16{200}; s.dport = 80 }),
		with(func(s *frameSpec) { s.tags, s.vids = []uint16{etherTypeQinQ, etherTypeVLAN}, []uint16{100, 200} }),
		with(func(s *frameSpec) {
			s.tags, s.vids = []uint16{etherTypeVLAN}, []uint16{100}
			s.proto = tripcap.IPProtoUDP
		}),
		with(func(s *frameSpec) { s.payload = make([]byte, 100) }),
	}
	var out [][]byte
	for _, s := range specs {
		if link == LinkRawIP && (len(s.tags) > 0 || s.etherType == etherTypeARP || s.etherType == etherTypeRARP || s.etherType == 0x88cc) {
			continue
		}
		out = append(out, s.bytes(link))
	}
	return out
}

// TestExpressionCases checks, without tcpdump, what SREs expect of common expressions.
func TestExpressionCases(t *testing.T) {
	frames := craftedFrames(LinkEthernet)
	for _, tc := range []struct {
		expr string
		want []int // indexes of craftedFrames(LinkEthernet) that match
	}{
		{"tcp port 80 and host 198.18.0.2", []int{0, 1, 2, 3, 13, 14, 16, 17, 35}},
		{"tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack = 0", []int{0, 4, 5, 13, 14, 16, 17, 35}},
		{"vlan 100", []int{31, 33, 34}},
		{"arp", []int{27, 28}},
		{"icmp6", []int{22, 23}},
	} {
		prog, err := CompileCapture(nil, tc.expr, LinkEthernet, 0)
		if err != nil {
			t.Fatalf("%q: %v", tc.expr, err)
		}
		vm := vmFor(t, prog)
		var got []int
		for i, f := range frames {
			if run(t, vm, f) != 0 {
				got = append(got, i)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%q matches frames %v, want %v", tc.expr, got, tc.want)
		}
	}
}

// TestExpressionAndFilters: an expression and Azure filters together
// select what both select.
func TestExpressionAndFilters(t *testing.T) {
	filters := []tripcap.PacketCaptureFilter{{Protocol: "TCP", RemotePort: "80"}}
	both, err := CompileCapture(filters, "host 198.18.0.2", LinkEthernet, 0)
	if err != nil {
		t.Fatal(err)
	}
	onlyF, err := Compile(filters, LinkEthernet, 0)
	if err != nil {
		t.Fatal(err)
	}
	onlyE, err := CompileCapture(nil, "host 198.18.0.2", LinkEthernet, 0)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	frames := craftedFrames(LinkEthernet)
	for range 2000 {
		frames = append(frames, randomFrame(rng, LinkEthernet))
	}
	vb, vf, ve := vmCache{prog: both}, vmCache{prog: onlyF}, vmCache{prog: onlyE}
	n := 0
	for _, f := range frames {
		for _, pt := range []uint32{0, packetOutgoing} {
			b, x, y := vb.run(t, f, pt) != 0, vf.run(t, f, pt) != 0, ve.run(t, f, pt) != 0
			if b != (x && y) {
				t.Fatalf("frame %x pkt_type %d: both=%v filters=%v expression=%v", f, pt, b, x, y)
			}
			if b {
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no frame matched both; the test proves nothing")
	}
}

// TestExpressionDirection: inbound and outbound read the packet type, as
// libpcap's do on a Linux socket (tcpdump cannot compile them offline).
func TestExpressionDirection(t *testing.T) {
	frame := craftedFrames(LinkEthernet)[0]
	for _, tc := range []struct {
		expr    string
		in, out bool
	}{
		{"inbound", true, false},
		{"outbound", false, true},
		{"tcp and inbound", true, false},
		{"not outbound and port 80", true, false},
		{"udp and outbound", false, false},
	} {
		prog, err := CompileCapture(nil, tc.expr, LinkEthernet, 0)
		if err != nil {
			t.Fatalf("%q: %v", tc.expr, err)
		}
		vm := vmCache{prog: prog}
		if got := vm.run(t, frame, 0) != 0; got != tc.in {
			t.Errorf("%q on an incoming SYN: %v", tc.expr, got)
		}
		if got := vm.run(t, frame, packetOutgoing) != 0; got != tc.out {
			t.Errorf("%q on an outgoing SYN: %v", tc.expr, got)
		}
	}
}

func TestExpressionErrors(t *testing.T) {
	for _, tc := range []struct{ expr, want string }{
		{"tcp port eighty", `"eighty" at position 10`},
		{"port http", "service names are not looked up"},
		{"host web.example.com", "host names are not looked up"},
		{"tcp port 80 and", "unexpected end"},
		{"tcp port 80 garbage", `"garbage" at position 13`},
		{"(tcp", "expected )"},
		{"tcp[13] & 2 !=", "unexpected end"},
		{"ip[2:3] > 0", "1, 2 or 4"},
		{"len / 0 > 1", "division by zero"},
		{"len << 32 > 1", "shift by 32"},
		{"ifname eth0", `"ifname" at position 1: not supported`},
		{"gateway router", "does not look names up"},
		{"tcp host 198.18.0.2", "host is for ip, ip6, arp or rarp, not tcp"},
		{"icmp port 80", "port is for tcp, udp or sctp"},
		{"net 198.18.0.1/15", "bits set outside /15"},
		{"ip6 host 198.18.0.2", "IPv4 address with ip6"},
		{"ip host fd00::1", "IPv6 address with ip"},
		{"ether host 1:2:3", "not a MAC address"},
		{"vlan 5000", "0..4095"},
		{"port 70000", "0..65535"},
		{"tcp $ 1", `unexpected character '$' at position 5`},
		{"ether", "ether alone"},
	} {
		_, err := CompileCapture(nil, tc.expr, LinkEthernet, 0)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(tripcap.ErrorMessage(err), "filterExpression: ") {
			t.Errorf("%q: error %v, want filterExpression: …%s…", tc.expr, err, tc.want)
		}
	}
	for _, expr := range []string{"vlan", "ether host 02:00:00:00:00:01", "broadcast"} {
		if _, err := CompileCapture(nil, expr, LinkRawIP, 0); err == nil || !strings.Contains(err.Error(), "only on Ethernet") {
			t.Errorf("%q on raw IP: %v, want only on Ethernet", expr, err)
		}
	}
}
