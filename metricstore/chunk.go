package metricstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Series are held compactly: closed minutes of 1-second points and closed
// runs of 1-minute rollups are encoded blocks, lossless, and only the
// minute in progress is plain. A block is a list of up to 64 slots (the
// seconds of a minute, the minutes of a rollup block) with a presence mask,
// so gaps cost a bit each, and one column per value kind of the present
// slots. A column of integer values (what kernel counters give) is packed
// frame-of-reference: the smallest value, then every value's offset from it
// in as many bits as the largest offset needs, so any slot reads in O(1)
// without decoding its neighbours. A column with any other value is
// XOR-encoded as in Gorilla (Facebook's time-series store) and Prometheus
// chunks, and decoded whole when read.
//
//	block:  uvarint mask (0: every slot present), then the columns
//	column: a byte, kindXOR or kindFOR plus the width of the offsets, then
//	  FOR: varint reference, ceil(n*width/8) bytes of offsets
//	  XOR: uint16 length (little-endian), that many bytes of the XOR stream

const (
	kindFOR = 0 // plus the width, 0 to 64
	kindXOR = 0xff
	// maxExact bounds the integers a float64 holds exactly; larger values
	// go XOR-encoded, so packing never rounds.
	maxExact = 1 << 53
)

var errBlock = errors.New("damaged block")

// encBuf is where a block is encoded: a fixed array, so encoding
// allocates nothing (a block never needs more: 64 slots of four columns
// of at most 77 bits a value).
type encBuf struct {
	b [4096]byte
	n int
}

func (e *encBuf) byte(c byte)            { e.b[e.n] = c; e.n++ }
func (e *encBuf) uvarint(v uint64)       { e.n += binary.PutUvarint(e.b[e.n:], v) }
func (e *encBuf) varint(v int64)         { e.n += binary.PutVarint(e.b[e.n:], v) }
func (e *encBuf) bytes() []byte          { return e.b[:e.n] }
func (e *encBuf) reset()                 { e.n = 0 }
func (e *encBuf) putUint16(i int, v int) { binary.LittleEndian.PutUint16(e.b[i:], uint16(v)) }

// bitWriter appends bits to an encBuf, most significant first.
type bitWriter struct {
	e    *encBuf
	acc  uint64
	nacc uint
}

func (w *bitWriter) write(v uint64, n uint) {
	if n > 32 {
		w.write32(v>>32, n-32)
		v, n = v&(1<<32-1), 32
	}
	w.write32(v, n)
}

func (w *bitWriter) write32(v uint64, n uint) {
	w.acc = w.acc<<n | v&(1<<n-1)
	w.nacc += n
	for w.nacc >= 8 {
		w.nacc -= 8
		w.e.byte(byte(w.acc >> w.nacc))
	}
}

func (w *bitWriter) flush() {
	if w.nacc > 0 {
		w.e.byte(byte(w.acc << (8 - w.nacc)))
	}
	w.acc, w.nacc = 0, 0
}

// readBits reads n (at most 64) bits at bit offset off of b; the caller
// has checked that b holds them. Bits of b after them are ignored, so one
// 8-byte load serves most reads.
func readBits(b []byte, off uint64, n uint) uint64 {
	if i := off / 8; n <= 56 && i+8 <= uint64(len(b)) {
		return binary.BigEndian.Uint64(b[i:]) << (off % 8) >> (64 - n)
	}
	return readBitsSlow(b, off, n)
}

func readBitsSlow(b []byte, off uint64, n uint) uint64 {
	if n > 32 {
		hi := readBitsSlow(b, off, n-32)
		return hi<<32 | readBitsSlow(b, off+uint64(n-32), 32)
	}
	if n == 0 {
		return 0
	}
	i := off / 8
	have := 8 - uint(off%8)
	v := uint64(b[i]) & (1<<have - 1)
	for have < n {
		i++
		v = v<<8 | uint64(b[i])
		have += 8
	}
	return v >> (have - n)
}

// bitReader reads a stream sequentially, reporting running past its end.
type bitReader struct {
	b   []byte
	off uint64
	bad bool
}

func (r *bitReader) read(n uint) uint64 {
	if r.bad || r.off+uint64(n) > uint64(len(r.b))*8 {
		r.bad = true
		return 0
	}
	v := readBits(r.b, r.off, n)
	r.off += uint64(n)
	return v
}

// exactInt reports whether v is an integer a float64 holds exactly and
// that reads back with the same bits (not -0).
func exactInt(v float64) bool {
	return v == math.Trunc(v) && math.Abs(v) <= maxExact && !(v == 0 && math.Signbit(v))
}

