package bpf

import (
	"fmt"

	xbpf "golang.org/x/net/bpf"
)

// Fields of a classic BPF opcode (linux/bpf_common.h, linux/filter.h).
const (
	clsLD   = 0x00
	clsLDX  = 0x01
	clsST   = 0x02
	clsSTX  = 0x03
	clsALU  = 0x04
	clsJMP  = 0x05
	clsRET  = 0x06
	clsMISC = 0x07

	sizeW = 0x00
	sizeH = 0x08
	sizeB = 0x10

	modeIMM = 0x00
	modeABS = 0x20
	modeIND = 0x40
	modeMEM = 0x60
	modeLEN = 0x80
	modeMSH = 0xa0

	aluADD = 0x00
	aluSUB = 0x10
	aluMUL = 0x20
	aluDIV = 0x30
	aluOR  = 0x40
	aluAND = 0x50
	aluLSH = 0x60
	aluRSH = 0x70
	aluNEG = 0x80
	aluMOD = 0x90
	aluXOR = 0xa0

	srcK = 0x00
	srcX = 0x08

	jmpJA   = 0x00
	jmpJEQ  = 0x10
	jmpJGT  = 0x20
	jmpJGE  = 0x30
	jmpJSET = 0x40

	retK = 0x00
	retA = 0x10

	miscTAX = 0x00
	miscTXA = 0x80
)

const (
	// MaxInstructions is the kernel's BPF_MAXINSNS.
	MaxInstructions = 4096
	// memWords is the number of scratch memory slots, BPF_MEMWORDS.
	memWords = 16
	// skfADOff is SKF_AD_OFF: absolute loads at or above it are ancillary
	// loads of socket-buffer metadata, not packet bytes.
	skfADOff = 0xfffff000
	// skfADPktType is SKF_AD_PKTTYPE, skb->pkt_type.
	skfADPktType = 4
	// skfADMax is SKF_AD_MAX; every multiple of 4 below it is a known ancillary load.
	skfADMax = 64
	// packetOutgoing is PACKET_OUTGOING, the pkt_type of packets the host sent.
	packetOutgoing = 4
)

// label names an instruction not yet emitted. Jumps go forward only, as
// classic BPF requires.
type label int

// next is the label of the instruction right after the jump.
const next label = -1

type insn struct {
	raw    xbpf.RawInstruction
	jump   bool  // conditional jump (jt, jf) or ja (jt)
	jt, jf label // targets of a jump
}

// asm assembles a program with symbolic forward jumps. A conditional jump
// only reaches 255 instructions; a farther one is rewritten to jump to a
// pair of unconditional ja's, whose offsets are 32 bits.
type asm struct {
	prog   []insn
	labels []int // instruction index of each label, -1 until marked
}

func (a *asm) label() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

// mark places l at the next instruction emitted.
func (a *asm) mark(l label) { a.labels[l] = len(a.prog) }

func (a *asm) op(op uint16, k uint32) {
	a.prog = append(a.prog, insn{raw: xbpf.RawInstruction{Op: op, K: k}})
}

func (a *asm) jmp(op uint16, k uint32, jt, jf label) {
	a.prog = append(a.prog, insn{raw: xbpf.RawInstruction{Op: clsJMP | op, K: k}, jump: true, jt: jt, jf: jf})
}

