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
// Below "*", only files of hosts the caller may read (not those of hosts
// since deleted, whose scope can no longer be told).
func (s *Files) FindFiles(ctx context.Context, q FileQuery) ([]*tripcap.StoredFile, string, error) {
	g, err := tripcap.GrantedHosts(ctx, s.cfg.Hosts, tripcap.PermRead)
	if err != nil {
		return nil, "", err
	}
	f := tripcap.FileFilter{Since: q.Since, Until: q.Until, IncludeDeleted: q.IncludeDeleted, Cursor: q.Cursor, Limit: q.Limit}
	if q.Host != "" {
		id, err := s.hostID(ctx, q.Host)
		if err == nil && !g.Covers(id) {
			err = tripcap.NoHost(q.Host)
		}
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
	var files []*tripcap.StoredFile
	var next string
	switch id, only := g.Only(); {
	case f.HostID != nil || g.All():
		files, next, err = s.cfg.Index.FindFiles(ctx, f)
	case g.Empty():
	case only:
		f.HostID = &id
		files, next, err = s.cfg.Index.FindFiles(ctx, f)
	default:
		files, next, err = tripcap.FilterPage(q.Cursor, q.Limit,
			func(cursor string, limit int) ([]*tripcap.StoredFile, string, error) {
				f.Cursor, f.Limit = cursor, limit
				return s.cfg.Index.FindFiles(ctx, f)
			},
			func(sf *tripcap.StoredFile) bool { return g.Covers(sf.HostID) },
			func(sf *tripcap.StoredFile) string { return sf.ID })
	}
	if err != nil {
		return nil, "", err
	}
	s.nameHosts(ctx, files)
	return files, next, nil
}

// authorize refuses the caller unless it holds perm at the host with this
// id; one that may not read that host gets notFound (tripcap.AuthorizeAt).
func (s *Files) authorize(ctx context.Context, perm tripcap.Permission, hostID string, notFound error) error {
	h, err := tripcap.HostOf(ctx, s.cfg.Hosts, hostID)
	if err != nil {
		return err
	}
	return tripcap.AuthorizeAt(ctx, perm, h, notFound)
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
	f, err := s.file(ctx, tripcap.PermRead, id)
	if err != nil {
		return nil, err
	}
	s.nameHosts(ctx, []*tripcap.StoredFile{f})
	return f, nil
}

// file returns a stored file's record if the caller holds perm at its host.
func (s *Files) file(ctx context.Context, perm tripcap.Permission, id string) (*tripcap.StoredFile, error) {
	if _, err := tripcap.AuthorizeSome(ctx, perm); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "file: required")
	}
	files, _, err := s.cfg.Index.FindFiles(ctx, tripcap.FileFilter{ID: &id, IncludeDeleted: true, Limit: 1})
	if err != nil {
		return nil, err
	}
	notFound := tripcap.Errorf(tripcap.ENOTFOUND, "no file %q", id)
	if len(files) == 0 {
		return nil, notFound
	}
	if err := s.authorize(ctx, perm, files[0].HostID, notFound); err != nil {
		return nil, err
	}
	return files[0], nil
}

// OpenStoredFile opens a stored file by id for download.
func (s *Files) OpenStoredFile(ctx context.Context, id string) (io.ReadSeekCloser, *tripcap.StoredFile, error) {
	f, err := s.file(ctx, tripcap.PermFileRead, id)
	if err != nil {
		return nil, nil, err
	}
	s.nameHosts(ctx, []*tripcap.StoredFile{f})
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
	f, err := s.file(ctx, tripcap.PermFileDelete, id)
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
