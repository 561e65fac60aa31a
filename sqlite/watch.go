package sqlite

import (
	"context"
	"sync"
	"sync/atomic"
)

// hub fans host revision changes out to this process's WatchHostChanges
// callers. A subscriber too slow to keep up loses ids and is told to recheck
// everything instead (fn("")), so a publisher never waits.
type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	ch     chan string
	missed atomic.Bool
}

const subscriberBuffer = 1024

func (h *hub) subscribe() *subscriber {
	s := &subscriber{ch: make(chan string, subscriberBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = make(map[*subscriber]struct{})
	}
	h.subs[s] = struct{}{}
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
}

// publish tells every subscriber that the host's revision changed. Call it
// after the change is committed.
func (h *hub) publish(hostID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.ch <- hostID:
		default:
			s.missed.Store(true)
		}
	}
}

// watch is the Store's WatchHostChanges: it calls fn with the id of each
// host whose revision changes through this Store, after the change is
// committed, until ctx ends; then it returns nil. It first calls fn("") once it is subscribed: whatever the
// caller read before may be stale. It calls fn("") again if fn fell so far
// behind that ids were dropped. fn runs on the caller's goroutine, one call
// at a time.
func (h *hub) watch(ctx context.Context, fn func(hostID string)) error {
	sub := h.subscribe()
	defer h.unsubscribe(sub)
	fn("")
	for {
		select {
		case <-ctx.Done():
			return nil
		case id := <-sub.ch:
			fn(id)
			if sub.missed.Swap(false) {
				fn("")
			}
		}
	}
}
