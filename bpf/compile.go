// Package bpf compiles tripcap's Azure-style packet filters into one classic
// BPF program for an AF_PACKET socket, and reads and checks raw programs
// written by tcpdump (-ddd or -dd).
//
// The compiled program decodes a packet once into scratch memory, with the
// capturing host's side already sorted out:
//
//	M[0..3]  local address (IPv4 in M[0], M[1..3] zero)
//	M[4..7]  remote address
//	M[8]     local port, or noPort
//	M[9]     remote port, or noPort
//	M[10]    upper-layer protocol
//	M[11]    IP version, 4 or 6
//
// and then tests each filter against it, accepting on the first match. The
// semantics are those of tripcap.ParsedFilter.Match; docs/filters.md has the
// user's view.
package bpf

import (
	"fmt"
	"net/netip"

	"github.com/tripcap/tripcap"
	xbpf "golang.org/x/net/bpf"
)

// DefaultSnapLen is what an accepting program returns when no snap length is given.
const DefaultSnapLen = 262144

// LinkType says where the IP header lies in what the socket hands the filter.
type LinkType int

const (
	// LinkEthernet frames start with a 14-byte Ethernet header, possibly
	// followed by one or two VLAN tags. Linux "lo" is Ethernet too, with zero MACs.
	LinkEthernet LinkType = iota + 1
	// LinkRawIP packets start at the IP header: tun devices, WireGuard, ARPHRD_NONE.
	LinkRawIP
)

func (l LinkType) String() string {
	switch l {
	case LinkEthernet:
		return "ethernet"
	case LinkRawIP:
		return "raw-ip"
	}
	return fmt.Sprintf("LinkType(%d)", int(l))
}

// LinkTypeFromARPHRD maps an interface's ARPHRD_* hardware type to the link
// type its AF_PACKET SOCK_RAW frames have. Other types are not supported.
func LinkTypeFromARPHRD(hatype uint16) (LinkType, bool) {
	switch hatype {
	case 1, 772: // ARPHRD_ETHER, ARPHRD_LOOPBACK
		return LinkEthernet, true
	case 0xfffe, 519: // ARPHRD_NONE, ARPHRD_RAWIP
		return LinkRawIP, true
	}
	return 0, false
}

// Scratch memory layout of the compiled program.
const (
	slotLocal      = 0 // 4 words
	slotRemote     = 4 // 4 words
	slotLocalPort  = 8
	slotRemotePort = 9
	slotProto      = 10
	slotVersion    = 11
	slotTransport  = 12 // offset of the transport header
)

// noPort marks a packet without ports. It is above 65535, so every port
// test fails on it: a filter that names a port never matches such a packet.
const noPort = 0xffffffff

// maxIPv6ExtHeaders is how many IPv6 extension headers the program walks
// before it gives up and takes the next header's number as the protocol.
// RFC 8200's recommended order has at most five before the upper layer.
const maxIPv6ExtHeaders = 6

// Ethernet types.
const (
	etherTypeIPv4   = 0x0800
	etherTypeIPv6   = 0x86dd
	etherTypeVLAN   = 0x8100 // 802.1Q
	etherTypeQinQ   = 0x88a8 // 802.1ad
	etherTypeQinQv1 = 0x9100 // pre-standard Q-in-Q, still seen
)

// Compile returns one classic BPF program that accepts a packet (returning
// snapLen, or DefaultSnapLen if 0) when it matches any of the filters, and
// drops it (returning 0) otherwise. With no filters, or a filter without any
// constraint, it accepts everything. The program reads skb->pkt_type
// (SKF_AD_PKTTYPE) to tell outgoing packets from incoming ones, so it is
// meant for AF_PACKET sockets. Bad filters give the same *tripcap.Error as
// tripcap.ValidateFilters; so does a filter set too large for the kernel.
func Compile(filters []tripcap.PacketCaptureFilter, link LinkType, snapLen uint32) ([]xbpf.RawInstruction, error) {
	return CompileCapture(filters, "", link, snapLen)
}

