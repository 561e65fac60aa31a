//go:build linux

package afpacket

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tripcap/tripcap/pcapfile"
)

// TestFileGuardRepairs plays an engine that dies in the middle of a write:
// the guard process cuts the file back to its last whole record, and leaves
// alone a file that was released and one that ends at a record boundary.
func TestFileGuardRepairs(t *testing.T) {
	// Offsets go through the shared memory, or, when the guard has no
	// slot left (or no shared memory), through messages.
	for _, mode := range []string{"shared", "messages"} {
		t.Run(mode, func(t *testing.T) { testFileGuardRepairs(t, mode == "messages") })
	}
}

func testFileGuardRepairs(t *testing.T, messages bool) {
	g, err := startFileGuard(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if g.slots == nil {
		t.Fatal("the file guard has no shared memory")
	}
	if messages {
		g.mu.Lock()
		g.free = nil
		g.mu.Unlock()
	}
	dir := t.TempDir()
	open := func(name string) (*os.File, *guardedFile, pcapfile.Writer) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		gf := newGuardedFile(f, g, 0)
		if (gf.boundary == nil) != messages {
			t.Fatalf("shared slot %v, want messages %v", gf.boundary != nil, messages)
		}
		w, err := pcapfile.NewPcapWriter(gf, pcapfile.LinkTypeEthernet, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			if err := w.WritePacket(0, int64(i), 100, make([]byte, 100)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return f, gf, w
	}
	whole := int64(24 + 10*116)

	// cut.cap: a second flush announced, then only part of it written.
	cut, cutGF, _ := open("cut.cap")
	cutGF.announce(whole)
	// Spoil an earlier, already flushed record's length: only a guard that
	// starts from the announced offset (slot or message), instead of
	// scanning from the file's start, ends after the cut's whole record.
	if _, err := cut.WriteAt([]byte{0xff, 0xff, 0xff, 0xff}, 24+5*116+8); err != nil {
		t.Fatal(err)
	}
	if _, err := cut.WriteAt(append(make([]byte, 116), make([]byte, 50)...), whole); err != nil {
		t.Fatal(err)
	}
	// The first of the two records was written in full before the cut,
	// the second's header and 34 of its 100 bytes.
	hdr := []byte{0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 100, 0, 0, 0}
	for _, off := range []int64{whole, whole + 116} {
		if _, err := cut.WriteAt(hdr, off); err != nil {
			t.Fatal(err)
		}
	}
	// clean.cap: whole records only.
	open("clean.cap")
	// released.cap: closed properly, then appended to by someone else.
	rel, relGF, relW := open("released.cap")
	if err := relW.Close(nil); err != nil {
		t.Fatal(err)
	}
	relGF.release()
	if _, err := rel.WriteAt([]byte("junk"), whole); err != nil {
		t.Fatal(err)
	}

	g.close() // the engine dies
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the guard did not exit")
	}
	for name, want := range map[string]int64{"cut.cap": whole + 116, "clean.cap": whole, "released.cap": whole + 4} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != want {
			t.Errorf("%s is %d bytes after the guard, want %d", name, st.Size(), want)
		}
	}
}
