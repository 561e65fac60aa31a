//go:build linux

package afpacket

import (
	"bytes"
	"io"
	"log/slog"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/pcapfile"
)

// synthPacket is a packet to lay out in a synthetic ring block.
type synthPacket struct {
	ts       int64
	data     []byte
	origLen  int
	vlan     bool
	tci      uint16
	outgoing bool
}

// buildBlock lays packets out in a TPACKET_V3 block of blockBytes as the
// kernel does (a tpacket3_hdr and a sockaddr_ll, then the frame at an
// aligned offset); it panics when they do not fit.
func buildBlock(blockBytes int, pkts []synthPacket) []byte {
	blk := make([]byte, blockBytes)
	const first = 48 // after the block descriptor
	const macOff = 82
	off := first
	for i, p := range pkts {
		stride := (macOff + len(p.data) + 15) &^ 15
		h := blk[off:]
		next := stride
		if i == len(pkts)-1 {
			next = 0
		}
		ne.PutUint32(h[pktNextOffset:], uint32(next))
		ne.PutUint32(h[pktSec:], uint32(p.ts/1e9))
		ne.PutUint32(h[pktNsec:], uint32(p.ts%1e9))
		ne.PutUint32(h[pktSnaplen:], uint32(len(p.data)))
		ne.PutUint32(h[pktLen:], uint32(max(p.origLen, len(p.data))))
		ne.PutUint16(h[pktMac:], macOff)
		if p.vlan {
			ne.PutUint32(h[pktStatus:], unix.TP_STATUS_VLAN_VALID)
			ne.PutUint32(h[pktVlanTCI:], uint32(p.tci))
		}
		if p.outgoing {
			h[sllPkttype] = unix.PACKET_OUTGOING
		}
		copy(h[macOff:], p.data)
		off += stride
	}
	ne.PutUint32(blk[blkNumPkts:], uint32(len(pkts)))
	ne.PutUint32(blk[blkOffsetToPkt1:], first)
	return blk
}

// syntheticBlock builds a block full of size-byte Ethernet frames stamped
// from ts on, one per microsecond; it returns the block and its packet count.
func syntheticBlock(blockBytes, size int, ts time.Time) ([]byte, int) {
	stride := (82 + size + 15) &^ 15
	pkts := make([]synthPacket, (blockBytes-48)/stride)
	for i := range pkts {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(i + j)
		}
		pkts[i] = synthPacket{ts: ts.UnixNano() + int64(i)*1000, data: data}
	}
	return buildBlock(blockBytes, pkts), len(pkts)
}

// blockSession is a single-socket session on an Ethernet interface writing
// to w, with a write buffer of bufSize, for records stamped from t0 on.
func blockSession(tb testing.TB, format string, w io.Writer, bufSize int, t0 time.Time) (*Session, *socket) {
	ifc := pcapfile.Interface{Name: "test0", LinkType: pcapfile.LinkTypeEthernet, SnapLen: pcapfile.MaxSnapLen}
	var pw pcapfile.Writer
	var err error
	if format == tripcap.FormatPcapng {
		pw, err = pcapfile.NewNgWriter(w, pcapfile.Section{}, []pcapfile.Interface{ifc}, bufSize)
	} else {
		pw, err = pcapfile.NewPcapWriter(w, ifc.LinkType, ifc.SnapLen, bufSize)
	}
	if err != nil {
		tb.Fatal(err)
	}
	out := &output{cfg: outputConfig{format: format, ifaces: []pcapfile.Interface{ifc}, totalBytes: 1 << 62}, w: pw,
		room: 1 << 62, recFixed: pw.RecordSize(0), snap: pcapfile.MaxSnapLen}
	out.recPad = int(pw.RecordSize(1) - out.recFixed - 1)
	s := &Session{
		log:     slog.New(slog.DiscardHandler),
		filter:  sessionFilter{snapLen: pcapfile.MaxSnapLen},
		out:     out,
		single:  true,
		t0:      t0.UnixNano(),
		flushNs: int64(time.Hour),
		stopCh:  make(chan struct{}),
	}
	s.lastFlush = s.t0
	sock := &socket{ifc: netInterface{Name: "test0", Framing: framingEthernet}}
	return s, sock
}

