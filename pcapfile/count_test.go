package pcapfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCount counts the whole records of a file cut anywhere, and ignores
// the statistics blocks of a closed pcapng file.
func TestCount(t *testing.T) {
	dir := t.TempDir()
	for _, format := range []string{"pcap", "pcapng"} {
		var buf bytes.Buffer
		var w Writer
		var err error
		if format == "pcap" {
			w, err = NewPcapWriter(&buf, LinkTypeEthernet, 0, 0)
		} else {
			w, err = NewNgWriter(&buf, Section{Comment: "c"}, []Interface{{Name: "a", LinkType: LinkTypeEthernet}, {Name: "b", LinkType: LinkTypeRaw}}, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
		ends := []int{buf.Len()}
		sums := []uint64{0}
		for i := range 5 {
			if err := w.WritePacket(i%2, int64(i), 61+i, testPacket(61+i)); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			ends = append(ends, buf.Len())
			sums = append(sums, sums[i]+uint64(61+i))
		}
		if err := w.Close(nil); err != nil {
			t.Fatal(err)
		}
		full := buf.Bytes()
		p := filepath.Join(dir, format)
		for cut := ends[0]; cut <= len(full); cut++ {
			if err := os.WriteFile(p, full[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			packets, data, err := Count(p)
			if err != nil {
				t.Fatalf("%s cut at %d: %v", format, cut, err)
			}
			want := 0
			for i, e := range ends {
				if e <= cut {
					want = i
				}
			}
			if packets != uint64(want) || data != sums[want] {
				t.Fatalf("%s cut at %d: %d packets, %d bytes; want %d, %d", format, cut, packets, data, want, sums[want])
			}
		}
	}
	if _, _, err := Count(filepath.Join(dir, "missing")); err == nil {
		t.Error("counting a missing file gave no error")
	}
}

// FuzzCount: any file is counted without a panic, and never beyond what its
// size can hold.
func FuzzCount(f *testing.F) {
	var buf bytes.Buffer
	w, _ := NewNgWriter(&buf, Section{}, []Interface{{Name: "a", LinkType: LinkTypeEthernet}}, 0)
	_ = w.WritePacket(0, 1, 70, testPacket(60))
	_ = w.Close(nil)
	f.Add(buf.Bytes())
	buf.Reset()
	pw, _ := NewPcapWriter(&buf, LinkTypeEthernet, 0, 0)
	_ = pw.WritePacket(0, 1, 70, testPacket(60))
	_ = pw.Flush()
	f.Add(buf.Bytes())
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		packets, data, err := Count(p)
		if err != nil {
			return
		}
		if packets*pcapRecordHeaderLn > uint64(len(b)) || data > uint64(len(b)) {
			t.Fatalf("%d packets, %d bytes counted in a %d-byte file", packets, data, len(b))
		}
	})
}
