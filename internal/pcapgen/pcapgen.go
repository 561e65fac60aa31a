// Package pcapgen builds packets byte by byte (Ethernet, IPv4, IPv6, TCP,
// UDP, ICMP, DNS, TLS ClientHello, HTTP) for deterministic test captures and
// the triage benchmark's synthetic traffic. Nothing it builds is sent.
package pcapgen

import (
	"encoding/binary"
	"net/netip"
	"os"
	"time"

	"github.com/tripcap/tripcap/pcapfile"
)

// TCP flags.
const (
	FIN = 0x01
	SYN = 0x02
	RST = 0x04
	PSH = 0x08
	ACK = 0x10
)

// Writer adds packets to a capture file at a clock it advances.
type Writer struct {
	W   pcapfile.Writer
	Now time.Time
	buf []byte
	err error
	f   *os.File // set by Create
}

// Create starts a pcap file (Ethernet, snap length 262144) at path, with the
// clock at start; Close finishes it.
func Create(path string, start time.Time) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	pw, err := pcapfile.NewPcapWriter(f, pcapfile.LinkTypeEthernet, pcapfile.MaxSnapLen, 0)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Writer{W: pw, Now: start, f: f}, nil
}

// Close flushes a file made by Create and closes it, reporting the first
// error of any write.
func (w *Writer) Close() error {
	err := w.err
	if cerr := w.W.Close(nil); err == nil {
		err = cerr
	}
	if w.f != nil {
		if cerr := w.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Err is the first write error.
func (w *Writer) Err() error { return w.err }

// Advance moves the clock.
func (w *Writer) Advance(d time.Duration) { w.Now = w.Now.Add(d) }

// Frame writes an Ethernet frame carrying an IP packet from src to dst.
func (w *Writer) Frame(src, dst netip.Addr, proto uint8, l4 []byte) {
	w.buf = AppendFrame(w.buf[:0], src, dst, proto, l4)
	if w.err == nil {
		w.err = w.W.WritePacket(0, w.Now.UnixNano(), len(w.buf), w.buf)
	}
}

// AppendFrame appends an Ethernet frame with an IPv4 or IPv6 header and l4.
// Frames shorter than Ethernet's minimum are padded, as on the wire.
func AppendFrame(b []byte, src, dst netip.Addr, proto uint8, l4 []byte) []byte {
	start := len(b)
	b = append(b, 0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1)
	if src.Is4() {
		b = append(b, 0x08, 0x00)
		ip := len(b)
		b = append(b, 0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0)
		s4, d4 := src.As4(), dst.As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
		binary.BigEndian.PutUint16(b[ip+2:], uint16(20+len(l4)))
		binary.BigEndian.PutUint16(b[ip+10:], checksum(b[ip:ip+20], 0))
		l := len(b)
		b = append(b, l4...)
		fixL4Checksum(b[l:], proto, s4[:], d4[:])
	} else {
		b = append(b, 0x86, 0xdd)
		b = append(b, 0x60, 0, 0, 0, 0, 0, proto, 64)
		binary.BigEndian.PutUint16(b[len(b)-4:], uint16(len(l4)))
		s6, d6 := src.As16(), dst.As16()
		b = append(b, s6[:]...)
		b = append(b, d6[:]...)
		l := len(b)
		b = append(b, l4...)
		fixL4Checksum(b[l:], proto, s6[:], d6[:])
	}
	for len(b)-start < 60 {
		b = append(b, 0)
	}
	return b
}

func fixL4Checksum(l4 []byte, proto uint8, src, dst []byte) {
	var off int
	switch proto {
	case 6:
		off = 16
	case 17:
		off = 6
	case 1:
		binary.BigEndian.PutUint16(l4[2:], 0)
		binary.BigEndian.PutUint16(l4[2:], checksum(l4, 0))
		return
	case 58:
		off = 2
	default:
		return
	}
	if len(l4) < off+2 {
		return
	}
	binary.BigEndian.PutUint16(l4[off:], 0)
	var sum uint32
	for _, a := range [][]byte{src, dst} {
		for i := 0; i+1 < len(a); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(a[i:]))
		}
	}
	sum += uint32(proto) + uint32(len(l4))
	c := checksum(l4, sum)
	if proto == 17 && c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[off:], c)
}

func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// TCPSegment builds a TCP header (with a window scale option on SYNs when
// wscale ≥ 0) and payload.
func TCPSegment(sport, dport uint16, seq, ack uint32, flags uint8, window uint16, wscale int, payload []byte) []byte {
	hl := 20
	if flags&SYN != 0 && wscale >= 0 {
		hl = 24
	}
	b := make([]byte, hl, hl+len(payload))
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], ack)
	b[12] = byte(hl/4) << 4
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:], window)
	if hl == 24 {
		b[20], b[21], b[22], b[23] = 1, 3, 3, byte(wscale) // NOP, window scale
	}
	return append(b, payload...)
}

