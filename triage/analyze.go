// Package triage reads capture files (pcap and pcapng, several files of a
// ring as one) and summarises them for the person paged at 2 a.m.: who
// talked to whom, how TCP, DNS, TLS and HTTP fared, and what changed at the
// alert. It decodes the headers it needs by hand, without allocating per
// packet, and keeps its tables bounded, so its memory does not grow with
// the file.
package triage

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/tripcap/tripcap"
)

// Options tune an analysis. The zero value is usable.
type Options struct {
	// MaxFlows caps the 5-tuple table; the IP-pair and address tables get
	// the same cap. Default 200 000: at most about 125 MB in all
	// (TestMemoryBounded measures the worst case).
	MaxFlows int
	// Top is how many entries each ranked list keeps. Default 10.
	Top int
	// AlertTime overrides the alert time found in the files.
	AlertTime time.Time
	// SlowDNS is the answer time above which a DNS answer is slow.
	// Default 200 ms.
	SlowDNS time.Duration
}

const (
	defaultMaxFlows = 200_000
	defaultTop      = 10
	defaultSlowDNS  = 200 * time.Millisecond
	// maxNames caps each table of names (DNS, SNI, HTTP hosts).
	maxNames = 10_000
	// maxPendingDNS caps the queries waiting for an answer.
	maxPendingDNS = 65_536
	// unansweredGrace: a SYN or DNS query this close to the capture's
	// end is not counted as unanswered: its answer may just be later.
	unansweredGrace = int64(time.Second)
)

// AnalyzeFiles reads the files as one capture and summarises it. A file cut
// short or malformed part-way is summarised up to where it ends, and the
// summary says so (Files[i].EndsAt, Problems); a file that is not a capture
// file at all is an error.
func AnalyzeFiles(ctx context.Context, paths []string, opts Options) (*tripcap.CaptureSummary, error) {
	src, err := Open(paths)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return Analyze(ctx, src, opts)
}

// Analyze summarises what src holds.
func Analyze(ctx context.Context, src *Source, opts Options) (*tripcap.CaptureSummary, error) {
	a := newAnalyzer(opts)
	a.setAlert(src)
	var p Packet
	for n := 0; ; n++ {
		if n&0xffff == 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("analyzing capture: %w", ctx.Err())
		}
		err := src.Next(&p)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("analyzing capture: %w", err)
		}
		a.packet(src, &p)
	}
	return a.summary(src), nil
}

// counter is packets and bytes.
type counter struct{ packets, bytes uint64 }

func (c *counter) add(n uint64) { c.packets++; c.bytes += n }

type pairKey struct{ a, b addr }

type flowKey struct {
	a, b   addr
	pa, pb uint16
	proto  uint8
}

// endpointStats are shared by flows and IP pairs. dir 0 is from A (the first
// sender) to B.
type endpointStats struct {
	aIsLow      bool // A is the key's a
	first, last int64
	dir         [2]counter
	before      uint64 // bytes before the alert
}

func (e *endpointStats) count(fromLow bool, ts int64, n uint64, beforeAlert bool) {
	dir := 0
	if fromLow != e.aIsLow {
		dir = 1
	}
	e.dir[dir].add(n)
	// Files of several interfaces may be slightly out of order.
	e.first, e.last = min(e.first, ts), max(e.last, ts)
	if beforeAlert {
		e.before += n
	}
}

type pair struct {
	key pairKey
	endpointStats
	ta, tb int32 // talkers of key.a and key.b (-1: table full)
}

type flow struct {
	key flowKey
	endpointStats
	pair int32 // -1: table full
	tcp  int32 // index into tcps, -1 for other protocols
}

type talker struct {
	a          addr
	sent, recv counter
	before     uint64
}

