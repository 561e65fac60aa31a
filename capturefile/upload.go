package capturefile

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// Defaults for an Uploader's zero fields.
const (
	DefaultAttempts    = 8
	DefaultMinBackoff  = 250 * time.Millisecond
	DefaultMaxBackoff  = 8 * time.Second
	DefaultPartTimeout = 5 * time.Minute
	// azureVersion is the x-ms-version sent when the SAS names none; Put
	// Block has not changed since.
	azureVersion = "2021-12-02"
)

// Uploader sends a capture file from an agent straight to the storage
// account with the short-lived target the server handed out: presigned S3
// part URLs or an Azure blob SAS URL. It uses plain net/http: an agent holds
// no storage SDK and no storage credentials.
//
// Parts go one after another, each read from the file at its offset, so a
// retry or a resume resends that part only. Parts the target lists as done
// are skipped. Network errors and 408/429/5xx answers are retried with
// backoff; other answers are final. Errors carry tripcap codes:
//
//   - EUNAUTHORIZED/EFORBIDDEN: the storage refused the target's signature
//     (wrong credentials on the server, a tampered URL), with the backend's
//     error code and message (S3 <Code>/<Message>, Azure x-ms-error-code);
//   - ENOTFOUND, EINVALID, ECONFLICT: other refusals (the upload was aborted,
//     the bucket is gone, the file does not match the target);
//   - EUNAVAILABLE: the storage could not be reached or kept failing, or the
//     target expired: ask the server for a new target, resuming with its
//     UploadID, and try again later.
//
// IsPermanent tells the first two groups (the capture's StorageFailed) from
// the last. Context cancellation returns the context's error, not permanent.
// URLs in errors are stripped of their query, which holds the signature.
type Uploader struct {
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
	// Attempts is how many times one part is tried before giving up
	// (EUNAVAILABLE); 0 means DefaultAttempts. With the default backoff, 8
	// attempts ride out about 25 s of storage outage.
	Attempts int
	// MinBackoff and MaxBackoff bound the wait between attempts, which
	// doubles from MinBackoff, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// PartTimeout bounds one attempt at one part, so that a storage server
	// that stops answering mid-part is retried rather than waited on
	// forever; 0 means DefaultPartTimeout.
	PartTimeout time.Duration
}

// UploadParts sends the file at path to target with a default Uploader.
// progress, if not nil, is called with the number of the file's bytes the
// storage holds: first with those of the done parts, then after each part.
func UploadParts(ctx context.Context, client *http.Client, target *tripcap.UploadTarget, path string, progress func(n int64)) error {
	u := &Uploader{Client: client}
	return u.File(ctx, target, path, progress)
}

// IsPermanent reports whether err means that the storage or the server
// refused the upload for good (wrong credentials, a missing bucket or
// upload, a file that does not match its target, a capture that takes no
// file, a file beyond the capture's limits), as opposed to a fault that may
// pass.
func IsPermanent(err error) bool {
	switch tripcap.ErrorCode(err) {
	case tripcap.EUNAUTHORIZED, tripcap.EFORBIDDEN, tripcap.ENOTFOUND, tripcap.EINVALID, tripcap.ECONFLICT, tripcap.EPRECONDITION, tripcap.ELIMIT:
		return true
	}
	return false
}

// File sends the file at path to target. See Uploader for what its errors
// mean.
func (u *Uploader) File(ctx context.Context, target *tripcap.UploadTarget, path string, progress func(n int64)) error {
	if target == nil {
		return tripcap.Errorf(tripcap.EINVALID, "upload %s: no target", path)
	}
	if err := target.Validate(); err != nil {
		return fmt.Errorf("upload %s: %w", path, err)
	}
	if target.Kind == tripcap.UploadServer {
		return tripcap.Errorf(tripcap.EINVALID, "upload %s: a %q target is sent through the server (Sender), not by the Uploader", path, target.Kind)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("upload %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload %s: %w", path, err)
	}
	if st.Size() != target.Size {
		return tripcap.Errorf(tripcap.EINVALID, "upload %s: the file has %d bytes but the target was prepared for %d", path, st.Size(), target.Size)
	}
	var done int64
	for n := 1; n <= target.Parts(); n++ {
		if target.IsDone(n) {
			_, l := target.PartRange(n)
			done += l
		}
	}
	if progress != nil {
		progress(done)
	}
	for n := 1; n <= target.Parts(); n++ {
		if target.IsDone(n) {
			continue
		}
		if err := u.part(ctx, target, f, n); err != nil {
			return fmt.Errorf("upload %s: %w", path, err)
		}
		_, l := target.PartRange(n)
		done += l
		if progress != nil {
			progress(done)
		}
	}
	return nil
}

