package tripcap

import (
	"math/rand/v2"
	"time"
)

// Backoff is the wait between a stage's retries: Min, doubling after each
// failure up to Max, each wait drawn from its upper half so that many
// clients that failed together (agents that lost a replica, writers
// that lost a store) do not come back in step. The zero value waits
// between 1 s and 30 s. Not safe for concurrent use: one per retry loop.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the wait before the next attempt and doubles the next one.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.bounds()
	if b.cur < lo {
		b.cur = lo
	}
	d := b.cur
	b.cur = min(2*b.cur, hi)
	return d/2 + rand.N(d/2+1)
}

// Reset starts again from Min, after a success.
func (b *Backoff) Reset() { b.cur = 0 }

func (b *Backoff) bounds() (lo, hi time.Duration) {
	lo, hi = b.Min, b.Max
	if lo <= 0 {
		lo = time.Second
	}
	if hi <= 0 {
		hi = 30 * time.Second
	}
	return lo, max(lo, hi)
}
