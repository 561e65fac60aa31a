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
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

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
// Telling the guard about every write by a message would cost a system
// call and a wake-up of the guard per write: on the capture benchmark, a
// tenth to a fifth of the engine's CPU. So the offsets go through memory shared
// with the guard instead (a memfd mapped by both): one slot per open file,
// which the engine stores the offset in before each write and the guard
// reads only once the engine is gone. Messages carry the rest (files opened
// and closed), and the offsets too should the shared memory be unavailable.
//
// The guard is started with fileGuardArg as its only argument and
// fileGuardEnv set; init below turns such a process into the guard before
// main runs, in any binary that links this package.
const (
	fileGuardArg = "tripcap-afpacket-file-guard"
	fileGuardEnv = "TRIPCAP_AFPACKET_FILE_GUARD"
)

// Guard protocol messages, one per SOCK_SEQPACKET datagram: an op byte, a
// file id (uint32), and for guardOpen the file's descriptor (SCM_RIGHTS)
// and first boundary, for guardOpenSlot the file's descriptor and its slot
// (which holds its boundary), for guardWrite the offset about to be written
// at (uint64).
const (
	guardOpen     = 1
	guardWrite    = 2
	guardClose    = 3
	guardOpenSlot = 4
	guardMsgLn    = 13
)

// guardSlots is the number of files with a shared-memory slot open at
// once; beyond it, files are guarded by messages.
const guardSlots = 4096

// The guard's descriptors: its socket and the shared slots.
const (
	guardSockFD  = 3
	guardSlotsFD = 4
)

func init() {
	if len(os.Args) == 2 && os.Args[1] == fileGuardArg && os.Getenv(fileGuardEnv) == "1" {
		os.Exit(runFileGuard(guardSockFD, guardSlotsFD))
	}
}

// fileGuard is the engine's side of the guard process.
type fileGuard struct {
	log  *slog.Logger
	mu   sync.Mutex // guards fd, next, failed, free
	fd   int
	next uint32
	// slots is the memory shared with the guard, nil if there is none;
	// free lists the slots not in use.
	slots []byte
	free  []int
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
	slotsFile, slots := sharedSlots()
	if slotsFile != nil {
		defer slotsFile.Close()
	} else {
		log.Debug("the file guard has no shared memory: it is told of every write by a message")
	}
	cmd := exec.Command(exe, fileGuardArg)
	cmd.Env = []string{fileGuardEnv + "=1"}
	cmd.ExtraFiles = []*os.File{child}
	if slotsFile != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, slotsFile)
	}
	// It reports repairs on the engine's standard error, and holds it
	// open until it is done, so whoever waits for the engine's output
	// also waits for the repair.
	cmd.Stderr = os.Stderr
	// Its own process group: a Ctrl-C or a kill of the engine's group
	// must not take the guard down with the engine.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		unix.Close(fds[0])
		if slots != nil {
			_ = unix.Munmap(slots)
		}
		return nil, fmt.Errorf("starting the file guard: %w", err)
	}
	g := &fileGuard{log: log, fd: fds[0], cmd: cmd, exited: make(chan struct{}), slots: slots}
	if slots != nil {
		g.free = make([]int, 0, guardSlots)
		for i := guardSlots - 1; i >= 0; i-- {
			g.free = append(g.free, i)
		}
	}
	go func() {
		_ = cmd.Wait()
		close(g.exited)
	}()
	return g, nil
}

// sharedSlots creates the memory shared with the guard: a memfd, mapped.
// Without it (nil), the guard is told of writes by messages.
func sharedSlots() (*os.File, []byte) {
	fd, err := unix.MemfdCreate("tripcap-file-guard", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, nil
	}
	f := os.NewFile(uintptr(fd), "file-guard-slots")
	if err := unix.Ftruncate(fd, guardSlots*8); err != nil {
		f.Close()
		return nil, nil
	}
	mem, err := unix.Mmap(fd, 0, guardSlots*8, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, nil
	}
	return f, mem
}

