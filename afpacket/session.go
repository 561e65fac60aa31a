//go:build linux

package afpacket

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/pcapfile"
)

// statsInterval is how often a session samples the kernel's counters, which
// are 32-bit and reset when read: sampling keeps them from wrapping unseen.
const statsInterval = 5 * time.Second

// Session is a running capture. It implements tripcap.CaptureSession.
type Session struct {
	eng    *Engine
	spec   tripcap.CaptureSpec
	params tripcap.PacketCaptureParameters
	log    *slog.Logger
	filter sessionFilter
	desc   string // the filter as the pcapng interface blocks give it
	rc     ringConfig
	root   *os.Root
	limit  time.Duration

	// socks are the session's sockets, one per interface, indexed by
	// interface number in the file. A whole-host session adds to it as
	// interfaces appear (under smu and the writer lock); socks of
	// interfaces that went away stay, closed.
	smu   sync.Mutex
	socks []*socket
	// wholeHost sessions (no interfaces given) watch for new interfaces.
	wholeHost bool
	watch     *linkWatch
	readers   sync.WaitGroup

	// start is when every filter was attached; t0 the same in
	// nanoseconds. Packets stamped before t0 may have bypassed the filter
	// and are dropped; the pre-trigger buffer supplies them instead.
	start   time.Time
	t0      int64
	flushNs int64 // flush interval
	pollNs  int64 // a socket's poll timeout
	drainNs int64 // after a stop, how long until all earlier packets are readable

	// wmu is the writer lock: it guards out, lastFlush and halted. A
	// session with one socket has one writer at a time (pre-trigger
	// packets, then the reader, then finish, in sequence), so it takes no
	// lock per packet: locked instructions are a good part of the cost of
	// a packet.
	wmu       sync.Mutex
	single    bool
	out       *output
	lastFlush int64
	halted    bool
	// merge orders the records of several interfaces (nil with one);
	// mcounts are the records it wrote per interface, not yet published.
	merge   *merger
	mcounts []counts

	packets atomic.Uint64
	bytes   atomic.Uint64
	// truncated counts packets cut to the snap length (longer than kept).
	truncated atomic.Uint64
	// preTrigger is what the pre-trigger part holds, for a session that
	// asked for one (under rmu).
	preTrigger *tripcap.PreTriggerResult

	// stopAt is when the stop was asked (nanoseconds, 0 while running):
	// readers write the packets stamped up to it, then end. halt ends
	// them at once (the file is full or failed).
	stopAt   atomic.Int64
	halt     atomic.Bool
	stopOnce sync.Once
	stopCh   chan struct{}

	rmu     sync.Mutex // guards reason, errs, message, notes, ended
	reason  string
	errs    []string
	message string
	notes   []string
	ended   []tripcap.InterfaceEnd

	metaFile string // set before done is closed
	done     chan struct{}
	result   tripcap.CaptureResult
}

var _ tripcap.CaptureSession = (*Session)(nil)

// Stats returns the live counters.
func (s *Session) Stats() tripcap.CaptureStats {
	var drops uint64
	for _, sock := range s.sockets() {
		_, d := sock.stats()
		drops += d
	}
	s.rmu.Lock()
	ended := slices.Clone(s.ended)
	pre := s.preTriggerCopy()
	s.rmu.Unlock()
	return tripcap.CaptureStats{Packets: s.packets.Load(), Bytes: s.bytes.Load(), KernelDrops: drops, EndedInterfaces: ended,
		TruncatedPackets: new(s.truncated.Load()), PreTrigger: pre}
}

// preTriggerCopy is what the pre-trigger part holds so far; s.rmu is held.
func (s *Session) preTriggerCopy() *tripcap.PreTriggerResult {
	if s.preTrigger == nil {
		return nil
	}
	c := *s.preTrigger
	c.Notes = slices.Clone(c.Notes)
	return &c
}

// sockets is a copy of the session's sockets.
func (s *Session) sockets() []*socket {
	s.smu.Lock()
	defer s.smu.Unlock()
	return slices.Clone(s.socks)
}

