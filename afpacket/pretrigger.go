//go:build linux

package afpacket

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tripcap/tripcap"
)

// preRecordHeader is the size of a buffered record's header: timestamp (8),
// interface index (4), original length (4), captured length (4), flags (4).
const preRecordHeader = 24

// preOutgoing flags a record of a packet the host sent.
const preOutgoing = 1

// preChunk is a run of records, filled in arrival order.
type preChunk struct {
	buf         []byte
	first, last int64 // timestamps of the first and last record
	records     int
}

// preRing is the pre-trigger buffer: chunks of records, the oldest evicted
// whole when the memory bound is reached or their packets are too old.
type preRing struct {
	log       *slog.Logger
	keep      time.Duration
	chunkSize int
	maxChunks int
	rc        ringConfig

	mu     sync.Mutex // guards chunks and spare
	chunks []*preChunk
	spare  []*preChunk

	// socks grow as interfaces appear, when the buffer takes every
	// interface (watch set); smu guards the slice.
	smu   sync.Mutex
	socks []*preSocket
	watch *linkWatch
	flt   sessionFilter
	quit  atomic.Bool
	wg    sync.WaitGroup
}

// preSocket feeds the ring from one interface.
type preSocket struct {
	*socket
	// seen is a watermark: every packet stamped before it has been
	// buffered (nanoseconds).
	seen atomic.Int64
	err  atomic.Pointer[error]
}

// openPreRing opens the buffer's sockets and starts reading.
func openPreRing(cfg PreTriggerConfig, rc ringConfig, log *slog.Logger) (*preRing, error) {
	if cfg.Bytes <= 0 {
		cfg.Bytes = DefaultPreTriggerBytes
	}
	if cfg.SnapLen == 0 || cfg.SnapLen > 65535 {
		cfg.SnapLen = 65535
	}
	// Chunks of about a sixteenth of the buffer, at least two records of
	// the largest size, so eviction frees memory in reasonable steps.
	chunk := max(int(cfg.Bytes/16), 2*(preRecordHeader+int(cfg.SnapLen)))
	r := &preRing{
		log:       log,
		keep:      time.Duration(cfg.Seconds) * time.Second,
		chunkSize: chunk,
		maxChunks: max(int(cfg.Bytes/int64(chunk)), 2),
		rc:        rc,
	}
	all, err := listInterfaces()
	if err != nil {
		return nil, err
	}
	ifcs, skipped, err := selectInterfaces(all, cfg.Interfaces, tripcap.FormatPcapng)
	if err != nil {
		return nil, fmt.Errorf("pre-trigger buffer: %w", err)
	}
	if len(skipped) > 0 {
		log.Warn("pre-trigger buffer skips interfaces", "interfaces", skipped)
	}
	flt := sessionFilter{filters: cfg.Filters, snapLen: cfg.SnapLen}
	r.flt = flt
	for _, ifc := range ifcs {
		prog, err := flt.program(ifc)
		if err == nil {
			var s *socket
			s, err = openSocket(ifc, 0, prog, rc)
			if err == nil {
				r.socks = append(r.socks, &preSocket{socket: s})
			}
		}
		if err != nil {
			r.close()
			return nil, fmt.Errorf("pre-trigger buffer: %w", err)
		}
	}
	for _, s := range r.socks {
		r.startReader(s)
	}
	if len(cfg.Interfaces) == 0 {
		if r.watch, err = openLinkWatch(); err != nil {
			log.Warn("the pre-trigger buffer will not take interfaces that appear", "err", err)
		} else {
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.watchLinks()
			}()
		}
	}
	return r, nil
}

func (r *preRing) startReader(s *preSocket) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.read(s)
	}()
}

// sockets is a copy of the buffer's sockets.
func (r *preRing) sockets() []*preSocket {
	r.smu.Lock()
	defer r.smu.Unlock()
	return slices.Clone(r.socks)
}

