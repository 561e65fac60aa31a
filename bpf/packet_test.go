package bpf

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
	xbpf "golang.org/x/net/bpf"
)

// ldPktType is the one instruction of a compiled program the x/net/bpf VM
// cannot run: `ld #type` (SKF_AD_OFF + SKF_AD_PKTTYPE).
var ldPktType = xbpf.RawInstruction{Op: clsLD | modeABS | sizeW, K: skfADOff + skfADPktType}

// newTestVM returns a VM running prog as the kernel would on packets whose
// skb->pkt_type is pktType. x/net/bpf's VM implements no ancillary load but
// #len, so each `ld #type`, and nothing else, is replaced by `ld #pktType`:
// the same effect on A at the same index, so every jump stays valid. Any
// other ancillary load makes NewVM fail, failing the test.
func newTestVM(t testing.TB, prog []xbpf.RawInstruction, pktType uint32) *xbpf.VM {
	t.Helper()
	ins := make([]xbpf.Instruction, len(prog))
	for i, ri := range prog {
		if ri == ldPktType {
			ri = xbpf.RawInstruction{Op: clsLD | modeIMM, K: pktType}
		}
		ins[i] = ri.Disassemble()
	}
	vm, err := xbpf.NewVM(ins)
	if err != nil {
		t.Fatalf("NewVM: %v\n%s", err, Disassemble(prog))
	}
	return vm
}

// vmCache keeps one VM per pkt_type for a program.
type vmCache struct {
	prog []xbpf.RawInstruction
	vms  map[uint32]*xbpf.VM
}

func (c *vmCache) run(t testing.TB, frame []byte, pktType uint32) int {
	t.Helper()
	if c.vms == nil {
		c.vms = map[uint32]*xbpf.VM{}
	}
	vm := c.vms[pktType]
	if vm == nil {
		vm = newTestVM(t, c.prog, pktType)
		c.vms[pktType] = vm
	}
	n, err := vm.Run(frame)
	if err != nil {
		t.Fatalf("VM: %v", err)
	}
	return n
}

// decodeFrame states in plain Go what the compiled program reads from a
// frame, malformed ones included: the reference for fuzzed bytes. A frame
// whose link or IP headers (IPv6 extension headers included) cannot be read
// is not IP: zero addresses. A transport header shorter than 4 bytes has no
// ports.
func decodeFrame(frame []byte, link LinkType, pktType uint32) tripcap.FilterPacket {
	fp := tripcap.FilterPacket{Outgoing: pktType == packetOutgoing}
	be16 := func(off int) int { return int(binary.BigEndian.Uint16(frame[off:])) }
	l3 := 0
	switch link {
	case LinkEthernet:
		off := 12
		for tag := 0; ; tag++ {
			if len(frame) < off+2 {
				return fp
			}
			et := be16(off)
			if tag < 2 && (et == etherTypeVLAN || et == etherTypeQinQ || et == etherTypeQinQv1) {
				off += 4
				continue
			}
			if et != etherTypeIPv4 && et != etherTypeIPv6 {
				return fp
			}
			break
		}
		l3 = off + 2
	case LinkRawIP:
		l3 = 0
	}
	if len(frame) < l3+1 {
		return fp
	}
	switch frame[l3] >> 4 {
	case 4:
		if link == LinkEthernet && be16(l3-2) != etherTypeIPv4 {
			return fp
		}
		ihl := int(frame[l3] & 0x0f)
		if ihl < 5 || len(frame) < l3+20 {
			return fp
		}
		fp.Protocol = frame[l3+9]
		fp.Src = netip.AddrFrom4([4]byte(frame[l3+12 : l3+16]))
		fp.Dst = netip.AddrFrom4([4]byte(frame[l3+16 : l3+20]))
		if (fp.Protocol == 6 || fp.Protocol == 17) && be16(l3+6)&0x1fff == 0 {
			readPorts(&fp, frame, l3+4*ihl)
		}
	case 6:
		if link == LinkEthernet && be16(l3-2) != etherTypeIPv6 {
			return fp
		}
		if len(frame) < l3+40 {
			return fp
		}
		src := netip.AddrFrom16([16]byte(frame[l3+8 : l3+24]))
		dst := netip.AddrFrom16([16]byte(frame[l3+24 : l3+40]))
		nh, x, later := frame[l3+6], l3+40, false
	walk:
		for range maxIPv6ExtHeaders {
			switch nh {
			case 0, 43, 60:
				if len(frame) < x+2 {
					return fp
				}
				nh, x = frame[x], x+(int(frame[x+1])+1)*8
			case 44:
				if len(frame) < x+4 {
					return fp
				}
				nh = frame[x]
				if be16(x+2)&0xfff8 != 0 {
					later = true
					break walk
				}
				x += 8
			default:
				break walk
			}
		}
		fp.Src, fp.Dst, fp.Protocol = src, dst, nh
		if (nh == 6 || nh == 17) && !later {
			readPorts(&fp, frame, x)
		}
	}
	return fp
}

