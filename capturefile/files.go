package capturefile

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// Config gives Files what it needs of the control plane: the capture
// records, the storage accounts and who is calling.
type Config struct {
	// Agent returns the host the calling agent acts for, or refuses a caller
	// that is not an agent.
	Agent func(ctx context.Context) (hostID string, err error)
	// Capture returns a capture by id, deleted ones too.
	Capture func(ctx context.Context, id string) (*tripcap.PacketCapture, error)
	// FindCapture returns the capture a user names (by id, or by name within
	// an optional watcher), refusing a caller who may not see it.
	FindCapture func(ctx context.Context, watcher, ref string) (*tripcap.PacketCapture, error)
	// UpdateCapture applies fn to the latest version of capture id and
	// writes it when fn says it changed something.
	UpdateCapture func(ctx context.Context, id string, fn func(c *tripcap.PacketCapture) bool) error
	// BlobStore returns the backend of a storage account.
	BlobStore func(ctx context.Context, account string) (tripcap.BlobStore, error)
	// Index is the file index (the store), for files on their own.
	Index tripcap.FileStore
	// Hosts resolves the host a user names in a file listing, and the hosts
	// files are authorized against.
	Hosts tripcap.HostLister
	// Stored is told of every file stored (for the server's counters).
	Stored func()
	Now    func() time.Time
}

// Files is the server side of the file stage: upload targets, uploads
// through the server, completion of direct uploads, downloads.
type Files struct {
	cfg Config
}

// New returns the file service.
func New(cfg Config) *Files {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Stored == nil {
		cfg.Stored = func() {}
	}
	return &Files{cfg: cfg}
}

// slot is where one file of an agent's capture goes in storage.
type slot struct {
	capture *tripcap.PacketCapture
	blobs   tripcap.BlobStore
	file    tripcap.CaptureFile // the capture's record of it, Key set
	deleted bool                // a user or the retention policy deleted it
	limit   fileLimit           // what the capture lets the file hold
}

// reserve checks that the calling agent may upload the named file of a
// capture, of size bytes when known (≥ 0), within the capture's limits
// (limitOf), and records the file with its storage key, so that every
// attempt (and every replica) writes the same object.
func (s *Files) reserve(ctx context.Context, captureID, name string, size int64) (*slot, error) {
	hostID, err := s.cfg.Agent(ctx)
	if err != nil {
		return nil, err
	}
	if name == "" || strings.ContainsAny(name, "/\\") || name == "." || name == ".." {
		return nil, tripcap.Errorf(tripcap.EINVALID, "name: %q is not a file name", name)
	}
	c, err := s.cfg.Capture(ctx, captureID)
	if err != nil {
		return nil, err
	}
	if c.HostID != hostID {
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no capture %s on this host", captureID)
	}
	storageID := c.Parameters.StorageLocation.StorageID
	if storageID == "" || c.StorageKey == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "capture %s keeps its files on the host (no storage account)", c.Name)
	}
	blobs, err := s.cfg.BlobStore(ctx, storageID)
	if err != nil {
		return nil, err
	}
	sl := &slot{blobs: blobs, limit: limitOf(c, name)}
	if size >= 0 {
		if err := sl.limit.checkSize(c, name, size); err != nil {
			return nil, err
		}
	}
	var refused error
	err = s.cfg.UpdateCapture(ctx, c.ID, func(c *tripcap.PacketCapture) bool {
		sl.capture, refused = c, nil
		i := Index(c, name)
		if i < 0 || c.Files[i].Key == "" {
			// A new file in storage: within the capture's file count.
			if refused = sl.limit.checkCount(c, name); refused != nil {
				return false
			}
		}
		if i < 0 {
			c.Files = append(c.Files, tripcap.CaptureFile{Name: name, CreatedAt: s.cfg.Now()})
			i = len(c.Files) - 1
		}
		f := &c.Files[i]
		if f.DeletedAt != nil {
			sl.deleted = true
			return false
		}
		changed := f.Key == ""
		if changed {
			f.Key, f.StorageID = fileKey(c.StorageKey, i), storageID
		}
		sl.file = *f
		return changed
	})
	if err != nil {
		return nil, err
	}
	if refused != nil {
		return nil, refused
	}
	if sl.deleted {
		return nil, tripcap.Errorf(tripcap.ECONFLICT, "file %s of capture %s was deleted; it is not stored again", name, c.Name)
	}
	return sl, nil
}

