package tripcap

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// MaxFilterExpressionLength bounds a pcap-filter expression, as the parser
// recurses on parentheses and the compiled program must fit the kernel.
const MaxFilterExpressionLength = 4096

// maxExprDepth bounds the nesting of parentheses, not and arithmetic.
const maxExprDepth = 64

// FilterExpression is a parsed tcpdump (pcap-filter) expression. The bpf
// package compiles it; docs/filters.md has the grammar.
type FilterExpression struct {
	Text string
	Root ExprNode
}

// ExprNode is a boolean node: ExprAnd, ExprOr, ExprNot, *ExprPrimitive or *ExprRelation.
type ExprNode interface{ exprNode() }

// ExprAnd, ExprOr and ExprNot combine nodes; X is evaluated before Y.
type (
	ExprAnd struct{ X, Y ExprNode }
	ExprOr  struct{ X, Y ExprNode }
	ExprNot struct{ X ExprNode }
)

// Primitive kinds.
const (
	KindProto     = "proto"     // the protocol alone (tcp, ip6, arp…) or "[ip|ip6|ether] proto N"
	KindHost      = "host"      // Net holds a full-length prefix, or MAC for ether
	KindNet       = "net"       // Net
	KindPort      = "port"      // Lo = Hi
	KindPortRange = "portrange" // Lo..Hi
	KindVLAN      = "vlan"      // Lo is the VLAN id if HasID
	KindGreater   = "greater"   // len >= Lo
	KindLess      = "less"      // len <= Lo
	KindBroadcast = "broadcast" // ether broadcast
	KindMulticast = "multicast" // ether, ip or ip6 multicast
	KindInbound   = "inbound"   // not sent by the host (the socket buffer's packet type)
	KindOutbound  = "outbound"  // sent by the host
)

// Directions of an address or port test.
const (
	DirAny  = ""    // src or dst
	DirSrc  = "src" // source
	DirDst  = "dst" // destination
	DirBoth = "src and dst"
)

// ExprPrimitive is one primitive: [proto] [dir] [kind] [id].
type ExprPrimitive struct {
	Proto  string // "", ether, ip, ip6, arp, rarp, tcp, udp, sctp, icmp, icmp6, igmp
	Dir    string
	Kind   string
	Net    netip.Prefix
	MAC    [6]byte
	Lo, Hi uint32
	HasID  bool
}

// ExprRelation compares two arithmetic expressions: Op is one of = != < <= > >=.
type ExprRelation struct {
	Op   string
	X, Y ExprArith
}

// ExprArith is an arithmetic node: ExprNum, ExprLen, *ExprLoad, *ExprBinary, *ExprNeg.
type ExprArith interface{ exprArith() }

type (
	// ExprNum is a constant.
	ExprNum uint32
	// ExprLen is the packet's length.
	ExprLen struct{}
	// ExprLoad is proto[Index:Size], Size 1, 2 or 4.
	ExprLoad struct {
		Proto string
		Index ExprArith
		Size  uint32
	}
	// ExprBinary is X Op Y, Op one of + - * / % & | ^ << >>.
	ExprBinary struct {
		Op   string
		X, Y ExprArith
	}
	// ExprNeg is -X.
	ExprNeg struct{ X ExprArith }
)

func (ExprAnd) exprNode()        {}
func (ExprOr) exprNode()         {}
func (ExprNot) exprNode()        {}
func (*ExprPrimitive) exprNode() {}
func (*ExprRelation) exprNode()  {}
func (ExprNum) exprArith()       {}
func (ExprLen) exprArith()       {}
func (*ExprLoad) exprArith()     {}
func (*ExprBinary) exprArith()   {}
func (*ExprNeg) exprArith()      {}

