//go:build linux

package afpacket

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/netns"
)

// TestPathConfinement refuses capture paths that leave the capture
// directory or go through a symbolic link, and creates missing directories.
func TestPathConfinement(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	e, dir := newTestEngine(t, Config{})
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("in", filepath.Join(dir, "inlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "x.cap"), filepath.Join(dir, "file.cap")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"dotdot", filepath.Join(dir, "../escape.cap"), "not under the capture directory"},
		{"relative dotdot", "../../escape.cap", "not under the capture directory"},
		{"absolute elsewhere", filepath.Join(outside, "x.cap"), "not under the capture directory"},
		{"dir symlink out", filepath.Join(dir, "out/x.cap"), "symbolic link"},
		{"dir symlink in", filepath.Join(dir, "inlink/x.cap"), "symbolic link"},
		{"file symlink", filepath.Join(dir, "file.cap"), "symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := spec(dir, "x.cap", tripcap.PacketCaptureParameters{})
			sp.Path = tc.path
			_, err := startInErr(n.b, e, sp, SessionOptions{})
			if err == nil || !strings.Contains(tripcap.ErrorMessage(err), tc.want) {
				t.Fatalf("Start(%q) = %v, want an error saying %q", tc.path, err, tc.want)
			}
			if tripcap.ErrorCode(err) != tripcap.EINVALID {
				t.Errorf("code %q, want invalid", tripcap.ErrorCode(err))
			}
		})
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files were created outside the capture directory: %v", entries)
	}
	// A plain path with new directories is fine.
	sp := spec(dir, "a/b/ok.cap", tripcap.PacketCaptureParameters{})
	s := startIn(t, n.b, e, sp, SessionOptions{})
	res := stopAndWait(t, s, tripcap.StopManuallyStopped)
	if res.Files[0] != filepath.Join(dir, "a/b/ok.cap") {
		t.Errorf("file %s", res.Files[0])
	}
	if _, err := os.Stat(res.Files[0]); err != nil {
		t.Error(err)
	}
}

// TestNeedsCapNetRaw starts a capture on a thread without CAP_NET_RAW and
// gets the error a user can act on.
func TestNeedsCapNetRaw(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	e, dir := newTestEngine(t, Config{})
	err := n.b.Do(func() error {
		// Capabilities are per thread: drop CAP_NET_RAW from this
		// one, which Do never returns to the runtime.
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return err
		}
		data[0].Effective &^= 1 << unix.CAP_NET_RAW
		data[0].Permitted &^= 1 << unix.CAP_NET_RAW
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			return err
		}
		_, err := e.StartSession(context.Background(), spec(dir, "nocap.cap", tripcap.PacketCaptureParameters{}), SessionOptions{})
		if err == nil {
			t.Error("the capture started without CAP_NET_RAW")
			return nil
		}
		msg := tripcap.ErrorMessage(err)
		if !strings.HasPrefix(msg, "capturing needs root or CAP_NET_RAW (") {
			t.Errorf("error %q does not tell the user what is needed", msg)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nocap.cap")); !os.IsNotExist(err) {
		t.Errorf("a failed start left its file behind: %v", err)
	}
}

// TestStartErrors reports bad parameters before capturing.
func TestStartErrors(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	e, dir := newTestEngine(t, Config{})
	for _, tc := range []struct {
		name string
		p    tripcap.PacketCaptureParameters
		want string
	}{
		{"no such interface", tripcap.PacketCaptureParameters{Interfaces: []string{"nope0"}}, `interface "nope0": no such interface`},
		{"format", tripcap.PacketCaptureParameters{Format: "erf"}, "format"},
		{"tiny total", tripcap.PacketCaptureParameters{TotalBytesPerSession: 30}, "totalBytesPerSession"},
		{"bad filter", tripcap.PacketCaptureParameters{Filters: []tripcap.PacketCaptureFilter{{Protocol: "SCTP"}}}, "protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := startInErr(n.b, e, spec(dir, "bad.cap", tc.p), SessionOptions{})
			if err == nil || !strings.Contains(tripcap.ErrorMessage(err), tc.want) {
				t.Errorf("Start = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed starts left %v", entries)
	}
}

// TestMetadata stores the host's network state beside the capture.
func TestMetadata(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	e, dir := newTestEngine(t, Config{})
	s := startIn(t, n.b, e, spec(dir, "meta.cap", tripcap.PacketCaptureParameters{IncludeMetadata: true}), SessionOptions{})
	time.Sleep(50 * time.Millisecond)
	res := stopAndWait(t, s, tripcap.StopManuallyStopped)
	if len(res.Files) != 2 || res.Files[1] != filepath.Join(dir, "meta.metadata.json") {
		t.Fatalf("files %v, want the capture and meta.metadata.json", res.Files)
	}
	if got := s.Files(); len(got) != 2 {
		t.Errorf("Files() = %v after the end", got)
	}
	b, err := os.ReadFile(res.Files[1])
	if err != nil {
		t.Fatal(err)
	}
	var md HostMetadata
	if err := json.Unmarshal(b, &md); err != nil {
		t.Fatal(err)
	}
	names := map[string]MetadataSection{}
	for _, sec := range md.Sections {
		names[sec.Name] = sec
	}
	for _, want := range []string{"addresses", "routes", "neighbours", "iptables", "nftables", "sockets", "sockstat"} {
		if _, ok := names[want]; !ok {
			t.Errorf("no %s section", want)
		}
	}
	if sec := names["sockstat"]; sec.Error != "" || !strings.Contains(sec.Output, "TCP:") {
		t.Errorf("sockstat section %+v", sec)
	}
	if sec := names["addresses"]; sec.Error == "" && !strings.Contains(sec.Output, "ifname") {
		t.Errorf("addresses section %+v", sec)
	}
	if len(md.Interfaces) == 0 || md.CollectedAt.IsZero() {
		t.Errorf("metadata %+v", md)
	}
}
