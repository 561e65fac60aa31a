package triage

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/pcapgen"
	"github.com/tripcap/tripcap/internal/testenv"
)

// tshark runs tshark on one file with fixed arguments and returns its output.
func tshark(t *testing.T, file string, args ...string) string {
	t.Helper()
	bin := testenv.RequireBinary(t, "tshark")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-n", "-r", file}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %v: %v: %s", args, err, stderr.String())
	}
	return string(out)
}

// convRow is one row of a tshark -z conv table.
type convRow struct {
	a, b               string
	framesAB, framesBA uint64
	bytesAB, bytesBA   uint64
	// unitAB and unitBA are the units the byte counts were printed in:
	// 1 for bytes, 1000 for kB (tshark drops the fraction)…
	unitAB, unitBA uint64
	duration       float64
}

var convLine = regexp.MustCompile(`^(\S+)\s+<->\s+(\S+)\s+(\d+)\s+([\d,]+) (bytes|kB|MB|GB)\s+(\d+)\s+([\d,]+) (bytes|kB|MB|GB)\s+(\d+)\s+([\d,]+) (bytes|kB|MB|GB)\s+([\d.]+)\s+([\d.]+)`)

// parseConv reads the rows of every conversation table in out. tshark's
// "<-" columns are what B sent, "->" what A sent.
func parseConv(t *testing.T, out string) []convRow {
	var rows []convRow
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := convLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		num := func(s string) uint64 { n, _ := strconv.ParseUint(s, 10, 64); return n }
		size := func(v, unit string) (uint64, uint64) {
			n, err := strconv.ParseUint(strings.ReplaceAll(v, ",", ""), 10, 64)
			if err != nil {
				t.Fatalf("tshark size %q: %v", v, err)
			}
			mult := map[string]uint64{"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
			return n * mult, mult
		}
		r := convRow{a: m[1], b: m[2], framesBA: num(m[3]), framesAB: num(m[6])}
		r.bytesBA, r.unitBA = size(m[4], m[5])
		r.bytesAB, r.unitAB = size(m[7], m[8])
		r.duration, _ = strconv.ParseFloat(m[13], 64)
		rows = append(rows, r)
	}
	return rows
}

// closeBytes compares a byte count with tshark's: exactly when tshark
// printed bytes; from 10 000 bytes on it prints whole kB (MB…), the
// fraction dropped, so ours must be in [theirs, theirs+unit).
func closeBytes(ours, theirs, unit uint64) bool {
	return ours >= theirs && ours < theirs+unit
}

// checkConversations compares our conversations (all of them: the summary
// must have been made with a Top above their number) with tshark's table.
func checkConversations(t *testing.T, what string, ours []tripcap.Conversation, theirs []convRow) {
	t.Helper()
	if len(ours) != len(theirs) {
		t.Errorf("%s: %d conversations, tshark %d", what, len(ours), len(theirs))
	}
	// tshark writes an IPv6 endpoint without brackets: fd00::1:50001.
	unbracket := strings.NewReplacer("[", "", "]", "")
	byPair := map[string]tripcap.Conversation{}
	for _, c := range ours {
		byPair[unbracket.Replace(c.A+" "+c.B)] = c
	}
	for _, r := range theirs {
		c, ok := byPair[r.a+" "+r.b]
		if !ok {
			// tshark may put B first where A's first packet was an
			// answer to nothing seen: report, with the other order.
			if rc, ok2 := byPair[r.b+" "+r.a]; ok2 {
				t.Errorf("%s %s <-> %s: our A is tshark's B (%+v)", what, r.a, r.b, rc)
			} else {
				t.Errorf("%s %s <-> %s: missing (tshark %+v)", what, r.a, r.b, r)
			}
			continue
		}
		if c.PacketsAB != r.framesAB || c.PacketsBA != r.framesBA ||
			!closeBytes(c.BytesAB, r.bytesAB, r.unitAB) || !closeBytes(c.BytesBA, r.bytesBA, r.unitBA) {
			t.Errorf("%s %s <-> %s: ours %d/%d packets %d/%d bytes, tshark %d/%d packets %d/%d bytes",
				what, r.a, r.b, c.PacketsAB, c.PacketsBA, c.BytesAB, c.BytesBA, r.framesAB, r.framesBA, r.bytesAB, r.bytesBA)
		}
		// tshark prints the duration to 4 decimals.
		if d := c.DurationSeconds - r.duration; d > 0.00006 || d < -0.00006 {
			t.Errorf("%s %s <-> %s: duration %.6f, tshark %.4f", what, r.a, r.b, c.DurationSeconds, r.duration)
		}
	}
}

