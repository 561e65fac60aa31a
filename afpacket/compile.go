//go:build linux

package afpacket

import (
	xbpf "golang.org/x/net/bpf"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/bpf"
)

// compileFilters turns Azure filters and a tcpdump expression (both must
// match) into a socket filter for the framing.
func compileFilters(filters []tripcap.PacketCaptureFilter, expression string, fr framing, snapLen uint32) ([]xbpf.RawInstruction, error) {
	link := bpf.LinkEthernet
	if fr == framingRawIP {
		link = bpf.LinkRawIP
	}
	return bpf.CompileCapture(filters, expression, link, snapLen)
}
