package controlplane

import (
	"sync"
	"time"
)

// pollClock ends agents' long polls at their deadlines from one runtime
// timer instead of one each. With 10,000 agents a timer per waiting poll
// made the runtime's timer heap 10,000 entries longer, and the runtime
// walks the whole heap each time a timer that was reset comes due, which
// a PostgreSQL query does (pgconn resets a 15 ms timer around each write):
// at the fleet benchmark's query rate, dozens of walks a second, 7 % of the
// server's CPU under load and 20 % idle. Deadlines are rounded up to
// pollTick, so a poll that sees no change answers at most that much later
// than it asked to.
type pollClock struct {
	mu sync.Mutex
	// due holds a channel per tick with polls waiting for it, closed when it passes.
	due map[int64]chan struct{}
	// timer fires at armed, the earliest tick in due (0: not armed).
	timer *time.Timer
	armed int64
}

const pollTick = 100 * time.Millisecond

// after returns a channel closed once d has passed (rounded up to a tick).
func (c *pollClock) after(d time.Duration) <-chan struct{} {
	if d <= 0 {
		return closedChan
	}
	tick := (time.Now().Add(d).UnixNano() + int64(pollTick) - 1) / int64(pollTick)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.due == nil {
		c.due = map[int64]chan struct{}{}
	}
	ch, ok := c.due[tick]
	if !ok {
		ch = make(chan struct{})
		c.due[tick] = ch
	}
	if c.armed == 0 || tick < c.armed {
		c.arm(tick)
	}
	return ch
}

// arm sets the timer for tick; c.mu is held.
func (c *pollClock) arm(tick int64) {
	c.armed = tick
	wait := time.Until(time.Unix(0, tick*int64(pollTick)))
	if c.timer == nil {
		c.timer = time.AfterFunc(wait, c.fire)
		return
	}
	c.timer.Reset(wait)
}

// fire closes the channels of the ticks that have passed and arms the
// timer for the next one.
func (c *pollClock) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now().UnixNano() / int64(pollTick)
	next := int64(0)
	for tick, ch := range c.due {
		if tick <= now {
			close(ch)
			delete(c.due, tick)
		} else if next == 0 || tick < next {
			next = tick
		}
	}
	c.armed = 0
	if next != 0 {
		c.arm(next)
	}
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
