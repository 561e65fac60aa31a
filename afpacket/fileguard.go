//go:build linux

package afpacket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tripcap/tripcap/pcapfile"
)

// The file guard keeps the kill -9 promise. Capture files are written in
// whole records, but Linux may stop a buffered write() between two pages
// when a fatal signal arrives, leaving a record cut in two. So each engine
// runs a small guard process (this binary, re-executed): before every write
// the engine tells it the file's offset, a record boundary; when the engine
// dies, its socket closes and the guard truncates every open file to its
// last whole record from there, then exits.
//
// The guard is started with fileGuardArg as its only argument and
// fileGuardEnv set; init below turns such a process into the guard before
// main runs, in any binary that links this package.
const (
	fileGuardArg = "tripcap-afpacket-file-guard"
	fileGuardEnv = "TRIPCAP_AFPACKET_FILE_GUARD"
)

// Guard protocol messages, one per SOCK_SEQPACKET datagram: an op byte, a
// file id (uint32), and for opOpen the file's descriptor (SCM_RIGHTS), for
// opWrite the offset about to be written at (uint64).
const (
	guardOpen  = 1
	guardWrite = 2
	guardClose = 3
	guardMsgLn = 13
)

func init() {
	if len(os.Args) == 2 && os.Args[1] == fileGuardArg && os.Getenv(fileGuardEnv) == "1" {
		os.Exit(runFileGuard(3))
	}
}

// fileGuard is the engine's side of the guard process.
type fileGuard struct {
	log  *slog.Logger
	mu   sync.Mutex // guards fd, next, failed
	fd   int
	next uint32
	// failed is set once the guard is unreachable; writes go on unguarded.
	failed bool
	cmd    *exec.Cmd
	// exited is closed when the guard process has ended.
	exited chan struct{}
}

// startFileGuard starts the guard process.
func startFileGuard(log *slog.Logger) (*fileGuard, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program to start the file guard: %w", err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating the file guard's socket: %w", err)
	}
	child := os.NewFile(uintptr(fds[1]), "file-guard")
	defer child.Close()
	cmd := exec.Command(exe, fileGuardArg)
	cmd.Env = []string{fileGuardEnv + "=1"}
	cmd.ExtraFiles = []*os.File{child}
	// It reports repairs on the engine's standard error, and holds it
	// open until it is done, so whoever waits for the engine's output
	// also waits for the repair.
	cmd.Stderr = os.Stderr
	// Its own process group: a Ctrl-C or a kill of the engine's group
	// must not take the guard down with the engine.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("starting the file guard: %w", err)
	}
	g := &fileGuard{log: log, fd: fds[0], cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(g.exited)
	}()
	return g, nil
}

// send delivers one message; a guard that is gone turns protection off
// rather than failing the capture.
func (g *fileGuard) send(op byte, id uint32, arg uint64, fd int) {
	var msg [guardMsgLn]byte
	msg[0] = op
	binary.LittleEndian.PutUint32(msg[1:], id)
	binary.LittleEndian.PutUint64(msg[5:], arg)
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failed {
		return
	}
	for {
		err := unix.Sendmsg(g.fd, msg[:], oob, nil, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			g.failed = true
			g.log.Error("the file guard is gone: a kill -9 may now leave a capture file cut mid-record", "err", err)
		}
		return
	}
}

// watch hands the guard a file whose first size bytes are whole, and
// returns its id.
func (g *fileGuard) watch(f *os.File, size int64) uint32 {
	g.mu.Lock()
	g.next++
	id := g.next
	g.mu.Unlock()
	g.send(guardOpen, id, uint64(size), int(f.Fd()))
	return id
}

// close ends the guard: it exits once it has read the end of the socket.
func (g *fileGuard) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fd >= 0 {
		unix.Close(g.fd)
		g.fd = -1
		g.failed = true
	}
}

// guardedFile is a capture file whose writes the guard knows of.
type guardedFile struct {
	f   *os.File
	g   *fileGuard // nil when there is no guard
	id  uint32
	off int64
}

func newGuardedFile(f *os.File, g *fileGuard, size int64) *guardedFile {
	gf := &guardedFile{f: f, g: g, off: size}
	if g != nil {
		gf.id = g.watch(f, size)
	}
	return gf
}

// Write tells the guard where the write starts, a record boundary, then writes.
func (gf *guardedFile) Write(p []byte) (int, error) {
	if gf.g != nil {
		gf.g.send(guardWrite, gf.id, uint64(gf.off), -1)
	}
	n, err := gf.f.Write(p)
	gf.off += int64(n)
	return n, err
}

// Truncate lets pcapfile cut a failed write back to a record boundary.
func (gf *guardedFile) Truncate(size int64) error {
	if err := gf.f.Truncate(size); err != nil {
		return err
	}
	gf.off = size
	return nil
}

// release tells the guard the file is complete.
func (gf *guardedFile) release() {
	if gf.g != nil {
		gf.g.send(guardClose, gf.id, 0, -1)
	}
}

// runFileGuard is the guard process: it follows the engine's files until
// the engine's end of the socket closes, then repairs the files still open.
func runFileGuard(sock int) int {
	// Only the end of the socket ends the guard: not the terminal's
	// signals, which the engine handles by stopping cleanly.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE, syscall.SIGQUIT)
	type watched struct {
		f        *os.File
		boundary int64
	}
	files := map[uint32]*watched{}
	buf := make([]byte, guardMsgLn)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			break
		}
		if n != guardMsgLn {
			continue
		}
		id := binary.LittleEndian.Uint32(buf[1:])
		arg := int64(binary.LittleEndian.Uint64(buf[5:]))
		switch buf[0] {
		case guardOpen:
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil || len(msgs) != 1 {
				continue
			}
			fds, err := unix.ParseUnixRights(&msgs[0])
			if err != nil || len(fds) != 1 {
				continue
			}
			files[id] = &watched{f: os.NewFile(uintptr(fds[0]), fmt.Sprintf("capture file %d", id)), boundary: arg}
		case guardWrite:
			if w := files[id]; w != nil {
				w.boundary = arg
			}
		case guardClose:
			if w := files[id]; w != nil {
				w.f.Close()
				delete(files, id)
			}
		}
	}
	status := 0
	for _, w := range files {
		removed, err := pcapfile.RepairFile(w.f, w.boundary)
		if err != nil {
			fmt.Fprintf(os.Stderr, "tripcap file guard: %v\n", err)
			status = 1
			continue
		}
		if removed > 0 {
			fmt.Fprintf(os.Stderr, "tripcap file guard: the capture stopped in the middle of a write; removed the %d-byte partial record at the end of %s\n",
				removed, fileName(w.f))
		}
		w.f.Close()
	}
	return status
}

// fileName is the path of an open file, for messages.
func fileName(f *os.File) string {
	if p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd())); err == nil {
		return p
	}
	return f.Name()
}
