package bpf

import (
	"github.com/tripcap/tripcap"
	xbpf "golang.org/x/net/bpf"
)

// The expression compiler follows libpcap's code generation for the same
// link type, test for test and load for load, in the order libpcap makes
// them: a load past the end of a packet ends a classic BPF program with
// "drop", so the same packets are dropped only if the same loads are
// tried. bpf/expr_test.go checks the result against tcpdump's own program.

// exprCompiler emits the code of a parsed pcap-filter expression into asm.
type exprCompiler struct {
	*asm
	link LinkType
	// vlans counts the vlan primitives met so far: as in libpcap, each
	// one moves every later offset by a tag, whatever the boolean structure.
	vlans uint32
	// sp is the next free scratch slot for arithmetic temporaries.
	sp uint32
	// meta: the kernel holds the frame's outer VLAN tag in the packet's
	// metadata (it always takes it out of received frames), so the first
	// vlan primitive tests the metadata and moves no offset, as libpcap's
	// program for a live Linux socket does.
	meta, metaUsed bool
}

// Ancillary loads of the VLAN metadata (SKF_AD_VLAN_TAG, SKF_AD_VLAN_TAG_PRESENT).
const (
	skfADVLANTag        = 44
	skfADVLANTagPresent = 48
)

// emitExpression emits the code of an expression. On Ethernet, one with a vlan
// primitive is compiled twice, for a tag in the metadata and for none, and
// the program picks by SKF_AD_VLAN_TAG_PRESENT: libpcap's live program does
// the same with offsets kept in scratch memory.
func emitExpression(a *asm, root tripcap.ExprNode, link LinkType, pass, drop label) error {
	if link != LinkEthernet || !hasVLAN(root) {
		return (&exprCompiler{asm: a, link: link}).node(root, pass, drop)
	}
	inline, meta := a.label(), a.label()
	a.ldAbs(sizeW, skfADOff+skfADVLANTagPresent)
	a.jeq(1, meta, inline)
	a.mark(inline)
	if err := (&exprCompiler{asm: a, link: link}).node(root, pass, drop); err != nil {
		return err
	}
	a.mark(meta)
	return (&exprCompiler{asm: a, link: link, meta: true}).node(root, pass, drop)
}

func hasVLAN(n tripcap.ExprNode) bool {
	switch n := n.(type) {
	case tripcap.ExprAnd:
		return hasVLAN(n.X) || hasVLAN(n.Y)
	case tripcap.ExprOr:
		return hasVLAN(n.X) || hasVLAN(n.Y)
	case tripcap.ExprNot:
		return hasVLAN(n.X)
	case *tripcap.ExprPrimitive:
		return n.Kind == tripcap.KindVLAN
	}
	return false
}

// WithoutVLANMetadata returns prog for frames whose VLAN tag is in the
// frame, as user space has them once the tag is put back: the metadata
// tests read "no tag in the metadata", and the loads of the tag that then
// never run read 0. x/net/bpf's VM, which has no such loads, can run it.
func WithoutVLANMetadata(prog []xbpf.RawInstruction) []xbpf.RawInstruction {
	out := make([]xbpf.RawInstruction, len(prog))
	for i, ins := range prog {
		if ins.Op&0x07 == clsLD && ins.Op&0xe0 == modeABS && (ins.K == skfADOff+skfADVLANTagPresent || ins.K == skfADOff+skfADVLANTag) {
			ins = xbpf.RawInstruction{Op: clsLD | modeIMM}
		}
		out[i] = ins
	}
	return out
}

// Ethernet types of the link-layer tests.
const (
	etherTypeARP  = 0x0806
	etherTypeRARP = 0x8035
)

// IP protocol numbers of the protocol qualifiers.
const (
	ipProtoICMP     = 1
	ipProtoIGMP     = 2
	ipProtoSCTP     = 132
	ipProtoICMPv6   = 58
	ipv6FragmentHdr = 44
)

func (c *exprCompiler) errorf(format string, args ...any) error {
	return tripcap.Errorf(tripcap.EINVALID, format, args...)
}

