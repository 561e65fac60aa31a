//go:build linux

package afpacket

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/testenv"
	"github.com/tripcap/tripcap/internal/trafficgen"
	"github.com/tripcap/tripcap/pcapfile"
)

// hostNet is a capturing namespace h that looks like a container host: a
// bridge with two ports (veths to namespaces a and b, which also reach each
// other through it), a plain veth to c carrying a VLAN sub-interface, and a
// veth pair with both ends in h.
type hostNet struct {
	lab          *netns.Lab
	h, a, b, c   *netns.Namespace
	l1, l2, l3   *netns.Link // h–a and h–b (bridge ports), h–c
	pair         *netns.Link // both ends in h
	bridge       string
	vlanH, vlanC netip.Addr // the VLAN's addresses, in h and c
	vlanIf       string     // the VLAN sub-interface in h
}

func newHostNet(t *testing.T) *hostNet {
	t.Helper()
	lab := netns.New(t)
	n := &hostNet{lab: lab, h: lab.Namespace(), a: lab.Namespace(), b: lab.Namespace(), c: lab.Namespace()}
	n.l1 = lab.Veth(n.h, n.a, netns.LinkOptions{})
	n.l2 = lab.Veth(n.h, n.b, netns.LinkOptions{})
	n.l3 = lab.Veth(n.h, n.c, netns.LinkOptions{})
	n.pair = lab.Veth(n.h, n.h, netns.LinkOptions{})
	// No tail loss probes: on a busy machine a late ACK draws one, a
	// real retransmission, and the transfers are to be clean.
	for _, ns := range []*netns.Namespace{n.h, n.a, n.b, n.c} {
		sysctl(t, ns, "net.ipv4.tcp_early_retrans=0")
	}
	n.bridge = "tc" + lab.ID()[:6] + "-br"
	ip(t, n.h, "link", "add", n.bridge, "type", "bridge")
	sysctl(t, n.h, "net.ipv6.conf."+n.bridge+".disable_ipv6=1")
	for _, l := range []*netns.Link{n.l1, n.l2} {
		ip(t, n.h, "addr", "flush", "dev", l.A.Name)
		ip(t, n.h, "link", "set", l.A.Name, "master", n.bridge)
		ip(t, n.h, "addr", "add", l.A.Addr.String(), "dev", n.bridge)
		ip(t, n.h, "neigh", "replace", l.B.Addr.Addr().String(), "lladdr", l.B.MAC.String(), "dev", n.bridge, "nud", "permanent")
	}
	ip(t, n.h, "link", "set", n.bridge, "up")
	// a and b reach each other across the bridge.
	for _, x := range [][2]*netns.Link{{n.l1, n.l2}, {n.l2, n.l1}} {
		from, to := x[0].B, x[1].B
		ip(t, from.NS, "route", "add", to.Addr.Addr().String()+"/32", "dev", from.Name)
		ip(t, from.NS, "neigh", "replace", to.Addr.Addr().String(), "lladdr", to.MAC.String(), "dev", from.Name, "nud", "permanent")
	}
	// VLAN 5 on the h–c link, addressed from the lab's /24 beyond its
	// links, where the kernel has VLANs (TestDedupe covers the rule).
	if _, err := n.h.Exec(context.Background(), "ip", "link", "add", "link", n.l3.A.Name, "name", n.l3.A.Name+".5", "type", "vlan", "id", "5"); err != nil {
		t.Logf("no VLAN in this kernel, the capture goes without: %v", err)
		return n
	}
	ip(t, n.h, "link", "del", n.l3.A.Name+".5")
	base := n.l1.A.Addr.Addr().As4()
	base[3] = 241
	n.vlanH = netip.AddrFrom4(base)
	base[3] = 242
	n.vlanC = netip.AddrFrom4(base)
	n.vlanIf = n.l3.A.Name + ".5"
	for _, e := range []struct {
		ns       *netns.Namespace
		parent   string
		me, peer netip.Addr
		peerMAC  string
	}{{n.h, n.l3.A.Name, n.vlanH, n.vlanC, n.l3.B.MAC.String()}, {n.c, n.l3.B.Name, n.vlanC, n.vlanH, n.l3.A.MAC.String()}} {
		vif := e.parent + ".5"
		ip(t, e.ns, "link", "add", "link", e.parent, "name", vif, "type", "vlan", "id", "5")
		sysctl(t, e.ns, "net.ipv6.conf."+strings.ReplaceAll(vif, ".", "/")+".disable_ipv6=1")
		ip(t, e.ns, "addr", "add", e.me.String()+"/30", "dev", vif)
		ip(t, e.ns, "neigh", "replace", e.peer.String(), "lladdr", e.peerMAC, "dev", vif, "nud", "permanent")
		ip(t, e.ns, "link", "set", vif, "up")
	}
	return n
}

