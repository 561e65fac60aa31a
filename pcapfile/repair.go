package pcapfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Format is a capture file format, as told by its first bytes.
type Format int

const (
	FormatUnknown Format = iota
	FormatPcap
	FormatPcapng
)

// DetectFormat reads the magic number at the start of a file this package
// wrote (little-endian pcap with micro- or nanosecond timestamps, or pcapng)
// and returns the format and the size of the file header.
func DetectFormat(r io.ReaderAt) (Format, int64, error) {
	var h [12]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return FormatUnknown, 0, fmt.Errorf("reading the capture file header: %w", err)
	}
	le := binary.LittleEndian
	switch le.Uint32(h[:]) {
	case pcapMagicMicro, 0xa1b23c4d:
		return FormatPcap, pcapHeaderLen, nil
	case blockSHB:
		if le.Uint32(h[8:]) != byteOrderMagic {
			return FormatUnknown, 0, fmt.Errorf("a big-endian pcapng file is not one this package wrote")
		}
		// The section header is a block like any other.
		return FormatPcapng, 0, nil
	}
	return FormatUnknown, 0, fmt.Errorf("not a little-endian pcap or pcapng file")
}

// WholeRecordsEnd returns the end of the last whole record of a file of the
// given size, scanning from offset from, which must be a record (or block)
// boundary. A file cut in the middle of a record ends, once truncated to
// this offset, at a record boundary again.
func WholeRecordsEnd(r io.ReaderAt, format Format, from, size int64) (int64, error) {
	var h [16]byte
	le := binary.LittleEndian
	pos := from
	for {
		var n int64
		switch format {
		case FormatPcap:
			if size-pos < pcapRecordHeaderLn {
				return pos, nil
			}
			if _, err := r.ReadAt(h[:pcapRecordHeaderLn], pos); err != nil {
				return pos, fmt.Errorf("reading the record at %d: %w", pos, err)
			}
			n = pcapRecordHeaderLn + int64(le.Uint32(h[8:]))
		case FormatPcapng:
			if size-pos < 12 {
				return pos, nil
			}
			if _, err := r.ReadAt(h[:8], pos); err != nil {
				return pos, fmt.Errorf("reading the block at %d: %w", pos, err)
			}
			n = int64(le.Uint32(h[4:]))
			if n < 12 || n%4 != 0 {
				// Not a block we wrote: the data past pos is not
				// trustworthy.
				return pos, nil
			}
		default:
			return pos, fmt.Errorf("unknown capture file format")
		}
		if pos+n > size {
			return pos, nil
		}
		pos += n
	}
}

// Repair truncates a capture file this package wrote to its last whole
// record, as after a crash that cut a write short. It reports the bytes
// removed.
func Repair(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("opening %s to repair it: %w", path, err)
	}
	defer f.Close()
	return RepairFile(f, 0)
}

// RepairFile is Repair on an open file (read-write), scanning from offset
// from, a record boundary (0 for the whole file).
func RepairFile(f *os.File, from int64) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("repairing a capture file: %w", err)
	}
	format, hdr, err := DetectFormat(f)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil // too short to hold even a header: nothing to keep
		}
		return 0, err
	}
	from = max(from, hdr)
	end, err := WholeRecordsEnd(f, format, from, st.Size())
	if err != nil {
		return 0, err
	}
	if end == st.Size() {
		return 0, nil
	}
	if err := f.Truncate(end); err != nil {
		return 0, fmt.Errorf("truncating %s to its last whole record: %w", f.Name(), err)
	}
	return st.Size() - end, nil
}