// ParseFilterExpression parses a tcpdump filter expression. An empty (or
// blank) expression gives nil: it selects every packet. Errors are EINVALID
// and name the token and its position (counted from 1, in bytes).
func ParseFilterExpression(s string) (*FilterExpression, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if len(s) > MaxFilterExpressionLength {
		return nil, Errorf(EINVALID, "%d bytes, more than %d", len(s), MaxFilterExpressionLength)
	}
	toks, err := lexExpr(s)
	if err != nil {
		return nil, err
	}
	p := &exprParser{toks: toks}
	root, err := p.expr(0)
	if err == nil && p.peek().kind != tokEOF {
		err = p.unexpected("here; expected and, or or the end")
	}
	if err != nil {
		return nil, err
	}
	return &FilterExpression{Text: s, Root: root}, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokOp // punctuation: ( ) [ ] : ! && || and the arithmetic and relational operators
)

type exprToken struct {
	kind tokKind
	text string
	pos  int // byte offset
}

func (t exprToken) String() string {
	if t.kind == tokEOF {
		return "the end of the expression"
	}
	return fmt.Sprintf("%q at position %d", t.text, t.pos+1)
}

// lexExpr splits an expression into words (names, numbers, addresses,
// "tcp-syn", "1-1024") and operators.
func lexExpr(s string) ([]exprToken, error) {
	var toks []exprToken
	i, brackets := 0, 0
	// Inside brackets a colon is the size separator (ip[2:2]), elsewhere
	// part of an IPv6 or MAC address.
	wordByte := func(c byte) bool { return isWordByte(c) && (c != ':' || brackets == 0) }
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case wordByte(c) || c == '\\':
			j := i + 1
			for j < len(s) && (wordByte(s[j]) || s[j] == '-' && j+1 < len(s) && wordByte(s[j+1]) && wordMayHaveDash(s[i:j])) {
				j++
			}
			toks = append(toks, exprToken{tokWord, s[i:j], i})
			i = j
		default:
			op := ""
			for _, o := range []string{"&&", "||", "==", "!=", "<=", ">=", "<<", ">>", "(", ")", "[", "]", ":", "!", "=", "<", ">", "+", "-", "*", "/", "%", "&", "|", "^"} {
				if strings.HasPrefix(s[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, Errorf(EINVALID, "unexpected character %q at position %d", c, i+1)
			}
			switch op {
			case "[":
				brackets++
			case "]":
				brackets--
			}
			toks = append(toks, exprToken{tokOp, op, i})
			i += len(op)
		}
	}
	return append(toks, exprToken{tokEOF, "", len(s)}), nil
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':'
}

// wordMayHaveDash: "tcp-syn" and "1-1024" take a dash; "len-1" is arithmetic.
func wordMayHaveDash(w string) bool {
	if _, ok := exprConstants[w]; ok || w == "len" {
		return false
	}
	for _, p := range []string{"tcp", "icmp", "icmp6"} {
		if w == p {
			return true
		}
	}
	if strings.HasPrefix(w, "tcp-") || strings.HasPrefix(w, "icmp-") || strings.HasPrefix(w, "icmp6-") {
		return true
	}
	_, err := strconv.ParseUint(w, 10, 16)
	return err == nil
}

// exprConstants are libpcap's named offsets and values.
var exprConstants = map[string]uint32{
	"tcpflags": 13, "tcp-fin": 0x01, "tcp-syn": 0x02, "tcp-rst": 0x04, "tcp-push": 0x08,
	"tcp-ack": 0x10, "tcp-urg": 0x20, "tcp-ece": 0x40, "tcp-cwr": 0x80,
	"icmptype": 0, "icmpcode": 1,
	"icmp-echoreply": 0, "icmp-unreach": 3, "icmp-sourcequench": 4, "icmp-redirect": 5,
	"icmp-echo": 8, "icmp-routeradvert": 9, "icmp-routersolicit": 10, "icmp-timxceed": 11,
	"icmp-paramprob": 12, "icmp-tstamp": 13, "icmp-tstampreply": 14, "icmp-ireq": 15,
	"icmp-ireqreply": 16, "icmp-maskreq": 17, "icmp-maskreply": 18,
	"icmp6type": 0, "icmp6code": 1,
	"icmp6-destinationunreach": 1, "icmp6-packettoobig": 2, "icmp6-timeexceeded": 3,
	"icmp6-parameterproblem": 4, "icmp6-echo": 128, "icmp6-echoreply": 129,
	"icmp6-multicastlistenerquery": 130, "icmp6-multicastlistenerreportv1": 131,
	"icmp6-multicastlistenerdone": 132, "icmp6-routersolicit": 133, "icmp6-routeradvert": 134,
	"icmp6-neighborsolicit": 135, "icmp6-neighboradvert": 136, "icmp6-redirect": 137,
}