type analyzer struct {
	opts     Options
	alertNs  int64 // 0: unknown
	alertSrc string

	packets, wire, captured, truncated uint64
	first, last                        int64
	ifaceCount                         []counter
	links                              []uint16
	beforeCount                        counter
	proto                              [numLink][numNet][numTrans][numApp]counter

	flows    []flow
	flowIdx  map[flowKey]int32
	pairs    []pair
	pairIdx  map[pairKey]int32
	talkers  []talker
	talkIdx  map[addr]int32
	overflow counter
	full     bool

	tcps []tcpFlow
	tcp  tcpTotals

	dns    dnsState
	tls    tlsState
	http   httpState
	icmp   icmpState
	d      decoded
	tlsTmp tlsInfo
}

func newAnalyzer(opts Options) *analyzer {
	if opts.MaxFlows <= 0 {
		opts.MaxFlows = defaultMaxFlows
	}
	if opts.Top <= 0 {
		opts.Top = defaultTop
	}
	if opts.SlowDNS <= 0 {
		opts.SlowDNS = defaultSlowDNS
	}
	hint := min(opts.MaxFlows, 4096)
	return &analyzer{
		opts:    opts,
		flowIdx: make(map[flowKey]int32, hint),
		pairIdx: make(map[pairKey]int32, hint),
		talkIdx: make(map[addr]int32, hint),
		dns:     newDNSState(),
		tls:     tlsState{sni: newNames(), versions: newNames(), alerts: newNames()},
		http:    httpState{hosts: newNames(), statuses: newNames()},
		icmp:    icmpState{codes: newNames(), targets: newNames()},
	}
}

// setAlert takes the alert time from the options, else a section comment
// (tripcap.AlertComment), else the capture's start in the pcapng statistics,
// which is where the pre-trigger part ends.
func (a *analyzer) setAlert(src *Source) {
	if !a.opts.AlertTime.IsZero() {
		a.alertNs, a.alertSrc = a.opts.AlertTime.UnixNano(), "given"
		return
	}
	for _, c := range src.Comments() {
		if t, ok := tripcap.ParseAlertComment(c); ok {
			a.alertNs, a.alertSrc = t.UnixNano(), "section comment"
			return
		}
	}
	if start := src.CaptureStart(); start != 0 {
		a.alertNs, a.alertSrc = start, "capture start (pcapng statistics): packets before it are the pre-trigger part"
	}
}

func (a *analyzer) packet(src *Source, p *Packet) {
	n := uint64(p.OrigLen)
	a.packets++
	a.wire += n
	a.captured += uint64(len(p.Data))
	if len(p.Data) < p.OrigLen {
		a.truncated++
	}
	ts := p.Timestamp
	if a.packets == 1 || ts < a.first {
		a.first = ts
	}
	a.last = max(a.last, ts)
	if p.Interface >= len(a.links) {
		for _, ifc := range src.Interfaces()[len(a.links):] {
			a.links = append(a.links, ifc.LinkType)
			a.ifaceCount = append(a.ifaceCount, counter{})
		}
	}
	a.ifaceCount[p.Interface].add(n)
	before := a.alertNs != 0 && ts < a.alertNs
	if before {
		a.beforeCount.add(n)
	}

	d := &a.d
	decode(a.links[p.Interface], p.Data, d)
	if d.net != nwIPv4 && d.net != nwIPv6 {
		a.proto[d.link][d.net][d.trans][d.app].add(n)
		return
	}

	fl, fromLow := a.flowFor(d, ts)
	var pr *pair
	if fl != nil {
		fl.count(fromLow, ts, n, before)
		if fl.pair >= 0 {
			pr = &a.pairs[fl.pair]
		}
	} else if i := a.pairFor(d.src, d.dst, ts); i >= 0 {
		pr = &a.pairs[i]
	}
	if pr != nil {
		pr.count(pr.key.a == d.src, ts, n, before)
		a.talk(pr.ta, pr.tb, pr.key.a == d.src, n, before)
	} else {
		a.overflow.add(n)
		a.talk(a.talkerFor(d.src), a.talkerFor(d.dst), true, n, before)
	}

	switch d.trans {
	case trTCP:
		resent := false
		if fl != nil && fl.tcp >= 0 {
			resent = a.tcpPacket(&a.tcps[fl.tcp], fromLow == fl.aIsLow, ts, d)
		} else if d.flags&tcpRST != 0 {
			a.tcp.resets++
		}
		// Data seen before is not read again, as Wireshark does not
		// hand a retransmission to the application dissector.
		if len(d.payload) > 0 && !resent {
			d.app = classify(d)
			a.appPayload(d, ts)
		}
	case trUDP:
		if len(d.payload) > 0 {
			d.app = classify(d)
			a.appPayload(d, ts)
		}
	case trICMP:
		if d.icmpType == 3 {
			a.unreachable(d, false)
		}
	case trICMPv6:
		if d.icmpType == 1 {
			a.unreachable(d, true)
		}
	}
	a.proto[d.link][d.net][d.trans][d.app].add(n)
}

