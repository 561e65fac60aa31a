package bpf

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/testenv"
	xbpf "golang.org/x/net/bpf"
)

// tcpdump -ddd -y EN10MB 'udp port 53', from tcpdump 4.99 / libpcap 1.10.
const udpPort53 = `20
40 0 0 12
21 0 6 34525
48 0 0 20
21 0 15 17
40 0 0 54
21 12 0 53
40 0 0 56
21 10 11 53
21 0 10 2048
48 0 0 23
21 0 8 17
40 0 0 20
69 6 0 8191
177 0 0 14
72 0 0 14
21 2 0 53
72 0 0 16
21 0 1 53
6 0 0 262144
6 0 0 0
`

func tcpdump(t *testing.T, args ...string) string {
	t.Helper()
	bin := testenv.RequireBinary(t, "tcpdump")
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("tcpdump %v: %v", args, err)
	}
	return string(out)
}

// checkUDP53 runs a `udp port 53` program on DNS and non-DNS packets.
func checkUDP53(t *testing.T, prog []xbpf.RawInstruction) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 3))
	vm := vmCache{prog: prog}
	for _, tc := range []struct {
		pkt  testPacket
		want bool
	}{
		{outgoing(17, 40000, 53), true},
		{incoming(17, 53, 40000), true},
		{incoming(17, 53, 40000).with(ipv6), true},
		{outgoing(6, 40000, 53), false},
		{outgoing(17, 40000, 54), false},
	} {
		if n := vm.run(t, tc.pkt.bytes(rng), 0); (n != 0) != tc.want {
			t.Errorf("%v: returned %d, want accept=%v", tc.pkt, n, tc.want)
		}
	}
}

func TestParseRawTcpdumpOutput(t *testing.T) {
	ddd := tcpdump(t, "-ddd", "-y", "EN10MB", "udp port 53")
	prog, err := ParseRaw(ddd)
	if err != nil {
		t.Fatalf("ParseRaw(tcpdump -ddd): %v\n%s", err, ddd)
	}
	checkUDP53(t, prog)
	dd := tcpdump(t, "-dd", "-y", "EN10MB", "udp port 53")
	progC, err := ParseRaw(dd)
	if err != nil {
		t.Fatalf("ParseRaw(tcpdump -dd): %v\n%s", err, dd)
	}
	if !slices.Equal(prog, progC) {
		t.Errorf("-ddd and -dd forms differ:\n%v\n%v", prog, progC)
	}
	// libpcap's protochain loops backwards, which the kernel refuses.
	_, err = ParseRaw(tcpdump(t, "-ddd", "-y", "EN10MB", "ip6 protochain 6"))
	if err == nil || !strings.Contains(err.Error(), "backward jump") {
		t.Errorf("ParseRaw(protochain) = %v, want a backward-jump error", err)
	}
}

func TestParseRawForms(t *testing.T) {
	prog, err := ParseRaw(udpPort53)
	if err != nil {
		t.Fatal(err)
	}
	checkUDP53(t, prog)

	var c strings.Builder
	c.WriteString("# written by hand\r\n\r\n")
	for _, ins := range prog {
		fmt.Fprintf(&c, "{ 0x%02x, %d, %d, 0x%08x },\r\n", ins.Op, ins.Jt, ins.Jf, ins.K)
	}
	progC, err := ParseRaw(c.String())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(prog, progC) {
		t.Errorf("C form parses to %v, want %v", progC, prog)
	}

	// A negative k is an SKF_AD_OFF load written the way people write it.
	neg, err := ParseRaw("2\n32 0 0 -4092\n22 0 0 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if neg[0] != ldPktType {
		t.Errorf("ld -4092 = %v, want %v", neg[0], ldPktType)
	}
}

