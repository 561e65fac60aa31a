// Command gen writes the triage benchmark's capture: a pcap file of mixed,
// deterministic synthetic traffic (TCP bulk transfers with handshakes, ACKs,
// the odd retransmission and reset, TLS and HTTP starts, DNS, QUIC-like
// UDP, ICMP, a tenth of it IPv6), until the file reaches the size asked.
// Nothing is sent anywhere: the packets are built in memory.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"time"

	"github.com/tripcap/tripcap/internal/pcapgen"
)

func main() {
	out := flag.String("o", "", "the pcap file to write")
	size := flag.Int64("size", 1<<30, "stop once the file holds this many bytes")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gen: -o is required")
		os.Exit(2)
	}
	if err := run(*out, *size); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// conn is one TCP connection in progress.
type conn struct {
	c       *pcapgen.Conn
	left    int // data segments still to send
	step    int
	tlsConn bool
}

func run(path string, size int64) error {
	w, err := pcapgen.Create(path, time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC))
	if err != nil {
		return err
	}
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
		c := &pcapgen.Conn{W: w, Client: ca, Server: sa, CPort: uint16(10000 + next%50000), SPort: port,
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
			w.Frame(cl, addr4(53), 17, pcapgen.UDPDatagram(20000+dnsID%30000, 53, pcapgen.DNSMessage(dnsID, false, 0, name)))
			w.Frame(addr4(53), cl, 17, pcapgen.UDPDatagram(53, 20000+dnsID%30000, pcapgen.DNSMessage(dnsID, true, rcode, name)))
			continue
		case r < 8:
			w.Frame(addr4(1+rng.IntN(2000)), addr4(2300+rng.IntN(20)), 17, pcapgen.UDPDatagram(uint16(30000+rng.IntN(1000)), 443, seg[:1200]))
			continue
		case r == 8 && rng.IntN(10) == 0:
			dg := pcapgen.UDPDatagram(41000, 5000, seg[:20])
			src, dst := addr4(1+rng.IntN(2000)), addr4(2400)
			quoted := pcapgen.AppendFrame(nil, src, dst, 17, dg)[14 : 14+20+len(dg)]
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
			c.Send(true, pcapgen.ClientHello(fmt.Sprintf("api%d.example.test", rng.IntN(300))))
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
				c.Flags(true, pcapgen.RST|pcapgen.ACK)
			} else {
				c.Flags(false, pcapgen.FIN|pcapgen.ACK)
				c.Flags(true, pcapgen.FIN|pcapgen.ACK)
				c.Ack(false)
			}
			active[k] = newConn()
			continue
		}
		cn.step++
	}
	return w.Close()
}
