package metricstore

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/tripcap/tripcap"
)

const (
	minuteSlots = rollupStep // seconds in a raw block
	rollSlots   = 64         // minutes in a rollup block
	rollShift   = 6          // log2(rollSlots): bucket b is in block b>>rollShift
)

// bucket is one minute's rollup.
type bucket struct {
	count         uint32
	sum, min, max float64
}

func (b *bucket) add(v float64) {
	if b.count == 0 || v < b.min {
		b.min = v
	}
	if b.count == 0 || v > b.max {
		b.max = v
	}
	b.count++
	b.sum += v
}

// series is one time series: its 1-second points over the raw window and
// its 1-minute rollups over the rollup window. The minute in progress is
// plain (head, cur), so appends in order and reads of the last seconds
// cost what a ring's do; closed minutes are encoded blocks (chunk.go).
//
// A point at second sec stands for (sec-1, sec]; minute m holds seconds
// (60m, 60m+60], slot sec-60m-1 of its block, so minutes line up with
// query intervals. Rollup bucket b is minute b, slot b%64 of rollup block
// b/64.
//
// What an append in order touches comes first, so it takes the fewest
// cache lines: a server appends to every series every second.
type series struct {
	mu sync.Mutex
	// rawHead is the newest second; the window is (rawHead-rawLen, rawHead].
	rawHead int64
	// rollHead is the newest bucket, held in cur; the window is
	// (rollHead-rollLen, rollHead].
	rollHead int64
	rawLen   int64 // seconds in the raw window
	rollLen  int64 // buckets in the rollup window
	cur      bucket
	// acct is the store's running total of series bytes (nil while the
	// series is no store's), held what it counts of this series; resized
	// says the bytes may have changed since.
	acct    *atomic.Int64
	held    int64
	resized bool
	// head holds the seconds of minute headMinute(); NaN where none.
	head [minuteSlots]float64
	raw  blockRing // closed minutes, keyed by minute, up to headMinute()-1
	roll blockRing // closed buckets, keyed by rollup block
	// decoded holds the last closed minutes decoded, each once a read
	// needed it (by minute, modulo decodedMinutes): rules at a 1-second
	// frequency read them every second (a window of a minute always
	// reaches into the minute just closed; a dynamic rule's lookback into
	// the three before), which would otherwise parse and decode their
	// blocks each time. Series no rule reads have none.
	decoded []*decodedMinute
}

// decodedMinutes is how many closed minutes back reads are kept decoded:
// a 1-second rule with a lookback of four periods of a minute.
const decodedMinutes = 5

// decodedMinute is a closed minute's present values in slot order.
type decodedMinute struct {
	key  int64
	mask uint64
	used bool // read since the last minute closed
	vals [minuteSlots]float64
}

// setRaw stores closed minute k's block, forgetting what was decoded of it.
func (s *series) setRaw(k int64, b []byte) {
	s.resized = true
	s.raw.set(k, b)
	if s.decoded != nil {
		if c := s.decoded[mod(k, decodedMinutes)]; c != nil && c.key == k {
			s.decoded[mod(k, decodedMinutes)] = nil
		}
	}
}

// ageDecoded gives back, as a minute closes, the decoded minutes no read
// used during the last one.
func (s *series) ageDecoded() {
	if s.decoded == nil {
		return
	}
	s.resized = true
	left := false
	for i, c := range s.decoded {
		switch {
		case c == nil:
		case !c.used:
			s.decoded[i] = nil
		default:
			c.used, left = false, true
		}
	}
	if !left {
		s.decoded = nil
	}
}

func newSeries(rawLen, rollupLen int64) *series {
	s := &series{
		rawLen: rawLen, rollLen: rollupLen,
		raw:  newBlockRing(int(ceilDiv(rawLen, minuteSlots))),
		roll: newBlockRing(int(rollupLen/rollSlots) + 2),
	}
	s.clearHead()
	return s
}

func (s *series) clearHead() {
	for i := range s.head {
		s.head[i] = math.NaN()
	}
}

func (s *series) headMinute() int64 { return floorDiv(s.rawHead-1, rollupStep) }