// Files lists the capture files written so far, oldest first, then the
// metadata file once written.
func (s *Session) Files() []string {
	files := s.out.paths()
	select {
	case <-s.done:
		if s.metaFile != "" {
			files = append(files, s.metaFile)
		}
	default:
	}
	return files
}

// Stop ends the session with the given reason; packets stamped before the
// call are still written. It does not wait: see Done.
func (s *Session) Stop(reason string) {
	s.stop(reason, "", "", false)
}

// Done is closed when the session has ended and its files are closed.
func (s *Session) Done() <-chan struct{} { return s.done }

// Result is how the session ended; valid once Done is closed.
func (s *Session) Result() tripcap.CaptureResult {
	<-s.done
	return s.result
}

// stop records the first reason given and tells the readers to finish.
// errCode, when set, is an Azure packetCaptureError; halt ends the readers
// without writing what is left in the ring.
func (s *Session) stop(reason, errCode, message string, halt bool) {
	s.rmu.Lock()
	if s.reason == "" {
		s.reason = reason
	}
	if errCode != "" && !containsString(s.errs, errCode) {
		s.errs = append(s.errs, errCode)
	}
	if message != "" && s.message == "" {
		s.message = message
	}
	s.rmu.Unlock()
	if halt {
		s.halt.Store(true)
	}
	s.stopAt.CompareAndSwap(0, time.Now().UnixNano())
	s.stopOnce.Do(func() { close(s.stopCh) })
}

// fail ends the session on an error.
func (s *Session) fail(reason, errCode string, err error) {
	s.log.Error("capture failed", "reason", reason, "err", err)
	s.stop(reason, errCode, err.Error(), true)
}

// outputFailed ends the session on a failed write: LocalFileFailed, or,
// when a stream's reader went away, StopStreamClosed, which is no error.
func (s *Session) outputFailed(err error) {
	if s.out.cfg.stream != nil && streamClosed(err) {
		if s.stopAt.Load() == 0 { // else the watch saw it first, and said so
			s.log.Info("the stream's reader went away; stopping", "err", err)
		}
		s.stop(StopStreamClosed, "", "the output stream's reader went away ("+err.Error()+")", true)
		return
	}
	s.fail(tripcap.StopLocalFileFailed, tripcap.CaptureErrLocalFile, err)
}

func (s *Session) note(format string, args ...any) {
	s.rmu.Lock()
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
	s.rmu.Unlock()
}

// run drives the session: metadata, pre-trigger packets, readers, limits,
// and the final flush.
func (s *Session) run(pre *preRing) {
	defer close(s.done)
	defer s.eng.forget(s)

	// Metadata is collected while the capture runs; the session's end
	// waits for it, at most this long.
	ctx, cancel := context.WithTimeout(context.Background(), metadataTimeout)
	defer cancel()
	var meta chan string
	if s.params.IncludeMetadata {
		meta = make(chan string, 1)
		go func() { meta <- s.writeMetadata(ctx) }()
	}

	limit := time.NewTimer(s.limit)
	defer limit.Stop()
	if s.params.PreTriggerSeconds > 0 {
		s.writePreTrigger(pre)
	}

	for _, sock := range s.socks {
		s.startReader(sock)
	}
	if rc := streamConn(s.out.cfg.stream); rc != nil {
		// Counted with the readers: it ends once the session stops.
		s.readers.Add(1)
		go func() {
			defer s.readers.Done()
			s.watchStream(rc)
		}()
	}
	if s.watch != nil {
		// Counted with the readers, so the readers it adds are too
		// before the count can reach zero.
		s.readers.Add(1)
		go func() {
			defer s.readers.Done()
			s.watchLinks()
		}()
	}
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
wait:
	for {
		select {
		case <-limit.C:
			s.stop(tripcap.StopTimeExceeded, "", "", false)
		case <-tick.C:
			s.Stats()
		case <-s.stopCh:
			break wait
		}
	}
	s.readers.Wait()
	if s.watch != nil {
		s.watch.close()
	}
	s.finish(meta)
}

func (s *Session) startReader(sock *socket) {
	s.readers.Add(1)
	go func() {
		defer s.readers.Done()
		s.read(sock)
	}()
}

