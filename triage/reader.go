package triage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"regexp"
	"strings"
)

// Link types read (LINKTYPE_* values).
const (
	linkNull     = 0
	linkEthernet = 1
	linkRaw      = 101
	linkLoop     = 108
	linkSLL      = 113
	linkIPv4     = 228
	linkIPv6     = 229
	linkSLL2     = 276
)

func linkTypeName(l uint16) string {
	switch l {
	case linkNull:
		return "BSD loopback"
	case linkEthernet:
		return "Ethernet"
	case linkRaw, linkIPv4, linkIPv6:
		return "raw IP"
	case linkLoop:
		return "OpenBSD loopback"
	case linkSLL:
		return "Linux cooked (SLL)"
	case linkSLL2:
		return "Linux cooked v2 (SLL2)"
	}
	return fmt.Sprintf("link type %d", l)
}

// readBufferSize holds the largest record of a file capped at libpcap's
// maximum snap length in one piece, so a record is read without a copy.
const readBufferSize = 1 << 20

// maxRecord bounds a record's or block's length: anything longer is taken
// for garbage rather than allocated.
const maxRecord = 16 << 20

// packet is one record. data is valid until the next call to next on the
// reader that returned it.
type packet struct {
	ts      int64 // nanoseconds since the Unix epoch
	iface   int   // the reader's interface number (index into ifaces)
	origLen uint32
	data    []byte
}

// ifaceInfo describes an interface as a file declares it.
type ifaceInfo struct {
	name, desc, filter string
	link               uint16
	snap               uint32
	// tsUnits is the timestamp resolution in units per second;
	// tsOffset seconds are added (if_tsoffset).
	tsUnits  uint64
	tsOffset int64
	// from the statistics block, when there is one
	hasStats       bool
	recv, drops    uint64
	hasRecv        bool
	start, end     int64 // isb_starttime, isb_endtime (ns; 0 unknown)
	statsDelivered uint64
}

// fileReader reads one pcap or pcapng file. It never panics on bad input:
// a malformed or cut record ends the file with an error saying where.
type fileReader struct {
	path    string
	br      *bufio.Reader
	off     int64 // offset of the next record
	pending int   // bytes of the current record still to discard
	ng      bool
	bo      binary.ByteOrder
	comment string // the section comment (pcapng)
	ifaces  []ifaceInfo
	// ifaceBase is the number of interfaces of earlier sections (pcapng
	// numbers interfaces per section).
	ifaceBase int
	// onIface is called when a new interface is declared.
	onIface func(i int)
	// pcap
	tsMul int64 // nanoseconds per fraction unit
	big   []byte
}

var errNotCapture = errors.New("not a pcap or pcapng file")

// newFileReader reads the file header (and, for pcapng, the blocks up to the
// first packet are read as they come).
func newFileReader(path string, r io.Reader, bufSize int) (*fileReader, error) {
	fr := &fileReader{path: path, br: bufio.NewReaderSize(r, bufSize)}
	h, err := fr.br.Peek(24)
	if len(h) < 4 {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty or too short for a capture file header (%d bytes)", path, len(h))
		}
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	switch binary.LittleEndian.Uint32(h) {
	case 0xa1b2c3d4:
		fr.bo, fr.tsMul = binary.LittleEndian, 1000
	case 0xd4c3b2a1:
		fr.bo, fr.tsMul = binary.BigEndian, 1000
	case 0xa1b23c4d:
		fr.bo, fr.tsMul = binary.LittleEndian, 1
	case 0x4d3cb2a1:
		fr.bo, fr.tsMul = binary.BigEndian, 1
	case 0x0a0d0d0a:
		fr.ng = true
		return fr, nil
	default:
		return nil, fmt.Errorf("%s: %w (magic number %#08x)", path, errNotCapture, binary.LittleEndian.Uint32(h))
	}
	if len(h) < 24 {
		return nil, fmt.Errorf("%s: the pcap file header is cut short (%d of 24 bytes)", path, len(h))
	}
	snap := fr.bo.Uint32(h[16:])
	// The upper bits of the link type field hold FCS information.
	link := uint16(fr.bo.Uint32(h[20:]))
	fr.ifaces = []ifaceInfo{{link: link, snap: snap, tsUnits: uint64(1e9 / fr.tsMul)}}
	fr.pending = 24
	fr.off = 0
	return fr, nil
}

