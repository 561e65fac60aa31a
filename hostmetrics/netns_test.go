//go:build linux

package hostmetrics

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/trafficgen"
)

// nsCollector samples one namespace: every Sample runs on a thread inside
// it and reads /proc/thread-self, the thread's own view of /proc/net.
type nsCollector struct {
	t  *testing.T
	ns *netns.Namespace
	c  *Collector
}

func newNSCollector(t *testing.T, ns *netns.Namespace) *nsCollector {
	var sec int64
	c, err := New(Config{ProcRoot: "/proc/thread-self", Host: ns.Name, Now: func() time.Time {
		// Each sample is its own second, so every Sample yields points.
		sec++
		return t0.Add(time.Duration(sec) * time.Second)
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &nsCollector{t, ns, c}
}

func (n *nsCollector) sample() Reading {
	n.t.Helper()
	if err := n.ns.Do(func() error { return n.c.Sample(context.Background()) }); err != nil {
		n.t.Fatal(err)
	}
	r, _, _ := n.c.Last()
	return r
}

// TestNamespaceCounters sends bounded traffic between two namespaces and
// checks that the collector, reading the real /proc/net of each, moved by
// exactly what was sent.
func TestNamespaceCounters(t *testing.T) {
	lab := netns.New(t)
	a, b := lab.Namespace(), lab.Namespace()
	link := lab.Veth(a, b, netns.LinkOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var udpSink, tcpSink *trafficgen.Sink
	if err := b.Do(func() (err error) {
		if udpSink, err = trafficgen.Listen("udp", netip.AddrPortFrom(link.B.Addr.Addr(), 0)); err != nil {
			return err
		}
		tcpSink, err = trafficgen.Listen("tcp", netip.AddrPortFrom(link.B.Addr.Addr(), 0))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer udpSink.Close()
	defer tcpSink.Close()
	ca, cb := newNSCollector(t, a), newNSCollector(t, b)
	ca.sample()
	cb.sample()
	ca.c.Drain(0)
	cb.c.Drain(0)

	// UDP: 100 datagrams of 200 bytes: exactly 100 frames of
	// 200+8+20+14 bytes leave A's end of the link and reach B's (static
	// neighbours, IPv6 off: nothing else is on the wire).
	const count, size = 100, 200
	if err := a.Do(func() error {
		_, err := trafficgen.Send(ctx, trafficgen.Flow{Network: "udp", Dst: udpSink.Addr, Count: count, PayloadSize: size})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ca.sample()
	got := sums(ca.c.Drain(0))
	wantBytes := float64(count * (size + 8 + 20 + 14))
	for _, k := range []seriesKey{{tripcap.MetricNetworkOutPackets, link.A.Name}, {tripcap.MetricNetworkOutPackets, ""}} {
		if got[k] != count {
			t.Errorf("A %s/%q = %v; want %d", k.metric, k.iface, got[k], count)
		}
	}
	for _, k := range []seriesKey{{tripcap.MetricNetworkOutBytes, link.A.Name}, {tripcap.MetricNetworkOutBytes, ""}} {
		if got[k] != wantBytes {
			t.Errorf("A %s/%q = %v; want %v", k.metric, k.iface, got[k], wantBytes)
		}
	}
	if got[seriesKey{tripcap.MetricNetworkInPackets, ""}] != 0 {
		t.Errorf("A received %v packets; the sink sends nothing back", got[seriesKey{tripcap.MetricNetworkInPackets, ""}])
	}
	// B receives asynchronously (softirq); poll until it has all.
	var in, inBytes float64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		cb.sample()
		s := sums(cb.c.Drain(0))
		in += s[seriesKey{tripcap.MetricNetworkInPackets, link.B.Name}]
		inBytes += s[seriesKey{tripcap.MetricNetworkInBytes, ""}]
		if in >= count {
			break
		}
	}
	if in != count || inBytes != wantBytes {
		t.Errorf("B received %v packets, %v bytes; want %d, %v", in, inBytes, count, wantBytes)
	}

	// Flows: an open connection from A to B's listening port is one
	// outbound flow in A and one inbound flow in B.
	var conn net.Conn
	if err := a.Do(func() (err error) {
		conn, err = net.Dial("tcp", tcpSink.Addr.String())
		if err == nil {
			_, err = conn.Write([]byte("hello"))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if r := ca.sample(); r.Flows != (FlowCount{Inbound: 0, Outbound: 1}) {
		t.Errorf("A flows = %+v; want 1 outbound", r.Flows)
	}
	var bf FlowCount
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if bf = cb.sample().Flows; bf.Inbound == 1 {
			break
		}
	}
	if bf != (FlowCount{Inbound: 1, Outbound: 0}) {
		t.Errorf("B flows = %+v; want 1 inbound", bf)
	}
	_ = conn.Close()
	time.Sleep(100 * time.Millisecond) // FIN handshake
	ca.sample()
	cb.sample()
	ca.c.Drain(0)
	cb.c.Drain(0)

	// TCP segments: a whole connection (handshake, 50 writes, close). Every
	// segment A's stack sends is a frame on A's end of the link and a
	// segment B's stack receives, and the other way round.
	if err := a.Do(func() error {
		_, err := trafficgen.Send(ctx, trafficgen.Flow{Network: "tcp", Dst: tcpSink.Addr, Count: 50, PayloadSize: 100, Interval: time.Millisecond})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var sa, sb map[seriesKey]float64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ca.sample()
		cb.sample()
		sa, sb = addSums(sa, sums(ca.c.Drain(0))), addSums(sb, sums(cb.c.Drain(0)))
		// Settled: both sides have seen every segment the other sent.
		if sa[seriesKey{tripcap.MetricTCPSegmentsSent, ""}] == sb[seriesKey{tripcap.MetricTCPSegmentsReceived, ""}] &&
			sb[seriesKey{tripcap.MetricTCPSegmentsSent, ""}] == sa[seriesKey{tripcap.MetricTCPSegmentsReceived, ""}] &&
			sa[seriesKey{tripcap.MetricTCPSegmentsSent, ""}] > 0 && sb[seriesKey{tripcap.MetricTCPSegmentsSent, ""}] > 0 {
			break
		}
	}
	sent, recv := sa[seriesKey{tripcap.MetricTCPSegmentsSent, ""}], sa[seriesKey{tripcap.MetricTCPSegmentsReceived, ""}]
	t.Logf("A sent %v segments (%v frames), received %v; B sent %v, received %v", sent, sa[seriesKey{tripcap.MetricNetworkOutPackets, ""}],
		recv, sb[seriesKey{tripcap.MetricTCPSegmentsSent, ""}], sb[seriesKey{tripcap.MetricTCPSegmentsReceived, ""}])
	// At least SYN, the handshake's ACK, one data segment and FIN; at most
	// one segment per write besides.
	if sent < 4 || sent > 50+4 {
		t.Errorf("A sent %v TCP segments for 50 writes", sent)
	}
	if sent != sa[seriesKey{tripcap.MetricNetworkOutPackets, ""}] || recv != sa[seriesKey{tripcap.MetricNetworkInPackets, ""}] {
		t.Errorf("A's TCP segments (%v out, %v in) differ from its link's frames (%v, %v)", sent, recv,
			sa[seriesKey{tripcap.MetricNetworkOutPackets, ""}], sa[seriesKey{tripcap.MetricNetworkInPackets, ""}])
	}
	if sent != sb[seriesKey{tripcap.MetricTCPSegmentsReceived, ""}] || recv != sb[seriesKey{tripcap.MetricTCPSegmentsSent, ""}] {
		t.Errorf("A sent %v, B received %v; B sent %v, A received %v", sent, sb[seriesKey{tripcap.MetricTCPSegmentsReceived, ""}],
			sb[seriesKey{tripcap.MetricTCPSegmentsSent, ""}], recv)
	}
	if r := sa[seriesKey{tripcap.MetricTCPRetransmittedSegment, ""}]; r != 0 {
		t.Errorf("%v retransmissions on a clean link", r)
	}
}

func addSums(a, b map[seriesKey]float64) map[seriesKey]float64 {
	if a == nil {
		a = map[seriesKey]float64{}
	}
	for k, v := range b {
		a[k] += v
	}
	return a
}