func (a *asm) ldAbs(size uint16, off uint32) { a.op(clsLD|modeABS|size, off) }
func (a *asm) ldInd(size uint16, off uint32) { a.op(clsLD|modeIND|size, off) }
func (a *asm) ldImm(k uint32)                { a.op(clsLD|modeIMM, k) }
func (a *asm) ldMem(n uint32)                { a.op(clsLD|modeMEM, n) }
func (a *asm) ldLen()                        { a.op(clsLD|modeLEN|sizeW, 0) }
func (a *asm) ldxImm(k uint32)               { a.op(clsLDX|modeIMM, k) }
func (a *asm) ldxMem(n uint32)               { a.op(clsLDX|modeMEM, n) }
func (a *asm) st(n uint32)                   { a.op(clsST, n) }
func (a *asm) alu(op uint16, k uint32)       { a.op(clsALU|op|srcK, k) }
func (a *asm) aluX(op uint16)                { a.op(clsALU|op|srcX, 0) }
func (a *asm) tax()                          { a.op(clsMISC|miscTAX, 0) }
func (a *asm) txa()                          { a.op(clsMISC|miscTXA, 0) }
func (a *asm) ret(k uint32)                  { a.op(clsRET|retK, k) }

// ldPktType loads skb->pkt_type, the AF_PACKET packet type.
func (a *asm) ldPktType() { a.ldAbs(sizeW, skfADOff+skfADPktType) }

func (a *asm) jeq(k uint32, jt, jf label)  { a.jmp(jmpJEQ|srcK, k, jt, jf) }
func (a *asm) jgt(k uint32, jt, jf label)  { a.jmp(jmpJGT|srcK, k, jt, jf) }
func (a *asm) jge(k uint32, jt, jf label)  { a.jmp(jmpJGE|srcK, k, jt, jf) }
func (a *asm) jset(k uint32, jt, jf label) { a.jmp(jmpJSET|srcK, k, jt, jf) }
func (a *asm) jgeX(jt, jf label)           { a.jmp(jmpJGE|srcX, 0, jt, jf) }
func (a *asm) ja(t label)                  { a.jmp(jmpJA, 0, t, t) }

// assemble resolves the labels. It fails only on a compiler bug: an
// unmarked label or one that does not lie ahead of its jump.
func (a *asm) assemble() ([]xbpf.RawInstruction, error) {
	n := len(a.prog)
	for i, in := range a.prog {
		if !in.jump {
			continue
		}
		for _, l := range [2]label{in.jt, in.jf} {
			if l == next {
				continue
			}
			if t := a.labels[l]; t <= i || t >= n {
				return nil, fmt.Errorf("bpf: internal error: jump at %d to label %d at %d", i, l, t)
			}
		}
	}
	wide := make([]bool, n) // conditional jumps that need ja trampolines
	pos := make([]int, n+1) // final index of each instruction
	target := func(i int, l label) int {
		if l == next {
			return pos[i+1]
		}
		return pos[a.labels[l]]
	}
	// Widening a jump only lengthens others, so this reaches a fixpoint.
	for {
		p := 0
		for i := range a.prog {
			pos[i] = p
			p++
			if wide[i] {
				p += 2
			}
		}
		pos[n] = p
		changed := false
		for i, in := range a.prog {
			if !in.jump || wide[i] || in.raw.Op == clsJMP|jmpJA {
				continue
			}
			if target(i, in.jt)-pos[i]-1 > 255 || target(i, in.jf)-pos[i]-1 > 255 {
				wide[i] = true
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	out := make([]xbpf.RawInstruction, 0, pos[n])
	for i, in := range a.prog {
		r := in.raw
		switch {
		case !in.jump:
			out = append(out, r)
		case r.Op == clsJMP|jmpJA:
			r.K = uint32(target(i, in.jt) - pos[i] - 1)
			out = append(out, r)
		case wide[i]:
			p := pos[i]
			r.Jt, r.Jf = 0, 1
			out = append(out, r,
				xbpf.RawInstruction{Op: clsJMP | jmpJA, K: uint32(target(i, in.jt) - (p + 2))},
				xbpf.RawInstruction{Op: clsJMP | jmpJA, K: uint32(target(i, in.jf) - (p + 3))})
		default:
			r.Jt = uint8(target(i, in.jt) - pos[i] - 1)
			r.Jf = uint8(target(i, in.jf) - pos[i] - 1)
			out = append(out, r)
		}
	}
	return out, nil
}