// watchLinks adds the interfaces that come up, until the buffer closes.
func (r *preRing) watchLinks() {
	overrun := true // the subscription began after the interfaces were listed
	for !r.quit.Load() {
		var links []netInterface
		var err error
		if !overrun {
			links, err = r.watch.next(r.rc.pollTimeout)
			overrun = errors.Is(err, errLinkOverrun)
		}
		if overrun {
			err = r.watch.do(func() (err error) { links, err = listInterfaces(); return err })
			overrun = false
		}
		if err != nil {
			r.log.Warn("the pre-trigger buffer no longer takes interfaces that appear", "err", err)
			return
		}
		for _, l := range links {
			if !l.Up || l.Loopback || l.Framing == 0 || slices.ContainsFunc(r.sockets(), func(s *preSocket) bool { return s.ifc.Index == l.Index && s.err.Load() == nil }) {
				continue
			}
			prog, err := r.flt.program(l)
			var sock *socket
			if err == nil {
				err = r.watch.do(func() (err error) { sock, err = openSocket(l, 0, prog, r.rc); return err })
			}
			if err != nil {
				r.log.Warn("the pre-trigger buffer cannot take an interface that appeared", "interface", l.Name, "err", err)
				continue
			}
			ps := &preSocket{socket: sock}
			ps.seen.Store(time.Now().UnixNano())
			r.smu.Lock()
			r.socks = append(r.socks, ps)
			r.smu.Unlock()
			r.log.Info("the pre-trigger buffer takes an interface that appeared", "interface", l.Name)
			r.startReader(ps)
		}
	}
}

func (r *preRing) read(s *preSocket) {
	margin := int64(r.rc.blockTimeout + 20*time.Millisecond)
	var vlanBuf []byte
	for !r.quit.Load() {
		blk, err := s.nextBlock()
		if err != nil {
			// The interface went away (or down): the others go on,
			// and it is taken again should it come back up.
			r.log.Warn("pre-trigger buffer stopped reading an interface", "interface", s.ifc.Name, "err", err)
			s.err.Store(&err)
			s.socket.close()
			return
		}
		if blk == nil {
			// Nothing became readable during a whole poll: every
			// packet that arrived more than a block timeout ago
			// has been read (the kernel retires a non-empty block
			// after that long).
			s.seen.Store(max(s.seen.Load(), time.Now().UnixNano()-margin))
			continue
		}
		pkts := packetsOf(blk)
		var p ringPacket
		var last int64
		r.mu.Lock() // once per block, not per packet
		for pkts.next(&p) {
			data, origLen := p.data, p.origLen
			if p.vlanValid && s.ifc.Framing == framingEthernet {
				if cap(vlanBuf) < len(data)+4 {
					vlanBuf = make([]byte, 0, len(data)+4)
				}
				data, origLen = withVLAN(&p, vlanBuf)
			}
			r.appendLocked(s.ifc.Index, p.outgoing, p.ts, origLen, data)
			last = max(last, p.ts)
		}
		r.mu.Unlock()
		s.release()
		s.seen.Store(max(s.seen.Load(), last))
	}
}

// append copies one packet into the ring.
func (r *preRing) append(ifindex int, outgoing bool, ts int64, origLen int, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.appendLocked(ifindex, outgoing, ts, origLen, data)
}

// appendLocked is append with mu held.
func (r *preRing) appendLocked(ifindex int, outgoing bool, ts int64, origLen int, data []byte) {
	n := preRecordHeader + len(data)
	var c *preChunk
	if len(r.chunks) > 0 {
		c = r.chunks[len(r.chunks)-1]
	}
	if c == nil || len(c.buf)+n > cap(c.buf) {
		c = r.newChunk(ts)
	}
	off := len(c.buf)
	c.buf = c.buf[:off+n]
	b := c.buf[off:]
	binary.LittleEndian.PutUint64(b[0:], uint64(ts))
	binary.LittleEndian.PutUint32(b[8:], uint32(ifindex))
	binary.LittleEndian.PutUint32(b[12:], uint32(origLen))
	binary.LittleEndian.PutUint32(b[16:], uint32(len(data)))
	var flags uint32
	if outgoing {
		flags |= preOutgoing
	}
	binary.LittleEndian.PutUint32(b[20:], flags)
	copy(b[preRecordHeader:], data)
	if c.records == 0 {
		c.first = ts
	}
	c.records++
	c.last = max(c.last, ts)
}

// newChunk appends an empty chunk, evicting expired chunks and, when the
// ring is at its bound, the oldest. Called with mu held.
func (r *preRing) newChunk(now int64) *preChunk {
	cutoff := now - int64(r.keep)
	for len(r.chunks) > 0 && (r.chunks[0].last < cutoff || len(r.chunks) >= r.maxChunks) {
		r.recycle()
	}
	var c *preChunk
	if n := len(r.spare); n > 0 {
		c, r.spare = r.spare[n-1], r.spare[:n-1]
	} else {
		c = &preChunk{buf: make([]byte, 0, r.chunkSize)}
	}
	r.chunks = append(r.chunks, c)
	return c
}

