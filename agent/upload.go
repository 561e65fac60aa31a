package agent

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
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/upload"
)

// fileReports describes a session's files: the engine's list when given, else
// what the journal's path names on disk (first file and numbered ring files).
// Sizes are read from disk, and checksums too once the session is final.
func fileReports(e *journalEntry, paths []string, final bool) []tripcap.CaptureFile {
	if paths == nil && e.Path != "" {
		paths = existingSessionFiles(e.Path)
	}
	out := make([]tripcap.CaptureFile, 0, len(paths))
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		f := tripcap.CaptureFile{Name: filepath.Base(p), Size: st.Size(), LocalPath: p, CreatedAt: st.ModTime().UTC()}
		if final {
			f.SHA256, f.Size, _ = hashFile(p)
		}
		out = append(out, f)
	}
	return out
}

// existingSessionFiles finds the files of a session that started at first.
func existingSessionFiles(first string) []string {
	ext := filepath.Ext(first)
	base := first[:len(first)-len(ext)]
	matches, _ := filepath.Glob(base + "*" + ext)
	return matches
}

// pendingUploads lists the finished session's files still to upload.
func (a *Agent) pendingUploads(e *journalEntry) []tripcap.CaptureFile {
	if e.Final == nil || e.Assignment.Parameters.StorageLocation.StorageID == "" {
		return nil
	}
	var out []tripcap.CaptureFile
	for _, f := range e.Final.Files {
		if e.Uploaded[f.Name] == "" && e.Failed[f.Name] == "" {
			out = append(out, f)
		}
	}
	return out
}

// uploadLoop uploads finished sessions' files, retrying with backoff; a file
// stays in the spool until the server has stored it.
func (a *Agent) uploadLoop(ctx context.Context) {
	failures := 0
	busy := true // files recovered from the journal
	for {
		wait := time.Second
		switch {
		case failures > 0:
			wait = backoff(failures)
		case !busy:
			wait = idleRecheck
		}
		if !awaitWork(ctx, wait, a.kickUpload) {
			return
		}
		var err error
		busy, err = a.uploadOnce(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			a.log.Warn("upload failed; will retry", "err", err)
		} else {
			failures = 0
		}
	}
}

// uploadOnce uploads every finished file not yet stored, and says whether
// there were any.
func (a *Agent) uploadOnce(ctx context.Context) (bool, error) {
	type job struct {
		s    *session
		file tripcap.CaptureFile
	}
	var jobs []job
	a.mu.Lock()
	for _, s := range a.sessions {
		if s.run != nil {
			continue
		}
		for _, f := range a.pendingUploads(s.journal) {
			jobs = append(jobs, job{s, f})
		}
	}
	a.mu.Unlock()
	for _, j := range jobs {
		sum, err := a.uploadFile(ctx, j.s.journal, j.file)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			a.log.Error("a capture file vanished before upload", "path", j.file.LocalPath)
			a.failUpload(j.s, j.file.Name, "the file vanished from the spool before upload")
			continue
		case err != nil && permanent(err):
			a.log.Error("storage refused a capture file; it stays in the spool", "file", j.file.LocalPath, "err", err)
			a.failUpload(j.s, j.file.Name, tripcap.ErrorMessage(err))
			continue
		case err != nil:
			return true, fmt.Errorf("upload %s: %w", j.file.Name, err)
		}
		a.mu.Lock()
		e := j.s.journal
		if e.Uploaded == nil {
			e.Uploaded = map[string]string{}
		}
		e.Uploaded[j.file.Name] = sum
		delete(e.Targets, j.file.Name)
		err = a.saveJournal(e)
		a.forgetIfDone(j.s)
		a.mu.Unlock()
		if err != nil {
			return true, err
		}
	}
	return len(jobs) > 0, nil
}