func (s *Session) lockWriter() {
	if !s.single {
		s.wmu.Lock()
	}
}

func (s *Session) unlockWriter() {
	if !s.single {
		s.wmu.Unlock()
	}
}

// counts are packets and bytes written but not yet added to the session's
// counters, which are published once per block to spare locked adds per
// packet.
type counts struct{ packets, bytes, truncated uint64 }

func (s *Session) publish(c *counts, sock *socket) {
	if c.packets > 0 {
		s.packets.Add(c.packets)
		s.bytes.Add(c.bytes)
		if c.truncated > 0 {
			s.truncated.Add(c.truncated)
		}
		if sock != nil {
			sock.delivered.Add(c.packets)
		}
		*c = counts{}
	}
}

// read copies packets from one socket to the file, a ring block at a time,
// until the session stops.
func (s *Session) read(sock *socket) {
	var c counts
	var vlanBuf []byte
	defer s.publish(&c, sock)
	for !s.halt.Load() {
		blk, err := sock.nextBlock()
		if err != nil {
			if s.merge != nil {
				// One of several interfaces: the others go on.
				s.endInterface(sock, err)
				return
			}
			s.fail(tripcap.StopCaptureFailed, tripcap.CaptureErrCaptureFailed, fmt.Errorf("reading packets on %s: %w", sock.ifc.Name, err))
			return
		}
		if blk == nil {
			s.publish(&c, sock)
			if s.idle(sock) {
				return
			}
			continue
		}
		done := s.writeBlock(sock, blk, &c, &vlanBuf)
		sock.release()
		s.publish(&c, sock)
		if done {
			return
		}
	}
}

// writeBlock writes the packets of one block; true ends the reader. The
// writer lock is taken once for the block. A stream is flushed after each
// block, so its reader gets packets within a block timeout of their
// arrival; a file is written when its buffer fills or at the flush interval.
func (s *Session) writeBlock(sock *socket, blk []byte, c *counts, vlanBuf *[]byte) bool {
	s.lockWriter()
	defer s.unlockWriter()
	if s.halted {
		return true
	}
	done := s.writeBlockLocked(sock, blk, c, vlanBuf)
	if s.out.cfg.stream != nil && !s.halted && !s.flushLocked() {
		return true
	}
	return done
}

// writeBlockLocked is writeBlock with the writer lock held.
func (s *Session) writeBlockLocked(sock *socket, blk []byte, c *counts, vlanBuf *[]byte) bool {
	pkts := packetsOf(blk)
	if s.merge != nil {
		return s.mergeBlock(sock, &pkts, vlanBuf)
	}
	if pw := s.out.pcapWriter(); pw != nil {
		return s.writeBlockPcap(sock, &pkts, pw, c, vlanBuf)
	}
	var p ringPacket
	for pkts.next(&p) {
		if p.ts < s.t0 {
			continue
		}
		if at := s.stopAt.Load(); at != 0 && p.ts > at {
			return true
		}
		if !s.writePacket(sock, &p, c, vlanBuf) {
			return true
		}
	}
	return false
}

// writePacket writes one packet of the ring through writeLocked, putting
// back a VLAN tag the kernel took out; false ends the writer.
func (s *Session) writePacket(sock *socket, p *ringPacket, c *counts, vlanBuf *[]byte) bool {
	data, origLen := p.data, p.origLen
	if p.vlanValid && sock.ifc.Framing == framingEthernet {
		if cap(*vlanBuf) < len(data)+4 {
			*vlanBuf = make([]byte, 0, len(data)+4)
		}
		data, origLen = withVLAN(p, *vlanBuf)
	}
	// data points into the ring; write copies it before the block goes
	// back to the kernel.
	return s.writeLocked(sock.id, p.ts, origLen, data, c)
}

// smallCopy is the size up to which writeBlockPcap copies a packet as a
// fixed-size block.
const smallCopy = 64

