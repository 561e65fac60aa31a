//go:build linux

package afpacket

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/blobtest"
	"github.com/tripcap/tripcap/internal/netns"
)

// TestStartOnFullDisk: a capture directory already full when a session
// starts is a LocalFileError with the kernel's reason, which the agent
// reports as LocalFileFailed, not an internal CaptureFailed.
func TestStartOnFullDisk(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	dir := blobtest.SmallDisk(t, 64<<10)
	fill, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for i := 0; i < 64; i++ {
		if _, err = fill.Write(buf); err != nil {
			break
		}
	}
	fill.Close()
	if err == nil {
		t.Fatal("the 64 KiB tmpfs never filled")
	}
	e, _ := newTestEngine(t, Config{CaptureDir: dir})
	for _, format := range []string{tripcap.FormatPcap, tripcap.FormatPcapng} {
		_, err := startInErr(n.b, e, spec(dir, "full."+format, tripcap.PacketCaptureParameters{Format: format}), SessionOptions{})
		var lfe *tripcap.LocalFileError
		if !errors.As(err, &lfe) {
			t.Fatalf("%s: starting on a full disk: %v (%T), want a LocalFileError", format, err, err)
		}
		if !strings.Contains(err.Error(), "no space left on device") {
			t.Errorf("%s: error %q does not give the reason", format, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "full."+format)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the failed session left its file behind (%v)", format, err)
		}
	}
}
