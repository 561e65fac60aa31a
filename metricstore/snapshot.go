package metricstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"time"

	"github.com/tripcap/tripcap"
)

// A snapshot keeps the store across a restart: every series' 1-second
// points and 1-minute rollups, so charts and rule windows go on where they
// were. The server writes one every SnapshotEvery and when it stops (Run),
// and reads it back at start (New). The format is tripcap's own, small and
// checked end to end:
//
//	magic "tripcap-metrics\n", uvarint version (2; 1 is still read)
//	uvarint series, then for each: key (three uvarint-length strings),
//	  varint rawHead, the head minute as a uvarint-length block (0: empty),
//	  the closed minutes: uvarint blocks, per block uvarint age (minutes
//	  before the head's) and the uvarint-length block;
//	  varint rollHead, uvarint count of its bucket and, when not 0,
//	  float64 sum, min, max; the rollup blocks: uvarint blocks, per block
//	  uvarint age (blocks before rollHead's) and the uvarint-length block
//	CRC-32 (IEEE) of everything before it, 4 bytes little-endian.
//
// Blocks are the store's own (chunk.go), written as held, so a snapshot is
// as compact as memory and is checked block by block when read. Blocks are
// listed newest first, so a reader keeps what fits its own rings (a store
// restarted with a shorter Raw or Rollup).
//
// Version 1 listed every point (uvarint age from rawHead, float64) and
// every bucket (uvarint age from rollHead, uvarint count, float64 sum,
// min, max), newest first.
const (
	snapshotMagic   = "tripcap-metrics\n"
	snapshotVersion = 2
	// Bounds a reader holds a snapshot to, so a damaged file cannot ask
	// for unbounded memory: no key string is longer, no ring larger.
	maxSnapshotString = 1024
	maxSnapshotRing   = 400 * 24 * 3600
	maxSnapshotBlock  = math.MaxUint16
	// DefaultSnapshotEvery is how often Run writes a snapshot: a crash
	// loses at most this much history.
	DefaultSnapshotEvery = time.Minute
)

// WriteSnapshot writes the store to w.
func (s *Store) WriteSnapshot(w io.Writer) error {
	keys := s.Keys()

	crc := crc32.NewIEEE()
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 256<<10)
	e := encoder{w: bw}
	e.bytes([]byte(snapshotMagic))
	e.uvarint(snapshotVersion)
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		ser := s.lookup(k)
		if ser == nil { // deleted meanwhile: write it empty
			ser = newSeries(1, 1)
		}
		e.string(k.Host)
		e.string(string(k.Metric))
		e.string(k.Interface)
		ser.mu.Lock()
		ser.writeTo(&e)
		ser.mu.Unlock()
	}
	if e.err == nil {
		e.err = bw.Flush()
	}
	if e.err != nil {
		return fmt.Errorf("writing metrics snapshot: %w", e.err)
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], crc.Sum32())
	if _, err := w.Write(sum[:]); err != nil {
		return fmt.Errorf("writing metrics snapshot: %w", err)
	}
	return nil
}

func (ser *series) writeTo(e *encoder) {
	e.varint(ser.rawHead)
	var mask uint64
	var vals []float64
	for i, v := range ser.head {
		if !math.IsNaN(v) {
			mask |= 1 << uint(i)
			vals = append(vals, v)
		}
	}
	if mask == 0 {
		e.uvarint(0)
	} else {
		e.block(encodeBlock(minuteSlots, mask, vals))
	}
	writeRing(e, &ser.raw, ser.headMinute()-1)
	e.varint(ser.rollHead)
	e.uvarint(uint64(ser.cur.count))
	if ser.cur.count > 0 {
		e.float(ser.cur.sum)
		e.float(ser.cur.min)
		e.float(ser.cur.max)
	}
	writeRing(e, &ser.roll, ser.rollHead>>rollShift)
}

// writeRing lists a ring's blocks newest first, by age from head.
func writeRing(e *encoder, r *blockRing, head int64) {
	var n uint64
	for k := head; k > head-int64(len(r.off)); k-- {
		if r.get(k) != nil {
			n++
		}
	}
	e.uvarint(n)
	for k := head; k > head-int64(len(r.off)); k-- {
		if b := r.get(k); b != nil {
			e.uvarint(uint64(head - k))
			e.block(b)
		}
	}
}

