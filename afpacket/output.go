//go:build linux

package afpacket

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/pcapfile"
)

// fileMode is the mode of capture files: they hold other people's traffic.
const fileMode = 0o640

// captureRoot opens the capture directory, creating it if needed. Every
// file a session touches is reached through the returned os.Root, so no
// path, however it was built, can leave the directory.
func captureRoot(dir string) (*os.Root, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating the capture directory %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the capture directory %s: %w", dir, err)
	}
	return root, nil
}

// localFileError marks a failure to create or write a file (not a refused
// path, which is the caller's error) as the session's LocalFileFailed.
func localFileError(err error) error {
	if err == nil || tripcap.ErrorCode(err) != tripcap.EINTERNAL {
		return err
	}
	return &tripcap.LocalFileError{Err: err}
}

// relCapturePath confines p to dir lexically and returns it relative to dir.
func relCapturePath(dir, p string) (string, error) {
	full, err := tripcap.ConfineCapturePath(dir, p)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(full, path.Clean(dir)+"/"), nil
}

// createConfined creates (or truncates) the file rel under root. Any
// symbolic link on the way is refused, even one that stays inside the
// directory: a capture path is a plain path. Missing directories are
// created. os.Root backs the checks: should a link appear between a check and
// the open, the open still cannot leave the capture directory.
func createConfined(root *os.Root, rel string) (*os.File, error) {
	parts := strings.Split(rel, "/")
	for i := 1; i < len(parts); i++ {
		dir := strings.Join(parts[:i], "/")
		fi, err := root.Lstat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := root.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("creating %s in the capture directory: %w", dir, err)
			}
			continue
		case err != nil:
			return nil, fmt.Errorf("checking %s in the capture directory: %w", dir, err)
		case fi.Mode()&fs.ModeSymlink != 0:
			return nil, tripcap.Errorf(tripcap.EINVALID, "%q: %s is a symbolic link; capture paths may not contain links", rel, dir)
		case !fi.IsDir():
			return nil, tripcap.Errorf(tripcap.EINVALID, "%q: %s is not a directory", rel, dir)
		}
	}
	fi, err := root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("checking %s in the capture directory: %w", rel, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, tripcap.Errorf(tripcap.EINVALID, "%q is a symbolic link; capture paths may not contain links", rel)
	case !fi.Mode().IsRegular():
		return nil, tripcap.Errorf(tripcap.EINVALID, "%q exists and is not a regular file", rel)
	}
	// Read-write: the file guard reads the file back to repair it.
	f, err := root.OpenFile(rel, os.O_RDWR|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes") {
			return nil, tripcap.Errorf(tripcap.EINVALID, "%q leaves the capture directory", rel)
		}
		return nil, fmt.Errorf("creating capture file %s: %w", rel, err)
	}
	return f, nil
}

// outputConfig says what files a session writes.
type outputConfig struct {
	dir     string // the capture directory
	first   string // the first file, relative to dir
	format  string
	ifaces  []pcapfile.Interface
	section pcapfile.Section
	bufSize int

	// continuous sessions write a ring of fileCount files of at most
	// fileSize bytes; others stop when the file would exceed totalBytes.
	continuous bool
	fileCount  int
	fileSize   int64
	totalBytes int64

	// guard, when set, repairs the open file should the process die.
	guard *fileGuard

	// stream, when set, takes the records instead of a file (see
	// SessionOptions.Stream); dir and first are then unused.
	stream io.Writer
}

// output writes a session's records to its file or ring of files. Its
// methods are called with the session's writer lock held, except files.
type output struct {
	cfg  outputConfig
	root *os.Root

	f           *os.File
	gf          *guardedFile
	w           pcapfile.Writer
	live        bool // w is open: its file, or the stream, takes records
	filePackets int
	seq         int
	// room is what the current file may still take in records (its
	// limit less what is written and the trailer); a record takes
	// recFixed bytes plus its data rounded up by recPad (a mask), so the
	// limit check costs no call per packet.
	room     int64
	recFixed int64
	recPad   int
	snap     int

	mu    sync.Mutex // guards files
	files []string   // relative to the capture directory, oldest first
}

