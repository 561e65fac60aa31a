// Package filestore keeps capture files in a directory: the embedded default
// storage account (file://DIR).
package filestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tripcap/tripcap"
)

// Store is a tripcap.BlobStore on the local file system.
type Store struct {
	root *os.Root
	dir  string
}

var _ tripcap.BlobStore = (*Store)(nil)

// Open returns a store rooted at dir, creating it if needed. Keys cannot
// escape dir: os.Root refuses "..", absolute paths and symlinks leading out.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("file storage %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("create file storage %s: %w", abs, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("open file storage %s: %w", abs, err)
	}
	return &Store{root: root, dir: abs}, nil
}

// Close releases the directory.
func (s *Store) Close() error { return s.root.Close() }

// Put writes to a temporary file, syncs it, then renames it into place, so a
// reader never sees a partial object and a crash leaves none behind.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (tripcap.ObjectInfo, error) {
	if err := tripcap.CheckStorageKey(key); err != nil {
		return tripcap.ObjectInfo{}, err
	}
	if dir := filepath.Dir(key); dir != "." {
		if err := s.root.MkdirAll(dir, 0o750); err != nil {
			return tripcap.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
		}
	}
	tmp := key + ".partial"
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return tripcap.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), contextReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.root.Rename(tmp, key)
	}
	if err != nil {
		_ = s.root.Remove(tmp)
		return tripcap.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	st, err := s.root.Stat(key)
	if err != nil {
		return tripcap.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	return tripcap.ObjectInfo{Key: key, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), ModTime: st.ModTime()}, nil
}

// Open opens the object for reading. The SHA-256 is not recomputed here: the
// capture records it at upload.
func (s *Store) Open(ctx context.Context, key string) (io.ReadSeekCloser, tripcap.ObjectInfo, error) {
	if err := tripcap.CheckStorageKey(key); err != nil {
		return nil, tripcap.ObjectInfo{}, err
	}
	f, err := s.root.Open(key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, tripcap.ObjectInfo{}, tripcap.Errorf(tripcap.ENOTFOUND, "no stored file %q", key)
	} else if err != nil {
		return nil, tripcap.ObjectInfo{}, fmt.Errorf("open %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, tripcap.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	return f, tripcap.ObjectInfo{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Delete removes the object.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := tripcap.CheckStorageKey(key); err != nil {
		return err
	}
	if err := s.root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// URL is the object's file:// address.
func (s *Store) URL(key string) string {
	return "file://" + filepath.Join(s.dir, filepath.FromSlash(key))
}

// contextReader stops a long copy when the request is cancelled.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
