//go:build linux

package afpacket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	xbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/tripcap/tripcap"
)

// The engine reads TPACKET_V3 rings itself rather than through gopacket's
// afpacket: gopacket hands packets over one call at a time, each taking a
// mutex and an atomic add, which on the benchmark cost more than tcpdump's
// whole per-packet budget; and it reports neither a packet's direction
// (sll_pkttype), which the pre-trigger buffer needs, nor lets a socket be
// filtered before it is bound. Walking the ring a block at a time, as
// libpcap does, costs a few loads per packet.

// ringConfig sizes a TPACKET_V3 ring.
type ringConfig struct {
	ringBytes    int
	blockBytes   int
	blockTimeout time.Duration
	pollTimeout  time.Duration
}

// Layout of the ring (linux/if_packet.h), little-endian on every platform
// Go supports for this package.
const (
	// struct tpacket_block_desc: version, offset_to_priv, then
	// struct tpacket_hdr_v1.
	blkStatus       = 8
	blkNumPkts      = 12
	blkOffsetToPkt1 = 16
	// struct tpacket3_hdr.
	pktNextOffset = 0
	pktSec        = 4
	pktNsec       = 8
	pktSnaplen    = 12
	pktLen        = 16
	pktStatus     = 20
	pktMac        = 24
	pktVlanTCI    = 32
	pktVlanTPID   = 36
	// struct sockaddr_ll follows at TPACKET_ALIGN(sizeof(tpacket3_hdr)).
	pktSll       = 48
	sllPkttype   = pktSll + 10
	ringFrameLen = 2048 // tp_frame_size: only a bookkeeping unit in V3
)

var ne = binary.NativeEndian

// socket is one AF_PACKET socket, bound to one interface, with its ring.
type socket struct {
	ifc netInterface
	// id is the interface's number in the capture file.
	id int

	fd int
	// file holds fd in Go's network poller: a reader waiting for a block
	// parks its goroutine instead of blocking a thread in poll(2), which
	// would make the runtime's sysmon hand its P over and then wake every
	// 20 µs for a while, a cost paid again at every wait.
	file        *os.File
	raw         syscall.RawConn
	mem         []byte
	blockSize   int
	numBlocks   int
	next        int // the next block to read
	pollTimeout time.Duration
	// The state of a wait in nextBlock, for ready.
	readyFn    func(uintptr) bool
	waitStatus *uint32
	wakes      int
	sockErr    error

	// delivered counts the packets written from this socket.
	delivered atomic.Uint64
	// started is when the socket joined its session (zero: at the
	// session's start); ended when its interface went away (zero: it did
	// not). Both are set under the session's writer lock.
	started, ended time.Time

	mu      sync.Mutex // guards closed and the counters against close
	closed  bool
	packets uint64 // PACKET_STATISTICS tp_packets, accumulated
	drops   uint64 // PACKET_STATISTICS tp_drops, accumulated
}

