package triage

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/tripcap/tripcap"
)

func (a *analyzer) summary(src *Source) *tripcap.CaptureSummary {
	s := &tripcap.CaptureSummary{
		Files:            slices.Clone(src.Files),
		Packets:          a.packets,
		Bytes:            a.wire,
		CapturedBytes:    a.captured,
		TruncatedPackets: a.truncated,
	}
	if a.packets > 0 {
		s.Start, s.End = time.Unix(0, a.first).UTC(), time.Unix(0, a.last).UTC()
		s.DurationSeconds = float64(a.last-a.first) / 1e9
	}
	for _, f := range s.Files {
		if f.EndsAt != nil {
			s.Problems = append(s.Problems, fmt.Sprintf("%s is read up to byte %d only: %s", f.Path, *f.EndsAt, f.Error))
		}
	}
	a.interfaces(src, s)
	s.Protocols = a.protocols()

	s.FlowTable = tripcap.FlowTableStats{Capacity: a.opts.MaxFlows, Flows: len(a.flows), Overflowed: a.full, OverflowPackets: a.overflow.packets}
	if a.full {
		s.Problems = append(s.Problems, fmt.Sprintf("the flow table is full (%d entries): %d packets of later flows are in the totals but not in conversations or talkers", a.opts.MaxFlows, a.overflow.packets))
	}
	top := a.opts.Top
	dur := max(a.last-a.first, 0)

	pairs := make([]tripcap.Conversation, 0, len(a.pairs))
	for i := range a.pairs {
		p := &a.pairs[i]
		pairs = append(pairs, conversation("", p.key.a, p.key.b, 0, 0, &p.endpointStats, dur))
	}
	s.IPConversations = topConversations(pairs, top)

	flows := make([]tripcap.Conversation, 0, len(a.flows))
	for i := range a.flows {
		f := &a.flows[i]
		flows = append(flows, a.flowConversation(f, dur))
	}
	s.Conversations = topConversations(slices.Clone(flows), top)

	talkers := make([]tripcap.Talker, 0, len(a.talkers))
	for _, t := range a.talkers {
		talkers = append(talkers, tripcap.Talker{Address: addrString(t.a), PacketsSent: t.sent.packets, BytesSent: t.sent.bytes, PacketsReceived: t.recv.packets, BytesReceived: t.recv.bytes})
	}
	slices.SortStableFunc(talkers, func(x, y tripcap.Talker) int {
		return cmp.Compare(y.BytesSent+y.BytesReceived, x.BytesSent+x.BytesReceived)
	})
	s.Talkers = talkers[:min(len(talkers), top)]

	a.tcpSummary(s, flows)
	a.dnsSummary(s)
	s.TLS = tripcap.TLSSummary{ClientHellos: a.tls.clientHellos, ServerNames: a.tls.sni.top(top), Versions: a.tls.versions.top(top), Alerts: a.tls.alerts.top(top)}
	s.HTTP = tripcap.HTTPSummary{Requests: a.http.requests, Responses: a.http.responses, Hosts: a.http.hosts.top(top), Statuses: a.http.statuses.top(top)}
	s.ICMP = tripcap.ICMPSummary{Unreachables: a.icmp.unreachables, ByCode: a.icmp.codes.top(top), Targets: a.icmp.targets.top(top)}
	s.Alert = a.alertChange(flows)
	return s
}

func (a *analyzer) interfaces(src *Source, s *tripcap.CaptureSummary) {
	var drops uint64
	var haveDrops bool
	for i, ifc := range src.Interfaces() {
		si := tripcap.SummaryInterface{Name: ifc.Name, Source: ifc.Source, LinkType: linkTypeName(ifc.LinkType), SnapLen: ifc.SnapLen}
		if i < len(a.ifaceCount) {
			si.Packets, si.Bytes = a.ifaceCount[i].packets, a.ifaceCount[i].bytes
		}
		if ifc.HasStats {
			d := ifc.Drops
			si.KernelDrops = &d
			drops += d
			haveDrops = true
			if ifc.HasReceived {
				r := ifc.Received
				si.Received = &r
			}
		}
		if si.Name == "" {
			si.Name = strconv.Itoa(i)
		}
		s.Interfaces = append(s.Interfaces, si)
	}
	if haveDrops {
		s.KernelDrops = &drops
	}
}

