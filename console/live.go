package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/tripcap/tripcap"
)

// Live updates are server-sent events: the browser's EventSource
// reconnects by itself, they pass proxies as plain HTTP, and they need no
// library. Each event calls the services anew, so authorization, revocation
// and a signed-out session apply to every one.

// liveFunc returns the value a live page shows now.
type liveFunc func(ctx context.Context, r *http.Request) (any, error)

// Bounds of a stream: it ends after maxLive (the browser reconnects, and
// the session is authenticated again), or when the caller goes away.
const (
	maxLive       = 10 * time.Minute
	liveWriteWait = 10 * time.Second
)

// live registers a stream at pattern sending fn's value every interval.
func (c *Console) live(pattern string, every time.Duration, fn liveFunc) {
	c.get(pattern, func(w http.ResponseWriter, r *http.Request) error {
		return c.stream(w, r, every, fn)
	})
}

// stream sends fn's value as an event now and every interval, until the
// caller leaves, maxLive passes, or fn fails (an "end" event says why).
func (c *Console) stream(w http.ResponseWriter, r *http.Request, every time.Duration, fn liveFunc) error {
	ctx := r.Context()
	first, err := fn(ctx, r)
	if err != nil {
		return err // answered as an error page: EventSource gives up
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) error {
		// Each event gets its own write deadline: the server's write
		// timeout is for whole answers, and this one is long.
		_ = rc.SetWriteDeadline(time.Now().Add(liveWriteWait))
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding a live event: %w", err)
		}
		if event != "" {
			if _, err := fmt.Fprintf(w, "event: %s\n", event); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := send("", first); err != nil {
		return nil // the caller went away
	}
	t := time.NewTicker(every)
	defer t.Stop()
	end := time.NewTimer(maxLive)
	defer end.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-end.C:
			// A retry hint and an ordinary close: EventSource reconnects.
			_, _ = fmt.Fprint(w, "retry: 1000\n\n")
			_ = rc.Flush()
			return nil
		case <-t.C:
		}
		// The session is authenticated again (cheaply: the services
		// cache it briefly), so a sign-out or a revocation ends the stream.
		v, err := any(nil), error(nil)
		if sess, serr := c.session(w, r); serr != nil {
			err = serr
		} else {
			v, err = fn(tripcap.NewContextWithPrincipal(ctx, sess.p), r)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			msg := tripcap.ErrorMessage(err)
			if tripcap.ErrorCode(err) == tripcap.EINTERNAL {
				c.log.Error("live update failed", "path", r.URL.Path, "err", tripcap.RedactURLs(err.Error()))
				msg = "Live updates stopped: the server failed (see its log); reload the page."
			}
			_ = send("end", msg)
			return nil
		}
		if err := send("", v); err != nil {
			return nil
		}
	}
}