// markStored records that a file is in storage with the given size and checksum.
func (s *Files) markStored(ctx context.Context, sl *slot, info tripcap.ObjectInfo) (*tripcap.CaptureFile, error) {
	s.cfg.Stored()
	var stored tripcap.CaptureFile
	err := s.cfg.UpdateCapture(ctx, sl.capture.ID, func(c *tripcap.PacketCapture) bool {
		i := Index(c, sl.file.Name)
		if i < 0 {
			return false
		}
		f := &c.Files[i]
		f.Size, f.SHA256, f.Stored = info.Size, info.SHA256, true
		stored = *f
		return true
	})
	if err != nil {
		return nil, err
	}
	return &stored, nil
}

// UploadFile stores a file of the calling agent's capture through the server
// (the file backend's path), checking its SHA-256 when given. Uploading a file
// that is already stored with the same checksum is a no-op, so retries are safe.
func (s *Files) UploadFile(ctx context.Context, captureID, name, sha256 string, body io.Reader) (*tripcap.CaptureFile, error) {
	sl, err := s.reserve(ctx, captureID, name, -1)
	if err != nil {
		return nil, err
	}
	// Bounded, so a body over the file's limit is cut off at the limit
	// rather than stored (or, already stored, drained without end).
	bounded := sl.limit.bound(sl.capture, name, body)
	if sl.file.Stored && sl.file.SHA256 == sha256 {
		_, _ = io.Copy(io.Discard, bounded)
		if err := bounded.over(); err != nil {
			return nil, err
		}
		return &sl.file, nil
	}
	info, err := sl.blobs.Put(ctx, sl.file.Key, bounded)
	if over := bounded.over(); over != nil {
		err = over
	}
	if tripcap.ErrorCode(err) == tripcap.ELIMIT {
		// Backends store a failed Put as nothing, but what part of it one
		// might keep is no file of the capture's; a copy stored before stays.
		if !sl.file.Stored {
			_ = sl.blobs.Delete(ctx, sl.file.Key)
		}
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("store %s of capture %s: %w", name, sl.capture.Name, err)
	}
	if sha256 != "" && sha256 != info.SHA256 {
		_ = sl.blobs.Delete(ctx, sl.file.Key)
		return nil, tripcap.Errorf(tripcap.EINVALID, "file %s: SHA-256 %s does not match the upload's %s", name, sha256, info.SHA256)
	}
	return s.markStored(ctx, sl, info)
}

// UploadTarget tells the calling agent where to send a file: presigned URLs
// of the capture's storage account when it takes direct uploads, else the
// server's own upload endpoint. A file already stored comes back as nil.
func (s *Files) UploadTarget(ctx context.Context, captureID, name string, req tripcap.UploadTargetRequest) (*tripcap.UploadTarget, error) {
	if req.Size < 0 {
		return nil, tripcap.Errorf(tripcap.EINVALID, "size: %d is negative", req.Size)
	}
	sl, err := s.reserve(ctx, captureID, name, req.Size)
	if err != nil {
		return nil, err
	}
	if sl.file.Stored && sl.file.SHA256 == req.SHA256 {
		return nil, nil
	}
	direct, ok := sl.blobs.(tripcap.DirectUploads)
	if !ok {
		return &tripcap.UploadTarget{Kind: tripcap.UploadServer, Size: req.Size}, nil
	}
	t, err := direct.PrepareUpload(ctx, sl.file.Key, req.Size, req.ResumeID, UploadTargetTTL)
	if err != nil {
		return nil, storageError("prepare the upload of "+name, err)
	}
	return t, nil
}

// CompleteUpload commits a direct upload: the backend assembles the parts the
// agent sent and the stored bytes' SHA-256 must equal the agent's.
func (s *Files) CompleteUpload(ctx context.Context, captureID, name, sha256 string, t *tripcap.UploadTarget) (*tripcap.CaptureFile, error) {
	if t == nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "target: required")
	}
	// The target comes back from the agent: its size is checked again, and
	// the stored object's below, whatever the target says.
	sl, err := s.reserve(ctx, captureID, name, t.Size)
	if err != nil {
		return nil, err
	}
	if sl.file.Stored && sl.file.SHA256 == sha256 {
		return &sl.file, nil
	}
	direct, ok := sl.blobs.(tripcap.DirectUploads)
	if !ok {
		return nil, tripcap.Errorf(tripcap.EINVALID, "storage account %s takes uploads through the server only", sl.file.StorageID)
	}
	info, err := direct.CompleteUpload(ctx, sl.file.Key, t, sha256)
	if err != nil {
		return nil, storageError("complete the upload of "+name, err)
	}
	if err := sl.limit.checkSize(sl.capture, name, info.Size); err != nil {
		if derr := sl.blobs.Delete(ctx, sl.file.Key); derr != nil {
			return nil, fmt.Errorf("%w (deleting the stored object failed: %v)", err, derr)
		}
		return nil, err
	}
	return s.markStored(ctx, sl, info)
}

