//go:build linux

package afpacket

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/testenv"
	"github.com/tripcap/tripcap/internal/trafficgen"
)

// testNet is two namespaces joined by a veth pair: traffic is generated in
// a, captured in b, whose only non-loopback interface is the link's B end.
type testNet struct {
	lab  *netns.Lab
	a, b *netns.Namespace
	link *netns.Link
}

func newTestNet(t *testing.T, opts netns.LinkOptions) *testNet {
	t.Helper()
	lab := netns.New(t)
	a, b := lab.Namespace(), lab.Namespace()
	return &testNet{lab: lab, a: a, b: b, link: lab.Veth(a, b, opts)}
}

// aAddr and bAddr are the link's IPv4 addresses with a port.
func (n *testNet) aAddr(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(n.link.A.Addr.Addr(), port)
}
func (n *testNet) bAddr(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(n.link.B.Addr.Addr(), port)
}

// sink opens a discarding listener inside ns.
func sink(t *testing.T, ns *netns.Namespace, network string, addr netip.AddrPort) *trafficgen.Sink {
	t.Helper()
	var s *trafficgen.Sink
	if err := ns.Do(func() (err error) { s, err = trafficgen.Listen(network, addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// send sends a flow from inside ns.
func send(t *testing.T, ns *netns.Namespace, f trafficgen.Flow) trafficgen.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res trafficgen.Result
	if err := ns.Do(func() (err error) { res, err = trafficgen.Send(ctx, f); return err }); err != nil {
		t.Fatal(err)
	}
	if res.Sent != f.Count {
		t.Fatalf("sent %d of %d packets", res.Sent, f.Count)
	}
	return res
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newTestEngine returns an engine writing under a fresh directory.
func newTestEngine(t *testing.T, cfg Config) (*Engine, string) {
	t.Helper()
	if cfg.CaptureDir == "" {
		cfg.CaptureDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	// Small rings keep many test sessions cheap.
	if cfg.RingBytes == 0 {
		cfg.RingBytes = 4 << 20
	}
	e := NewEngine(cfg)
	t.Cleanup(func() { e.Close() })
	return e, cfg.CaptureDir
}

// startIn starts a session from a thread inside ns, so it captures there.
func startIn(t *testing.T, ns *netns.Namespace, e *Engine, spec tripcap.CaptureSpec, opts SessionOptions) *Session {
	t.Helper()
	s, err := startInErr(ns, e, spec, opts)
	if err != nil {
		t.Fatalf("starting capture: %v", err)
	}
	t.Cleanup(func() {
		s.Stop(tripcap.StopSessionDeleted)
		<-s.Done()
	})
	return s
}

func startInErr(ns *netns.Namespace, e *Engine, spec tripcap.CaptureSpec, opts SessionOptions) (*Session, error) {
	var s *Session
	err := ns.Do(func() (err error) {
		s, err = e.StartSession(context.Background(), spec, opts)
		return err
	})
	return s, err
}

// spec returns a capture spec for a file under dir with the given parameters.
func spec(dir, name string, p tripcap.PacketCaptureParameters) tripcap.CaptureSpec {
	if p.Target == "" {
		p.Target = "test"
	}
	return tripcap.CaptureSpec{ID: "id-" + name, Name: name, Parameters: p, Path: filepath.Join(dir, name), Comment: "test capture " + name}
}

// stopAndWait stops s and returns its result, failing after a timeout.
func stopAndWait(t *testing.T, s *Session, reason string) tripcap.CaptureResult {
	t.Helper()
	s.Stop(reason)
	return waitDone(t, s, 10*time.Second)
}

func waitDone(t *testing.T, s *Session, d time.Duration) tripcap.CaptureResult {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(d):
		t.Fatalf("session did not end within %v", d)
	}
	return s.Result()
}

// packet is a record read back from a capture file.
type packet struct {
	ts      time.Time
	capLen  int
	origLen int
	iface   int
	data    []byte
}

// readCapture reads every record of a pcap or pcapng file.
func readCapture(t *testing.T, path string) []packet {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []packet
	if err := decodeCapture(f, func(p packet) { out = append(out, p) }); err != nil {
		t.Fatalf("%s: record %d: %v", path, len(out), err)
	}
	return out
}

// decodeCapture reads pcap or pcapng from r, a file or a stream, calling
// each for every record as it is read, until the end of r.
func decodeCapture(r io.Reader, each func(packet)) error {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil {
		return fmt.Errorf("reading the magic number: %w", err)
	}
	var read func() ([]byte, gopacket.CaptureInfo, error)
	if binary.LittleEndian.Uint32(magic) == 0x0A0D0D0A {
		r, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return err
		}
		read = r.ReadPacketData
	} else {
		r, err := pcapgo.NewReader(br)
		if err != nil {
			return err
		}
		read = r.ReadPacketData
	}
	for {
		d, ci, err := read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		each(packet{ts: ci.Timestamp, capLen: ci.CaptureLength, origLen: ci.Length, iface: ci.InterfaceIndex, data: d})
	}
}

// udpPayload returns the UDP payload of an Ethernet/IPv4 or IPv6 frame.
func udpPayload(frame []byte) ([]byte, bool) {
	if len(frame) < 14 {
		return nil, false
	}
	et := binary.BigEndian.Uint16(frame[12:])
	ip := frame[14:]
	switch {
	case et == 0x0800 && len(ip) >= 20 && ip[9] == 17:
		hl := int(ip[0]&0x0f) * 4
		if len(ip) < hl+8 {
			return nil, false
		}
		return ip[hl+8:], true
	case et == 0x86dd && len(ip) >= 48 && ip[6] == 17:
		return ip[48:], true
	}
	return nil, false
}

// stamps returns the trafficgen stamps (flow id, sequence) of the packets.
func stamps(pkts []packet) (ids []uint32, seqs []uint64) {
	for _, p := range pkts {
		pl, ok := udpPayload(p.data)
		if !ok {
			continue
		}
		if id, seq, ok := trafficgen.Stamp(pl); ok {
			ids = append(ids, id)
			seqs = append(seqs, seq)
		}
	}
	return ids, seqs
}

var capinfosCount = regexp.MustCompile(`(?m)^Number of packets:\s+(\d+)`)

// capinfosPackets runs capinfos on a file and returns its packet count.
func capinfosPackets(t *testing.T, path string) int {
	t.Helper()
	bin := testenv.RequireBinary(t, "capinfos")
	out, err := exec.Command(bin, "-c", "-M", path).CombinedOutput()
	if err != nil {
		t.Fatalf("capinfos %s: %v\n%s", path, err, out)
	}
	m := capinfosCount.FindSubmatch(out)
	if m == nil {
		t.Fatalf("capinfos %s: no packet count in\n%s", path, out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// tsharkCount counts the frames of a file a display filter selects.
func tsharkCount(t *testing.T, path, filter string) int {
	t.Helper()
	bin := testenv.RequireBinary(t, "tshark")
	args := []string{"-r", path, "-T", "fields", "-e", "frame.number"}
	if filter != "" {
		args = append(args, "-Y", filter)
	}
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return len(strings.Fields(string(out)))
}

func netipPort(p netip.Prefix, port uint16) netip.AddrPort { return netip.AddrPortFrom(p.Addr(), port) }

// waitPackets waits until the session has written n packets.
func waitPackets(t *testing.T, s *Session, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Packets < n {
		if time.Now().After(deadline) {
			t.Fatalf("the session wrote %d packets, want %d", s.Stats().Packets, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