func minuteOf(sec int64) (m int64, slot int) {
	m = floorDiv(sec-1, rollupStep)
	return m, int(sec - 1 - m*rollupStep)
}

// bytes is the memory the series holds; s.mu is held.
func (s *series) bytes() int64 {
	b := int64(unsafe.Sizeof(*s)) + s.raw.bytes() + s.roll.bytes()
	if s.decoded != nil {
		b += int64(cap(s.decoded)) * int64(unsafe.Sizeof(uintptr(0)))
		for _, c := range s.decoded {
			if c != nil {
				b += int64(unsafe.Sizeof(*c))
			}
		}
	}
	return b
}

// account brings the store's total up to date after the series changed;
// s.mu is held. Buffers change size seldom: once a minute, not per point.
func (s *series) account() {
	if s.acct == nil || !s.resized {
		return
	}
	s.resized = false
	if b := s.bytes(); b != s.held {
		s.acct.Add(b - s.held)
		s.held = b
	}
}

type addOutcome int

const (
	addStored addOutcome = iota
	addDuplicate
	addTooOld
)

func (s *series) newest() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.rawHead, s.rollHead*rollupStep+rollupStep)
}

func (s *series) add(sec int64, v float64) addOutcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ed editor
	out := s.addLocked(sec, v, &ed)
	ed.flush(s)
	s.account()
	return out
}

// addLocked stores a point: in the raw window if it is there, and in its
// minute's rollup. Closed minutes change through ed, which the caller flushes.
func (s *series) addLocked(sec int64, v float64, ed *editor) addOutcome {
	if sec > s.rawHead {
		ed.flush(s)
		s.advanceRaw(sec)
	}
	inRaw := sec > s.rawHead-s.rawLen
	m, slot := minuteOf(sec)
	if inRaw {
		if m == s.headMinute() {
			if !math.IsNaN(s.head[slot]) {
				return addDuplicate
			}
			s.head[slot] = v
		} else {
			r := ed.rawMinute(s, m)
			if r.mask&(1<<uint(slot)) != 0 {
				return addDuplicate
			}
			r.mask |= 1 << uint(slot)
			r.vals[slot] = v
			r.dirty = true
		}
	}
	if m > s.rollHead {
		ed.flush(s)
		s.advanceRoll(m)
	}
	if m <= s.rollHead-s.rollLen {
		if inRaw {
			return addStored
		}
		return addTooOld
	}
	s.bucketFor(m, ed).add(v)
	return addStored
}

// bucketFor returns bucket b (in the rollup window) to change.
func (s *series) bucketFor(b int64, ed *editor) *bucket {
	if b == s.rollHead {
		return &s.cur
	}
	r := ed.rollBlock(s, b>>rollShift)
	i := int((b & (rollSlots - 1)))
	if r.mask&(1<<uint(i)) == 0 {
		r.mask |= 1 << uint(i)
		r.bk[i] = bucket{}
	}
	r.dirty = true
	return &r.bk[i]
}

// advanceRaw makes sec the newest second: a new minute closes the head's
// into a block, and minutes the window leaves are dropped.
func (s *series) advanceRaw(sec int64) {
	hm := s.headMinute()
	m, _ := minuteOf(sec)
	s.rawHead = sec
	if m == hm {
		return
	}
	s.resized = true
	s.raw.advance(m - 1)
	s.ageDecoded()
	var mask uint64
	var vals [minuteSlots]float64
	n := 0
	for i, v := range s.head {
		if !math.IsNaN(v) {
			mask |= 1 << uint(i)
			vals[n] = v
			n++
		}
	}
	if mask != 0 && s.raw.holds(hm) {
		var e encBuf
		e.putBlock(minuteSlots, mask, vals[:n])
		s.setRaw(hm, e.bytes())
	}
	s.clearHead()
}

// advanceRoll makes b the newest bucket, closing cur into its block.
func (s *series) advanceRoll(b int64) {
	if s.cur.count > 0 {
		var ed editState
		r := ed.rollBlock(s, s.rollHead>>rollShift)
		i := int((s.rollHead & (rollSlots - 1)))
		r.mask |= 1 << uint(i)
		r.bk[i] = s.cur
		r.dirty = true
		ed.flushRoll(s)
	}
	s.rollHead, s.cur = b, bucket{}
	s.resized = true
	s.roll.advance(b >> rollShift)
}