func (fr *fileReader) format() string {
	if fr.ng {
		return "pcapng"
	}
	return "pcap"
}

// errorAt is a read error that says where in the file it happened.
type errorAt struct {
	path   string
	offset int64
	msg    string
}

func (e *errorAt) Error() string {
	return fmt.Sprintf("%s: %s at byte %d", e.path, e.msg, e.offset)
}

func (fr *fileReader) errAt(format string, args ...any) error {
	return &errorAt{path: fr.path, offset: fr.off, msg: fmt.Sprintf(format, args...)}
}

// skipPending discards the previous record.
func (fr *fileReader) skipPending() error {
	if fr.pending > 0 {
		n, err := fr.br.Discard(fr.pending)
		fr.off += int64(n)
		fr.pending = 0
		if err != nil {
			return fr.errAt("reading: %v", err)
		}
	}
	return nil
}

// peek returns the next n bytes; io.EOF at a clean end, an errorAt when the
// file ends inside them.
func (fr *fileReader) peek(n int, what string) ([]byte, error) {
	if n <= fr.br.Size() {
		b, err := fr.br.Peek(n)
		if err == nil {
			return b, nil
		}
		if len(b) == 0 && errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if errors.Is(err, io.EOF) {
			return nil, fr.errAt("the file ends inside %s (%d of %d bytes)", what, len(b), n)
		}
		return nil, fr.errAt("reading %s: %v", what, err)
	}
	// A record larger than the buffer: read it into a buffer of its own.
	if cap(fr.big) < n {
		fr.big = make([]byte, n)
	}
	fr.big = fr.big[:n]
	got, err := io.ReadFull(fr.br, fr.big)
	if err != nil {
		if got == 0 && errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		fr.off += int64(got)
		return nil, fr.errAt("the file ends inside %s (%d of %d bytes)", what, got, n)
	}
	// Already consumed: the caller's pending bytes are accounted here.
	fr.off -= int64(n)
	fr.pending = -n
	return fr.big, nil
}

// consume marks n bytes, returned by peek, as the current record.
func (fr *fileReader) consume(n int) {
	if fr.pending < 0 { // read past the buffer already
		fr.off += int64(n)
		fr.pending = 0
		return
	}
	fr.pending = n
}

// next reads the next packet into p. It returns io.EOF at the file's end.
func (fr *fileReader) next(p *packet) error {
	if err := fr.skipPending(); err != nil {
		return err
	}
	if fr.ng {
		return fr.nextNg(p)
	}
	h, err := fr.peek(16, "a record header")
	if err != nil {
		return err
	}
	bo := fr.bo
	sec, frac := bo.Uint32(h), bo.Uint32(h[4:])
	caplen, orig := bo.Uint32(h[8:]), bo.Uint32(h[12:])
	if caplen > maxRecord {
		return fr.errAt("malformed record: captured length %d", caplen)
	}
	n := 16 + int(caplen)
	rec, err := fr.peek(n, "a record")
	if err != nil {
		return err
	}
	fr.consume(n)
	p.ts = int64(sec)*1e9 + int64(frac)*fr.tsMul
	p.iface = 0
	p.origLen = max(orig, caplen)
	p.data = rec[16:n]
	return nil
}

// pcapng block types and options.
const (
	ngSHB = 0x0A0D0D0A
	ngIDB = 1
	ngPB  = 2 // obsolete packet block
	ngSPB = 3
	ngISB = 5
	ngEPB = 6
)

