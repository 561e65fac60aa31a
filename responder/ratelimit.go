package responder

import (
	"sync"
	"time"
)

// Defaults of the inbound run rate (Config.KeyRate and the rest): a
// sender's alerts come in bursts of a group at a time, seconds apart; a
// key that sends more is looping or abused.
const (
	DefaultKeyRate        = 10
	DefaultKeyBurst       = 20
	DefaultResponderRate  = 20
	DefaultResponderBurst = 40
)

// runLimiter bounds the runs recorded per function key and per responder
// with token buckets: one token per run. A payload that groups more alerts
// than the bucket holds (an Alertmanager group) is taken whole once the
// bucket holds a token, leaving it in debt, so a group is never refused
// for its size alone and the rate over time is still the configured one.
// The buckets are this server's: replicas each allow the rate (see
// Config.KeyRate).
type runLimiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	rate
	tokens float64
	at     time.Time
	// refused is set while the bucket refuses, so the first refusal of a
	// run of them is told apart.
	refused bool
}

// rate is one bucket's refill per second and size.
type rate struct {
	perSecond float64
	burst     float64
}

// full reports whether the bucket has refilled by now.
func (b *bucket) full(now time.Time) bool {
	return b.tokens+now.Sub(b.at).Seconds()*b.perSecond >= b.burst
}

// take takes n tokens from each of the buckets named by keys (with their
// rates) when every one holds at least one token, and returns 0; else it
// takes nothing and returns how long until all of them hold one, and
// whether this is the first refusal since the last run taken.
func (l *runLimiter) take(now time.Time, n int, keys []string, rates []rate) (wait time.Duration, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*bucket{}
	}
	// Once a minute, forget the buckets that have refilled: a full bucket
	// is what a new one is, so memory is bounded by the keys sending lately.
	if now.Sub(l.swept) >= time.Minute {
		l.swept = now
		for k, b := range l.buckets {
			if b.full(now) {
				delete(l.buckets, k)
			}
		}
	}
	bs := make([]*bucket, len(keys))
	for i, k := range keys {
		b := l.buckets[k]
		if b == nil || b.rate != rates[i] {
			b = &bucket{rate: rates[i], tokens: rates[i].burst, at: now}
			l.buckets[k] = b
		}
		if d := now.Sub(b.at); d > 0 {
			b.tokens = min(b.burst, b.tokens+d.Seconds()*b.perSecond)
			b.at = now
		}
		if b.tokens < 1 {
			wait = max(wait, time.Duration((1-b.tokens)/b.perSecond*float64(time.Second)))
		}
		bs[i] = b
	}
	if wait > 0 {
		for _, b := range bs {
			if b.tokens < 1 && !b.refused {
				b.refused, first = true, true
			}
		}
		return wait, first
	}
	for _, b := range bs {
		b.tokens -= float64(n)
		b.refused = false
	}
	return 0, false
}
