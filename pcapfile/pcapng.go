package pcapfile

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// pcapng block types and option codes (draft-ietf-opsawg-pcapng).
const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 0x00000001
	blockISB = 0x00000005
	blockEPB = 0x00000006

	byteOrderMagic = 0x1A2B3C4D

	optEndOfOpt  = 0
	optComment   = 1
	shbHardware  = 2
	shbOS        = 3
	shbUserAppl  = 4
	ifName       = 2
	ifDesc       = 3
	ifTSResol    = 9
	ifFilter     = 11
	isbStartTime = 2
	isbEndTime   = 3
	isbIfRecv    = 4
	isbIfDrop    = 5
	isbOSDrop    = 7
	isbUsrDeliv  = 8

	epbFixedLen = 32 // block header, interface, timestamp, lengths, trailer
	// isbLen is the size of one statistics block as written by Close: its
	// options are always all present so the size is known in advance.
	isbLen = 24 + 2*(4+8) + 4*(4+8) + 4
)

// NgWriter writes the pcapng format: one section, one interface description
// block per capture interface, enhanced packet blocks with nanosecond
// timestamps, and an interface statistics block per interface at Close.
type NgWriter struct {
	b       *recordBuffer
	ifaces  []Interface
	maxSnap uint32
	closed  bool
}

// NewNgWriter writes the section header and the interface descriptions to w,
// flushes them, and returns a writer whose interface numbers index ifaces.
// bufSize is the record buffer size (0 for DefaultBufferSize).
func NewNgWriter(w io.Writer, sec Section, ifaces []Interface, bufSize int) (*NgWriter, error) {
	if len(ifaces) == 0 {
		return nil, fmt.Errorf("pcapng: at least one interface is needed")
	}
	nw := &NgWriter{b: newRecordBuffer(w, bufSize), ifaces: make([]Interface, len(ifaces))}
	copy(nw.ifaces, ifaces)
	for i := range nw.ifaces {
		nw.ifaces[i].SnapLen = clampSnapLen(nw.ifaces[i].SnapLen)
		nw.maxSnap = max(nw.maxSnap, nw.ifaces[i].SnapLen)
	}

	var opts []byte
	opts = appendStringOpt(opts, optComment, sec.Comment)
	opts = appendStringOpt(opts, shbHardware, sec.Hardware)
	opts = appendStringOpt(opts, shbOS, sec.OS)
	opts = appendStringOpt(opts, shbUserAppl, sec.Application)
	opts = endOpts(opts)
	body := make([]byte, 16, 16+len(opts))
	le := binary.LittleEndian
	le.PutUint32(body[0:], byteOrderMagic)
	le.PutUint16(body[4:], 1) // version 1.0
	le.PutUint16(body[6:], 0)
	le.PutUint64(body[8:], ^uint64(0)) // section length not specified
	if err := nw.writeBlock(blockSHB, append(body, opts...)); err != nil {
		return nil, err
	}

	for _, ifc := range nw.ifaces {
		if err := nw.writeIDB(ifc); err != nil {
			return nil, err
		}
	}
	if err := nw.b.flush(); err != nil {
		return nil, fmt.Errorf("writing pcapng header: %w", err)
	}
	return nw, nil
}

// writeBlock appends a whole block with the given body (already padded).
func (nw *NgWriter) writeBlock(typ uint32, body []byte) error {
	n := 12 + len(body)
	rec, err := nw.b.reserve(n)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	le.PutUint32(rec[0:], typ)
	le.PutUint32(rec[4:], uint32(n))
	copy(rec[8:], body)
	le.PutUint32(rec[n-4:], uint32(n))
	return nil
}

// WritePacket appends an enhanced packet block for interface iface.
func (nw *NgWriter) WritePacket(iface int, ts int64, origLen int, data []byte) error {
	if iface < 0 || iface >= len(nw.ifaces) {
		return fmt.Errorf("pcapng: interface %d is not in the file (%d interfaces)", iface, len(nw.ifaces))
	}
	if snap := nw.ifaces[iface].SnapLen; uint32(len(data)) > snap {
		data = data[:snap]
	}
	if origLen < len(data) {
		origLen = len(data)
	}
	padded := (len(data) + 3) &^ 3
	n := epbFixedLen + padded
	rec, err := nw.b.reserve(n)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	le.PutUint32(rec[0:], blockEPB)
	le.PutUint32(rec[4:], uint32(n))
	le.PutUint32(rec[8:], uint32(iface))
	le.PutUint32(rec[12:], uint32(uint64(ts)>>32))
	le.PutUint32(rec[16:], uint32(ts))
	le.PutUint32(rec[20:], uint32(len(data)))
	le.PutUint32(rec[24:], uint32(origLen))
	copy(rec[28:], data)
	// The reserved space is reused memory: clear the padding.
	for i := 28 + len(data); i < 28+padded; i++ {
		rec[i] = 0
	}
	le.PutUint32(rec[n-4:], uint32(n))
	nw.b.packet(len(data))
	return nil
}

