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
	"time"

	"github.com/tripcap/tripcap"
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

func totalSize(files []tripcap.CaptureFile) uint64 {
	var n uint64
	for _, f := range files {
		n += uint64(f.Size)
	}
	return n
}

// pendingUploads lists the finished session's files still to upload.
func (a *Agent) pendingUploads(e *journalEntry) []tripcap.CaptureFile {
	if e.Final == nil || e.Assignment.Parameters.StorageLocation.StorageID == "" {
		return nil
	}
	var out []tripcap.CaptureFile
	for _, f := range e.Final.Files {
		if e.Uploaded[f.Name] == "" {
			out = append(out, f)
		}
	}
	return out
}

// uploadLoop uploads finished sessions' files, retrying with backoff; a file
// stays in the spool until the server has stored it.
func (a *Agent) uploadLoop(ctx context.Context) {
	failures := 0
	for {
		wait := time.Second
		if failures > 0 {
			wait = backoff(failures)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-a.kick:
			a.kickNow() // the reporter wants it too
		}
		if err := a.uploadOnce(ctx); err != nil {
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

func (a *Agent) uploadOnce(ctx context.Context) error {
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
		sum, err := a.uploadFile(ctx, j.s.journal.Assignment.ID, j.file)
		if errors.Is(err, fs.ErrNotExist) {
			a.log.Error("a capture file vanished before upload", "path", j.file.LocalPath)
			sum = "missing"
		} else if err != nil {
			return fmt.Errorf("upload %s: %w", j.file.Name, err)
		}
		a.mu.Lock()
		e := j.s.journal
		if e.Uploaded == nil {
			e.Uploaded = map[string]string{}
		}
		e.Uploaded[j.file.Name] = sum
		err = a.saveJournal(e)
		a.forgetIfDone(j.s)
		a.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

func (a *Agent) uploadFile(ctx context.Context, captureID string, f tripcap.CaptureFile) (string, error) {
	sum, size, err := hashFile(f.LocalPath)
	if err != nil {
		return "", err
	}
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