// exprProtocols are the protocol qualifiers; the value is the IP protocol
// number of the transport ones.
var exprProtocols = map[string]uint32{
	"ether": 0, "ip": 0, "ip6": 0, "arp": 0, "rarp": 0,
	"tcp": IPProtoTCP, "udp": IPProtoUDP, "sctp": 132, "icmp": 1, "icmp6": 58, "igmp": 2,
}

// exprProtoNames are what "proto" takes by name (after a backslash or not).
var exprProtoNames = map[string]uint32{
	"tcp": IPProtoTCP, "udp": IPProtoUDP, "sctp": 132, "icmp": 1, "icmp6": 58, "igmp": 2,
	"ip": 0x0800, "ip6": 0x86dd, "arp": 0x0806, "rarp": 0x8035,
}

type exprParser struct {
	toks []exprToken
	i    int
	// last is the previous primitive, whose qualifiers a bare id takes:
	// "port 80 or 443", "host 198.18.0.1 or 198.18.0.2".
	last *ExprPrimitive
}

func (p *exprParser) peek() exprToken { return p.toks[p.i] }
func (p *exprParser) next() exprToken {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *exprParser) is(texts ...string) bool {
	t := p.peek()
	for _, s := range texts {
		if t.text == s && t.kind != tokEOF {
			return true
		}
	}
	return false
}

func (p *exprParser) unexpected(want string) error {
	t := p.peek()
	if t.kind == tokEOF {
		return Errorf(EINVALID, "unexpected end of the expression; %s", want)
	}
	return Errorf(EINVALID, "unexpected %s; %s", t, want)
}

func (p *exprParser) errAt(t exprToken, format string, args ...any) error {
	return Errorf(EINVALID, "%s: %s", t, fmt.Sprintf(format, args...))
}

// expr parses alternation and concatenation, which in pcap-filter have the
// same precedence and associate left to right: "a or b and c" is "(a or b) and c".
func (p *exprParser) expr(depth int) (ExprNode, error) {
	if depth > maxExprDepth {
		return nil, p.errAt(p.peek(), "nested more than %d deep", maxExprDepth)
	}
	x, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	for {
		var and bool
		switch {
		case p.is("and", "&&"):
			and = true
		case p.is("or", "||"):
		default:
			return x, nil
		}
		p.next()
		y, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		if and {
			x = ExprAnd{x, y}
		} else {
			x = ExprOr{x, y}
		}
	}
}

func (p *exprParser) unary(depth int) (ExprNode, error) {
	if depth > maxExprDepth {
		return nil, p.errAt(p.peek(), "nested more than %d deep", maxExprDepth)
	}
	if p.is("not", "!") {
		p.next()
		x, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return ExprNot{x}, nil
	}
	// A relation ("tcp[13] & 2 != 0", "(len - 14) > 100") and a primitive or
	// a parenthesised expression can start alike: try the relation first and
	// keep the error of the attempt that got farther.
	start := p.i
	rel, relErr := p.relation(depth)
	if relErr == nil {
		return rel, nil
	}
	relEnd := p.i
	p.i = start
	var n ExprNode
	var err error
	if p.is("(") {
		p.next()
		if n, err = p.expr(depth + 1); err == nil {
			if !p.is(")") {
				err = p.unexpected("expected )")
			} else {
				p.next()
			}
		}
	} else {
		n, err = p.primitive()
	}
	// No primitive is followed by "[": "tcp[13] & 2 !=" is a broken relation.
	if err != nil && relEnd > p.i || err == nil && p.is("[") {
		return nil, relErr
	}
	return n, err
}