// slotWord returns slot i of the shared memory: the boundary of a file.
func slotWord(slots []byte, i int) *atomic.Int64 {
	return (*atomic.Int64)(unsafe.Pointer(&slots[i*8]))
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
// returns its id and its shared boundary slot (nil when it has none: its
// writes are then announced by messages).
func (g *fileGuard) watch(f *os.File, size int64) (uint32, int, *atomic.Int64) {
	g.mu.Lock()
	g.next++
	id := g.next
	slot := -1
	if n := len(g.free); n > 0 && !g.failed {
		slot = g.free[n-1]
		g.free = g.free[:n-1]
	}
	g.mu.Unlock()
	if slot < 0 {
		g.send(guardOpen, id, uint64(size), int(f.Fd()))
		return id, -1, nil
	}
	w := slotWord(g.slots, slot)
	w.Store(size)
	g.send(guardOpenSlot, id, uint64(slot), int(f.Fd()))
	return id, slot, w
}

// unwatch tells the guard a file is complete and frees its slot. The guard
// reads the close before any later open that reuses the slot.
func (g *fileGuard) unwatch(id uint32, slot int) {
	g.send(guardClose, id, 0, -1)
	if slot >= 0 {
		g.mu.Lock()
		g.free = append(g.free, slot)
		g.mu.Unlock()
	}
}

// close ends the guard: it exits once it has read the end of the socket.
// close waits for that a moment, so that the guard's work is the engine's
// (a parent's accounting of its child's resources includes it).
func (g *fileGuard) close() {
	g.mu.Lock()
	if g.fd >= 0 {
		unix.Close(g.fd)
		g.fd = -1
		g.failed = true
	}
	g.mu.Unlock()
	select {
	case <-g.exited:
	case <-time.After(time.Second):
	}
	// The shared slots stay mapped (32 KiB, one engine a process): a
	// guarded file closed late may still store its offset there.
}

// guardedFile is a capture file whose writes the guard knows of.
type guardedFile struct {
	f   *os.File
	g   *fileGuard // nil when there is no guard
	id  uint32
	off int64
	// boundary is the file's shared slot (nil: writes are announced by
	// messages), slot its number.
	boundary *atomic.Int64
	slot     int
}

func newGuardedFile(f *os.File, g *fileGuard, size int64) *guardedFile {
	gf := &guardedFile{f: f, g: g, off: size, slot: -1}
	if g != nil {
		gf.id, gf.slot, gf.boundary = g.watch(f, size)
	}
	return gf
}

// announce tells the guard that a write starts at off, a record boundary.
func (gf *guardedFile) announce(off int64) {
	switch {
	case gf.boundary != nil:
		// An atomic store: it reaches memory before the write(2).
		gf.boundary.Store(off)
	case gf.g != nil:
		gf.g.send(guardWrite, gf.id, uint64(off), -1)
	}
}

// Write tells the guard where the write starts, a record boundary, then writes.
func (gf *guardedFile) Write(p []byte) (int, error) {
	gf.announce(gf.off)
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
		gf.g.unwatch(gf.id, gf.slot)
		gf.g, gf.boundary, gf.slot = nil, nil, -1
	}
}

// runFileGuard is the guard process: it follows the engine's files until
// the engine's end of the socket closes, then repairs the files still open.
func runFileGuard(sock, slotsFD int) int {
	// Only the end of the socket ends the guard: not the terminal's
	// signals, which the engine handles by stopping cleanly.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE, syscall.SIGQUIT)
	// The shared slots, when the engine passed them.
	slots, err := unix.Mmap(slotsFD, 0, guardSlots*8, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		slots = nil
	}
	type watched struct {
		f        *os.File
		boundary int64
		slot     int // -1: boundary is told by messages
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
		case guardOpen, guardOpenSlot:
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil || len(msgs) != 1 {
				continue
			}
			fds, err := unix.ParseUnixRights(&msgs[0])
			if err != nil || len(fds) != 1 {
				continue
			}
			w := &watched{f: os.NewFile(uintptr(fds[0]), fmt.Sprintf("capture file %d", id)), boundary: arg, slot: -1}
			if buf[0] == guardOpenSlot {
				// Without the slots (never expected), the whole
				// file is scanned: slower, as sound.
				w.boundary = 0
				if slots != nil && arg >= 0 && arg < guardSlots {
					w.slot = int(arg)
				}
			}
			files[id] = w
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
		if w.slot >= 0 {
			w.boundary = slotWord(slots, w.slot).Load()
		}
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