// openSocket opens a TPACKET_V3 socket on ifc with prog attached. The
// socket is bound to the interface, and so starts receiving, only once the
// filter is in place: no packet bypasses it.
func openSocket(ifc netInterface, id int, prog []xbpf.RawInstruction, rc ringConfig) (_ *socket, err error) {
	typ := unix.SOCK_RAW
	if ifc.Framing == framingRawIP {
		typ = unix.SOCK_DGRAM
	}
	// Protocol 0: nothing is received until bind names one.
	fd, err := unix.Socket(unix.AF_PACKET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, tripcap.Errorf(tripcap.EFORBIDDEN, "capturing needs root or CAP_NET_RAW (opening an AF_PACKET socket on %s: %v)", ifc.Name, err)
		}
		return nil, fmt.Errorf("opening an AF_PACKET socket on %s: %w", ifc.Name, err)
	}
	s := &socket{ifc: ifc, id: id, fd: fd, blockSize: rc.blockBytes, numBlocks: max(rc.ringBytes/rc.blockBytes, 1),
		pollTimeout: rc.pollTimeout}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, fmt.Errorf("%s: asking for TPACKET_V3: %w", ifc.Name, err)
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(s.blockSize),
		Block_nr:       uint32(s.numBlocks),
		Frame_size:     ringFrameLen,
		Frame_nr:       uint32(s.blockSize / ringFrameLen * s.numBlocks),
		Retire_blk_tov: uint32(max(rc.blockTimeout/time.Millisecond, 1)),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("%s: setting up a %d-byte ring of %d-byte blocks: %w", ifc.Name, s.blockSize*s.numBlocks, s.blockSize, err)
	}
	// MAP_POPULATE maps the whole ring now: faulting its pages in one by
	// one during the first pass would slow the reader when it can least
	// afford it, under a burst.
	if s.mem, err = unix.Mmap(fd, 0, s.blockSize*s.numBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, fmt.Errorf("%s: mapping the ring: %w", ifc.Name, err)
	}
	if len(prog) > 0 {
		fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
			return nil, fmt.Errorf("%s: attaching the filter: %w", ifc.Name, err)
		}
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, fmt.Errorf("%s: binding the socket: %w", ifc.Name, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("%s: making the socket non-blocking: %w", ifc.Name, err)
	}
	// A non-blocking descriptor goes into the network poller.
	s.file = os.NewFile(uintptr(fd), "packet socket on "+ifc.Name)
	if s.raw, err = s.file.SyscallConn(); err != nil {
		return nil, fmt.Errorf("%s: %w", ifc.Name, err)
	}
	return s, nil
}