// writeBlockPcap is writeBlock for a pcap file, the common case, in one
// tight loop: each record is written in place into the write buffer (a
// header and one copy of the data), with no call per packet, and the
// counters and the room left in the file are settled once for the run of
// records. A packet out of the ordinary (a VLAN tag to put back, a snap
// length beyond the file's), or one that does not fit the buffer or the
// file, or the flush interval passing, goes through writePacket.
func (s *Session) writeBlockPcap(sock *socket, b *blockPackets, pw *pcapfile.PcapWriter, c *counts, vlanBuf *[]byte) bool {
	blk := b.blk
	vlanFix := sock.ifc.Framing == framingEthernet
	snapLen := min(pw.SnapLen(), s.filter.snapLen)
	t0, flushNs := s.t0, s.flushNs
	var space []byte
	// pos bytes of space hold n records with data bytes of packets, cut
	// of which were cut to the snap length.
	var pos, n int
	var data, cut uint64
	refill := func() {
		pw = s.out.pcapWriter() // a ring file may have been rotated
		space = pw.Space()
		if room := s.out.room; room < int64(len(space)) {
			space = space[:max(room, 0)]
		}
	}
	commit := func() {
		pw.Commit(pos, n, int64(data))
		s.out.wrote(int64(pos), n)
		c.packets += uint64(n)
		c.bytes += data
		c.truncated += cut
		pos, n, data, cut = 0, 0, 0, 0
	}
	refill()
	for off, left := b.off, b.left; left > 0; left-- {
		b.prefetch(off)
		h := blk[off : off+pktSll+12]
		next := ne.Uint32(h[pktNextOffset:])
		sec := ne.Uint32(h[pktSec:])
		nsec := ne.Uint32(h[pktNsec:])
		snap := ne.Uint32(h[pktSnaplen:])
		origLen := ne.Uint32(h[pktLen:])
		status := ne.Uint32(h[pktStatus:])
		mac := int(ne.Uint16(h[pktMac:]))
		pktOff := off
		off += int(next)
		ts := int64(sec)*1e9 + int64(nsec)
		if ts < t0 {
			continue
		}
		if at := s.stopAt.Load(); at != 0 && ts > at {
			commit()
			return true
		}
		need := pcapfile.PcapRecordHeaderLen + int(snap)
		// need+smallCopy: a short packet is copied as a whole
		// smallCopy bytes (see below), which must fit.
		if need+smallCopy > len(space)-pos || snap > snapLen || ts-s.lastFlush >= flushNs ||
			(vlanFix && status&unix.TP_STATUS_VLAN_VALID != 0) {
			commit()
			one := blockPackets{blk: blk, left: 1, off: pktOff, pf: len(blk)}
			var p ringPacket
			one.next(&p)
			if !s.writePacket(sock, &p, c, vlanBuf) {
				return true
			}
			refill()
			continue
		}
		rec := space[pos : pos+need+smallCopy]
		pcapfile.PutRecordHeader(rec, sec, nsec/1000, snap, max(origLen, snap))
		if from := pktOff + mac; snap <= smallCopy && from+smallCopy <= len(blk) {
			// A fixed-size copy is a few moves, not a call: the bytes
			// past the packet land in free space, overwritten next.
			*(*[smallCopy]byte)(rec[pcapfile.PcapRecordHeaderLen:]) = *(*[smallCopy]byte)(blk[from:])
		} else {
			copy(rec[pcapfile.PcapRecordHeaderLen:], blk[from:from+int(snap)])
		}
		pos += need
		n++
		data += uint64(snap)
		if snap < origLen {
			cut++
		}
	}
	commit()
	return false
}

// idle runs when a poll found nothing: it flushes, and reports whether a
// stopping reader is done. A poll that ends empty more than a block timeout
// after the stop proves that every packet stamped before the stop has been
// read: the kernel makes a block readable at most a block timeout after its
// first packet, and a reader polls only once it has read all readable blocks.
func (s *Session) idle(sock *socket) bool {
	s.lockWriter()
	if s.merge != nil && !s.halted {
		now := time.Now().UnixNano()
		s.merge.mark(sock.id, now-s.drainNs)
		s.releaseLocked(now, false)
	}
	if !s.halted && !s.flushLocked() {
		s.unlockWriter()
		return true
	}
	s.unlockWriter()
	at := s.stopAt.Load()
	return at != 0 && time.Now().UnixNano() >= at+s.drainNs
}