// talk counts a packet from one talker to another; fromA says ta sent it.
func (a *analyzer) talk(ta, tb int32, fromA bool, n uint64, before bool) {
	if !fromA {
		ta, tb = tb, ta
	}
	if ta >= 0 {
		t := &a.talkers[ta]
		t.sent.add(n)
		if before {
			t.before += n
		}
	}
	if tb >= 0 && tb != ta {
		t := &a.talkers[tb]
		t.recv.add(n)
		if before {
			t.before += n
		}
	}
}

// flowFor finds or adds the packet's 5-tuple flow; nil when the table is
// full. fromLow says the packet goes from the key's a to its b.
func (a *analyzer) flowFor(d *decoded, ts int64) (*flow, bool) {
	k := flowKey{a: d.src, b: d.dst, pa: d.sport, pb: d.dport, proto: d.proto}
	if d.trans != trTCP && d.trans != trUDP {
		k.pa, k.pb = 0, 0
	}
	fromLow := true
	if k.b.less(k.a) || k.a == k.b && k.pb < k.pa {
		k.a, k.b, k.pa, k.pb = k.b, k.a, k.pb, k.pa
		fromLow = false
	}
	i, added := slot(a, a.flowIdx, k, len(a.flows))
	if !added {
		if i < 0 {
			return nil, fromLow
		}
		return &a.flows[i], fromLow
	}
	a.flows = append(a.flows, flow{key: k, pair: -1, tcp: -1})
	fl := &a.flows[i]
	fl.aIsLow = fromLow
	fl.first, fl.last = ts, ts
	fl.pair = a.pairFor(d.src, d.dst, ts)
	if d.trans == trTCP {
		fl.tcp = int32(len(a.tcps))
		a.tcps = append(a.tcps, tcpFlow{synDir: -1})
	}
	return fl, fromLow
}

// pairFor finds or adds the IP pair's entry; -1 when the table is full.
func (a *analyzer) pairFor(src, dst addr, ts int64) int32 {
	k := pairKey{a: src, b: dst}
	if dst.less(src) {
		k.a, k.b = dst, src
	}
	i, added := slot(a, a.pairIdx, k, len(a.pairs))
	if !added {
		return i
	}
	a.pairs = append(a.pairs, pair{key: k, ta: a.talkerFor(k.a), tb: a.talkerFor(k.b)})
	pr := &a.pairs[i]
	pr.aIsLow = k.a == src
	pr.first, pr.last = ts, ts
	return i
}

func (a *analyzer) talkerFor(x addr) int32 {
	i, added := slot(a, a.talkIdx, x, len(a.talkers))
	if added {
		a.talkers = append(a.talkers, talker{a: x})
	}
	return i
}

