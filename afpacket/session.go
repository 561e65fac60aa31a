//go:build linux

package afpacket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"time"

	gpafpacket "github.com/gopacket/gopacket/afpacket"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/pcapfile"
)

// statsInterval is how often a session samples the kernel's counters, which
// keeps their 32-bit accumulation in gopacket from wrapping unseen.
const statsInterval = 5 * time.Second

// Session is a running capture. It implements tripcap.CaptureSession.
type Session struct {
	eng    *Engine
	spec   tripcap.CaptureSpec
	params tripcap.PacketCaptureParameters
	log    *slog.Logger
	filter sessionFilter
	socks  []*socket
	root   *os.Root
	limit  time.Duration

	// start is when every filter was attached; t0 the same in
	// nanoseconds. Packets stamped before t0 may have bypassed the filter
	// and are dropped; the pre-trigger buffer supplies them instead.
	start   time.Time
	t0      int64
	flushNs int64 // flush interval
	pollNs  int64 // a socket's poll timeout
	drainNs int64 // after a stop, how long until all earlier packets are readable

	wmu       sync.Mutex // the writer lock: guards out, lastFlush and halted
	out       *output
	lastFlush int64
	halted    bool

	packets atomic.Uint64
	bytes   atomic.Uint64

	// stopAt is when the stop was asked (nanoseconds, 0 while running):
	// readers write the packets stamped up to it, then end. halt ends
	// them at once (the file is full or failed).
	stopAt   atomic.Int64
	halt     atomic.Bool
	stopOnce sync.Once
	stopCh   chan struct{}

	rmu     sync.Mutex // guards reason, errs, message, notes
	reason  string
	errs    []string
	message string
	notes   []string

	metaFile string // set before done is closed
	done     chan struct{}
	result   tripcap.CaptureResult
}

var _ tripcap.CaptureSession = (*Session)(nil)

// Stats returns the live counters.
func (s *Session) Stats() tripcap.CaptureStats {
	var drops uint64
	for _, sock := range s.socks {
		_, d := sock.stats()
		drops += d
	}
	return tripcap.CaptureStats{Packets: s.packets.Load(), Bytes: s.bytes.Load(), KernelDrops: drops}
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

	ctx, cancel := context.WithCancel(context.Background())
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

	var wg sync.WaitGroup
	for _, sock := range s.socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.read(sock)
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
	wg.Wait()
	s.finish(meta)
}

// read copies packets from one socket to the file until the session stops.
func (s *Session) read(sock *socket) {
	tp := sock.tp
	for !s.halt.Load() {
		data, ci, err := tp.ZeroCopyReadPacketData()
		if err != nil {
			if errors.Is(err, gpafpacket.ErrTimeout) {
				if s.idle() {
					return
				}
				continue
			}
			s.fail(tripcap.StopCaptureFailed, tripcap.CaptureErrCaptureFailed, fmt.Errorf("reading packets on %s: %w", sock.ifc.Name, err))
			return
		}
		ts := ci.Timestamp.UnixNano()
		if ts < s.t0 {
			continue
		}
		if at := s.stopAt.Load(); at != 0 && ts > at {
			return
		}
		// data points into the ring; write copies it before the next read.
		if !s.write(sock.id, ts, ci.Length, data) {
			return
		}
	}
}

// idle runs when a poll found nothing: it flushes, and reports whether a
// stopping reader is done. A poll that ends empty more than a block timeout
// after the stop proves that every packet stamped before the stop has been
// read: the kernel makes a block readable at most a block timeout after its
// first packet, and a reader polls only once it has read all readable blocks.
func (s *Session) idle() bool {
	s.wmu.Lock()
	if !s.halted {
		if err := s.out.flush(); err != nil {
			s.halted = true
			s.wmu.Unlock()
			s.fail(tripcap.StopLocalFileFailed, tripcap.CaptureErrLocalFile, err)
			return true
		}
		s.lastFlush = time.Now().UnixNano()
	}
	s.wmu.Unlock()
	at := s.stopAt.Load()
	return at != 0 && time.Now().UnixNano() >= at+s.drainNs
}