// flushLocked writes out the buffered records; false when that failed and
// the session ends. The writer lock is held.
func (s *Session) flushLocked() bool {
	if err := s.out.flush(); err != nil {
		s.halted = true
		s.outputFailed(err)
		return false
	}
	s.lastFlush = time.Now().UnixNano()
	return true
}

// writeLocked appends one packet and counts it in c; false ends the
// writer. The writer lock is held.
func (s *Session) writeLocked(iface int, ts int64, origLen int, data []byte, c *counts) bool {
	reason, err := s.out.write(iface, ts, origLen, data, s.interfaceStats)
	if err == nil && reason == "" && ts-s.lastFlush >= s.flushNs {
		// Packet timestamps serve as the clock: no time call per packet.
		err = s.out.flush()
		s.lastFlush = ts
	}
	if err != nil || reason != "" {
		s.halted = true
		if err != nil {
			s.outputFailed(err)
		} else {
			s.stop(reason, "", "", true)
		}
		return false
	}
	c.packets++
	kept := min(len(data), int(s.filter.snapLen))
	c.bytes += uint64(kept)
	if kept < origLen {
		c.truncated++
	}
	return true
}

// interfaceStats are the per-interface counters for pcapng statistics blocks.
func (s *Session) interfaceStats() []pcapfile.InterfaceStats {
	now := time.Now()
	stats := make([]pcapfile.InterfaceStats, len(s.socks))
	for i, sock := range s.socks {
		recv, drops := sock.stats()
		stats[i] = pcapfile.InterfaceStats{Start: s.start, End: now, Received: recv, Dropped: drops}
		if !sock.started.IsZero() {
			stats[i].Start = sock.started
		}
		if !sock.ended.IsZero() {
			stats[i].End = sock.ended
		}
	}
	for i, sock := range s.socks {
		stats[i].Delivered = sock.delivered.Load()
	}
	return stats
}

// writePreTrigger starts the file with the buffered packets from the last
// preTriggerSeconds before t0 that match the session's filters. The seam is
// exact: the buffer gives packets stamped before t0, the sockets those from
// t0 on.
func (s *Session) writePreTrigger(pre *preRing) {
	res := &tripcap.PreTriggerResult{RequestedSeconds: s.params.PreTriggerSeconds}
	s.rmu.Lock()
	s.preTrigger = res
	s.rmu.Unlock()
	// note says, in the result and in the session's message, why the
	// capture has fewer pre-trigger packets than it asked for.
	note := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		s.rmu.Lock()
		res.Notes = append(res.Notes, msg)
		s.rmu.Unlock()
		s.note("%s", msg)
	}
	if pre == nil {
		note("no pre-trigger packets: the pre-trigger buffer is not enabled on this agent")
		return
	}
	secs := min(time.Duration(s.params.PreTriggerSeconds)*time.Second, pre.keep)
	if secs < time.Duration(s.params.PreTriggerSeconds)*time.Second {
		note("at most %s of pre-trigger packets: the agent's buffer keeps %s", secs, pre.keep)
	}
	buffered := pre.interfaces()
	ifindexes := map[int]int{}
	matchers := map[int]func([]byte, bool) bool{}
	for _, sock := range s.socks {
		if _, ok := buffered[sock.ifc.Index]; !ok {
			note("no pre-trigger packets from %s: the pre-trigger buffer does not cover it", sock.ifc.Name)
			continue
		}
		match, err := s.filter.matcher(sock.ifc.Framing)
		if err != nil {
			note("no pre-trigger packets from %s: %v", sock.ifc.Name, err)
			continue
		}
		ifindexes[sock.ifc.Index] = sock.id
		// What a whole-host capture takes of each direction (see
		// dedupe) applies to the buffered packets too.
		dirs := sock.ifc.dirs
		matchers[sock.ifc.Index] = func(data []byte, outgoing bool) bool {
			return dirs.allows(outgoing) && match(data, outgoing)
		}
	}
	if len(ifindexes) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if !pre.waitCaughtUp(ctx, s.t0, ifindexes) {
		s.log.Warn("pre-trigger buffer lags; the seam may miss packets")
	}
	recs := pre.snapshot(s.t0-int64(secs), s.t0, ifindexes, func(ifindex int, data []byte, outgoing bool) bool {
		return matchers[ifindex](data, outgoing)
	})
	s.lockWriter()
	for _, r := range recs {
		if s.halted {
			break
		}
		var c counts
		s.writeLocked(r.iface, r.ts, r.origLen, r.data, &c)
		s.publish(&c, s.socks[r.iface])
	}
	s.unlockWriter()
	s.rmu.Lock()
	res.Packets = uint64(len(recs))
	if len(recs) > 0 {
		// What the file really starts with: the buffer's memory bound
		// may have let the oldest go.
		res.Seconds = float64(s.t0-recs[0].ts) / 1e9
	}
	s.rmu.Unlock()
	s.log.Info("pre-trigger packets written", "packets", len(recs), "seconds", res.Seconds)
}