func (r *preRing) recycle() {
	c := r.chunks[0]
	r.chunks = slices.Delete(r.chunks, 0, 1)
	c.buf, c.records, c.first, c.last = c.buf[:0], 0, 0, 0
	r.spare = append(r.spare, c)
}

// preRecord is a buffered packet handed to a session.
type preRecord struct {
	iface   int // the session's interface number
	ts      int64
	origLen int
	data    []byte
}

// waitCaughtUp waits until the buffer has read everything stamped before t
// on the given interfaces, or until ctx ends. It reports whether it caught up.
func (r *preRing) waitCaughtUp(ctx context.Context, t int64, ifindexes map[int]int) bool {
	// Timestamps of packets handled on different CPUs may be out of order
	// by a little; waiting a margin past t absorbs that.
	target := t + int64(2*time.Millisecond)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		caught := true
		for _, s := range r.sockets() {
			if _, ok := ifindexes[s.ifc.Index]; ok && s.err.Load() == nil && s.seen.Load() < target {
				caught = false
			}
		}
		if caught {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// snapshot copies the buffered packets stamped in [from, to) from the given
// interfaces (kernel index → session interface number) that match, sorted by
// timestamp.
func (r *preRing) snapshot(from, to int64, ifindexes map[int]int, match func(ifindex int, data []byte, outgoing bool) bool) []preRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []preRecord
	for _, c := range r.chunks {
		if c.records == 0 || c.last < from || c.first >= to+int64(time.Second) {
			continue
		}
		for b := c.buf; len(b) >= preRecordHeader; {
			ts := int64(binary.LittleEndian.Uint64(b[0:]))
			ifindex := int(binary.LittleEndian.Uint32(b[8:]))
			origLen := int(binary.LittleEndian.Uint32(b[12:]))
			capLen := int(binary.LittleEndian.Uint32(b[16:]))
			outgoing := binary.LittleEndian.Uint32(b[20:])&preOutgoing != 0
			data := b[preRecordHeader : preRecordHeader+capLen]
			b = b[preRecordHeader+capLen:]
			id, ok := ifindexes[ifindex]
			if !ok || ts < from || ts >= to || !match(ifindex, data, outgoing) {
				continue
			}
			out = append(out, preRecord{iface: id, ts: ts, origLen: origLen, data: slices.Clone(data)})
		}
	}
	slices.SortStableFunc(out, func(a, b preRecord) int {
		switch {
		case a.ts < b.ts:
			return -1
		case a.ts > b.ts:
			return 1
		}
		return 0
	})
	return out
}

// interfaces maps the buffered interfaces' kernel indexes to their framing.
func (r *preRing) interfaces() map[int]netInterface {
	socks := r.sockets()
	m := make(map[int]netInterface, len(socks))
	for _, s := range socks {
		m[s.ifc.Index] = s.ifc
	}
	return m
}

func (r *preRing) stats() PreTriggerStats {
	st := PreTriggerStats{Enabled: true, CapacityBytes: int64(r.maxChunks) * int64(r.chunkSize)}
	for _, s := range r.sockets() {
		if !slices.Contains(st.Interfaces, s.ifc.Name) {
			st.Interfaces = append(st.Interfaces, s.ifc.Name)
		}
		_, d := s.stats()
		st.KernelDrops += d
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st.AllocatedBytes = int64(len(r.chunks)+len(r.spare)) * int64(r.chunkSize)
	var oldest, newest int64
	for _, c := range r.chunks {
		if c.records == 0 {
			continue
		}
		st.UsedBytes += int64(len(c.buf))
		st.Packets += c.records
		if oldest == 0 || c.first < oldest {
			oldest = c.first
		}
		newest = max(newest, c.last)
	}
	if oldest != 0 {
		st.Oldest, st.Newest = time.Unix(0, oldest), time.Unix(0, newest)
	}
	return st
}

// close stops the readers and releases the sockets and memory.
func (r *preRing) close() {
	r.quit.Store(true)
	r.wg.Wait()
	for _, s := range r.socks {
		s.close()
	}
	if r.watch != nil {
		r.watch.close()
	}
	r.mu.Lock()
	r.chunks, r.spare = nil, nil
	r.mu.Unlock()
}
