package triage

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/tripcap/tripcap"
)

// Interface is a capture interface of a set of files. The files of one ring
// (same section comment, or same file name but for the ring number) share
// their interfaces; other files' interfaces are distinct.
type Interface struct {
	Name, Description, Filter string
	LinkType                  uint16
	SnapLen                   uint32
	// Source is the section comment, else the file's ring stem.
	Source string

	// Statistics, cumulative over a ring (the largest seen).
	HasStats    bool
	Received    uint64
	HasReceived bool
	Drops       uint64
	Start       int64 // isb_starttime, ns (0: unknown)
}

type ifaceKey struct {
	source, name string
	link         uint16
	// nth tells apart interfaces of one file with the same name and link
	// type (unnamed pcap interfaces merged into one file): the nth of a
	// file is the nth of the other files of its ring.
	nth int
}

// Source reads several capture files as one stream of packets in timestamp
// order (each file is taken to be in order, as capture files are). It is
// what both the analyzer and the merge command read.
type Source struct {
	files  []*openFile
	heap   fileHeap
	ifaces []Interface
	byKey  map[ifaceKey]int
	// Files says how each file was read; EndsAt and Error are set for a
	// file that could not be read to its end.
	Files []tripcap.SummaryFile

	pending *openFile // returned last, to advance on the next call
}

type openFile struct {
	idx   int
	in    input
	r     *fileReader
	cur   packet
	stem  string
	gmap  []int // file interface → Source interface
	alive bool
}

// Packet is one packet of a Source; Data is valid until the next call to Next.
type Packet struct {
	Timestamp int64 // nanoseconds since the Unix epoch
	Interface int   // index into Source.Interfaces
	OrigLen   int
	Data      []byte
}

// Open opens the files and reads each one's headers and first packet. A
// file that cannot be opened or is not a capture file is an error; one that
// is cut or malformed further on is read up to there (see Files).
func Open(paths []string) (*Source, error) {
	if len(paths) == 0 {
		return nil, tripcap.Errorf(tripcap.EINVALID, "no capture file given")
	}
	ins := make([]input, 0, len(paths))
	closeAll := func() {
		for _, in := range ins {
			in.Close()
		}
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("opening capture file: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			closeAll()
			return nil, fmt.Errorf("opening capture file: %w", err)
		}
		ins = append(ins, input{name: p, r: f, size: st.Size()})
	}
	s, err := openInputs(ins)
	if err != nil {
		closeAll()
	}
	return s, err
}

// input is an open capture file (or, in tests, bytes in memory).
type input struct {
	name string
	r    interface {
		io.Reader
		io.ReaderAt
		io.Closer
	}
	size int64
}

func (in input) Close() error { return in.r.Close() }

func openInputs(ins []input) (*Source, error) {
	s := &Source{byKey: map[ifaceKey]int{}}
	bufSize := readBufferSize
	if len(ins) > 8 {
		// Many files open at once: smaller buffers, still larger than
		// a record of the largest snap length.
		bufSize = 300 << 10
	}
	for i, in := range ins {
		r, err := newFileReader(in.name, in.r, bufSize)
		if err != nil {
			return nil, tripcap.Errorf(tripcap.EINVALID, "%v", err)
		}
		of := &openFile{idx: i, in: in, r: r, stem: ringStem(in.name), alive: true}
		r.onIface = func(j int) { s.declare(of, j) }
		if !r.ng {
			s.declare(of, 0)
		}
		s.files = append(s.files, of)
		s.Files = append(s.Files, tripcap.SummaryFile{Path: in.name, Format: r.format()})
	}
	for _, of := range s.files {
		s.advance(of)
		if of.alive {
			s.heap.items = append(s.heap.items, of)
		}
	}
	heap.Init(&s.heap)
	return s, nil
}

// declare maps a file's interface j to the Source's interfaces.
func (s *Source) declare(of *openFile, j int) {
	info := of.r.ifaces[j]
	source := of.r.comment
	display := source
	if source == "" {
		source = "file:" + of.stem
		display = of.stem
	}
	k := ifaceKey{source: source, name: info.name, link: info.link}
	for _, other := range of.r.ifaces[:j] {
		if other.name == info.name && other.link == info.link {
			k.nth++
		}
	}
	g, ok := s.byKey[k]
	if !ok {
		g = len(s.ifaces)
		s.byKey[k] = g
		s.ifaces = append(s.ifaces, Interface{Name: info.name, Description: info.desc, Filter: info.filter, LinkType: info.link, SnapLen: info.snap, Source: display})
	} else {
		s.ifaces[g].SnapLen = max(s.ifaces[g].SnapLen, info.snap)
	}
	for len(of.gmap) <= j {
		of.gmap = append(of.gmap, -1)
	}
	of.gmap[j] = g
}

