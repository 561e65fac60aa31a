//go:build linux

package afpacket

import (
	"errors"
	"fmt"
	"time"

	xbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/pcapfile"
)

// program is the socket filter for one of the session's interfaces: the
// session's filter, after a prefix keeping only the directions dedupe left
// it.
func (s *Session) program(ifc netInterface) ([]xbpf.RawInstruction, error) {
	return directedProgram(s.filter, ifc)
}

func directedProgram(f sessionFilter, ifc netInterface) ([]xbpf.RawInstruction, error) {
	prog, err := f.program(ifc)
	if err != nil {
		return nil, err
	}
	switch ifc.dirs {
	case dirIn:
		prog = append(dropOutgoingPrefix(), prog...)
	case dirOut:
		prog = append(keepOutgoingPrefix(), prog...)
	}
	if len(prog) > maxBPFInstructions {
		return nil, tripcap.Errorf(tripcap.EINVALID, "the filter needs %d BPF instructions; the kernel takes at most %d", len(prog), maxBPFInstructions)
	}
	return prog, nil
}

// keepOutgoingPrefix drops every packet the host did not send.
func keepOutgoingPrefix() []xbpf.RawInstruction {
	prog, err := xbpf.Assemble([]xbpf.Instruction{
		xbpf.LoadExtension{Num: xbpf.ExtType},
		xbpf.JumpIf{Cond: xbpf.JumpEqual, Val: unix.PACKET_OUTGOING, SkipTrue: 1, SkipFalse: 0},
		xbpf.RetConstant{Val: 0},
		xbpf.LoadConstant{Dst: xbpf.RegA, Val: 0},
	})
	if err != nil {
		panic("assembling a constant BPF program: " + err.Error())
	}
	return prog
}

// mergeBlock hands the packets of one block to the merge and writes what it
// releases; true ends the reader. The writer lock is held.
func (s *Session) mergeBlock(sock *socket, pkts *blockPackets, vlanBuf *[]byte) bool {
	var p ringPacket
	var last int64
	stopped := false
	for pkts.next(&p) {
		if p.ts < s.t0 {
			continue
		}
		if at := s.stopAt.Load(); at != 0 && p.ts > at {
			stopped = true
			break
		}
		data, origLen := p.data, p.origLen
		if p.vlanValid && sock.ifc.Framing == framingEthernet {
			if cap(*vlanBuf) < len(data)+4 {
				*vlanBuf = make([]byte, 0, len(data)+4)
			}
			data, origLen = withVLAN(&p, *vlanBuf)
		}
		s.merge.push(sock.id, p.ts, origLen, data)
		last = max(last, p.ts)
	}
	if stopped {
		// Everything this interface had before the stop is in.
		s.merge.remove(sock.id)
	} else if last > 0 {
		s.merge.mark(sock.id, last-int64(mergeSkew))
	}
	s.releaseLocked(time.Now().UnixNano(), false)
	return stopped || s.halted
}

// releaseLocked writes the records the merge releases (all of them with
// all) and publishes the counts. The writer lock is held.
func (s *Session) releaseLocked(now int64, all bool) {
	s.merge.release(now, all, func(r *mergeRec) bool {
		return !s.halted && s.writeLocked(r.iface, r.ts, r.origLen, r.data, &s.mcounts[r.iface])
	})
	for i := range s.mcounts {
		s.publish(&s.mcounts[i], s.socks[i])
	}
}

// endInterface records that one of the session's interfaces went away
// (deleted, or set down: its socket reports an error) and lets the others
// go on: in the status, and in a pcapng statistics block with its end time.
// A session left with no interface fails, unless it captures the whole
// host, where more may appear.
func (s *Session) endInterface(sock *socket, cause error) {
	now := time.Now()
	recv, drops := sock.stats()
	why := fmt.Sprintf("interface %s went away at %s: %v", sock.ifc.Name, now.UTC().Format(time.RFC3339Nano), cause)
	s.log.Warn("interface went away; capturing on the others", "interface", sock.ifc.Name, "err", cause)
	s.wmu.Lock()
	sock.ended = now
	s.merge.remove(sock.id)
	if !s.halted {
		start := s.start
		if !sock.started.IsZero() {
			start = sock.started
		}
		s.releaseLocked(now.UnixNano(), false)
		st := pcapfile.InterfaceStats{Start: start, End: now, Received: recv, Dropped: drops, Delivered: sock.delivered.Load()}
		if err := s.out.endInterface(sock.id, st, why); err != nil {
			s.halted = true
			s.wmu.Unlock()
			s.outputFailed(err)
			sock.close()
			return
		}
	}
	active := 0
	for _, o := range s.socks {
		if o.ended.IsZero() {
			active++
		}
	}
	s.wmu.Unlock()
	sock.close()
	s.rmu.Lock()
	s.ended = append(s.ended, tripcap.InterfaceEnd{Name: sock.ifc.Name, At: now, Reason: cause.Error()})
	s.rmu.Unlock()
	s.note("%s", why)
	if active == 0 && !s.wholeHost {
		s.fail(tripcap.StopCaptureFailed, tripcap.CaptureErrCaptureFailed, fmt.Errorf("every interface of the capture went away (the last, %s: %w)", sock.ifc.Name, cause))
	}
}