func (fr *fileReader) nextNg(p *packet) error {
	for {
		h, err := fr.peek(12, "a block header")
		if err != nil {
			return err
		}
		typ := binary.LittleEndian.Uint32(h)
		if typ == ngSHB {
			// The byte order mark says how to read the rest of the section.
			switch binary.LittleEndian.Uint32(h[8:]) {
			case 0x1A2B3C4D:
				fr.bo = binary.LittleEndian
			case 0x4D3C2B1A:
				fr.bo = binary.BigEndian
			default:
				return fr.errAt("malformed section header: byte order mark %#08x", binary.LittleEndian.Uint32(h[8:]))
			}
		} else if fr.bo == nil {
			return fr.errAt("malformed pcapng: no section header")
		} else {
			typ = fr.bo.Uint32(h)
		}
		total := fr.bo.Uint32(h[4:])
		if total < 12 || total%4 != 0 || total > maxRecord {
			return fr.errAt("malformed block (type %#x): length %d", typ, total)
		}
		b, err := fr.peek(int(total), "a block")
		if err != nil {
			return err
		}
		fr.consume(int(total))
		if fr.bo.Uint32(b[total-4:]) != total {
			return fr.errAt("malformed block (type %#x): trailing length %d, leading %d", typ, fr.bo.Uint32(b[total-4:]), total)
		}
		body := b[8 : total-4]
		switch typ {
		case ngSHB:
			if err := fr.section(body); err != nil {
				return err
			}
		case ngIDB:
			if err := fr.interfaceBlock(body); err != nil {
				return err
			}
		case ngEPB, ngPB:
			if len(body) < 20 {
				return fr.errAt("malformed packet block: %d bytes", len(body))
			}
			var id uint32
			if typ == ngPB {
				id = uint32(fr.bo.Uint16(body))
			} else {
				id = fr.bo.Uint32(body)
			}
			if int(id) >= len(fr.ifaces)-fr.ifaceBase {
				return fr.errAt("packet block for interface %d, which is not declared", id)
			}
			ifc := fr.ifaceBase + int(id)
			caplen := fr.bo.Uint32(body[12:])
			if uint64(caplen) > uint64(len(body)-20) {
				return fr.errAt("malformed packet block: captured length %d exceeds the block", caplen)
			}
			raw := uint64(fr.bo.Uint32(body[4:]))<<32 | uint64(fr.bo.Uint32(body[8:]))
			p.ts = fr.ifaces[ifc].nanos(raw)
			p.iface = ifc
			p.origLen = max(fr.bo.Uint32(body[16:]), caplen)
			p.data = body[20 : 20+caplen]
			return nil
		case ngSPB:
			if len(fr.ifaces)-fr.ifaceBase == 0 {
				return fr.errAt("simple packet block before any interface")
			}
			if len(body) < 4 {
				return fr.errAt("malformed simple packet block")
			}
			ifc := fr.ifaceBase
			orig := fr.bo.Uint32(body)
			caplen := min(uint32(len(body)-4), orig)
			if s := fr.ifaces[ifc].snap; s > 0 {
				caplen = min(caplen, s)
			}
			p.ts = 0 // simple packet blocks have no timestamp
			p.iface = ifc
			p.origLen = orig
			p.data = body[4 : 4+caplen]
			return nil
		case ngISB:
			fr.statistics(body)
		}
		// Other blocks (name resolution, custom, decryption secrets) carry
		// nothing triage uses.
		if err := fr.skipPending(); err != nil {
			return err
		}
	}
}

func (ifc *ifaceInfo) nanos(raw uint64) int64 {
	var ns uint64
	switch ifc.tsUnits {
	case 1e9:
		ns = raw
	case 1e6:
		ns = raw * 1000
	default:
		u := ifc.tsUnits
		ns = raw/u*1e9 + (raw%u)*1e9/u
	}
	return int64(ns) + ifc.tsOffset*1e9
}

// options walks a block's options, calling fn for each; malformed options
// end the walk.
func (fr *fileReader) options(b []byte, fn func(code uint16, val []byte)) {
	for len(b) >= 4 {
		code, n := fr.bo.Uint16(b), int(fr.bo.Uint16(b[2:]))
		if code == 0 || 4+n > len(b) {
			return
		}
		fn(code, b[4:4+n])
		b = b[min(4+(n+3)&^3, len(b)):]
	}
}

