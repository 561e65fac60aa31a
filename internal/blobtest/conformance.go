package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// RandomBytes returns n reproducible pseudo-random bytes.
func RandomBytes(seed uint64, n int) []byte {
	r := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// SHA256 is the hex SHA-256 of b.
func SHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// onlyReader hides every method but Read, so that a store cannot learn the
// size or seek: Put must stream.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// BlobStore runs the conformance tests every tripcap.BlobStore passes:
// put/open round trips (small, empty, larger than one part), overwrite,
// seeking reads, not-found, delete, key confinement and cancellation. Keys
// live under a random directory, so that runs against one bucket do not
// interfere.
func BlobStore(t *testing.T, s tripcap.BlobStore) {
	dir := "conformance-" + randomString(4)
	ctx := Context(t, 60*time.Second)

	t.Run("PutOpen", func(t *testing.T) {
		key := dir + "/sub/a.cap"
		data := RandomBytes(1, 100_000)
		before := time.Now().Add(-time.Minute)
		info, err := s.Put(ctx, key, onlyReader{bytes.NewReader(data)})
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		if info.Key != key || info.Size != int64(len(data)) || info.SHA256 != SHA256(data) {
			t.Errorf("Put info = %+v, want key %s size %d sha256 %s", info, key, len(data), SHA256(data))
		}
		if info.ModTime.Before(before) || info.ModTime.After(time.Now().Add(time.Minute)) {
			t.Errorf("Put ModTime = %v, want about now", info.ModTime)
		}
		got, oinfo := readAll(t, ctx, s, key)
		if !bytes.Equal(got, data) {
			t.Errorf("Open read %d bytes, not what was put (%d bytes)", len(got), len(data))
		}
		if oinfo.Key != key || oinfo.Size != int64(len(data)) {
			t.Errorf("Open info = %+v, want key %s size %d", oinfo, key, len(data))
		}
		if u := s.URL(key); !strings.HasSuffix(u, "/sub/a.cap") || !strings.Contains(u, dir) {
			t.Errorf("URL(%q) = %q, want it to end with the key", key, u)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		key := dir + "/empty.cap"
		info, err := s.Put(ctx, key, onlyReader{bytes.NewReader(nil)})
		if err != nil {
			t.Fatalf("Put empty: %v", err)
		}
		if info.Size != 0 || info.SHA256 != SHA256(nil) {
			t.Errorf("Put empty info = %+v", info)
		}
		got, oinfo := readAll(t, ctx, s, key)
		if len(got) != 0 || oinfo.Size != 0 {
			t.Errorf("Open empty: read %d bytes, size %d", len(got), oinfo.Size)
		}
	})

	t.Run("Large", func(t *testing.T) {
		// Larger than one part or block of the cloud backends (8 MiB), from
		// a reader that neither seeks nor tells its size.
		key := dir + "/large.cap"
		data := RandomBytes(2, 19<<20+12345)
		info, err := s.Put(ctx, key, onlyReader{bytes.NewReader(data)})
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		if info.Size != int64(len(data)) || info.SHA256 != SHA256(data) {
			t.Errorf("Put info = %+v, want size %d sha256 %s", info, len(data), SHA256(data))
		}
		got, _ := readAll(t, ctx, s, key)
		if SHA256(got) != SHA256(data) {
			t.Errorf("read back %d bytes with SHA-256 %s, want %d with %s", len(got), SHA256(got), len(data), SHA256(data))
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		key := dir + "/over.cap"
		if _, err := s.Put(ctx, key, bytes.NewReader([]byte("first version, longer"))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, key, bytes.NewReader([]byte("second"))); err != nil {
			t.Fatal(err)
		}
		if got, _ := readAll(t, ctx, s, key); string(got) != "second" {
			t.Errorf("after overwrite read %q, want %q", got, "second")
		}
	})

	t.Run("Seek", func(t *testing.T) {
		key := dir + "/seek.cap"
		data := RandomBytes(3, 300_000)
		if _, err := s.Put(ctx, key, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		r, info, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		size := info.Size
		readAt := func(whence int, off int64, wantPos int64, n int) {
			t.Helper()
			pos, err := r.Seek(off, whence)
			if err != nil || pos != wantPos {
				t.Fatalf("Seek(%d, %d) = %d, %v; want %d", off, whence, pos, err, wantPos)
			}
			buf := make([]byte, n)
			if _, err := io.ReadFull(r, buf); err != nil {
				t.Fatalf("read %d bytes at %d: %v", n, pos, err)
			}
			if !bytes.Equal(buf, data[pos:pos+int64(n)]) {
				t.Fatalf("bytes at %d differ after Seek(%d, %d)", pos, off, whence)
			}
		}
		// Read a little first, so that a download is under way when seeking.
		readAt(io.SeekStart, 0, 0, 10)
		readAt(io.SeekStart, 200_000, 200_000, 1000)
		readAt(io.SeekCurrent, -500, 200_500, 100)
		readAt(io.SeekStart, 7, 7, 64<<10)
		readAt(io.SeekEnd, -24, size-24, 24)
		if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Errorf("Read at the end = %d, %v; want 0, EOF", n, err)
		}
		if pos, err := r.Seek(size, io.SeekStart); err != nil || pos != size {
			t.Errorf("Seek to the end = %d, %v", pos, err)
		}
		if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Errorf("Read after seeking to the end = %d, %v; want 0, EOF", n, err)
		}
		if _, err := r.Seek(-1, io.SeekStart); err == nil {
			t.Error("Seek to a negative position succeeded")
		}
		// A Range request's way: seek, then read to the end.
		readAt(io.SeekStart, 100, 100, 0)
		rest, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(rest, data[100:]) {
			t.Errorf("read from 100 to the end: %d bytes, %v", len(rest), err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		r, _, err := s.Open(ctx, dir+"/absent.cap")
		if err == nil {
			r.Close()
		}
		if tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
			t.Errorf("Open absent = %v, want ENOTFOUND", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		key := dir + "/del.cap"
		if _, err := s.Put(ctx, key, bytes.NewReader([]byte("x"))); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, _, err := s.Open(ctx, key); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
			t.Errorf("Open after Delete = %v, want ENOTFOUND", err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("Delete of an absent object = %v, want nil", err)
		}
	})

	t.Run("KeyConfinement", func(t *testing.T) {
		for _, key := range []string{"", "/abs.cap", "../escape.cap", dir + "/../../escape.cap", "a//b.cap", "./a.cap", "a/./b.cap", "a\\b.cap", dir + "/"} {
			if _, err := s.Put(ctx, key, bytes.NewReader([]byte("x"))); tripcap.ErrorCode(err) != tripcap.EINVALID {
				t.Errorf("Put(%q) = %v, want EINVALID", key, err)
			}
			if r, _, err := s.Open(ctx, key); tripcap.ErrorCode(err) != tripcap.EINVALID {
				if err == nil {
					r.Close()
				}
				t.Errorf("Open(%q) = %v, want EINVALID", key, err)
			}
			if err := s.Delete(ctx, key); tripcap.ErrorCode(err) != tripcap.EINVALID {
				t.Errorf("Delete(%q) = %v, want EINVALID", key, err)
			}
		}
	})

	t.Run("Cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.Put(cctx, dir+"/cancelled.cap", bytes.NewReader(RandomBytes(4, 1<<20)))
		if err == nil {
			t.Fatal("Put with a cancelled context succeeded")
		}
		if !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "context canceled") {
			t.Errorf("Put with a cancelled context = %v, want context.Canceled", err)
		}
	})
}

func readAll(t *testing.T, ctx context.Context, s tripcap.BlobStore, key string) ([]byte, tripcap.ObjectInfo) {
	t.Helper()
	r, info, err := s.Open(ctx, key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b, info
}