func TestParseRawErrors(t *testing.T) {
	big := fmt.Sprintf("%d\n%s6 0 0 0\n", MaxInstructions+1, strings.Repeat("0 0 0 1\n", MaxInstructions))
	cases := []struct{ text, want string }{
		{"", "bpf program: empty"},
		{"\n# nothing\n", "bpf program: empty"},
		{"(000) ldh [12]\n", `line 1: "(000) ldh [12]" is not an instruction count`},
		{"0\n", "line 1: instruction count 0 is outside 1..4096"},
		{big, "line 1: instruction count 4097 is outside 1..4096"},
		{"1\n" + strings.Repeat("6 0 0 0\n", MaxInstructions+1), "line 4098: more than 4096 instructions"},
		{"2\n6 0 0 0\n", "line 1: the count says 2 instructions but 1 follow"},
		{"1\n6 0 0 0\n6 0 0 0\n", "line 1: the count says 1 instructions but 2 follow"},
		{"1\n6 0 0\n", `line 2: "6 0 0" is not "code jt jf k"`},
		{"1\n6 0 0 x\n", `line 2: k "x" is not a 32-bit number`},
		{"1\n65536 0 0 0\n", `line 2: opcode "65536" is not a number in 0..65535`},
		{"1\n6 256 0 0\n", `line 2: jt "256" is not a number in 0..255`},
		{"1\n6 0 -1 0\n", `line 2: jf "-1" is not a number in 0..255`},
		{"1\n6 0 0 4294967296\n", `line 2: k "4294967296" is not a 32-bit number`},
		{"2\n255 0 0 0\n6 0 0 0\n", "line 2: unknown opcode 0xff"},
		{"2\n14 0 0 0\n6 0 0 0\n", "line 2: unknown opcode 0xe"}, // BPF_RET|BPF_X
		{"1\n0 0 0 0\n", "line 2: the last instruction is not a return"},
		{"2\n21 1 0 0\n6 0 0 0\n", "line 2: jump (jt 1, jf 0) lands past the end"},
		{"2\n21 0 1 0\n6 0 0 0\n", "line 2: jump (jt 0, jf 1) lands past the end"},
		{"2\n5 0 0 1\n6 0 0 0\n", "line 2: ja 1 jumps past the end"},
		{"2\n5 0 0 4294967295\n6 0 0 0\n", "line 2: ja -1 is a backward jump"},
		{"2\n52 0 0 0\n6 0 0 0\n", "line 2: division by constant zero"},
		{"2\n148 0 0 0\n6 0 0 0\n", "line 2: division by constant zero"}, // mod
		{"2\n100 0 0 32\n6 0 0 0\n", "line 2: shift by 32, 32 or more"},
		{"2\n2 0 0 16\n6 0 0 0\n", "line 2: scratch memory slot 16 is outside 0..15"},
		{"2\n97 0 0 99\n6 0 0 0\n", "line 2: scratch memory slot 99 is outside 0..15"},
		{"2\n32 0 0 4294963264\n6 0 0 0\n", "line 2: unknown ancillary load at SKF_AD_OFF+64"},
		{"2\n32 0 0 4294963202\n6 0 0 0\n", "line 2: unknown ancillary load at SKF_AD_OFF+2"},
		{"2\n96 0 0 3\n22 0 0 0\n", "line 2: reads scratch memory slot M[3] before a store"},
		// Stored on one path only.
		{"5\n21 0 1 0\n2 0 0 0\n96 0 0 0\n22 0 0 0\n6 0 0 0\n", "line 4: reads scratch memory slot M[0] before a store on some path"},
		{"{ 0x06, 0, 0, 0 }\n{ 0x06 0 0 0 },\n", `line 2: "{ 0x06 0 0 0 }," is not { code, jt, jf, k },`},
		{"{ 0x06, 0, 0, 0 }\n6 0 0 0\n", `line 2: "6 0 0 0" is not { code, jt, jf, k },`},
		{"{ 0x80, 0, 0, 0 },", "line 1: the last instruction is not a return"},
	}
	for _, tc := range cases {
		_, err := ParseRaw(tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) || tripcap.ErrorCode(err) != tripcap.EINVALID {
			name := tc.text
			if len(name) > 60 {
				name = name[:60] + "…"
			}
			t.Errorf("ParseRaw(%q) = %v, want EINVALID containing %q", name, err, tc.want)
		}
	}
}

func TestValidateAcceptsEveryOpcode(t *testing.T) {
	// One of each opcode the kernel allows, in a program it would attach.
	var prog []xbpf.RawInstruction
	for op := range uint16(0x100) {
		if !knownOp(op) || op&0x07 == clsJMP || op&0x07 == clsRET {
			continue
		}
		k := uint32(1)
		if op == clsLD|modeABS|sizeW {
			k = skfADOff + skfADPktType
		}
		prog = append(prog, xbpf.RawInstruction{Op: op, K: k})
	}
	for _, op := range []uint16{jmpJEQ, jmpJGT, jmpJGE, jmpJSET, jmpJEQ | srcX, jmpJGT | srcX, jmpJGE | srcX, jmpJSET | srcX} {
		prog = append(prog, xbpf.RawInstruction{Op: clsJMP | op, Jt: 0, Jf: 1})
	}
	prog = append(prog, xbpf.RawInstruction{Op: clsJMP | jmpJA, K: 0},
		xbpf.RawInstruction{Op: clsRET | retA}, xbpf.RawInstruction{Op: clsRET | retK})
	if err := Validate(prog); err != nil {
		t.Fatalf("%v\n%s", err, Disassemble(prog))
	}
	if n := len(prog); n != 49 {
		t.Errorf("%d instructions; want 38 opcodes, 8 conditional jumps, ja and 2 returns", n)
	}
}

func TestDisassemble(t *testing.T) {
	prog, err := ParseRaw(udpPort53)
	if err != nil {
		t.Fatal(err)
	}
	got := Disassemble(prog)
	for _, want := range []string{
		"(000) ldh [12]\n",
		"(001) jeq #0x86dd jt 2 jf 8\n",
		"(012) jset #0x1fff jt 19 jf 13\n",
		"(013) ldx 4*([14]&0xf)\n",
		"(014) ldh [x + 14]\n",
		"(018) ret #262144\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Disassemble lacks %q:\n%s", want, got)
		}
	}
	other := Disassemble([]xbpf.RawInstruction{
		ldPktType, {Op: clsLD | modeMEM, K: 3}, {Op: clsLD | modeLEN}, {Op: clsALU | aluNEG},
		{Op: clsALU | aluADD | srcX}, {Op: clsMISC | miscTXA}, {Op: clsJMP | jmpJA, K: 1}, {Op: 0xff}, {Op: clsRET | retA},
	})
	for _, want := range []string{"ld #type", "ld M[3]", "ld #len", "neg", "add x", "txa", "(006) ja 8", ".word 0xff", "ret a"} {
		if !strings.Contains(other, want) {
			t.Errorf("Disassemble lacks %q:\n%s", want, other)
		}
	}
}
