package pcapfile

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tripcap/tripcap/internal/testenv"
)

// chunkRecorder keeps every Write call separately so a test can check where
// the writer cut the stream.
type chunkRecorder struct{ chunks [][]byte }

func (c *chunkRecorder) Write(p []byte) (int, error) {
	c.chunks = append(c.chunks, bytes.Clone(p))
	return len(p), nil
}

func (c *chunkRecorder) all() []byte { return bytes.Join(c.chunks, nil) }

func testPacket(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

func TestPcapRoundTrip(t *testing.T) {
	var rec chunkRecorder
	w, err := NewPcapWriter(&rec, LinkTypeEthernet, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC).UnixNano()
	sizes := []int{60, 100, 1500}
	for i, n := range sizes {
		if err := w.WritePacket(0, base+int64(i)*1000, n, testPacket(n)); err != nil {
			t.Fatal(err)
		}
	}
	wantSize := int64(24)
	for _, n := range sizes {
		wantSize += w.RecordSize(n)
	}
	if got := w.Size(); got != wantSize {
		t.Errorf("Size() = %d before flush, want %d", got, wantSize)
	}
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
	data := rec.all()
	if int64(len(data)) != wantSize {
		t.Fatalf("file is %d bytes, want %d", len(data), wantSize)
	}
	r, err := pcapgo.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if r.Snaplen() != 100 || r.LinkType() != 1 {
		t.Errorf("snaplen %d link %d, want 100 and 1", r.Snaplen(), r.LinkType())
	}
	for i, n := range sizes {
		d, ci, err := r.ReadPacketData()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		wantCap := min(n, 100)
		if ci.CaptureLength != wantCap || ci.Length != n || !bytes.Equal(d, testPacket(n)[:wantCap]) {
			t.Errorf("packet %d: caplen %d len %d, want %d %d", i, ci.CaptureLength, ci.Length, wantCap, n)
		}
		// pcap keeps microseconds.
		want := time.Unix(0, base+int64(i)*1000).Truncate(time.Microsecond)
		if !ci.Timestamp.Equal(want) {
			t.Errorf("packet %d: timestamp %v, want %v", i, ci.Timestamp, want)
		}
	}
	if _, _, err := r.ReadPacketData(); err != io.EOF {
		t.Errorf("after the last packet: %v, want EOF", err)
	}
}

// TestFlushesWholeRecords checks the kill -9 guarantee at its source: every
// write the file sees ends at a record boundary.
func TestFlushesWholeRecords(t *testing.T) {
	for _, format := range []string{"pcap", "pcapng"} {
		t.Run(format, func(t *testing.T) {
			var rec chunkRecorder
			var w Writer
			var err error
			if format == "pcap" {
				w, err = NewPcapWriter(&rec, LinkTypeEthernet, 0, 64<<10)
			} else {
				w, err = NewNgWriter(&rec, Section{}, []Interface{{Name: "a", LinkType: LinkTypeEthernet}}, 64<<10)
			}
			if err != nil {
				t.Fatal(err)
			}
			headerLen := len(rec.all())
			// Sizes that do not divide the buffer, so records straddle
			// where a byte-stream buffer would cut.
			for i := range 3000 {
				n := 60 + (i*7919)%1441
				if err := w.WritePacket(0, int64(i), n, testPacket(n)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(nil); err != nil {
				t.Fatal(err)
			}
			if len(rec.chunks) < 3 {
				t.Fatalf("only %d writes; the test needs the buffer to fill", len(rec.chunks))
			}
			// Walk the records and collect their end offsets.
			data := rec.all()
			ends := map[int]bool{headerLen: true}
			for off := headerLen; off < len(data); {
				var n int
				if format == "pcap" {
					n = 16 + int(binary.LittleEndian.Uint32(data[off+8:]))
				} else {
					n = int(binary.LittleEndian.Uint32(data[off+4:]))
				}
				off += n
				ends[off] = true
			}
			off := 0
			for i, c := range rec.chunks {
				off += len(c)
				if !ends[off] {
					t.Fatalf("write %d ends at offset %d, inside a record", i, off)
				}
			}
		})
	}
}

// ngBlocks splits a little-endian pcapng file into (type, body) pairs.
func ngBlocks(t *testing.T, data []byte) (types []uint32, bodies [][]byte) {
	t.Helper()
	for off := 0; off < len(data); {
		if len(data)-off < 12 {
			t.Fatalf("trailing %d bytes", len(data)-off)
		}
		typ := binary.LittleEndian.Uint32(data[off:])
		n := int(binary.LittleEndian.Uint32(data[off+4:]))
		if n%4 != 0 || n < 12 || off+n > len(data) || binary.LittleEndian.Uint32(data[off+n-4:]) != uint32(n) {
			t.Fatalf("bad block at %d: length %d", off, n)
		}
		types = append(types, typ)
		bodies = append(bodies, data[off+8:off+n-4])
		off += n
	}
	return types, bodies
}

// ngOptions decodes an option list.
func ngOptions(b []byte) map[uint16][]byte {
	opts := map[uint16][]byte{}
	for len(b) >= 4 {
		code := binary.LittleEndian.Uint16(b)
		n := int(binary.LittleEndian.Uint16(b[2:]))
		if code == 0 {
			break
		}
		opts[code] = b[4 : 4+n]
		b = b[4+(n+3)&^3:]
	}
	return opts
}

func TestPcapngBlocks(t *testing.T) {
	var buf bytes.Buffer
	ifaces := []Interface{
		{Name: "eth0", Filter: "protocol=TCP", LinkType: LinkTypeEthernet, SnapLen: 128},
		{Name: "tun0", LinkType: LinkTypeRaw},
	}
	w, err := NewNgWriter(&buf, Section{Comment: "capture c1 (id 42) caused by alert HighLatency", Application: "tripcap test"}, ifaces, 0)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC).UnixNano()
	if err := w.WritePacket(0, ts, 200, testPacket(200)); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(1, ts+1, 41, testPacket(41)); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(2, ts, 41, testPacket(41)); err == nil {
		t.Error("writing to interface 2 of 2 succeeded")
	}
	before := w.Size()
	start := time.Unix(0, ts)
	stats := []InterfaceStats{{Start: start, End: start.Add(time.Second), Received: 10, Dropped: 3, Delivered: 7}, {}}
	if err := w.Close(stats); err != nil {
		t.Fatal(err)
	}
	if got := int64(buf.Len()) - before; got != w.TrailerSize() {
		t.Errorf("Close wrote %d bytes, TrailerSize says %d", got, w.TrailerSize())
	}
	if buf.Len()%4 != 0 {
		t.Errorf("file length %d is not a multiple of 4", buf.Len())
	}

	types, bodies := ngBlocks(t, buf.Bytes())
	wantTypes := []uint32{blockSHB, blockIDB, blockIDB, blockEPB, blockEPB, blockISB, blockISB}
	if !slicesEqual(types, wantTypes) {
		t.Fatalf("blocks %x, want %x", types, wantTypes)
	}
	if c := string(ngOptions(bodies[0][16:])[optComment]); c != "capture c1 (id 42) caused by alert HighLatency" {
		t.Errorf("section comment %q", c)
	}
	idb := ngOptions(bodies[1][8:])
	if string(idb[ifName]) != "eth0" || string(idb[ifFilter]) != "\x00protocol=TCP" || binary.LittleEndian.Uint32(bodies[1][4:]) != 128 {
		t.Errorf("first interface block: %q", bodies[1])
	}
	epb := bodies[3]
	if capLen, origLen := binary.LittleEndian.Uint32(epb[12:]), binary.LittleEndian.Uint32(epb[16:]); capLen != 128 || origLen != 200 {
		t.Errorf("first packet caplen %d len %d, want 128 200", capLen, origLen)
	}
	if got := int64(binary.LittleEndian.Uint32(epb[4:]))<<32 | int64(binary.LittleEndian.Uint32(epb[8:])); got != ts {
		t.Errorf("timestamp %d, want %d", got, ts)
	}
	isb := ngOptions(bodies[5][12:])
	if binary.LittleEndian.Uint64(isb[isbOSDrop]) != 3 || binary.LittleEndian.Uint64(isb[isbIfDrop]) != 3 ||
		binary.LittleEndian.Uint64(isb[isbIfRecv]) != 10 || binary.LittleEndian.Uint64(isb[isbUsrDeliv]) != 7 {
		t.Errorf("statistics options %v", isb)
	}

	// gopacket's reader agrees.
	r, err := pcapgo.NewNgReader(bytes.NewReader(buf.Bytes()), pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ci.InterfaceIndex != n {
			t.Errorf("packet %d on interface %d", n, ci.InterfaceIndex)
		}
		n++
	}
	if n != 2 {
		t.Errorf("read %d packets, want 2", n)
	}
}

// TestReadByWireshark hands both formats to capinfos and tshark.
func TestReadByWireshark(t *testing.T) {
	capinfos := testenv.RequireBinary(t, "capinfos")
	tshark := testenv.RequireBinary(t, "tshark")
	dir := t.TempDir()
	for _, name := range []string{"a.cap", "a.pcapng"} {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		var w Writer
		if strings.HasSuffix(name, ".cap") {
			w, err = NewPcapWriter(f, LinkTypeEthernet, 64, 0)
		} else {
			w, err = NewNgWriter(f, Section{Comment: "hello from the test"}, []Interface{{Name: "eth0", LinkType: LinkTypeEthernet, SnapLen: 64}}, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
		// A minimal Ethernet+IPv4+UDP frame is not needed: tshark reads
		// any bytes as Ethernet.
		for i := range 5 {
			if err := w.WritePacket(0, time.Now().UnixNano(), 100+i, testPacket(100+i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close([]InterfaceStats{{Received: 9, Dropped: 4, Delivered: 5}}); err != nil {
			t.Fatal(err)
		}
		f.Close()

		out, err := exec.Command(capinfos, "-c", "-M", p).CombinedOutput()
		if err != nil {
			t.Fatalf("capinfos %s: %v\n%s", name, err, out)
		}
		if !strings.Contains(string(out), "Number of packets:   5") && !strings.Contains(string(out), "Number of packets: 5") {
			t.Errorf("capinfos %s:\n%s", name, out)
		}
		out, err = exec.Command(tshark, "-r", p, "-T", "fields", "-e", "frame.cap_len", "-e", "frame.len").Output()
		if err != nil {
			t.Fatalf("tshark %s: %v\n%s", name, err, out)
		}
		if got := strings.Fields(string(out)); len(got) != 10 || got[0] != "64" || got[1] != "100" {
			t.Errorf("tshark %s: %q", name, out)
		}
		if strings.HasSuffix(name, ".pcapng") {
			out, err = exec.Command(capinfos, "-k", p).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "hello from the test") {
				t.Errorf("capinfos -k: %v\n%s", err, out)
			}
		}
	}
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRepair cuts files at every offset and checks that Repair brings each
// back to its last whole record.
func TestRepair(t *testing.T) {
	dir := t.TempDir()
	for _, format := range []string{"pcap", "pcapng"} {
		var buf bytes.Buffer
		var w Writer
		var err error
		if format == "pcap" {
			w, err = NewPcapWriter(&buf, LinkTypeEthernet, 0, 0)
		} else {
			w, err = NewNgWriter(&buf, Section{Comment: "c"}, []Interface{{Name: "a", LinkType: LinkTypeEthernet}}, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
		header := buf.Len()
		ends := []int{header}
		for i := range 5 {
			if err := w.WritePacket(0, int64(i), 61+i, testPacket(61+i)); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			ends = append(ends, buf.Len())
		}
		full := buf.Bytes()
		for cut := header; cut <= len(full); cut++ {
			p := filepath.Join(dir, format)
			if err := os.WriteFile(p, full[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			removed, err := Repair(p)
			if err != nil {
				t.Fatalf("%s cut at %d: %v", format, cut, err)
			}
			want := 0
			for _, e := range ends {
				if e <= cut {
					want = e
				}
			}
			st, _ := os.Stat(p)
			if st.Size() != int64(want) || removed != int64(cut-want) {
				t.Fatalf("%s cut at %d: repaired to %d (removed %d), want %d", format, cut, st.Size(), removed, want)
			}
		}
	}
}

// shortWriter accepts only part of a write, like a full disk.
type shortWriter struct {
	bytes.Buffer
	room int
}

func (s *shortWriter) Write(p []byte) (int, error) {
	if len(p) <= s.room {
		s.room -= len(p)
		return s.Buffer.Write(p)
	}
	n, _ := s.Buffer.Write(p[:s.room])
	s.room = 0
	return n, io.ErrShortWrite
}

func (s *shortWriter) Truncate(size int64) error {
	s.Buffer.Truncate(int(size))
	return nil
}

// TestShortWriteTruncates keeps a file that hit a full disk at a record
// boundary, and counts the packets that were lost.
func TestShortWriteTruncates(t *testing.T) {
	sw := &shortWriter{room: 24 + 3*(16+100) + 50}
	w, err := NewPcapWriter(sw, LinkTypeEthernet, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := w.WritePacket(0, int64(i), 100, testPacket(100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err == nil {
		t.Fatal("the flush to a full disk succeeded")
	}
	if sw.Len() != 24 {
		t.Errorf("file is %d bytes after the failed write, want the 24-byte header", sw.Len())
	}
	if n, b := w.Lost(); n != 5 || b != 500 {
		t.Errorf("Lost() = %d packets %d bytes, want 5 and 500", n, b)
	}
	if err := w.WritePacket(0, 9, 100, testPacket(100)); err == nil {
		t.Error("a write after the failure succeeded")
	}
}

// TestPcapInPlace writes records in place (Space, PutRecordHeader, Commit)
// and checks the file is byte for byte what WritePacket writes, with the
// same accounting of a failed write.
func TestPcapInPlace(t *testing.T) {
	var want, got chunkRecorder
	ww, err := NewPcapWriter(&want, LinkTypeEthernet, 0, 4096)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := NewPcapWriter(&got, LinkTypeEthernet, 0, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if gw.SnapLen() != MaxSnapLen {
		t.Errorf("SnapLen() = %d, want %d", gw.SnapLen(), MaxSnapLen)
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 678_901_234, time.UTC).UnixNano()
	for i := range 100 {
		data := testPacket(60 + i)
		ts := ts + int64(i)*1_000_123
		if err := ww.WritePacket(0, ts, 1500, data); err != nil {
			t.Fatal(err)
		}
		need := PcapRecordHeaderLen + len(data)
		space := gw.Space()
		if len(space) < need {
			// As the engine does: a record that does not fit goes
			// through WritePacket, which flushes.
			if err := gw.WritePacket(0, ts, 1500, data); err != nil {
				t.Fatal(err)
			}
			continue
		}
		PutRecordHeader(space, uint32(ts/1e9), uint32(ts%1e9/1e3), uint32(len(data)), 1500)
		copy(space[PcapRecordHeaderLen:], data)
		gw.Commit(need, 1, int64(len(data)))
	}
	if gw.Size() != ww.Size() {
		t.Errorf("Size() = %d, want %d", gw.Size(), ww.Size())
	}
	for _, w := range []*PcapWriter{ww, gw} {
		if err := w.Close(nil); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.all(), want.all()) {
		t.Fatal("records written in place differ from WritePacket's")
	}

	// After a failed write, committed records count as lost and Space
	// is empty.
	sw := &shortWriter{room: 24 + 10}
	w, err := NewPcapWriter(sw, LinkTypeEthernet, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		space := w.Space()
		PutRecordHeader(space, 1, 2, 100, 100)
		copy(space[PcapRecordHeaderLen:], testPacket(100))
		w.Commit(PcapRecordHeaderLen+100, 1, 100)
	}
	if err := w.Flush(); err == nil {
		t.Fatal("the flush to a full disk succeeded")
	}
	if n, b := w.Lost(); n != 3 || b != 300 {
		t.Errorf("Lost() = %d packets %d bytes, want 3 and 300", n, b)
	}
	if len(w.Space()) != 0 {
		t.Errorf("Space() has %d bytes after a failed write", len(w.Space()))
	}
}

// TestUnknownCounters writes a statistics block without the counters a
// merge does not know: times and the delivered count only, no claim of
// zero drops.
func TestUnknownCounters(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewNgWriter(&buf, Section{}, []Interface{{Name: "eth0", LinkType: LinkTypeEthernet}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	before := w.Size()
	if err := w.Close([]InterfaceStats{{Start: start, End: start.Add(time.Second), Delivered: 5, CountersUnknown: true}}); err != nil {
		t.Fatal(err)
	}
	if got := int64(buf.Len()) - before; got > w.TrailerSize() {
		t.Errorf("Close wrote %d bytes, more than TrailerSize's %d", got, w.TrailerSize())
	}
	types, bodies := ngBlocks(t, buf.Bytes())
	if types[len(types)-1] != blockISB {
		t.Fatalf("blocks %x", types)
	}
	isb := ngOptions(bodies[len(bodies)-1][12:])
	for _, code := range []uint16{isbIfRecv, isbIfDrop, isbOSDrop} {
		if _, ok := isb[code]; ok {
			t.Errorf("option %d written for unknown counters", code)
		}
	}
	if binary.LittleEndian.Uint64(isb[isbUsrDeliv]) != 5 || len(isb[isbStartTime]) != 8 || len(isb[isbEndTime]) != 8 {
		t.Errorf("statistics options %v", isb)
	}
}
