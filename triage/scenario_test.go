package triage

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/tripcap/tripcap/internal/pcapgen"
)

var (
	hostA = netip.MustParseAddr("198.18.0.1")
	hostB = netip.MustParseAddr("198.18.0.2")
	hostC = netip.MustParseAddr("198.18.0.3")
	hostD = netip.MustParseAddr("198.18.0.4")
	hostE = netip.MustParseAddr("198.18.0.5")
	dnsSv = netip.MustParseAddr("198.18.0.53")
	host6 = netip.MustParseAddr("fd00::1")
	srv6  = netip.MustParseAddr("fd00::2")
)

// scenarioStart is the deterministic clock of the generated captures.
var scenarioStart = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

// writeScenario writes traffic with one of each thing triage reports: an
// HTTP exchange, a TLS connection with a retransmission, duplicate ACKs and
// a fast retransmission, a refused and an unanswered connection, a zero
// window, resets, DNS answers of several rcodes (one slow), an ICMP port
// unreachable and IPv6 traffic. Timestamps are 1 ms apart at least, except
// where a test needs them closer.
func writeScenario(w *pcapgen.Writer) {
	ms := time.Millisecond
	// An unanswered SYN, early enough to count.
	un := &pcapgen.Conn{W: w, Client: hostA, Server: hostD, CPort: 40004, SPort: 22, CSeq: 1000, CWindow: 64240}
	un.Flags(true, pcapgen.SYN)
	w.Advance(ms)

	// HTTP.
	h := &pcapgen.Conn{W: w, Client: hostA, Server: hostB, CPort: 40001, SPort: 80, CSeq: 100, SSeq: 5000, CWindow: 502, SWindow: 509, RTT: 2 * ms}
	h.Handshake()
	w.Advance(ms)
	h.Send(true, []byte("GET /index.html HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: t\r\n\r\n"))
	w.Advance(ms)
	h.Ack(false)
	w.Advance(ms)
	h.Send(false, []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"))
	w.Advance(ms)
	h.Ack(true)
	w.Advance(ms)
	h.Send(true, []byte("GET /other HTTP/1.1\r\nhost: api.example.test\r\n\r\n"))
	w.Advance(ms)
	h.Send(false, []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	w.Advance(ms)
	h.Flags(true, pcapgen.FIN|pcapgen.ACK)
	w.Advance(ms)
	h.Flags(false, pcapgen.FIN|pcapgen.ACK)
	w.Advance(ms)
	h.Ack(true)
	w.Advance(10 * ms)

	// TLS with trouble.
	t := &pcapgen.Conn{W: w, Client: hostA, Server: hostC, CPort: 40002, SPort: 443, CSeq: 7000, SSeq: 90000, CWindow: 502, SWindow: 509, RTT: 4 * ms}
	t.Handshake()
	w.Advance(ms)
	t.Send(true, pcapgen.ClientHello("api.example.test"))
	w.Advance(2 * ms)
	t.Send(false, pcapgen.ServerHello(0x0304))
	w.Advance(ms)
	t.Ack(true)
	w.Advance(ms)
	// A segment sent, then resent 200 ms later without an ACK between:
	// a retransmission.
	seg := make([]byte, 1000)
	seq := t.CSeq
	t.Send(true, seg)
	w.Advance(200 * ms)
	t.Resend(true, seq, seg)
	w.Advance(ms)
	t.Ack(false)
	w.Advance(ms)
	// Three segments, the first lost: the server acknowledges the second
	// and third with duplicate ACKs, and the client resends the first
	// within 20 ms of the last: a fast retransmission.
	lost := t.CSeq
	t.CSeq += 1000 // never captured
	w.Advance(ms)
	t.Send(true, seg)
	w.Advance(ms)
	t.Send(true, seg)
	w.Advance(ms)
	srvAck := t.SSeq
	_ = srvAck
	ackAt := t.CSeq
	t.CSeq = lost
	t.Ack(false) // acks "lost": the first duplicate is the next
	w.Advance(ms)
	t.Ack(false)
	w.Advance(ms)
	t.Ack(false)
	w.Advance(ms)
	t.Resend(true, lost, seg)
	w.Advance(5 * ms)
	t.CSeq = ackAt
	t.Ack(false)
	w.Advance(ms)
	// The server's window closes.
	t.SWindow = 0
	t.Ack(false)
	w.Advance(50 * ms)
	t.SWindow = 509
	t.Ack(false)
	w.Advance(ms)
	t.Send(true, pcapgen.Alert(2, 40))
	w.Advance(ms)
	t.Flags(false, pcapgen.RST|pcapgen.ACK)
	w.Advance(10 * ms)

	// Refused.
	r := &pcapgen.Conn{W: w, Client: hostA, Server: hostB, CPort: 40003, SPort: 9999, CSeq: 3000, CWindow: 64240}
	r.Flags(true, pcapgen.SYN)
	w.Advance(ms)
	r.Flags(false, pcapgen.RST|pcapgen.ACK)
	w.Advance(10 * ms)

	// DNS.
	dns := func(id uint16, name string, rcode uint8, delay time.Duration) {
		w.Frame(hostA, dnsSv, 17, pcapgen.UDPDatagram(50000+id, 53, pcapgen.DNSMessage(id, false, 0, name)))
		w.Advance(delay)
		w.Frame(dnsSv, hostA, 17, pcapgen.UDPDatagram(53, 50000+id, pcapgen.DNSMessage(id, true, rcode, name)))
		w.Advance(ms)
	}
	dns(1, "www.example.test", 0, 3*ms)
	dns(2, "missing.example.test", 3, 3*ms)
	dns(3, "missing.example.test", 3, 2*ms)
	dns(4, "broken.example.test", 2, 3*ms)
	dns(5, "slow.example.test", 0, 350*ms)
	dns(6, "WWW.Example.Test", 0, 2*ms)

	// ICMP port unreachable for a UDP datagram.
	dg := pcapgen.UDPDatagram(41000, 5000, []byte("hello"))
	w.Frame(hostA, hostE, 17, dg)
	w.Advance(ms)
	quoted := pcapgen.AppendFrame(nil, hostA, hostE, 17, dg)[14 : 14+20+len(dg)]
	w.Frame(hostE, hostA, 1, append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, quoted...))
	w.Advance(ms)

	// IPv6.
	v6 := &pcapgen.Conn{W: w, Client: host6, Server: srv6, CPort: 50001, SPort: 8080, CSeq: 1, SSeq: 1, CWindow: 1000, SWindow: 1000, RTT: ms}
	v6.Handshake()
	for range 5 {
		w.Advance(ms)
		v6.Send(true, make([]byte, 200))
		w.Advance(ms)
		v6.Ack(false)
	}
	w.Advance(1500 * ms)
	// Something at the end, so the unanswered SYN is well before it.
	w.Frame(hostA, hostB, 17, pcapgen.UDPDatagram(41001, 6000, []byte("end")))
}

// scenarioPcap writes the scenario to a pcap file in dir.
func scenarioPcap(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "scenario.pcap")
	w, err := pcapgen.Create(path, scenarioStart)
	if err != nil {
		t.Fatal(err)
	}
	writeScenario(w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