// TestWriteBlockPcap checks the pcap fast path against records written one
// by one: packets before t0 left out, VLAN tags put back, records across
// buffer flushes and timed flushes, the file limit, and a stop.
func TestWriteBlockPcap(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	var pkts []synthPacket
	for i := range 400 {
		data := make([]byte, 14+(i*37)%300)
		for j := range data {
			data[j] = byte(i*7 + j)
		}
		p := synthPacket{ts: t0.UnixNano() + int64(i-5)*1_000_003, data: data, origLen: len(data) + i%3*100}
		if i%7 == 3 {
			p.vlan, p.tci = true, uint16(i)
		}
		pkts = append(pkts, p)
	}
	blk := buildBlock(DefaultBlockBytes, pkts)

	// want writes the packets from the first on that the session takes,
	// as the generic path does, n of them at most.
	want := func(n int) ([]byte, uint64, uint64) {
		var buf bytes.Buffer
		w, err := pcapfile.NewPcapWriter(&buf, pcapfile.LinkTypeEthernet, pcapfile.MaxSnapLen, 0)
		if err != nil {
			t.Fatal(err)
		}
		var packets, dataBytes uint64
		for _, p := range pkts {
			if p.ts < t0.UnixNano() {
				continue
			}
			if n == 0 {
				break
			}
			n--
			data, origLen := p.data, max(p.origLen, len(p.data))
			if p.vlan {
				data = append(append(bytes.Clone(data[:12]), 0x81, 0, byte(p.tci>>8), byte(p.tci)), data[12:]...)
				origLen += 4
			}
			if err := w.WritePacket(0, p.ts, origLen, data); err != nil {
				t.Fatal(err)
			}
			packets++
			dataBytes += uint64(len(data))
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes(), packets, dataBytes
	}
	all, allPackets, _ := want(len(pkts))

	t.Run("whole", func(t *testing.T) {
		var got bytes.Buffer
		// A small buffer and a short flush interval: records go
		// through full buffers and timed flushes too.
		s, sock := blockSession(t, tripcap.FormatPcap, &got, 4096, t0)
		s.flushNs = int64(20 * time.Millisecond)
		var c counts
		var vlanBuf []byte
		if s.writeBlock(sock, blk, &c, &vlanBuf) {
			t.Fatal("the writer stopped")
		}
		if err := s.out.flush(); err != nil {
			t.Fatal(err)
		}
		w, packets, dataBytes := want(len(pkts))
		if !bytes.Equal(got.Bytes(), w) {
			t.Errorf("the file (%d bytes) differs from records written one by one (%d bytes)", got.Len(), len(w))
		}
		if c.packets != packets || c.bytes != dataBytes {
			t.Errorf("counted %d packets, %d bytes; want %d, %d", c.packets, c.bytes, packets, dataBytes)
		}
	})

	t.Run("limit", func(t *testing.T) {
		// Room for exactly 123 records.
		w123, _, _ := want(123)
		var got bytes.Buffer
		s, sock := blockSession(t, tripcap.FormatPcap, &got, 1<<16, t0)
		s.out.room = int64(len(w123) + 10 - 24)
		var c counts
		var vlanBuf []byte
		if !s.writeBlock(sock, blk, &c, &vlanBuf) {
			t.Fatal("the writer went on past the limit")
		}
		if err := s.out.flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), w123) || c.packets != 123 {
			t.Errorf("wrote %d bytes, %d packets; want %d bytes, 123 packets", got.Len(), c.packets, len(w123))
		}
		if s.reason != tripcap.StopTotalBytesExceeded {
			t.Errorf("stop reason %q, want %s", s.reason, tripcap.StopTotalBytesExceeded)
		}
	})

	t.Run("stop", func(t *testing.T) {
		// A stop at packet 5+200's stamp: it is the last one written.
		w201, _, _ := want(201)
		var got bytes.Buffer
		s, sock := blockSession(t, tripcap.FormatPcap, &got, 0, t0)
		s.stopAt.Store(pkts[205].ts)
		var c counts
		var vlanBuf []byte
		if !s.writeBlock(sock, blk, &c, &vlanBuf) {
			t.Fatal("the writer went on past the stop")
		}
		if err := s.out.flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), w201) || c.packets != 201 {
			t.Errorf("wrote %d bytes, %d packets; want %d bytes, 201 packets", got.Len(), c.packets, len(w201))
		}
	})
	if allPackets != 395 || len(all) == 0 {
		t.Fatalf("test setup: %d packets after t0", allPackets)
	}
}

// BenchmarkWriteBlock measures the engine's own work per packet: walking a
// ring block and writing its records into the write buffer (the write(2)
// itself goes nowhere). The block is in the cache here, which it is not
// in a capture.
func BenchmarkWriteBlock(b *testing.B) {
	for _, format := range []string{tripcap.FormatPcap, tripcap.FormatPcapng} {
		b.Run(format, func(b *testing.B) {
			t0 := time.Now()
			blk, n := syntheticBlock(DefaultBlockBytes, 60, t0)
			s, sock := blockSession(b, format, io.Discard, DefaultWriteBuffer, t0)
			var c counts
			var vlanBuf []byte
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if s.writeBlock(sock, blk, &c, &vlanBuf) {
					b.Fatal("the writer stopped")
				}
			}
			b.StopTimer()
			if c.packets != uint64(n*b.N) {
				b.Fatalf("wrote %d packets, want %d", c.packets, n*b.N)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*b.N), "ns/packet")
		})
	}
}

// TestWriteBlockAllocs checks that writing a block allocates nothing.
func TestWriteBlockAllocs(t *testing.T) {
	t0 := time.Now()
	blk, _ := syntheticBlock(DefaultBlockBytes, 60, t0)
	for _, format := range []string{tripcap.FormatPcap, tripcap.FormatPcapng} {
		s, sock := blockSession(t, format, io.Discard, DefaultWriteBuffer, t0)
		var c counts
		var vlanBuf []byte
		if allocs := testing.AllocsPerRun(20, func() { s.writeBlock(sock, blk, &c, &vlanBuf) }); allocs != 0 {
			t.Errorf("%s: %v allocations per block", format, allocs)
		}
	}
}