var phsLine = regexp.MustCompile(`^( *)(\S+)\s+frames:(\d+) bytes:(\d+)$`)

// parsePhs reads tshark's protocol hierarchy into paths like ours.
func parsePhs(out string) map[string]tripcap.ProtocolCount {
	res := map[string]tripcap.ProtocolCount{}
	var stack []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := phsLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		depth := len(m[1]) / 2
		stack = append(stack[:min(depth, len(stack))], m[2])
		p := strings.Join(stack, ":")
		f, _ := strconv.ParseUint(m[3], 10, 64)
		b, _ := strconv.ParseUint(m[4], 10, 64)
		res[p] = tripcap.ProtocolCount{Path: p, Packets: f, Bytes: b}
	}
	return res
}

// comparedProtocols are the hierarchy nodes whose definitions match
// tshark's (see docs/triage.md for the others).
func compared(path string) bool {
	parts := strings.Split(path, ":")
	switch len(parts) {
	case 1, 2, 3:
		return true
	case 4:
		// Application protocols: DNS on UDP; TLS and HTTP on TCP (we do
		// not reassemble, so they match only when each message starts a
		// segment, as in the generated traffic).
		return parts[2] == "udp" && parts[3] == "dns" || parts[2] == "tcp" && (parts[3] == "tls" || parts[3] == "http")
	}
	return false
}

func checkProtocols(t *testing.T, ours []tripcap.ProtocolCount, theirs map[string]tripcap.ProtocolCount, exclude []string) {
	t.Helper()
	compared := func(p string) bool { return compared(p) && !slices.Contains(exclude, p) }
	mine := map[string]tripcap.ProtocolCount{}
	for _, p := range ours {
		mine[p.Path] = p
	}
	for p, tc := range theirs {
		if !compared(p) {
			continue
		}
		if oc := mine[p]; oc.Packets != tc.Packets || oc.Bytes != tc.Bytes {
			t.Errorf("protocol %s: ours %d packets %d bytes, tshark %d packets %d bytes", p, oc.Packets, oc.Bytes, tc.Packets, tc.Bytes)
		}
	}
	for p, oc := range mine {
		if _, ok := theirs[p]; !ok && compared(p) {
			t.Errorf("protocol %s: ours %d packets, tshark has none", p, oc.Packets)
		}
	}
}

// countFrames counts the frames matching a display filter.
func countFrames(t *testing.T, file, filter string) uint64 {
	out := tshark(t, file, "-Y", filter, "-T", "fields", "-e", "frame.number")
	return uint64(strings.Count(out, "\n"))
}