// editor holds a closed minute and a rollup block decoded while points
// change them, so a run of changes to one block encodes it once. It must
// be flushed before the heads move (addLocked does) and at the end. Its
// state is allocated when first needed: appends in order never need it.
type editor struct{ st *editState }

type editState struct {
	rawOpen  bool
	rawKey   int64
	raw      rawEdit
	rollOpen bool
	rollKey  int64
	roll     rollEdit
}

type rawEdit struct {
	dirty bool
	mask  uint64
	vals  [minuteSlots]float64 // by slot
}

type rollEdit struct {
	dirty bool
	mask  uint64
	bk    [rollSlots]bucket // by slot
}

func (ed *editor) state() *editState {
	if ed.st == nil {
		ed.st = new(editState)
	}
	return ed.st
}

func (ed *editor) rawMinute(s *series, m int64) *rawEdit { return ed.state().rawMinute(s, m) }

func (ed *editor) rollBlock(s *series, k int64) *rollEdit { return ed.state().rollBlock(s, k) }

func (ed *editor) flush(s *series) {
	if ed.st != nil {
		ed.st.flushRaw(s)
		ed.st.flushRoll(s)
	}
}

func (ed *editState) rawMinute(s *series, m int64) *rawEdit {
	if ed.rawOpen && ed.rawKey == m {
		return &ed.raw
	}
	ed.flushRaw(s)
	ed.rawOpen, ed.rawKey, ed.raw.dirty, ed.raw.mask = true, m, false, 0
	if b := s.raw.get(m); b != nil {
		var bl block
		if parseBlock(b, minuteSlots, 1, &bl) == nil {
			ed.raw.mask = bl.mask
			for j, it := 0, bl.mask; it != 0; j, it = j+1, it&(it-1) {
				ed.raw.vals[bits.TrailingZeros64(it)] = bl.cols[0].at(j)
			}
		}
	}
	return &ed.raw
}

func (ed *editState) rollBlock(s *series, k int64) *rollEdit {
	if ed.rollOpen && ed.rollKey == k {
		return &ed.roll
	}
	ed.flushRoll(s)
	ed.rollOpen, ed.rollKey, ed.roll.dirty, ed.roll.mask = true, k, false, 0
	if b := s.roll.get(k); b != nil {
		var bl block
		if parseBlock(b, rollSlots, 4, &bl) == nil {
			ed.roll.mask = bl.mask
			for j, it := 0, bl.mask; it != 0; j, it = j+1, it&(it-1) {
				ed.roll.bk[bits.TrailingZeros64(it)] = bl.bucket(j)
			}
		}
	}
	return &ed.roll
}

func (ed *editState) flushRaw(s *series) {
	if !ed.rawOpen {
		return
	}
	ed.rawOpen = false
	if !ed.raw.dirty || !s.raw.holds(ed.rawKey) {
		return
	}
	var vals [minuteSlots]float64
	n := 0
	for it := ed.raw.mask; it != 0; it &= it - 1 {
		vals[n] = ed.raw.vals[bits.TrailingZeros64(it)]
		n++
	}
	var e encBuf
	e.putBlock(minuteSlots, ed.raw.mask, vals[:n])
	s.setRaw(ed.rawKey, e.bytes())
}

func (ed *editState) flushRoll(s *series) {
	if !ed.rollOpen {
		return
	}
	ed.rollOpen = false
	if !ed.roll.dirty {
		return
	}
	s.resized = true
	s.roll.advance(ed.rollKey) // a block newer than the head's (a backfilled rollup)
	if !s.roll.holds(ed.rollKey) {
		return
	}
	var count, sum, lo, hi [rollSlots]float64
	n := 0
	for it := ed.roll.mask; it != 0; it &= it - 1 {
		b := ed.roll.bk[bits.TrailingZeros64(it)]
		count[n], sum[n], lo[n], hi[n] = float64(b.count), b.sum, b.min, b.max
		n++
	}
	var e encBuf
	e.putBlock(rollSlots, ed.roll.mask, count[:n], sum[:n], lo[:n], hi[:n])
	s.roll.set(ed.rollKey, e.bytes())
}

