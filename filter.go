package tripcap

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// IP protocol numbers the filters name.
const (
	IPProtoTCP = 6
	IPProtoUDP = 17
)

// FilterProtocol is a filter's protocol constraint.
type FilterProtocol uint8

const (
	// FilterAny matches every IP protocol; with a port constraint it means TCP or UDP.
	FilterAny FilterProtocol = iota
	FilterTCP
	FilterUDP
)

// String returns Azure's spelling.
func (p FilterProtocol) String() string {
	switch p {
	case FilterTCP:
		return "TCP"
	case FilterUDP:
		return "UDP"
	default:
		return "Any"
	}
}

// AddrRange is an inclusive range of addresses of one family; a single
// address has From == To. An IPv4-mapped IPv6 address is IPv6 here: it
// matches IPv6 packets that carry it, not IPv4 packets.
type AddrRange struct {
	From, To netip.Addr
}

// Contains reports whether a is in the range (and of the same family).
func (r AddrRange) Contains(a netip.Addr) bool {
	return a.BitLen() == r.From.BitLen() && a.Compare(r.From) >= 0 && a.Compare(r.To) <= 0
}

func (r AddrRange) String() string {
	if r.From == r.To {
		return r.From.String()
	}
	return r.From.String() + "-" + r.To.String()
}

// AddrSet is a filter's address constraint. An empty set places no constraint.
type AddrSet []AddrRange

// Match reports whether a satisfies the constraint.
func (s AddrSet) Match(a netip.Addr) bool {
	if len(s) == 0 {
		return true
	}
	for _, r := range s {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

// String returns the Azure form: "a", "a-b" or "a;b;c".
func (s AddrSet) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		parts[i] = r.String()
	}
	return strings.Join(parts, ";")
}

// families returns bit 0 for IPv4 and bit 1 for IPv6 members.
func (s AddrSet) families() int {
	m := 0
	for _, r := range s {
		if r.From.Is4() {
			m |= 1
		} else {
			m |= 2
		}
	}
	return m
}

// PortRange is an inclusive range of ports; a single port has From == To.
type PortRange struct {
	From, To uint16
}

func (r PortRange) String() string {
	if r.From == r.To {
		return strconv.Itoa(int(r.From))
	}
	return strconv.Itoa(int(r.From)) + "-" + strconv.Itoa(int(r.To))
}

// PortSet is a filter's port constraint. An empty set places no constraint.
type PortSet []PortRange

// Match reports whether p satisfies the constraint.
func (s PortSet) Match(p uint16) bool {
	if len(s) == 0 {
		return true
	}
	for _, r := range s {
		if p >= r.From && p <= r.To {
			return true
		}
	}
	return false
}

// String returns the Azure form: "80", "80-85" or "80;443".
func (s PortSet) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		parts[i] = r.String()
	}
	return strings.Join(parts, ";")
}

// ParsedFilter is a PacketCaptureFilter in structured form. "Local" is the
// capturing host's side of a packet, "remote" the other side.
type ParsedFilter struct {
	Protocol    FilterProtocol
	LocalAddrs  AddrSet
	RemoteAddrs AddrSet
	LocalPorts  PortSet
	RemotePorts PortSet
}

// MatchesAll reports whether the filter places no constraint at all; such a
// filter matches every packet, IP or not.
func (p ParsedFilter) MatchesAll() bool {
	return p.Protocol == FilterAny && len(p.LocalAddrs) == 0 && len(p.RemoteAddrs) == 0 &&
		len(p.LocalPorts) == 0 && len(p.RemotePorts) == 0
}

// HasPortConstraint reports whether the filter constrains a port, and so
// matches only TCP and UDP packets that carry ports.
func (p ParsedFilter) HasPortConstraint() bool {
	return len(p.LocalPorts) > 0 || len(p.RemotePorts) > 0
}

// Filter returns the filter in Azure's string form, canonically spelled.
func (p ParsedFilter) Filter() PacketCaptureFilter {
	return PacketCaptureFilter{
		Protocol:        p.Protocol.String(),
		LocalIPAddress:  p.LocalAddrs.String(),
		LocalPort:       p.LocalPorts.String(),
		RemoteIPAddress: p.RemoteAddrs.String(),
		RemotePort:      p.RemotePorts.String(),
	}
}

