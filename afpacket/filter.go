//go:build linux

package afpacket

import (
	"fmt"
	"strings"

	xbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/bpf"
)

// maxBPFInstructions is the kernel's limit on a classic BPF program (BPF_MAXINSNS).
const maxBPFInstructions = 4096

// sessionFilter is what a session selects: Azure filters and a tcpdump
// expression compiled per framing, or one raw program the user wrote.
type sessionFilter struct {
	filters    []tripcap.PacketCaptureFilter
	expression string
	raw        []xbpf.RawInstruction
	snapLen    uint32
}

// program returns the socket filter for an interface. On loopback every
// packet passes the tap twice, once outgoing and once incoming, so there
// only the incoming copy is kept and each packet is captured once.
func (f sessionFilter) program(ifc netInterface) ([]xbpf.RawInstruction, error) {
	var prog []xbpf.RawInstruction
	if f.raw != nil {
		prog = f.raw
	} else {
		var err error
		prog, err = compileFilters(f.filters, f.expression, ifc.Framing, f.snapLen)
		if err != nil {
			return nil, err
		}
	}
	if ifc.Loopback {
		prog = append(dropOutgoingPrefix(), prog...)
	}
	if len(prog) > maxBPFInstructions {
		return nil, tripcap.Errorf(tripcap.EINVALID, "the filter needs %d BPF instructions; the kernel takes at most %d", len(prog), maxBPFInstructions)
	}
	return prog, nil
}

// matcher returns a user-space evaluator of the session's filter, used on the
// pre-trigger buffer. Compiled filters read the packet type (outgoing or
// not) from the socket buffer, which the pure-Go VM cannot; the buffer
// records it, so the program is specialised into two, one per direction,
// with that load replaced by a constant. A program using other ancillary
// loads gives an error.
func (f sessionFilter) matcher(fr framing) (func(data []byte, outgoing bool) bool, error) {
	prog := f.raw
	if prog == nil {
		var err error
		prog, err = compileFilters(f.filters, f.expression, fr, f.snapLen)
		if err != nil {
			return nil, err
		}
	}
	// The buffer holds frames with their VLAN tags put back.
	prog = bpf.WithoutVLANMetadata(prog)
	in, err := newVM(withPacketType(prog, unix.PACKET_HOST))
	if err != nil {
		return nil, err
	}
	out, err := newVM(withPacketType(prog, unix.PACKET_OUTGOING))
	if err != nil {
		return nil, err
	}
	return func(data []byte, outgoing bool) bool {
		vm := in
		if outgoing {
			vm = out
		}
		n, err := vm.Run(data)
		return err == nil && n > 0
	}, nil
}

// Classic BPF encodings of "load the packet type": an absolute load at
// SKF_AD_OFF+SKF_AD_PKTTYPE, of any size.
const (
	bpfLdAbsW    = 0x20
	bpfLdAbsH    = 0x28
	bpfLdAbsB    = 0x30
	bpfLdImm     = 0x00
	skfAdPktType = 0xfffff000 + 4
)

// withPacketType returns prog with every packet-type load replaced by the constant.
func withPacketType(prog []xbpf.RawInstruction, pktType uint32) []xbpf.RawInstruction {
	out := make([]xbpf.RawInstruction, len(prog))
	for i, ins := range prog {
		if (ins.Op == bpfLdAbsW || ins.Op == bpfLdAbsH || ins.Op == bpfLdAbsB) && ins.K == skfAdPktType {
			ins = xbpf.RawInstruction{Op: bpfLdImm, K: pktType}
		}
		out[i] = ins
	}
	return out
}

func newVM(prog []xbpf.RawInstruction) (*xbpf.VM, error) {
	insns, ok := xbpf.Disassemble(prog)
	if !ok {
		return nil, fmt.Errorf("the filter has instructions the user-space BPF VM cannot decode")
	}
	vm, err := xbpf.NewVM(insns)
	if err != nil {
		return nil, fmt.Errorf("running the filter in user space: %w", err)
	}
	return vm, nil
}

// describe renders the filters for the pcapng interface block.
func (f sessionFilter) describe() string {
	if f.raw != nil {
		return fmt.Sprintf("raw BPF program (%d instructions)", len(f.raw))
	}
	parts := make([]string, 0, len(f.filters))
	for _, flt := range f.filters {
		var kv []string
		for _, p := range [][2]string{
			{"protocol", flt.Protocol}, {"localIPAddress", flt.LocalIPAddress}, {"localPort", flt.LocalPort},
			{"remoteIPAddress", flt.RemoteIPAddress}, {"remotePort", flt.RemotePort},
		} {
			if p[1] != "" {
				kv = append(kv, p[0]+"="+p[1])
			}
		}
		parts = append(parts, strings.Join(kv, ","))
	}
	azure := strings.Join(parts, " or ")
	switch {
	case f.expression == "":
		return azure
	case azure == "":
		return f.expression
	}
	return "(" + f.expression + ") and (" + azure + ")"
}

// dropOutgoingPrefix rejects the packets the host sent and leaves A as a
// fresh program expects it (zero).
func dropOutgoingPrefix() []xbpf.RawInstruction {
	prog, err := xbpf.Assemble([]xbpf.Instruction{
		xbpf.LoadExtension{Num: xbpf.ExtType},
		xbpf.JumpIf{Cond: xbpf.JumpEqual, Val: unix.PACKET_OUTGOING, SkipTrue: 0, SkipFalse: 1},
		xbpf.RetConstant{Val: 0},
		xbpf.LoadConstant{Dst: xbpf.RegA, Val: 0},
	})
	if err != nil {
		panic("assembling a constant BPF program: " + err.Error())
	}
	return prog
}
