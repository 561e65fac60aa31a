package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/pcapgen"
)

// writeCapture writes a small pcap: a TCP connection and a DNS exchange.
func writeCapture(t *testing.T, path string, start time.Time) {
	t.Helper()
	w, err := pcapgen.Create(path, start)
	if err != nil {
		t.Fatal(err)
	}
	a, b := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	c := &pcapgen.Conn{W: w, Client: a, Server: b, CPort: 40000, SPort: 80, CSeq: 1, SSeq: 1, CWindow: 100, SWindow: 100, RTT: time.Millisecond}
	c.Handshake()
	w.Advance(time.Millisecond)
	c.Send(true, []byte("GET / HTTP/1.1\r\nHost: h.example.test\r\n\r\n"))
	w.Advance(time.Millisecond)
	w.Frame(a, b, 17, pcapgen.UDPDatagram(5000, 53, pcapgen.DNSMessage(7, false, 0, "x.example.test")))
	w.Advance(time.Millisecond)
	w.Frame(b, a, 17, pcapgen.UDPDatagram(53, 5000, pcapgen.DNSMessage(7, true, 3, "x.example.test")))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

// TestAnalyzeAndMergeCommands runs `analyze` (text and JSON) and `capture
// merge` on two small captures.
func TestAnalyzeAndMergeCommands(t *testing.T) {
	dir := t.TempDir()
	one, two := filepath.Join(dir, "one.pcap"), filepath.Join(dir, "two.pcap")
	start := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	writeCapture(t, one, start)
	writeCapture(t, two, start.Add(500*time.Microsecond))

	out, err := runCLI(t, "analyze", one)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CAPTURE: 6 packets", "TCP: 1 connections: 1 established", "NXDOMAIN 1", "hosts: h.example.test (1)"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}

	merged := filepath.Join(dir, "merged.pcapng")
	if out, err := runCLI(t, "capture", "merge", one, two, "-w", merged); err != nil || !strings.Contains(out, "12 packets from 2 files, 2 interfaces") {
		t.Fatalf("merge: %v\n%s", err, out)
	}
	out, err = runCLI(t, "analyze", merged, "-o", "json", "--alert-time", start.Add(2*time.Millisecond).Format(time.RFC3339Nano))
	if err != nil {
		t.Fatal(err)
	}
	var s tripcap.CaptureSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if s.Packets != 12 || len(s.Interfaces) != 2 || s.Alert == nil || s.Alert.Source != "given" {
		t.Errorf("merged summary: %d packets, %d interfaces, alert %+v", s.Packets, len(s.Interfaces), s.Alert)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"analyze", one, "--alert-time", "yesterday"}, "--alert-time"},
		{[]string{"analyze", filepath.Join(dir, "none.pcap")}, "no such file"},
		{[]string{"capture", "merge", one}, "-w: required"},
		{[]string{"capture", "merge", one, two, "-w", one}, "is also an input"},
	} {
		if _, err := runCLI(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}
