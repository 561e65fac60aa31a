package pcapgen

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
)

// conn is one TCP connection in progress.
type conn struct {
	c       *Conn
	left    int // data segments still to send
	step    int
	tlsConn bool
}

// WriteMixed writes mixed, deterministic traffic until the file holds size
// bytes: TCP bulk transfers (handshakes, a data segment from the server and
// an ACK every second one, a retransmission in a thousand segments, FIN or
// RST at the end) over 64 connections at a time, half HTTP and half TLS
// (a request or a ClientHello first); DNS exchanges, one in twenty
// NXDOMAIN; QUIC-like UDP; ICMP port unreachables; a tenth IPv6.
func WriteMixed(w *Writer, size int64) error {
	rng := rand.New(rand.NewPCG(1, 2))
	addr4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}) }
	addr6 := func(i int) netip.Addr {
		return netip.AddrFrom16([16]byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)})
	}
	seg := make([]byte, 1448)
	for i := range seg {
		seg[i] = byte(i * 7)
	}
	var active []*conn
	next := 0
	newConn := func() *conn {
		next++
		client, server := 1+rng.IntN(2000), 2001+rng.IntN(200)
		var ca, sa netip.Addr
		if next%10 == 0 {
			ca, sa = addr6(client), addr6(server)
		} else {
			ca, sa = addr4(client), addr4(server)
		}
		port := uint16(80)
		tlsConn := rng.IntN(2) == 0
		if tlsConn {
			port = 443
		}
		c := &Conn{W: w, Client: ca, Server: sa, CPort: uint16(10000 + next%50000), SPort: port,
			CSeq: rng.Uint32(), SSeq: rng.Uint32(), CWindow: 502, SWindow: 509, RTT: time.Duration(100+rng.IntN(900)) * time.Microsecond}
		return &conn{c: c, left: 1 + rng.IntN(400), tlsConn: tlsConn}
	}
	for range 64 {
		active = append(active, newConn())
	}
	dnsID := uint16(0)
	for i := 0; w.W.Size() < size; i++ {
		w.Advance(time.Duration(2+rng.IntN(10)) * time.Microsecond)
		switch r := rng.IntN(100); {
		case r < 3:
			dnsID++
			cl := addr4(1 + rng.IntN(2000))
			name := fmt.Sprintf("svc%d.example.test", rng.IntN(500))
			rcode := uint8(0)
			if rng.IntN(20) == 0 {
				rcode = 3
			}
			w.Frame(cl, addr4(53), 17, UDPDatagram(20000+dnsID%30000, 53, DNSMessage(dnsID, false, 0, name)))
			w.Frame(addr4(53), cl, 17, UDPDatagram(53, 20000+dnsID%30000, DNSMessage(dnsID, true, rcode, name)))
			continue
		case r < 8:
			w.Frame(addr4(1+rng.IntN(2000)), addr4(2300+rng.IntN(20)), 17, UDPDatagram(uint16(30000+rng.IntN(1000)), 443, seg[:1200]))
			continue
		case r == 8 && rng.IntN(10) == 0:
			dg := UDPDatagram(41000, 5000, seg[:20])
			src, dst := addr4(1+rng.IntN(2000)), addr4(2400)
			quoted := AppendFrame(nil, src, dst, 17, dg)[14 : 14+20+len(dg)]
			w.Frame(dst, src, 1, append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, quoted...))
			continue
		}
		k := rng.IntN(len(active))
		cn := active[k]
		c := cn.c
		switch {
		case cn.step == 0:
			c.Handshake()
		case cn.step == 1 && cn.tlsConn:
			c.Send(true, ClientHello(fmt.Sprintf("api%d.example.test", rng.IntN(300))))
		case cn.step == 1:
			c.Send(true, []byte("GET /data HTTP/1.1\r\nHost: www.example.test\r\nAccept: */*\r\n\r\n"))
		case cn.left > 0:
			c.Send(false, seg)
			cn.left--
			if rng.IntN(1000) == 0 {
				c.Resend(false, c.SSeq-uint32(len(seg)), seg)
			}
			if cn.left%2 == 0 {
				c.Ack(true)
			}
		default:
			if rng.IntN(20) == 0 {
				c.Flags(true, RST|ACK)
			} else {
				c.Flags(false, FIN|ACK)
				c.Flags(true, FIN|ACK)
				c.Ack(false)
			}
			active[k] = newConn()
			continue
		}
		cn.step++
	}
	return w.Err()
}