func readPorts(fp *tripcap.FilterPacket, frame []byte, t int) {
	if len(frame) < t+4 {
		return
	}
	fp.SrcPort = binary.BigEndian.Uint16(frame[t:])
	fp.DstPort = binary.BigEndian.Uint16(frame[t+2:])
	fp.HasPorts = true
}

func isIPv6ExtHeader(nh uint8) bool { return nh == 0 || nh == 43 || nh == 44 || nh == 60 }

// fragOffset returns a non-zero 13-bit fragment offset, often a single
// bit, so that a wrong mask shows.
func fragOffset(rng *rand.Rand) uint16 {
	if rng.IntN(2) == 0 {
		return 1 << rng.IntN(13)
	}
	return uint16(1 + rng.IntN(0x1fff))
}

type fragKind int

const (
	fragNone  fragKind = iota
	fragFirst          // offset 0, more fragments
	fragLater          // non-zero offset: no transport header
)

// testPacket describes a frame to build; expected says what a filter
// should see in it, independently of decodeFrame.
type testPacket struct {
	link      LinkType
	vlans     []uint16 // TPIDs of the VLAN tags, outermost first
	etherType uint16   // if set, replaces the IP ethertype (ARP, say)
	v6        bool
	src, dst  netip.Addr
	proto     uint8
	srcPort   uint16
	dstPort   uint16
	frag      fragKind
	ihl       int     // IPv4 header words (5..15); 0 means 5
	ext       []uint8 // IPv6 extension headers in order: 0, 43, 60, or 44 (the Fragment header)
	extLen    uint8   // length field of generic extension headers
	transport int     // bytes after the IP headers
	pktType   uint32
}

func (p testPacket) String() string {
	return fmt.Sprintf("%+v", struct {
		Link           LinkType
		VLANs          []uint16
		EtherType      uint16
		Src, Dst       netip.Addr
		Proto          uint8
		SrcPort, Dport uint16
		Frag           fragKind
		IHL            int
		Ext            []uint8
		Transport      int
		PktType        uint32
	}{p.link, p.vlans, p.etherType, p.src, p.dst, p.proto, p.srcPort, p.dstPort, p.frag, p.ihl, p.ext, p.transport, p.pktType})
}

// expected is what the filter should see in the frame p builds.
func (p testPacket) expected() tripcap.FilterPacket {
	fp := tripcap.FilterPacket{Outgoing: p.pktType == packetOutgoing}
	if p.etherType != 0 || len(p.vlans) > 2 {
		return fp
	}
	fp.Src, fp.Dst, fp.Protocol = p.src, p.dst, p.proto
	if p.v6 && len(p.ext) > maxIPv6ExtHeaders {
		fp.Protocol = p.ext[maxIPv6ExtHeaders]
		return fp
	}
	if (p.proto == 6 || p.proto == 17) && p.frag != fragLater && p.transport >= 4 {
		fp.HasPorts = true
		fp.SrcPort, fp.DstPort = p.srcPort, p.dstPort
	}
	return fp
}

