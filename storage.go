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

// StoredFile is one file of a capture as the file index lists it. It
// outlives the capture record: a capture deleted or replaced (a responder's
// nameConflict replace) keeps its files listable and downloadable until a
// user or the retention policy deletes them.
type StoredFile struct {
	// ID addresses the file on its own (GET /api/v1/files/{id}).
	ID          string `json:"id"`
	CaptureID   string `json:"captureId"`
	CaptureName string `json:"captureName"`
	WatcherID   string `json:"watcherId"`
	HostID      string `json:"hostId"`
	// HostName is filled in by the server for the reader ("" when the
	// host is gone).
	HostName string `json:"hostName,omitempty"`
	AlertID  string `json:"alertId,omitempty"`
	// CaptureDeleted says the capture record was deleted (or replaced).
	CaptureDeleted bool `json:"captureDeleted"`
	CaptureFile
}

// FileFilter selects stored files. Files whose stored copy was deleted are
// left out unless IncludeDeleted is set; captures deleted or replaced are
// always included.
type FileFilter struct {
	ID          *string
	CaptureID   *string
	HostID      *string
	CaptureName *string
	AlertID     *string
	// Since and Until bound the file's CreatedAt: Since <= CreatedAt < Until.
	Since, Until *time.Time
	// StoredOnly keeps files whose copy is in storage now.
	StoredOnly     bool
	IncludeDeleted bool
	Cursor         string // list after this id
	Limit          int    // 0 means no limit
}

// FileStore is the file index: the store writes it in the transaction that
// writes a capture's file records, so it never disagrees with them.
type FileStore interface {
	// FindFiles lists files ordered by id (ids sort by first sight, to the
	// millisecond), and the cursor of the next page.
	FindFiles(ctx context.Context, f FileFilter) ([]*StoredFile, string, error)
}