// finish closes sockets and files and records the result.
func (s *Session) finish(meta chan string) {
	if s.merge != nil {
		// Every reader has ended: what the merge holds is all there is.
		s.wmu.Lock()
		if !s.halted {
			s.releaseLocked(time.Now().UnixNano(), true)
		}
		s.wmu.Unlock()
	}
	stats := s.interfaceStats()
	var drops uint64
	for _, sock := range s.socks {
		sock.close()
	}
	for _, st := range stats {
		drops += st.Dropped
	}
	s.wmu.Lock() // readers have ended; the lock orders this after their writes
	s.halted = true
	// A stream's trailer is lost with its reader, which is no error.
	if err := s.out.closeFile(stats, true); err != nil && !(s.out.cfg.stream != nil && streamClosed(err)) {
		s.rmu.Lock()
		s.errs = tripcap.AddCaptureError(s.errs, tripcap.CaptureErrLocalFile)
		if s.message == "" {
			s.message = err.Error()
		}
		s.rmu.Unlock()
	}
	// Packets buffered when a write failed never reached the file: the
	// counters say what the files hold.
	if lostPackets, lostBytes := s.out.w.Lost(); lostPackets > 0 {
		s.packets.Add(^uint64(lostPackets - 1))
		s.bytes.Add(^uint64(lostBytes - 1))
	}
	s.wmu.Unlock()
	if meta != nil {
		s.metaFile = <-meta
	}
	closeRoot(s.root)

	s.rmu.Lock()
	msg := s.message
	for _, n := range s.notes {
		if msg != "" {
			msg += "; "
		}
		msg += n
	}
	s.result = tripcap.CaptureResult{
		StopReason: s.reason,
		Errors:     s.errs,
		Message:    msg,
		Stats: tripcap.CaptureStats{Packets: s.packets.Load(), Bytes: s.bytes.Load(), KernelDrops: drops, EndedInterfaces: slices.Clone(s.ended),
			TruncatedPackets: new(s.truncated.Load()), PreTrigger: s.preTriggerCopy()},
		StartTime: s.start,
		StopTime:  time.Unix(0, s.stopAt.Load()),
	}
	s.rmu.Unlock()
	s.result.Files = s.out.paths()
	if s.metaFile != "" {
		s.result.Files = append(s.result.Files, s.metaFile)
	}
	s.log.Info("capture stopped", "reason", s.result.StopReason, "packets", s.result.Stats.Packets,
		"bytes", s.result.Stats.Bytes, "kernelDrops", drops, "files", len(s.result.Files))
}

// writeMetadata collects the host's network state into a file beside the
// first capture file and returns its path ("" on failure, noted).
func (s *Session) writeMetadata(ctx context.Context) string {
	md := collectMetadata(ctx)
	b, err := encodeMetadata(md)
	if err == nil {
		rel := metadataName(s.out.cfg.first)
		var f *os.File
		if f, err = createConfined(s.root, rel); err == nil {
			_, err = f.Write(b)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				return path.Join(s.out.cfg.dir, rel)
			}
		}
	}
	s.log.Error("writing host metadata", "err", err)
	s.note("host metadata not stored: %v", err)
	return ""
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
