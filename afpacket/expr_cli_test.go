//go:build linux

package afpacket

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/trafficgen"
)

// TestCLIRunExpression runs `tripcap capture run` with a tcpdump expression
// given as tcpdump takes it (one quoted argument, or several words), alone
// and with --filter, and checks with capinfos and tshark that the file
// holds exactly the selected flow; a bad expression fails naming the token.
func TestCLIRunExpression(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	dir := t.TempDir()
	sink(t, n.b, "udp", n.bAddr(7000))
	sink(t, n.b, "udp", n.bAddr(7001))
	for _, tc := range []struct {
		name   string
		args   []string
		want   uint32 // the flow the capture keeps
		count  int
		tshark string // the same selection as a display filter
	}{
		{"words", []string{"udp", "dst", "port", "7001", "and", "greater", "200"}, 3, 20, "udp.dstport == 7001 && frame.len >= 200"},
		{"quoted", []string{"udp dst port 7001 and not greater 200"}, 2, 40, "udp.dstport == 7001 && frame.len < 200"},
		{"with-filter", []string{"--filter", "protocol=UDP,localPort=7001", "len >= 200 or udp port 7000"}, 3, 20, "udp.dstport == 7001 && frame.len >= 200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.name + ".pcapng"
			p := runCapture(t, n.b, append([]string{"-o", "json", "--format", "pcapng", "-w", filepath.Join(dir, file)}, tc.args...)...)
			send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 30, PayloadSize: 300, ID: 1})
			send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7001), Count: 40, PayloadSize: 50, ID: 2})
			send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7001), Count: 20, PayloadSize: 300, ID: 3})
			time.Sleep(150 * time.Millisecond)
			if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if err := p.wait(10 * time.Second); err != nil {
				t.Fatalf("exit: %v\n%s", err, p.stderr)
			}
			var res captureRunJSON
			if err := json.Unmarshal([]byte(p.stdout.String()), &res); err != nil {
				t.Fatalf("-o json output %q: %v", p.stdout, err)
			}
			path := filepath.Join(dir, file)
			if res.StopReason != tripcap.StopManuallyStopped || res.Packets != uint64(tc.count) || len(res.Files) != 1 || res.Files[0] != path {
				t.Errorf("result %+v, want %d packets in %s", res, tc.count, path)
			}
			if got := capinfosPackets(t, path); got != tc.count {
				t.Errorf("capinfos: %d packets, want %d", got, tc.count)
			}
			if got := tsharkCount(t, path, tc.tshark); got != tc.count {
				t.Errorf("tshark -Y %q: %d packets, want all %d", tc.tshark, got, tc.count)
			}
			ids, _ := stamps(readCapture(t, path))
			for _, id := range ids {
				if id != tc.want {
					t.Fatalf("flow %d in a capture of flow %d", id, tc.want)
				}
			}
		})
	}

	t.Run("bad", func(t *testing.T) {
		cmd := n.b.Command(t.Context(), tripcapBinary(t), "capture", "run", "-w", filepath.Join(dir, "bad.cap"), "udp", "dst", "prot", "7001")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), `"prot" at position 9`) {
			t.Fatalf("exit %v, output %q; want an error naming \"prot\" at position 9", err, out)
		}
	})
}