func (bl *block) bucket(j int) bucket {
	return bucket{count: uint32(bl.cols[0].at(j)), sum: bl.cols[1].at(j), min: bl.cols[2].at(j), max: bl.cols[3].at(j)}
}

// reader keeps the blocks a read last parsed, so reads that walk a window
// interval by interval parse each block once. A rollup block read often
// (a long window, or one bucket per grain) is decoded whole, once.
type reader struct {
	rawKey, rollKey int64
	rawOK, rollOK   bool
	rawHas, rollHas bool
	rawBl, rollBl   block
	rollReads       int
	rawDecoded      bool
	rollDecoded     bool
	rawDec          [minuteSlots]float64 // the decoded values of rawBl
	// rawRecent, when set, holds the values of rawBl in place of rawDec:
	// the series' decoded minute (a pointer to the series, not into rd,
	// so a reader stays on its caller's stack).
	rawRecent *decodedMinute
	dec       [4][rollSlots]float64 // the decoded columns of rollBl
}

// decodeAfter is how many buckets of a block are read one by one before
// the block is decoded whole: decoding costs about as much as that many.
const decodeAfter = 16

// rawBlock returns closed minute m parsed, decoded whole when reads (how
// many of its seconds the caller is about to read) is many.
func (rd *reader) rawBlock(s *series, m int64, reads int) *block {
	if !rd.rawOK || rd.rawKey != m {
		rd.rawOK, rd.rawKey, rd.rawDecoded, rd.rawRecent = true, m, false, nil
		hm := s.headMinute()
		keep := m < hm && m >= hm-decodedMinutes
		slot := mod(m, decodedMinutes)
		if keep && s.decoded != nil {
			if c := s.decoded[slot]; c != nil && c.key == m {
				c.used = true
				rd.rawBl.mask = c.mask
				rd.rawHas, rd.rawDecoded, rd.rawRecent = true, true, c
				return &rd.rawBl
			}
		}
		b := s.raw.get(m)
		rd.rawHas = b != nil && parseBlock(b, minuteSlots, 1, &rd.rawBl) == nil
		if rd.rawHas && keep {
			// Decoded once for the reads of the coming seconds, however
			// few this one needs.
			if s.decoded == nil {
				s.decoded = make([]*decodedMinute, decodedMinutes)
			}
			c := s.decoded[slot]
			if c == nil {
				c = new(decodedMinute)
				s.decoded[slot] = c
			}
			c.key, c.mask, c.used = m, rd.rawBl.mask, true
			rd.rawBl.cols[0].decode(c.vals[:bits.OnesCount64(rd.rawBl.mask)])
			rd.rawDecoded, rd.rawRecent = true, c
			s.resized = true
			s.account()
		}
	}
	if !rd.rawHas {
		return nil
	}
	if !rd.rawDecoded && reads >= decodeAfter {
		rd.rawBl.cols[0].decode(rd.rawDec[:bits.OnesCount64(rd.rawBl.mask)])
		rd.rawDecoded = true
	}
	return &rd.rawBl
}

// rawValue is the j-th present value of the block rawBlock returned.
func (rd *reader) rawValue(j int) float64 {
	if rd.rawRecent != nil {
		return rd.rawRecent.vals[j]
	}
	if rd.rawDecoded {
		return rd.rawDec[j]
	}
	return rd.rawBl.cols[0].at(j)
}

// rollBlock returns rollup block k parsed; reads is how many of its
// buckets the caller is about to read.
func (rd *reader) rollBlock(s *series, k int64, reads int) *block {
	if !rd.rollOK || rd.rollKey != k {
		rd.rollOK, rd.rollKey, rd.rollReads, rd.rollDecoded = true, k, 0, false
		b := s.roll.get(k)
		rd.rollHas = b != nil && parseBlock(b, rollSlots, 4, &rd.rollBl) == nil
	}
	if !rd.rollHas {
		return nil
	}
	rd.rollReads += reads
	if !rd.rollDecoded && rd.rollReads >= decodeAfter {
		n := bits.OnesCount64(rd.rollBl.mask)
		for c := range rd.dec {
			rd.rollBl.cols[c].decode(rd.dec[c][:n])
		}
		rd.rollDecoded = true
	}
	return &rd.rollBl
}

