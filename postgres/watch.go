package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tripcap/tripcap"
)

// Reconnection backoff of WatchHostChanges, and how often an idle listening
// connection is checked.
const (
	minBackoff   = 100 * time.Millisecond
	maxBackoff   = 10 * time.Second
	pingInterval = 30 * time.Second
)

// watch is the Store's WatchHostChanges: it calls fn with the id of each host whose revision changes,
// through any Store on this database, once the change is committed, until
// ctx ends; then it returns nil. It listens on a dedicated connection
// (LISTEN tripcap_host_changes). It calls fn("") whenever it starts
// listening, the first time and after each reconnection, since changes
// made while it was not listening are lost: the caller rechecks everything.
// When the connection is lost it reconnects, backing off from 100ms to 10s.
// fn runs on the caller's goroutine, one call at a time.
func (w *watcher) watch(ctx context.Context, fn func(hostID string)) error {
	backoff := tripcap.Backoff{Min: minBackoff, Max: maxBackoff}
	for {
		// A failure to connect or a lost connection is not returned: the
		// caller learns of it through the fn("") that follows reconnection.
		if conn, err := w.listen(ctx); err == nil {
			started := time.Now()
			fn("")
			receive(ctx, conn, fn)
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			conn.Close(closeCtx)
			cancel()
			if time.Since(started) > maxBackoff {
				backoff.Reset()
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff.Next()):
		}
	}
}

// watcher is WatchHostChanges: it connects with config.
type watcher struct{ config *pgx.ConnConfig }

// listen opens a connection that listens for host changes.
func (w *watcher) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, w.config.Copy())
	if err != nil {
		return nil, fmt.Errorf("connect to listen for host changes: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("listen for host changes: %w", err)
	}
	return conn, nil
}

// receive passes notifications to fn until ctx ends or the connection fails.
// A connection quiet for pingInterval is pinged, so one that died silently
// (a server failover, a dropped NAT entry) is noticed.
func receive(ctx context.Context, conn *pgx.Conn, fn func(hostID string)) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, pingInterval)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			fn(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) || wctx.Err() != nil:
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping the listening connection: %w", err)
			}
		default:
			return fmt.Errorf("wait for host changes: %w", err)
		}
	}
}
