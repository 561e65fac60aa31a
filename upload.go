package tripcap

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"
)

// Direct uploads: agents never hold storage credentials. For each file the
// server asks its storage backend for an UploadTarget (presigned S3 part URLs
// or an Azure SAS URL) valid for a short time and hands it to the agent, which
// sends the file in parts with plain HTTP (capturefile.Uploader) and then tells the
// server it is done. The server then commits the parts (it lists them itself,
// so the agent reports nothing but "done") and checks the stored bytes'
// SHA-256 against the one the agent recorded. The protocol is described in
// docs/storage.md.

// Upload target kinds.
const (
	// UploadServer: PUT the file to the tripcap server's own upload endpoint
	// (the file storage backend).
	UploadServer = "server"
	// UploadS3Multipart: PUT part n (1-based) to PartURLs[n-1], presigned
	// for an S3 multipart upload.
	UploadS3Multipart = "s3-multipart"
	// UploadAzureBlocks: Put Block for each part to URL (a blob SAS URL)
	// with the block id BlockID(n); the server commits the block list.
	UploadAzureBlocks = "azure-blocks"
)

// UploadTarget tells an agent where to send one file without storage
// credentials. An agent keeps it beside the spooled file, so that after a
// restart it can ask the server to resume with UploadID.
type UploadTarget struct {
	Kind string `json:"kind"`
	// ExpiresAt is when the URLs stop working; past it the agent asks the
	// server for a fresh target, resuming with UploadID.
	ExpiresAt time.Time `json:"expiresAt"`
	// Size is the number of bytes to send: the file's size at PrepareUpload.
	Size int64 `json:"size"`
	// PartSize is the number of bytes per part/block; only the last part is
	// shorter.
	PartSize int64 `json:"partSize"`
	// URL is the Azure blob's SAS URL, or the server's upload endpoint.
	URL string `json:"url,omitempty"`
	// PartURLs holds one presigned PUT URL per S3 part, part n at index n-1.
	PartURLs []string `json:"partUrls,omitempty"`
	// UploadID is the S3 multipart upload id, or for Azure the prefix of this
	// upload's block ids (so that blocks staged by an older, abandoned upload
	// of the same blob are never mistaken for this one's).
	UploadID string `json:"uploadId,omitempty"`
	// DoneParts are the 1-based numbers of parts the storage already holds,
	// in full, when resuming: the agent does not send them again.
	DoneParts []int `json:"doneParts,omitempty"`
}

// Parts is the number of parts the file is sent in. S3 needs at least one
// part even for an empty file; Azure commits an empty block list instead.
func (t *UploadTarget) Parts() int {
	if t.PartSize <= 0 || t.Size < 0 {
		return 0
	}
	n := int((t.Size + t.PartSize - 1) / t.PartSize)
	if n == 0 && t.Kind == UploadS3Multipart {
		n = 1
	}
	return n
}

// PartRange returns the offset and length in the file of part n (1-based).
func (t *UploadTarget) PartRange(n int) (offset, length int64) {
	offset = int64(n-1) * t.PartSize
	length = min(t.PartSize, t.Size-offset)
	return offset, max(length, 0)
}

// BlockID is the Azure block id of part n: base64 of the upload id and the
// zero-padded part number, so that all ids of a blob have the same length, as
// Azure requires, and sort in part order.
func (t *UploadTarget) BlockID(n int) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s-%06d", t.UploadID, n))
}

// IsDone reports whether part n is among DoneParts.
func (t *UploadTarget) IsDone(n int) bool {
	for _, d := range t.DoneParts {
		if d == n {
			return true
		}
	}
	return false
}

// Validate checks a target received from the server before any byte is sent.
func (t *UploadTarget) Validate() error {
	switch t.Kind {
	case UploadS3Multipart:
		if t.UploadID == "" {
			return Errorf(EINVALID, "upload target: uploadId is required for %s", t.Kind)
		}
		if len(t.PartURLs) != t.Parts() {
			return Errorf(EINVALID, "upload target: partUrls has %d URLs for %d parts", len(t.PartURLs), t.Parts())
		}
	case UploadAzureBlocks:
		if t.URL == "" {
			return Errorf(EINVALID, "upload target: url is required for %s", t.Kind)
		}
		if t.UploadID == "" {
			return Errorf(EINVALID, "upload target: uploadId is required for %s", t.Kind)
		}
	case UploadServer:
		if t.URL == "" {
			return Errorf(EINVALID, "upload target: url is required for %s", t.Kind)
		}
	default:
		return Errorf(EINVALID, "upload target: unknown kind %q", t.Kind)
	}
	if t.Size < 0 {
		return Errorf(EINVALID, "upload target: size %d is negative", t.Size)
	}
	if t.Kind != UploadServer && t.PartSize <= 0 {
		return Errorf(EINVALID, "upload target: partSize %d must be positive", t.PartSize)
	}
	return nil
}

// DirectUploads is implemented by storage backends that agents can write to
// directly.
type DirectUploads interface {
	// PrepareUpload starts an upload of size bytes to key and returns
	// presigned targets valid for ttl. With resumeID (a previous target's
	// UploadID) it resumes that upload instead: DoneParts lists the parts
	// the storage already holds. When the old upload is gone (aborted,
	// expired, already committed) it starts a new one: the agent must use
	// the returned target as a whole.
	PrepareUpload(ctx context.Context, key string, size int64, resumeID string, ttl time.Duration) (*UploadTarget, error)
	// CompleteUpload commits the parts the agent sent, listing them on the
	// storage itself, then reads the stored object back and returns its
	// info with the SHA-256 recomputed from the stored bytes. When sha256 is
	// set and differs, the object is deleted and the error is EPRECONDITION;
	// a missing or short part is EPRECONDITION too, naming the part.
	// Completing an already committed upload again returns the same info.
	CompleteUpload(ctx context.Context, key string, t *UploadTarget, sha256 string) (ObjectInfo, error)
	// AbortUpload discards an unfinished upload and the parts sent so far.
	AbortUpload(ctx context.Context, key string, t *UploadTarget) error
}

// PartLimits are a backend's multipart limits, for PartSize.
type PartLimits struct {
	Backend  string // named in the error ("S3", "Azure Blob")
	MinPart  int64  // smallest part but the last
	MaxParts int64
	MaxPart  int64
}

// PartSize is the part size for a file of size bytes: preferred (at least
// MinPart), or larger, rounded up to a whole MiB, when MaxParts of it would
// not hold the file; EINVALID beyond the backend's largest object.
func PartSize(size, preferred int64, l PartLimits) (int64, error) {
	ps := max(preferred, l.MinPart, 1)
	if size > ps*l.MaxParts {
		ps = ((size+l.MaxParts-1)/l.MaxParts + (1<<20 - 1)) &^ (1<<20 - 1)
	}
	if ps > l.MaxPart {
		return 0, Errorf(EINVALID, "size %d is beyond %s's largest object", size, l.Backend)
	}
	return ps, nil
}

// CheckUploadRequest checks what a BlobStore's PrepareUpload is given: the
// key, a size that is not negative, and a ttl from a second to maxTTL.
func CheckUploadRequest(key string, size int64, ttl, maxTTL time.Duration) error {
	if err := CheckStorageKey(key); err != nil {
		return err
	}
	if size < 0 {
		return Errorf(EINVALID, "upload size %d is negative", size)
	}
	if ttl < time.Second || ttl > maxTTL {
		return Errorf(EINVALID, "upload ttl %s must be between 1s and %s", ttl, maxTTL)
	}
	return nil
}