// watchLinks picks up the interfaces that come up while a whole-host
// session runs, until it stops.
func (s *Session) watchLinks() {
	wait := time.Duration(s.pollNs)
	// The subscription began after the interfaces were listed: one more
	// look covers those that came up in between.
	overrun := true
	for s.stopAt.Load() == 0 && !s.halt.Load() {
		var links []netInterface
		var err error
		if !overrun {
			links, err = s.watch.next(wait)
			overrun = errors.Is(err, errLinkOverrun)
		}
		if overrun {
			// Changes were lost: look at every interface instead.
			err = s.watch.do(func() (err error) { links, err = listInterfaces(); return err })
			overrun = false
		}
		if err != nil {
			s.log.Warn("no longer watching for new interfaces", "err", err)
			s.note("interfaces that appeared after %s were not captured: %v", time.Now().UTC().Format(time.RFC3339), err)
			return
		}
		for _, l := range links {
			s.consider(l)
		}
	}
}

// consider adds an interface that is up and not captured yet, taking what
// dedupe leaves it given the interfaces captured now (and changing their
// directions where it says: a new bridge port makes the bridge outgoing only).
func (s *Session) consider(l netInterface) {
	if !l.Up || l.Loopback || l.Framing == 0 {
		return
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.halted || s.stopAt.Load() != 0 {
		return
	}
	var cur []netInterface
	for _, sock := range s.socks {
		if sock.ended.IsZero() {
			if sock.ifc.Index == l.Index {
				return
			}
			cur = append(cur, sock.ifc)
		}
	}
	kept, _ := dedupe(append(cur, l))
	dirs := make(map[int]direction, len(kept))
	for _, k := range kept {
		dirs[k.Index] = k.dirs
	}
	if dirs[l.Index] == 0 {
		return // it would add only packets recorded already
	}
	l.dirs = dirs[l.Index]
	prog, err := s.program(l)
	if err != nil {
		s.note("interface %s appeared and was not captured: %v", l.Name, err)
		return
	}
	id := len(s.socks)
	var sock *socket
	if err := s.watch.do(func() (err error) { sock, err = openSocket(l, id, prog, s.rc); return err }); err != nil {
		s.log.Warn("interface appeared and could not be captured", "interface", l.Name, "err", err)
		s.note("interface %s appeared and was not captured: %v", l.Name, err)
		return
	}
	for _, o := range s.socks {
		if d := dirs[o.ifc.Index]; o.ended.IsZero() && d != 0 && d != o.ifc.dirs {
			o.ifc.dirs = d
			if p, err := s.program(o.ifc); err == nil {
				if err := o.setFilter(p); err != nil {
					s.log.Warn("changing an interface's filter", "interface", o.ifc.Name, "err", err)
				}
			}
		}
	}
	if _, err := s.out.addInterface(pcapfile.Interface{Name: l.Name, Filter: s.desc, LinkType: l.Framing.pcapLinkType(), SnapLen: s.filter.snapLen}); err != nil {
		sock.close()
		s.halted = true
		s.outputFailed(err)
		return
	}
	now := time.Now()
	sock.started = now
	s.smu.Lock()
	s.socks = append(s.socks, sock)
	s.smu.Unlock()
	s.mcounts = append(s.mcounts, counts{})
	s.merge.add(id, now.UnixNano())
	s.log.Info("interface appeared; capturing on it", "interface", l.Name, "directions", l.dirs.String())
	s.startReader(sock)
}
