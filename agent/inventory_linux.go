package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"
)

// watchInterfaces watches the kernel's link and address changes (the
// rtnetlink multicast groups) of the calling thread's network namespace
// until ctx ends; nil when it cannot (the heartbeats then read the
// interfaces each time, as they must).
func watchInterfaces(ctx context.Context, log *slog.Logger) *interfaceWatch {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		log.Info("cannot watch the host's interfaces; reading them at every heartbeat", "err", err)
		return nil
	}
	groups := uint32(unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		log.Info("cannot watch the host's interfaces; reading them at every heartbeat", "err", err)
		return nil
	}
	// Non-blocking, so the runtime's poller waits for it and Close ends a
	// pending Read.
	f := os.NewFile(uintptr(fd), "rtnetlink")
	w := &interfaceWatch{changed: make(chan struct{}, 1)}
	w.ok.Store(true)
	stop := context.AfterFunc(ctx, func() { f.Close() })
	go func() {
		defer stop()
		defer f.Close()
		// What a message says does not matter: any change means reading
		// the inventory again.
		buf := make([]byte, 16<<10)
		for {
			_, err := f.Read(buf)
			if ctx.Err() != nil {
				return
			}
			// ENOBUFS: the socket overflowed, messages were lost; what
			// they said changed all the same.
			if err != nil && !errors.Is(err, unix.ENOBUFS) {
				log.Warn("watching the host's interfaces failed; reading them at every heartbeat", "err", err)
				w.ok.Store(false)
				w.signal()
				return
			}
			w.signal()
		}
	}()
	return w
}