// storageError keeps a backend's *tripcap.Error (its message names the
// backend's own error) and marks anything else as a storage outage the
// agent retries.
func storageError(doing string, err error) error {
	if tripcap.ErrorCode(err) != tripcap.EINTERNAL {
		return err
	}
	return tripcap.Errorf(tripcap.EUNAVAILABLE, "storage: %s: %v", doing, err)
}

// OpenFile opens a stored file of a capture for download: the named one, or
// the first when name is empty.
func (s *Files) OpenFile(ctx context.Context, watcher, ref, name string) (io.ReadSeekCloser, *tripcap.CaptureFile, error) {
	if _, err := tripcap.AuthorizeSome(ctx, tripcap.PermFileRead); err != nil {
		return nil, nil, err
	}
	c, err := s.cfg.FindCapture(ctx, watcher, ref)
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND && watcher == "" {
		// A capture deleted or replaced keeps its files: its id (what a
		// notification's downloadUrl names) still reaches them.
		if dc, derr := s.cfg.Capture(ctx, ref); derr == nil {
			c, err = dc, nil
		}
	}
	if err == nil && c.IsScaleSet() {
		// Its files are its sessions', one capture per instance.
		ids := make([]string, len(c.Sessions))
		for i, m := range c.Sessions {
			ids[i] = m.InstanceID + ": " + m.CaptureID
		}
		return nil, nil, tripcap.Errorf(tripcap.EINVALID, "capture %s is a scale set's: download each instance's file by its session's capture id (%s)", c.Name, strings.Join(ids, ", "))
	}
	if err == nil {
		// The fallback above found deleted captures of any host: this
		// checks them as FindCapture does the others.
		err = s.authorize(ctx, tripcap.PermFileRead, c.HostID, tripcap.Errorf(tripcap.ENOTFOUND, "no capture %q", ref))
	}
	if err != nil {
		return nil, nil, err
	}
	if len(c.Files) == 0 {
		return nil, nil, tripcap.Errorf(tripcap.ENOTFOUND, "capture %s has no file yet (status %s)", c.Name, c.Status)
	}
	i := 0
	if name != "" {
		if i = Index(c, name); i < 0 {
			names := make([]string, len(c.Files))
			for j, f := range c.Files {
				names[j] = f.Name
			}
			return nil, nil, tripcap.Errorf(tripcap.ENOTFOUND, "capture %s has no file %q (files: %v)", c.Name, name, names)
		}
	}
	f := c.Files[i]
	if !f.Stored && f.DeletedAt == nil && c.Parameters.StorageLocation.StorageID != "" {
		return nil, nil, tripcap.Errorf(tripcap.EUNAVAILABLE, "capture %s: %s is not uploaded yet (status %s)", c.Name, f.Name, c.Status)
	}
	rc, err := s.open(ctx, c.Name, f)
	if err != nil {
		return nil, nil, err
	}
	return rc, &f, nil
}

// open opens the stored copy of file f of capture captureName.
func (s *Files) open(ctx context.Context, captureName string, f tripcap.CaptureFile) (io.ReadSeekCloser, error) {
	if f.DeletedAt != nil {
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "file %s of capture %s was deleted at %s", f.Name, captureName, f.DeletedAt.Format(time.RFC3339))
	}
	if !f.Stored {
		if f.StorageID == "" {
			return nil, tripcap.Errorf(tripcap.ENOTFOUND, "capture %s keeps %s on its host only, at %s", captureName, f.Name, f.LocalPath)
		}
		return nil, tripcap.Errorf(tripcap.EUNAVAILABLE, "capture %s: %s is not uploaded yet", captureName, f.Name)
	}
	blobs, err := s.cfg.BlobStore(ctx, f.StorageID)
	if err != nil {
		return nil, err
	}
	rc, _, err := blobs.Open(ctx, f.Key)
	if err != nil {
		return nil, fmt.Errorf("open %s of capture %s: %w", f.Key, captureName, err)
	}
	return rc, nil
}

// DeleteFiles deletes the stored files of a capture and marks them deleted;
// the caller has made sure it may.
func (s *Files) DeleteFiles(ctx context.Context, c *tripcap.PacketCapture) error {
	for _, f := range c.Files {
		if !f.Stored {
			continue
		}
		if err := s.deleteStored(ctx, c.ID, c.Name, f); err != nil {
			return err
		}
	}
	return nil
}