// CompileCapture returns the program of what a capture selects: packets
// that match the tcpdump expression (if not blank) and any of the Azure
// filters (if there are some). Errors name the field: filters or
// filterExpression.
func CompileCapture(filters []tripcap.PacketCaptureFilter, expression string, link LinkType, snapLen uint32) ([]xbpf.RawInstruction, error) {
	if link != LinkEthernet && link != LinkRawIP {
		return nil, tripcap.Errorf(tripcap.EINVALID, "bpf: unsupported link type %v", link)
	}
	parsed, err := tripcap.ParseFilters(filters)
	if err != nil {
		return nil, err
	}
	expr, err := tripcap.ParseFilterExpression(expression)
	if err != nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "filterExpression: %s", tripcap.ErrorMessage(err))
	}
	if snapLen == 0 {
		snapLen = DefaultSnapLen
	}
	for _, p := range parsed {
		if p.MatchesAll() {
			parsed = nil
			break
		}
	}
	if len(parsed) == 0 && expr == nil {
		return []xbpf.RawInstruction{{Op: clsRET | retK, K: snapLen}}, nil
	}

	c := &compiler{accept: snapLen}
	if expr != nil {
		pass, drop := c.label(), c.label()
		if err := emitExpression(&c.asm, expr.Root, link, pass, drop); err != nil {
			return nil, tripcap.Errorf(tripcap.EINVALID, "filterExpression: %s", tripcap.ErrorMessage(err))
		}
		c.mark(drop)
		c.ret(0)
		c.mark(pass)
	}
	if len(parsed) > 0 {
		c.program(link, parsed)
	} else {
		c.ret(snapLen)
	}
	prog, err := c.assemble()
	if err != nil {
		return nil, err
	}
	if len(prog) > MaxInstructions {
		field := "filters"
		if expr != nil {
			field = "filterExpression"
		}
		return nil, tripcap.Errorf(tripcap.EINVALID,
			"%s: they compile to %d BPF instructions, more than the kernel's limit of %d; use fewer addresses or ports, or ranges",
			field, len(prog), MaxInstructions)
	}
	// The kernel would refuse a program this check refuses; better a clear
	// error here than EINVAL from setsockopt.
	if err := Validate(prog); err != nil {
		return nil, fmt.Errorf("bpf: internal error: compiled program is invalid: %w", err)
	}
	return prog, nil
}

type compiler struct {
	asm
	accept uint32
	drop   label // ret #0
	body   label // the filter tests; scratch memory is filled in
	ports  label // reads the ports at M[transport], if there are four bytes
}

func (c *compiler) program(link LinkType, filters []tripcap.ParsedFilter) {
	c.drop, c.body, c.ports = c.label(), c.label(), c.label()
	ipv4, ipv6 := c.label(), c.label()

	// Each link layer leaves the offset of the IP header in X.
	switch link {
	case LinkEthernet:
		c.ethernet(ipv4, ipv6)
	case LinkRawIP:
		c.ldxImm(0)
		c.ldAbs(sizeB, 0)
		c.alu(aluAND, 0xf0)
		c.jeq(0x40, ipv4, next)
		c.jeq(0x60, ipv6, c.drop)
	}
	c.mark(ipv4)
	c.ipv4()
	c.mark(ipv6)
	c.ipv6()
	c.mark(c.ports)
	c.readPorts()

	c.mark(c.body)
	for _, f := range filters {
		c.filter(f)
	}
	c.mark(c.drop)
	c.ret(0)
}