// putColumn encodes vals (at most 64).
func (e *encBuf) putColumn(vals []float64) {
	ints := true
	lo, hi := int64(0), int64(0)
	for i, v := range vals {
		if !exactInt(v) {
			ints = false
			break
		}
		n := int64(v)
		if i == 0 || n < lo {
			lo = n
		}
		if i == 0 || n > hi {
			hi = n
		}
	}
	if ints {
		width := uint(bits.Len64(uint64(hi - lo)))
		e.byte(kindFOR + byte(width))
		e.varint(lo)
		w := bitWriter{e: e}
		if width > 0 {
			for _, v := range vals {
				w.write(uint64(int64(v)-lo), width)
			}
		}
		w.flush()
		return
	}
	e.byte(kindXOR)
	at := e.n
	e.n += 2 // the stream's length, once written
	w := bitWriter{e: e}
	var prev uint64
	lead, trail := uint(64), uint(0) // no window yet
	for i, v := range vals {
		x := math.Float64bits(v)
		if i == 0 {
			w.write(x, 64)
			prev = x
			continue
		}
		d := x ^ prev
		prev = x
		if d == 0 {
			w.write(0, 1)
			continue
		}
		l, t := uint(bits.LeadingZeros64(d)), uint(bits.TrailingZeros64(d))
		l = min(l, 31)
		if l >= lead && t >= trail {
			w.write(0b10, 2)
			w.write(d>>trail, 64-lead-trail)
			continue
		}
		lead, trail = l, t
		sig := 64 - l - t
		w.write(0b11, 2)
		w.write(uint64(l), 5)
		w.write(uint64(sig%64), 6) // 64 significant bits are written as 0
		w.write(d>>t, sig)
	}
	w.flush()
	e.putUint16(at, e.n-at-2)
}

// column is a parsed column of n values.
type column struct {
	kind  byte
	ref   int64
	width uint
	data  []byte
	vals  []float64 // kindXOR, decoded
}

func (c *column) at(i int) float64 {
	if c.kind == kindFOR {
		if c.width == 0 {
			return float64(c.ref)
		}
		return float64(c.ref + int64(readBits(c.data, uint64(i)*uint64(c.width), c.width)))
	}
	return c.vals[i]
}

// decode writes the column's values to out (len: the column's count).
func (c *column) decode(out []float64) {
	switch {
	case c.kind != kindFOR:
		copy(out, c.vals)
	case c.width == 0:
		for i := range out {
			out[i] = float64(c.ref)
		}
	default:
		w, data := c.width, c.data
		for i := range out {
			off := uint64(i) * uint64(w)
			var v uint64
			if bi := off / 8; w <= 56 && bi+8 <= uint64(len(data)) {
				v = binary.BigEndian.Uint64(data[bi:]) << (off % 8) >> (64 - w)
			} else {
				v = readBitsSlow(data, off, w)
			}
			out[i] = float64(c.ref + int64(v))
		}
	}
}

// parseColumn reads a column of n values off b and returns the rest.
// Damaged input is an error, never a panic or a read out of bounds.
func parseColumn(b []byte, n int, c *column) ([]byte, error) {
	if len(b) < 1 {
		return nil, errBlock
	}
	kind := b[0]
	b = b[1:]
	switch {
	case kind <= kindFOR+64:
		ref, k := binary.Varint(b)
		if k <= 0 {
			return nil, errBlock
		}
		c.kind, c.ref, c.width, b = kindFOR, ref, uint(kind-kindFOR), b[k:]
		size := (n*int(c.width) + 7) / 8
		if size > len(b) {
			return nil, errBlock
		}
		// The rest of the block stays readable past the column's own
		// bytes, for readBits' 8-byte loads.
		c.data, b = b, b[size:]
		return b, nil
	case kind == kindXOR:
		c.kind = kindXOR
		if len(b) < 2 {
			return nil, errBlock
		}
		size := int(binary.LittleEndian.Uint16(b))
		if size > len(b)-2 {
			return nil, errBlock
		}
		c.data, b = b[2:2+size], b[2+size:]
		c.vals = make([]float64, n)
		if err := decodeXOR(c.data, c.vals); err != nil {
			return nil, err
		}
		return b, nil
	}
	return nil, errBlock
}

func decodeXOR(b []byte, out []float64) error {
	r := bitReader{b: b}
	var prev uint64
	var lead, trail uint
	for i := range out {
		if i == 0 {
			prev = r.read(64)
		} else if r.read(1) == 1 {
			if r.read(1) == 1 {
				lead = uint(r.read(5))
				sig := uint(r.read(6))
				if sig == 0 {
					sig = 64
				}
				if lead+sig > 64 {
					return errBlock
				}
				trail = 64 - lead - sig
			}
			prev ^= r.read(64-lead-trail) << trail
		}
		if r.bad {
			return errBlock
		}
		out[i] = math.Float64frombits(prev)
	}
	return nil
}

// block is a parsed block: which of its slots are present, and its columns
// (one value per present slot, in slot order).
type block struct {
	mask uint64
	cols [4]column
}