var relOps = map[string]string{"=": "=", "==": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

func (p *exprParser) relation(depth int) (ExprNode, error) {
	x, err := p.arith(depth, 0)
	if err != nil {
		return nil, err
	}
	op, ok := relOps[p.peek().text]
	if !ok || p.peek().kind != tokOp {
		return nil, p.unexpected("expected a comparison (=, !=, <, <=, >, >=)")
	}
	p.next()
	y, err := p.arith(depth, 0)
	if err != nil {
		return nil, err
	}
	return &ExprRelation{Op: op, X: x, Y: y}, nil
}

// Arithmetic precedence, as in C and libpcap: | < ^ < & < shifts < + - < * / %.
var arithPrec = map[string]int{"|": 1, "^": 2, "&": 3, "<<": 4, ">>": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6}

func (p *exprParser) arith(depth, minPrec int) (ExprArith, error) {
	if depth > maxExprDepth {
		return nil, p.errAt(p.peek(), "nested more than %d deep", maxExprDepth)
	}
	x, err := p.operand(depth)
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		prec, ok := arithPrec[t.text]
		if !ok || t.kind != tokOp || prec <= minPrec {
			return x, nil
		}
		p.next()
		y, err := p.arith(depth+1, prec)
		if err != nil {
			return nil, err
		}
		if n, ok := y.(ExprNum); ok {
			if (t.text == "/" || t.text == "%") && n == 0 {
				return nil, p.errAt(t, "division by zero")
			}
			if (t.text == "<<" || t.text == ">>") && n >= 32 {
				return nil, p.errAt(t, "shift by %d; at most 31", n)
			}
		}
		x = &ExprBinary{Op: t.text, X: x, Y: y}
	}
}

func (p *exprParser) operand(depth int) (ExprArith, error) {
	t := p.peek()
	switch {
	case t.text == "(" && t.kind == tokOp:
		p.next()
		x, err := p.arith(depth+1, 0)
		if err != nil {
			return nil, err
		}
		if !p.is(")") {
			return nil, p.unexpected("expected )")
		}
		p.next()
		return x, nil
	case t.text == "-" && t.kind == tokOp:
		p.next()
		x, err := p.operand(depth + 1)
		if err != nil {
			return nil, err
		}
		return &ExprNeg{x}, nil
	case t.kind != tokWord:
		return nil, p.unexpected("expected a number, len or proto[offset]")
	case t.text == "len":
		p.next()
		return ExprLen{}, nil
	}
	if v, ok := exprConstants[t.text]; ok {
		p.next()
		return ExprNum(v), nil
	}
	if v, ok := parseExprNumber(t.text); ok {
		p.next()
		return ExprNum(v), nil
	}
	switch t.text {
	case "ether", "ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp", "icmp", "icmp6", "igmp":
	default:
		return nil, p.unexpected("expected a number, len or proto[offset]")
	}
	p.next()
	if !p.is("[") {
		return nil, p.unexpected("expected [ after " + t.text)
	}
	p.next()
	idx, err := p.arith(depth+1, 0)
	if err != nil {
		return nil, err
	}
	size := uint32(1)
	if p.is(":") {
		p.next()
		st := p.next()
		v, ok := parseExprNumber(st.text)
		if !ok || st.kind != tokWord || (v != 1 && v != 2 && v != 4) {
			return nil, p.errAt(st, "the size of a load is 1, 2 or 4")
		}
		size = v
	}
	if !p.is("]") {
		return nil, p.unexpected("expected ]")
	}
	p.next()
	return &ExprLoad{Proto: t.text, Index: idx, Size: size}, nil
}

// parseExprNumber reads decimal, 0x hexadecimal and 0-prefixed octal, as libpcap does.
func parseExprNumber(s string) (uint32, bool) {
	base := 10
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		s, base = s[2:], 16
	case len(s) > 1 && s[0] == '0':
		s, base = s[1:], 8
	}
	v, err := strconv.ParseUint(s, base, 32)
	return uint32(v), err == nil
}