// ethernet skips the Ethernet header and up to two VLAN tags. When the NIC
// or the kernel has taken the tag off (VLAN offload), the socket sees the
// frame untagged, with the tag only in the metadata; that is the no-tag case
// here, so both work and the VLAN id does not matter.
func (c *compiler) ethernet(ipv4, ipv6 label) {
	etherType := c.label()
	off := uint32(12)
	for tag := 0; tag <= 2; tag++ {
		c.ldAbs(sizeH, off)
		if tag == 2 {
			// A third tag is not followed: the frame is dropped as not IP.
			c.ldxImm(off + 2)
			break
		}
		tagged := c.label()
		c.jeq(etherTypeVLAN, tagged, next)
		c.jeq(etherTypeQinQ, tagged, next)
		c.jeq(etherTypeQinQv1, tagged, next)
		c.ldxImm(off + 2)
		c.ja(etherType)
		c.mark(tagged)
		off += 4
	}
	c.mark(etherType)
	c.jeq(etherTypeIPv4, ipv4, next)
	c.jeq(etherTypeIPv6, ipv6, c.drop)
}

// ipv4 decodes an IPv4 header at X. A header shorter than 20 bytes, in the
// packet or by its IHL, drops the packet: it is not IP we can read.
func (c *compiler) ipv4() {
	c.ldInd(sizeB, 0)
	c.alu(aluAND, 0xf0)
	c.jeq(0x40, next, c.drop)
	c.ldInd(sizeB, 0)
	c.alu(aluAND, 0x0f)
	c.jge(5, next, c.drop)
	c.alu(aluLSH, 2)
	c.aluX(aluADD)
	c.st(slotTransport)
	c.ldImm(4)
	c.st(slotVersion)
	// The kernel refuses a program that may read a slot no path has
	// written; the address tests read all four words whatever the version.
	c.ldImm(0)
	for _, s := range []uint32{1, 2, 3, 5, 6, 7} {
		c.st(s)
	}
	out, done := c.label(), c.label()
	c.ldPktType()
	c.jeq(packetOutgoing, out, next)
	c.ldInd(sizeW, 16)
	c.st(slotLocal)
	c.ldInd(sizeW, 12)
	c.st(slotRemote)
	c.ja(done)
	c.mark(out)
	c.ldInd(sizeW, 12)
	c.st(slotLocal)
	c.ldInd(sizeW, 16)
	c.st(slotRemote)
	c.mark(done)

	c.ldImm(noPort)
	c.st(slotLocalPort)
	c.st(slotRemotePort)
	c.ldInd(sizeB, 9)
	c.st(slotProto)
	tcpudp := c.label()
	c.jeq(tripcap.IPProtoTCP, tcpudp, next)
	c.jeq(tripcap.IPProtoUDP, tcpudp, c.body)
	c.mark(tcpudp)
	// A non-zero fragment offset: the ports are in the first fragment.
	c.ldInd(sizeH, 6)
	c.jset(0x1fff, c.body, c.ports)
}