func ip(t *testing.T, ns *netns.Namespace, args ...string) {
	t.Helper()
	if _, err := ns.Exec(context.Background(), append([]string{"ip"}, args...)...); err != nil {
		t.Fatal(err)
	}
}

func sysctl(t *testing.T, ns *netns.Namespace, kv string) {
	t.Helper()
	if _, err := ns.Exec(context.Background(), "sysctl", "-q", "-w", kv); err != nil {
		t.Fatal(err)
	}
}

// flows sends several flows at once, so the interfaces' records interleave.
func flows(t *testing.T, fs map[*netns.Namespace][]trafficgen.Flow) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for ns, list := range fs {
		for _, f := range list {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				err := ns.Do(func() error {
					res, err := trafficgen.Send(ctx, f)
					if err == nil && res.Sent != f.Count {
						err = fmt.Errorf("sent %d of %d", res.Sent, f.Count)
					}
					return err
				})
				if err != nil {
					errs <- fmt.Errorf("flow %d to %s: %w", f.ID, f.Dst, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// stampOf returns the trafficgen stamp of a UDP datagram in an Ethernet
// frame, VLAN-tagged or not.
func stampOf(frame []byte) (id uint32, seq uint64, ok bool) {
	if len(frame) >= 18 && binary.BigEndian.Uint16(frame[12:]) == 0x8100 {
		frame = append(slices.Clone(frame[:12]), frame[16:]...)
	}
	pl, ok := udpPayload(frame)
	if !ok {
		return 0, 0, false
	}
	return trafficgen.Stamp(pl)
}

// interfaceNames lists the interface blocks of a pcapng file.
func interfaceNames(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		t.Fatalf("%s is not pcapng: %v", path, err)
	}
	// Interface blocks are read as the reader gets to them.
	for {
		if _, _, err := r.ReadPacketData(); err != nil {
			break
		}
	}
	var names []string
	for i := range r.NInterfaces() {
		ifc, _ := r.Interface(i)
		names = append(names, ifc.Name)
	}
	return names
}

// checkClean checks that a whole-host file reads as the traffic was: records
// in time order, each stamped datagram once, and the statistics the file's.
func checkClean(t *testing.T, res tripcap.CaptureResult, want map[uint32]int) []packet {
	t.Helper()
	path := res.Files[0]
	pkts := readCapture(t, path)
	negative := 0
	for i := 1; i < len(pkts); i++ {
		if pkts[i].ts.Before(pkts[i-1].ts) {
			negative++
		}
	}
	if negative > 0 {
		t.Errorf("%d negative time deltas in %d records", negative, len(pkts))
	}
	seen := map[[2]uint64]int{}
	got := map[uint32]int{}
	for _, p := range pkts {
		if id, seq, ok := stampOf(p.data); ok {
			seen[[2]uint64{uint64(id), seq}]++
			got[id]++
		}
	}
	dups := 0
	for _, n := range seen {
		if n > 1 {
			dups++
		}
	}
	if dups > 0 {
		t.Errorf("%d datagrams recorded more than once", dups)
	}
	for id, n := range want {
		if got[id] != n {
			t.Errorf("flow %d: %d datagrams in the file, want %d", id, got[id], n)
		}
	}
	if n := capinfosPackets(t, path); uint64(n) != res.Stats.Packets {
		t.Errorf("capinfos counts %d packets; the session reports %d", n, res.Stats.Packets)
	}
	if _, data, err := pcapfile.Count(path); err != nil || data != res.Stats.Bytes {
		t.Errorf("the file holds %d captured bytes (%v); the session reports %d", data, err, res.Stats.Bytes)
	}
	return pkts
}

// TestWholeHostFileReadsClean captures every interface of a host with a
// bridge and its ports, a VLAN sub-interface, plain veths and a veth pair
// with both ends on the host, while UDP and TCP flows cross all of them at
// once: the file is pcapng with one interface block per captured interface,
// its records are in time order, no packet is in it twice, and Wireshark
// finds no retransmission or duplicate ACK in the clean TCP transfers.
func TestWholeHostFileReadsClean(t *testing.T) {
	n := newHostNet(t)
	e, dir := newTestEngine(t, Config{})
	addr := func(p netip.Prefix, port uint16) netip.AddrPort { return netip.AddrPortFrom(p.Addr(), port) }
	sink(t, n.h, "udp", addr(n.l1.A.Addr, 7001))
	sink(t, n.h, "udp", addr(n.l3.A.Addr, 7002))
	sink(t, n.b, "udp", addr(n.l2.B.Addr, 7004))
	sink(t, n.c, "udp", addr(n.l3.B.Addr, 7005))
	sink(t, n.h, "tcp", addr(n.l1.A.Addr, 7101))
	sink(t, n.b, "tcp", addr(n.l2.B.Addr, 7103))

	want := map[uint32]int{1: 300, 2: 300, 4: 300, 5: 300}
	tcp := 2
	fromC := []trafficgen.Flow{{Network: "udp", Dst: addr(n.l3.A.Addr, 7002), Count: 300, PayloadSize: 200, Interval: 200 * time.Microsecond, ID: 2}}
	if n.vlanH.IsValid() {
		sink(t, n.h, "udp", netip.AddrPortFrom(n.vlanH, 7003))
		sink(t, n.h, "tcp", netip.AddrPortFrom(n.vlanH, 7102))
		want[3] = 300
		tcp++
		fromC = append(fromC,
			trafficgen.Flow{Network: "udp", Dst: netip.AddrPortFrom(n.vlanH, 7003), Count: 300, PayloadSize: 200, Interval: 200 * time.Microsecond, ID: 3},
			trafficgen.Flow{Network: "tcp", Dst: netip.AddrPortFrom(n.vlanH, 7102), Count: 2000, PayloadSize: 1000, Interval: 50 * time.Microsecond, ID: 12})
	}
	// Headers are enough for Wireshark's analysis, and keep the rings
	// from overflowing under the TCP transfers' 64 KiB segments.
	s := startIn(t, n.h, e, spec(dir, "host.cap", tripcap.PacketCaptureParameters{BytesToCapturePerPacket: 256}), SessionOptions{})
	flows(t, map[*netns.Namespace][]trafficgen.Flow{
		n.a: {
			{Network: "udp", Dst: addr(n.l1.A.Addr, 7001), Count: 300, PayloadSize: 200, Interval: 200 * time.Microsecond, ID: 1},
			{Network: "udp", Dst: addr(n.l2.B.Addr, 7004), Count: 300, PayloadSize: 200, Interval: 200 * time.Microsecond, ID: 4},
			{Network: "tcp", Dst: addr(n.l1.A.Addr, 7101), Count: 2000, PayloadSize: 1000, Interval: 50 * time.Microsecond, ID: 11},
			{Network: "tcp", Dst: addr(n.l2.B.Addr, 7103), Count: 2000, PayloadSize: 1000, Interval: 50 * time.Microsecond, ID: 13},
		},
		n.c: fromC,
		n.h: {
			{Network: "udp", Dst: addr(n.l3.B.Addr, 7005), Count: 300, PayloadSize: 200, Interval: 200 * time.Microsecond, ID: 5},
		},
	})
	time.Sleep(300 * time.Millisecond)
	res := stopAndWait(t, s, tripcap.StopManuallyStopped)
	if res.StopReason != tripcap.StopManuallyStopped || len(res.Errors) != 0 || res.Stats.KernelDrops != 0 {
		t.Fatalf("ended %s %v, %d kernel drops: %s", res.StopReason, res.Errors, res.Stats.KernelDrops, res.Message)
	}
	checkClean(t, res, want)

	names := interfaceNames(t, res.Files[0])
	for _, want := range []string{n.bridge, n.l1.A.Name, n.l2.A.Name, n.l3.A.Name} {
		if !slices.Contains(names, want) {
			t.Errorf("no interface block for %s in %v", want, names)
		}
	}
	if n.vlanH.IsValid() && slices.Contains(names, n.vlanIf) {
		t.Errorf("the VLAN sub-interface %s is captured beside its parent: %v", n.vlanIf, names)
	}
	if slices.Contains(names, n.pair.A.Name) == slices.Contains(names, n.pair.B.Name) {
		t.Errorf("of the veth pair with both ends on the host, exactly one end is captured: %v", names)
	}
	// Paced so that the transfers are clean (at full speed the receiving
	// namespaces' backlogs overflow and TCP really retransmits).
	if c := tsharkCount(t, res.Files[0], "tcp"); c < tcp*1000 {
		t.Errorf("only %d TCP segments in the file", c)
	}
	// No TCP segment twice: the same IP id, sequence number and length
	// from the same source would be the capture's duplicate.
	out, err := exec.Command(testenv.RequireBinary(t, "tshark"), "-r", res.Files[0], "-Y", "tcp", "-T", "fields",
		"-e", "ip.src", "-e", "ip.id", "-e", "tcp.seq_raw", "-e", "tcp.len", "-e", "tcp.flags").Output()
	if err != nil {
		t.Fatal(err)
	}
	segs := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if segs[line]++; segs[line] == 2 {
			t.Errorf("TCP segment %q recorded twice", line)
		}
	}
	if c := tsharkCount(t, res.Files[0], "tcp.analysis.retransmission or tcp.analysis.duplicate_ack"); c != 0 {
		t.Errorf("Wireshark sees %d retransmissions or duplicate ACKs in clean transfers", c)
		if out, err := exec.Command("tshark", "-r", res.Files[0], "-Y", "tcp.analysis.flags", "-T", "fields", "-e", "frame.number", "-e", "frame.interface_name",
			"-e", "frame.time_epoch", "-e", "tcp.stream", "-e", "tcp.seq", "-e", "tcp.len", "-e", "tcp.ack", "-e", "_ws.expert.message").CombinedOutput(); err == nil {
			t.Logf("flagged:\n%s", out)
		}
		if os.Getenv("TRIPCAP_KEEP") != "" {
			_ = exec.Command("cp", res.Files[0], os.Getenv("TRIPCAP_KEEP")).Run()
		}
	}
}

// TestDedupe checks what a whole-host capture takes of each interface.
func TestDedupe(t *testing.T) {
	eth := func(name string, index int) netInterface {
		return netInterface{Name: name, Index: index, Up: true, Framing: framingEthernet}
	}
	with := func(n netInterface, f func(*netInterface)) netInterface { f(&n); return n }
	cases := []struct {
		name string
		in   []netInterface
		want map[string]direction // absent: left out
	}{
		{"plain", []netInterface{eth("eth0", 2), eth("eth1", 3)}, map[string]direction{"eth0": dirBoth, "eth1": dirBoth}},
		{"bridge and ports", []netInterface{
			with(eth("br0", 4), func(n *netInterface) { n.Kind = "bridge" }),
			with(eth("veth1", 5), func(n *netInterface) { n.Master = 4; n.Kind = "veth"; n.Link = 2; n.LinkNetNS = true }),
			with(eth("veth2", 6), func(n *netInterface) { n.Master = 4; n.Kind = "veth"; n.Link = 2; n.LinkNetNS = true }),
		}, map[string]direction{"br0": dirOut, "veth1": dirIn, "veth2": dirIn}},
		{"bridge without captured ports", []netInterface{with(eth("br0", 4), func(n *netInterface) { n.Kind = "bridge" })}, map[string]direction{"br0": dirBoth}},
		{"bond in a bridge", []netInterface{
			eth("br0", 10),
			with(eth("bond0", 11), func(n *netInterface) { n.Master = 10; n.Kind = "bond" }),
			with(eth("eth0", 12), func(n *netInterface) { n.Master = 11 }),
			with(eth("eth1", 13), func(n *netInterface) { n.Master = 11 }),
		}, map[string]direction{"br0": dirOut, "eth0": dirIn, "eth1": dirIn}},
		{"vlan on a captured parent", []netInterface{
			eth("eth0", 2),
			with(eth("eth0.5", 7), func(n *netInterface) { n.Kind = "vlan"; n.Link = 2 }),
		}, map[string]direction{"eth0": dirBoth}},
		{"vlan whose parent is not captured", []netInterface{
			with(eth("eth0.5", 7), func(n *netInterface) { n.Kind = "vlan"; n.Link = 2 }),
		}, map[string]direction{"eth0.5": dirBoth}},
		{"veth pair on the host", []netInterface{
			with(eth("va", 8), func(n *netInterface) { n.Kind = "veth"; n.Link = 9 }),
			with(eth("vb", 9), func(n *netInterface) { n.Kind = "veth"; n.Link = 8 }),
		}, map[string]direction{"va": dirBoth}},
		{"veth pair, one end a bridge port", []netInterface{
			eth("br0", 4),
			with(eth("va", 8), func(n *netInterface) { n.Kind = "veth"; n.Link = 9; n.Master = 4 }),
			with(eth("vb", 9), func(n *netInterface) { n.Kind = "veth"; n.Link = 8 }),
		}, map[string]direction{"br0": dirOut, "va": dirIn, "vb": dirIn}},
	}
	for _, c := range cases {
		kept, skipped := dedupe(slices.Clone(c.in))
		got := map[string]direction{}
		for _, k := range kept {
			got[k.Name] = k.dirs
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: took %v (left out %v), want %v", c.name, got, skipped, c.want)
		}
	}
}

// TestInterfaceGoesAway deletes one interface in the middle of a whole-host
// capture (a container stopping): the capture goes on with the others, its
// status names the interface and when it ended, and the file records the
// end in a statistics block.
func TestInterfaceGoesAway(t *testing.T) {
	for _, explicit := range []bool{false, true} {
		t.Run(fmt.Sprintf("interfaces given %v", explicit), func(t *testing.T) {
			lab := netns.New(t)
			h, a, c := lab.Namespace(), lab.Namespace(), lab.Namespace()
			la, lc := lab.Veth(h, a, netns.LinkOptions{}), lab.Veth(h, c, netns.LinkOptions{})
			e, dir := newTestEngine(t, Config{})
			to := func(l *netns.Link, port uint16) netip.AddrPort { return netip.AddrPortFrom(l.A.Addr.Addr(), port) }
			sink(t, h, "udp", to(la, 7001))
			sink(t, h, "udp", to(lc, 7002))
			var p tripcap.PacketCaptureParameters
			if explicit {
				p.Interfaces = []string{la.A.Name, lc.A.Name}
			}
			s := startIn(t, h, e, spec(dir, "away.cap", p), SessionOptions{})
			send(t, a, trafficgen.Flow{Network: "udp", Dst: to(la, 7001), Count: 100, PayloadSize: 100, ID: 1})
			send(t, c, trafficgen.Flow{Network: "udp", Dst: to(lc, 7002), Count: 100, PayloadSize: 100, ID: 2})
			waitPackets(t, s, 200)
			ip(t, h, "link", "del", lc.A.Name)
			deadline := time.Now().Add(5 * time.Second)
			for len(s.Stats().EndedInterfaces) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			live := s.Stats().EndedInterfaces
			left, gone := la, lc
			send(t, a, trafficgen.Flow{Network: "udp", Dst: to(left, 7001), Count: 100, PayloadSize: 100, ID: 3})
			waitPackets(t, s, 300)
			select {
			case <-s.Done():
				t.Fatalf("the capture ended when %s went away: %s %v %s", gone.A.Name, s.Result().StopReason, s.Result().Errors, s.Result().Message)
			default:
			}
			res := stopAndWait(t, s, tripcap.StopManuallyStopped)
			if res.StopReason != tripcap.StopManuallyStopped || len(res.Errors) != 0 {
				t.Errorf("ended %s %v, want ManuallyStopped without errors", res.StopReason, res.Errors)
			}
			for _, ended := range [][]tripcap.InterfaceEnd{live, res.Stats.EndedInterfaces} {
				if len(ended) != 1 || ended[0].Name != gone.A.Name || ended[0].At.Before(res.StartTime) || ended[0].At.After(res.StopTime) || ended[0].Reason == "" {
					t.Errorf("ended interfaces %+v, want %s once, at a time within the capture", ended, gone.A.Name)
				}
			}
			if !strings.Contains(res.Message, gone.A.Name) {
				t.Errorf("message %q does not say %s went away", res.Message, gone.A.Name)
			}
			checkClean(t, res, map[uint32]int{1: 100, 2: 100, 3: 100})
			b, err := os.ReadFile(res.Files[0])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte("interface "+gone.A.Name+" went away")) {
				t.Error("the file does not record the interface's end")
			}
		})
	}
}

// TestInterfaceAppears adds a veth to the host in the middle of a
// whole-host capture (a container starting): its packets are in the file,
// under an interface block of its own.
func TestInterfaceAppears(t *testing.T) {
	lab := netns.New(t)
	h, a, c := lab.Namespace(), lab.Namespace(), lab.Namespace()
	la := lab.Veth(h, a, netns.LinkOptions{})
	e, dir := newTestEngine(t, Config{})
	s := startIn(t, h, e, spec(dir, "appears.cap", tripcap.PacketCaptureParameters{}), SessionOptions{})
	lc := lab.Veth(h, c, netns.LinkOptions{})
	deadline := time.Now().Add(5 * time.Second)
	for !slices.ContainsFunc(s.sockets(), func(k *socket) bool { return k.ifc.Name == lc.A.Name }) {
		if time.Now().After(deadline) {
			t.Fatalf("%s was not picked up", lc.A.Name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	to := func(l *netns.Link, port uint16) netip.AddrPort { return netip.AddrPortFrom(l.A.Addr.Addr(), port) }
	sink(t, h, "udp", to(la, 7001))
	sink(t, h, "udp", to(lc, 7002))
	flows(t, map[*netns.Namespace][]trafficgen.Flow{
		a: {{Network: "udp", Dst: to(la, 7001), Count: 200, PayloadSize: 100, Interval: 100 * time.Microsecond, ID: 1}},
		c: {{Network: "udp", Dst: to(lc, 7002), Count: 200, PayloadSize: 100, Interval: 100 * time.Microsecond, ID: 2}},
	})
	waitPackets(t, s, 400)
	res := stopAndWait(t, s, tripcap.StopManuallyStopped)
	pkts := checkClean(t, res, map[uint32]int{1: 200, 2: 200})
	names := interfaceNames(t, res.Files[0])
	if len(names) != 2 || names[0] != la.A.Name || names[1] != lc.A.Name {
		t.Fatalf("interface blocks %v, want %s then %s", names, la.A.Name, lc.A.Name)
	}
	for _, p := range pkts {
		if id, _, ok := stampOf(p.data); ok && int(id) != p.iface+1 {
			t.Fatalf("a datagram of flow %d is recorded on interface %d", id, p.iface)
		}
	}
}

// TestPreTriggerTakesNewInterfaces: an interface that appears after the
// pre-trigger buffer started is buffered too, so a whole-host session with
// preTriggerSeconds starts with its packets; one that goes away leaves the
// buffer working on the others.
func TestPreTriggerTakesNewInterfaces(t *testing.T) {
	lab := netns.New(t)
	h, a, c := lab.Namespace(), lab.Namespace(), lab.Namespace()
	la := lab.Veth(h, a, netns.LinkOptions{})
	e, dir := newTestEngine(t, Config{PreTrigger: PreTriggerConfig{Seconds: 10, Bytes: 8 << 20}})
	if err := h.Do(func() error { return e.Open(context.Background()) }); err != nil {
		t.Fatal(err)
	}
	lc := lab.Veth(h, c, netns.LinkOptions{})
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(e.PreTriggerStats().Interfaces, lc.A.Name) {
		if time.Now().After(deadline) {
			t.Fatalf("the pre-trigger buffer did not take %s: %v", lc.A.Name, e.PreTriggerStats().Interfaces)
		}
		time.Sleep(10 * time.Millisecond)
	}
	to := func(l *netns.Link, port uint16) netip.AddrPort { return netip.AddrPortFrom(l.A.Addr.Addr(), port) }
	sink(t, h, "udp", to(la, 7001))
	sink(t, h, "udp", to(lc, 7002))
	send(t, c, trafficgen.Flow{Network: "udp", Dst: to(lc, 7002), Count: 50, PayloadSize: 100, ID: 2})
	// A third interface comes and goes; the buffer goes on.
	lx := lab.Veth(h, lab.Namespace(), netns.LinkOptions{})
	for !slices.Contains(e.PreTriggerStats().Interfaces, lx.A.Name) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ip(t, h, "link", "del", lx.A.Name)
	send(t, a, trafficgen.Flow{Network: "udp", Dst: to(la, 7001), Count: 50, PayloadSize: 100, ID: 1})
	time.Sleep(200 * time.Millisecond)
	s := startIn(t, h, e, spec(dir, "pre.cap", tripcap.PacketCaptureParameters{PreTriggerSeconds: 10}), SessionOptions{})
	res := stopAndWait(t, s, tripcap.StopManuallyStopped)
	checkClean(t, res, map[uint32]int{1: 50, 2: 50})
}
