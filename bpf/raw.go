package bpf

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tripcap/tripcap"
	xbpf "golang.org/x/net/bpf"
)

// ParseRaw reads a classic BPF program as tcpdump prints it, either
//
//	tcpdump -ddd -y EN10MB 'expr'   # a count line, then "code jt jf k" in decimal
//	tcpdump -dd  -y EN10MB 'expr'   # C array lines: { 0x28, 0, 0, 0x0000000c },
//
// and checks it as the kernel will when it is attached (see Validate), so a
// bad program fails before a capture starts. Blank lines and lines starting
// with '#' are ignored. Errors are *tripcap.Error with code EINVALID, naming
// the line and the reason.
func ParseRaw(text string) ([]xbpf.RawInstruction, error) {
	bad := func(line int, format string, args ...any) error {
		return tripcap.Errorf(tripcap.EINVALID, "bpf program line %d: %s", line, fmt.Sprintf(format, args...))
	}
	var (
		prog      []xbpf.RawInstruction
		lines     []int // input line of each instruction
		count     = -1  // the -ddd count, once read
		countLine int
		cForm     bool
		started   bool
	)
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !started {
			started = true
			cForm = strings.HasPrefix(line, "{")
			if !cForm {
				c, err := strconv.ParseUint(line, 10, 32)
				if err != nil {
					return nil, bad(n, "%q is not an instruction count; give the output of tcpdump -ddd or -dd", line)
				}
				if c == 0 || c > MaxInstructions {
					return nil, bad(n, "instruction count %d is outside 1..%d", c, MaxInstructions)
				}
				count, countLine = int(c), n
				continue
			}
		}
		if len(prog) == MaxInstructions {
			return nil, bad(n, "more than %d instructions, the kernel's limit", MaxInstructions)
		}
		var (
			ins xbpf.RawInstruction
			err string
		)
		if cForm {
			ins, err = parseCLine(line)
		} else {
			ins, err = parseDecimalLine(line)
		}
		if err != "" {
			return nil, bad(n, "%s", err)
		}
		prog = append(prog, ins)
		lines = append(lines, n)
	}
	if !started {
		return nil, tripcap.Errorf(tripcap.EINVALID, "bpf program: empty; give the output of tcpdump -ddd or -dd")
	}
	if count >= 0 && count != len(prog) {
		return nil, bad(countLine, "the count says %d instructions but %d follow", count, len(prog))
	}
	if i, reason := check(prog); reason != "" {
		if i < 0 {
			return nil, tripcap.Errorf(tripcap.EINVALID, "bpf program: %s", reason)
		}
		return nil, bad(lines[i], "%s", reason)
	}
	return prog, nil
}

// parseDecimalLine parses "code jt jf k", the -ddd form. k may be negative,
// as people write SKF_AD_OFF+n loads.
func parseDecimalLine(line string) (xbpf.RawInstruction, string) {
	f := strings.Fields(line)
	if len(f) != 4 {
		return xbpf.RawInstruction{}, fmt.Sprintf("%q is not \"code jt jf k\"", line)
	}
	return rawFromFields(f, 10)
}

// parseCLine parses "{ 0x28, 0, 0, 0x0000000c },", the -dd form.
func parseCLine(line string) (xbpf.RawInstruction, string) {
	s := strings.TrimSuffix(line, ",")
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return xbpf.RawInstruction{}, fmt.Sprintf("%q is not { code, jt, jf, k },", line)
	}
	f := strings.Split(s[1:len(s)-1], ",")
	if len(f) != 4 {
		return xbpf.RawInstruction{}, fmt.Sprintf("%q is not { code, jt, jf, k },", line)
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	return rawFromFields(f, 0)
}

func rawFromFields(f []string, base int) (xbpf.RawInstruction, string) {
	code, err := strconv.ParseUint(f[0], base, 16)
	if err != nil {
		return xbpf.RawInstruction{}, fmt.Sprintf("opcode %q is not a number in 0..65535", f[0])
	}
	jt, err := strconv.ParseUint(f[1], base, 8)
	if err != nil {
		return xbpf.RawInstruction{}, fmt.Sprintf("jt %q is not a number in 0..255", f[1])
	}
	jf, err := strconv.ParseUint(f[2], base, 8)
	if err != nil {
		return xbpf.RawInstruction{}, fmt.Sprintf("jf %q is not a number in 0..255", f[2])
	}
	var k uint32
	if strings.HasPrefix(f[3], "-") {
		v, err := strconv.ParseInt(f[3], base, 32)
		if err != nil {
			return xbpf.RawInstruction{}, fmt.Sprintf("k %q is not a 32-bit number", f[3])
		}
		k = uint32(int32(v))
	} else {
		v, err := strconv.ParseUint(f[3], base, 32)
		if err != nil {
			return xbpf.RawInstruction{}, fmt.Sprintf("k %q is not a 32-bit number", f[3])
		}
		k = uint32(v)
	}
	return xbpf.RawInstruction{Op: uint16(code), Jt: uint8(jt), Jf: uint8(jf), K: k}, ""
}

