//go:build linux

package triage

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/afpacket"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/trafficgen"
)

// TestNetnsCaptureAgainstTshark captures real traffic between two netns hosts
// with tripcap's engine, its pre-trigger buffer on: a steady UDP flow before
// the capture starts, then a TCP bulk transfer, a refused connection and
// datagrams to a closed port after. The summary agrees with tshark on the
// file, and the change at the alert (the capture start) names the TCP
// transfer as new.
func TestNetnsCaptureAgainstTshark(t *testing.T) {
	lab := netns.New(t)
	a, b := lab.Namespace(), lab.Namespace()
	link := lab.Veth(a, b, netns.LinkOptions{})
	dir := t.TempDir()
	e := afpacket.NewEngine(afpacket.Config{CaptureDir: dir, RingBytes: 8 << 20, PreTrigger: afpacket.PreTriggerConfig{Seconds: 5, Bytes: 16 << 20}})
	t.Cleanup(func() { e.Close() })
	if err := b.Do(func() error { return e.Open(context.Background()) }); err != nil {
		t.Fatal(err)
	}
	bAddr := link.B.Addr.Addr()
	sinks := make([]*trafficgen.Sink, 0, 2)
	for _, s := range []struct {
		network string
		port    uint16
	}{{"udp", 7000}, {"tcp", 7100}} {
		if err := b.Do(func() error {
			sk, err := trafficgen.Listen(s.network, netip.AddrPortFrom(bAddr, s.port))
			sinks = append(sinks, sk)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, s := range sinks {
			s.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	send := func(f trafficgen.Flow) error {
		return a.Do(func() error { _, err := trafficgen.Send(ctx, f); return err })
	}

	// Steady UDP, one datagram every 5 ms for 2 s, across the start.
	var wg sync.WaitGroup
	wg.Add(1)
	var steadyErr error
	go func() {
		defer wg.Done()
		steadyErr = send(trafficgen.Flow{Network: "udp", Dst: netip.AddrPortFrom(bAddr, 7000), Count: 400, PayloadSize: 100, Interval: 5 * time.Millisecond, ID: 1})
	}()
	time.Sleep(time.Second)
	p := tripcap.PacketCaptureParameters{Target: "test", Format: tripcap.FormatPcapng, PreTriggerSeconds: 1}
	spec := tripcap.CaptureSpec{ID: "netns", Name: "netns", Parameters: p, Path: filepath.Join(dir, "netns.pcapng"), Comment: "tripcap capture netns (id netns)"}
	var sess *afpacket.Session
	if err := b.Do(func() (err error) {
		sess, err = e.StartSession(context.Background(), spec, afpacket.SessionOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := send(trafficgen.Flow{Network: "tcp", Dst: netip.AddrPortFrom(bAddr, 7100), Count: 2000, PayloadSize: 1000, ID: 2}); err != nil {
		t.Fatal(err)
	}
	// A refused connection and datagrams to a closed port.
	_ = a.Do(func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(bAddr, 7998).String(), 2*time.Second)
		if err == nil {
			c.Close()
		}
		return nil
	})
	if err := send(trafficgen.Flow{Network: "udp", Dst: netip.AddrPortFrom(bAddr, 7999), Count: 3, PayloadSize: 20, Interval: 10 * time.Millisecond, ID: 3}); err != nil && !strings.Contains(err.Error(), "refused") {
		t.Fatal(err)
	}
	wg.Wait()
	if steadyErr != nil {
		t.Fatal(steadyErr)
	}
	time.Sleep(200 * time.Millisecond)
	sess.Stop(tripcap.StopManuallyStopped)
	select {
	case <-sess.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the capture did not stop")
	}
	res := sess.Result()
	if len(res.Files) != 1 {
		t.Fatalf("files %v", res.Files)
	}
	file := res.Files[0]

	s, err := AnalyzeFiles(context.Background(), []string{file}, Options{Top: 10000})
	if err != nil {
		t.Fatal(err)
	}
	compareWithTshark(t, file, s)
	if s.Packets != res.Stats.Packets {
		t.Errorf("%d packets, the engine wrote %d", s.Packets, res.Stats.Packets)
	}
	// A whole-host capture has a block for every interface it watched; the
	// traffic is all on the link's.
	var onLink uint64
	for _, ifc := range s.Interfaces {
		if ifc.Name == link.B.Name {
			onLink = ifc.Packets
		} else if ifc.Packets != 0 {
			t.Errorf("packets on %s, which carried none of the traffic: %+v", ifc.Name, ifc)
		}
	}
	if s.KernelDrops == nil || onLink != s.Packets {
		t.Errorf("interfaces %+v, drops %v: want every packet on %s", s.Interfaces, s.KernelDrops, link.B.Name)
	}
	if s.TCP.Refused != 1 || s.TCP.Established != 1 || s.ICMP.Unreachables == 0 {
		t.Errorf("TCP %+v, ICMP %+v", s.TCP, s.ICMP)
	}
	al := s.Alert
	if al == nil {
		t.Fatal("no change at the alert: the pre-trigger part was not found")
	}
	if !strings.HasPrefix(al.Source, "capture start") || al.Before.Packets < 100 || al.Before.Seconds < 0.5 {
		t.Errorf("alert %+v", al)
	}
	if len(al.Flows) == 0 || !al.Flows[0].New || !strings.Contains(al.Flows[0].Name, ":7100") {
		t.Errorf("the new TCP transfer is not the first change: %+v", al.Flows)
	}
	t.Logf("summary: %s", strings.Join(s.TopLines(10), "; "))
}
