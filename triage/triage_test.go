package triage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/pcapgen"
	"github.com/tripcap/tripcap/pcapfile"
)

// ringFile writes one pcapng file of a ring with an Ethernet and a raw IP
// interface, closing it with the given cumulative drop counts and start.
func ringFile(t *testing.T, path, comment string, start time.Time, drops uint64, fill func(eth, raw *pcapgen.Writer)) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	nw, err := pcapfile.NewNgWriter(f, pcapfile.Section{Comment: comment}, []pcapfile.Interface{
		{Name: "eth0", LinkType: pcapfile.LinkTypeEthernet, SnapLen: 65535},
		{Name: "tun0", LinkType: pcapfile.LinkTypeRaw, SnapLen: 65535},
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	eth := &pcapgen.Writer{W: nw, Now: start}
	raw := &pcapgen.Writer{W: rawIface{nw}, Now: start}
	fill(eth, raw)
	if eth.Err() != nil || raw.Err() != nil {
		t.Fatal(eth.Err(), raw.Err())
	}
	st := pcapfile.InterfaceStats{Start: scenarioStart.Add(10 * time.Second), End: start, Received: 1000 + drops, Dropped: drops}
	if err := nw.Close([]pcapfile.InterfaceStats{st, st}); err != nil {
		t.Fatal(err)
	}
}

// rawIface writes to interface 1 without the Ethernet header.
type rawIface struct{ pcapfile.Writer }

func (r rawIface) WritePacket(_ int, ts int64, origLen int, data []byte) error {
	return r.Writer.WritePacket(1, ts, origLen-14, data[14:])
}

// TestRingWithAlert reads a ring of three pcapng files as one capture: the
// interfaces are shared, the drop counts are the session's (the largest),
// and the capture start in the statistics splits the pre-trigger part from
// what follows the alert, where a new talker appears and a steady one grows.
func TestRingWithAlert(t *testing.T) {
	dir := t.TempDir()
	comment := "tripcap capture web (id 7); cause: alert HighTraffic"
	alert := scenarioStart.Add(10 * time.Second)
	steady := func(w *pcapgen.Writer, n int, size int) {
		for range n {
			w.Frame(hostA, hostB, 17, pcapgen.UDPDatagram(5000, 6000, make([]byte, size)))
			w.Advance(100 * time.Millisecond)
		}
	}
	names := []string{"web.pcapng", "web_00001.pcapng", "web_00002.pcapng"}
	// 10 s of steady traffic before the alert (10 packets a second).
	ringFile(t, filepath.Join(dir, names[0]), comment, scenarioStart, 3, func(eth, raw *pcapgen.Writer) {
		steady(eth, 100, 100)
	})
	// After: the steady flow sends bigger datagrams for 5 s (its rate over
	// the 10 s after the alert more than doubles), a flood from hostC
	// appears on the tunnel.
	ringFile(t, filepath.Join(dir, names[1]), comment, alert, 5, func(eth, raw *pcapgen.Writer) {
		steady(eth, 50, 600)
	})
	ringFile(t, filepath.Join(dir, names[2]), comment, alert.Add(5*time.Second), 9, func(eth, raw *pcapgen.Writer) {
		for range 500 {
			raw.Frame(hostC, hostD, 17, pcapgen.UDPDatagram(7000, 53, make([]byte, 1000)))
			raw.Advance(10 * time.Millisecond)
		}
	})
	paths := []string{filepath.Join(dir, names[2]), filepath.Join(dir, names[0]), filepath.Join(dir, names[1])}
	s, err := AnalyzeFiles(context.Background(), paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Packets != 650 || len(s.Files) != 3 {
		t.Fatalf("%d packets in %d files, want 650 in 3", s.Packets, len(s.Files))
	}
	if len(s.Interfaces) != 2 || s.Interfaces[0].Name != "eth0" || s.Interfaces[0].Packets != 150 || s.Interfaces[1].Packets != 500 {
		t.Errorf("interfaces %+v", s.Interfaces)
	}
	if s.KernelDrops == nil || *s.KernelDrops != 18 {
		t.Errorf("kernel drops %v, want 9 per interface", s.KernelDrops)
	}
	if !s.Start.Equal(scenarioStart) || s.DurationSeconds < 14.9 {
		t.Errorf("span %v + %.1fs", s.Start, s.DurationSeconds)
	}
	a := s.Alert
	if a == nil {
		t.Fatal("no alert change")
	}
	if !a.Time.Equal(alert) || !strings.HasPrefix(a.Source, "capture start") || a.Before.Packets != 100 || a.After.Packets != 550 {
		t.Errorf("alert %+v", a)
	}
	if len(a.Talkers) < 3 || !a.Talkers[0].New || (a.Talkers[0].Name != hostC.String() && a.Talkers[0].Name != hostD.String()) {
		t.Errorf("talkers %+v", a.Talkers)
	}
	if len(a.Conversations) != 2 || a.Conversations[0].Name != "198.18.0.3 <-> 198.18.0.4" || !a.Conversations[0].New ||
		a.Conversations[1].Name != "198.18.0.1 <-> 198.18.0.2" || a.Conversations[1].New || a.Conversations[1].RateAfter <= a.Conversations[1].RateBefore {
		t.Errorf("conversations %+v", a.Conversations)
	}
	lines := s.TopLines(5)
	if len(lines) == 0 || !strings.Contains(strings.Join(lines, "\n"), "appeared") {
		t.Errorf("top lines %q", lines)
	}

	// The alert time in a section comment takes precedence.
	at := alert.Add(-5 * time.Second)
	ringFile(t, filepath.Join(dir, "c.pcapng"), "x; "+tripcap.AlertComment(at), scenarioStart, 0, func(eth, raw *pcapgen.Writer) { steady(eth, 100, 100) })
	s, err = AnalyzeFiles(context.Background(), []string{filepath.Join(dir, "c.pcapng")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Alert == nil || !s.Alert.Time.Equal(at) || s.Alert.Source != "section comment" || s.Alert.Before.Packets != 50 {
		t.Errorf("alert from comment: %+v", s.Alert)
	}
}

// TestMergeAgainstTshark merges a pcap capture of one host with a pcapng ring
// of another whose packets interleave with it: tshark reads one file, in
// timestamp order, with an interface per source interface, the packet
// counts of each, and the statistics carried over.
func TestMergeAgainstTshark(t *testing.T) {
	dir := t.TempDir()
	w, err := pcapgen.Create(filepath.Join(dir, "host1.pcap"), scenarioStart.Add(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for range 30 {
		w.Frame(hostA, hostB, 17, pcapgen.UDPDatagram(1, 2, []byte("one")))
		w.Advance(20 * time.Millisecond)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	comment := "tripcap capture b (id 9); " + tripcap.AlertComment(scenarioStart.Add(300*time.Millisecond))
	ringFile(t, filepath.Join(dir, "host2.pcapng"), comment, scenarioStart, 4, func(eth, raw *pcapgen.Writer) {
		for range 20 {
			eth.Frame(hostB, hostA, 17, pcapgen.UDPDatagram(2, 1, []byte("two")))
			eth.Advance(15 * time.Millisecond)
			raw.Frame(hostB, hostA, 17, pcapgen.UDPDatagram(2, 1, []byte("three")))
			raw.Advance(15 * time.Millisecond)
		}
	})
	ringFile(t, filepath.Join(dir, "host2_00001.pcapng"), comment, scenarioStart.Add(300*time.Millisecond), 6, func(eth, raw *pcapgen.Writer) {
		for range 10 {
			eth.Frame(hostB, hostA, 17, pcapgen.UDPDatagram(2, 1, []byte("two")))
			eth.Advance(15 * time.Millisecond)
		}
	})
	out := filepath.Join(dir, "merged.pcapng")
	of, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Merge(context.Background(), []string{filepath.Join(dir, "host1.pcap"), filepath.Join(dir, "host2.pcapng"), filepath.Join(dir, "host2_00001.pcapng")}, of)
	if err != nil {
		t.Fatal(err)
	}
	of.Close()
	if res.Packets != 80 || res.Interfaces != 3 {
		t.Errorf("merged %d packets on %d interfaces, want 80 on 3", res.Packets, res.Interfaces)
	}
	fields := tshark(t, out, "-T", "fields", "-e", "frame.interface_id", "-e", "frame.time_epoch")
	perIface := map[string]int{}
	var last float64
	for i, line := range strings.Split(strings.TrimSpace(fields), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("tshark line %q", line)
		}
		perIface[f[0]]++
		ts, _ := strconv.ParseFloat(f[1], 64)
		if ts < last {
			t.Errorf("packet %d at %f is before the one before it (%f)", i+1, ts, last)
		}
		last = ts
	}
	if fmt.Sprint(perIface) != "map[0:30 1:30 2:20]" {
		t.Errorf("packets per interface %v, want 30 (host1), 30 (host2 eth0), 20 (host2 tun0)", perIface)
	}
	// The merged file is a capture triage reads like its sources.
	s, err := AnalyzeFiles(context.Background(), []string{out}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Packets != 80 || len(s.Interfaces) != 3 || s.Interfaces[1].KernelDrops == nil || *s.Interfaces[1].KernelDrops != 6 || s.Interfaces[0].KernelDrops != nil {
		t.Errorf("merged summary: %d packets, interfaces %+v", s.Packets, s.Interfaces)
	}
	if s.Alert == nil || s.Alert.Source != "section comment" {
		t.Errorf("the merged file lost the alert time: %+v", s.Alert)
	}
	info, err := os.ReadFile(out)
	if err != nil || !bytes.Contains(info, []byte("host1")) {
		t.Errorf("the pcap source's interface is not described by its file name")
	}
}

// TestTruncated cuts a capture at every byte of its last records: the
// summary covers the whole records before the cut and says where the file
// ends; a file too short for its header, or not a capture, is an error.
func TestTruncated(t *testing.T) {
	dir := t.TempDir()
	full, err := os.ReadFile(scenarioPcap(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	whole, err := AnalyzeFiles(context.Background(), []string{filepath.Join(dir, "scenario.pcap")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	boundary := map[int]bool{}
	for off := 24; off+16 <= len(full); off += 16 + int(binary.LittleEndian.Uint32(full[off+8:])) {
		boundary[off] = true
	}
	cut := filepath.Join(dir, "cut.pcap")
	for n := len(full) - 300; n < len(full); n++ {
		if boundary[n] {
			continue
		}
		if err := os.WriteFile(cut, full[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := AnalyzeFiles(context.Background(), []string{cut}, Options{})
		if err != nil {
			t.Fatalf("cut at %d: %v", n, err)
		}
		if s.Packets >= whole.Packets || s.Packets < whole.Packets-6 {
			t.Fatalf("cut at %d: %d packets of %d", n, s.Packets, whole.Packets)
		}
		f := s.Files[0]
		if f.EndsAt == nil || *f.EndsAt >= int64(n) || !strings.Contains(f.Error, "ends inside") || len(s.Problems) != 1 {
			t.Fatalf("cut at %d: file %+v, problems %v", n, f, s.Problems)
		}
	}
	for _, c := range []struct {
		data []byte
		want string
	}{
		{nil, "empty or too short"},
		{full[:10], "pcap file header is cut short"},
		{[]byte("GET / HTTP/1.1\r\n\r\n-------------------"), "not a pcap or pcapng file"},
	} {
		if err := os.WriteFile(cut, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := AnalyzeFiles(context.Background(), []string{cut}, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.data, err, c.want)
		}
	}
	if _, err := AnalyzeFiles(context.Background(), []string{filepath.Join(dir, "none.pcap")}, Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestFlowTableCap fills a small flow table: the totals stay exact, the
// overflow is counted and reported.
func TestFlowTableCap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "many.pcap")
	w, err := pcapgen.Create(path, scenarioStart)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		dst := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		w.Frame(hostA, dst, 17, pcapgen.UDPDatagram(1000, uint16(i), nil))
		w.Advance(time.Millisecond)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := AnalyzeFiles(context.Background(), []string{path}, Options{MaxFlows: 100})
	if err != nil {
		t.Fatal(err)
	}
	if s.Packets != 1000 || !s.FlowTable.Overflowed || s.FlowTable.Flows != 100 || s.FlowTable.OverflowPackets != 900 || len(s.Problems) != 1 {
		t.Errorf("packets %d, flow table %+v, problems %v", s.Packets, s.FlowTable, s.Problems)
	}
	if s.Talkers[0].Address != hostA.String() || s.Talkers[0].PacketsSent != 1000 {
		t.Errorf("the talker table, with room, still counts every packet: %+v", s.Talkers[0])
	}
}

// TestMemoryBounded fills every table past its default cap with SYNs from
// distinct addresses and ports (the worst case: each flow a TCP flow, a
// pair and two talkers) and measures the heap the analysis holds: bounded
// by the cap, not by the file.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 25 MB file")
	}
	path := filepath.Join(t.TempDir(), "syn.pcap")
	w, err := pcapgen.Create(path, scenarioStart)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300_000
	for i := range n {
		src := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		dst := netip.AddrFrom4([4]byte{198, 19, byte(i >> 16), byte(i >> 8)})
		w.Frame(src, dst, 6, pcapgen.TCPSegment(uint16(i), 443, uint32(i), 0, pcapgen.SYN, 1000, 7, nil))
		w.Advance(time.Microsecond)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	src, err := Open([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	a := newAnalyzer(Options{})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var p Packet
	for src.Next(&p) == nil {
		a.packet(src, &p)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d flows, %d pairs, %d talkers: %.1f MB held", len(a.flows), len(a.pairs), len(a.talkers), float64(held)/1e6)
	if len(a.flows) != defaultMaxFlows || !a.full {
		t.Errorf("%d flows, full %v", len(a.flows), a.full)
	}
	if held > 160e6 {
		t.Errorf("%.0f MB held for %d flows", float64(held)/1e6, len(a.flows))
	}
	runtime.KeepAlive(a)
}