// primitive parses [proto] [dir] [kind] [id], or a bare id that takes the
// previous primitive's qualifiers.
func (p *exprParser) primitive() (ExprNode, error) {
	start := p.peek()
	if start.kind != tokWord {
		return nil, p.unexpected("expected a primitive (host, net, port, tcp, …), not, or (")
	}
	prim := &ExprPrimitive{}
	switch start.text {
	case "vlan":
		p.next()
		prim.Kind = KindVLAN
		if t := p.peek(); t.kind == tokWord {
			if v, ok := parseExprNumber(t.text); ok {
				if v > 4095 {
					return nil, p.errAt(t, "a VLAN id is 0..4095")
				}
				p.next()
				prim.Lo, prim.HasID = v, true
			}
		}
		return p.done(prim), nil
	case "greater", "less":
		p.next()
		t := p.next()
		v, ok := parseExprNumber(t.text)
		if !ok || t.kind != tokWord {
			return nil, p.errAt(t, "%s takes a length in bytes", start.text)
		}
		prim.Kind, prim.Lo = start.text, v
		return p.done(prim), nil
	case "broadcast", "multicast":
		p.next()
		prim.Proto, prim.Kind = "ether", start.text
		return p.done(prim), nil
	case "inbound", "outbound":
		p.next()
		prim.Kind = start.text
		return p.done(prim), nil
	case "gateway":
		return nil, p.errAt(start, "gateway needs a host name resolved to addresses; tripcap does not look names up")
	case "ifname", "on", "rnr", "rulenum", "reason", "rset", "ruleset", "srnr", "subrulenum", "action",
		"mpls", "pppoed", "pppoes", "geneve", "llc", "iso", "clnp", "esis", "isis", "decnet", "atalk", "aarp", "ipx", "netbeui",
		"stp", "lat", "mopdl", "moprc", "sca", "wlan", "type", "subtype", "dir", "ra", "ta", "addr1", "addr2", "addr3", "addr4",
		"fddi", "tr", "ppp", "slip", "link", "protochain", "ah", "esp", "pim", "vrrp", "carp", "radio", "lane", "oamf4", "oamf4ec", "oamf4sc",
		"metac", "bcc", "sc", "ilmic", "connectmsg", "metaconnect", "vpi", "vci", "hdlc", "sio", "opc", "dpc", "sls", "hsio", "hopc", "hdpc", "hsls":
		return nil, p.errAt(start, "not supported by tripcap (docs/filters.md lists what is)")
	}
	if _, ok := exprProtocols[start.text]; ok {
		prim.Proto = start.text
		p.next()
	}
	hadDir := false
	if p.is("src", "dst") {
		hadDir = true
		dir := p.next().text
		prim.Dir = dir
		other := map[string]string{"src": "dst", "dst": "src"}[dir]
		if p.is("or", "and") && p.toks[p.i+1].text == other {
			if p.next().text == "and" {
				prim.Dir = DirBoth
			} else {
				prim.Dir = DirAny
			}
			p.next()
		}
	}
	switch t := p.peek(); {
	case p.is("host", "net", "port", "portrange"):
		prim.Kind = p.next().text
	case p.is("proto"):
		if hadDir {
			return nil, p.errAt(t, "proto takes no src or dst")
		}
		p.next()
		return p.protoNumber(prim)
	case p.is("broadcast", "multicast"):
		if hadDir {
			return nil, p.errAt(t, "%s takes no src or dst", t.text)
		}
		switch prim.Proto {
		case "ether", "ip", "ip6":
		default:
			return nil, p.errAt(t, "%s is for ether, ip or ip6", t.text)
		}
		if prim.Proto == "ip" && t.text == "broadcast" {
			return nil, p.errAt(t, "ip broadcast needs the interface's netmask; write ip dst host ADDR")
		}
		prim.Kind = p.next().text
		return p.done(prim), nil
	case prim.Proto == "" && !hadDir:
		// A bare id continues the previous primitive.
		if p.last == nil || t.kind != tokWord || p.last.Kind == KindProto || p.last.Kind == "" {
			return nil, p.unexpected("expected a primitive (host, net, port, tcp, …), not, or (")
		}
		prim.Proto, prim.Dir, prim.Kind = p.last.Proto, p.last.Dir, p.last.Kind
		switch prim.Kind {
		case KindHost, KindNet, KindPort, KindPortRange:
		default:
			return nil, p.unexpected("expected a primitive (host, net, port, tcp, …), not, or (")
		}
		if err := p.id(prim); err != nil {
			return nil, p.errAt(t, "not a primitive (host, net, port, tcp, …), nor a value for the %s before it", prim.Kind)
		}
		return p.done(prim), nil
	case prim.Proto != "" && !hadDir:
		if prim.Proto == "ether" {
			return nil, p.errAt(start, "ether alone selects nothing; give ether host, src, dst, proto, broadcast or multicast")
		}
		prim.Kind = KindProto
		return p.done(prim), nil
	default:
		prim.Kind = KindHost // "src 198.18.0.1"
	}
	if err := p.id(prim); err != nil {
		return nil, err
	}
	return p.done(prim), nil
}