// protocols renders the protocol hierarchy depth first, each level's
// children by packets, most first.
func (a *analyzer) protocols() []tripcap.ProtocolCount {
	type node struct {
		name     string
		c        counter
		children []*node
	}
	root := &node{}
	child := func(n *node, name string) *node {
		for _, c := range n.children {
			if c.name == name {
				return c
			}
		}
		c := &node{name: name}
		n.children = append(n.children, c)
		return c
	}
	for l := range numLink {
		for nw := range numNet {
			for tr := range numTrans {
				for ap := range numApp {
					c := a.proto[l][nw][tr][ap]
					if c.packets == 0 {
						continue
					}
					n := child(root, linkNames[l])
					path := []string{netNames[nw], transNames[tr], appNames[ap]}
					n.c.packets += c.packets
					n.c.bytes += c.bytes
					for _, name := range path {
						if name == "" {
							break
						}
						n = child(n, name)
						n.c.packets += c.packets
						n.c.bytes += c.bytes
					}
				}
			}
		}
	}
	var out []tripcap.ProtocolCount
	var walk func(n *node, prefix string)
	walk = func(n *node, prefix string) {
		slices.SortStableFunc(n.children, func(x, y *node) int { return cmp.Compare(y.c.packets, x.c.packets) })
		for _, c := range n.children {
			p := c.name
			if prefix != "" {
				p = prefix + ":" + c.name
			}
			out = append(out, tripcap.ProtocolCount{Path: p, Packets: c.c.packets, Bytes: c.c.bytes})
			walk(c, p)
		}
	}
	walk(root, "")
	return out
}

func addrString(x addr) string {
	var b [16]byte
	for i := range 8 {
		b[i] = byte(x.hi >> (56 - 8*i))
		b[8+i] = byte(x.lo >> (56 - 8*i))
	}
	ip := netip.AddrFrom16(b)
	return ip.Unmap().String()
}

func appendAddr(b []byte, x addr) []byte {
	return append(b, addrString(x)...)
}

func endpointString(x addr, port uint16, withPort bool) string {
	if !withPort {
		return addrString(x)
	}
	var b [16]byte
	for i := range 8 {
		b[i] = byte(x.hi >> (56 - 8*i))
		b[8+i] = byte(x.lo >> (56 - 8*i))
	}
	return netip.AddrPortFrom(netip.AddrFrom16(b).Unmap(), port).String()
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 1:
		return "icmp"
	case 58:
		return "icmpv6"
	}
	return "ip-proto-" + strconv.Itoa(int(p))
}

// conversation renders a pair or flow with A, its first sender, first.
func conversation(proto string, lo, hi addr, plo, phi uint16, e *endpointStats, captureDur int64) tripcap.Conversation {
	withPort := proto == "tcp" || proto == "udp"
	a, b := endpointString(lo, plo, withPort), endpointString(hi, phi, withPort)
	if !e.aIsLow {
		a, b = b, a
	}
	c := tripcap.Conversation{
		Protocol: proto, A: a, B: b,
		PacketsAB: e.dir[0].packets, BytesAB: e.dir[0].bytes,
		PacketsBA: e.dir[1].packets, BytesBA: e.dir[1].bytes,
		Start:           time.Unix(0, e.first).UTC(),
		DurationSeconds: float64(e.last-e.first) / 1e9,
	}
	d := e.last - e.first
	if d <= 0 {
		d = captureDur
	}
	if d > 0 {
		c.BitsPerSecond = float64(c.Bytes()) * 8 / (float64(d) / 1e9)
	}
	return c
}

func (a *analyzer) flowConversation(f *flow, dur int64) tripcap.Conversation {
	c := conversation(protoName(f.key.proto), f.key.a, f.key.b, f.key.pa, f.key.pb, &f.endpointStats, dur)
	if f.tcp >= 0 {
		t := &a.tcps[f.tcp]
		c.TCP = &tripcap.TCPHealth{
			Retransmissions: uint64(t.retrans), FastRetransmissions: uint64(t.fastRetrans),
			DuplicateACKs: uint64(t.dupAcks), ZeroWindows: uint64(t.zeroWindows), Resets: uint64(t.resets),
			HandshakeRTTMillis: float64(t.firstRTT) / 1e6,
		}
	}
	return c
}

// topConversations sorts by bytes, most first, and keeps k.
func topConversations(cs []tripcap.Conversation, k int) []tripcap.Conversation {
	slices.SortStableFunc(cs, func(x, y tripcap.Conversation) int { return cmp.Compare(y.Bytes(), x.Bytes()) })
	return cs[:min(len(cs), k)]
}

