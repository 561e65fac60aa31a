//go:build linux

package afpacket

import (
	"errors"
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// streamConn is the descriptor of a stream that has one (standard output
// is an *os.File), for watchStream; nil otherwise.
func streamConn(w io.Writer) syscall.RawConn {
	sc, ok := w.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// watchStream ends the session as soon as the stream's reader goes away,
// until the session stops. A write to the stream would find out too, but
// only once packets come: a quiet interface would keep `tripcap capture
// run -w - | tshark -c 5` running long after tshark left. Poll with no
// events asked reports only errors and hang-ups: a pipe whose read end is
// closed (POLLERR), a socket or terminal hung up (POLLHUP); a regular file
// or /dev/null reports neither, so the watch costs a wake-up per poll
// timeout and nothing else.
func (s *Session) watchStream(rc syscall.RawConn) {
	ms := int(max(s.pollNs/1e6, 1))
	for {
		select {
		case <-s.stopCh:
			return
		default:
		}
		var revents int16
		var perr error
		// Control pins the descriptor without changing its blocking mode.
		if err := rc.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd)}}
			if _, perr = unix.Poll(fds, ms); perr == nil {
				revents = fds[0].Revents
			}
		}); err != nil {
			return
		}
		switch {
		case errors.Is(perr, unix.EINTR):
		case perr != nil:
			s.log.Warn("not watching the stream for its reader's end", "err", perr)
			return
		case revents&unix.POLLNVAL != 0:
			return
		case revents&(unix.POLLERR|unix.POLLHUP) != 0:
			s.log.Info("the stream's reader went away; stopping")
			s.stop(StopStreamClosed, "", "the output stream's reader went away (it was closed)", true)
			return
		}
	}
}