func (p *exprParser) done(prim *ExprPrimitive) ExprNode {
	p.last = prim
	return prim
}

// protoNumber reads the N of "[ip|ip6|ether] proto N".
func (p *exprParser) protoNumber(prim *ExprPrimitive) (ExprNode, error) {
	t := p.next()
	name := strings.TrimPrefix(t.text, "\\")
	v, ok := parseExprNumber(name)
	if !ok {
		v, ok = exprProtoNames[name]
	}
	if !ok || t.kind != tokWord {
		return nil, p.errAt(t, "proto takes a number or one of tcp, udp, sctp, icmp, icmp6, igmp, ip, ip6, arp, rarp")
	}
	isEther := name == "ip" || name == "ip6" || name == "arp" || name == "rarp"
	switch prim.Proto {
	case "", "ip", "ip6":
		if isEther || v > 255 {
			return nil, p.errAt(t, "an IP protocol is a number 0..255 or tcp, udp, sctp, icmp, icmp6, igmp")
		}
	case "ether":
		if _, named := exprProtoNames[name]; named && !isEther {
			return nil, p.errAt(t, "ether proto takes an EtherType: a number or ip, ip6, arp, rarp")
		}
		if v <= 1500 || v > 0xffff {
			return nil, p.errAt(t, "an EtherType is 1501..65535 (802.3 length values are not supported)")
		}
	default:
		return nil, p.errAt(t, "proto follows ether, ip or ip6, not %s", prim.Proto)
	}
	prim.Kind, prim.Lo = KindProto, v
	prim.HasID = true
	return p.done(prim), nil
}

