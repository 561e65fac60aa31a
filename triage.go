package tripcap

import (
	"fmt"
	"strings"
	"time"
)

// CaptureSummary is the triage summary of a capture (one file or the files of
// a ring, read as one): what is in it, who talked to whom, how TCP, DNS, TLS
// and HTTP fared, and what changed at the alert. The triage package computes
// it; the API and the console serve it as JSON.
type CaptureSummary struct {
	Files           []SummaryFile      `json:"files"`
	Start           time.Time          `json:"start,omitzero"`
	End             time.Time          `json:"end,omitzero"`
	DurationSeconds float64            `json:"durationSeconds"`
	Packets         uint64             `json:"packets"`
	Bytes           uint64             `json:"bytes"`         // on the wire
	CapturedBytes   uint64             `json:"capturedBytes"` // in the file
	Interfaces      []SummaryInterface `json:"interfaces"`
	// KernelDrops is the kernel's drop count from the pcapng interface
	// statistics, when the files have them (nil otherwise: unknown).
	KernelDrops *uint64 `json:"kernelDrops,omitempty"`
	// TruncatedPackets were cut by the snap length.
	TruncatedPackets uint64 `json:"truncatedPackets"`

	// Protocols is the protocol hierarchy, one entry per path
	// ("eth:ipv4:tcp:tls"), parents before children.
	Protocols       []ProtocolCount `json:"protocols"`
	IPConversations []Conversation  `json:"ipConversations"`
	Conversations   []Conversation  `json:"conversations"` // 5-tuples
	Talkers         []Talker        `json:"talkers"`
	FlowTable       FlowTableStats  `json:"flowTable"`

	TCP  TCPSummary  `json:"tcp"`
	DNS  DNSSummary  `json:"dns"`
	TLS  TLSSummary  `json:"tls"`
	HTTP HTTPSummary `json:"http"`
	ICMP ICMPSummary `json:"icmp"`

	// Alert is what changed at the alert; nil when the capture has no
	// pre-trigger part or the alert time is unknown.
	Alert *AlertChange `json:"alert,omitempty"`

	// Problems are the things that make the summary partial: a file cut
	// short, a malformed block, a full flow table.
	Problems []string `json:"problems,omitempty"`
}

// SummaryFile is one file read.
type SummaryFile struct {
	Path    string `json:"path"`
	Format  string `json:"format"` // pcap or pcapng
	Packets uint64 `json:"packets"`
	Comment string `json:"comment,omitempty"`
	// EndsAt is set when the file could not be read to its end: the byte
	// offset where reading stopped, and why.
	EndsAt *int64 `json:"endsAt,omitempty"`
	Error  string `json:"error,omitempty"`
}

// SummaryInterface is one capture interface (a ring's files share theirs).
type SummaryInterface struct {
	Name     string `json:"name"`
	Source   string `json:"source,omitempty"` // the section comment or file name it came from
	LinkType string `json:"linkType"`
	SnapLen  uint32 `json:"snapLen"`
	Packets  uint64 `json:"packets"`
	Bytes    uint64 `json:"bytes"`
	// Received and KernelDrops come from the pcapng statistics block.
	Received    *uint64 `json:"received,omitempty"`
	KernelDrops *uint64 `json:"kernelDrops,omitempty"`
}