// Validate checks a program as the kernel's bpf_check_classic does when a
// socket filter is attached: 1..4096 instructions, only known opcodes, jumps
// that land inside the program, no division or modulo by constant zero, no
// shift by 32 or more, scratch slots 0..15, only known ancillary loads, a
// return at the end, and no read of a scratch slot that some path has not
// written. Errors are *tripcap.Error with code EINVALID.
func Validate(prog []xbpf.RawInstruction) error {
	i, reason := check(prog)
	switch {
	case reason == "":
		return nil
	case i < 0:
		return tripcap.Errorf(tripcap.EINVALID, "bpf program: %s", reason)
	default:
		return tripcap.Errorf(tripcap.EINVALID, "bpf program instruction %d: %s", i, reason)
	}
}

// check returns the index of the first bad instruction (or -1 for the
// program as a whole) and the reason, or "" if the program is good.
func check(prog []xbpf.RawInstruction) (int, string) {
	n := len(prog)
	if n == 0 {
		return -1, "no instructions"
	}
	if n > MaxInstructions {
		return -1, fmt.Sprintf("%d instructions, more than the kernel's limit of %d", n, MaxInstructions)
	}
	for i, ins := range prog {
		if !knownOp(ins.Op) {
			return i, fmt.Sprintf("unknown opcode %#x", ins.Op)
		}
		switch ins.Op {
		case clsALU | aluDIV | srcK, clsALU | aluMOD | srcK:
			if ins.K == 0 {
				return i, "division by constant zero"
			}
		case clsALU | aluLSH | srcK, clsALU | aluRSH | srcK:
			if ins.K >= 32 {
				return i, fmt.Sprintf("shift by %d, 32 or more", ins.K)
			}
		case clsLD | modeMEM, clsLDX | modeMEM, clsST, clsSTX:
			if ins.K >= memWords {
				return i, fmt.Sprintf("scratch memory slot %d is outside 0..%d", ins.K, memWords-1)
			}
		case clsJMP | jmpJA:
			if ins.K >= 1<<31 {
				return i, fmt.Sprintf("ja %d is a backward jump; the kernel allows only forward ones", int32(ins.K))
			}
			if uint64(i)+1+uint64(ins.K) >= uint64(n) {
				return i, fmt.Sprintf("ja %d jumps past the end of the program", ins.K)
			}
		case clsLD | modeABS | sizeW, clsLD | modeABS | sizeH, clsLD | modeABS | sizeB:
			if ins.K >= skfADOff && (ins.K-skfADOff >= skfADMax || (ins.K-skfADOff)%4 != 0) {
				return i, fmt.Sprintf("unknown ancillary load at SKF_AD_OFF+%d", ins.K-skfADOff)
			}
		}
		if ins.Op&0x07 == clsJMP && ins.Op != clsJMP|jmpJA {
			if i+1+int(ins.Jt) >= n || i+1+int(ins.Jf) >= n {
				return i, fmt.Sprintf("jump (jt %d, jf %d) lands past the end of the program", ins.Jt, ins.Jf)
			}
		}
	}
	if op := prog[n-1].Op; op != clsRET|retK && op != clsRET|retA {
		return n - 1, "the last instruction is not a return"
	}
	return checkMemory(prog)
}

// checkMemory refuses a read of a scratch slot not written on every path
// to it, as the kernel's check_load_and_stores does, including its
// quirk: the state flowing past a return into the next instruction counts.
func checkMemory(prog []xbpf.RawInstruction) (int, string) {
	masks := make([]uint16, len(prog))
	for i := range masks {
		masks[i] = 0xffff
	}
	var valid uint16
	for pc, ins := range prog {
		valid &= masks[pc]
		switch {
		case ins.Op == clsST || ins.Op == clsSTX:
			valid |= 1 << ins.K
		case ins.Op == clsLD|modeMEM || ins.Op == clsLDX|modeMEM:
			if valid&(1<<ins.K) == 0 {
				return pc, fmt.Sprintf("reads scratch memory slot M[%d] before a store on some path", ins.K)
			}
		case ins.Op == clsJMP|jmpJA:
			masks[pc+1+int(ins.K)] &= valid
			valid = 0xffff
		case ins.Op&0x07 == clsJMP:
			masks[pc+1+int(ins.Jt)] &= valid
			masks[pc+1+int(ins.Jf)] &= valid
			valid = 0xffff
		}
	}
	return 0, ""
}