// ReadSnapshot adds a snapshot's series to the store, keeping what its
// rings and limits hold and what is still inside its windows. A damaged
// snapshot (a torn write, a wrong checksum) is refused whole, with nothing
// added; the error says where it went wrong.
func (s *Store) ReadSnapshot(r io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(r, 1<<40))
	if err != nil {
		return fmt.Errorf("reading metrics snapshot: %w", err)
	}
	if len(b) < len(snapshotMagic)+4 {
		return errors.New("metrics snapshot: too short to be one")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return errors.New("metrics snapshot: checksum mismatch (a torn or damaged file)")
	}
	d := decoder{b: body}
	if string(d.bytes(len(snapshotMagic))) != snapshotMagic {
		return errors.New("metrics snapshot: not a tripcap metrics snapshot")
	}
	version := d.uvarint()
	if d.err == nil && version != 1 && version != snapshotVersion {
		return fmt.Errorf("metrics snapshot: version %d, this server reads 1 and %d", version, snapshotVersion)
	}
	type restored struct {
		key Key
		ser *series
	}
	var out []restored
	nSeries := d.uvarint()
	for i := uint64(0); i < nSeries && d.err == nil; i++ {
		k := Key{Host: d.string(), Metric: tripcap.MetricID(d.string()), Interface: d.string()}
		ser := newSeries(s.rawLen, s.rollupLen)
		if version == 1 {
			ser.readV1(&d)
		} else {
			ser.readV2(&d)
		}
		ser.raw.trim()
		ser.roll.trim()
		if d.err != nil {
			break
		}
		if _, ok := k.Metric.Definition(); !ok || k.Host == "" {
			continue // a metric this server no longer has
		}
		out = append(out, restored{k, ser})
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d bytes after the last series", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("metrics snapshot at byte %d: %w", d.off, d.err)
	}
	cutoff := s.cfg.Now().Unix() - s.rollupLen*rollupStep
	for _, r := range out {
		if r.ser.newest() <= cutoff {
			continue
		}
		s.adopt(r.key, r.ser)
	}
	return nil
}

// adopt installs a restored series unless the store has one already or
// its limits are reached (then the snapshot's series is dropped).
func (s *Store) adopt(k Key, ser *series) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lookupLocked(k) != nil || !s.installLocked(k, ser) {
		return
	}
	s.hosts[k.Host].raiseNewest(ser.newest())
}

// readV1 reads a series as version 1 wrote it: every point and bucket.
func (ser *series) readV1(d *decoder) {
	head := d.varint()
	n := d.count()
	ser.rawHead = head
	ser.raw.advance(ser.headMinute() - 1)
	hm := ser.headMinute()
	var ed editor
	for range n {
		age, v := d.uvarint(), d.float()
		if d.err != nil {
			return
		}
		if !finite(v) {
			d.fail("a point that is not a finite number")
			return
		}
		if age >= uint64(ser.rawLen) {
			continue
		}
		m, slot := minuteOf(head - int64(age))
		if m == hm {
			ser.head[slot] = v
			continue
		}
		r := ed.rawMinute(ser, m)
		r.mask |= 1 << uint(slot)
		r.vals[slot] = v
		r.dirty = true
	}
	ed.flush(ser)
	rhead := d.varint()
	n = d.count()
	ser.rollHead = rhead
	ser.roll.advance(rhead >> rollShift)
	for range n {
		age, c := d.uvarint(), d.uvarint()
		sum, lo, hi := d.float(), d.float(), d.float()
		if d.err != nil {
			return
		}
		if c == 0 || c > math.MaxUint32 || !finite(sum) || !finite(lo) || !finite(hi) {
			d.fail("rollup of count %d, sum %g, min %g, max %g", c, sum, lo, hi)
			return
		}
		if age < uint64(ser.rollLen) {
			*ser.bucketFor(rhead-int64(age), &ed) = bucket{count: uint32(c), sum: sum, min: lo, max: hi}
		}
	}
	ed.flush(ser)
}

// readV2 reads a series as version 2 writes it: its blocks, each checked
// whole before it is kept.
func (ser *series) readV2(d *decoder) {
	ser.rawHead = d.varint()
	ser.raw.advance(ser.headMinute() - 1)
	if b := d.block(); len(b) > 0 {
		var bl block
		if !d.check(parseBlock(b, minuteSlots, 1, &bl)) || !d.checkValues(&bl, 1) {
			return
		}
		for j, it := 0, bl.mask; it != 0; j, it = j+1, it&(it-1) {
			ser.head[bits.TrailingZeros64(it)] = bl.cols[0].at(j)
		}
	}
	readRing(d, &ser.raw, ser.headMinute()-1, minuteSlots, 1)
	ser.rollHead = d.varint()
	ser.roll.advance(ser.rollHead >> rollShift)
	if c := d.uvarint(); c > 0 {
		ser.cur = bucket{count: uint32(c), sum: d.float(), min: d.float(), max: d.float()}
		if c > math.MaxUint32 || !finite(ser.cur.sum) || !finite(ser.cur.min) || !finite(ser.cur.max) {
			d.fail("rollup of count %d, sum %g, min %g, max %g", c, ser.cur.sum, ser.cur.min, ser.cur.max)
		}
	}
	readRing(d, &ser.roll, ser.rollHead>>rollShift, rollSlots, 4)
}

