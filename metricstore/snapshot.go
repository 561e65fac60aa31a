package metricstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tripcap/tripcap"
)

// A snapshot keeps the store across a restart: every series' 1-second
// points and 1-minute rollups, so charts and rule windows go on where they
// were. The server writes one every SnapshotEvery and when it stops (Run),
// and reads it back at start (New). The format is tripcap's own, small and
// checked end to end:
//
//	magic "tripcap-metrics\n", uvarint version
//	uvarint series, then for each: key (three uvarint-length strings),
//	  varint rawHead, uvarint points, per point uvarint age (rawHead-sec) and float64;
//	  varint rollHead, uvarint buckets, per bucket uvarint age (rollHead-b),
//	  uvarint count, float64 sum, min, max
//	CRC-32 (IEEE) of everything before it, 4 bytes little-endian.
//
// Points and buckets are listed newest first, so a reader keeps what fits
// its own rings (a store restarted with a shorter Raw or Rollup).
const (
	snapshotMagic   = "tripcap-metrics\n"
	snapshotVersion = 1
	// Bounds a reader holds a snapshot to, so a damaged file cannot ask
	// for unbounded memory: no key string is longer, no ring larger.
	maxSnapshotString = 1024
	maxSnapshotRing   = 400 * 24 * 3600
	// DefaultSnapshotEvery is how often Run writes a snapshot: a crash
	// loses at most this much history.
	DefaultSnapshotEvery = time.Minute
)

// WriteSnapshot writes the store to w.
func (s *Store) WriteSnapshot(w io.Writer) error {
	s.mu.RLock()
	keys := make([]Key, 0, len(s.series))
	for k := range s.series {
		keys = append(keys, k)
	}
	s.mu.RUnlock()
	slices.SortFunc(keys, compareKeys)

	crc := crc32.NewIEEE()
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 256<<10)
	e := encoder{w: bw}
	e.bytes([]byte(snapshotMagic))
	e.uvarint(snapshotVersion)
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		s.mu.RLock()
		ser := s.series[k]
		s.mu.RUnlock()
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
	rawLen := int64(len(ser.raw))
	var n uint64
	for t := ser.rawHead; t > ser.rawHead-rawLen; t-- {
		if !math.IsNaN(ser.raw[mod(t, rawLen)]) {
			n++
		}
	}
	e.varint(ser.rawHead)
	e.uvarint(n)
	for t := ser.rawHead; t > ser.rawHead-rawLen; t-- {
		if v := ser.raw[mod(t, rawLen)]; !math.IsNaN(v) {
			e.uvarint(uint64(ser.rawHead - t))
			e.float(v)
		}
	}
	rollLen := int64(len(ser.count))
	n = 0
	for b := ser.rollHead; b > ser.rollHead-rollLen; b-- {
		if ser.count[mod(b, rollLen)] > 0 {
			n++
		}
	}
	e.varint(ser.rollHead)
	e.uvarint(n)
	for b := ser.rollHead; b > ser.rollHead-rollLen; b-- {
		i := mod(b, rollLen)
		if ser.count[i] > 0 {
			e.uvarint(uint64(ser.rollHead - b))
			e.uvarint(uint64(ser.count[i]))
			e.float(ser.sum[i])
			e.float(ser.min[i])
			e.float(ser.max[i])
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
	if v := d.uvarint(); d.err == nil && v != snapshotVersion {
		return fmt.Errorf("metrics snapshot: version %d, this server reads %d", v, snapshotVersion)
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
		ser.readFrom(&d)
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
	if s.series[k] != nil {
		return
	}
	h, ok := s.admitLocked(k)
	if !ok {
		return
	}
	s.series[k] = ser
	if sec := ser.newest(); sec > h.newest {
		h.newest = sec
	}
}

func (ser *series) readFrom(d *decoder) {
	head := d.varint()
	n := d.count()
	rawLen := int64(len(ser.raw))
	ser.rawHead = head
	for range n {
		age, v := d.uvarint(), d.float()
		if d.err != nil {
			return
		}
		if age < uint64(rawLen) {
			ser.raw[mod(head-int64(age), rawLen)] = v
		}
	}
	rhead := d.varint()
	n = d.count()
	rollLen := int64(len(ser.count))
	ser.rollHead = rhead
	for range n {
		age, c := d.uvarint(), d.uvarint()
		sum, lo, hi := d.float(), d.float(), d.float()
		if d.err != nil {
			return
		}
		if c == 0 || c > math.MaxUint32 {
			d.err = fmt.Errorf("rollup count %d", c)
			return
		}
		if age < uint64(rollLen) {
			i := mod(rhead-int64(age), rollLen)
			ser.count[i], ser.sum[i], ser.min[i], ser.max[i] = uint32(c), sum, lo, hi
		}
	}
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

func (d *decoder) string() string {
	n := d.uvarint()
	if n > maxSnapshotString {
		d.fail("a string of %d bytes", n)
		return ""
	}
	return string(d.bytes(int(n)))
}
