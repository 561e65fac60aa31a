//go:build linux

// Package afpacket is tripcap's capture engine on Linux: AF_PACKET sockets
// with TPACKET_V3 memory-mapped rings read in pure Go (see socket.go for why
// not through gopacket's afpacket), one socket per interface per session,
// classic BPF filters attached in the kernel before the socket is bound, and
// pcap or pcapng files written through pcapfile. It implements
// tripcap.CaptureEngine for the agent and backs `tripcap capture run`.
package afpacket

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	xbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/pcapfile"
)

func (c Config) ring() ringConfig {
	return ringConfig{
		ringBytes:    c.RingBytes,
		blockBytes:   c.BlockBytes,
		blockTimeout: c.BlockTimeout,
		// A poll that outlasts a block timeout proves the ring empty
		// (see session.read), so stops wait at most this long.
		pollTimeout: c.BlockTimeout + 50*time.Millisecond,
	}
}

// Engine runs capture sessions on the local host.
type Engine struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex // guards the fields below
	sessions map[*Session]struct{}
	pre      *preRing
	guard    *fileGuard
	noGuard  bool // starting the guard failed; not retried
	closed   bool
}

var _ tripcap.CaptureEngine = (*Engine)(nil)

// NewEngine returns an engine; it opens nothing until Open or Start.
func NewEngine(cfg Config) *Engine {
	cfg = cfg.withDefaults()
	return &Engine{cfg: cfg, log: cfg.Logger, sessions: map[*Session]struct{}{}}
}

// Open starts the pre-trigger buffer when the configuration asks for one.
// Without Open, sessions run without pre-trigger packets. Interfaces are
// looked up in the network namespace of the calling thread.
func (e *Engine) Open(ctx context.Context) error {
	if e.cfg.PreTrigger.Seconds <= 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("opening the capture engine: it is closed")
	}
	if e.pre != nil {
		return nil
	}
	pre, err := openPreRing(e.cfg.PreTrigger, e.cfg.ring(), e.log)
	if err != nil {
		return err
	}
	e.pre = pre
	e.log.Info("pre-trigger buffer started", "interfaces", pre.stats().Interfaces, "seconds", e.cfg.PreTrigger.Seconds, "capacityBytes", pre.stats().CapacityBytes)
	return nil
}

// PreTriggerStats reports the pre-trigger buffer's memory and contents.
func (e *Engine) PreTriggerStats() PreTriggerStats {
	e.mu.Lock()
	pre := e.pre
	e.mu.Unlock()
	if pre == nil {
		return PreTriggerStats{}
	}
	return pre.stats()
}

// PreTriggerRing is the buffer as the agent's inventory reports it; zero
// when there is none.
func (e *Engine) PreTriggerRing() tripcap.PreTriggerRing {
	st := e.PreTriggerStats()
	if !st.Enabled {
		return tripcap.PreTriggerRing{}
	}
	ifcs := slices.Clone(st.Interfaces)
	slices.Sort(ifcs)
	return tripcap.PreTriggerRing{Seconds: e.cfg.PreTrigger.Seconds, CapacityBytes: st.CapacityBytes, Interfaces: ifcs}
}

// Close stops every running session (AgentStopped), waits for their files,
// and stops the pre-trigger buffer.
func (e *Engine) Close() error {
	e.mu.Lock()
	e.closed = true
	sessions := make([]*Session, 0, len(e.sessions))
	for s := range e.sessions {
		sessions = append(sessions, s)
	}
	pre, guard := e.pre, e.guard
	e.pre, e.guard = nil, nil
	e.mu.Unlock()
	for _, s := range sessions {
		s.Stop(tripcap.StopAgentStopped)
	}
	for _, s := range sessions {
		<-s.Done()
	}
	if pre != nil {
		pre.close()
	}
	if guard != nil {
		guard.close()
	}
	return nil
}

