package sqlstore

import (
	"sync"
	"time"

	"github.com/tripcap/tripcap"
)

// progressCache keeps, decoded, the captures UpdateCaptures last wrote, so
// that the next progress report on a running capture (one a second from each
// agent) is applied to them and written under a guard on the row's version
// and creation time, instead of the row being read and its document decoded
// again: that read and decode were most of a progress write's cost
// (bench/fleet, 1,000 captures running). A row anyone changed since (another
// replica, a stop, a delete) fails the guard, and that capture is read the
// usual way in the same transaction.
//
// An entry belongs to one caller at a time: take removes what it returns and
// keep puts back only what a committed transaction wrote.
type progressCache struct {
	mu sync.Mutex
	m  map[string]cachedCapture
}

type cachedCapture struct {
	c    *tripcap.PacketCapture
	kept time.Time
}

const (
	// progressCacheMax bounds the captures kept: a report a second on
	// each of them costs one guarded write; beyond, captures are read.
	progressCacheMax = 10000
	// progressCacheTTL drops what no report asked for in this long (a
	// capture that ended, or whose agent reports to another replica).
	progressCacheTTL = time.Minute
)

// take removes the entries of ids kept within the TTL and returns them.
func (p *progressCache) take(ids []string, now time.Time) map[string]*tripcap.PacketCapture {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out map[string]*tripcap.PacketCapture
	for _, id := range ids {
		e, ok := p.m[id]
		if !ok {
			continue
		}
		delete(p.m, id)
		if now.Sub(e.kept) > progressCacheTTL {
			continue
		}
		if out == nil {
			out = make(map[string]*tripcap.PacketCapture, len(ids))
		}
		out[id] = e.c
	}
	return out
}

// keep puts back captures a committed transaction wrote, as written.
func (p *progressCache) keep(cs []*tripcap.PacketCapture, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = make(map[string]cachedCapture, len(cs))
	}
	if len(p.m)+len(cs) > progressCacheMax {
		for id, e := range p.m {
			if now.Sub(e.kept) > progressCacheTTL {
				delete(p.m, id)
			}
		}
	}
	for _, c := range cs {
		if len(p.m) >= progressCacheMax {
			return
		}
		p.m[c.ID] = cachedCapture{c: c, kept: now}
	}
}