// ProtocolCount is one node of the protocol hierarchy.
type ProtocolCount struct {
	Path    string `json:"path"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Conversation is traffic between two endpoints: addresses (IP pairs) or
// address:port pairs of one transport protocol. A is the sender of the
// first packet seen.
type Conversation struct {
	Protocol        string    `json:"protocol,omitempty"` // tcp, udp, icmp…; empty for IP pairs
	A               string    `json:"a"`
	B               string    `json:"b"`
	PacketsAB       uint64    `json:"packetsAToB"`
	BytesAB         uint64    `json:"bytesAToB"`
	PacketsBA       uint64    `json:"packetsBToA"`
	BytesBA         uint64    `json:"bytesBToA"`
	Start           time.Time `json:"start"`
	DurationSeconds float64   `json:"durationSeconds"`
	// BitsPerSecond is the conversation's bytes over its duration (over the
	// capture's when it lasted an instant).
	BitsPerSecond float64    `json:"bitsPerSecond"`
	TCP           *TCPHealth `json:"tcp,omitempty"`
}

// Packets is the conversation's packet count both ways.
func (c Conversation) Packets() uint64 { return c.PacketsAB + c.PacketsBA }

// Bytes is the conversation's byte count both ways.
func (c Conversation) Bytes() uint64 { return c.BytesAB + c.BytesBA }

// Talker is one address and what it sent and received.
type Talker struct {
	Address         string `json:"address"`
	PacketsSent     uint64 `json:"packetsSent"`
	BytesSent       uint64 `json:"bytesSent"`
	PacketsReceived uint64 `json:"packetsReceived"`
	BytesReceived   uint64 `json:"bytesReceived"`
}

// FlowTableStats says how full the bounded flow tables got. When a table is
// full, new flows are counted in the totals and the protocol mix but not
// in conversations or talkers: Overflowed says so.
type FlowTableStats struct {
	Capacity        int    `json:"capacity"`
	Flows           int    `json:"flows"`
	Overflowed      bool   `json:"overflowed"`
	OverflowPackets uint64 `json:"overflowPackets"`
}

// TCPHealth counts the trouble signs of TCP traffic, per flow or overall.
// The definitions follow Wireshark's TCP analysis (see docs/triage.md).
type TCPHealth struct {
	Retransmissions     uint64 `json:"retransmissions"`
	FastRetransmissions uint64 `json:"fastRetransmissions"`
	DuplicateACKs       uint64 `json:"duplicateAcks"`
	ZeroWindows         uint64 `json:"zeroWindows"`
	Resets              uint64 `json:"resets"`
	// HandshakeRTTMillis is the SYN to handshake-completing ACK time, as
	// Wireshark's tcp.analysis.initial_rtt (0 when not seen).
	HandshakeRTTMillis float64 `json:"handshakeRttMillis,omitempty"`
}

// TCPSummary is TCP health overall.
type TCPSummary struct {
	TCPHealth
	// Connections counts flows with a SYN; Established those whose
	// handshake completed; Refused those whose SYN drew a reset;
	// Unanswered those whose SYN drew nothing.
	Connections  uint64        `json:"connections"`
	Established  uint64        `json:"established"`
	Refused      uint64        `json:"refused"`
	Unanswered   uint64        `json:"unanswered"`
	HandshakeRTT *Distribution `json:"handshakeRtt,omitempty"`
	// Worst are the flows with the most trouble, worst first.
	Worst []Conversation `json:"worst,omitempty"`
}

// Distribution summarises a set of durations, in milliseconds.
type Distribution struct {
	Count  int     `json:"count"`
	Min    float64 `json:"minMillis"`
	Median float64 `json:"medianMillis"`
	P95    float64 `json:"p95Millis"`
	Max    float64 `json:"maxMillis"`
}

// NameCount is a name (a DNS name, a server name, a status code…) and how
// often it was seen.
type NameCount struct {
	Name  string `json:"name"`
	Count uint64 `json:"count"`
}

// DNSSummary is the DNS traffic: queries, answers by response code, answers
// slower than SlowThresholdMillis, and the most asked names.
type DNSSummary struct {
	Queries             uint64        `json:"queries"`
	Responses           uint64        `json:"responses"`
	Unanswered          uint64        `json:"unanswered"`
	Rcodes              []NameCount   `json:"rcodes,omitempty"`
	SlowThresholdMillis float64       `json:"slowThresholdMillis"`
	SlowAnswers         uint64        `json:"slowAnswers"`
	Latency             *Distribution `json:"latency,omitempty"`
	TopNames            []NameCount   `json:"topNames,omitempty"`
	// FailedNames are the names whose answers were errors (NXDOMAIN, SERVFAIL…).
	FailedNames []NameCount `json:"failedNames,omitempty"`
}

// TLSSummary is what the unencrypted part of TLS handshakes tells.
type TLSSummary struct {
	ClientHellos uint64      `json:"clientHellos"`
	ServerNames  []NameCount `json:"serverNames,omitempty"`
	Versions     []NameCount `json:"versions,omitempty"` // negotiated, from ServerHellos
	Alerts       []NameCount `json:"alerts,omitempty"`
}

// HTTPSummary is plain HTTP/1 traffic.
type HTTPSummary struct {
	Requests  uint64      `json:"requests"`
	Responses uint64      `json:"responses"`
	Hosts     []NameCount `json:"hosts,omitempty"`
	Statuses  []NameCount `json:"statuses,omitempty"`
}

// ICMPSummary counts ICMP and ICMPv6 destination unreachables.
type ICMPSummary struct {
	Unreachables uint64      `json:"unreachables"`
	ByCode       []NameCount `json:"byCode,omitempty"`
	// Targets are the unreachable destinations, from the quoted header.
	Targets []NameCount `json:"targets,omitempty"`
}

// AlertChange compares the pre-trigger part of a capture with what follows
// the alert: the conversations and talkers that appeared or grew most (by a
// quarter at least), by byte rate.
type AlertChange struct {
	Time   time.Time `json:"time"`
	Source string    `json:"source"` // where the alert time came from
	Before Period    `json:"before"`
	After  Period    `json:"after"`
	// Conversations are IP pairs, Flows 5-tuples, Talkers addresses.
	Conversations []Change `json:"conversations,omitempty"`
	Flows         []Change `json:"flows,omitempty"`
	Talkers       []Change `json:"talkers,omitempty"`
}

// Period is one side of the alert.
type Period struct {
	Seconds float64 `json:"seconds"`
	Packets uint64  `json:"packets"`
	Bytes   uint64  `json:"bytes"`
}

// Change is one conversation or talker across the alert. Rates are bytes per
// second over each period.
type Change struct {
	Name        string  `json:"name"`
	BytesBefore uint64  `json:"bytesBefore"`
	BytesAfter  uint64  `json:"bytesAfter"`
	RateBefore  float64 `json:"rateBefore"`
	RateAfter   float64 `json:"rateAfter"`
	New         bool    `json:"new"` // absent before the alert
}

// alertCommentPrefix marks the alert time in a pcapng section comment.
const alertCommentPrefix = "alert at "

// AlertComment is the text to add to a capture's pcapng section comment so
// that triage knows when the alert fired (see ParseAlertComment).
func AlertComment(t time.Time) string {
	return alertCommentPrefix + t.UTC().Format(time.RFC3339Nano)
}

// ParseAlertComment finds an AlertComment in a section comment.
func ParseAlertComment(comment string) (time.Time, bool) {
	i := strings.Index(comment, alertCommentPrefix)
	if i < 0 {
		return time.Time{}, false
	}
	s := comment[i+len(alertCommentPrefix):]
	if j := strings.IndexAny(s, " ;,)"); j >= 0 {
		s = s[:j]
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// TopLines renders the first n lines of the summary that matter most at
// 2 a.m., for a notification: size and span, what changed at the alert,
// and trouble signs.
func (s *CaptureSummary) TopLines(n int) []string {
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	add("%d packets, %s in %.1fs", s.Packets, HumanBytes(s.Bytes), s.DurationSeconds)
	if a := s.Alert; a != nil {
		for i, c := range a.Talkers {
			if i == 2 {
				break
			}
			add("after the alert: %s", c.Describe())
		}
		for i, c := range a.Conversations {
			if i == 2 {
				break
			}
			add("after the alert: %s", c.Describe())
		}
	}
	if len(s.IPConversations) > 0 {
		c := s.IPConversations[0]
		add("top conversation %s <-> %s: %s", c.A, c.B, HumanBytes(c.Bytes()))
	}
	t := s.TCP
	if t.Retransmissions+t.Resets+t.Refused+t.Unanswered+t.ZeroWindows > 0 {
		add("TCP: %d retransmissions, %d resets, %d refused, %d unanswered, %d zero windows", t.Retransmissions, t.Resets, t.Refused, t.Unanswered, t.ZeroWindows)
	}
	if len(s.DNS.FailedNames) > 0 || s.DNS.SlowAnswers > 0 {
		line := fmt.Sprintf("DNS: %d queries, %d slow answers", s.DNS.Queries, s.DNS.SlowAnswers)
		for _, rc := range s.DNS.Rcodes {
			if rc.Name != "NOERROR" {
				line += fmt.Sprintf(", %d %s", rc.Count, rc.Name)
			}
		}
		lines = append(lines, line)
	}
	if s.ICMP.Unreachables > 0 {
		add("ICMP: %d destination unreachable", s.ICMP.Unreachables)
	}
	if s.KernelDrops != nil && *s.KernelDrops > 0 {
		add("kernel dropped %d packets", *s.KernelDrops)
	}
	for _, p := range s.Problems {
		add("note: %s", p)
	}
	if n >= 0 && len(lines) > n {
		lines = lines[:n]
	}
	return lines
}

// Describe renders a change in one line.
func (c Change) Describe() string {
	if c.New {
		return fmt.Sprintf("%s appeared, %s/s", c.Name, HumanBytes(uint64(c.RateAfter)))
	}
	return fmt.Sprintf("%s grew from %s/s to %s/s", c.Name, HumanBytes(uint64(c.RateBefore)), HumanBytes(uint64(c.RateAfter)))
}

// HumanBytes renders a byte count with a binary unit.
func HumanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