// compareWithTshark checks a summary (made with a Top above the number of
// conversations) against tshark on the same single file; the protocol
// hierarchy nodes excluded are those known to differ (docs/triage.md).
func compareWithTshark(t *testing.T, file string, s *tripcap.CaptureSummary, exclude ...string) {
	t.Helper()
	out := tshark(t, file, "-q", "-z", "conv,ip", "-z", "conv,ipv6", "-z", "io,phs")
	checkProtocols(t, s.Protocols, parsePhs(out), exclude)
	checkConversations(t, "IP", s.IPConversations, parseConv(t, out))

	var tcpConv, udpConv []tripcap.Conversation
	for _, c := range s.Conversations {
		switch c.Protocol {
		case "tcp":
			tcpConv = append(tcpConv, c)
		case "udp":
			udpConv = append(udpConv, c)
		}
	}
	checkConversations(t, "TCP", tcpConv, parseConv(t, tshark(t, file, "-q", "-z", "conv,tcp")))
	checkConversations(t, "UDP", udpConv, parseConv(t, tshark(t, file, "-q", "-z", "conv,udp")))

	for _, c := range []struct {
		what   string
		ours   uint64
		filter string
	}{
		{"retransmissions", s.TCP.Retransmissions, "tcp.analysis.retransmission"},
		{"fast retransmissions", s.TCP.FastRetransmissions, "tcp.analysis.fast_retransmission"},
		{"duplicate ACKs", s.TCP.DuplicateACKs, "tcp.analysis.duplicate_ack"},
		{"zero windows", s.TCP.ZeroWindows, "tcp.analysis.zero_window"},
		{"resets", s.TCP.Resets, "tcp.flags.reset == 1"},
		{"DNS queries", s.DNS.Queries, "dns.flags.response == 0"},
		{"DNS responses", s.DNS.Responses, "dns.flags.response == 1"},
		{"TLS ClientHellos", s.TLS.ClientHellos, "tls.handshake.type == 1"},
		{"HTTP requests", s.HTTP.Requests, "http.request"},
		{"HTTP responses", s.HTTP.Responses, "http.response"},
		{"ICMP unreachables", s.ICMP.Unreachables, "icmp.type == 3 || icmpv6.type == 1"},
	} {
		if theirs := countFrames(t, file, c.filter); c.ours != theirs {
			t.Errorf("%s: ours %d, tshark %d (%s)", c.what, c.ours, theirs, c.filter)
		}
	}

	// DNS answers by rcode.
	rc := map[string]uint64{}
	for _, line := range strings.Fields(tshark(t, file, "-Y", "dns.flags.response == 1", "-T", "fields", "-e", "dns.flags.rcode")) {
		n, _ := strconv.Atoi(line)
		rc[rcodeName(uint8(n))]++
	}
	mine := map[string]uint64{}
	for _, r := range s.DNS.Rcodes {
		mine[r.Name] = r.Count
	}
	if fmt.Sprint(mine) != fmt.Sprint(rc) {
		t.Errorf("DNS rcodes: ours %v, tshark %v", mine, rc)
	}

	// Server names.
	sni := strings.Fields(tshark(t, file, "-Y", "tls.handshake.type == 1", "-T", "fields", "-e", "tls.handshake.extensions_server_name"))
	var ourSNI []string
	for _, n := range s.TLS.ServerNames {
		for range n.Count {
			ourSNI = append(ourSNI, n.Name)
		}
	}
	sort.Strings(sni)
	sort.Strings(ourSNI)
	if !slices.Equal(sni, ourSNI) {
		t.Errorf("TLS server names: ours %v, tshark %v", ourSNI, sni)
	}

	// Handshake RTTs, per connection, to the microsecond tshark prints.
	var theirRTT []string
	seen := map[string]bool{}
	for _, line := range strings.Split(tshark(t, file, "-Y", "tcp.analysis.initial_rtt", "-T", "fields", "-e", "tcp.stream", "-e", "tcp.analysis.initial_rtt"), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && !seen[f[0]] {
			seen[f[0]] = true
			v, _ := strconv.ParseFloat(f[1], 64)
			theirRTT = append(theirRTT, fmt.Sprintf("%.6f", v))
		}
	}
	var ourRTT []string
	for _, c := range s.Conversations {
		if c.TCP != nil && c.TCP.HandshakeRTTMillis > 0 {
			ourRTT = append(ourRTT, fmt.Sprintf("%.6f", c.TCP.HandshakeRTTMillis/1e3))
		}
	}
	sort.Strings(theirRTT)
	sort.Strings(ourRTT)
	if !slices.Equal(theirRTT, ourRTT) {
		t.Errorf("handshake RTTs: ours %v, tshark %v", ourRTT, theirRTT)
	}
}

