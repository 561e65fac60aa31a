package trafficgen

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestSendUDP sends an exact count of stamped datagrams over loopback.
func TestSendUDP(t *testing.T) {
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dst := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := Send(ctx, Flow{Network: "udp", Dst: dst, Count: 50, PayloadSize: 100, ID: 7, Interval: time.Millisecond})
	if err != nil || res.Sent != 50 || res.Bytes != 5000 {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	buf := make([]byte, 2048)
	if err := pc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for want := range uint64(50) {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", want, err)
		}
		id, seq, ok := Stamp(buf[:n])
		if !ok || id != 7 || seq != want || n != 100 {
			t.Fatalf("datagram %d: id %d seq %d ok %v len %d", want, id, seq, ok, n)
		}
	}
}

// TestSendBounds refuses counts beyond MaxCount and stops with its context.
func TestSendBounds(t *testing.T) {
	if _, err := Send(context.Background(), Flow{Network: "udp", Dst: netip.MustParseAddrPort("127.0.0.1:9"), Count: MaxCount + 1}); err == nil {
		t.Error("a flow over MaxCount was accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Send(ctx, Flow{Network: "udp", Dst: netip.MustParseAddrPort("127.0.0.1:9"), Count: 10, Interval: time.Millisecond})
	if err == nil || res.Sent != 0 {
		t.Errorf("Send with a cancelled context = %+v, %v", res, err)
	}
}