func (fr *fileReader) section(body []byte) error {
	if len(body) < 16 {
		return fr.errAt("malformed section header: %d bytes", len(body))
	}
	if major := fr.bo.Uint16(body[4:]); major != 1 {
		return fr.errAt("pcapng version %d is not supported", major)
	}
	fr.ifaceBase = len(fr.ifaces)
	fr.options(body[16:], func(code uint16, val []byte) {
		if code == 1 && fr.comment == "" {
			fr.comment = strings.TrimRight(string(val), "\x00")
		}
	})
	return nil
}

func (fr *fileReader) interfaceBlock(body []byte) error {
	if len(body) < 8 {
		return fr.errAt("malformed interface description: %d bytes", len(body))
	}
	ifc := ifaceInfo{link: fr.bo.Uint16(body), snap: fr.bo.Uint32(body[4:]), tsUnits: 1e6}
	fr.options(body[8:], func(code uint16, val []byte) {
		switch code {
		case 2:
			ifc.name = strings.TrimRight(string(val), "\x00")
		case 3:
			ifc.desc = strings.TrimRight(string(val), "\x00")
		case 9:
			if len(val) >= 1 {
				v := val[0]
				if v&0x80 == 0 && v <= 19 {
					ifc.tsUnits = uint64(math.Pow10(int(v)))
				} else if v&0x80 != 0 && v&0x7f <= 63 {
					ifc.tsUnits = 1 << (v & 0x7f)
				}
				if ifc.tsUnits == 0 {
					ifc.tsUnits = 1e6
				}
			}
		case 11:
			if len(val) > 1 && val[0] == 0 {
				ifc.filter = string(val[1:])
			}
		case 14:
			if len(val) == 8 {
				ifc.tsOffset = int64(fr.bo.Uint64(val))
			}
		}
	})
	fr.ifaces = append(fr.ifaces, ifc)
	if fr.onIface != nil {
		fr.onIface(len(fr.ifaces) - 1)
	}
	return nil
}

func (fr *fileReader) statistics(body []byte) {
	if len(body) < 12 {
		return
	}
	id := fr.ifaceBase + int(fr.bo.Uint32(body))
	if id >= len(fr.ifaces) {
		return
	}
	ifc := &fr.ifaces[id]
	ts := func(v []byte) int64 {
		if len(v) != 8 {
			return 0
		}
		return ifc.nanos(uint64(fr.bo.Uint32(v))<<32 | uint64(fr.bo.Uint32(v[4:])))
	}
	var ifdrop, osdrop uint64
	var hasDrop bool
	fr.options(body[12:], func(code uint16, val []byte) {
		switch code {
		case 2:
			ifc.start = ts(val)
		case 3:
			ifc.end = ts(val)
		case 4, 5, 7, 8:
			if len(val) != 8 {
				return
			}
			v := fr.bo.Uint64(val)
			switch code {
			case 4:
				ifc.recv, ifc.hasRecv = v, true
			case 5:
				ifdrop, hasDrop = v, true
			case 7:
				osdrop, hasDrop = v, true
			case 8:
				ifc.statsDelivered = v
			}
		}
	})
	if hasDrop {
		// tripcap writes the kernel's count in both; dumpcap only in
		// isb_ifdrop. Both are cumulative over the capture.
		ifc.drops, ifc.hasStats = max(ifdrop, osdrop), true
	}
	if ifc.hasRecv {
		ifc.hasStats = true
	}
}

// ringSuffix is the numbering tripcap gives a ring's later files.
var ringSuffix = regexp.MustCompile(`_\d{5}$`)

// ringStem names the ring a file belongs to: its path without the
// extension and the ring number, so capture.cap and capture_00001.cap share it.
func ringStem(path string) string {
	p := strings.TrimSuffix(path, filepath.Ext(path))
	return ringSuffix.ReplaceAllString(p, "")
}
