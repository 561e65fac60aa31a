//go:build linux

package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/netns"
	xbpf "golang.org/x/net/bpf"
)

// attach attaches prog to a socket, which runs the kernel's own checks.
func attach(fd int, prog []xbpf.RawInstruction) error {
	if len(prog) == 0 {
		return unix.EINVAL
	}
	f := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		f[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(prog)), Filter: &f[0]})
}

// TestValidateAgreesWithKernel attaches random programs, and compiled
// ones, to a UDP socket (no privilege needed): the kernel must accept
// exactly what Validate accepts.
func TestValidateAgreesWithKernel(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var known []uint16
	for op := range uint16(0x100) {
		if knownOp(op) {
			known = append(known, op)
		}
	}
	rng := rand.New(rand.NewPCG(11, 12))
	ks := [...]uint32{0, 1, 2, 3, 15, 16, 31, 32, 0xffffffff, skfADOff + skfADPktType, skfADOff + 64, 0xfff00000}
	randProg := func() []xbpf.RawInstruction {
		prog := make([]xbpf.RawInstruction, 1+rng.IntN(8))
		for i := range prog {
			ins := &prog[i]
			switch rng.IntN(8) {
			case 0:
				ins.Op = uint16(rng.IntN(0x100))
			case 1:
				ins.Op = uint16(rng.IntN(0x10000))
			default:
				ins.Op = known[rng.IntN(len(known))]
			}
			switch rng.IntN(4) {
			case 0:
				ins.K = rng.Uint32()
			case 1:
				ins.K = skfADOff + uint32(rng.IntN(80))
			default:
				ins.K = ks[rng.IntN(len(ks))]
			}
			ins.Jt, ins.Jf = uint8(rng.IntN(4)), uint8(rng.IntN(4))
		}
		if rng.IntN(4) > 0 {
			prog[len(prog)-1] = xbpf.RawInstruction{Op: clsRET | uint16(rng.IntN(2))*retA}
		}
		return prog
	}
	mismatches := 0
	check := func(prog []xbpf.RawInstruction) {
		t.Helper()
		verr := Validate(prog)
		kerr := attach(fd, prog)
		if (verr == nil) != (kerr == nil) {
			mismatches++
			if mismatches <= 5 {
				t.Errorf("Validate: %v; kernel: %v\n%v\n%s", verr, kerr, prog, Disassemble(prog))
			}
		}
	}
	valid := 0
	for range 30000 {
		prog := randProg()
		if Validate(prog) == nil {
			valid++
		}
		check(prog)
	}
	if valid < 1000 {
		t.Errorf("only %d random programs were valid; the generator proves little", valid)
	}
	// Compiled programs, one near the instruction limit.
	for _, filters := range [][]tripcap.PacketCaptureFilter{
		{{Protocol: "TCP", LocalPort: "80"}},
		{{RemoteIPAddress: "2001:db8::1-2001:db9::1"}, {LocalIPAddress: "10.0.0.1;10.0.0.2", RemotePort: "1-1024"}},
		nearLimit(t),
	} {
		for _, link := range []LinkType{LinkEthernet, LinkRawIP} {
			prog, err := Compile(filters, link, 0)
			if err != nil {
				t.Fatal(err)
			}
			check(prog)
		}
	}
	// Mutations of a valid program.
	base, err := ParseRaw(udpPort53)
	if err != nil {
		t.Fatal(err)
	}
	for range 5000 {
		prog := slicesClone(base)
		ins := &prog[rng.IntN(len(prog))]
		switch rng.IntN(4) {
		case 0:
			ins.Op ^= 1 << rng.IntN(8)
		case 1:
			ins.K = ks[rng.IntN(len(ks))]
		case 2:
			ins.Jt += uint8(rng.IntN(8))
		default:
			ins.Jf += uint8(rng.IntN(8))
		}
		check(prog)
	}
}

// nearLimit returns a filter of IPv6 addresses that compiles to nearly
// the kernel's 4096 instructions.
func nearLimit(t *testing.T) []tripcap.PacketCaptureFilter {
	var addrs []string
	for i := range 600 {
		addrs = append(addrs, net.IP{0x20, 0x01, 0x0d, 0xb8, 15: byte(i), 14: byte(i >> 8)}.String())
	}
	for n := len(addrs); n > 0; n-- {
		f := []tripcap.PacketCaptureFilter{{RemoteIPAddress: strings.Join(addrs[:n], ";")}}
		for _, link := range []LinkType{LinkEthernet, LinkRawIP} {
			if _, err := Compile(f, link, 0); err != nil {
				goto smaller
			}
		}
		if prog, _ := Compile(f, LinkEthernet, 0); len(prog) < MaxInstructions-20 {
			t.Fatalf("%d addresses compile to %d instructions; want nearly %d", n, len(prog), MaxInstructions)
		}
		return f
	smaller:
	}
	t.Fatal("no list fits")
	return nil
}