// permanent tells errors retrying cannot fix (wrong credentials, a refused
// request) from outages, which are retried with backoff.
func permanent(err error) bool {
	if upload.IsPermanent(err) {
		return true
	}
	// From the server: storage refused (EFORBIDDEN carries the backend's
	// message), or the capture cannot take the file. EUNAUTHORIZED would be
	// the agent's own credential: not the file's fault, so it is retried.
	switch tripcap.ErrorCode(err) {
	case tripcap.EFORBIDDEN, tripcap.EINVALID, tripcap.ENOTFOUND:
		return true
	}
	return false
}

// failUpload records that storage refused a file for good: the session's
// final report is sent again with StorageFailed and the backend's message.
func (a *Agent) failUpload(s *session, name, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := s.journal
	if e.Failed == nil {
		e.Failed = map[string]string{}
	}
	e.Failed[name] = reason
	f := e.Final
	f.Status = tripcap.StatusError
	f.Errors = appendOnce(f.Errors, tripcap.CaptureErrStorageFailed)
	f.Message = strings.TrimPrefix(f.Message+"; "+name+": "+reason, "; ")
	e.Reported = false
	if err := a.saveJournal(e); err != nil {
		a.log.Error("journaling a storage failure", "err", err)
	}
	a.kickNow()
}

// uploadFile sends one file where the server says: straight to the storage
// account with presigned URLs, or through the server. It returns the stored
// SHA-256.
func (a *Agent) uploadFile(ctx context.Context, e *journalEntry, f tripcap.CaptureFile) (string, error) {
	id := e.Assignment.ID
	sum, size, err := hashFile(f.LocalPath)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	prev := e.Targets[f.Name]
	a.mu.Unlock()
	req := tripcap.UploadTargetRequest{Size: size, SHA256: sum}
	if prev != nil && prev.Size == size {
		req.ResumeID = prev.UploadID
	}
	t, err := a.client.UploadTarget(ctx, id, f.Name, req)
	if err != nil {
		return "", err
	}
	if t == nil {
		return sum, nil // stored already
	}
	if t.Kind == tripcap.UploadServer {
		return a.uploadThroughServer(ctx, id, f, sum, size)
	}
	a.mu.Lock()
	if e.Targets == nil {
		e.Targets = map[string]*tripcap.UploadTarget{}
	}
	e.Targets[f.Name] = t
	err = a.saveJournal(e)
	a.mu.Unlock()
	if err != nil {
		return "", err
	}
	if len(t.DoneParts) > 0 {
		a.log.Info("resuming an interrupted upload", "capture", id, "file", f.Name, "partsStored", len(t.DoneParts), "parts", t.Parts())
	}
	progress := func(n int64) {
		a.log.Debug("upload progress", "capture", id, "file", f.Name, "bytesStored", n, "bytes", t.Size)
	}
	if err := a.uploader.File(ctx, t, f.LocalPath, progress); err != nil {
		return "", err
	}
	stored, err := a.client.CompleteUpload(ctx, id, f.Name, sum, t)
	if tripcap.ErrorCode(err) == tripcap.EPRECONDITION {
		// The stored bytes differ from the file: start over next time.
		a.mu.Lock()
		delete(e.Targets, f.Name)
		a.mu.Unlock()
		return "", tripcap.Errorf(tripcap.EUNAVAILABLE, "%s", tripcap.ErrorMessage(err))
	}
	if err != nil {
		return "", err
	}
	a.log.Info("capture file uploaded", "capture", id, "file", f.Name, "bytes", stored.Size, "key", stored.Key, "kind", t.Kind)
	return stored.SHA256, nil
}

func (a *Agent) uploadThroughServer(ctx context.Context, captureID string, f tripcap.CaptureFile, sum string, size int64) (string, error) {
	r, err := os.Open(f.LocalPath)
	if err != nil {
		return "", err
	}
	defer r.Close()
	stored, err := a.client.Upload(ctx, captureID, f.Name, sum, r, size)
	if err != nil {
		return "", err
	}
	a.log.Info("capture file uploaded", "capture", captureID, "file", f.Name, "bytes", stored.Size, "key", stored.Key)
	return stored.SHA256, nil
}

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func (a *Agent) removeFile(p string) {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.log.Error("removing an uploaded spool file", "path", p, "err", err)
	}
}