// Lost reports the packets accepted but not written because a write failed.
func (nw *NgWriter) Lost() (int, int64) { return nw.b.lost() }

// RecordSize is the size of an enhanced packet block with caplen bytes of data.
func (nw *NgWriter) RecordSize(caplen int) int64 {
	// Interfaces may differ in snap length; the largest is a safe bound.
	if uint32(caplen) > nw.maxSnap {
		caplen = int(nw.maxSnap)
	}
	return int64(epbFixedLen + (caplen+3)&^3)
}

// TrailerSize is the size of the statistics blocks Close writes (an upper
// bound when some InterfaceStats have CountersUnknown).
func (nw *NgWriter) TrailerSize() int64 { return int64(isbLen * len(nw.ifaces)) }

// Size is the file's size once everything buffered is written.
func (nw *NgWriter) Size() int64 { return nw.b.size() }

// Flush writes out the buffered blocks.
func (nw *NgWriter) Flush() error { return nw.b.flush() }

// Close writes one interface statistics block per interface (stats[i] for
// interface i; missing entries are written as zero) and flushes. The
// kernel's drop count goes into isb_osdrop, where the format puts drops by
// the operating system, and into isb_ifdrop, where dumpcap puts it and
// Wireshark's capture file properties read it.
func (nw *NgWriter) Close(stats []InterfaceStats) error {
	if nw.closed {
		return nw.b.flush()
	}
	nw.closed = true
	now := time.Now()
	for i := range nw.ifaces {
		var st InterfaceStats
		if i < len(stats) {
			st = stats[i]
		}
		if st.End.IsZero() {
			st.End = now
		}
		if st.Start.IsZero() {
			st.Start = st.End
		}
		body := isbBody(i, st, "")
		if err := nw.writeBlock(blockISB, body); err != nil {
			return err
		}
	}
	return nw.b.flush()
}

// isbBody is the body of an interface statistics block; the kernel's
// counters are left out when they are unknown (a merge of files).
func isbBody(iface int, st InterfaceStats, comment string) []byte {
	var body []byte
	body = binary.LittleEndian.AppendUint32(body, uint32(iface))
	body = appendTS(body, st.End.UnixNano())
	body = appendStringOpt(body, optComment, comment)
	body = appendOpt(body, isbStartTime, appendTS(nil, st.Start.UnixNano()))
	body = appendOpt(body, isbEndTime, appendTS(nil, st.End.UnixNano()))
	if !st.CountersUnknown {
		body = appendOpt(body, isbIfRecv, binary.LittleEndian.AppendUint64(nil, st.Received))
		body = appendOpt(body, isbIfDrop, binary.LittleEndian.AppendUint64(nil, st.Dropped))
		body = appendOpt(body, isbOSDrop, binary.LittleEndian.AppendUint64(nil, st.Dropped))
	}
	body = appendOpt(body, isbUsrDeliv, binary.LittleEndian.AppendUint64(nil, st.Delivered))
	return endOpts(body)
}

func appendTS(b []byte, ts int64) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(uint64(ts)>>32))
	return binary.LittleEndian.AppendUint32(b, uint32(ts))
}

func appendOpt(b []byte, code uint16, val []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(val)))
	b = append(b, val...)
	var pad [3]byte
	return append(b, pad[:(4-len(val)%4)%4]...)
}

func appendStringOpt(b []byte, code uint16, s string) []byte {
	if s == "" {
		return b
	}
	// An option value is at most 65535 bytes.
	if len(s) > 0xfff0 {
		s = s[:0xfff0]
	}
	return appendOpt(b, code, []byte(s))
}

// endOpts terminates a non-empty option list.
func endOpts(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	return binary.LittleEndian.AppendUint32(b, optEndOfOpt)
}