// putBlock encodes a block of slots slots (at most 64) whose present
// ones are mask, with cols columns of one value per present slot.
func (e *encBuf) putBlock(slots int, mask uint64, cols ...[]float64) {
	e.reset()
	if mask == fullMask(slots) {
		e.byte(0)
	} else {
		e.uvarint(mask)
	}
	for _, c := range cols {
		e.putColumn(c)
	}
}

// encodeBlock is putBlock into a new slice.
func encodeBlock(slots int, mask uint64, cols ...[]float64) []byte {
	var e encBuf
	e.putBlock(slots, mask, cols...)
	return append([]byte(nil), e.bytes()...)
}

func fullMask(slots int) uint64 { return 1<<uint(slots) - 1 }

// parseBlock reads a block of slots slots and ncols columns, checking that
// it is whole.
func parseBlock(b []byte, slots, ncols int, out *block) error {
	m, k := binary.Uvarint(b)
	if k <= 0 {
		return errBlock
	}
	if m == 0 {
		m = fullMask(slots)
	}
	if m&^fullMask(slots) != 0 {
		return errBlock
	}
	out.mask = m
	b = b[k:]
	n := bits.OnesCount64(m)
	var err error
	for i := range ncols {
		if b, err = parseColumn(b, n, &out.cols[i]); err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d bytes after its columns", errBlock, len(b))
	}
	return nil
}

// rank is the index among the present values of slot i.
func (bl *block) rank(i int) int { return bits.OnesCount64(bl.mask & (1<<uint(i) - 1)) }

// blockRing keeps the encoded blocks of keys (head-n, head] in one buffer,
// so a block costs its bytes and six more, not a slice of its own. A block
// replaced or aged out leaves its bytes behind until the buffer is
// compacted, which happens when they are a quarter of it: amortized O(1).
type blockRing struct {
	head int64
	off  []uint32
	size []uint16 // 0: the key has no block
	buf  []byte
	dead int
}

func newBlockRing(n int) blockRing {
	return blockRing{off: make([]uint32, n), size: make([]uint16, n)}
}

func (r *blockRing) slot(k int64) int { return int(mod(k, int64(len(r.off)))) }

func (r *blockRing) holds(k int64) bool { return k <= r.head && k > r.head-int64(len(r.off)) }

// get returns key k's block, nil if it has none.
func (r *blockRing) get(k int64) []byte {
	if !r.holds(k) {
		return nil
	}
	i := r.slot(k)
	if r.size[i] == 0 {
		return nil
	}
	return r.buf[r.off[i] : r.off[i]+uint32(r.size[i])]
}

// advance moves the head to k if it is newer, dropping the keys it passes.
func (r *blockRing) advance(k int64) {
	if k <= r.head {
		return
	}
	n := int64(len(r.off))
	for t := max(r.head+1, k-n+1); t <= k; t++ {
		i := r.slot(t)
		r.dead += int(r.size[i])
		r.size[i] = 0
	}
	r.head = k
	r.maybeCompact()
}

// set stores b (copied) as key k's block; the caller has advanced to k.
func (r *blockRing) set(k int64, b []byte) {
	if !r.holds(k) {
		return
	}
	if len(b) > math.MaxUint16 {
		panic("metricstore: block too large") // blocks hold at most 64 values of 4 columns
	}
	i := r.slot(k)
	r.dead += int(r.size[i])
	r.size[i] = 0
	if len(r.buf)+len(b) > cap(r.buf) {
		if live := len(r.buf) - r.dead; r.dead >= len(b)+live/32 {
			r.compact(len(b), 16) // dropped blocks make the room
		} else {
			r.compact(len(b), 4)
		}
	}
	r.off[i], r.size[i] = uint32(len(r.buf)), uint16(len(b))
	r.buf = append(r.buf, b...)
	r.maybeCompact()
}

func (r *blockRing) maybeCompact() {
	if r.dead < 64 || r.dead*8 < len(r.buf) {
		return
	}
	r.compact(0, 16)
}

// compact copies the live blocks to a new buffer with room for extra more
// bytes and 1/slack of slack. The buffer grows here, not by append's
// doubling: by a quarter when what it holds outgrows it (so filling it
// costs O(1) a byte), by a sixteenth when dropped blocks make the room
// (the steady state, where a block replaces an older one each minute).
func (r *blockRing) compact(extra, slack int) {
	live := len(r.buf) - r.dead
	nb := make([]byte, 0, live+extra+(live+extra)/slack+64)
	for i, sz := range r.size {
		if sz == 0 {
			continue
		}
		o := r.off[i]
		r.off[i] = uint32(len(nb))
		nb = append(nb, r.buf[o:o+uint32(sz)]...)
	}
	r.buf, r.dead = nb, 0
}

// trim gives back the room a fill left, once it has ended (a backfill, a
// snapshot read).
func (r *blockRing) trim() {
	if live := len(r.buf) - r.dead; cap(r.buf) > live+live/16+64 {
		r.compact(0, 16)
	}
}

func (r *blockRing) bytes() int64 { return int64(cap(r.buf) + 6*len(r.off)) }
