package tripcap

import (
	"context"
	"io"
	"strings"
	"time"
)

// ObjectInfo describes a stored capture file.
type ObjectInfo struct {
	Key     string
	Size    int64
	SHA256  string
	ModTime time.Time
}

// BlobStore is a storage account: where capture files go (file, S3, Azure Blob).
type BlobStore interface {
	// Put stores r under key and returns once the object is durable. The
	// returned info carries the SHA-256 of what was stored.
	Put(ctx context.Context, key string, r io.Reader) (ObjectInfo, error)
	// Open returns a reader over the object, seekable for Range requests. ENOTFOUND when absent.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, ObjectInfo, error)
	// Delete removes the object; deleting an absent object is not an error.
	Delete(ctx context.Context, key string) error
	// URL is the object's address as users see it (the capture's storagePath).
	URL(key string) string
}

// CheckStorageKey applies the key rules every backend shares, so that a key
// names the same object everywhere and never steps out of a store's
// directory, bucket prefix or container: a relative path with '/' separators
// and no empty, '.' or '..' segment, and no backslash.
func CheckStorageKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
		return Errorf(EINVALID, "storage key %q is not a relative path", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." {
			return Errorf(EINVALID, "storage key %q has an empty, '.' or '..' component", key)
		}
	}
	return nil
}