// offLinkType is the offset of the EtherType; offNet that of the network header.
func (c *exprCompiler) offLinkType() uint32 { return 12 + 4*c.vlans }
func (c *exprCompiler) offNet() uint32 {
	if c.link == LinkRawIP {
		return 0
	}
	return 14 + 4*c.vlans
}

// node jumps to t if n holds and to f if not.
func (c *exprCompiler) node(n tripcap.ExprNode, t, f label) error {
	switch n := n.(type) {
	case tripcap.ExprAnd:
		mid := c.label()
		if err := c.node(n.X, mid, f); err != nil {
			return err
		}
		c.mark(mid)
		return c.node(n.Y, t, f)
	case tripcap.ExprOr:
		mid := c.label()
		if err := c.node(n.X, t, mid); err != nil {
			return err
		}
		c.mark(mid)
		return c.node(n.Y, t, f)
	case tripcap.ExprNot:
		return c.node(n.X, f, t)
	case *tripcap.ExprPrimitive:
		return c.primitive(n, t, f)
	case *tripcap.ExprRelation:
		return c.relation(n, t, f)
	}
	return c.errorf("bpf: internal error: unknown expression node %T", n)
}

// etherType tests the link layer's protocol. Raw IP has only IPv4 and
// IPv6, told apart by the version nibble.
func (c *exprCompiler) etherType(et uint32, t, f label) {
	if c.link == LinkRawIP {
		switch et {
		case etherTypeIPv4, etherTypeIPv6:
			c.ldAbs(sizeB, 0)
			c.alu(aluAND, 0xf0)
			v := uint32(0x40)
			if et == etherTypeIPv6 {
				v = 0x60
			}
			c.jeq(v, t, f)
		default:
			c.ja(f)
		}
		return
	}
	c.ldAbs(sizeH, c.offLinkType())
	c.jeq(et, t, f)
}

// ipProto: IPv4 with protocol p.
func (c *exprCompiler) ipProto(p uint32, t, f label) {
	c.etherType(etherTypeIPv4, next, f)
	c.ldAbs(sizeB, c.offNet()+9)
	c.jeq(p, t, f)
}

// ip6Proto: IPv6 whose next header is p, or a Fragment header followed by p.
func (c *exprCompiler) ip6Proto(p uint32, t, f label) {
	c.etherType(etherTypeIPv6, next, f)
	c.ldAbs(sizeB, c.offNet()+6)
	c.jeq(p, t, next)
	c.jeq(ipv6FragmentHdr, next, f)
	c.ldAbs(sizeB, c.offNet()+40)
	c.jeq(p, t, f)
}

// anyIPProto: IPv4 or IPv6 with protocol p.
func (c *exprCompiler) anyIPProto(p uint32, t, f label) {
	v6 := c.label()
	c.ipProto(p, t, v6)
	c.mark(v6)
	c.ip6Proto(p, t, f)
}

// notFragment falls through if the IPv4 packet is a first (or only)
// fragment; otherwise it jumps to f.
func (c *exprCompiler) notFragment(f label) {
	c.ldAbs(sizeH, c.offNet()+6)
	c.jset(0x1fff, f, next)
}

// ldxIPHeaderLen loads X with the IPv4 header length (ldxb 4*([nl]&0xf)).
func (c *exprCompiler) ldxIPHeaderLen() { c.op(clsLDX|modeMSH|sizeB, c.offNet()) }

func (c *exprCompiler) requireEthernet(what string) error {
	if c.link != LinkEthernet {
		return c.errorf("%s: only on Ethernet interfaces, not %v", what, c.link)
	}
	return nil
}