// FilterPacket is what a filter looks at in a packet. A packet that is not
// IPv4 or IPv6 (ARP, say, or a malformed IP header) has invalid Src and Dst.
type FilterPacket struct {
	// Outgoing is true for packets the capturing host sent.
	Outgoing bool
	// Protocol is the upper-layer protocol: for IPv6, the one after the
	// extension headers.
	Protocol         uint8
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	// HasPorts is false for non-first fragments, for protocols other than
	// TCP and UDP, and for a transport header too short to hold the ports.
	HasPorts bool
}

// Match reports whether the packet passes the filter. It is the reference
// the BPF compiler is tested against.
//
// A filter that constrains ports matches only packets that carry them: a
// non-first fragment has no ports, so a port filter drops it, while a filter
// without port constraints (say protocol=UDP, remoteIPAddress=…) keeps every
// fragment. Reassembly is not attempted; it would need state the kernel
// filter does not have.
func (p ParsedFilter) Match(pkt FilterPacket) bool {
	if p.MatchesAll() {
		return true
	}
	if !pkt.Src.IsValid() || !pkt.Dst.IsValid() {
		return false
	}
	switch p.Protocol {
	case FilterTCP:
		if pkt.Protocol != IPProtoTCP {
			return false
		}
	case FilterUDP:
		if pkt.Protocol != IPProtoUDP {
			return false
		}
	}
	local, remote := pkt.Dst, pkt.Src
	localPort, remotePort := pkt.DstPort, pkt.SrcPort
	if pkt.Outgoing {
		local, remote = remote, local
		localPort, remotePort = remotePort, localPort
	}
	if !p.LocalAddrs.Match(local) || !p.RemoteAddrs.Match(remote) {
		return false
	}
	if !p.HasPortConstraint() {
		return true
	}
	if !pkt.HasPorts || (pkt.Protocol != IPProtoTCP && pkt.Protocol != IPProtoUDP) {
		return false
	}
	return p.LocalPorts.Match(localPort) && p.RemotePorts.Match(remotePort)
}

// MatchFilters reports whether the packet passes any of the filters; with no
// filters every packet passes.
func MatchFilters(filters []ParsedFilter, pkt FilterPacket) bool {
	if len(filters) == 0 {
		return true
	}
	for _, f := range filters {
		if f.Match(pkt) {
			return true
		}
	}
	return false
}

// Azure's names of the filter fields, as they appear in JSON and in errors.
const (
	fieldProtocol        = "protocol"
	fieldLocalIPAddress  = "localIPAddress"
	fieldLocalPort       = "localPort"
	fieldRemoteIPAddress = "remoteIPAddress"
	fieldRemotePort      = "remotePort"
)

// fieldError is a parse failure in one field; callers add the filter's place.
type fieldError struct {
	field, reason string
}

// Parse checks the filter and returns its structured form. Values are a
// single value, an "a-b" range or an "a;b;c" list (a trailing ";" is
// allowed); an empty value places no constraint. Errors are *Error with code
// EINVALID, naming the field and the reason.
func (f PacketCaptureFilter) Parse() (ParsedFilter, error) {
	p, fe := f.parse()
	if fe != nil {
		return ParsedFilter{}, Errorf(EINVALID, "%s: %s", fe.field, fe.reason)
	}
	return p, nil
}

