package capturefile

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/tripcap/tripcap"
)

// Server is the agent's side of the server's file calls (*http.Client
// of package http is one).
type Server interface {
	// UploadTarget asks where to send a file; nil means it is stored already.
	UploadTarget(ctx context.Context, captureID, name string, req tripcap.UploadTargetRequest) (*tripcap.UploadTarget, error)
	// Upload sends a file of size bytes through the server.
	Upload(ctx context.Context, captureID, name, sha256 string, r io.Reader, size int64) (*tripcap.CaptureFile, error)
	// CompleteUpload commits a direct upload.
	CompleteUpload(ctx context.Context, captureID, name, sha256 string, t *tripcap.UploadTarget) (*tripcap.CaptureFile, error)
}

// Sender sends an agent's finished capture files where the server says:
// straight to the storage account with presigned URLs, or through the
// server.
type Sender struct {
	Server Server
	// Uploader sends direct uploads; nil means a default one.
	Uploader *Uploader
	Log      *slog.Logger
}

// Send sends the file at path, the file name of capture captureID, and
// returns the stored SHA-256. resume is the target an earlier attempt
// journaled, if any: a direct upload of a file of the same size goes on
// from the parts the storage holds. keep journals the target of a direct
// upload before any part is sent (nil: forget it, the upload must start
// over); the caller forgets it once Send succeeds. Errors that retrying
// cannot fix are IsPermanent.
func (s *Sender) Send(ctx context.Context, captureID, name, path string, resume *tripcap.UploadTarget, keep func(*tripcap.UploadTarget) error) (string, error) {
	sum, size, err := HashFile(path)
	if err != nil {
		return "", err
	}
	req := tripcap.UploadTargetRequest{Size: size, SHA256: sum}
	if resume != nil && resume.Size == size {
		req.ResumeID = resume.UploadID
	}
	t, err := s.Server.UploadTarget(ctx, captureID, name, req)
	if err != nil {
		return "", err
	}
	if t == nil {
		return sum, nil // stored already
	}
	log := s.log().With("capture", captureID, "file", name)
	if t.Kind == tripcap.UploadServer {
		return s.throughServer(ctx, log, captureID, name, path, sum, size)
	}
	if err := keep(t); err != nil {
		return "", err
	}
	if len(t.DoneParts) > 0 {
		log.Info("resuming an interrupted upload", "partsStored", len(t.DoneParts), "parts", t.Parts())
	}
	progress := func(n int64) { log.Debug("upload progress", "bytesStored", n, "bytes", t.Size) }
	u := s.Uploader
	if u == nil {
		u = &Uploader{}
	}
	if err := u.File(ctx, t, path, progress); err != nil {
		return "", err
	}
	stored, err := s.Server.CompleteUpload(ctx, captureID, name, sum, t)
	if tripcap.ErrorCode(err) == tripcap.EPRECONDITION {
		// The stored bytes differ from the file: start over next time.
		if kerr := keep(nil); kerr != nil {
			log.Error("forgetting a failed upload's target", "err", kerr)
		}
		return "", tripcap.Errorf(tripcap.EUNAVAILABLE, "%s", tripcap.ErrorMessage(err))
	}
	if err != nil {
		return "", err
	}
	log.Info("capture file uploaded", "bytes", stored.Size, "key", stored.Key, "kind", t.Kind)
	return stored.SHA256, nil
}

func (s *Sender) throughServer(ctx context.Context, log *slog.Logger, captureID, name, path, sum string, size int64) (string, error) {
	r, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer r.Close()
	stored, err := s.Server.Upload(ctx, captureID, name, sum, r, size)
	if err != nil {
		return "", err
	}
	log.Info("capture file uploaded", "bytes", stored.Size, "key", stored.Key)
	return stored.SHA256, nil
}

func (s *Sender) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}