func (c *exprCompiler) primitive(p *tripcap.ExprPrimitive, t, f label) error {
	switch p.Kind {
	case tripcap.KindProto:
		return c.proto(p, t, f)
	case tripcap.KindHost, tripcap.KindNet:
		if p.Proto == "ether" {
			if err := c.requireEthernet("ether host"); err != nil {
				return err
			}
			c.etherHost(p.Dir, p.MAC, t, f)
			return nil
		}
		c.host(p, t, f)
		return nil
	case tripcap.KindPort, tripcap.KindPortRange:
		c.port(p, t, f)
		return nil
	case tripcap.KindVLAN:
		if err := c.requireEthernet("vlan"); err != nil {
			return err
		}
		if c.meta && !c.metaUsed {
			c.metaUsed = true
			if p.HasID {
				c.ldAbs(sizeW, skfADOff+skfADVLANTag)
				c.alu(aluAND, 0x0fff)
				c.jeq(p.Lo, t, f)
			} else {
				c.ja(t)
			}
			return nil
		}
		tagged := c.label()
		c.ldAbs(sizeH, c.offLinkType())
		c.jeq(etherTypeVLAN, tagged, next)
		c.jeq(etherTypeQinQ, tagged, next)
		c.jeq(etherTypeQinQv1, tagged, f)
		c.mark(tagged)
		if p.HasID {
			c.ldAbs(sizeH, c.offLinkType()+2)
			c.alu(aluAND, 0x0fff)
			c.jeq(p.Lo, t, f)
		} else {
			c.ja(t)
		}
		c.vlans++
		return nil
	case tripcap.KindInbound, tripcap.KindOutbound:
		// As libpcap does on a live Linux socket: the packet type.
		c.ldPktType()
		if p.Kind == tripcap.KindOutbound {
			c.jeq(packetOutgoing, t, f)
		} else {
			c.jeq(packetOutgoing, f, t)
		}
		return nil
	case tripcap.KindGreater:
		c.ldLen()
		c.jge(p.Lo, t, f)
		return nil
	case tripcap.KindLess:
		c.ldLen()
		c.jgt(p.Lo, f, t)
		return nil
	case tripcap.KindBroadcast:
		if err := c.requireEthernet("broadcast"); err != nil {
			return err
		}
		c.etherHost(tripcap.DirDst, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, t, f)
		return nil
	case tripcap.KindMulticast:
		switch p.Proto {
		case "ip":
			c.etherType(etherTypeIPv4, next, f)
			c.ldAbs(sizeB, c.offNet()+16)
			c.jge(224, t, f)
		case "ip6":
			c.etherType(etherTypeIPv6, next, f)
			c.ldAbs(sizeB, c.offNet()+24)
			c.jeq(0xff, t, f)
		default:
			if err := c.requireEthernet("multicast"); err != nil {
				return err
			}
			c.ldAbs(sizeB, 0)
			c.jset(1, t, f)
		}
		return nil
	}
	return c.errorf("bpf: internal error: unknown primitive kind %q", p.Kind)
}

func (c *exprCompiler) proto(p *tripcap.ExprPrimitive, t, f label) error {
	if p.HasID { // [ip|ip6|ether] proto N
		switch p.Proto {
		case "":
			c.anyIPProto(p.Lo, t, f)
		case "ip":
			c.ipProto(p.Lo, t, f)
		case "ip6":
			c.ip6Proto(p.Lo, t, f)
		case "ether":
			if err := c.requireEthernet("ether proto"); err != nil {
				return err
			}
			c.etherType(p.Lo, t, f)
		}
		return nil
	}
	switch p.Proto {
	case "ip":
		c.etherType(etherTypeIPv4, t, f)
	case "ip6":
		c.etherType(etherTypeIPv6, t, f)
	case "arp":
		c.etherType(etherTypeARP, t, f)
	case "rarp":
		c.etherType(etherTypeRARP, t, f)
	case "tcp", "udp", "sctp":
		c.anyIPProto(tripcapProto(p.Proto), t, f)
	case "icmp":
		c.ipProto(ipProtoICMP, t, f)
	case "igmp":
		c.ipProto(ipProtoIGMP, t, f)
	case "icmp6":
		c.ip6Proto(ipProtoICMPv6, t, f)
	default:
		return c.errorf("bpf: internal error: unknown protocol %q", p.Proto)
	}
	return nil
}