// newOutput creates the first file and writes its header.
func newOutput(root *os.Root, cfg outputConfig) (*output, error) {
	o := &output{cfg: cfg, root: root}
	if err := o.open(cfg.first); err != nil {
		return nil, err
	}
	limit := cfg.totalBytes
	if cfg.continuous {
		limit = cfg.fileSize
	}
	// The limit must leave room for the header, the trailer and at least
	// one record, or the session could never write a packet.
	if need := o.w.Size() + o.w.TrailerSize() + o.w.RecordSize(0); limit < need {
		o.discard()
		field := "totalBytesPerSession"
		if cfg.continuous {
			field = "captureSettings.fileSizeInBytes"
		}
		return nil, tripcap.Errorf(tripcap.EINVALID, "%s: %d bytes cannot hold a %s file's header and a packet (%d bytes)", field, limit, cfg.format, need)
	}
	return o, nil
}

func (o *output) open(rel string) error {
	var f *os.File
	var gf *guardedFile
	var dst io.Writer = streamWriter{o.cfg.stream}
	if o.cfg.stream == nil {
		var err error
		if f, err = createConfined(o.root, rel); err != nil {
			return err
		}
		gf = newGuardedFile(f, o.cfg.guard, 0)
		dst = gf
	}
	var w pcapfile.Writer
	var err error
	if o.cfg.format == tripcap.FormatPcapng {
		w, err = pcapfile.NewNgWriter(dst, o.cfg.section, o.cfg.ifaces, o.cfg.bufSize)
	} else {
		w, err = pcapfile.NewPcapWriter(dst, o.cfg.ifaces[0].LinkType, o.cfg.ifaces[0].SnapLen, o.cfg.bufSize)
	}
	if err != nil {
		if f == nil {
			return fmt.Errorf("writing the capture's header to the stream: %w", err)
		}
		gf.release()
		f.Close()
		_ = o.root.Remove(rel) // a file without its header is no capture
		return fmt.Errorf("writing the header of %s: %w", rel, err)
	}
	o.f, o.gf, o.w, o.filePackets, o.live = f, gf, w, 0, true
	limit := o.cfg.totalBytes
	if o.cfg.continuous {
		limit = o.cfg.fileSize
	}
	o.room = limit - w.Size() - w.TrailerSize()
	o.recFixed = w.RecordSize(0)
	o.recPad = int(w.RecordSize(1) - o.recFixed - 1)
	o.snap = 0
	for _, ifc := range o.cfg.ifaces {
		o.snap = max(o.snap, int(ifc.SnapLen))
	}
	if f != nil {
		o.mu.Lock()
		o.files = append(o.files, rel)
		o.mu.Unlock()
	}
	return nil
}

// streamWriter hides everything but Write of a stream: the record buffer
// cuts a file back after a short write, and a stream that is an *os.File
// (standard output redirected to a file, perhaps appended to) must never
// be truncated.
type streamWriter struct{ w io.Writer }

func (s streamWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

// streamClosed reports whether a write failed because the stream's reader
// went away: a pipe or socket closed at the other end.
func streamClosed(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, syscall.ECONNRESET)
}

// where names the output for logs: the first file, or the stream.
func (o *output) where() string {
	if o.cfg.stream != nil {
		return "stream"
	}
	return path.Join(o.cfg.dir, o.cfg.first)
}

// nthName names the n-th file of a ring (n ≥ 1): capture.cap, capture_00001.cap, …
func nthName(first string, n int) string {
	ext := path.Ext(first)
	return fmt.Sprintf("%s_%05d%s", strings.TrimSuffix(first, ext), n, ext)
}

// write appends one record. It returns a stop reason when the session must
// end instead (the record is then not written), and an error when a file
// operation failed.
func (o *output) write(iface int, ts int64, origLen int, data []byte, stats func() []pcapfile.InterfaceStats) (string, error) {
	rec := o.recFixed + int64((min(len(data), o.snap)+o.recPad)&^o.recPad)
	if rec > o.room {
		if !o.cfg.continuous {
			return tripcap.StopTotalBytesExceeded, nil
		}
		if o.filePackets > 0 {
			if err := o.rotate(stats); err != nil {
				return "", err
			}
		}
		// A record larger than an empty file allows is cut to fit, so
		// no file ever exceeds fileSizeInBytes.
		if room := o.room - o.recFixed; int64(len(data)) > room {
			data = data[:max(room, 0)&^int64(o.recPad)]
		}
		rec = o.recFixed + int64((min(len(data), o.snap)+o.recPad)&^o.recPad)
	}
	if err := o.w.WritePacket(iface, ts, origLen, data); err != nil {
		return "", err
	}
	o.room -= rec
	o.filePackets++
	return "", nil
}

