package capturefile

// Stored files on their own: a capture's files outlive its record (a
// capture deleted, or replaced by a responder's nameConflict replace) and
// stay listable, downloadable and deletable by file id until a user or the
// retention policy deletes them.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tripcap/tripcap"
)

// FileQuery selects stored files as a user names them.
type FileQuery struct {
	// Host is a host id or name (dotted names too); a deleted host's id
	// still selects its files.
	Host    string
	Capture string // capture name
	Alert   string // the alert id a responder recorded on the capture
	// Since and Until bound the files' CreatedAt (Since inclusive).
	Since, Until   *time.Time
	IncludeDeleted bool
	Cursor         string
	Limit          int
}

// FindFiles lists stored files, those of deleted and replaced captures too.
func (s *Files) FindFiles(ctx context.Context, q FileQuery) ([]*tripcap.StoredFile, string, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, "", err
	}
	f := tripcap.FileFilter{Since: q.Since, Until: q.Until, IncludeDeleted: q.IncludeDeleted, Cursor: q.Cursor, Limit: q.Limit}
	if q.Host != "" {
		id, err := s.hostID(ctx, q.Host)
		if err != nil {
			return nil, "", err
		}
		f.HostID = &id
	}
	if q.Capture != "" {
		f.CaptureName = &q.Capture
	}
	if q.Alert != "" {
		f.AlertID = &q.Alert
	}
	files, next, err := s.cfg.Index.FindFiles(ctx, f)
	if err != nil {
		return nil, "", err
	}
	s.nameHosts(ctx, files)
	return files, next, nil
}

// hostID resolves a host reference; the id of a host since deleted still
// names its files.
func (s *Files) hostID(ctx context.Context, ref string) (string, error) {
	h, err := tripcap.FindHostByRef(ctx, s.cfg.Hosts, ref)
	if err == nil {
		return h.ID, nil
	}
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
		if files, _, ferr := s.cfg.Index.FindFiles(ctx, tripcap.FileFilter{HostID: &ref, IncludeDeleted: true, Limit: 1}); ferr == nil && len(files) > 0 {
			return ref, nil
		}
	}
	return "", err
}

// nameHosts fills in the files' host names.
func (s *Files) nameHosts(ctx context.Context, files []*tripcap.StoredFile) {
	names := map[string]string{}
	for _, f := range files {
		name, ok := names[f.HostID]
		if !ok {
			id := f.HostID
			if h, err := s.cfg.Hosts.FindHost(ctx, tripcap.HostFilter{ID: &id}); err == nil {
				name = h.Name
			}
			names[f.HostID] = name
		}
		f.HostName = name
	}
}

// File returns a stored file's record by id, its stored copy deleted or not.
func (s *Files) File(ctx context.Context, id string) (*tripcap.StoredFile, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	f, err := s.file(ctx, id)
	if err != nil {
		return nil, err
	}
	s.nameHosts(ctx, []*tripcap.StoredFile{f})
	return f, nil
}

func (s *Files) file(ctx context.Context, id string) (*tripcap.StoredFile, error) {
	if id == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "file: required")
	}
	files, _, err := s.cfg.Index.FindFiles(ctx, tripcap.FileFilter{ID: &id, IncludeDeleted: true, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no file %q", id)
	}
	return files[0], nil
}

// OpenStoredFile opens a stored file by id for download.
func (s *Files) OpenStoredFile(ctx context.Context, id string) (io.ReadSeekCloser, *tripcap.StoredFile, error) {
	f, err := s.File(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	rc, err := s.open(ctx, f.CaptureName, f.CaptureFile)
	if err != nil {
		return nil, nil, err
	}
	return rc, f, nil
}

// DeleteFile deletes a stored file's copy in storage and marks its record
// deleted (the record stays, so the file's fate is known). Deleting it again
// is a no-op.
func (s *Files) DeleteFile(ctx context.Context, id string) (*tripcap.StoredFile, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	f, err := s.file(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.deleteStored(ctx, f.CaptureID, f.CaptureName, f.CaptureFile); err != nil {
		return nil, err
	}
	return s.File(ctx, id)
}

// deleteStored deletes file f of capture captureID from storage, then marks
// it deleted on the capture, which re-indexes it. A file never stored (kept
// on its host) is only marked.
func (s *Files) deleteStored(ctx context.Context, captureID, captureName string, f tripcap.CaptureFile) error {
	if f.DeletedAt != nil {
		return nil
	}
	if f.Stored {
		b, err := s.cfg.BlobStore(ctx, f.StorageID)
		if err == nil {
			err = b.Delete(ctx, f.Key)
		}
		if err != nil {
			return fmt.Errorf("delete file %s of capture %s: %w", f.Key, captureName, err)
		}
	}
	now := s.cfg.Now().UTC()
	return s.cfg.UpdateCapture(ctx, captureID, func(c *tripcap.PacketCapture) bool {
		i := Index(c, f.Name)
		if i < 0 || c.Files[i].DeletedAt != nil {
			return false
		}
		c.Files[i].Stored, c.Files[i].DeletedAt = false, &now
		return true
	})
}

// SweepRetention deletes the stored files created before now-retention and
// returns how many it deleted; retention 0 keeps files until deleted. A
// file it fails to delete is logged by the caller's error and tried again
// at the next sweep.
func (s *Files) SweepRetention(ctx context.Context, retention time.Duration) (int, error) {
	if retention <= 0 {
		return 0, nil
	}
	cutoff := s.cfg.Now().Add(-retention)
	n := 0
	var errs []error
	cursor := ""
	for {
		files, next, err := s.cfg.Index.FindFiles(ctx, tripcap.FileFilter{Until: &cutoff, StoredOnly: true, Cursor: cursor, Limit: 100})
		if err != nil {
			return n, fmt.Errorf("find files older than %s: %w", retention, err)
		}
		for _, f := range files {
			if err := s.deleteStored(ctx, f.CaptureID, f.CaptureName, f.CaptureFile); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
		if next == "" || ctx.Err() != nil {
			return n, errors.Join(errs...)
		}
		cursor = next
	}
}