func tripcapProto(name string) uint32 {
	switch name {
	case "tcp":
		return tripcap.IPProtoTCP
	case "udp":
		return tripcap.IPProtoUDP
	case "sctp":
		return ipProtoSCTP
	}
	return 0
}

// etherHost compares the source (bytes 6-11) and/or destination (0-5)
// MAC, the last four bytes first, as libpcap does.
func (c *exprCompiler) etherHost(dir string, mac [6]byte, t, f label) {
	one := func(off uint32, t, f label) {
		c.ldAbs(sizeW, off+2)
		c.jeq(word([4]byte(mac[2:6])), next, f)
		c.ldAbs(sizeH, off)
		c.jeq(uint32(mac[0])<<8|uint32(mac[1]), t, f)
	}
	c.directed(dir, 6, 0, one, t, f)
}

// directed applies test to the source and/or destination field as dir says.
func (c *exprCompiler) directed(dir string, src, dst uint32, test func(off uint32, t, f label), t, f label) {
	switch dir {
	case tripcap.DirSrc:
		test(src, t, f)
	case tripcap.DirDst:
		test(dst, t, f)
	case tripcap.DirBoth:
		mid := c.label()
		test(src, mid, f)
		c.mark(mid)
		test(dst, t, f)
	default:
		mid := c.label()
		test(src, t, mid)
		c.mark(mid)
		test(dst, t, f)
	}
}

// host tests an IPv4 or IPv6 host or network. An IPv4 one without a
// protocol also matches ARP and RARP packets' sender and target addresses.
func (c *exprCompiler) host(p *tripcap.ExprPrimitive, t, f label) {
	a := p.Net.Addr()
	if a.Is6() {
		c.etherType(etherTypeIPv6, next, f)
		w, m := words6(a), mask6(p.Net.Bits())
		test := func(off uint32, t, f label) {
			last := -1
			for i := range 4 {
				if m[i] != 0 {
					last = i
				}
			}
			if last < 0 {
				c.ja(t)
				return
			}
			for i := 0; i <= last; i++ {
				if m[i] == 0 {
					continue
				}
				c.ldAbs(sizeW, c.offNet()+off+4*uint32(i))
				if m[i] != 0xffffffff {
					c.alu(aluAND, m[i])
				}
				ok := next
				if i == last {
					ok = t
				}
				c.jeq(w[i]&m[i], ok, f)
			}
		}
		c.directed(p.Dir, 8, 24, test, t, f)
		return
	}
	v, m := word(a.As4()), mask4(p.Net.Bits())
	family := func(et, src, dst uint32, t, f label) {
		c.etherType(et, next, f)
		test := func(off uint32, t, f label) {
			if m == 0 {
				c.ja(t)
				return
			}
			c.ldAbs(sizeW, c.offNet()+off)
			if m != 0xffffffff {
				c.alu(aluAND, m)
			}
			c.jeq(v&m, t, f)
		}
		c.directed(p.Dir, src, dst, test, t, f)
	}
	switch p.Proto {
	case "ip":
		family(etherTypeIPv4, 12, 16, t, f)
	case "arp":
		family(etherTypeARP, 14, 24, t, f)
	case "rarp":
		family(etherTypeRARP, 14, 24, t, f)
	default:
		arp, rarp := c.label(), c.label()
		family(etherTypeIPv4, 12, 16, t, arp)
		c.mark(arp)
		family(etherTypeARP, 14, 24, t, rarp)
		c.mark(rarp)
		family(etherTypeRARP, 14, 24, t, f)
	}
}

