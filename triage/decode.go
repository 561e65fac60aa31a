package triage

import "encoding/binary"

// Protocol ids of the protocol hierarchy. Each level is a small enum, so a
// packet's path indexes a fixed array: no map, no allocation per packet.
const (
	lkOther = iota
	lkEth
	lkSLL
	lkSLL2
	lkRaw
	lkNull
	numLink
)

const (
	nwNone = iota // nothing past the link layer was understood
	nwIPv4
	nwIPv6
	nwARP
	nwOther
	numNet
)

const (
	trNone = iota
	trTCP
	trUDP
	trICMP
	trICMPv6
	trFragment // a non-first IP fragment
	trOther
	numTrans
)

const (
	apNone = iota
	apDNS
	apMDNS
	apTLS
	apHTTP
	apSSH
	apNTP
	apDHCP
	apDHCPv6
	apQUIC
	apSNMP
	apSyslog
	apData // payload on no well-known port
	numApp
)

var linkNames = [numLink]string{"other", "eth", "sll", "sll2", "raw", "null"}
var netNames = [numNet]string{"", "ip", "ipv6", "arp", "ethertype-other"}
var transNames = [numTrans]string{"", "tcp", "udp", "icmp", "icmpv6", "fragment", "ip-other"}
var appNames = [numApp]string{"", "dns", "mdns", "tls", "http", "ssh", "ntp", "dhcp", "dhcpv6", "quic", "snmp", "syslog", "data"}

// addr is an IPv4 (as IPv4-mapped IPv6) or IPv6 address as two words, so
// comparing and hashing it is cheap.
type addr struct{ hi, lo uint64 }

func addr4(b []byte) addr {
	return addr{hi: 0, lo: 0xffff<<32 | uint64(binary.BigEndian.Uint32(b))}
}

func addr6(b []byte) addr {
	return addr{hi: binary.BigEndian.Uint64(b), lo: binary.BigEndian.Uint64(b[8:])}
}

func (a addr) less(b addr) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

// decoded is what the decoder found in one packet. It is reused for every
// packet; slices point into the packet's data.
type decoded struct {
	link, net, trans, app int
	src, dst              addr
	sport, dport          uint16
	proto                 uint8
	l4                    []byte // the transport header and what follows
	payload               []byte // past the transport header
	// TCP
	seq, ack uint32
	flags    uint8
	window   uint16
	wscale   int8 // window scale option in a SYN; -1 when absent
	tcpLen   int  // payload length from the IP lengths (not the captured bytes)
	// ICMP
	icmpType, icmpCode uint8
}

const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
)

// decode parses the headers triage needs, by hand, without allocating. Any
// header cut short leaves the fields past it unset.
func decode(link uint16, b []byte, d *decoded) {
	d.net, d.trans, d.app = nwNone, trNone, apNone
	d.l4, d.payload = nil, nil
	var etype uint16
	switch link {
	case linkEthernet:
		d.link = lkEth
		if len(b) < 14 {
			return
		}
		etype = binary.BigEndian.Uint16(b[12:])
		b = b[14:]
		// 802.1Q and 802.1ad tags, at most two.
		for i := 0; i < 2 && (etype == 0x8100 || etype == 0x88a8) && len(b) >= 4; i++ {
			etype = binary.BigEndian.Uint16(b[2:])
			b = b[4:]
		}
	case linkSLL:
		d.link = lkSLL
		if len(b) < 16 {
			return
		}
		etype = binary.BigEndian.Uint16(b[14:])
		b = b[16:]
	case linkSLL2:
		d.link = lkSLL2
		if len(b) < 20 {
			return
		}
		etype = binary.BigEndian.Uint16(b)
		b = b[20:]
	case linkRaw, linkIPv4, linkIPv6:
		d.link = lkRaw
		if len(b) < 1 {
			return
		}
		switch b[0] >> 4 {
		case 4:
			etype = 0x0800
		case 6:
			etype = 0x86dd
		default:
			d.net = nwOther
			return
		}
	case linkNull, linkLoop:
		d.link = lkNull
		if len(b) < 4 {
			return
		}
		// The address family, in the writer's byte order (null) or
		// network order (loop): 2 is IPv4; 24, 28, 30 are IPv6.
		fam := binary.LittleEndian.Uint32(b)
		if fam > 0xffff {
			fam = binary.BigEndian.Uint32(b)
		}
		b = b[4:]
		switch fam {
		case 2:
			etype = 0x0800
		case 24, 28, 30:
			etype = 0x86dd
		default:
			d.net = nwOther
			return
		}
	default:
		d.link = lkOther
		return
	}
	switch etype {
	case 0x0800:
		decodeIPv4(b, d)
	case 0x86dd:
		decodeIPv6(b, d)
	case 0x0806:
		d.net = nwARP
	default:
		d.net = nwOther
	}
}

func decodeIPv4(b []byte, d *decoded) {
	if len(b) < 20 || b[0]>>4 != 4 {
		d.net = nwOther
		return
	}
	d.net = nwIPv4
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || len(b) < ihl {
		d.net = nwOther
		return
	}
	total := int(binary.BigEndian.Uint16(b[2:]))
	d.src, d.dst = addr4(b[12:]), addr4(b[16:])
	d.proto = b[9]
	if binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
		d.trans = trFragment
		return
	}
	// The IP total length says how long the transport segment is,
	// whatever was captured (and whatever Ethernet padding follows).
	l4len := total - ihl
	if total < ihl {
		l4len = 0
	}
	b = b[ihl:]
	decodeTransport(b, l4len, d)
}