// advance reads a file's next packet, recording its end.
func (s *Source) advance(of *openFile) {
	err := of.r.next(&of.cur)
	if err == nil {
		s.Files[of.idx].Packets++
		return
	}
	of.alive = false
	s.collectStats(of)
	sf := &s.Files[of.idx]
	sf.Comment = of.r.comment
	if errors.Is(err, io.EOF) {
		return
	}
	off := of.r.off
	var ea *errorAt
	if errors.As(err, &ea) {
		off = ea.offset
	}
	sf.EndsAt, sf.Error = &off, err.Error()
}

// collectStats folds a finished file's statistics blocks into its interfaces.
func (s *Source) collectStats(of *openFile) {
	for j, info := range of.r.ifaces {
		if j >= len(of.gmap) || of.gmap[j] < 0 || !info.hasStats {
			continue
		}
		g := &s.ifaces[of.gmap[j]]
		// A ring's files carry the session's counters so far: keep the
		// largest.
		g.HasStats = true
		g.Drops = max(g.Drops, info.drops)
		if info.hasRecv {
			g.HasReceived = true
			g.Received = max(g.Received, info.recv)
		}
		if info.start != 0 && (g.Start == 0 || info.start < g.Start) {
			g.Start = info.start
		}
	}
}

// Interfaces lists the interfaces declared so far.
func (s *Source) Interfaces() []Interface { return s.ifaces }

// Comments lists the distinct section comments of the files, in file order.
func (s *Source) Comments() []string {
	var out []string
	seen := map[string]bool{}
	for _, of := range s.files {
		if c := of.r.comment; c != "" && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// Next returns the earliest of the files' next packets; io.EOF when all are
// read.
func (s *Source) Next(p *Packet) error {
	if of := s.pending; of != nil {
		// Advanced only now, so the last packet's data (in the file's
		// read buffer) stayed valid until this call.
		s.pending = nil
		s.advance(of)
		if of.alive {
			heap.Fix(&s.heap, 0)
		} else {
			heap.Pop(&s.heap)
		}
	}
	if len(s.heap.items) == 0 {
		return io.EOF
	}
	of := s.heap.items[0]
	p.Timestamp, p.OrigLen, p.Data = of.cur.ts, int(of.cur.origLen), of.cur.data
	p.Interface = of.gmap[of.cur.iface]
	s.pending = of
	return nil
}

// Close closes the files.
func (s *Source) Close() error {
	var first error
	for _, of := range s.files {
		if err := of.in.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// fileHeap orders open files by their current packet's timestamp, then by
// their order on the command line.
type fileHeap struct {
	items []*openFile
}

func (h fileHeap) Len() int { return len(h.items) }
func (h fileHeap) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if a.cur.ts != b.cur.ts {
		return a.cur.ts < b.cur.ts
	}
	return a.idx < b.idx
}
func (h fileHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *fileHeap) Push(x any)   { h.items = append(h.items, x.(*openFile)) }
func (h *fileHeap) Pop() any {
	n := len(h.items) - 1
	x := h.items[n]
	h.items = h.items[:n]
	return x
}

// CaptureStart returns the earliest capture start (isb_starttime) of the
// pcapng statistics blocks at the files' ends, or 0. tripcap's engine stamps
// it when its filters are attached: the packets before it come from the
// pre-trigger buffer. The blocks are read from the end (each block ends with
// its length), before the packets are, so each packet can be put on its side
// of the alert as it is read.
func (s *Source) CaptureStart() int64 {
	var start int64
	for _, of := range s.files {
		if !of.r.ng || of.r.bo == nil {
			continue
		}
		end := of.in.size
		// A copy of the reader parses the blocks, so the reader itself
		// is not disturbed.
		tmp := fileReader{path: of.r.path, bo: of.r.bo, ifaces: slices.Clone(of.r.ifaces), ifaceBase: of.r.ifaceBase}
		for k := 0; k < 64 && end >= 12; k++ {
			var t [4]byte
			if _, err := of.in.r.ReadAt(t[:], end-4); err != nil {
				break
			}
			n := int64(tmp.bo.Uint32(t[:]))
			if n < 12 || n%4 != 0 || n > end || n > 1<<16 {
				break
			}
			blk := make([]byte, n)
			if _, err := of.in.r.ReadAt(blk, end-n); err != nil || tmp.bo.Uint32(blk) != ngISB || int64(tmp.bo.Uint32(blk[4:])) != n {
				break
			}
			tmp.statistics(blk[8 : n-4])
			end -= n
		}
		for _, ifc := range tmp.ifaces {
			// Only blocks with counters come from a capture engine: a
			// merge writes the first packet's time where it knows no start.
			if ifc.hasStats && ifc.start != 0 && (start == 0 || ifc.start < start) {
				start = ifc.start
			}
		}
	}
	return start
}