// port tests TCP, UDP or SCTP ports: on IPv6 at the fixed offset after
// the 40-byte header (libpcap walks no extension header here), on IPv4
// after the header's IHL, in first fragments only.
func (c *exprCompiler) port(p *tripcap.ExprPrimitive, t, f label) {
	protos := []uint32{ipProtoSCTP, tripcap.IPProtoTCP, tripcap.IPProtoUDP}
	if p.Proto != "" {
		protos = []uint32{tripcapProto(p.Proto)}
	}
	inSet := func(ok, f label) {
		for i, pr := range protos {
			if i == len(protos)-1 {
				c.jeq(pr, ok, f)
			} else {
				c.jeq(pr, ok, next)
			}
		}
	}
	match := func(ld func(off uint32), t, f label) {
		test := func(off uint32, t, f label) {
			ld(off)
			if p.Lo == p.Hi {
				c.jeq(p.Lo, t, f)
				return
			}
			c.jge(p.Lo, next, f)
			c.jgt(p.Hi, f, t)
		}
		c.directed(p.Dir, 0, 2, test, t, f)
	}
	v4, ports6, ports4 := c.label(), c.label(), c.label()
	c.etherType(etherTypeIPv6, next, v4)
	c.ldAbs(sizeB, c.offNet()+6)
	inSet(ports6, f)
	c.mark(ports6)
	match(func(off uint32) { c.ldAbs(sizeH, c.offNet()+40+off) }, t, f)
	c.mark(v4)
	c.etherType(etherTypeIPv4, next, f)
	c.ldAbs(sizeB, c.offNet()+9)
	inSet(ports4, f)
	c.mark(ports4)
	c.notFragment(f)
	c.ldxIPHeaderLen()
	match(func(off uint32) { c.ldInd(sizeH, c.offNet()+off) }, t, f)
}

// loadGuard jumps to f unless the packet has the header proto[] reads.
func (c *exprCompiler) loadGuard(proto string, f label) error {
	switch proto {
	case "ether": // the link header, which on raw IP is the IP header
	case "ip":
		c.etherType(etherTypeIPv4, next, f)
	case "ip6":
		c.etherType(etherTypeIPv6, next, f)
	case "arp":
		c.etherType(etherTypeARP, next, f)
	case "rarp":
		c.etherType(etherTypeRARP, next, f)
	case "tcp", "udp", "sctp", "icmp", "igmp":
		pr := tripcapProto(proto)
		switch proto {
		case "icmp":
			pr = ipProtoICMP
		case "igmp":
			pr = ipProtoIGMP
		}
		c.ipProto(pr, next, f)
		c.notFragment(f)
	case "icmp6":
		c.etherType(etherTypeIPv6, next, f)
		c.ldAbs(sizeB, c.offNet()+6)
		c.jeq(ipProtoICMPv6, next, f)
	default:
		return c.errorf("bpf: internal error: unknown protocol %q", proto)
	}
	return nil
}

// guards lists the protocols whose header tests guard an arithmetic
// expression, as libpcap keeps them: a load's index's, then the load's own;
// of a binary operator only the left operand's (libpcap drops the right
// one's, so "ip[0] + tcp[0] = 1" also holds for IPv4 packets that are not
// TCP; docs/filters.md says so).
func guards(a tripcap.ExprArith, out []string) []string {
	switch a := a.(type) {
	case *tripcap.ExprLoad:
		return append(guards(a.Index, out), a.Proto)
	case *tripcap.ExprBinary:
		return guards(a.X, out)
	case *tripcap.ExprNeg:
		return guards(a.X, out)
	}
	return out
}

func (c *exprCompiler) relation(r *tripcap.ExprRelation, t, f label) error {
	// The header tests come first, each protocol once.
	seen := map[string]bool{}
	for _, proto := range guards(r.Y, guards(r.X, nil)) {
		if seen[proto] {
			continue
		}
		seen[proto] = true
		if err := c.loadGuard(proto, f); err != nil {
			return err
		}
	}
	jump := func(op uint16) {
		switch r.Op {
		case "=":
			c.jmp(jmpJEQ|op, 0, t, f)
		case "!=":
			c.jmp(jmpJEQ|op, 0, f, t)
		case ">":
			c.jmp(jmpJGT|op, 0, t, f)
		case ">=":
			c.jmp(jmpJGE|op, 0, t, f)
		case "<":
			c.jmp(jmpJGE|op, 0, f, t)
		case "<=":
			c.jmp(jmpJGT|op, 0, f, t)
		}
	}
	if err := c.arith(r.X); err != nil {
		return err
	}
	if k, ok := r.Y.(tripcap.ExprNum); ok {
		jump(srcK)
		c.prog[len(c.prog)-1].raw.K = uint32(k)
		return nil
	}
	if err := c.pushA(); err != nil {
		return err
	}
	if err := c.arith(r.Y); err != nil {
		return err
	}
	c.tax()
	c.popA()
	jump(srcX)
	return nil
}