// slot looks k up in a table's index; when it is new and the table (of n
// entries) has room, it is given index n, for the caller to append its
// entry (added). -1: the table is full.
func slot[K comparable](a *analyzer, idx map[K]int32, k K, n int) (i int32, added bool) {
	if i, ok := idx[k]; ok {
		return i, false
	}
	if n >= a.opts.MaxFlows {
		a.full = true
		return -1, false
	}
	idx[k] = int32(n)
	return int32(n), true
}

// appPayload reads the application protocols triage reports on.
func (a *analyzer) appPayload(d *decoded, ts int64) {
	switch d.app {
	case apDNS:
		m := d.payload
		if d.trans == trTCP {
			// DNS over TCP: a two-byte length, then the message, when
			// the segment starts one.
			if len(m) < 14 {
				return
			}
			m = m[2:]
		}
		a.dnsMessage(d, m, ts)
	case apTLS:
		t := &a.tlsTmp
		parseTLS(d.payload, t)
		if t.clientHello {
			a.tls.clientHellos++
			if len(t.sni) > 0 {
				a.tls.sni.add(t.sni)
			}
		}
		if t.serverHello && t.version != 0 {
			a.tls.versions.addString(tlsVersionName(t.version))
		}
		if t.alerts > 0 {
			a.tls.alerts.addString(tlsAlertName(t))
		}
	case apHTTP:
		switch httpStart(d.payload) {
		case 1:
			a.http.requests++
			if h := httpHost(d.payload); len(h) > 0 {
				a.http.hosts.add(h)
			}
		case 2:
			a.http.responses++
			if c := httpStatus(d.payload); c != 0 {
				a.http.statuses.addString(statusText(c))
			}
		}
	}
}

var statusTexts [600]string

func statusText(c int) string {
	if c < 100 || c >= len(statusTexts) {
		return strconv.Itoa(c)
	}
	if statusTexts[c] == "" {
		statusTexts[c] = strconv.Itoa(c)
	}
	return statusTexts[c]
}

type tlsState struct {
	clientHellos          uint64
	sni, versions, alerts *names
}

type httpState struct {
	requests, responses uint64
	hosts, statuses     *names
}

type icmpState struct {
	unreachables   uint64
	codes, targets *names
	buf            []byte
}

var unreach4 = [...]string{"net unreachable", "host unreachable", "protocol unreachable", "port unreachable", "fragmentation needed", "source route failed", "net unknown", "host unknown", "source host isolated", "net prohibited", "host prohibited", "net unreachable for TOS", "host unreachable for TOS", "communication prohibited", "host precedence violation", "precedence cutoff"}
var unreach6 = [...]string{"no route", "administratively prohibited", "beyond scope of source", "address unreachable", "port unreachable", "source address failed policy", "reject route", "error in source routing header"}

func (a *analyzer) unreachable(d *decoded, v6 bool) {
	a.icmp.unreachables++
	var name string
	if v6 {
		name = "ICMPv6 code " + strconv.Itoa(int(d.icmpCode))
		if int(d.icmpCode) < len(unreach6) {
			name = unreach6[d.icmpCode]
		}
	} else {
		name = "ICMP code " + strconv.Itoa(int(d.icmpCode))
		if int(d.icmpCode) < len(unreach4) {
			name = unreach4[d.icmpCode]
		}
	}
	a.icmp.codes.addString(name)
	// The quoted header names what could not be reached.
	q := d.l4
	var inner decoded
	if !v6 && len(q) >= 28 {
		decodeIPv4(q[8:], &inner)
	} else if v6 && len(q) >= 48 {
		decodeIPv6(q[8:], &inner)
	} else {
		return
	}
	b := a.icmp.buf[:0]
	b = appendAddr(b, inner.dst)
	switch inner.trans {
	case trTCP, trUDP:
		b = append(b, ' ')
		b = append(b, transNames[inner.trans]...)
		b = append(b, '/')
		b = strconv.AppendUint(b, uint64(inner.dport), 10)
	}
	a.icmp.buf = b
	a.icmp.targets.add(b)
}
