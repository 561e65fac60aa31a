package triage

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tripcap/tripcap"
)

// WriteReport renders a summary as text for a person: what changed at the
// alert and the trouble signs first, then the detail.
func WriteReport(w io.Writer, s *tripcap.CaptureSummary) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	hb := tripcap.HumanBytes
	clock := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }

	p("CAPTURE: %d packets, %s in %.1f s, %s → %s UTC (%d file%s)", s.Packets, hb(s.Bytes), s.DurationSeconds, clock(s.Start), clock(s.End), len(s.Files), plural(len(s.Files)))
	for _, ifc := range s.Interfaces {
		line := fmt.Sprintf("  interface %s\t%s\t%d packets\t%s", ifc.Name, ifc.LinkType, ifc.Packets, hb(ifc.Bytes))
		if ifc.KernelDrops != nil {
			line += fmt.Sprintf("\tkernel drops %d", *ifc.KernelDrops)
		}
		if ifc.Source != "" {
			line += "\t(" + ifc.Source + ")"
		}
		p("%s", line)
	}
	if s.TruncatedPackets > 0 {
		p("  %d packets cut by the snap length", s.TruncatedPackets)
	}
	for _, pr := range s.Problems {
		p("  NOTE: %s", pr)
	}
	tw.Flush()

	if a := s.Alert; a != nil {
		p("")
		p("WHAT CHANGED AT THE ALERT (%s UTC; %s)", clock(a.Time), a.Source)
		p("  before: %.1f s, %d packets, %s (%s/s)\tafter: %.1f s, %d packets, %s (%s/s)",
			a.Before.Seconds, a.Before.Packets, hb(a.Before.Bytes), hb(uint64(float64(a.Before.Bytes)/max(a.Before.Seconds, 0.001))),
			a.After.Seconds, a.After.Packets, hb(a.After.Bytes), hb(uint64(float64(a.After.Bytes)/max(a.After.Seconds, 0.001))))
		changes := func(title string, cs []tripcap.Change) {
			if len(cs) == 0 {
				return
			}
			p("  %s:", title)
			for _, c := range cs {
				what := "grew"
				if c.New {
					what = "NEW"
				}
				p("    %s\t%s\t%s/s → %s/s", c.Name, what, hb(uint64(c.RateBefore)), hb(uint64(c.RateAfter)))
			}
		}
		changes("talkers", a.Talkers)
		changes("conversations", a.Conversations)
		changes("flows", a.Flows)
		tw.Flush()
	}

	t := s.TCP
	p("")
	p("TCP: %d connections: %d established, %d refused, %d unanswered; %d retransmissions (%d fast), %d duplicate ACKs, %d zero windows, %d resets",
		t.Connections, t.Established, t.Refused, t.Unanswered, t.Retransmissions, t.FastRetransmissions, t.DuplicateACKs, t.ZeroWindows, t.Resets)
	if d := t.HandshakeRTT; d != nil {
		p("  handshake RTT: median %.2f ms, p95 %.2f ms, max %.2f ms (%d handshakes)", d.Median, d.P95, d.Max, d.Count)
	}
	for _, c := range t.Worst {
		h := c.TCP
		p("  %s -> %s\tretrans %d\tdup ACKs %d\tzero windows %d\tresets %d", c.A, c.B, h.Retransmissions, h.DuplicateACKs, h.ZeroWindows, h.Resets)
	}
	tw.Flush()

	d := s.DNS
	if d.Queries+d.Responses > 0 {
		p("")
		var rc []string
		for _, r := range d.Rcodes {
			rc = append(rc, fmt.Sprintf("%s %d", r.Name, r.Count))
		}
		p("DNS: %d queries, %d responses (%s), %d unanswered, %d slower than %.0f ms", d.Queries, d.Responses, strings.Join(rc, ", "), d.Unanswered, d.SlowAnswers, d.SlowThresholdMillis)
		if l := d.Latency; l != nil {
			p("  answer time: median %.2f ms, p95 %.2f ms, max %.2f ms", l.Median, l.P95, l.Max)
		}
		nameList(p, "  failed", d.FailedNames)
		nameList(p, "  most asked", d.TopNames)
	}
	if s.TLS.ClientHellos > 0 || len(s.TLS.Alerts) > 0 {
		p("")
		p("TLS: %d ClientHellos", s.TLS.ClientHellos)
		nameList(p, "  server names", s.TLS.ServerNames)
		nameList(p, "  versions", s.TLS.Versions)
		nameList(p, "  alerts", s.TLS.Alerts)
	}
	if s.HTTP.Requests+s.HTTP.Responses > 0 {
		p("")
		p("HTTP/1: %d requests, %d responses", s.HTTP.Requests, s.HTTP.Responses)
		nameList(p, "  hosts", s.HTTP.Hosts)
		nameList(p, "  statuses", s.HTTP.Statuses)
	}
	if s.ICMP.Unreachables > 0 {
		p("")
		p("ICMP: %d destination unreachable", s.ICMP.Unreachables)
		nameList(p, "  codes", s.ICMP.ByCode)
		nameList(p, "  targets", s.ICMP.Targets)
	}
	tw.Flush()

	p("")
	p("TOP TALKERS\tsent\t\treceived")
	for _, t := range s.Talkers {
		p("  %s\t%d pkts\t%s\t%d pkts\t%s", t.Address, t.PacketsSent, hb(t.BytesSent), t.PacketsReceived, hb(t.BytesReceived))
	}
	tw.Flush()
	convs := func(title string, cs []tripcap.Conversation) {
		p("")
		p("%s\tA→B\t\tB→A\t\tduration\trate", title)
		for _, c := range cs {
			name := c.A + " <-> " + c.B
			if c.Protocol != "" {
				name = c.Protocol + " " + name
			}
			p("  %s\t%d pkts\t%s\t%d pkts\t%s\t%.3f s\t%s", name, c.PacketsAB, hb(c.BytesAB), c.PacketsBA, hb(c.BytesBA), c.DurationSeconds, bitRate(c.BitsPerSecond))
		}
		tw.Flush()
	}
	convs("TOP CONVERSATIONS (IP)", s.IPConversations)
	convs("TOP FLOWS", s.Conversations)

	p("")
	p("PROTOCOLS\tpackets\tbytes")
	for _, pc := range s.Protocols {
		depth := strings.Count(pc.Path, ":")
		name := pc.Path[strings.LastIndexByte(pc.Path, ':')+1:]
		p("  %s%s\t%d\t%s", strings.Repeat("  ", depth), name, pc.Packets, hb(pc.Bytes))
	}
	return tw.Flush()
}

func nameList(p func(string, ...any), title string, ns []tripcap.NameCount) {
	if len(ns) == 0 {
		return
	}
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprintf("%s (%d)", n.Name, n.Count)
	}
	p("%s: %s", title, strings.Join(parts, ", "))
}

func bitRate(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.2f Gbit/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.2f Mbit/s", bps/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%.1f kbit/s", bps/1e3)
	}
	return fmt.Sprintf("%.0f bit/s", bps)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