func slicesClone(p []xbpf.RawInstruction) []xbpf.RawInstruction {
	return append([]xbpf.RawInstruction(nil), p...)
}

// TestKernelAFPacket runs compiled programs in the kernel. Frames are sent
// over a veth pair; an AF_PACKET socket on the sending end sees them as
// PACKET_OUTGOING, one on the receiving end as PACKET_OTHERHOST (their MAC
// is not its own, so the receiver's IP stack ignores them), after the
// kernel has taken the outer 802.1Q/802.1ad tag off into metadata. Each
// socket must receive exactly the frames the reference matcher keeps.
func TestKernelAFPacket(t *testing.T) {
	lab := netns.New(t)
	nsA, nsB := lab.Namespace(), lab.Namespace()
	link := lab.Veth(nsA, nsB, netns.LinkOptions{})

	packetSocket := func(ns *netns.Namespace, ifname string) (fd, ifindex int) {
		t.Helper()
		err := ns.Do(func() error {
			ifi, err := net.InterfaceByName(ifname)
			if err != nil {
				return err
			}
			ifindex = ifi.Index
			// Protocol 0 receives nothing until bound, after the filter is on.
			fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd, ifindex
	}
	bindAll := func(fd, ifindex int) {
		t.Helper()
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
			t.Fatal(err)
		}
	}
	sender, ifA := packetSocket(nsA, link.A.Name)
	capA, _ := packetSocket(nsA, link.A.Name)
	capB, ifB := packetSocket(nsB, link.B.Name)
	// control keeps every frame: what it lacks was lost before the taps
	// (the per-CPU backlog drops frames when the host is busy).
	control, _ := packetSocket(nsB, link.B.Name)
	if err := attach(control, []xbpf.RawInstruction{{Op: clsRET | retK, K: DefaultSnapLen}}); err != nil {
		t.Fatal(err)
	}
	bindAll(control, ifB)
	// The first programs are placeholders that drop everything.
	for _, fd := range []int{capA, capB} {
		if err := attach(fd, []xbpf.RawInstruction{{Op: clsRET | retK}}); err != nil {
			t.Fatal(err)
		}
	}
	bindAll(capA, ifA)
	bindAll(capB, ifB)

	// Frames go to a unicast MAC that is not the receiver's.
	dst := net.HardwareAddr{0x02, 0xff, 0xff, 0xff, 0xff, 0x01}
	send := func(frame []byte) {
		t.Helper()
		sa := &unix.SockaddrLinklayer{Ifindex: ifA, Halen: 6}
		copy(sa.Addr[:], dst)
		if err := unix.Sendto(sender, frame, 0, sa); err != nil {
			t.Fatalf("send %d bytes: %v", len(frame), err)
		}
	}
	// Received frames are processed in order on the sending CPU's backlog:
	// pinning the sender makes a barrier frame arrive after the others.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var oldMask, cpu0 unix.CPUSet
	if err := unix.SchedGetaffinity(0, &oldMask); err != nil {
		t.Fatal(err)
	}
	cpu0.Set(0)
	if err := unix.SchedSetaffinity(0, &cpu0); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &oldMask)

	type got struct {
		frame   []byte
		pktType uint8
	}
	// drain returns the frames queued on fd, by their marker index in this round.
	drain := func(fd int, round uint16) map[uint16]got {
		t.Helper()
		out := map[uint16]got{}
		buf := make([]byte, 4096)
		for {
			n, from, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
			if errors.Is(err, unix.EAGAIN) {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			f := buf[:n]
			if n < 8 || !bytes.Equal(f[n-8:n-6], []byte("TC")) || !bytes.Equal(f[n-2:], []byte("PF")) ||
				binary.BigEndian.Uint16(f[n-6:]) != round {
				continue // another round's frame, or not ours
			}
			out[binary.BigEndian.Uint16(f[n-4:])] = got{bytes.Clone(f), from.(*unix.SockaddrLinklayer).Pkttype}
		}
	}

	rng := rand.New(rand.NewPCG(99, 1))
	rounds, perRound := 200, 40
	var total, kept, lost int
	for round := range uint16(rounds) {
		filters := make([]tripcap.PacketCaptureFilter, 1+rng.IntN(3))
		for i := range filters {
			filters[i] = randFilter(rng)
		}
		parsed, err := tripcap.ParseFilters(filters)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := Compile(filters, LinkEthernet, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, fd := range []int{capA, capB} {
			if err := attach(fd, prog); err != nil {
				t.Fatalf("the kernel refuses the program: %v\n%s", err, Disassemble(prog))
			}
			drain(fd, 0xffff)
		}

		frames := make([][]byte, perRound)
		for i := range frames {
			pkt := randPacket(rng, LinkEthernet)
			if rng.IntN(3) > 0 {
				steer(rng, &pkt, parsed[rng.IntN(len(parsed))])
			}
			f := pkt.bytes(rng)
			if rng.IntN(4) == 0 {
				f = f[:20+rng.IntN(len(f)-19)] // untagging must leave the marker whole
			}
			f = append(f, 'T', 'C', byte(round>>8), byte(round), byte(i>>8), byte(i), 'P', 'F')
			copy(f, dst)
			frames[i] = f
			send(f)
		}
		// The barrier frame comes after the others on the backlog; once
		// control has it, every frame that survived has passed every tap.
		const barrier = 0xffff
		arrived := map[uint16]got{}
		for try := 0; ; try++ {
			if try == 40 {
				t.Fatalf("round %d: the barrier frame never arrived", round)
			}
			send(append(append(bytes.Clone(dst), link.A.MAC...), 0x88, 0xb5, 'T', 'C', byte(round>>8), byte(round), 0xff, 0xff, 'P', 'F'))
			unix.Poll([]unix.PollFd{{Fd: int32(control), Events: unix.POLLIN}}, 250)
			maps.Copy(arrived, drain(control, round))
			if _, ok := arrived[barrier]; ok {
				break
			}
		}
		gotA, gotB := drain(capA, round), drain(capB, round)
		for i, f := range frames {
			total++
			idx := uint16(i)
			wantA := tripcap.MatchFilters(parsed, decodeFrame(f, LinkEthernet, packetOutgoing))
			seenB := untag(f)
			wantB := tripcap.MatchFilters(parsed, decodeFrame(seenB, LinkEthernet, 3))
			gA, okA := gotA[idx]
			gB, okB := gotB[idx]
			if _, ok := arrived[idx]; !ok {
				lost++ // the receiving side cannot tell
				okB, wantB = false, false
			}
			if okA != wantA || okB != wantB {
				t.Fatalf("round %d frame %d: kernel kept outgoing=%v incoming=%v, reference %v, %v\nfilters %+v\nframe % x\n%s",
					round, i, okA, okB, wantA, wantB, filters, f, Disassemble(prog))
			}
			if okA && (gA.pktType != packetOutgoing || !bytes.Equal(gA.frame, f)) {
				t.Fatalf("outgoing copy: type %d, % x; want type 4, % x", gA.pktType, gA.frame, f)
			}
			if okB && (gB.pktType != unix.PACKET_OTHERHOST || !bytes.Equal(gB.frame, seenB)) {
				t.Fatalf("incoming copy: type %d, % x; want type 3, % x", gB.pktType, gB.frame, seenB)
			}
			if okA {
				kept++
			}
			if okB {
				kept++
			}
		}
	}
	t.Logf("%d frames, each seen twice; %d copies kept; %d lost before the receiving taps", total, kept, lost)
	if lost > total/2 {
		t.Fatalf("the host is too busy: %d of %d frames were lost before the receiving taps", lost, total)
	}
	if kept < 2*total/10 || kept > 2*total*9/10 {
		t.Errorf("lopsided: %d of %d copies kept", kept, 2*total)
	}
}

// untag is what a receiving socket sees of a frame: the kernel moves the
// outer 802.1Q or 802.1ad tag into the packet's metadata before the taps.
func untag(f []byte) []byte {
	if len(f) >= 18 {
		if tpid := binary.BigEndian.Uint16(f[12:]); tpid == etherTypeVLAN || tpid == etherTypeQinQ {
			return append(bytes.Clone(f[:12]), f[16:]...)
		}
	}
	return f
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