// bytes builds the frame; rng fills what the filter ignores.
func (p testPacket) bytes(rng *rand.Rand) []byte {
	junk := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	var b []byte
	if p.link == LinkEthernet {
		if rng.IntN(4) == 0 {
			b = make([]byte, 12) // Linux lo: zero MACs
		} else {
			b = junk(12)
		}
		for _, tpid := range p.vlans {
			b = binary.BigEndian.AppendUint16(b, tpid)
			b = binary.BigEndian.AppendUint16(b, uint16(rng.Uint32()))
		}
		switch {
		case p.etherType != 0:
			b = binary.BigEndian.AppendUint16(b, p.etherType)
		case p.v6:
			b = binary.BigEndian.AppendUint16(b, etherTypeIPv6)
		default:
			b = binary.BigEndian.AppendUint16(b, etherTypeIPv4)
		}
	}
	// The transport header, or a fragment's data.
	var l4 []byte
	if (p.proto == 6 || p.proto == 17) && p.frag != fragLater && p.transport >= 4 {
		l4 = binary.BigEndian.AppendUint16(l4, p.srcPort)
		l4 = binary.BigEndian.AppendUint16(l4, p.dstPort)
		l4 = append(l4, junk(p.transport-4)...)
	} else {
		l4 = junk(p.transport)
	}
	if !p.v6 {
		ihl := max(p.ihl, 5)
		h := junk(4 * ihl)
		h[0] = 0x40 | byte(ihl)
		binary.BigEndian.PutUint16(h[2:], uint16(4*ihl+len(l4)))
		flags := uint16(rng.IntN(4)) << 14 // reserved and DF: noise to the filter
		switch p.frag {
		case fragFirst:
			flags |= 1 << 13 // MF, offset 0
		case fragLater:
			flags |= fragOffset(rng) | uint16(rng.IntN(2))<<13
		}
		binary.BigEndian.PutUint16(h[6:], flags)
		h[9] = p.proto
		a, d := p.src.As4(), p.dst.As4()
		copy(h[12:], a[:])
		copy(h[16:], d[:])
		return append(append(b, h...), l4...)
	}
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(l4)))
	h[7] = 64
	a, d := p.src.As16(), p.dst.As16()
	copy(h[8:], a[:])
	copy(h[24:], d[:])
	chain := append(append([]uint8{}, p.ext...), p.proto)
	h[6] = chain[0]
	for i, e := range p.ext {
		if e == 44 {
			f := junk(8)
			f[0], f[1] = chain[i+1], 0
			// M (0 with offset 0 is an atomic fragment) and the reserved bits.
			field := uint16(rng.IntN(8))
			if p.frag == fragLater {
				field |= fragOffset(rng) << 3
			}
			binary.BigEndian.PutUint16(f[2:], field)
			h = append(h, f...)
			continue
		}
		g := junk((int(p.extLen) + 1) * 8)
		g[0], g[1] = chain[i+1], p.extLen
		h = append(h, g...)
	}
	return append(append(b, h...), l4...)
}

// Pools of values that filters and packets share, so filters often match.
var (
	wordPool = [...]uint32{0, 1, 2, 0x20010db8, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff}
	portPool = [...]uint16{0, 1, 53, 80, 81, 443, 8080, 65534, 65535}
)

func randAddr(rng *rand.Rand, v6 bool) netip.Addr {
	if !v6 {
		switch rng.IntN(10) {
		case 0:
			return netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		case 1:
			return netip.AddrFrom4([4]byte{255, 255, 255, 255})
		case 2:
			return netip.AddrFrom4([4]byte{})
		}
		return netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(2)), byte(rng.IntN(8))})
	}
	w := [4]uint32{0x20010db8, 0, 0, uint32(rng.IntN(8))}
	for range rng.IntN(3) {
		i := rng.IntN(4)
		if rng.IntN(4) == 0 {
			w[i] = rng.Uint32()
		} else {
			w[i] = wordPool[rng.IntN(len(wordPool))]
		}
	}
	var b [16]byte
	for i, x := range w {
		binary.BigEndian.PutUint32(b[4*i:], x)
	}
	return netip.AddrFrom16(b)
}

