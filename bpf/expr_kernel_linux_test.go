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
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/testenv"
	xbpf "golang.org/x/net/bpf"
)

// TestExpressionsAttach attaches every corpus program, for both link
// types, to a socket: the kernel's own checks accept them all.
func TestExpressionsAttach(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, link := range []LinkType{LinkEthernet, LinkRawIP} {
		for _, expr := range append(exprCorpus, "inbound and tcp", "outbound or vlan 7 and host fd00::1") {
			prog, err := CompileCapture(nil, expr, link, 0)
			if err != nil {
				continue // refused on this link (ether on raw IP): TestExpressionsMatchTcpdump checks which
			}
			if err := attach(fd, prog); err != nil {
				t.Errorf("%v %q: the kernel refuses the program: %v\n%s", link, expr, err, Disassemble(prog))
			}
		}
	}
}

// TestExpressionsInKernel sends crafted and random frames over a veth pair
// to two AF_PACKET sockets, one filtered by our program for each corpus
// expression, the other by tcpdump's program for a live capture on that
// interface (tcpdump -i IF -ddd, which reads VLAN tags from the metadata,
// where the kernel puts received frames' outer tags): they keep exactly the
// same frames.
func TestExpressionsInKernel(t *testing.T) {
	bin := testenv.RequireBinary(t, "tcpdump")
	lab := netns.New(t)
	nsA, nsB := lab.Namespace(), lab.Namespace()
	link := lab.Veth(nsA, nsB, netns.LinkOptions{})
	socket := func(ns *netns.Namespace, ifname string) (fd, ifindex int) {
		t.Helper()
		err := ns.Do(func() error {
			ifi, err := net.InterfaceByName(ifname)
			if err != nil {
				return err
			}
			ifindex = ifi.Index
			fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd, ifindex
	}
	bind := func(fd, ifindex int) {
		t.Helper()
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
			t.Fatal(err)
		}
	}
	sender, ifA := socket(nsA, link.A.Name)
	capB, ifB := socket(nsB, link.B.Name)
	capT, _ := socket(nsB, link.B.Name)
	control, _ := socket(nsB, link.B.Name)
	if err := attach(control, []xbpf.RawInstruction{{Op: clsRET | retK, K: DefaultSnapLen}}); err != nil {
		t.Fatal(err)
	}
	bind(control, ifB)
	for _, fd := range []int{capB, capT} {
		if err := attach(fd, []xbpf.RawInstruction{{Op: clsRET | retK}}); err != nil {
			t.Fatal(err)
		}
		bind(fd, ifB)
	}

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

	send := func(frame []byte) {
		t.Helper()
		sa := &unix.SockaddrLinklayer{Ifindex: ifA, Halen: 6}
		copy(sa.Addr[:], frame[:6])
		if err := unix.Sendto(sender, frame, 0, sa); err != nil {
			t.Fatalf("send %d bytes: %v", len(frame), err)
		}
	}
	// drain returns the frames queued on fd, by their marker index in this round.
	drain := func(fd int, round uint16) map[uint16][]byte {
		t.Helper()
		out := map[uint16][]byte{}
		buf := make([]byte, 4096)
		for {
			n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
			if errors.Is(err, unix.EAGAIN) {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			f := buf[:n]
			if n < 8 || !bytes.Equal(f[n-8:n-6], []byte("TC")) || !bytes.Equal(f[n-2:], []byte("PF")) ||
				binary.BigEndian.Uint16(f[n-6:]) != round {
				continue
			}
			out[binary.BigEndian.Uint16(f[n-4:])] = bytes.Clone(f)
		}
	}

	rng := rand.New(rand.NewPCG(31, 41))
	base := craftedFrames(LinkEthernet)
	var total, kept, lost int
	for r, expr := range exprCorpus {
		round := uint16(r)
		live, err := nsB.Exec(t.Context(), bin, "-i", link.B.Name, "-ddd", "--", expr)
		if err != nil {
			continue // refused by tcpdump: TestExpressionsMatchTcpdump checks we refuse it too
		}
		want, err := ParseRaw(string(live))
		if err != nil {
			t.Fatalf("%q: tcpdump -i %s -ddd: %v", expr, link.B.Name, err)
		}
		prog, err := CompileCapture(nil, expr, LinkEthernet, 0)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		if err := attach(capB, prog); err != nil {
			t.Fatalf("%q: the kernel refuses the program: %v", expr, err)
		}
		if err := attach(capT, want); err != nil {
			t.Fatalf("%q: the kernel refuses tcpdump's program: %v", expr, err)
		}
		drain(capB, 0xffff)
		drain(capT, 0xffff)
		var frames [][]byte
		for _, f := range base {
			if len(f) < 1400 { // the link's MTU, with the marker and tags
				frames = append(frames, f)
			}
		}
		for len(frames) < len(base)+20 {
			if f := randomFrame(rng, LinkEthernet); len(f) < 1400 && len(f) >= 14 {
				frames = append(frames, f)
			}
		}
		for i, f := range frames {
			f = append(bytes.Clone(f), 'T', 'C', byte(round>>8), byte(round), byte(i>>8), byte(i), 'P', 'F')
			if f[0]&1 == 0 {
				f[5] ^= 0x80 // never the receiver's own MAC
			}
			frames[i] = f
			send(f)
		}
		const barrier = 0xffff
		arrived := map[uint16][]byte{}
		for try := 0; ; try++ {
			if try == 40 {
				t.Fatalf("%q: the barrier frame never arrived", expr)
			}
			send(append([]byte{2, 0xff, 0xff, 0xff, 0xff, 1, 2, 0, 0, 0, 0, 9, 0x88, 0xb5}, 'T', 'C', byte(round>>8), byte(round), 0xff, 0xff, 'P', 'F'))
			unix.Poll([]unix.PollFd{{Fd: int32(control), Events: unix.POLLIN}}, 250)
			maps.Copy(arrived, drain(control, round))
			if _, ok := arrived[barrier]; ok {
				break
			}
		}
		got, theirs := drain(capB, round), drain(capT, round)
		for i := range frames {
			idx := uint16(i)
			if _, ok := arrived[idx]; !ok {
				lost++
				continue
			}
			total++
			_, wantKept := theirs[idx]
			_, gotKept := got[idx]
			if gotKept != wantKept {
				t.Errorf("%q frame %d: ours kept=%v, tcpdump's live program kept=%v\nsent % x\nours:\n%s\ntcpdump's:\n%s", expr, i, gotKept, wantKept, frames[i], Disassemble(prog), Disassemble(want))
			}
			if gotKept {
				kept++
			}
		}
	}
	t.Logf("%d frames checked in the kernel, %d kept; %d lost before the taps", total, kept, lost)
	if lost > total/2 {
		t.Fatalf("the host is too busy: %d frames lost before the taps", lost)
	}
}