// bucket is the j-th present bucket of the block rollBlock returned.
func (rd *reader) bucket(j int) bucket {
	if rd.rollDecoded {
		return bucket{count: uint32(rd.dec[0][j]), sum: rd.dec[1][j], min: rd.dec[2][j], max: rd.dec[3][j]}
	}
	return rd.rollBl.bucket(j)
}

// eachRaw calls fn for the points of seconds [from, to] in the raw window, in order.
func (s *series) eachRaw(rd *reader, from, to int64, fn func(sec int64, v float64)) {
	from = max(from, s.rawHead-s.rawLen+1)
	to = min(to, s.rawHead)
	if to < from {
		return
	}
	hm := s.headMinute()
	m0, _ := minuteOf(from)
	m1, _ := minuteOf(to)
	for m := m0; m <= m1; m++ {
		lo, hi := 0, minuteSlots-1
		if m == m0 {
			_, lo = minuteOf(from)
		}
		if m == m1 {
			_, hi = minuteOf(to)
		}
		base := m*rollupStep + 1
		if m == hm {
			for i := lo; i <= hi; i++ {
				if v := s.head[i]; !math.IsNaN(v) {
					fn(base+int64(i), v)
				}
			}
			continue
		}
		bl := rd.rawBlock(s, m, hi-lo+1)
		if bl == nil {
			continue
		}
		want := bl.mask & (fullMask(hi+1) &^ fullMask(lo))
		for j, it := bl.rank(lo), want; it != 0; j, it = j+1, it&(it-1) {
			fn(base+int64(bits.TrailingZeros64(it)), rd.rawValue(j))
		}
	}
}

// eachBucket calls fn for the buckets [from, to] with points in the rollup window, in order.
func (s *series) eachBucket(rd *reader, from, to int64, fn func(b int64, bk bucket)) {
	from = max(from, s.rollHead-s.rollLen+1)
	to = min(to, s.rollHead)
	if to < from {
		return
	}
	for k, last := from>>rollShift, to>>rollShift; k <= last; k++ {
		lo, hi := int(max(from-k*rollSlots, 0)), int(min(to-k*rollSlots, rollSlots-1))
		bl := rd.rollBlock(s, k, hi-lo+1)
		if bl == nil {
			continue
		}
		want := bl.mask & (fullMask(hi+1) &^ fullMask(lo))
		for j, it := bl.rank(lo), want; it != 0; j, it = j+1, it&(it-1) {
			fn(k*rollSlots+int64(bits.TrailingZeros64(it)), rd.bucket(j))
		}
	}
	if to == s.rollHead && s.cur.count > 0 {
		fn(s.rollHead, s.cur)
	}
}

// minuteGrains reduces buckets [first, last] in grains of perGrain
// buckets from first, calling fn with each grain's index and summary when
// it has points: the buckets merged in order, as summarize merges them, in
// one pass. All, when not nil, gets every bucket merged in order: what
// summarize gives for the whole minutes.
func (s *series) minuteGrains(rd *reader, first, last, perGrain int64, all *tripcap.Summary, fn func(i int64, sum tripcap.Summary)) {
	var cur tripcap.Summary
	at := int64(0)
	s.eachBucket(rd, first, last, func(b int64, bk bucket) {
		if i := (b - first) / perGrain; i != at {
			if cur.Count > 0 {
				fn(at, cur)
			}
			cur, at = tripcap.Summary{}, i
		}
		sum := tripcap.Summary{Count: int64(bk.count), Sum: bk.sum, Min: bk.min, Max: bk.max}
		cur.Merge(sum)
		if all != nil {
			all.Merge(sum)
		}
	})
	if cur.Count > 0 {
		fn(at, cur)
	}
}

