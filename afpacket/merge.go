//go:build linux

package afpacket

import (
	"math"
	"time"
)

// Bounds of the merge of a session's interfaces.
const (
	// mergeBytes bounds the packet data held for ordering; past it the
	// oldest records are written whatever the other interfaces hold.
	mergeBytes = 16 << 20
	// mergeDelay bounds how long a record waits for a slow interface.
	mergeDelay = 2 * time.Second
	// mergeSkew is how far out of order one socket's packets may be
	// stamped (packets handled on different CPUs): an interface's records
	// are released only that far behind its newest one.
	mergeSkew = 2 * time.Millisecond
	// mergeSlab is the unit of memory records are copied into.
	mergeSlab = 1 << 20
)

// mergeRec is a packet held for ordering.
type mergeRec struct {
	ts      int64
	iface   int
	origLen int
	data    []byte
}

// merger puts the records of a session's interfaces in timestamp order
// before they are written: each interface's ring is read on its own, so
// without it records of different interfaces interleave out of order. It
// holds copies of the packets in a min-heap and releases every record
// stamped before the watermark, the earliest time up to which every active
// interface is known to have been read: for an interface whose last poll
// found nothing, a block timeout before that poll (the kernel hands over a
// block at most a block timeout after its first packet); for a busy one, a
// skew margin behind its newest packet. Memory (mergeBytes) and delay
// (mergeDelay) are bounded: past them records are released anyway. Its
// methods run with the session's writer lock held.
type merger struct {
	recs  []mergeRec
	held  int
	marks map[int]int64 // active interface → read up to
	slab  []byte
}

func newMerger() *merger { return &merger{marks: map[int]int64{}} }

// add makes an interface active, read up to from.
func (m *merger) add(iface int, from int64) { m.marks[iface] = from }

// remove takes an ended interface out of the watermark.
func (m *merger) remove(iface int) { delete(m.marks, iface) }

// mark records that iface has been read up to t.
func (m *merger) mark(iface int, t int64) {
	if cur, ok := m.marks[iface]; ok && t > cur {
		m.marks[iface] = t
	}
}

// push copies a packet in.
func (m *merger) push(iface int, ts int64, origLen int, data []byte) {
	if len(m.slab)+len(data) > cap(m.slab) {
		m.slab = make([]byte, 0, max(mergeSlab, len(data)))
	}
	off := len(m.slab)
	m.slab = append(m.slab, data...)
	m.recs = append(m.recs, mergeRec{ts: ts, iface: iface, origLen: origLen, data: m.slab[off:len(m.slab):len(m.slab)]})
	m.held += len(data)
	m.up(len(m.recs) - 1)
}

// watermark is the time before which every record has arrived.
func (m *merger) watermark() int64 {
	w := int64(math.MaxInt64)
	for _, t := range m.marks {
		w = min(w, t)
	}
	return w
}

// release pops, in timestamp order, the records that may be written: those
// before the watermark, then any beyond the bounds; all of them with all.
// write returns false to stop.
func (m *merger) release(now int64, all bool, write func(*mergeRec) bool) {
	w := m.watermark()
	oldest := now - int64(mergeDelay)
	for len(m.recs) > 0 {
		r := m.recs[0]
		if !all && r.ts >= w && r.ts >= oldest && m.held <= mergeBytes {
			return
		}
		m.pop()
		if !write(&r) {
			return
		}
	}
}

func (m *merger) pop() {
	n := len(m.recs) - 1
	m.held -= len(m.recs[0].data)
	m.recs[0] = m.recs[n]
	m.recs[n] = mergeRec{}
	m.recs = m.recs[:n]
	if n > 0 {
		m.down(0)
	}
	if n == 0 {
		m.slab = m.slab[:0] // nothing refers to it any more
	}
}

func (m *merger) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if m.recs[p].ts <= m.recs[i].ts {
			return
		}
		m.recs[p], m.recs[i] = m.recs[i], m.recs[p]
		i = p
	}
}

func (m *merger) down(i int) {
	n := len(m.recs)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && m.recs[r].ts < m.recs[l].ts {
			c = r
		}
		if m.recs[i].ts <= m.recs[c].ts {
			return
		}
		m.recs[i], m.recs[c] = m.recs[c], m.recs[i]
		i = c
	}
}
