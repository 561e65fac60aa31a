//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/testenv"
	"github.com/tripcap/tripcap/internal/trafficgen"
)

// TestAnalyzeBothEnds captures one conversation at both of its ends with the
// binary's `capture run` (two netns hosts), merges the two files with
// `capture merge`, and summarises the merged file with `analyze`: two
// interfaces, every packet of both files (tshark agrees), the conversation
// counted once per end.
func TestAnalyzeBothEnds(t *testing.T) {
	testenv.RequireRoot(t)
	tshark := testenv.RequireBinary(t, "tshark")
	lab := netns.New(t)
	a, b := lab.Namespace(), lab.Namespace()
	link := lab.Veth(a, b, netns.LinkOptions{})
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	var sink *trafficgen.Sink
	if err := b.Do(func() (err error) {
		sink, err = trafficgen.Listen("udp", netip.AddrPortFrom(link.B.Addr.Addr(), 7000))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sink.Close()

	capture := func(ns *netns.Namespace, ifc, name string) *exec.Cmd {
		cmd := ns.Command(ctx, binary, "capture", "run", "-i", ifc, "--format", "pcapng", "-w", filepath.Join(dir, name),
			"--time-limit", "3s", "--comment", "tripcap capture "+name)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	ca := capture(a, link.A.Name, "a.pcapng")
	cb := capture(b, link.B.Name, "b.pcapng")
	time.Sleep(time.Second)
	if err := a.Do(func() error {
		_, err := trafficgen.Send(ctx, trafficgen.Flow{Network: "udp", Dst: netip.AddrPortFrom(link.B.Addr.Addr(), 7000), Count: 300, PayloadSize: 200, Interval: time.Millisecond, ID: 1})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*exec.Cmd{ca, cb} {
		if err := c.Wait(); err != nil {
			t.Fatalf("capture run: %v", err)
		}
	}

	fa, fb, merged := filepath.Join(dir, "a.pcapng"), filepath.Join(dir, "b.pcapng"), filepath.Join(dir, "both.pcapng")
	if out, err := exec.CommandContext(ctx, binary, "capture", "merge", fa, fb, "-w", merged).CombinedOutput(); err != nil || !strings.Contains(string(out), "600 packets from 2 files, 2 interfaces") {
		t.Fatalf("capture merge: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, binary, "analyze", "-o", "json", merged).Output()
	if err != nil {
		t.Fatalf("analyze: %v", err)
	}
	var s tripcap.CaptureSummary
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("analyze -o json: %v\n%s", err, out)
	}
	tout, err := exec.CommandContext(ctx, tshark, "-r", merged, "-T", "fields", "-e", "frame.interface_name").Output()
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]uint64{}
	for _, name := range strings.Fields(string(tout)) {
		per[name]++
	}
	if s.Packets != 600 || per[link.A.Name] != 300 || per[link.B.Name] != 300 || len(s.Interfaces) != 2 {
		t.Errorf("analyze: %d packets on %d interfaces; tshark: %v", s.Packets, len(s.Interfaces), per)
	}
	for _, ifc := range s.Interfaces {
		if ifc.Packets != 300 || ifc.KernelDrops == nil || *ifc.KernelDrops != 0 {
			t.Errorf("interface %+v", ifc)
		}
	}
	if len(s.IPConversations) != 1 || s.IPConversations[0].PacketsAB != 600 || s.IPConversations[0].A != link.A.Addr.Addr().String() {
		t.Errorf("conversations %+v", s.IPConversations)
	}
	text, err := exec.CommandContext(ctx, binary, "analyze", fa, fb).Output()
	if err != nil || !strings.Contains(string(text), "CAPTURE: 600 packets") {
		t.Errorf("analyze of both files: %v\n%s", err, text)
	}
}