// setFilter replaces the socket's filter, as when a whole-host capture picks
// up a bridge port and the bridge from then on is captured outgoing only.
func (s *socket) setFilter(prog []xbpf.RawInstruction) error {
	if len(prog) == 0 {
		return nil
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	if err := unix.SetsockoptSockFprog(s.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("%s: replacing the filter: %w", s.ifc.Name, err)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// nextBlock returns the next block the kernel has handed over, waiting up
// to the poll timeout; nil when none came.
func (s *socket) nextBlock() ([]byte, error) {
	blk := s.mem[s.next*s.blockSize : (s.next+1)*s.blockSize]
	status := (*uint32)(unsafe.Pointer(&blk[blkStatus]))
	if atomic.LoadUint32(status)&unix.TP_STATUS_USER != 0 {
		return blk, nil
	}
	if err := s.file.SetReadDeadline(time.Now().Add(s.pollTimeout)); err != nil {
		return nil, fmt.Errorf("setting the poll deadline: %w", err)
	}
	// The poller's readiness is edge-triggered: a block handed over
	// after the check above still wakes the wait. A wake without a block
	// may be an error event (ENETDOWN when the interface went down or
	// away), which the socket's pending error tells.
	s.waitStatus, s.wakes, s.sockErr = status, 0, nil
	if s.readyFn == nil {
		s.readyFn = s.ready // allocated once, not at every wait
	}
	err := s.raw.Read(s.readyFn)
	sockErr := s.sockErr
	s.waitStatus, s.sockErr = nil, nil
	switch {
	case sockErr != nil:
		return nil, sockErr
	case err == nil:
		return blk, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		// Error events can come with others; a quiet socket is
		// checked at every timeout too.
		if err := s.pendingError(); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if err := s.pendingError(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("waiting for packets: %w", err)
}

// ready is nextBlock's test of a wake: the awaited block is the kernel's
// no more, or the socket reports an error.
func (s *socket) ready(uintptr) bool {
	if atomic.LoadUint32(s.waitStatus)&unix.TP_STATUS_USER != 0 {
		return true
	}
	if s.wakes++; s.wakes > 1 {
		s.sockErr = s.pendingError()
	}
	return s.sockErr != nil
}

// pendingError returns (and clears) the socket's pending error.
func (s *socket) pendingError() error {
	serr, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return fmt.Errorf("reading the socket's error: %w", err)
	}
	if serr != 0 {
		return fmt.Errorf("the socket reports: %w", unix.Errno(serr))
	}
	return nil
}

// release hands the current block back to the kernel.
func (s *socket) release() {
	blk := s.mem[s.next*s.blockSize:]
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&blk[blkStatus])), unix.TP_STATUS_KERNEL)
	s.next++
	if s.next == s.numBlocks {
		s.next = 0
	}
}

// ringPacket is one packet in a block.
type ringPacket struct {
	data    []byte // in the ring: valid until the block is released
	ts      int64  // nanoseconds
	origLen int
	// vlan is the 802.1Q/802.1ad tag the kernel took out of the frame
	// (TCI and TPID), when vlanValid.
	vlanTCI, vlanTPID uint16
	vlanValid         bool
	outgoing          bool
}

// blockPackets walks the packets of a block.
type blockPackets struct {
	blk  []byte
	left int
	off  int
	// pf is how far the block has been prefetched.
	pf int
}

func packetsOf(blk []byte) blockPackets {
	off := int(ne.Uint32(blk[blkOffsetToPkt1:]))
	return blockPackets{blk: blk, left: int(ne.Uint32(blk[blkNumPkts:])), off: off, pf: off}
}

// prefetchAhead is how far ahead of the packet being read the block is
// prefetched. The other CPU wrote the block: each packet's first read
// misses the cache, and the hardware's prefetcher, which stops at every
// page boundary, hides only part of that: prefetching took a fifth off
// the engine's user time on the benchmark (performance.md).
const prefetchAhead = 4096

// prefetch asks for the block up to prefetchAhead bytes past off.
func (b *blockPackets) prefetch(off int) {
	for lim := min(off+prefetchAhead, len(b.blk)); b.pf < lim; b.pf += prefetchBytes {
		prefetch(&b.blk[b.pf])
	}
}

// next decodes the next packet into p; false at the end of the block.
func (b *blockPackets) next(p *ringPacket) bool {
	if b.left == 0 {
		return false
	}
	b.prefetch(b.off)
	b.left--
	h := b.blk[b.off:]
	mac := int(ne.Uint16(h[pktMac:]))
	snap := int(ne.Uint32(h[pktSnaplen:]))
	p.data = h[mac : mac+snap]
	p.ts = int64(ne.Uint32(h[pktSec:]))*1e9 + int64(ne.Uint32(h[pktNsec:]))
	p.origLen = int(ne.Uint32(h[pktLen:]))
	status := ne.Uint32(h[pktStatus:])
	p.vlanValid = status&unix.TP_STATUS_VLAN_VALID != 0
	if p.vlanValid {
		p.vlanTCI = uint16(ne.Uint32(h[pktVlanTCI:]))
		p.vlanTPID = unix.ETH_P_8021Q
		if status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
			p.vlanTPID = ne.Uint16(h[pktVlanTPID:])
		}
	}
	p.outgoing = h[sllPkttype] == unix.PACKET_OUTGOING
	b.off += int(ne.Uint32(h[pktNextOffset:]))
	return true
}

// withVLAN puts a tag the kernel took out back behind the MAC addresses,
// as libpcap does, into buf; the packet on the wire had it.
func withVLAN(p *ringPacket, buf []byte) ([]byte, int) {
	if len(p.data) < 12 {
		return p.data, p.origLen
	}
	out := append(buf[:0], p.data[:12]...)
	out = append(out, byte(p.vlanTPID>>8), byte(p.vlanTPID), byte(p.vlanTCI>>8), byte(p.vlanTCI))
	out = append(out, p.data[12:]...)
	return out, p.origLen + 4
}

// stats returns the kernel's counters: packets that passed the filter
// (drops included) and packets dropped because the ring was full.
func (s *socket) stats() (received, dropped uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		// Reading PACKET_STATISTICS resets the kernel's counters.
		if st, err := unix.GetsockoptTpacketStatsV3(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			s.packets += uint64(st.Packets)
			s.drops += uint64(st.Drops)
		}
	}
	return s.packets, s.drops
}

// close reads the final counters and closes the socket. No reader may be
// running.
func (s *socket) close() {
	s.stats()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.mem != nil {
		_ = unix.Munmap(s.mem)
		s.mem = nil
	}
	if s.file != nil {
		_ = s.file.Close()
	} else {
		_ = unix.Close(s.fd)
	}
}