// write appends one packet under the writer lock; false ends the reader.
func (s *Session) write(iface int, ts int64, origLen int, data []byte) bool {
	s.wmu.Lock()
	if s.halted {
		s.wmu.Unlock()
		return false
	}
	reason, err := s.out.write(iface, ts, origLen, data, s.interfaceStats)
	if err == nil && reason == "" && ts-s.lastFlush >= s.flushNs {
		// Packet timestamps serve as the clock: no time call per packet.
		err = s.out.flush()
		s.lastFlush = ts
	}
	if err != nil || reason != "" {
		s.halted = true
		s.wmu.Unlock()
		if err != nil {
			s.fail(tripcap.StopLocalFileFailed, tripcap.CaptureErrLocalFile, err)
		} else {
			s.stop(reason, "", "", true)
		}
		return false
	}
	s.wmu.Unlock()
	s.packets.Add(1)
	s.bytes.Add(uint64(min(len(data), int(s.filter.snapLen))))
	return true
}

// interfaceStats are the per-interface counters for pcapng statistics blocks.
func (s *Session) interfaceStats() []pcapfile.InterfaceStats {
	now := time.Now()
	stats := make([]pcapfile.InterfaceStats, len(s.socks))
	for i, sock := range s.socks {
		recv, drops := sock.stats()
		stats[i] = pcapfile.InterfaceStats{Start: s.start, End: now, Received: recv, Dropped: drops}
	}
	// Packets written are counted per session, not per interface; the
	// single-interface case is exact and the common one.
	if len(stats) == 1 {
		stats[0].Delivered = s.packets.Load()
	}
	return stats
}

// writePreTrigger starts the file with the buffered packets from the last
// preTriggerSeconds before t0 that match the session's filters. The seam is
// exact: the buffer gives packets stamped before t0, the sockets those from
// t0 on.
func (s *Session) writePreTrigger(pre *preRing) {
	if pre == nil {
		s.note("no pre-trigger packets: the pre-trigger buffer is not enabled on this agent")
		return
	}
	secs := min(time.Duration(s.params.PreTriggerSeconds)*time.Second, pre.keep)
	buffered := pre.interfaces()
	ifindexes := map[int]int{}
	matchers := map[int]func([]byte, bool) bool{}
	for _, sock := range s.socks {
		if _, ok := buffered[sock.ifc.Index]; !ok {
			s.note("no pre-trigger packets from %s: the pre-trigger buffer does not cover it", sock.ifc.Name)
			continue
		}
		match, err := s.filter.matcher(sock.ifc.Framing)
		if err != nil {
			s.note("no pre-trigger packets from %s: %v", sock.ifc.Name, err)
			continue
		}
		ifindexes[sock.ifc.Index] = sock.id
		matchers[sock.ifc.Index] = match
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
	for _, r := range recs {
		if !s.write(r.iface, r.ts, r.origLen, r.data) {
			break
		}
	}
	s.log.Info("pre-trigger packets written", "packets", len(recs), "seconds", secs.Seconds())
}

// finish closes sockets and files and records the result.
func (s *Session) finish(meta chan string) {
	stats := s.interfaceStats()
	var drops uint64
	for _, sock := range s.socks {
		sock.close()
	}
	for _, st := range stats {
		drops += st.Dropped
	}
	s.wmu.Lock()
	s.halted = true
	if err := s.out.closeFile(stats, true); err != nil {
		s.rmu.Lock()
		s.errs = appendOnce(s.errs, tripcap.CaptureErrLocalFile)
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
	s.root.Close()

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
		Stats:      tripcap.CaptureStats{Packets: s.packets.Load(), Bytes: s.bytes.Load(), KernelDrops: drops},
		StartTime:  s.start,
		StopTime:   time.Unix(0, s.stopAt.Load()),
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

func appendOnce(list []string, s string) []string {
	if containsString(list, s) {
		return list
	}
	return append(list, s)
}