// UDPDatagram builds a UDP header and payload.
func UDPDatagram(sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

// DNSMessage builds a DNS query (response false) or response with one
// question and, for a NOERROR response, one A record answer.
func DNSMessage(id uint16, response bool, rcode uint8, name string) []byte {
	b := make([]byte, 12, 64)
	binary.BigEndian.PutUint16(b, id)
	flags := uint16(0x0100) // recursion desired
	if response {
		flags |= 0x8000 | 0x0080 | uint16(rcode)
	}
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[4:], 1)
	answer := response && rcode == 0
	if answer {
		binary.BigEndian.PutUint16(b[6:], 1)
	}
	start := len(b)
	b = appendName(b, name)
	b = append(b, 0, 1, 0, 1) // A, IN
	if answer {
		b = append(b, 0xc0, byte(start), 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 18, 0, 10)
	}
	return b
}

func appendName(b []byte, name string) []byte {
	for len(name) > 0 {
		i := 0
		for i < len(name) && name[i] != '.' {
			i++
		}
		b = append(b, byte(i))
		b = append(b, name[:i]...)
		if i == len(name) {
			break
		}
		name = name[i+1:]
	}
	return append(b, 0)
}

// ClientHello builds a TLS record holding a ClientHello with a server name.
func ClientHello(sni string) []byte {
	var ext []byte
	// server_name
	sn := []byte{0, 0}
	sn = binary.BigEndian.AppendUint16(sn, uint16(len(sni)+5))
	sn = binary.BigEndian.AppendUint16(sn, uint16(len(sni)+3))
	sn = append(sn, 0)
	sn = binary.BigEndian.AppendUint16(sn, uint16(len(sni)))
	sn = append(sn, sni...)
	ext = append(ext, sn...)
	// supported_versions: TLS 1.3, 1.2
	ext = append(ext, 0, 43, 0, 5, 4, 3, 4, 3, 3)
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...) // random
	body = append(body, 0)                   // session id
	body = append(body, 0, 2, 0x13, 0x01)    // cipher suites
	body = append(body, 1, 0)                // compression
	body = binary.BigEndian.AppendUint16(body, uint16(len(ext)))
	body = append(body, ext...)
	return tlsHandshake(1, body)
}

// ServerHello builds a TLS record holding a ServerHello choosing version v
// (in supported_versions for TLS 1.3).
func ServerHello(v uint16) []byte {
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...)
	body = append(body, 0, 0x13, 0x01, 0)
	ext := []byte{0, 43, 0, 2, byte(v >> 8), byte(v)}
	body = binary.BigEndian.AppendUint16(body, uint16(len(ext)))
	body = append(body, ext...)
	return tlsHandshake(2, body)
}

// Alert builds a cleartext TLS alert record.
func Alert(level, desc uint8) []byte { return []byte{21, 3, 3, 0, 2, level, desc} }

func tlsHandshake(typ byte, body []byte) []byte {
	hs := []byte{typ, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}
	hs = append(hs, body...)
	rec := []byte{22, 3, 1, byte(len(hs) >> 8), byte(len(hs))}
	return append(rec, hs...)
}

// Conn is one TCP connection between a client and a server, tracking the
// sequence numbers of both sides.
type Conn struct {
	W                *Writer
	Client, Server   netip.Addr
	CPort, SPort     uint16
	CSeq, SSeq       uint32
	CWindow, SWindow uint16
	RTT              time.Duration
	NoScale          bool
}

// Handshake writes SYN, SYN/ACK, ACK, half an RTT apart.
func (c *Conn) Handshake() {
	ws := 7
	if c.NoScale {
		ws = -1
	}
	c.send(true, SYN, nil, ws)
	c.W.Advance(c.RTT / 2)
	c.send(false, SYN|ACK, nil, ws)
	c.W.Advance(c.RTT / 2)
	c.send(true, ACK, nil, -1)
}

// Send writes a data segment from the client (fromClient) or the server.
func (c *Conn) Send(fromClient bool, payload []byte) { c.send(fromClient, PSH|ACK, payload, -1) }

// Ack writes a bare ACK.
func (c *Conn) Ack(fromClient bool) { c.send(fromClient, ACK, nil, -1) }

// Flags writes a segment with the given flags and no payload.
func (c *Conn) Flags(fromClient bool, flags uint8) { c.send(fromClient, flags, nil, -1) }

// Resend writes payload again at sequence number seq (a retransmission).
func (c *Conn) Resend(fromClient bool, seq uint32, payload []byte) {
	src, dst, sp, dp, _, ack, win := c.sides(fromClient)
	c.W.Frame(src, dst, 6, TCPSegment(sp, dp, seq, ack, PSH|ACK, win, -1, payload))
}

func (c *Conn) sides(fromClient bool) (src, dst netip.Addr, sp, dp uint16, seq, ack uint32, win uint16) {
	if fromClient {
		return c.Client, c.Server, c.CPort, c.SPort, c.CSeq, c.SSeq, c.CWindow
	}
	return c.Server, c.Client, c.SPort, c.CPort, c.SSeq, c.CSeq, c.SWindow
}

func (c *Conn) send(fromClient bool, flags uint8, payload []byte, ws int) {
	src, dst, sp, dp, seq, ack, win := c.sides(fromClient)
	if flags&ACK == 0 {
		ack = 0
	}
	c.W.Frame(src, dst, 6, TCPSegment(sp, dp, seq, ack, flags, win, ws, payload))
	n := uint32(len(payload))
	if flags&(SYN|FIN) != 0 {
		n++
	}
	if fromClient {
		c.CSeq += n
	} else {
		c.SSeq += n
	}
}
