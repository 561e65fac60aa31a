package tripcap

import (
	"context"
	"io"
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
