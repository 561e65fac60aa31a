package triage

import (
	"cmp"
	"slices"
	"time"

	"github.com/tripcap/tripcap"
)

// names counts names in a bounded table; once full, new names are counted
// together as "(other)".
type names struct {
	m     map[string]uint64
	other uint64
}

func newNames() *names { return &names{m: map[string]uint64{}} }

// add counts b; the map lookup with string(b) does not allocate, only a
// new name's insertion does.
func (n *names) add(b []byte) {
	if _, ok := n.m[string(b)]; ok {
		n.m[string(b)]++
		return
	}
	if len(n.m) >= maxNames {
		n.other++
		return
	}
	n.m[string(b)] = 1
}

func (n *names) addString(s string) {
	if _, ok := n.m[s]; !ok && len(n.m) >= maxNames {
		n.other++
		return
	}
	n.m[s]++
}

// top returns the k most counted names (all when k < 0), most first, ties by name.
func (n *names) top(k int) []tripcap.NameCount {
	out := make([]tripcap.NameCount, 0, len(n.m)+1)
	for name, c := range n.m {
		out = append(out, tripcap.NameCount{Name: name, Count: c})
	}
	slices.SortFunc(out, func(a, b tripcap.NameCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	if k >= 0 && len(out) > k {
		out = out[:k]
	}
	if n.other > 0 {
		out = append(out, tripcap.NameCount{Name: "(other)", Count: n.other})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

type dnsKey struct {
	client addr
	port   uint16
	id     uint16
}

type dnsState struct {
	queries, responses uint64
	rcodes             [16]uint64
	pending            map[dnsKey]int64
	latencies          []int64 // nanoseconds, bounded (reservoir)
	nLatency           uint64
	slow               uint64
	asked, failed      *names
	h                  dnsHeader
}

func newDNSState() dnsState {
	return dnsState{pending: map[dnsKey]int64{}, asked: newNames(), failed: newNames()}
}

// maxSamples bounds the samples kept for a distribution.
const maxSamples = 100_000

// sample keeps a bounded, deterministic sample of values: all of the first
// maxSamples, then every k-th.
func sample(s []int64, n uint64, v int64) []int64 {
	if len(s) < maxSamples {
		return append(s, v)
	}
	s[n%maxSamples] = v
	return s
}

func (a *analyzer) dnsMessage(d *decoded, m []byte, ts int64) {
	st := &a.dns
	if !parseDNS(m, &st.h) {
		return
	}
	h := &st.h
	if !h.response {
		st.queries++
		if len(h.name) > 0 {
			st.asked.add(h.name)
		}
		k := dnsKey{client: d.src, port: d.sport, id: h.id}
		if _, ok := st.pending[k]; !ok && len(st.pending) < maxPendingDNS {
			st.pending[k] = ts
		}
		return
	}
	st.responses++
	st.rcodes[h.rcode&0x0f]++
	if h.rcode != 0 && len(h.name) > 0 {
		st.failed.add(h.name)
	}
	k := dnsKey{client: d.dst, port: d.dport, id: h.id}
	if t0, ok := st.pending[k]; ok {
		delete(st.pending, k)
		lat := max(ts-t0, 0) // out-of-order packets of several interfaces
		st.latencies = sample(st.latencies, st.nLatency, lat)
		st.nLatency++
		if lat > int64(a.opts.SlowDNS) {
			st.slow++
		}
	}
}

// distribution summarises samples in nanoseconds as milliseconds.
func distribution(s []int64) *tripcap.Distribution {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	ms := func(v int64) float64 { return float64(v) / float64(time.Millisecond) }
	pct := func(p float64) int64 { return s[min(len(s)-1, int(p*float64(len(s)-1)+0.5))] }
	return &tripcap.Distribution{Count: len(s), Min: ms(s[0]), Median: ms(pct(0.5)), P95: ms(pct(0.95)), Max: ms(s[len(s)-1])}
}
