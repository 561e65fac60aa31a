package pcapfile

import (
	"encoding/binary"
	"fmt"
	"io"
)

const (
	pcapMagicMicro     = 0xa1b2c3d4
	pcapHeaderLen      = 24
	pcapRecordHeaderLn = 16
)

// PcapWriter writes the classic pcap format (Azure's .cap) with microsecond
// timestamps, which every reader understands.
type PcapWriter struct {
	b       *recordBuffer
	snapLen uint32
}

// NewPcapWriter writes the pcap file header to w, flushes it, and returns a
// writer for records of the given link type. bufSize is the record buffer
// size (0 for DefaultBufferSize).
func NewPcapWriter(w io.Writer, link LinkType, snapLen uint32, bufSize int) (*PcapWriter, error) {
	pw := &PcapWriter{b: newRecordBuffer(w, bufSize), snapLen: clampSnapLen(snapLen)}
	h, err := pw.b.reserve(pcapHeaderLen)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	le.PutUint32(h[0:], pcapMagicMicro)
	le.PutUint16(h[4:], 2) // version 2.4
	le.PutUint16(h[6:], 4)
	le.PutUint32(h[8:], 0)  // thiszone
	le.PutUint32(h[12:], 0) // sigfigs
	le.PutUint32(h[16:], pw.snapLen)
	le.PutUint32(h[20:], uint32(link))
	if err := pw.b.flush(); err != nil {
		return nil, fmt.Errorf("writing pcap header: %w", err)
	}
	return pw, nil
}

// WritePacket appends one record; iface is ignored (pcap has one interface).
func (pw *PcapWriter) WritePacket(_ int, ts int64, origLen int, data []byte) error {
	if uint32(len(data)) > pw.snapLen {
		data = data[:pw.snapLen]
	}
	if origLen < len(data) {
		origLen = len(data)
	}
	rec, err := pw.b.reserve(pcapRecordHeaderLn + len(data))
	if err != nil {
		return err
	}
	PutRecordHeader(rec, uint32(ts/1e9), uint32(ts%1e9/1e3), uint32(len(data)), uint32(origLen))
	copy(rec[pcapRecordHeaderLn:], data)
	pw.b.packet(len(data))
	return nil
}

// Space returns the buffer's free space, for a batch of records written in
// place (PutRecordHeader, then the data) and then committed with Commit:
// the way to write many packets without a call per packet. Records written
// there must hold at most SnapLen bytes of data each. It is empty after a
// failed write; WritePacket then reports the error.
func (pw *PcapWriter) Space() []byte { return pw.b.buf[len(pw.b.buf):cap(pw.b.buf)] }

// Commit adds the first n bytes of Space to the buffer: packets whole
// records holding dataBytes bytes of packet data in all.
func (pw *PcapWriter) Commit(n, packets int, dataBytes int64) {
	if n == 0 {
		return
	}
	pw.b.buf = pw.b.buf[:len(pw.b.buf)+n]
	pw.b.pendingPackets += packets
	pw.b.pendingData += dataBytes
}

// SnapLen is the file's snap length.
func (pw *PcapWriter) SnapLen() uint32 { return pw.snapLen }

// PcapRecordHeaderLen is the size of a pcap record's header.
const PcapRecordHeaderLen = pcapRecordHeaderLn

// PutRecordHeader writes a pcap record header at the start of b (at least
// PcapRecordHeaderLen bytes): the timestamp in seconds and microseconds, the
// captured length and the length on the wire (at least caplen).
func PutRecordHeader(b []byte, sec, usec, caplen, origLen uint32) {
	_ = b[15]
	le := binary.LittleEndian
	le.PutUint32(b[0:], sec)
	le.PutUint32(b[4:], usec)
	le.PutUint32(b[8:], caplen)
	le.PutUint32(b[12:], origLen)
}

// Lost reports the packets accepted but not written because a write failed.
func (pw *PcapWriter) Lost() (int, int64) { return pw.b.lost() }

// RecordSize is the number of bytes a record with caplen bytes of data takes.
func (pw *PcapWriter) RecordSize(caplen int) int64 {
	if uint32(caplen) > pw.snapLen {
		caplen = int(pw.snapLen)
	}
	return int64(pcapRecordHeaderLn + caplen)
}

// TrailerSize is 0: pcap has nothing after the last record.
func (pw *PcapWriter) TrailerSize() int64 { return 0 }

// Size is the file's size once everything buffered is written.
func (pw *PcapWriter) Size() int64 { return pw.b.size() }

// Flush writes out the buffered records.
func (pw *PcapWriter) Flush() error { return pw.b.flush() }

// Close flushes; pcap has no statistics block, so stats are ignored.
func (pw *PcapWriter) Close(_ []InterfaceStats) error { return pw.b.flush() }