// knownOp reports whether the kernel accepts op in a classic socket filter
// (chk_code_allowed).
func knownOp(op uint16) bool {
	switch op {
	case clsLD | modeABS | sizeW, clsLD | modeABS | sizeH, clsLD | modeABS | sizeB,
		clsLD | modeIND | sizeW, clsLD | modeIND | sizeH, clsLD | modeIND | sizeB,
		clsLD | modeLEN | sizeW, clsLD | modeIMM, clsLD | modeMEM,
		clsLDX | modeLEN | sizeW, clsLDX | modeMSH | sizeB, clsLDX | modeIMM, clsLDX | modeMEM,
		clsST, clsSTX,
		clsALU | aluNEG,
		clsMISC | miscTAX, clsMISC | miscTXA,
		clsRET | retK, clsRET | retA,
		clsJMP | jmpJA:
		return true
	}
	switch op &^ srcX {
	case clsALU | aluADD, clsALU | aluSUB, clsALU | aluMUL, clsALU | aluDIV, clsALU | aluMOD,
		clsALU | aluAND, clsALU | aluOR, clsALU | aluXOR, clsALU | aluLSH, clsALU | aluRSH,
		clsJMP | jmpJEQ, clsJMP | jmpJGT, clsJMP | jmpJGE, clsJMP | jmpJSET:
		return true
	}
	return false
}

// ancillaryNames are the names of SKF_AD_* loads, by offset/4, as x/net/bpf spells them.
var ancillaryNames = [...]string{
	"proto", "type", "ifidx", "nla", "nlan", "mark", "queue", "hatype",
	"rxhash", "cpu", "xor_x", "vlan_tci", "vlan_avail", "poff", "rand", "vlan_tpid",
}

// Disassemble returns the program in tcpdump -d style, one instruction a
// line with absolute jump targets, for documentation and debugging.
func Disassemble(prog []xbpf.RawInstruction) string {
	var b strings.Builder
	for i, ins := range prog {
		fmt.Fprintf(&b, "(%03d) %s\n", i, disassemble(i, ins))
	}
	return b.String()
}

func disassemble(pc int, ins xbpf.RawInstruction) string {
	k := ins.K
	size := ""
	switch ins.Op & 0x18 {
	case sizeH:
		size = "h"
	case sizeB:
		size = "b"
	}
	aluName := [...]string{"add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "neg", "mod", "xor"}
	jmpName := [...]string{"ja", "jeq", "jgt", "jge", "jset"}
	operand := func() string {
		if ins.Op&srcX != 0 {
			return "x"
		}
		return fmt.Sprintf("#%#x", k)
	}
	if !knownOp(ins.Op) {
		return fmt.Sprintf(".word %#x, %d, %d, %#x", ins.Op, ins.Jt, ins.Jf, k)
	}
	switch ins.Op & 0x07 {
	case clsLD:
		switch ins.Op & 0xe0 {
		case modeABS:
			if k >= skfADOff && k-skfADOff < skfADMax {
				return fmt.Sprintf("ld%s #%s", size, ancillaryNames[(k-skfADOff)/4])
			}
			return fmt.Sprintf("ld%s [%d]", size, k)
		case modeIND:
			return fmt.Sprintf("ld%s [x + %d]", size, k)
		case modeLEN:
			return "ld #len"
		case modeMEM:
			return fmt.Sprintf("ld M[%d]", k)
		default:
			return fmt.Sprintf("ld #%#x", k)
		}
	case clsLDX:
		switch ins.Op & 0xe0 {
		case modeLEN:
			return "ldx #len"
		case modeMSH:
			return fmt.Sprintf("ldx 4*([%d]&0xf)", k)
		case modeMEM:
			return fmt.Sprintf("ldx M[%d]", k)
		default:
			return fmt.Sprintf("ldx #%#x", k)
		}
	case clsST:
		return fmt.Sprintf("st M[%d]", k)
	case clsSTX:
		return fmt.Sprintf("stx M[%d]", k)
	case clsALU:
		if ins.Op == clsALU|aluNEG {
			return "neg"
		}
		return fmt.Sprintf("%s %s", aluName[(ins.Op&0xf0)>>4], operand())
	case clsJMP:
		if ins.Op == clsJMP|jmpJA {
			return fmt.Sprintf("ja %d", uint64(pc)+1+uint64(k))
		}
		return fmt.Sprintf("%s %s jt %d jf %d", jmpName[(ins.Op&0xf0)>>4], operand(), pc+1+int(ins.Jt), pc+1+int(ins.Jf))
	case clsRET:
		if ins.Op == clsRET|retA {
			return "ret a"
		}
		return fmt.Sprintf("ret #%d", k)
	default:
		if ins.Op == clsMISC|miscTXA {
			return "txa"
		}
		return "tax"
	}
}