// Start opens the session's sockets and file and returns once packets are
// being captured. It implements tripcap.CaptureEngine.
func (e *Engine) Start(ctx context.Context, spec tripcap.CaptureSpec) (tripcap.CaptureSession, error) {
	s, err := e.StartSession(ctx, spec, SessionOptions{})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// StartSession is Start with options. Sockets are opened, and interfaces
// looked up, in the network namespace of the calling thread.
func (e *Engine) StartSession(ctx context.Context, spec tripcap.CaptureSpec, opts SessionOptions) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("starting capture %s: %w", spec.Name, err)
	}
	e.mu.Lock()
	closed, pre := e.closed, e.pre
	// A stream has no file to repair: it starts no guard.
	if !closed && opts.Stream == nil && e.guard == nil && !e.noGuard {
		var err error
		if e.guard, err = startFileGuard(e.log); err != nil {
			e.noGuard = true
			e.log.Warn("capture files are not guarded: a kill -9 in the middle of a write may leave a file cut mid-record", "err", err)
		}
	}
	guard := e.guard
	e.mu.Unlock()
	if closed {
		return nil, tripcap.Errorf(tripcap.EUNAVAILABLE, "the capture engine is shutting down")
	}

	p := spec.Parameters
	p.ApplyDefaults()
	if p.Format != tripcap.FormatPcap && p.Format != tripcap.FormatPcapng {
		return nil, tripcap.Errorf(tripcap.EINVALID, "format: %q is not one of pcap, pcapng", p.Format)
	}
	if p.BytesToCapturePerPacket < 0 || p.TotalBytesPerSession < 0 || p.TimeLimitInSeconds < 0 {
		return nil, tripcap.Errorf(tripcap.EINVALID, "bytesToCapturePerPacket, totalBytesPerSession and timeLimitInSeconds may not be negative")
	}
	if opts.RawFilter != nil && (len(p.Filters) > 0 || p.FilterExpression != "") {
		return nil, tripcap.Errorf(tripcap.EINVALID, "give filters or a BPF program, not both")
	}
	if err := tripcap.ValidateFilters(p.Filters); err != nil {
		return nil, err
	}
	if opts.Stream != nil && p.Continuous() {
		return nil, tripcap.Errorf(tripcap.EINVALID, "continuousCapture: a continuous capture writes a ring of files; a stream cannot rotate")
	}
	if opts.Stream != nil && p.IncludeMetadata {
		return nil, tripcap.Errorf(tripcap.EINVALID, "includeMetadata: the host's metadata is a file beside the capture file; a stream has none")
	}
	snap := uint32(pcapfile.MaxSnapLen)
	if p.BytesToCapturePerPacket > 0 && p.BytesToCapturePerPacket < pcapfile.MaxSnapLen {
		snap = uint32(p.BytesToCapturePerPacket)
	}
	flt := sessionFilter{filters: p.Filters, expression: p.FilterExpression, raw: opts.RawFilter, snapLen: snap}

	all, err := listInterfaces()
	if err != nil {
		return nil, err
	}
	// A whole-host capture (no interfaces given), or one of several
	// interfaces, is written as pcapng whatever the format asked: one
	// interface block per interface, each packet naming its own, and
	// room for interfaces that appear later.
	wholeHost := len(p.Interfaces) == 0
	format := p.Format
	if wholeHost || len(p.Interfaces) > 1 {
		format = tripcap.FormatPcapng
	}
	ifcs, _, err := selectInterfaces(all, p.Interfaces, format)
	if err != nil {
		return nil, err
	}
	if wholeHost {
		var dups []string
		if ifcs, dups = dedupe(ifcs); len(dups) > 0 {
			e.log.Info("interfaces left out: everything they carry is recorded on others", "capture", spec.Name, "interfaces", dups)
		}
	}
	progs := make([][]xbpf.RawInstruction, len(ifcs))
	for i, ifc := range ifcs {
		if progs[i], err = directedProgram(flt, ifc); err != nil {
			return nil, err
		}
	}

	// A stream touches no file: no path, no capture directory.
	var rel string
	var root *os.Root
	if opts.Stream == nil {
		if rel, err = relCapturePath(e.cfg.CaptureDir, spec.Path); err != nil {
			return nil, err
		}
		if root, err = captureRoot(e.cfg.CaptureDir); err != nil {
			return nil, localFileError(err)
		}
	}
	ocfg := outputConfig{
		dir:        e.cfg.CaptureDir,
		first:      rel,
		format:     format,
		section:    section(spec),
		bufSize:    e.cfg.WriteBufferBytes,
		totalBytes: p.TotalBytesPerSession,
		guard:      guard,
		stream:     opts.Stream,
	}
	timeLimit := time.Duration(p.TimeLimitInSeconds) * time.Second
	if p.Continuous() {
		cs := p.CaptureSettings
		ocfg.continuous = true
		ocfg.fileCount = max(int(*cs.FileCount), 1)
		ocfg.fileSize = *cs.FileSizeInBytes
		timeLimit = time.Duration(*cs.SessionTimeLimitInSeconds) * time.Second
	}
	desc := flt.describe()
	for _, ifc := range ifcs {
		ocfg.ifaces = append(ocfg.ifaces, pcapfile.Interface{Name: ifc.Name, Filter: desc, LinkType: ifc.Framing.pcapLinkType(), SnapLen: snap})
	}
	out, err := newOutput(root, ocfg)
	if err != nil {
		closeRoot(root)
		return nil, localFileError(err)
	}

	s := &Session{
		eng:     e,
		spec:    spec,
		params:  p,
		log:     e.log.With("capture", spec.Name, "id", spec.ID),
		filter:  flt,
		desc:    desc,
		rc:      e.cfg.ring(),
		out:     out,
		root:    root,
		limit:   timeLimit,
		flushNs: int64(e.cfg.FlushInterval),
		pollNs:  int64(e.cfg.ring().pollTimeout),
		drainNs: int64(e.cfg.BlockTimeout + 20*time.Millisecond),
		stopCh:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	for i, ifc := range ifcs {
		sock, err := openSocket(ifc, i, progs[i], e.cfg.ring())
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			if sock != nil {
				sock.close()
			}
			for _, s := range s.socks {
				s.close()
			}
			out.discard()
			closeRoot(root)
			return nil, err
		}
		s.socks = append(s.socks, sock)
	}
	s.wholeHost = wholeHost
	s.single = len(s.socks) == 1 && !wholeHost
	if !s.single {
		s.merge = newMerger()
		s.mcounts = make([]counts, len(s.socks))
		for _, sock := range s.socks {
			s.merge.add(sock.id, 0)
		}
	}
	if wholeHost {
		if s.watch, err = openLinkWatch(); err != nil {
			s.log.Warn("interfaces that appear will not be captured", "err", err)
			s.note("interfaces that appear during the capture are not captured: %v", err)
		}
	}
	// Everything stamped from now on went through the filters.
	s.start = time.Now()
	s.t0 = s.start.UnixNano()
	s.lastFlush = s.t0

	e.mu.Lock()
	e.sessions[s] = struct{}{}
	e.mu.Unlock()
	names := make([]string, len(ifcs))
	for i, ifc := range ifcs {
		names[i] = ifc.Name
	}
	s.log.Info("capture started", "interfaces", names, "file", out.where(), "format", format, "snapLen", snap, "timeLimit", timeLimit)
	go s.run(pre)
	return s, nil
}

// closeRoot closes a session's capture directory; a stream has none.
func closeRoot(root *os.Root) {
	if root != nil {
		root.Close()
	}
}

// section is the pcapng section header of a session's files.
func section(spec tripcap.CaptureSpec) pcapfile.Section {
	comment := spec.Comment
	if comment == "" && (spec.Name != "" || spec.ID != "") {
		comment = fmt.Sprintf("tripcap capture %s (id %s)", spec.Name, spec.ID)
	}
	sec := pcapfile.Section{Comment: comment, Hardware: runtime.GOARCH, Application: "tripcap " + tripcap.Version}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		sec.OS = strings.TrimRight(string(uts.Sysname[:]), "\x00") + " " + strings.TrimRight(string(uts.Release[:]), "\x00")
	}
	return sec
}

func (e *Engine) forget(s *Session) {
	e.mu.Lock()
	delete(e.sessions, s)
	e.mu.Unlock()
}