// summarize reduces seconds [from, to]: whole minutes from the rollups,
// the other seconds from the raw window where it still holds them.
func (s *series) summarize(rd *reader, from, to int64) tripcap.Summary {
	var sum tripcap.Summary
	if to < from {
		return sum
	}
	add := func(_ int64, v float64) { sum.Add(v) }
	firstFull := ceilDiv(from-1, rollupStep) // first bucket whose seconds start at or after from
	lastFull := floorDiv(to, rollupStep) - 1 // last bucket whose seconds end at or before to
	if firstFull > lastFull {
		s.eachRaw(rd, from, to, add)
		return sum
	}
	s.eachRaw(rd, from, firstFull*rollupStep, add)
	s.eachBucket(rd, firstFull, lastFull, func(_ int64, b bucket) {
		sum.Merge(tripcap.Summary{Count: int64(b.count), Sum: b.sum, Min: b.min, Max: b.max})
	})
	s.eachRaw(rd, (lastFull+1)*rollupStep+1, to, add)
	return sum
}

// held records which rollup minutes a series had points of when a
// backfill began: a bitset over the rollup window then.
type held struct {
	base int64 // the first bucket of the window
	bits []uint64
}

func (h *held) has(b int64) bool {
	i := b - h.base
	return i >= 0 && i < int64(len(h.bits))*64 && h.bits[i/64]&(1<<uint(i%64)) != 0
}

// heldBuckets lists the buckets with points now.
func (s *series) heldBuckets() held {
	h := held{base: s.rollHead - s.rollLen + 1, bits: make([]uint64, (s.rollLen+63)/64)}
	var rd reader
	s.eachBucket(&rd, h.base, s.rollHead, func(b int64, _ bucket) {
		i := b - h.base
		h.bits[i/64] |= 1 << uint(i%64)
	})
	return h
}

// backfillPoint adds a second of history. In the raw window it is Append's
// add; older, it may only add to a rollup minute the store had none of
// when the backfill began (had), which this backfill is building.
func (s *series) backfillPoint(sec int64, v float64, had *held, ed *editor) addOutcome {
	if sec > s.rawHead-s.rawLen {
		return s.addLocked(sec, v, ed)
	}
	b, _ := minuteOf(sec)
	if b <= s.rollHead-s.rollLen {
		return addTooOld
	}
	if had.has(b) {
		return addDuplicate
	}
	s.bucketFor(b, ed).add(v)
	return addStored
}

// backfillBucket takes a rollup minute as given, unless the store had any
// point of that minute when the backfill began; it replaces what the
// backfill's raw seconds built of the minute, which the whole minute's
// rollup supersedes.
func (s *series) backfillBucket(bk RollupBucket, had *held, ed *editor) addOutcome {
	b := bk.Minute / rollupStep
	if b <= s.rollHead-s.rollLen {
		return addTooOld
	}
	if had.has(b) {
		return addDuplicate
	}
	if b > s.rollHead {
		ed.flush(s)
		s.advanceRoll(b)
	}
	*s.bucketFor(b, ed) = bucket{count: bk.Count, sum: bk.Sum, min: bk.Min, max: bk.Max}
	return addStored
}

// history lists the series' points at or after from: the raw window's
// seconds, and the rollups of the minutes before its first whole minute.
func (s *series) history(from int64) SeriesHistory {
	var h SeriesHistory
	var rd reader
	firstRaw := s.rollHead + 1 // no raw points: every rollup goes
	if s.rawHead > 0 {
		firstRaw = ceilDiv(s.rawHead-s.rawLen, rollupStep)
	}
	s.eachBucket(&rd, floorDiv(from-1, rollupStep), firstRaw-1, func(b int64, bk bucket) {
		h.Rollups = append(h.Rollups, RollupBucket{Minute: b * rollupStep, Sum: bk.sum, Min: bk.min, Max: bk.max, Count: bk.count})
	})
	if s.rawHead > 0 {
		s.eachRaw(&rd, from, s.rawHead, func(sec int64, v float64) {
			h.Raw = append(h.Raw, RawPoint{Sec: sec, Value: v})
		})
	}
	return h
}
