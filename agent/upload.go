package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/capturefile"
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
			f.SHA256, f.Size, _ = capturefile.HashFile(p)
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
	retry := agentBackoff()
	failing := false
	busy := true // files recovered from the journal
	for {
		wait := time.Second
		switch {
		case failing:
			wait = retry.Next()
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
			failing = true
			a.log.Warn("upload failed; will retry", "err", err)
		} else {
			failing = false
			retry.Reset()
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
		case err != nil && capturefile.IsPermanent(err):
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
	f.Errors = tripcap.AddCaptureError(f.Errors, tripcap.CaptureErrStorageFailed)
	f.Message = strings.TrimPrefix(f.Message+"; "+name+": "+reason, "; ")
	e.Reported = false
	if err := a.saveJournal(e); err != nil {
		a.log.Error("journaling a storage failure", "err", err)
	}
	a.kickNow()
}

// uploadFile sends one file where the server says (capturefile.Sender),
// journaling a direct upload's target so that a restart resumes it. It
// returns the stored SHA-256.
func (a *Agent) uploadFile(ctx context.Context, e *journalEntry, f tripcap.CaptureFile) (string, error) {
	a.mu.Lock()
	prev := e.Targets[f.Name]
	a.mu.Unlock()
	return a.sender.Send(ctx, e.Assignment.ID, f.Name, f.LocalPath, prev, func(t *tripcap.UploadTarget) error {
		a.mu.Lock()
		defer a.mu.Unlock()
		if t == nil {
			delete(e.Targets, f.Name)
		} else {
			if e.Targets == nil {
				e.Targets = map[string]*tripcap.UploadTarget{}
			}
			e.Targets[f.Name] = t
		}
		return a.saveJournal(e)
	})
}

func (a *Agent) removeFile(p string) {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.log.Error("removing an uploaded spool file", "path", p, "err", err)
	}
}