// part sends part n, retrying what may pass.
func (u *Uploader) part(ctx context.Context, t *tripcap.UploadTarget, f *os.File, n int) error {
	off, length := t.PartRange(n)
	// Content-MD5 lets the storage reject a part damaged in transit, so the
	// end-to-end SHA-256 check should never be what catches it.
	h := md5.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, off, length)); err != nil {
		return fmt.Errorf("read part %d: %w", n, err)
	}
	sum := base64.StdEncoding.EncodeToString(h.Sum(nil))

	attempts := u.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	minB, maxB := u.MinBackoff, u.MaxBackoff
	if minB <= 0 {
		minB = DefaultMinBackoff
	}
	if maxB <= 0 {
		maxB = DefaultMaxBackoff
	}
	backoff := tripcap.Backoff{Min: minB, Max: maxB}
	var last, lastAnswer error
	for attempt := 1; ; attempt++ {
		if time.Now().After(t.ExpiresAt) {
			return tripcap.Errorf(tripcap.EUNAVAILABLE, "part %d: the upload target expired at %s; ask the server for a new one (resume %s)", n, t.ExpiresAt.Format(time.RFC3339), t.UploadID)
		}
		err := u.send(ctx, t, f, n, off, length, sum)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("part %d: %w", n, ctx.Err())
		}
		var te *transient
		if !errors.As(err, &te) {
			return fmt.Errorf("part %d: %w", n, err)
		}
		last = te.err
		if te.answered {
			lastAnswer = te.err
		}
		if attempt >= attempts {
			break
		}
		if !tripcap.Sleep(ctx, backoff.Next()) {
			return fmt.Errorf("part %d: %w", n, ctx.Err())
		}
	}
	if lastAnswer != nil && lastAnswer != last {
		return tripcap.Errorf(tripcap.EUNAVAILABLE, "part %d: storage unavailable after %d attempts: %v (its last answer: %v)", n, attempts, last, lastAnswer)
	}
	return tripcap.Errorf(tripcap.EUNAVAILABLE, "part %d: storage unavailable after %d attempts: %v", n, attempts, last)
}

// transient marks a failure worth retrying.
type transient struct {
	err error
	// answered is set when the storage itself answered (a 5xx, 429…), as
	// opposed to a network error: its answer says more than a reset does.
	answered bool
}

func (t *transient) Error() string { return t.err.Error() }

// send makes one attempt at part n.
func (u *Uploader) send(ctx context.Context, t *tripcap.UploadTarget, f *os.File, n int, off, length int64, md5sum string) error {
	timeout := u.PartTimeout
	if timeout <= 0 {
		timeout = DefaultPartTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var target string
	header := http.Header{"Content-Md5": {md5sum}}
	backend := "s3"
	switch t.Kind {
	case tripcap.UploadS3Multipart:
		target = t.PartURLs[n-1]
	case tripcap.UploadAzureBlocks:
		backend = "azure"
		bu, err := url.Parse(t.URL)
		if err != nil {
			return tripcap.Errorf(tripcap.EINVALID, "upload target url: %v", err)
		}
		q := bu.Query()
		version := q.Get("sv")
		if version == "" {
			version = azureVersion
		}
		// Appended raw: re-encoding the SAS query could change the bytes
		// that were signed.
		target = t.URL + "&comp=block&blockid=" + url.QueryEscape(t.BlockID(n))
		if bu.RawQuery == "" {
			target = t.URL + "?comp=block&blockid=" + url.QueryEscape(t.BlockID(n))
		}
		header.Set("x-ms-version", version)
	}
	body := func() io.ReadCloser { return io.NopCloser(io.NewSectionReader(f, off, length)) }
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, target, body())
	if err != nil {
		return tripcap.Errorf(tripcap.EINVALID, "%s part %d: bad URL %s: %v", backend, n, tripcap.RedactURL(target), err)
	}
	req.Header = header
	req.ContentLength = length
	req.GetBody = func() (io.ReadCloser, error) { return body(), nil }
	if length == 0 {
		req.Body = http.NoBody
	}
	client := u.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = tripcap.RedactURL(ue.URL)
		}
		return &transient{err: err}
	}
	defer resp.Body.Close()
	// S3 answers 200, Azure 201.
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil
	}
	return statusError(backend, n, resp, t.ExpiresAt)
}

// statusError turns a refusal into an error carrying the backend's code and
// message, classified for IsPermanent.
func statusError(backend string, n int, resp *http.Response, expires time.Time) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	var body struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	_ = xml.NewDecoder(bytes.NewReader(raw)).Decode(&body)
	code := resp.Header.Get("x-ms-error-code")
	if code == "" {
		code = body.Code
	}
	msg := strings.TrimSpace(body.Message)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i] // Azure appends the request id and time on new lines
	}
	if msg == "" {
		msg = strings.TrimSpace(string(raw))
		if len(msg) > 200 {
			msg = msg[:200]
		}
	}
	text := fmt.Sprintf("%s storage refused part %d: HTTP %d", backend, n, resp.StatusCode)
	if code != "" {
		text += " " + code
	}
	if msg != "" {
		text += ": " + msg
	}
	switch s := resp.StatusCode; {
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		return &transient{err: errors.New(text), answered: true}
	case (s == http.StatusUnauthorized || s == http.StatusForbidden) && time.Now().After(expires):
		// The signature expired while the part was under way: a new target
		// fixes it, so it is no reason to fail the capture.
		return tripcap.Errorf(tripcap.EUNAVAILABLE, "%s (the upload target expired at %s; ask the server for a new one)", text, expires.Format(time.RFC3339))
	case s == http.StatusUnauthorized:
		return tripcap.Errorf(tripcap.EUNAUTHORIZED, "%s", text)
	case s == http.StatusForbidden:
		return tripcap.Errorf(tripcap.EFORBIDDEN, "%s", text)
	case s == http.StatusNotFound:
		return tripcap.Errorf(tripcap.ENOTFOUND, "%s", text)
	case s == http.StatusConflict:
		return tripcap.Errorf(tripcap.ECONFLICT, "%s", text)
	}
	return tripcap.Errorf(tripcap.EINVALID, "%s", text)
}