func (c *exprCompiler) pushA() error {
	if c.sp >= memWords {
		return c.errorf("the arithmetic is nested too deeply for BPF's %d scratch slots", memWords)
	}
	c.st(c.sp)
	c.sp++
	return nil
}

func (c *exprCompiler) popA() {
	c.sp--
	c.ldMem(c.sp)
}

var aluOps = map[string]uint16{
	"+": aluADD, "-": aluSUB, "*": aluMUL, "/": aluDIV, "%": aluMOD,
	"&": aluAND, "|": aluOR, "^": aluXOR, "<<": aluLSH, ">>": aluRSH,
}

// arith leaves the value of a in A; it may change X.
func (c *exprCompiler) arith(a tripcap.ExprArith) error {
	switch a := a.(type) {
	case tripcap.ExprNum:
		c.ldImm(uint32(a))
	case tripcap.ExprLen:
		c.ldLen()
	case *tripcap.ExprNeg:
		if err := c.arith(a.X); err != nil {
			return err
		}
		// 0 - A rather than neg: the same value, and x/net/bpf's VM, which
		// the tests and the pre-trigger matcher use, has no neg.
		c.tax()
		c.ldImm(0)
		c.aluX(aluSUB)
	case *tripcap.ExprBinary:
		op := aluOps[a.Op]
		if err := c.arith(a.X); err != nil {
			return err
		}
		if k, ok := a.Y.(tripcap.ExprNum); ok {
			c.alu(op, uint32(k))
			return nil
		}
		if err := c.pushA(); err != nil {
			return err
		}
		if err := c.arith(a.Y); err != nil {
			return err
		}
		c.tax()
		c.popA()
		c.aluX(op)
	case *tripcap.ExprLoad:
		return c.load(a)
	default:
		return c.errorf("bpf: internal error: unknown arithmetic node %T", a)
	}
	return nil
}

var loadSizes = map[uint32]uint16{1: sizeB, 2: sizeH, 4: sizeW}

// load reads proto[index:size] into A. The transport protocols' offsets
// count from the end of the IPv4 header; icmp6[] from the end of the
// fixed IPv6 header.
func (c *exprCompiler) load(l *tripcap.ExprLoad) error {
	size := loadSizes[l.Size]
	var base uint32
	transport := false
	switch l.Proto {
	case "ether":
		base = 0
	case "ip", "ip6", "arp", "rarp":
		base = c.offNet()
	case "icmp6":
		base = c.offNet() + 40
	default:
		base, transport = c.offNet(), true
	}
	if k, ok := l.Index.(tripcap.ExprNum); ok {
		if transport {
			c.ldxIPHeaderLen()
			c.ldInd(size, base+uint32(k))
		} else {
			c.ldAbs(size, base+uint32(k))
		}
		return nil
	}
	if err := c.arith(l.Index); err != nil {
		return err
	}
	if transport {
		if err := c.pushA(); err != nil {
			return err
		}
		c.ldxIPHeaderLen()
		c.popA()
		c.aluX(aluADD)
	}
	c.tax()
	c.ldInd(size, base)
	return nil
}

func mask4(bits int) uint32 {
	if bits == 0 {
		return 0
	}
	return ^uint32(0) << (32 - bits)
}

func mask6(bits int) [4]uint32 {
	var m [4]uint32
	for i := range m {
		b := min(max(bits-32*i, 0), 32)
		m[i] = mask4(b)
	}
	return m
}