// TestScenarioAgainstTshark checks the generated scenario against tshark,
// and the things tshark does not count directly against what the scenario
// holds.
func TestScenarioAgainstTshark(t *testing.T) {
	file := scenarioPcap(t, t.TempDir())
	s, err := AnalyzeFiles(context.Background(), []string{file}, Options{Top: 1000})
	if err != nil {
		t.Fatal(err)
	}
	compareWithTshark(t, file, s)

	// What the scenario holds, one of each.
	if s.TCP.Retransmissions != 2 || s.TCP.FastRetransmissions != 1 || s.TCP.DuplicateACKs != 3 || s.TCP.ZeroWindows != 1 || s.TCP.Resets != 2 {
		t.Errorf("TCP health %+v", s.TCP.TCPHealth)
	}
	if s.TCP.Connections != 5 || s.TCP.Established != 3 || s.TCP.Refused != 1 || s.TCP.Unanswered != 1 {
		t.Errorf("TCP connections %d, established %d, refused %d, unanswered %d; want 5, 3, 1, 1", s.TCP.Connections, s.TCP.Established, s.TCP.Refused, s.TCP.Unanswered)
	}
	want := map[string]uint64{"NOERROR": 3, "NXDOMAIN": 2, "SERVFAIL": 1}
	for _, r := range s.DNS.Rcodes {
		if want[r.Name] != r.Count {
			t.Errorf("DNS %s: %d", r.Name, r.Count)
		}
	}
	if s.DNS.SlowAnswers != 1 || len(s.DNS.FailedNames) == 0 || s.DNS.FailedNames[0] != (tripcap.NameCount{Name: "missing.example.test", Count: 2}) {
		t.Errorf("DNS slow %d, failed names %v", s.DNS.SlowAnswers, s.DNS.FailedNames)
	}
	if len(s.DNS.TopNames) == 0 || s.DNS.TopNames[0].Count != 2 {
		t.Errorf("DNS top names %v (names are compared lowercased)", s.DNS.TopNames)
	}
	if fmt.Sprint(s.TLS.Versions) != "[{TLS 1.3 1}]" || fmt.Sprint(s.TLS.Alerts) != "[{fatal handshake_failure 1}]" {
		t.Errorf("TLS versions %v, alerts %v", s.TLS.Versions, s.TLS.Alerts)
	}
	if fmt.Sprint(s.HTTP.Hosts) != "[{api.example.test 1} {www.example.test 1}]" || fmt.Sprint(s.HTTP.Statuses) != "[{200 1} {503 1}]" {
		t.Errorf("HTTP hosts %v, statuses %v", s.HTTP.Hosts, s.HTTP.Statuses)
	}
	if fmt.Sprint(s.ICMP.Targets) != "[{198.18.0.5 udp/5000 1}]" || fmt.Sprint(s.ICMP.ByCode) != "[{port unreachable 1}]" {
		t.Errorf("ICMP %+v", s.ICMP)
	}
	if len(s.Problems) != 0 || s.FlowTable.Overflowed {
		t.Errorf("problems %v, flow table %+v", s.Problems, s.FlowTable)
	}
}

// TestMixedAgainstTshark compares with tshark on 10 MB of the benchmark's
// mixed traffic (hundreds of TCP connections with retransmissions and
// resets, DNS, TLS, HTTP, QUIC-like UDP, ICMP, IPv6). The HTTP nodes of the
// protocol hierarchy differ by definition: tshark counts every body segment
// on port 80 as HTTP, triage the segments that start a message.
func TestMixedAgainstTshark(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mixed.pcap")
	w, err := pcapgen.Create(path, scenarioStart)
	if err != nil {
		t.Fatal(err)
	}
	if err := pcapgen.WriteMixed(w, 10<<20); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := AnalyzeFiles(context.Background(), []string{path}, Options{Top: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	if s.TCP.Retransmissions == 0 || s.TCP.Connections < 50 || s.DNS.Queries == 0 || s.TLS.ClientHellos == 0 {
		t.Fatalf("the mixed traffic lacks what it should hold: TCP %+v, DNS %d, TLS %d", s.TCP.TCPHealth, s.DNS.Queries, s.TLS.ClientHellos)
	}
	compareWithTshark(t, path, s, "eth:ip:tcp:http", "eth:ipv6:tcp:http")
}