// ipv6 decodes an IPv6 header at X and walks the extension headers that may
// come before the upper layer: Hop-by-Hop Options (0), Routing (43),
// Fragment (44) and Destination Options (60), up to maxIPv6ExtHeaders. AH
// and ESP are not walked: their protocol is 51 or 50. A non-first fragment
// ends the walk: its protocol is the Fragment header's next header, and it
// has no ports.
func (c *compiler) ipv6() {
	c.ldInd(sizeB, 0)
	c.alu(aluAND, 0xf0)
	c.jeq(0x60, next, c.drop)
	c.ldImm(6)
	c.st(slotVersion)
	out, done := c.label(), c.label()
	c.ldPktType()
	c.jeq(packetOutgoing, out, next)
	c.addrs6(24, 8) // incoming: local is the destination
	c.ja(done)
	c.mark(out)
	c.addrs6(8, 24)
	c.mark(done)

	c.ldImm(noPort)
	c.st(slotLocalPort)
	c.st(slotRemotePort)
	c.ldInd(sizeB, 6)
	c.st(slotProto)
	c.txa()
	c.alu(aluADD, 40)
	c.tax()
	c.ldMem(slotProto)
	// Here and in each round: A is a next-header value, X the offset of the
	// header it describes.
	upper := c.label()
	for i := 0; i < maxIPv6ExtHeaders; i++ {
		generic, frag, round := c.label(), c.label(), c.label()
		if i == maxIPv6ExtHeaders-1 {
			round = upper
		}
		c.jeq(0, generic, next)
		c.jeq(43, generic, next)
		c.jeq(60, generic, next)
		c.jeq(44, frag, upper)

		// Hop-by-Hop, Routing, Destination Options: length in 8-byte units, not counting the first 8.
		c.mark(generic)
		c.ldInd(sizeB, 0)
		c.st(slotProto)
		c.ldInd(sizeB, 1)
		c.alu(aluADD, 1)
		c.alu(aluLSH, 3)
		c.aluX(aluADD)
		c.tax()
		c.ldMem(slotProto)
		c.ja(round)

		// Fragment: 8 bytes; the offset is the top 13 bits of bytes 2-3.
		c.mark(frag)
		c.ldInd(sizeB, 0)
		c.st(slotProto)
		c.ldInd(sizeH, 2)
		c.jset(0xfff8, c.body, next)
		c.txa()
		c.alu(aluADD, 8)
		c.tax()
		c.ldMem(slotProto)
		if round != upper {
			c.mark(round)
		}
	}
	c.mark(upper)
	tcpudp := c.label()
	c.jeq(tripcap.IPProtoTCP, tcpudp, next)
	c.jeq(tripcap.IPProtoUDP, tcpudp, c.body)
	c.mark(tcpudp)
	c.txa()
	c.st(slotTransport)
	// falls through to readPorts
}

// addrs6 copies the IPv6 addresses at X+local and X+remote to scratch memory.
func (c *compiler) addrs6(local, remote uint32) {
	for w := range uint32(4) {
		c.ldInd(sizeW, local+4*w)
		c.st(slotLocal + w)
	}
	for w := range uint32(4) {
		c.ldInd(sizeW, remote+4*w)
		c.st(slotRemote + w)
	}
}

// readPorts reads the two ports at M[transport], if the packet holds them;
// a shorter transport header leaves noPort.
func (c *compiler) readPorts() {
	c.ldMem(slotTransport)
	c.alu(aluADD, 4)
	c.tax()
	c.ldLen()
	c.jgeX(next, c.body)
	c.ldxMem(slotTransport)
	out := c.label()
	c.ldPktType()
	c.jeq(packetOutgoing, out, next)
	c.ldInd(sizeH, 2)
	c.st(slotLocalPort)
	c.ldInd(sizeH, 0)
	c.st(slotRemotePort)
	c.ja(c.body)
	c.mark(out)
	c.ldInd(sizeH, 0)
	c.st(slotLocalPort)
	c.ldInd(sizeH, 2)
	c.st(slotRemotePort)
	// falls through to the body
}

// filter tests one filter: on a match it accepts, otherwise it goes on
// to the next filter (or the final drop).
func (c *compiler) filter(f tripcap.ParsedFilter) {
	fail := c.label()
	switch f.Protocol {
	case tripcap.FilterTCP:
		c.ldMem(slotProto)
		c.jeq(tripcap.IPProtoTCP, next, fail)
	case tripcap.FilterUDP:
		c.ldMem(slotProto)
		c.jeq(tripcap.IPProtoUDP, next, fail)
	}
	// With protocol Any, a port test itself limits the match to TCP and
	// UDP: other packets carry noPort.
	c.addrs(slotLocal, f.LocalAddrs, fail)
	c.addrs(slotRemote, f.RemoteAddrs, fail)
	c.portSet(slotLocalPort, f.LocalPorts, fail)
	c.portSet(slotRemotePort, f.RemotePorts, fail)
	c.ret(c.accept)
	c.mark(fail)
}

