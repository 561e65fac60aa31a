package triage

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tripcap/tripcap/internal/pcapgen"
	"github.com/tripcap/tripcap/pcapfile"
)

// relink writes each Ethernet frame it is given with another link-layer
// header instead.
type relink struct {
	pcapfile.Writer
	link uint16
	buf  []byte
}

func (r *relink) WritePacket(iface int, ts int64, origLen int, data []byte) error {
	etype := binary.BigEndian.Uint16(data[12:])
	b := r.buf[:0]
	switch r.link {
	case linkSLL:
		b = append(b, 0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0)
		b = binary.BigEndian.AppendUint16(b, etype)
	case linkSLL2:
		b = binary.BigEndian.AppendUint16(b, etype)
		b = append(b, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0)
	case linkNull:
		fam := uint32(2)
		if etype == 0x86dd {
			fam = 30
		}
		b = binary.LittleEndian.AppendUint32(b, fam)
	}
	b = append(b, data[14:]...)
	r.buf = b
	return r.Writer.WritePacket(iface, ts, origLen-14+len(b)-(len(data)-14), b)
}

// TestLinkTypes reads the scenario as Linux cooked (SLL, SLL2), BSD loopback
// and raw IP captures: the same analysis as on Ethernet, and the same
// conversations as tshark's, bytes included.
func TestLinkTypes(t *testing.T) {
	dir := t.TempDir()
	eth, err := AnalyzeFiles(context.Background(), []string{scenarioPcap(t, dir)}, Options{Top: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, lt := range []struct {
		link uint16
		node string
	}{{linkSLL, "sll"}, {linkSLL2, "sll2"}, {linkNull, "null"}, {linkRaw, "raw"}} {
		t.Run(lt.node, func(t *testing.T) {
			path := filepath.Join(dir, lt.node+".pcap")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			pw, err := pcapfile.NewPcapWriter(f, pcapfile.LinkType(lt.link), 65535, 0)
			if err != nil {
				t.Fatal(err)
			}
			w := &pcapgen.Writer{W: &relink{Writer: pw, link: lt.link}, Now: scenarioStart}
			writeScenario(w)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			s, err := AnalyzeFiles(context.Background(), []string{path}, Options{Top: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if s.Packets != eth.Packets || s.TCP.TCPHealth != eth.TCP.TCPHealth || fmt.Sprint(s.DNS.Rcodes) != fmt.Sprint(eth.DNS.Rcodes) ||
				fmt.Sprint(s.TLS) != fmt.Sprint(eth.TLS) || fmt.Sprint(s.HTTP) != fmt.Sprint(eth.HTTP) || s.ICMP.Unreachables != eth.ICMP.Unreachables {
				t.Errorf("%s: %d packets, TCP %+v, DNS %v; Ethernet: %d, %+v, %v", lt.node, s.Packets, s.TCP.TCPHealth, s.DNS.Rcodes, eth.Packets, eth.TCP.TCPHealth, eth.DNS.Rcodes)
			}
			mine := map[string]uint64{}
			for _, p := range s.Protocols {
				mine[p.Path] = p.Packets
			}
			for _, p := range eth.Protocols {
				if p.Path == "eth" {
					continue
				}
				if got := mine[lt.node+strings.TrimPrefix(p.Path, "eth")]; got != p.Packets {
					t.Errorf("%s: %d packets, %d on Ethernet", lt.node+strings.TrimPrefix(p.Path, "eth"), got, p.Packets)
				}
			}
			out := tshark(t, path, "-q", "-z", "conv,ip", "-z", "conv,ipv6")
			checkConversations(t, lt.node+" IP", s.IPConversations, parseConv(t, out))
		})
	}
}