// id reads the address, network or port of a host, net, port or portrange primitive.
func (p *exprParser) id(prim *ExprPrimitive) error {
	t := p.next()
	if t.kind != tokWord {
		p.i--
		return p.unexpected("expected an address or a port")
	}
	switch prim.Kind {
	case KindPort, KindPortRange:
		switch prim.Proto {
		case "", "tcp", "udp", "sctp":
		default:
			return p.errAt(t, "%s is for tcp, udp or sctp, not %s", prim.Kind, prim.Proto)
		}
		lo, hi, ok := t.text, t.text, true
		if prim.Kind == KindPortRange {
			lo, hi, ok = strings.Cut(t.text, "-")
		}
		var a, b uint32
		if ok {
			a, ok = parsePortName(lo)
		}
		if ok {
			b, ok = parsePortName(hi)
		}
		if !ok {
			if prim.Kind == KindPortRange {
				return p.errAt(t, "a port range is LOW-HIGH, ports 0..65535")
			}
			if looksLikeHostname(t.text) {
				// libpcap reads /etc/services, whose entries (and so the
				// protocols a name stands for) differ between hosts.
				return p.errAt(t, "service names are not looked up; give the port number")
			}
			return p.errAt(t, "a port is a number 0..65535")
		}
		if a > b {
			a, b = b, a
		}
		prim.Lo, prim.Hi = a, b
		return nil
	}
	if prim.Proto == "ether" {
		if prim.Kind != KindHost {
			return p.errAt(t, "ether takes host, src or dst and a MAC address")
		}
		mac, ok := parseMAC(t.text)
		if !ok {
			return p.errAt(t, "not a MAC address (aa:bb:cc:dd:ee:ff)")
		}
		prim.MAC = mac
		return nil
	}
	switch prim.Proto {
	case "", "ip", "ip6", "arp", "rarp":
	default:
		return p.errAt(t, "%s is for ip, ip6, arp or rarp, not %s", prim.Kind, prim.Proto)
	}
	var pfx netip.Prefix
	if prim.Kind == KindNet {
		bits := -1
		if p.is("/") {
			p.next()
			bt := p.next()
			v, ok := parseExprNumber(bt.text)
			if !ok || bt.kind != tokWord || v > 128 {
				return p.errAt(bt, "a prefix length is a number")
			}
			bits = int(v)
		} else if p.is("mask") {
			p.next()
			mt := p.next()
			m, err := netip.ParseAddr(mt.text)
			if err != nil || !m.Is4() {
				return p.errAt(mt, "mask takes an IPv4 netmask")
			}
			ones, ok := maskBits(m.As4())
			if !ok {
				return p.errAt(mt, "the netmask's bits are not contiguous")
			}
			bits = ones
		}
		a, partialBits, err := parseNetAddr(t.text)
		if err != nil {
			return p.errAt(t, "%s", err)
		}
		if bits < 0 {
			bits = partialBits
		}
		if bits > a.BitLen() {
			return p.errAt(t, "a prefix length of %d is longer than the address", bits)
		}
		pfx = netip.PrefixFrom(a, bits)
		if pfx.Masked() != pfx {
			return p.errAt(t, "the address has bits set outside /%d (did you mean %s?)", bits, pfx.Masked())
		}
	} else {
		a, err := netip.ParseAddr(t.text)
		if err != nil || a.Zone() != "" {
			if looksLikeHostname(t.text) {
				return p.errAt(t, "host names are not looked up (no DNS at capture time); give an IPv4 or IPv6 address")
			}
			return p.errAt(t, "not an IPv4 or IPv6 address")
		}
		pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
	}
	if pfx.Addr().Is6() {
		if prim.Proto == "ip" || prim.Proto == "arp" || prim.Proto == "rarp" {
			return p.errAt(t, "an IPv6 address with %s; use ip6", prim.Proto)
		}
	} else if prim.Proto == "ip6" {
		return p.errAt(t, "an IPv4 address with ip6")
	}
	prim.Net = pfx
	return nil
}

func parsePortName(s string) (uint32, bool) {
	v, ok := parseExprNumber(s)
	return v, ok && v <= 65535
}

// parseNetAddr reads a network address; IPv4 may be abbreviated as libpcap
// allows ("10", "10.1", "10.1.2"), which sets the prefix length.
func parseNetAddr(s string) (netip.Addr, int, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return a, a.BitLen(), nil
	}
	parts := strings.Split(s, ".")
	if len(parts) <= 3 {
		var b [4]byte
		ok := true
		for i, part := range parts {
			v, err := strconv.ParseUint(part, 10, 8)
			if err != nil {
				ok = false
				break
			}
			b[i] = byte(v)
		}
		if ok {
			return netip.AddrFrom4(b), 8 * len(parts), nil
		}
	}
	if looksLikeHostname(s) {
		return netip.Addr{}, 0, fmt.Errorf("network names are not looked up; give an address or CIDR")
	}
	return netip.Addr{}, 0, fmt.Errorf("not a network address")
}

func maskBits(m [4]byte) (int, bool) {
	w := word4(m)
	ones := 0
	for ones < 32 && w&(1<<(31-ones)) != 0 {
		ones++
	}
	return ones, ones == 32 || w<<ones == 0
}

func word4(b [4]byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func looksLikeHostname(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' {
			return !strings.Contains(s, ":")
		}
	}
	return false
}

func parseMAC(s string) ([6]byte, bool) {
	var mac [6]byte
	var parts []string
	switch {
	case strings.Count(s, ":") == 5:
		parts = strings.Split(s, ":")
	case strings.Count(s, ".") == 2 && len(s) == 14: // 0011.2233.4455
		for _, g := range strings.Split(s, ".") {
			parts = append(parts, g[:2], g[2:])
		}
	default:
		return mac, false
	}
	for i, h := range parts {
		if len(h) == 0 || len(h) > 2 {
			return mac, false
		}
		v, err := strconv.ParseUint(h, 16, 8)
		if err != nil {
			return mac, false
		}
		mac[i] = byte(v)
	}
	return mac, true
}