func randPort(rng *rand.Rand) uint16 {
	if rng.IntN(4) == 0 {
		return uint16(rng.Uint32())
	}
	return portPool[rng.IntN(len(portPool))]
}

// randPacket returns a well-formed packet, or now and then a non-IP one.
func randPacket(rng *rand.Rand, link LinkType) testPacket {
	p := testPacket{link: link, v6: rng.IntN(2) == 0}
	if link == LinkEthernet {
		tpids := [...]uint16{etherTypeVLAN, etherTypeQinQ, etherTypeQinQv1}
		for range rng.IntN(3) {
			p.vlans = append(p.vlans, tpids[rng.IntN(len(tpids))])
		}
		switch rng.IntN(40) {
		case 0:
			p.etherType = 0x0806 // ARP
		case 1:
			p.vlans = append(p.vlans, etherTypeVLAN) // a third tag is not followed
		}
	}
	p.src, p.dst = randAddr(rng, p.v6), randAddr(rng, p.v6)
	switch rng.IntN(10) {
	case 0:
		p.proto = 1 // ICMP
		if p.v6 {
			p.proto = 58
		}
	case 1:
		p.proto = uint8(rng.Uint32())
		if p.v6 && isIPv6ExtHeader(p.proto) {
			p.proto = 59 // No Next Header; an extension header here would be walked
		}
	case 2, 3, 4, 5:
		p.proto = 6
	default:
		p.proto = 17
	}
	p.srcPort, p.dstPort = randPort(rng), randPort(rng)
	switch rng.IntN(8) {
	case 0:
		p.frag = fragFirst
	case 1:
		p.frag = fragLater
	}
	p.transport = 4 + rng.IntN(40)
	if rng.IntN(20) == 0 {
		p.transport = rng.IntN(4)
	}
	if !p.v6 && rng.IntN(4) == 0 {
		p.ihl = 5 + rng.IntN(11)
	}
	if p.v6 {
		generic := [...]uint8{0, 43, 60}
		n := rng.IntN(3)
		if rng.IntN(10) == 0 {
			n = rng.IntN(maxIPv6ExtHeaders + 3)
		}
		for range n {
			p.ext = append(p.ext, generic[rng.IntN(3)])
		}
		p.extLen = uint8(rng.IntN(3))
		if p.frag != fragNone {
			// Headers after a Fragment header are in the first fragment only.
			at := rng.IntN(len(p.ext) + 1)
			if p.frag == fragLater {
				at = len(p.ext)
			}
			p.ext = append(p.ext[:at], append([]uint8{44}, p.ext[at:]...)...)
		}
	}
	if rng.IntN(2) == 0 {
		p.pktType = packetOutgoing
	} else {
		p.pktType = [...]uint32{0, 1, 2, 3, 5}[rng.IntN(5)] // host, broadcast, multicast, otherhost, loopback
	}
	return p
}

func randAddrValue(rng *rand.Rand, fam int) string {
	one := func() netip.Addr {
		switch fam {
		case 4:
			return randAddr(rng, false)
		case 6:
			return randAddr(rng, true)
		}
		return randAddr(rng, rng.IntN(2) == 0)
	}
	switch rng.IntN(3) {
	case 0:
		return one().String()
	case 1:
		a := one()
		b := randAddr(rng, !a.Is4())
		if b.Less(a) {
			a, b = b, a
		}
		return a.String() + "-" + b.String()
	}
	s := ""
	for i := range 1 + rng.IntN(4) {
		if i > 0 {
			s += ";"
		}
		s += one().String()
	}
	if rng.IntN(2) == 0 {
		s += ";"
	}
	return s
}

func randPortValue(rng *rand.Rand) string {
	switch rng.IntN(3) {
	case 0:
		return fmt.Sprint(randPort(rng))
	case 1:
		a, b := randPort(rng), randPort(rng)
		if b < a {
			a, b = b, a
		}
		return fmt.Sprintf("%d-%d", a, b)
	}
	s := ""
	for i := range 1 + rng.IntN(4) {
		if i > 0 {
			s += ";"
		}
		s += fmt.Sprint(randPort(rng))
	}
	return s
}