func (c *compiler) addrs(base uint32, set tripcap.AddrSet, fail label) {
	if len(set) == 0 {
		return
	}
	var v4, v6 []tripcap.AddrRange
	for _, r := range set {
		if r.From.Is4() {
			v4 = append(v4, r)
		} else {
			v6 = append(v6, r)
		}
	}
	ok := c.label()
	c.ldMem(slotVersion)
	if len(v4) > 0 {
		notV4 := fail
		if len(v6) > 0 {
			notV4 = c.label()
		}
		c.jeq(4, next, notV4)
		c.ldMem(base)
		for i, r := range v4 {
			miss := fail
			if i < len(v4)-1 {
				miss = c.label()
			}
			c.inRange(word(r.From.As4()), word(r.To.As4()), ok, miss)
			if miss != fail {
				c.mark(miss)
			}
		}
		if len(v6) == 0 {
			c.mark(ok)
			return
		}
		c.mark(notV4) // the version is 6
	} else {
		c.jeq(6, next, fail)
	}
	for i, r := range v6 {
		miss := fail
		if i < len(v6)-1 {
			miss = c.label()
		}
		c.inRange6(base, words6(r.From), words6(r.To), ok, miss)
		if miss != fail {
			c.mark(miss)
		}
	}
	c.mark(ok)
}

// inRange jumps to ok if lo <= A <= hi, else to miss.
func (c *compiler) inRange(lo, hi uint32, ok, miss label) {
	if lo == hi {
		c.jeq(lo, ok, miss)
		return
	}
	if lo > 0 {
		c.jge(lo, next, miss)
	}
	c.jgt(hi, miss, ok)
}

// inRange6 jumps to ok if the 128-bit address in M[base..base+3] lies in
// [lo, hi], comparing word by word, most significant first.
func (c *compiler) inRange6(base uint32, lo, hi [4]uint32, ok, miss label) {
	w0 := 0 // the first word where lo and hi differ
	for w0 < 4 && lo[w0] == hi[w0] {
		c.ldMem(base + uint32(w0))
		if w0 == 3 {
			c.jeq(lo[w0], ok, miss)
			return
		}
		c.jeq(lo[w0], next, miss)
		w0++
	}
	c.ldMem(base + uint32(w0))
	if w0 == 3 {
		c.inRange(lo[3], hi[3], ok, miss)
		return
	}
	// lo[w0] < hi[w0]: strictly between is in; equal to an end leaves the
	// rest to compare against that end.
	aboveLo := c.label()
	c.jgt(lo[w0], aboveLo, next)
	c.jeq(lo[w0], next, miss)
	for w := w0 + 1; w < 4; w++ { // rest >= lo
		c.ldMem(base + uint32(w))
		if w == 3 {
			c.jge(lo[w], ok, miss)
			break
		}
		c.jgt(lo[w], ok, next)
		c.jeq(lo[w], next, miss)
	}
	c.mark(aboveLo) // A is still M[base+w0]
	c.jgt(hi[w0], miss, next)
	c.jeq(hi[w0], next, ok)
	for w := w0 + 1; w < 4; w++ { // rest <= hi
		c.ldMem(base + uint32(w))
		if w == 3 {
			c.jgt(hi[w], miss, ok)
			break
		}
		c.jgt(hi[w], miss, next)
		c.jeq(hi[w], next, ok)
	}
}

func (c *compiler) portSet(slot uint32, set tripcap.PortSet, fail label) {
	if len(set) == 0 {
		return
	}
	ok := c.label()
	c.ldMem(slot)
	for i, r := range set {
		miss := fail
		if i < len(set)-1 {
			miss = c.label()
		}
		if r.From == r.To {
			c.jeq(uint32(r.From), ok, miss)
		} else {
			// Even 0-65535 needs the upper test: it rejects noPort.
			if r.From > 0 {
				c.jge(uint32(r.From), next, miss)
			}
			c.jgt(uint32(r.To), miss, ok)
		}
		if miss != fail {
			c.mark(miss)
		}
	}
	c.mark(ok)
}

func word(b [4]byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func words6(a netip.Addr) [4]uint32 {
	b := a.As16()
	var w [4]uint32
	for i := range w {
		w[i] = word([4]byte(b[4*i : 4*i+4]))
	}
	return w
}