func (f PacketCaptureFilter) parse() (ParsedFilter, *fieldError) {
	var p ParsedFilter
	var err *fieldError
	if p.Protocol, err = parseProtocol(f.Protocol); err != nil {
		return p, err
	}
	if p.LocalAddrs, err = parseAddrs(fieldLocalIPAddress, f.LocalIPAddress); err != nil {
		return p, err
	}
	if p.LocalPorts, err = parsePorts(fieldLocalPort, f.LocalPort); err != nil {
		return p, err
	}
	if p.RemoteAddrs, err = parseAddrs(fieldRemoteIPAddress, f.RemoteIPAddress); err != nil {
		return p, err
	}
	if p.RemotePorts, err = parsePorts(fieldRemotePort, f.RemotePort); err != nil {
		return p, err
	}
	// A packet has one family, so IPv4-only on one side and IPv6-only on the
	// other can never match: surely a mistake, better caught now.
	l, r := p.LocalAddrs.families(), p.RemoteAddrs.families()
	if l != 0 && r != 0 && l&r == 0 {
		return p, &fieldError{fieldRemoteIPAddress, fmt.Sprintf(
			"has only %s addresses but localIPAddress only %s ones, so no packet can match",
			familyName(r), familyName(l))}
	}
	return p, nil
}

func familyName(m int) string {
	if m == 1 {
		return "IPv4"
	}
	return "IPv6"
}

// ValidateFilters checks every filter. The error names the filter's index,
// the field and the reason, e.g. `filters[1].localPort: "90-80" is a reversed range`.
func ValidateFilters(filters []PacketCaptureFilter) error {
	for i, f := range filters {
		if _, fe := f.parse(); fe != nil {
			return Errorf(EINVALID, "filters[%d].%s: %s", i, fe.field, fe.reason)
		}
	}
	return nil
}

// ParseFilters parses every filter, with ValidateFilters' errors.
func ParseFilters(filters []PacketCaptureFilter) ([]ParsedFilter, error) {
	out := make([]ParsedFilter, len(filters))
	for i, f := range filters {
		p, fe := f.parse()
		if fe != nil {
			return nil, Errorf(EINVALID, "filters[%d].%s: %s", i, fe.field, fe.reason)
		}
		out[i] = p
	}
	return out, nil
}

func parseProtocol(s string) (FilterProtocol, *fieldError) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "any":
		return FilterAny, nil
	case "tcp":
		return FilterTCP, nil
	case "udp":
		return FilterUDP, nil
	}
	return FilterAny, &fieldError{fieldProtocol, fmt.Sprintf("%q is not one of TCP, UDP, Any", s)}
}

// terms splits an Azure value into [from, to] pairs: "x" gives one pair
// (x, x), "a-b" one pair (a, b), "a;b;" the pairs (a, a) and (b, b).
func terms(field, v string) ([][2]string, *fieldError) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	bad := func(format string, args ...any) *fieldError {
		return &fieldError{field, fmt.Sprintf(format, args...)}
	}
	if strings.Contains(v, ";") {
		if strings.Contains(v, "-") {
			return nil, bad("%q mixes a range with a list; give either a-b or a;b;c", v)
		}
		items := strings.Split(v, ";")
		if strings.TrimSpace(items[len(items)-1]) == "" {
			items = items[:len(items)-1] // Azure's own examples end lists with ";"
		}
		out := make([][2]string, len(items))
		for i, it := range items {
			it = strings.TrimSpace(it)
			if it == "" {
				return nil, bad("%q has an empty list item at position %d", v, i+1)
			}
			out[i] = [2]string{it, it}
		}
		return out, nil
	}
	switch strings.Count(v, "-") {
	case 0:
		return [][2]string{{v, v}}, nil
	case 1:
		a, b, _ := strings.Cut(v, "-")
		a, b = strings.TrimSpace(a), strings.TrimSpace(b)
		if a == "" || b == "" {
			return nil, bad("%q is a range with a missing end", v)
		}
		return [][2]string{{a, b}}, nil
	default:
		return nil, bad("%q has more than one range; give a single a-b range", v)
	}
}

func parsePorts(field, v string) (PortSet, *fieldError) {
	ts, fe := terms(field, v)
	if fe != nil || len(ts) == 0 {
		return nil, fe
	}
	set := make(PortSet, len(ts))
	for i, t := range ts {
		from, fe := parsePort(field, t[0])
		if fe != nil {
			return nil, fe
		}
		to, fe := parsePort(field, t[1])
		if fe != nil {
			return nil, fe
		}
		if from > to {
			return nil, &fieldError{field, fmt.Sprintf("%q is a reversed range", strings.TrimSpace(v))}
		}
		set[i] = PortRange{from, to}
	}
	return set, nil
}