func (a *analyzer) tcpSummary(s *tripcap.CaptureSummary, flows []tripcap.Conversation) {
	ts := &s.TCP
	ts.Resets = a.tcp.resets
	var rtts []int64
	for i := range a.tcps {
		t := &a.tcps[i]
		ts.Retransmissions += uint64(t.retrans)
		ts.FastRetransmissions += uint64(t.fastRetrans)
		ts.DuplicateACKs += uint64(t.dupAcks)
		ts.ZeroWindows += uint64(t.zeroWindows)
		ts.Resets += uint64(t.resets)
		if t.firstRTT > 0 && t.established {
			rtts = append(rtts, t.firstRTT)
		}
		if t.synDir < 0 {
			continue
		}
		ts.Connections++
		switch {
		case t.established:
			ts.Established++
		case t.rstAnswer:
			ts.Refused++
		case !t.answered && t.synTs < a.last-unansweredGrace:
			ts.Unanswered++
		}
	}
	ts.HandshakeRTT = distribution(rtts)
	var worst []tripcap.Conversation
	for _, c := range flows {
		if c.TCP != nil && trouble(c.TCP) > 0 {
			worst = append(worst, c)
		}
	}
	slices.SortStableFunc(worst, func(x, y tripcap.Conversation) int { return cmp.Compare(trouble(y.TCP), trouble(x.TCP)) })
	ts.Worst = worst[:min(len(worst), a.opts.Top)]
}

func trouble(h *tripcap.TCPHealth) uint64 {
	return h.Retransmissions + h.DuplicateACKs + h.ZeroWindows + h.Resets
}

func (a *analyzer) dnsSummary(s *tripcap.CaptureSummary) {
	st := &a.dns
	d := tripcap.DNSSummary{
		Queries: st.queries, Responses: st.responses,
		SlowThresholdMillis: float64(a.opts.SlowDNS) / 1e6, SlowAnswers: st.slow,
		Latency: distribution(st.latencies), TopNames: st.asked.top(a.opts.Top), FailedNames: st.failed.top(a.opts.Top),
	}
	for _, t0 := range st.pending {
		if t0 < a.last-unansweredGrace {
			d.Unanswered++
		}
	}
	for rc, n := range st.rcodes {
		if n > 0 {
			d.Rcodes = append(d.Rcodes, tripcap.NameCount{Name: rcodeName(uint8(rc)), Count: n})
		}
	}
	s.DNS = d
}

// growth is the ratio of rates across the alert from which a conversation
// or talker counts as grown.
const growth = 1.25

// alertChange compares the two sides of the alert; nil without a
// pre-trigger part or without packets after the alert.
func (a *analyzer) alertChange(flows []tripcap.Conversation) *tripcap.AlertChange {
	if a.alertNs == 0 || a.beforeCount.packets == 0 || a.beforeCount.packets == a.packets {
		return nil
	}
	ch := &tripcap.AlertChange{
		Time:   time.Unix(0, a.alertNs).UTC(),
		Source: a.alertSrc,
		Before: tripcap.Period{Seconds: float64(a.alertNs-a.first) / 1e9, Packets: a.beforeCount.packets, Bytes: a.beforeCount.bytes},
		After:  tripcap.Period{Seconds: float64(a.last-a.alertNs) / 1e9, Packets: a.packets - a.beforeCount.packets, Bytes: a.wire - a.beforeCount.bytes},
	}
	// A period of an instant is taken as a millisecond, so rates stay finite.
	bs, as := max(ch.Before.Seconds, 0.001), max(ch.After.Seconds, 0.001)
	change := func(name string, total, before uint64) (tripcap.Change, bool) {
		after := total - before
		c := tripcap.Change{Name: name, BytesBefore: before, BytesAfter: after, RateBefore: float64(before) / bs, RateAfter: float64(after) / as, New: before == 0}
		// A steady flow wobbles: only a quarter more counts as growth.
		return c, after > 0 && c.RateAfter > growth*c.RateBefore
	}
	rank := func(cs []tripcap.Change) []tripcap.Change {
		slices.SortStableFunc(cs, func(x, y tripcap.Change) int {
			return cmp.Compare(y.RateAfter-y.RateBefore, x.RateAfter-x.RateBefore)
		})
		return cs[:min(len(cs), a.opts.Top)]
	}
	var cs []tripcap.Change
	for i := range a.pairs {
		p := &a.pairs[i]
		name := addrString(p.key.a) + " <-> " + addrString(p.key.b)
		if c, ok := change(name, p.dir[0].bytes+p.dir[1].bytes, p.before); ok {
			cs = append(cs, c)
		}
	}
	ch.Conversations = rank(cs)
	cs = nil
	for i := range a.flows {
		f := &a.flows[i]
		c := flows[i]
		name := c.Protocol + " " + c.A + " -> " + c.B
		if f.key.pa == 0 && f.key.pb == 0 {
			name = c.Protocol + " " + c.A + " <-> " + c.B
		}
		if c, ok := change(name, f.dir[0].bytes+f.dir[1].bytes, f.before); ok {
			cs = append(cs, c)
		}
	}
	ch.Flows = rank(cs)
	cs = nil
	for _, t := range a.talkers {
		if c, ok := change(addrString(t.a), t.sent.bytes+t.recv.bytes, t.before); ok {
			cs = append(cs, c)
		}
	}
	ch.Talkers = rank(cs)
	return ch
}
