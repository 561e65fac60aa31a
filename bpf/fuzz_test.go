package bpf

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
)

// FuzzParseRaw checks that ParseRaw never panics, fails only with EINVALID,
// and that what it accepts passes Validate, disassembles, and parses again
// unchanged from the -ddd form. Seeds are in testdata/fuzz/FuzzParseRaw.
func FuzzParseRaw(f *testing.F) {
	f.Add(udpPort53)
	f.Fuzz(func(t *testing.T, text string) {
		prog, err := ParseRaw(text)
		if err != nil {
			if tripcap.ErrorCode(err) != tripcap.EINVALID {
				t.Fatalf("ParseRaw: %v is not EINVALID", err)
			}
			return
		}
		if err := Validate(prog); err != nil {
			t.Fatalf("ParseRaw accepted a program Validate refuses: %v", err)
		}
		_ = Disassemble(prog)
		var b strings.Builder
		fmt.Fprintf(&b, "%d\n", len(prog))
		for _, ins := range prog {
			fmt.Fprintf(&b, "%d %d %d %d\n", ins.Op, ins.Jt, ins.Jf, ins.K)
		}
		again, err := ParseRaw(b.String())
		if err != nil || !slices.Equal(again, prog) {
			t.Fatalf("the -ddd form of %v parses to %v, %v", prog, again, err)
		}
	})
}

// FuzzCompileMatch compiles a fuzzed filter, and a second one in the flag
// form, runs the program on a fuzzed frame in x/net/bpf's VM and checks its
// verdict against decodeFrame and tripcap.MatchFilters. Seeds are in
// testdata/fuzz/FuzzCompileMatch.
func FuzzCompileMatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, proto, laddr, lport, raddr, rport, second string, frame []byte, pktType byte, rawIP bool) {
		filters := []tripcap.PacketCaptureFilter{{
			Protocol: proto, LocalIPAddress: laddr, LocalPort: lport, RemoteIPAddress: raddr, RemotePort: rport,
		}}
		if second != "" {
			g, err := tripcap.ParseFilterFlag(second)
			if err != nil {
				return
			}
			filters = append(filters, g)
		}
		link := LinkEthernet
		if rawIP {
			link = LinkRawIP
		}
		prog, err := Compile(filters, link, 0)
		if err != nil {
			if tripcap.ErrorCode(err) != tripcap.EINVALID {
				t.Fatalf("Compile: %v is not EINVALID", err)
			}
			return
		}
		parsed, err := tripcap.ParseFilters(filters)
		if err != nil {
			t.Fatalf("Compile accepted filters ParseFilters refuses: %v", err)
		}
		sees := decodeFrame(frame, link, uint32(pktType))
		want := tripcap.MatchFilters(parsed, sees)
		vm := vmCache{prog: prog}
		n := vm.run(t, frame, uint32(pktType))
		if n != 0 && n != DefaultSnapLen {
			t.Fatalf("program returned %d", n)
		}
		if (n != 0) != want {
			t.Fatalf("program accepts=%v, reference %v\nfilters %+v\nsees %+v\nframe % x\n%s",
				n != 0, want, filters, sees, frame, Disassemble(prog))
		}
	})
}

// FuzzCompileExpression compiles a fuzzed tcpdump expression: errors are
// EINVALID naming the field; a compiled program passes Validate (the
// kernel's checks) and runs on a fuzzed frame in x/net/bpf's VM, returning
// 0 or the snap length. The corpus expressions are the seeds.
func FuzzCompileExpression(f *testing.F) {
	for _, e := range exprCorpus {
		f.Add(e, []byte{}, false)
	}
	f.Add("tcp", []byte("\x45\x00\x00\x14\x00\x00\x00\x00\x40\x06"), true)
	f.Fuzz(func(t *testing.T, expr string, frame []byte, rawIP bool) {
		link := LinkEthernet
		if rawIP {
			link = LinkRawIP
		}
		prog, err := CompileCapture(nil, expr, link, 0)
		if err != nil {
			if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.HasPrefix(tripcap.ErrorMessage(err), "filterExpression: ") {
				t.Fatalf("CompileCapture: %v is not EINVALID naming filterExpression", err)
			}
			return
		}
		if err := Validate(prog); err != nil {
			t.Fatalf("compiled program is invalid: %v", err)
		}
		vm := vmCache{prog: WithoutVLANMetadata(prog)}
		if n := vm.run(t, frame, 0); n != 0 && n != DefaultSnapLen {
			t.Fatalf("program returned %d", n)
		}
	})
}