func decodeIPv6(b []byte, d *decoded) {
	if len(b) < 40 || b[0]>>4 != 6 {
		d.net = nwOther
		return
	}
	d.net = nwIPv6
	plen := int(binary.BigEndian.Uint16(b[4:]))
	next := b[6]
	d.src, d.dst = addr6(b[8:]), addr6(b[24:])
	b = b[40:]
	// Extension headers: hop-by-hop, routing, destination options, fragment.
	for i := 0; i < 8; i++ {
		switch next {
		case 0, 43, 60:
			if len(b) < 8 {
				d.proto = next
				d.trans = trOther
				return
			}
			n := (int(b[1]) + 1) * 8
			if len(b) < n {
				d.proto, d.trans = next, trOther
				return
			}
			next = b[0]
			b = b[n:]
			plen -= n
			continue
		case 44:
			if len(b) < 8 {
				d.proto, d.trans = next, trOther
				return
			}
			if binary.BigEndian.Uint16(b[2:])&0xfff8 != 0 {
				d.proto, d.trans = b[0], trFragment
				return
			}
			next = b[0]
			b = b[8:]
			plen -= 8
			continue
		}
		break
	}
	d.proto = next
	decodeTransport(b, plen, d)
}

func decodeTransport(b []byte, l4len int, d *decoded) {
	if l4len < 0 {
		l4len = 0
	}
	d.l4 = b
	switch d.proto {
	case 6:
		d.trans = trTCP
		if len(b) < 20 {
			return
		}
		off := int(b[12]>>4) * 4
		if off < 20 {
			return
		}
		d.sport, d.dport = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
		d.seq, d.ack = binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:])
		d.flags = b[13]
		d.window = binary.BigEndian.Uint16(b[14:])
		d.tcpLen = max(l4len-off, 0)
		d.wscale = -1
		if d.flags&tcpSYN != 0 && len(b) >= off {
			d.wscale = windowScale(b[20:off])
		}
		if len(b) >= off {
			d.payload = b[off:min(len(b), max(l4len, off))]
		}
	case 17:
		d.trans = trUDP
		if len(b) < 8 {
			return
		}
		d.sport, d.dport = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
		end := min(len(b), max(int(binary.BigEndian.Uint16(b[4:])), 8))
		d.payload = b[8:end]
	case 1:
		d.trans = trICMP
		if len(b) >= 2 {
			d.icmpType, d.icmpCode = b[0], b[1]
		}
	case 58:
		d.trans = trICMPv6
		if len(b) >= 2 {
			d.icmpType, d.icmpCode = b[0], b[1]
		}
	default:
		d.trans = trOther
	}
}

// windowScale finds the window scale option in a SYN's options.
func windowScale(o []byte) int8 {
	for len(o) > 0 {
		switch o[0] {
		case 0:
			return -1
		case 1:
			o = o[1:]
			continue
		}
		if len(o) < 2 || o[1] < 2 || int(o[1]) > len(o) {
			return -1
		}
		if o[0] == 3 && o[1] == 3 {
			return int8(min(o[2], 14))
		}
		o = o[o[1]:]
	}
	return -1
}

// classify names the application protocol of a TCP or UDP packet with a
// payload: by content for HTTP (a request or status line) and TLS (a record
// header, or port 443), else by well-known port.
func classify(d *decoded) int {
	p := d.payload
	if len(p) == 0 {
		return apNone
	}
	lo, hi := min(d.sport, d.dport), max(d.sport, d.dport)
	if d.trans == trTCP {
		if isTLSRecord(p) {
			return apTLS
		}
		if httpStart(p) != 0 {
			return apHTTP
		}
		switch {
		case lo == 53 || hi == 53:
			return apDNS
		case lo == 22:
			return apSSH
		case lo == 443 || lo == 8443:
			return apTLS
		}
		return apData
	}
	switch {
	case lo == 53 || hi == 53:
		return apDNS
	case lo == 5353 || hi == 5353:
		return apMDNS
	case lo == 123 && hi == 123, hi == 123:
		return apNTP
	case lo == 67 || lo == 68:
		return apDHCP
	case lo == 546 || lo == 547:
		return apDHCPv6
	case lo == 443:
		return apQUIC
	case lo == 161 || lo == 162:
		return apSNMP
	case lo == 514:
		return apSyslog
	}
	return apData
}

// isTLSRecord reports whether p starts with a TLS record header.
func isTLSRecord(p []byte) bool {
	return len(p) >= 5 && p[0] >= 20 && p[0] <= 23 && p[1] == 3 && p[2] <= 4
}

// httpStart tells an HTTP/1 request (1) or response (2) by its first bytes.
func httpStart(p []byte) int {
	if len(p) < 8 {
		return 0
	}
	switch p[0] {
	case 'G':
		if string(p[:4]) == "GET " {
			return 1
		}
	case 'P':
		if string(p[:5]) == "POST " || string(p[:4]) == "PUT " || string(p[:6]) == "PATCH " {
			return 1
		}
	case 'H':
		if string(p[:5]) == "HEAD " {
			return 1
		}
		if string(p[:7]) == "HTTP/1." {
			return 2
		}
	case 'D':
		if len(p) >= 7 && string(p[:7]) == "DELETE " {
			return 1
		}
	case 'O':
		if len(p) >= 8 && string(p[:8]) == "OPTIONS " {
			return 1
		}
	case 'C':
		if len(p) >= 8 && string(p[:8]) == "CONNECT " {
			return 1
		}
	}
	return 0
}
