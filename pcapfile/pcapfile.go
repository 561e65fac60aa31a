// Package pcapfile writes capture files in the pcap and pcapng formats.
//
// Writers buffer whole records and only ever hand whole records to the
// underlying file, so a process killed at any moment leaves a file that ends
// at a record boundary and that readers (tshark, capinfos) accept as is. The
// file header is written out when the writer is created, so even a capture
// killed before its first packet is a valid, empty file.
//
// gopacket's pcapgo writers are not used because their bufio.Writer flushes
// whenever its buffer fills, which cuts records in two on disk, and because
// pcapgo cannot write the kernel drop count as isb_osdrop.
package pcapfile

import (
	"fmt"
	"io"
	"time"
)

// LinkType is a pcap LINKTYPE_ value.
type LinkType uint16

const (
	// LinkTypeEthernet is LINKTYPE_ETHERNET: frames start with an Ethernet header.
	LinkTypeEthernet LinkType = 1
	// LinkTypeRaw is LINKTYPE_RAW: packets start with an IPv4 or IPv6 header.
	LinkTypeRaw LinkType = 101
)

// MaxSnapLen is the largest snap length written (libpcap's MAXIMUM_SNAPLEN).
const MaxSnapLen = 262144

// DefaultBufferSize is the write buffer used when a writer is given none.
const DefaultBufferSize = 1 << 20

// Writer writes packet records to a capture file.
type Writer interface {
	// WritePacket appends one record. iface is the interface number in the
	// file (always 0 for pcap); ts is nanoseconds since the Unix epoch;
	// origLen is the packet's length on the wire, data what was captured.
	WritePacket(iface int, ts int64, origLen int, data []byte) error
	// RecordSize is the number of bytes a record with caplen bytes of data takes.
	RecordSize(caplen int) int64
	// TrailerSize is the number of bytes Close adds after the last record.
	TrailerSize() int64
	// Size is the file's size once everything buffered is written.
	Size() int64
	// Flush writes out the buffered records.
	Flush() error
	// Close writes the trailing blocks (pcapng interface statistics, one
	// per interface, in interface order) and flushes. It does not close the
	// underlying writer.
	Close(stats []InterfaceStats) error
	// Lost reports the packets (and their captured bytes) that were
	// accepted but did not reach the file because a write failed.
	Lost() (packets int, dataBytes int64)
}

// Interface describes one capture interface of a pcapng file.
type Interface struct {
	Name        string
	Description string
	// Filter is the capture filter in text form, as the user gave it.
	Filter   string
	LinkType LinkType
	SnapLen  uint32
}

// InterfaceStats are the counters written in a pcapng interface statistics block.
type InterfaceStats struct {
	Start, End time.Time
	// Received is what the kernel handed to the capture socket after
	// filtering, including what it then dropped (PACKET_STATISTICS tp_packets).
	Received uint64
	// Dropped is the kernel's drop count (PACKET_STATISTICS tp_drops).
	Dropped uint64
	// Delivered is the number of packets written to the file.
	Delivered uint64
	// CountersUnknown says Received and Dropped are not known (a merge of
	// files that had no statistics): the block then holds only the times
	// and Delivered, rather than claiming no drops.
	CountersUnknown bool
}

// Section describes a pcapng section header.
type Section struct {
	Comment     string
	Hardware    string
	OS          string
	Application string
}

// recordBuffer holds whole records until they are written together. Records
// are reserved in full before being filled, so a flush never splits one.
type recordBuffer struct {
	w       io.Writer
	buf     []byte
	bufSize int // the buffer's usual capacity
	written int64
	err     error
	// pending counts the packets in buf and their captured bytes; after
	// a failed write they are lost.
	pendingPackets int
	pendingData    int64
}

// truncater is implemented by *os.File.
type truncater interface {
	Truncate(size int64) error
}

func newRecordBuffer(w io.Writer, size int) *recordBuffer {
	if size <= 0 {
		size = DefaultBufferSize
	}
	size = max(size, 4096)
	return &recordBuffer{w: w, buf: make([]byte, 0, size), bufSize: size}
}

// reserve returns n bytes at the end of the buffer, flushing first when they
// do not fit. The caller fills all of them. The common case is small enough
// to be inlined into the writers.
func (b *recordBuffer) reserve(n int) ([]byte, error) {
	// After an error buf is nil, so this test fails and reserveSlow
	// reports it.
	if start := len(b.buf); start+n <= cap(b.buf) {
		b.buf = b.buf[:start+n]
		return b.buf[start:], nil
	}
	return b.reserveSlow(n)
}

func (b *recordBuffer) reserveSlow(n int) ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	if len(b.buf)+n > cap(b.buf) {
		if err := b.flush(); err != nil {
			return nil, err
		}
		// A record larger than the buffer gets a buffer of its own,
		// so that it too reaches the file in one write.
		if n > b.bufSize {
			b.buf = make([]byte, 0, n)
		} else if cap(b.buf) > b.bufSize {
			b.buf = make([]byte, 0, b.bufSize)
		}
	}
	start := len(b.buf)
	b.buf = b.buf[:start+n]
	return b.buf[start : start+n], nil
}

func (b *recordBuffer) flush() error {
	if b.err != nil {
		return b.err
	}
	if len(b.buf) == 0 {
		return nil
	}
	n, err := b.w.Write(b.buf)
	if err == nil && n < len(b.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		// A short write (a full disk) ends inside a record: cut the file
		// back to the last whole one, so it stays readable.
		if t, ok := b.w.(truncater); ok && n > 0 {
			if terr := t.Truncate(b.written); terr != nil {
				b.written += int64(n)
			}
		} else {
			b.written += int64(n)
		}
		b.err = fmt.Errorf("writing capture file: %w", err)
		b.buf = nil
		return b.err
	}
	b.written += int64(n)
	b.buf = b.buf[:0]
	b.pendingPackets, b.pendingData = 0, 0
	return nil
}

// packet notes a packet record reserved in the buffer.
func (b *recordBuffer) packet(dataLen int) {
	b.pendingPackets++
	b.pendingData += int64(dataLen)
}

func (b *recordBuffer) lost() (int, int64) {
	if b.err == nil {
		return 0, 0
	}
	return b.pendingPackets, b.pendingData
}

func (b *recordBuffer) size() int64 { return b.written + int64(len(b.buf)) }

// clampSnapLen maps 0 (no limit) and oversized values to MaxSnapLen.
func clampSnapLen(s uint32) uint32 {
	if s == 0 || s > MaxSnapLen {
		return MaxSnapLen
	}
	return s
}