func parsePort(field, s string) (uint16, *fieldError) {
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, &fieldError{field, fmt.Sprintf("%q is not a port number", s)}
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > 65535 {
		return 0, &fieldError{field, fmt.Sprintf("port %q is outside 0..65535", s)}
	}
	return uint16(n), nil
}

func parseAddrs(field, v string) (AddrSet, *fieldError) {
	ts, fe := terms(field, v)
	if fe != nil || len(ts) == 0 {
		return nil, fe
	}
	set := make(AddrSet, len(ts))
	for i, t := range ts {
		from, fe := parseAddr(field, t[0])
		if fe != nil {
			return nil, fe
		}
		to, fe := parseAddr(field, t[1])
		if fe != nil {
			return nil, fe
		}
		if from.Is4() != to.Is4() {
			return nil, &fieldError{field, fmt.Sprintf("%q mixes IPv4 and IPv6 in one range", strings.TrimSpace(v))}
		}
		if from.Compare(to) > 0 {
			return nil, &fieldError{field, fmt.Sprintf("%q is a reversed range", strings.TrimSpace(v))}
		}
		set[i] = AddrRange{from, to}
	}
	return set, nil
}

func parseAddr(field, s string) (netip.Addr, *fieldError) {
	if strings.Contains(s, "/") {
		return netip.Addr{}, &fieldError{field, fmt.Sprintf("%q is a prefix; prefixes are not supported, give a range such as 10.0.0.0-10.0.0.255", s)}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, &fieldError{field, fmt.Sprintf("%q is not an IP address", s)}
	}
	if a.Zone() != "" {
		return netip.Addr{}, &fieldError{field, fmt.Sprintf("%q has a zone; zones are not supported in filters", s)}
	}
	return a, nil
}

// filterKeys are the keys of ParseFilterFlag, matched case-insensitively.
var filterKeys = [...]string{fieldProtocol, fieldLocalIPAddress, fieldLocalPort, fieldRemoteIPAddress, fieldRemotePort}

// ParseFilterFlag parses the command-line form of one filter,
// "protocol=TCP,remoteIPAddress=198.18.0.2,remotePort=80;443", and validates
// it. Keys are Azure's field names, case-insensitive; each may appear once.
// The protocol comes back canonically spelled (TCP, UDP, Any).
func ParseFilterFlag(s string) (PacketCaptureFilter, error) {
	var f PacketCaptureFilter
	if strings.TrimSpace(s) == "" {
		return f, Errorf(EINVALID, "filter: empty; give key=value pairs such as protocol=TCP,remotePort=443")
	}
	fields := [...]*string{&f.Protocol, &f.LocalIPAddress, &f.LocalPort, &f.RemoteIPAddress, &f.RemotePort}
	var seen [len(filterKeys)]bool
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			return PacketCaptureFilter{}, Errorf(EINVALID, "filter: %q has an empty key=value pair", s)
		}
		key, value, ok := strings.Cut(pair, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok {
			return PacketCaptureFilter{}, Errorf(EINVALID, "filter: %q has no '='; write key=value", pair)
		}
		i := -1
		for j, k := range filterKeys {
			if strings.EqualFold(key, k) {
				i = j
				break
			}
		}
		if i < 0 {
			return PacketCaptureFilter{}, Errorf(EINVALID, "filter: unknown key %q; keys are %s", key, strings.Join(filterKeys[:], ", "))
		}
		if seen[i] {
			return PacketCaptureFilter{}, Errorf(EINVALID, "filter: key %s given twice", filterKeys[i])
		}
		if value == "" {
			return PacketCaptureFilter{}, Errorf(EINVALID, "filter: key %s has an empty value", filterKeys[i])
		}
		seen[i] = true
		*fields[i] = value
	}
	p, err := f.Parse()
	if err != nil {
		return PacketCaptureFilter{}, err
	}
	if f.Protocol != "" {
		f.Protocol = p.Protocol.String()
	}
	return f, nil
}
