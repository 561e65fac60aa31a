package http

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tripcap/tripcap"
)

// Download is an open capture file download.
type Download struct {
	Body io.ReadCloser
	// Size is the length of what Body returns; Offset where it starts in the file.
	Size, Offset int64
	SHA256       string
	FileName     string
}

// DownloadFile starts downloading a capture file from offset (a Range request when > 0).
func (c *Client) DownloadFile(ctx context.Context, watcher, ref, name string, offset int64) (*Download, error) {
	q := watcherQuery(watcher)
	if name != "" {
		q.Set("name", name)
	}
	return c.download(ctx, "/api/v1/captures/"+url.PathEscape(ref)+"/file", q, ref, offset)
}

// DownloadStoredFile starts downloading a stored file by id from offset.
func (c *Client) DownloadStoredFile(ctx context.Context, id string, offset int64) (*Download, error) {
	return c.download(ctx, "/api/v1/files/"+url.PathEscape(id)+"/content", nil, id, offset)
}

func (c *Client) download(ctx context.Context, path string, q url.Values, ref string, offset int64) (*Download, error) {
	req, err := c.newRequest(ctx, "GET", path, q, nil)
	if err != nil {
		return nil, err
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", ref, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	d := &Download{Body: resp.Body, Size: resp.ContentLength, SHA256: resp.Header.Get(ShaHeader)}
	if resp.StatusCode == http.StatusPartialContent {
		d.Offset = offset
	}
	if _, params, ok := strings.Cut(resp.Header.Get("Content-Disposition"), "filename="); ok {
		d.FileName = strings.Trim(params, `"`)
	}
	return d, nil
}

// FileQuery selects stored files (GET /api/v1/files); Since and Until are
// RFC 3339 times.
type FileQuery struct {
	Host, Since, Until, Alert, Capture string
	Deleted                            bool
}

// ListFiles lists stored files, every page.
func (c *Client) ListFiles(ctx context.Context, fq FileQuery) ([]*tripcap.StoredFile, error) {
	q := url.Values{}
	for k, v := range map[string]string{"host": fq.Host, "since": fq.Since, "until": fq.Until, "alert": fq.Alert, "capture": fq.Capture} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if fq.Deleted {
		q.Set("deleted", "true")
	}
	return listAll[*tripcap.StoredFile](ctx, c, "/api/v1/files", q)
}

// GetFile returns a stored file's record.
func (c *Client) GetFile(ctx context.Context, id string) (*tripcap.StoredFile, error) {
	var f tripcap.StoredFile
	return &f, c.do(ctx, "GET", "/api/v1/files/"+url.PathEscape(id), nil, nil, &f)
}

// DeleteFile deletes a stored file's copy and returns its record, marked deleted.
func (c *Client) DeleteFile(ctx context.Context, id string) (*tripcap.StoredFile, error) {
	var f tripcap.StoredFile
	return &f, c.do(ctx, "DELETE", "/api/v1/files/"+url.PathEscape(id), nil, nil, &f)
}

func filePath(captureID, name string) string {
	return "/api/v1/agent/captures/" + url.PathEscape(captureID) + "/files/" + url.PathEscape(name)
}

// UploadTarget asks where to send a file; nil means it is stored already.
func (c *Client) UploadTarget(ctx context.Context, captureID, name string, req tripcap.UploadTargetRequest) (*tripcap.UploadTarget, error) {
	var t *tripcap.UploadTarget
	if err := c.do(ctx, "POST", filePath(captureID, name)+"/target", nil, req, &t); err != nil {
		return nil, err
	}
	return t, nil
}

// CompleteUpload commits a direct upload.
func (c *Client) CompleteUpload(ctx context.Context, captureID, name, sha256 string, t *tripcap.UploadTarget) (*tripcap.CaptureFile, error) {
	var f tripcap.CaptureFile
	return &f, c.do(ctx, "POST", filePath(captureID, name)+"/complete", nil, CompleteUploadBody{SHA256: sha256, Target: t}, &f)
}

// Upload sends a capture file of size bytes.
func (c *Client) Upload(ctx context.Context, captureID, name, sha256 string, r io.Reader, size int64) (*tripcap.CaptureFile, error) {
	path := filePath(captureID, name)
	req, err := c.newRequest(ctx, "PUT", path, nil, r)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(ShaHeader, sha256)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("upload %s of %s: %w", name, captureID, err)
	}
	defer resp.Body.Close()
	c.noteServerProtocol(path, resp)
	if resp.StatusCode >= 300 {
		return nil, decodeError(resp)
	}
	var f tripcap.CaptureFile
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
		return nil, fmt.Errorf("decode upload answer: %w", err)
	}
	return &f, nil
}