func readRing(d *decoder, r *blockRing, head int64, slots, cols int) {
	n := d.count()
	for range n {
		age := d.uvarint()
		b := d.block()
		var bl block
		if d.err != nil || !d.check(parseBlock(b, slots, cols, &bl)) || !d.checkValues(&bl, cols) {
			return
		}
		if age < uint64(len(r.off)) {
			r.set(head-int64(age), b)
		}
	}
}

func (d *decoder) check(err error) bool {
	if err != nil {
		d.fail("%v", err)
		return false
	}
	return true
}

// checkValues refuses a block whose values the store could not hold:
// numbers that are not finite, rollup counts that are not whole.
func (d *decoder) checkValues(bl *block, cols int) bool {
	n := bits.OnesCount64(bl.mask)
	for c := range cols {
		for j := range n {
			v := bl.cols[c].at(j)
			if !finite(v) || (cols == 4 && c == 0 && (v < 1 || v > math.MaxUint32 || v != math.Trunc(v))) {
				d.fail("a block value %g", v)
				return false
			}
		}
	}
	return true
}

// SaveSnapshot writes the store to path atomically: a temporary file beside
// it, synced, then renamed over it, so a crash leaves the old snapshot or
// the new one, never half of one. The file is mode 0600: metric history
// says what hosts did.
func (s *Store) SaveSnapshot(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("saving metrics snapshot: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("saving metrics snapshot: %w", err)
	}
	if err := s.WriteSnapshot(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("saving metrics snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving metrics snapshot: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("saving metrics snapshot: %w", err)
	}
	return nil
}

// LoadSnapshot reads the snapshot at path, if there is one. A damaged one
// is kept aside as path.damaged (nothing is lost: it can be inspected) and
// the store starts empty; that is reported in the error.
func (s *Store) LoadSnapshot(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("loading metrics snapshot: %w", err)
	}
	err = s.ReadSnapshot(f)
	f.Close()
	if err != nil {
		if rerr := os.Rename(path, path+".damaged"); rerr != nil {
			return fmt.Errorf("%w (and keeping it aside: %v)", err, rerr)
		}
		return fmt.Errorf("%w; kept aside as %s.damaged", err, path)
	}
	return nil
}

func compareKeys(a, b Key) int {
	if a.Host != b.Host {
		return cmpString(a.Host, b.Host)
	}
	if a.Metric != b.Metric {
		return cmpString(string(a.Metric), string(b.Metric))
	}
	return cmpString(a.Interface, b.Interface)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type encoder struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
	err error
}

func (e *encoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}
func (e *encoder) uvarint(v uint64) { e.bytes(binary.AppendUvarint(e.buf[:0], v)) }
func (e *encoder) varint(v int64)   { e.bytes(binary.AppendVarint(e.buf[:0], v)) }
func (e *encoder) float(v float64) {
	e.bytes(binary.LittleEndian.AppendUint64(e.buf[:0], math.Float64bits(v)))
}
func (e *encoder) string(s string) { e.uvarint(uint64(len(s))); e.bytes([]byte(s)) }
func (e *encoder) block(b []byte)  { e.uvarint(uint64(len(b))); e.bytes(b) }

type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.fail("truncated: %d bytes wanted, %d left", n, len(d.b))
		return nil
	}
	out := d.b[:n]
	d.b, d.off = d.b[n:], d.off+n
	return out
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b, d.off = d.b[n:], d.off+n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b, d.off = d.b[n:], d.off+n
	return v
}

// count reads a list length, bounded by a ring's largest size.
func (d *decoder) count() uint64 {
	n := d.uvarint()
	if n > maxSnapshotRing {
		d.fail("a list of %d entries", n)
		return 0
	}
	return n
}

func (d *decoder) float() float64 {
	b := d.bytes(8)
	if b == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

// block reads a length-prefixed block, bounded by the largest a block is.
func (d *decoder) block() []byte {
	n := d.uvarint()
	if n > maxSnapshotBlock {
		d.fail("a block of %d bytes", n)
		return nil
	}
	return d.bytes(int(n))
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > maxSnapshotString {
		d.fail("a string of %d bytes", n)
		return ""
	}
	return string(d.bytes(int(n)))
}
