//go:build linux

package afpacket

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// linkWatch receives the kernel's link notifications (RTM_NEWLINK on the
// RTNLGRP_LINK group) for the network namespace it was opened in. A whole-host
// capture and the pre-trigger buffer use it to pick up interfaces that appear
// while they run: a subscription learns of a new interface at once and costs
// nothing while links do not change, where a poll would either lag or list
// every interface several times a second.
type linkWatch struct {
	f *os.File
	// ns is the namespace's handle for opening sockets in it later, from
	// whatever thread; nil when it is the process's own.
	ns  *os.File
	buf []byte
}

// openLinkWatch subscribes in the calling thread's network namespace.
func openLinkWatch() (*linkWatch, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening a netlink socket for link events: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("subscribing to link events: %w", err)
	}
	w := &linkWatch{f: os.NewFile(uintptr(fd), "netlink link events"), buf: make([]byte, 64<<10)}
	ns, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		w.close()
		return nil, fmt.Errorf("opening the network namespace: %w", err)
	}
	if same, err := sameFile(ns, "/proc/self/ns/net"); err == nil && same {
		ns.Close()
	} else {
		w.ns = ns
	}
	return w, nil
}

func sameFile(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}

// next waits up to d for link notifications and returns the links they
// describe (none on a timeout). An overrun (ENOBUFS: more changes than the
// socket buffer held) is reported as errLinkOverrun: the caller lists the
// interfaces instead.
func (w *linkWatch) next(d time.Duration) ([]netInterface, error) {
	if err := w.f.SetReadDeadline(time.Now().Add(d)); err != nil {
		return nil, err
	}
	n, err := w.f.Read(w.buf)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, nil
	case errors.Is(err, unix.ENOBUFS):
		return nil, errLinkOverrun
	case err != nil:
		return nil, fmt.Errorf("reading link events: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(w.buf[:n])
	if err != nil {
		return nil, fmt.Errorf("parsing link events: %w", err)
	}
	var out []netInterface
	for i := range msgs {
		if ni, ok := parseLink(&msgs[i]); ok {
			out = append(out, ni)
		}
	}
	return out, nil
}

var errLinkOverrun = errors.New("link events overran the socket buffer")

// do runs fn in the watched namespace: on a thread of its own that enters
// it and is discarded afterwards, unless the namespace is the process's.
func (w *linkWatch) do(fn func() error) error {
	if w.ns == nil {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine rather
		// than go back to the runtime in another namespace.
		runtime.LockOSThread()
		if err := unix.Setns(int(w.ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering the capture's network namespace: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func (w *linkWatch) close() {
	w.f.Close()
	if w.ns != nil {
		w.ns.Close()
	}
}
