package pcapfile

import (
	"encoding/binary"
	"fmt"
	"os"
)

// Count returns the packet records of a capture file this package wrote and
// the captured bytes they hold, up to its last whole record: what a session
// recovered after a crash reports, so that its figures are the file's.
func Count(path string) (packets, dataBytes uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("opening %s to count its packets: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("counting the packets of %s: %w", path, err)
	}
	format, hdr, err := DetectFormat(f)
	if err != nil {
		return 0, 0, fmt.Errorf("counting the packets of %s: %w", path, err)
	}
	size := st.Size()
	le := binary.LittleEndian
	var h [24]byte
	for pos := hdr; ; {
		switch format {
		case FormatPcap:
			if size-pos < pcapRecordHeaderLn {
				return packets, dataBytes, nil
			}
			if _, err := f.ReadAt(h[:pcapRecordHeaderLn], pos); err != nil {
				return packets, dataBytes, fmt.Errorf("%s: reading the record at %d: %w", path, pos, err)
			}
			capLen := int64(le.Uint32(h[8:]))
			if pos+pcapRecordHeaderLn+capLen > size {
				return packets, dataBytes, nil
			}
			packets++
			dataBytes += uint64(capLen)
			pos += pcapRecordHeaderLn + capLen
		default:
			if size-pos < 12 {
				return packets, dataBytes, nil
			}
			if _, err := f.ReadAt(h[:8], pos); err != nil {
				return packets, dataBytes, fmt.Errorf("%s: reading the block at %d: %w", path, pos, err)
			}
			typ, n := le.Uint32(h[0:]), int64(le.Uint32(h[4:]))
			if n < 12 || n%4 != 0 || pos+n > size {
				return packets, dataBytes, nil
			}
			if typ == blockEPB && n >= epbFixedLen {
				if _, err := f.ReadAt(h[:24], pos); err != nil {
					return packets, dataBytes, fmt.Errorf("%s: reading the block at %d: %w", path, pos, err)
				}
				packets++
				dataBytes += uint64(le.Uint32(h[20:]))
			}
			pos += n
		}
	}
}
