package http

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/capturefile"
)

// The file stage's routes (package capturefile): upload targets, uploads
// through the server, completion of direct uploads, downloads, and stored
// files on their own (/api/v1/files), which outlive their captures.

// CompleteUploadBody is the body of POST …/files/{name}/complete.
type CompleteUploadBody struct {
	SHA256 string                `json:"sha256"`
	Target *tripcap.UploadTarget `json:"target"`
}

// ShaHeader carries a file's hex SHA-256 on uploads and downloads.
const ShaHeader = "X-Tripcap-Sha256"

func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) error {
	rc, f, err := s.svc.Files.OpenFile(r.Context(), r.URL.Query().Get("watcher"), r.PathValue("capture"), r.URL.Query().Get("name"))
	if err != nil {
		return err
	}
	defer rc.Close()
	serveFile(w, r, rc, f)
	return nil
}

// serveFile answers a download of a stored file: Range requests, its
// SHA-256 (X-Tripcap-Sha256, Repr-Digest) and an ETag of it.
func serveFile(w http.ResponseWriter, r *http.Request, rc io.ReadSeeker, f *tripcap.CaptureFile) {
	ctype := "application/vnd.tcpdump.pcap"
	if strings.HasSuffix(f.Name, ".pcapng") {
		ctype = "application/x-pcapng"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", path.Base(f.Name)))
	if f.SHA256 != "" {
		w.Header().Set(ShaHeader, f.SHA256)
		if raw, err := hex.DecodeString(f.SHA256); err == nil {
			w.Header().Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(raw)+":")
		}
		w.Header().Set("ETag", `"`+f.SHA256+`"`)
	}
	http.ServeContent(w, r, "", f.CreatedAt, rc)
}

func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) error {
	sum := strings.ToLower(r.Header.Get(ShaHeader))
	if sum != "" {
		if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
			return tripcap.Errorf(tripcap.EINVALID, "%s: %q is not a hex SHA-256", ShaHeader, sum)
		}
	}
	f, err := s.svc.Files.UploadFile(r.Context(), r.PathValue("id"), r.PathValue("name"), sum, r.Body)
	if err != nil {
		return err
	}
	writeJSON(w, 200, f)
	return nil
}

func (s *Server) handleUploadTarget(w http.ResponseWriter, r *http.Request) error {
	var req tripcap.UploadTargetRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	t, err := s.svc.Files.UploadTarget(r.Context(), r.PathValue("id"), r.PathValue("name"), req)
	if err != nil {
		return err
	}
	if t == nil {
		w.WriteHeader(204)
		return nil
	}
	writeJSON(w, 200, t)
	return nil
}

func (s *Server) handleCompleteUpload(w http.ResponseWriter, r *http.Request) error {
	var body CompleteUploadBody
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	f, err := s.svc.Files.CompleteUpload(r.Context(), r.PathValue("id"), r.PathValue("name"), body.SHA256, body.Target)
	if err != nil {
		return err
	}
	writeJSON(w, 200, f)
	return nil
}

// timeParam reads an RFC 3339 time query parameter; nil when absent.
func timeParam(r *http.Request, name string) (*time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "%s: %q is not an RFC 3339 time", name, v)
	}
	return &t, nil
}

func (s *Server) handleListFiles(w http.ResponseWriter, r *http.Request) error {
	cursor, limit, err := pageParams(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	fq := capturefile.FileQuery{Host: q.Get("host"), Capture: q.Get("capture"), Alert: q.Get("alert"), Cursor: cursor, Limit: limit}
	if fq.Since, err = timeParam(r, "since"); err != nil {
		return err
	}
	if fq.Until, err = timeParam(r, "until"); err != nil {
		return err
	}
	if fq.IncludeDeleted, err = boolParam(r, "deleted"); err != nil {
		return err
	}
	files, next, err := s.svc.Files.FindFiles(r.Context(), fq)
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.StoredFile]{Value: nonNil(files), NextLink: nextLink(r, next)})
	return nil
}

func (s *Server) handleGetFile(w http.ResponseWriter, r *http.Request) error {
	f, err := s.svc.Files.File(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, f)
	return nil
}

func (s *Server) handleFileContent(w http.ResponseWriter, r *http.Request) error {
	rc, f, err := s.svc.Files.OpenStoredFile(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	defer rc.Close()
	serveFile(w, r, rc, &f.CaptureFile)
	return nil
}

func (s *Server) handleDeleteFile(w http.ResponseWriter, r *http.Request) error {
	f, err := s.svc.Files.DeleteFile(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, f)
	return nil
}