// pcapWriter is the current file's writer when it is a pcap file, for
// records written in place (see Session.writeBlockPcap); nil for pcapng.
func (o *output) pcapWriter() *pcapfile.PcapWriter {
	pw, _ := o.w.(*pcapfile.PcapWriter)
	return pw
}

// wrote accounts for packets records of n bytes in all, written in place
// within room.
func (o *output) wrote(n int64, packets int) {
	o.room -= n
	o.filePackets += packets
}

// rotate closes the current file of a ring and opens the next, removing the
// oldest when the ring is full.
func (o *output) rotate(stats func() []pcapfile.InterfaceStats) error {
	// No fsync here: it would stall the capture, and a killed process
	// loses nothing the page cache holds. The last file is synced at stop.
	if err := o.closeFile(stats(), false); err != nil {
		return err
	}
	o.seq++
	o.mu.Lock()
	var oldest string
	if len(o.files) >= o.cfg.fileCount {
		oldest = o.files[0]
		o.files = o.files[1:]
	}
	o.mu.Unlock()
	if oldest != "" {
		if err := o.root.Remove(oldest); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing the oldest file of the ring, %s: %w", oldest, err)
		}
	}
	return o.open(nthName(o.cfg.first, o.seq))
}

func (o *output) flush() error { return o.w.Flush() }

// closeFile writes the trailer, optionally syncs, and closes the current file.
func (o *output) closeFile(stats []pcapfile.InterfaceStats, sync bool) error {
	if !o.live {
		return nil
	}
	o.live = false
	err := o.w.Close(stats)
	if o.f == nil {
		return err // a stream: its owner closes it
	}
	if sync && err == nil {
		if serr := o.f.Sync(); serr != nil {
			err = fmt.Errorf("syncing capture file: %w", serr)
		}
	}
	o.gf.release()
	if cerr := o.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing capture file: %w", cerr)
	}
	o.f = nil
	return err
}

// discard closes and removes the first file of a session that did not start.
func (o *output) discard() {
	if o.f != nil {
		o.gf.release()
		o.f.Close()
		o.f = nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rel := range o.files {
		_ = o.root.Remove(rel)
	}
	o.files = nil
}

// paths lists the files written so far, oldest first, as absolute paths.
func (o *output) paths() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, len(o.files))
	for i, rel := range o.files {
		out[i] = path.Join(o.cfg.dir, rel)
	}
	return out
}

// ngWriter is the current file's writer when it is a pcapng file.
func (o *output) ngWriter() *pcapfile.NgWriter {
	nw, _ := o.w.(*pcapfile.NgWriter)
	return nw
}

// addInterface adds an interface to the current pcapng file and to those a
// ring opens next; it returns the interface's number.
func (o *output) addInterface(ifc pcapfile.Interface) (int, error) {
	nw := o.ngWriter()
	if nw == nil {
		return 0, fmt.Errorf("adding interface %s: a pcap file holds one interface", ifc.Name)
	}
	before := nw.Size() + nw.TrailerSize()
	id, err := nw.AddInterface(ifc)
	if err != nil {
		return 0, fmt.Errorf("adding interface %s to the file: %w", ifc.Name, err)
	}
	o.cfg.ifaces = append(o.cfg.ifaces, ifc)
	o.room -= nw.Size() + nw.TrailerSize() - before
	o.snap = max(o.snap, int(ifc.SnapLen))
	return id, nil
}

// endInterface records in the current pcapng file that an interface ended:
// a statistics block with its end time and the reason as a comment.
func (o *output) endInterface(id int, st pcapfile.InterfaceStats, why string) error {
	nw := o.ngWriter()
	if nw == nil {
		return nil
	}
	before := nw.Size()
	if err := nw.WriteStats(id, st, why); err != nil {
		return fmt.Errorf("recording the end of interface %d in the file: %w", id, err)
	}
	o.room -= nw.Size() - before
	return nil
}
