//go:build linux

package afpacket

import (
	"errors"
	"fmt"
	"sync"
	"time"

	gpafpacket "github.com/gopacket/gopacket/afpacket"
	xbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/tripcap/tripcap"
)

// ringConfig sizes a TPACKET_V3 ring.
type ringConfig struct {
	ringBytes    int
	blockBytes   int
	blockTimeout time.Duration
	pollTimeout  time.Duration
}

// socket is one AF_PACKET socket bound to one interface.
type socket struct {
	ifc netInterface
	// id is the interface's number in the capture file.
	id int
	tp *gpafpacket.TPacket

	mu     sync.Mutex // guards the fields below and tp's statistics calls against Close
	closed bool
	// gopacket accumulates the kernel's counters in 32 bits; these widen
	// them, which holds as long as they are sampled at least every 2^32
	// packets (the session samples every few seconds).
	lastPackets, lastDrops uint32
	packets, drops         uint64
}

// openSocket opens a TPACKET_V3 socket on ifc and attaches prog before the
// first read. Packets that reach the socket between bind and attach are not
// filtered; readers drop them by timestamp (see session.t0).
func openSocket(ifc netInterface, id int, prog []xbpf.RawInstruction, rc ringConfig) (*socket, error) {
	blocks := rc.ringBytes / rc.blockBytes
	if blocks < 1 {
		blocks = 1
	}
	tp, err := gpafpacket.NewTPacket(
		gpafpacket.OptInterface(ifc.Name),
		gpafpacket.OptTPacketVersion(gpafpacket.TPacketVersion3),
		gpafpacket.OptSocketType(ifc.Framing.socketType()),
		gpafpacket.OptBlockSize(rc.blockBytes),
		gpafpacket.OptFrameSize(gpafpacket.DefaultFrameSize),
		gpafpacket.OptNumBlocks(blocks),
		gpafpacket.OptBlockTimeout(rc.blockTimeout),
		gpafpacket.OptPollTimeout(rc.pollTimeout),
	)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, tripcap.Errorf(tripcap.EFORBIDDEN, "capturing needs root or CAP_NET_RAW (opening an AF_PACKET socket on %s: %v)", ifc.Name, err)
		}
		return nil, fmt.Errorf("opening a TPACKET_V3 socket on %s (ring %d bytes in %d-byte blocks): %w", ifc.Name, blocks*rc.blockBytes, rc.blockBytes, err)
	}
	if err := tp.SetBPF(prog); err != nil {
		tp.Close()
		return nil, fmt.Errorf("attaching the filter on %s: %w", ifc.Name, err)
	}
	return &socket{ifc: ifc, id: id, tp: tp}, nil
}

// stats returns the kernel's counters: packets that passed the filter
// (drops included) and packets dropped because the ring was full.
func (s *socket) stats() (received, dropped uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		// Reading PACKET_STATISTICS resets the kernel's counters;
		// gopacket accumulates them.
		if _, v3, err := s.tp.SocketStats(); err == nil {
			p, d := uint32(v3.Packets()), uint32(v3.Drops())
			s.packets += uint64(p - s.lastPackets)
			s.drops += uint64(d - s.lastDrops)
			s.lastPackets, s.lastDrops = p, d
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
	if !s.closed {
		s.tp.Close()
		s.closed = true
	}
}