// randFilter returns a valid filter; each field is set about half the time.
func randFilter(rng *rand.Rand) tripcap.PacketCaptureFilter {
	for {
		f := randFilter1(rng)
		_, err := f.Parse()
		if err == nil {
			return f
		}
		// Mixed-family lists may leave IPv4 on one side and IPv6 on the
		// other, which Parse refuses; anything else is a generator bug.
		if !strings.Contains(err.Error(), "no packet can match") {
			panic(fmt.Sprintf("randFilter made %+v: %v", f, err))
		}
	}
}

func randFilter1(rng *rand.Rand) tripcap.PacketCaptureFilter {
	var f tripcap.PacketCaptureFilter
	f.Protocol = [...]string{"", "Any", "any", "TCP", "tcp", "UDP", "Udp"}[rng.IntN(7)]
	fam := [...]int{4, 6, 0}[rng.IntN(3)] // 0: lists may mix families
	if rng.IntN(2) == 0 {
		f.LocalIPAddress = randAddrValue(rng, fam)
	}
	if rng.IntN(2) == 0 {
		f.RemoteIPAddress = randAddrValue(rng, fam)
	}
	if rng.IntN(2) == 0 {
		f.LocalPort = randPortValue(rng)
	}
	if rng.IntN(2) == 0 {
		f.RemotePort = randPortValue(rng)
	}
	return f
}

// steer moves p onto or just beside what f asks for, so that the property
// test hits the boundaries of ranges as well as their insides.
func steer(rng *rand.Rand, p *testPacket, f tripcap.ParsedFilter) {
	switch f.Protocol {
	case tripcap.FilterTCP:
		p.proto = 6
	case tripcap.FilterUDP:
		p.proto = 17
	}
	if f.HasPortConstraint() && p.proto != 6 && p.proto != 17 && rng.IntN(4) > 0 {
		p.proto = [...]uint8{6, 17}[rng.IntN(2)]
	}
	near := func(r tripcap.AddrRange) netip.Addr {
		c := []netip.Addr{r.From, r.To, r.From.Prev(), r.To.Next()}
		if a := r.From.Next(); a.IsValid() && a.Compare(r.To) <= 0 {
			c = append(c, a)
		}
		if a := c[rng.IntN(len(c))]; a.IsValid() {
			return a
		}
		return r.From
	}
	local, remote := &p.dst, &p.src
	if p.pktType == packetOutgoing {
		local, remote = remote, local
	}
	sets := [2]tripcap.AddrSet{f.LocalAddrs, f.RemoteAddrs}
	addrs := [2]*netip.Addr{local, remote}
	first := rng.IntN(2)
	if len(sets[first]) == 0 {
		first = 1 - first
	}
	if len(sets[first]) > 0 {
		a := near(sets[first][rng.IntN(len(sets[first]))])
		*addrs[first] = a
		p.v6 = a.Is6()
		other := 1 - first
		var same []tripcap.AddrRange
		for _, r := range sets[other] {
			if r.From.Is6() == p.v6 {
				same = append(same, r)
			}
		}
		if len(same) > 0 {
			*addrs[other] = near(same[rng.IntN(len(same))])
		} else if addrs[other].Is6() != p.v6 {
			*addrs[other] = randAddr(rng, p.v6)
		}
	}
	if p.v6 && p.frag != fragNone && !slices.Contains(p.ext, 44) {
		p.ext = append(p.ext, 44) // was IPv4: give the fragment its header
	}
	if p.v6 && isIPv6ExtHeader(p.proto) {
		p.proto = 59
	}
	nearPort := func(s tripcap.PortSet, cur uint16) uint16 {
		if len(s) == 0 {
			return cur
		}
		r := s[rng.IntN(len(s))]
		return [...]uint16{r.From, r.To, r.From - 1, r.To + 1, r.From + 1}[rng.IntN(5)]
	}
	lp, rp := &p.dstPort, &p.srcPort
	if p.pktType == packetOutgoing {
		lp, rp = rp, lp
	}
	*lp = nearPort(f.LocalPorts, *lp)
	*rp = nearPort(f.RemotePorts, *rp)
}
