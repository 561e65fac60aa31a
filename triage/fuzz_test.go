package triage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tripcap/tripcap/internal/pcapgen"
	"github.com/tripcap/tripcap/pcapfile"
)

// fuzzSeeds are whole files: the scenario as pcap, and a small pcapng ring
// file with two interfaces and statistics.
func fuzzSeeds(f *testing.F) {
	dir := f.TempDir()
	b, err := os.ReadFile(scenarioPcap(f, dir))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	p := filepath.Join(dir, "ring.pcapng")
	fh, err := os.Create(p)
	if err != nil {
		f.Fatal(err)
	}
	nw, err := pcapfile.NewNgWriter(fh, pcapfile.Section{Comment: "x; alert at 2026-03-01T02:00:00.01Z"}, []pcapfile.Interface{
		{Name: "eth0", LinkType: pcapfile.LinkTypeEthernet}, {Name: "tun0", LinkType: pcapfile.LinkTypeRaw}}, 0)
	if err != nil {
		f.Fatal(err)
	}
	w := &pcapgen.Writer{W: nw, Now: scenarioStart}
	raw := &pcapgen.Writer{W: rawIface{nw}, Now: scenarioStart}
	writeScenario(w)
	raw.Frame(hostA, hostB, 6, pcapgen.TCPSegment(1, 2, 3, 4, pcapgen.SYN, 5, 7, nil))
	nw.Close([]pcapfile.InterfaceStats{{Start: scenarioStart.Add(10 * time.Millisecond), Received: 9, Dropped: 2}})
	fh.Close()
	b, err = os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
}

// FuzzAnalyze feeds arbitrary files to the reader and the analyzer: they
// may report an error or a partial summary, never panic or hang.
func FuzzAnalyze(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := openInputs([]input{{name: "in.pcapng", r: memFile{bytes.NewReader(data)}, size: int64(len(data))}})
		if err != nil {
			return
		}
		s, err := Analyze(context.Background(), src, Options{MaxFlows: 64})
		if err != nil {
			t.Fatal(err)
		}
		_ = s.TopLines(10)
		if s.CapturedBytes > uint64(len(data)) {
			t.Fatalf("%d captured bytes from a %d-byte file", s.CapturedBytes, len(data))
		}
	})
}

type memFile struct{ *bytes.Reader }

func (memFile) Close() error { return nil }

// FuzzPacket decodes arbitrary bytes as a packet of every link type triage
// reads, through the whole analysis.
func FuzzPacket(f *testing.F) {
	f.Add([]byte{})
	f.Add(pcapgen.AppendFrame(nil, hostA, hostB, 6, pcapgen.TCPSegment(1, 443, 1, 0, pcapgen.SYN, 100, 7, nil)))
	f.Add(pcapgen.AppendFrame(nil, hostA, hostB, 6, pcapgen.TCPSegment(1, 443, 1, 1, pcapgen.PSH|pcapgen.ACK, 100, -1, pcapgen.ClientHello("x.test"))))
	f.Add(pcapgen.AppendFrame(nil, host6, srv6, 17, pcapgen.UDPDatagram(53, 53, pcapgen.DNSMessage(1, true, 3, "a.b"))))
	f.Add(pcapgen.AppendFrame(nil, hostA, hostB, 6, pcapgen.TCPSegment(80, 1, 1, 1, pcapgen.ACK, 100, -1, []byte("HTTP/1.1 404 Not Found\r\n\r\n"))))
	f.Add(pcapgen.AppendFrame(nil, hostA, hostB, 6, pcapgen.TCPSegment(1, 80, 1, 1, pcapgen.ACK, 100, -1, []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"))))
	links := []uint16{linkNull, linkEthernet, linkRaw, linkLoop, linkSLL, linkIPv4, linkIPv6, linkSLL2, 999}
	f.Fuzz(func(t *testing.T, data []byte) {
		a := newAnalyzer(Options{MaxFlows: 16})
		a.links = links
		a.ifaceCount = make([]counter, len(links))
		for i := range links {
			for off := range min(len(data), 16) + 1 {
				p := Packet{Timestamp: int64(i*100 + off), Interface: i, OrigLen: len(data) - off, Data: data[off:]}
				a.packet(nil, &p)
			}
		}
		_ = a.summary(&Source{})
	})
}
