package blobtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/capturefile"
)

// Direct is a store that agents can upload to directly.
type Direct interface {
	tripcap.BlobStore
	tripcap.DirectUploads
}

// Restartable is a storage server a test can stop and start again with the
// same address and data (*Server is one).
type Restartable interface {
	Stop()
	Start() error
}

// DirectUploads runs the direct-upload tests against a store on a real
// server: a file of several parts sent with capturefile.UploadParts and committed
// with CompleteUpload, byte-identical and SHA-256 verified; resume after an
// interruption without resending done parts; the storage server stopped
// mid-upload and started again; abort; incomplete and corrupt uploads; an
// expired target; a tampered signature (permanent, with the backend's error
// code, which must contain wantDenied). kind is the UploadTarget kind the
// store hands out.
func DirectUploads(t *testing.T, s Direct, srv Restartable, kind, wantDenied string) {
	dir := "direct-" + randomString(4)
	ctx := Context(t, 80*time.Second)
	tmp := t.TempDir()
	const size = 20<<20 + 4321 // three parts of 8 MiB, the last one short
	data := RandomBytes(10, size)
	path := filepath.Join(tmp, "capture.cap")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := SHA256(data)

	prepare := func(t *testing.T, key, resume string, ttl time.Duration) *tripcap.UploadTarget {
		t.Helper()
		tg, err := s.PrepareUpload(ctx, key, size, resume, ttl)
		if err != nil {
			t.Fatalf("PrepareUpload(%s, resume %q): %v", key, resume, err)
		}
		if tg.Kind != kind || tg.Size != size || tg.UploadID == "" {
			t.Fatalf("PrepareUpload = kind %q size %d upload id %q; want kind %q size %d and an id", tg.Kind, tg.Size, tg.UploadID, kind, size)
		}
		if err := tg.Validate(); err != nil {
			t.Fatalf("PrepareUpload returned an invalid target: %v", err)
		}
		return tg
	}
	complete := func(t *testing.T, key string, tg *tripcap.UploadTarget) {
		t.Helper()
		info, err := s.CompleteUpload(ctx, key, tg, sum)
		if err != nil {
			t.Fatalf("CompleteUpload: %v", err)
		}
		if info.Key != key || info.Size != size || info.SHA256 != sum {
			t.Fatalf("CompleteUpload = %+v, want key %s size %d sha256 %s", info, key, size, sum)
		}
		got, _ := readAll(t, ctx, s, key)
		if !bytes.Equal(got, data) {
			t.Fatalf("stored object: %d bytes with SHA-256 %s, want the file's %d bytes with %s", len(got), SHA256(got), size, sum)
		}
	}
	// interrupted sends the file until part 1 is stored, then cancels, as
	// an agent killed mid-upload would stop.
	interrupted := func(t *testing.T, tg *tripcap.UploadTarget) *Recorder {
		t.Helper()
		rec := NewRecorder(nil)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		err := capturefile.UploadParts(cctx, rec.Client(), tg, path, func(n int64) {
			if n >= tg.PartSize {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) || capturefile.IsPermanent(err) {
			t.Fatalf("interrupted upload = %v, want a context.Canceled error, not permanent", err)
		}
		if got := rec.Stored(); !slices.Equal(got, []int{1}) {
			t.Fatalf("interrupted upload stored parts %v, want [1]", got)
		}
		return rec
	}

	t.Run("Parts", func(t *testing.T) {
		key := dir + "/parts.cap"
		tg := prepare(t, key, "", 10*time.Minute)
		if tg.Parts() != 3 || len(tg.DoneParts) != 0 {
			t.Fatalf("target has %d parts, done %v; want 3 parts, none done", tg.Parts(), tg.DoneParts)
		}
		if d := time.Until(tg.ExpiresAt); d < 9*time.Minute || d > 11*time.Minute {
			t.Errorf("target expires in %s, want about 10m", d)
		}
		rec := NewRecorder(nil)
		var progress []int64
		if err := capturefile.UploadParts(ctx, rec.Client(), tg, path, func(n int64) { progress = append(progress, n) }); err != nil {
			t.Fatalf("UploadParts: %v", err)
		}
		if got := rec.Stored(); !slices.Equal(got, []int{1, 2, 3}) {
			t.Errorf("parts stored %v, want [1 2 3]", got)
		}
		if n := rec.Requests(); n != 3 {
			t.Errorf("%d requests for 3 parts, want 3", n)
		}
		if want := []int64{0, tg.PartSize, 2 * tg.PartSize, size}; !slices.Equal(progress, want) {
			t.Errorf("progress %v, want %v", progress, want)
		}
		complete(t, key, tg)
		// The server may complete again after a restart: same answer.
		info, err := s.CompleteUpload(ctx, key, tg, sum)
		if err != nil || info.SHA256 != sum || info.Size != size {
			t.Errorf("second CompleteUpload = %+v, %v; want the same object", info, err)
		}
	})

	t.Run("Resume", func(t *testing.T) {
		key := dir + "/resume.cap"
		tg := prepare(t, key, "", 10*time.Minute)
		interrupted(t, tg)
		// The agent keeps the target beside the spooled file across its
		// restart.
		saved, err := json.Marshal(tg)
		if err != nil {
			t.Fatal(err)
		}
		var kept tripcap.UploadTarget
		if err := json.Unmarshal(saved, &kept); err != nil {
			t.Fatal(err)
		}
		again := prepare(t, key, kept.UploadID, 10*time.Minute)
		if again.UploadID != tg.UploadID || !slices.Equal(again.DoneParts, []int{1}) {
			t.Fatalf("resumed target: upload id %q done %v; want %q with [1] done", again.UploadID, again.DoneParts, tg.UploadID)
		}
		rec := NewRecorder(nil)
		var first int64 = -1
		if err := capturefile.UploadParts(ctx, rec.Client(), again, path, func(n int64) {
			if first < 0 {
				first = n
			}
		}); err != nil {
			t.Fatalf("resumed UploadParts: %v", err)
		}
		if got := rec.Sent(); !slices.Equal(got, []int{2, 3}) {
			t.Errorf("resumed upload sent parts %v, want [2 3] only", got)
		}
		if first != tg.PartSize {
			t.Errorf("resumed upload's first progress = %d, want %d (part 1 already stored)", first, tg.PartSize)
		}
		complete(t, key, again)
	})

	t.Run("StorageRestart", func(t *testing.T) {
		key := dir + "/restart.cap"
		tg := prepare(t, key, "", 10*time.Minute)
		rec := NewRecorder(nil)
		restarted := make(chan error, 1)
		stopped := false
		err := capturefile.UploadParts(ctx, rec.Client(), tg, path, func(n int64) {
			if n >= tg.PartSize && !stopped {
				// Storage goes away between parts 1 and 2 and comes back
				// 1.5 s later; the uploader must ride it out.
				stopped = true
				srv.Stop()
				go func() {
					time.Sleep(1500 * time.Millisecond)
					restarted <- srv.Start()
				}()
			}
		})
		if !stopped {
			t.Fatal("the storage server was never stopped")
		}
		if serr := <-restarted; serr != nil {
			t.Fatalf("restart storage: %v", serr)
		}
		if err != nil {
			t.Fatalf("UploadParts across a storage restart: %v", err)
		}
		if got := rec.Stored(); !slices.Equal(got, []int{1, 2, 3}) {
			t.Errorf("parts stored %v, want each of [1 2 3] once", got)
		}
		if rec.Failures() == 0 {
			t.Errorf("no request failed while the storage was down: the test did not test")
		}
		complete(t, key, tg)
	})

	t.Run("Abort", func(t *testing.T) {
		key := dir + "/abort.cap"
		tg := prepare(t, key, "", 10*time.Minute)
		interrupted(t, tg)
		if err := s.AbortUpload(ctx, key, tg); err != nil {
			t.Fatalf("AbortUpload: %v", err)
		}
		if err := s.AbortUpload(ctx, key, tg); err != nil {
			t.Errorf("second AbortUpload = %v, want nil", err)
		}
		if _, _, err := s.Open(ctx, key); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
			t.Errorf("Open after AbortUpload = %v, want ENOTFOUND", err)
		}
		again := prepare(t, key, tg.UploadID, 10*time.Minute)
		if len(again.DoneParts) != 0 {
			t.Errorf("resuming an aborted upload reports parts %v done, want none", again.DoneParts)
		}
		if err := s.AbortUpload(ctx, key, again); err != nil {
			t.Errorf("AbortUpload: %v", err)
		}
	})

	t.Run("Incomplete", func(t *testing.T) {
		key := dir + "/incomplete.cap"
		tg := prepare(t, key, "", 10*time.Minute)
		interrupted(t, tg)
		_, err := s.CompleteUpload(ctx, key, tg, sum)
		if tripcap.ErrorCode(err) != tripcap.EPRECONDITION || !strings.Contains(tripcap.ErrorMessage(err), "part 2") {
			t.Errorf("CompleteUpload with parts 2 and 3 missing = %v, want EPRECONDITION naming part 2", err)
		}
		if _, _, err := s.Open(ctx, key); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
			t.Errorf("Open after a refused CompleteUpload = %v, want ENOTFOUND", err)
		}
		if err := s.AbortUpload(ctx, key, tg); err != nil {
			t.Errorf("AbortUpload: %v", err)
		}
	})

	t.Run("ChecksumMismatch", func(t *testing.T) {
		key := dir + "/mismatch.cap"
		tg := prepare(t, key, "", 10*time.Minute)
		if err := capturefile.UploadParts(ctx, nil, tg, path, nil); err != nil {
			t.Fatalf("UploadParts: %v", err)
		}
		// The agent's recorded checksum says otherwise: the store must not
		// keep an object that differs from the capture.
		info, err := s.CompleteUpload(ctx, key, tg, SHA256([]byte("something else")))
		if tripcap.ErrorCode(err) != tripcap.EPRECONDITION || !strings.Contains(tripcap.ErrorMessage(err), sum) {
			t.Errorf("CompleteUpload with a wrong SHA-256 = %v, want EPRECONDITION naming the stored %s", err, sum)
		}
		if info.SHA256 != sum {
			t.Errorf("CompleteUpload info.SHA256 = %q, want the stored bytes' %s", info.SHA256, sum)
		}
		if _, _, err := s.Open(ctx, key); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
			t.Errorf("Open after a checksum mismatch = %v, want ENOTFOUND (deleted)", err)
		}
	})

	t.Run("Expired", func(t *testing.T) {
		key := dir + "/expired.cap"
		tg := prepare(t, key, "", time.Second)
		time.Sleep(time.Until(tg.ExpiresAt) + 100*time.Millisecond)
		rec := NewRecorder(nil)
		err := capturefile.UploadParts(ctx, rec.Client(), tg, path, nil)
		if err == nil || capturefile.IsPermanent(err) || tripcap.ErrorCode(err) != tripcap.EUNAVAILABLE || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("UploadParts with an expired target = %v, want a transient EUNAVAILABLE error saying it expired", err)
		}
		if rec.Requests() != 0 {
			t.Errorf("%d requests sent with an expired target, want none", rec.Requests())
		}
		// What the agent then does: ask again, resuming.
		again := prepare(t, key, tg.UploadID, 10*time.Minute)
		if err := capturefile.UploadParts(ctx, nil, again, path, nil); err != nil {
			t.Fatalf("UploadParts with a fresh target: %v", err)
		}
		complete(t, key, again)
	})

	t.Run("BadSignature", func(t *testing.T) {
		key := dir + "/denied.cap"
		tg := prepare(t, key, "", 10*time.Minute)
		bad := *tg
		bad.URL = spoilSignature(t, tg.URL)
		bad.PartURLs = nil
		for _, u := range tg.PartURLs {
			bad.PartURLs = append(bad.PartURLs, spoilSignature(t, u))
		}
		rec := NewRecorder(nil)
		err := capturefile.UploadParts(ctx, rec.Client(), &bad, path, nil)
		if !capturefile.IsPermanent(err) || !strings.Contains(tripcap.ErrorMessage(err), wantDenied) {
			t.Fatalf("UploadParts with a tampered signature = %v, want a permanent error naming %s", err, wantDenied)
		}
		// A server may refuse before reading the body and close the
		// connection, which the client can see as a network error first;
		// but once the refusal is read, nothing is sent again.
		if st := rec.Statuses(); slices.Index(st, 403) != len(st)-1 {
			t.Errorf("answers %v to requests with a tampered signature, want one 403, last: refusals are not retried", st)
		}
		if strings.Contains(err.Error(), "sig=") || strings.Contains(err.Error(), "Signature=") {
			t.Errorf("the error leaks the signature: %v", err)
		}
		t.Logf("error: %v", err)
		if err := s.AbortUpload(ctx, key, tg); err != nil {
			t.Errorf("AbortUpload: %v", err)
		}
	})

	t.Run("EmptyFile", func(t *testing.T) {
		key := dir + "/empty.cap"
		empty := filepath.Join(tmp, "empty.cap")
		if err := os.WriteFile(empty, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		tg, err := s.PrepareUpload(ctx, key, 0, "", time.Minute)
		if err != nil {
			t.Fatalf("PrepareUpload of an empty file: %v", err)
		}
		if err := capturefile.UploadParts(ctx, nil, tg, empty, nil); err != nil {
			t.Fatalf("UploadParts of an empty file: %v", err)
		}
		info, err := s.CompleteUpload(ctx, key, tg, SHA256(nil))
		if err != nil || info.Size != 0 || info.SHA256 != SHA256(nil) {
			t.Fatalf("CompleteUpload of an empty file = %+v, %v", info, err)
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		if _, err := s.PrepareUpload(ctx, "../x.cap", 10, "", time.Minute); tripcap.ErrorCode(err) != tripcap.EINVALID {
			t.Errorf("PrepareUpload of ../x.cap = %v, want EINVALID", err)
		}
		if _, err := s.PrepareUpload(ctx, dir+"/x.cap", -1, "", time.Minute); tripcap.ErrorCode(err) != tripcap.EINVALID {
			t.Errorf("PrepareUpload of size -1 = %v, want EINVALID", err)
		}
		if _, err := s.PrepareUpload(ctx, dir+"/x.cap", 10, "", 0); tripcap.ErrorCode(err) != tripcap.EINVALID {
			t.Errorf("PrepareUpload with ttl 0 = %v, want EINVALID", err)
		}
		if _, err := s.CompleteUpload(ctx, dir+"/x.cap", &tripcap.UploadTarget{Kind: "nonsense"}, ""); tripcap.ErrorCode(err) != tripcap.EINVALID {
			t.Errorf("CompleteUpload of a foreign target = %v, want EINVALID", err)
		}
		tg := prepare(t, dir+"/short.cap", "", time.Minute)
		short := filepath.Join(tmp, "short.cap")
		if err := os.WriteFile(short, data[:1000], 0o600); err != nil {
			t.Fatal(err)
		}
		err := capturefile.UploadParts(ctx, nil, tg, short, nil)
		if !capturefile.IsPermanent(err) || tripcap.ErrorCode(err) != tripcap.EINVALID {
			t.Errorf("UploadParts of a file of another size = %v, want a permanent EINVALID", err)
		}
		_ = s.AbortUpload(ctx, dir+"/short.cap", tg)
	})
}

// spoilSignature flips one character of a presigned URL's signature (S3's
// X-Amz-Signature, Azure's sig), as a wrong or rotated key would.
func spoilSignature(t *testing.T, raw string) string {
	t.Helper()
	if raw == "" {
		return ""
	}
	for _, name := range []string{"&X-Amz-Signature=", "&sig=", "?sig="} {
		if i := strings.Index(raw, name); i >= 0 {
			j := i + len(name)
			c := byte('A')
			if raw[j] == 'A' {
				c = 'B'
			}
			return raw[:j] + string(c) + raw[j+1:]
		}
	}
	t.Fatalf("no signature in %s", raw)
	return ""
}

// Recorder counts the part requests an uploader sends, by part number (S3's
// partNumber, or the part in an Azure block id), through a real transport.
type Recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	sent []int // part of every request, in order
	ok   []int // parts the storage accepted, in order
	fail int   // requests that got no 2xx
	// status of every request, in order; 0 when no response came.
	status []int
}

// NewRecorder wraps next (nil: http.DefaultTransport).
func NewRecorder(next http.RoundTripper) *Recorder {
	if next == nil {
		next = http.DefaultTransport
	}
	return &Recorder{next: next}
}

// Client is an http.Client whose requests r records.
func (r *Recorder) Client() *http.Client { return &http.Client{Transport: r} }

// RoundTrip implements http.RoundTripper.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	part := partOf(req.URL)
	resp, err := r.next.RoundTrip(req)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, part)
	if err == nil {
		r.status = append(r.status, resp.StatusCode)
	} else {
		r.status = append(r.status, 0)
	}
	if err == nil && resp.StatusCode/100 == 2 {
		r.ok = append(r.ok, part)
	} else {
		r.fail++
	}
	return resp, err
}

func partOf(u *url.URL) int {
	q := u.Query()
	if n, err := strconv.Atoi(q.Get("partNumber")); err == nil {
		return n
	}
	if id, err := base64.StdEncoding.DecodeString(q.Get("blockid")); err == nil {
		if i := bytes.LastIndexByte(id, '-'); i >= 0 {
			if n, err := strconv.Atoi(string(id[i+1:])); err == nil {
				return n
			}
		}
	}
	return -1
}

// Requests is the number of requests sent.
func (r *Recorder) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

// Sent is the distinct parts requests were sent for, in order.
func (r *Recorder) Sent() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Compact(slices.Clone(r.sent))
}

// Stored is the parts the storage accepted, in order, with repeats.
func (r *Recorder) Stored() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ok)
}

// Statuses is the HTTP status of every request, 0 for those that got none.
func (r *Recorder) Statuses() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.status)
}

// Failures is the number of requests that got an error or no 2xx.
func (r *Recorder) Failures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fail
}

// String describes what was recorded, for failure messages.
func (r *Recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("sent %v, stored %v, statuses %v", r.sent, r.ok, r.status)
}

// DiskFull fills the storage server's disk (a SmallDisk holding its data)
// mid-upload: the uploader gives up with a transient error that carries the
// backend's message, not a permanent one, so the agent keeps the file; once
// space is freed, the upload resumes with the parts already stored and
// completes intact.
func DiskFull(t *testing.T, s Direct, disk string) {
	ctx := Context(t, 80*time.Second)
	const size = 20<<20 + 999
	data := RandomBytes(20, size)
	path := filepath.Join(t.TempDir(), "full.cap")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	key := "diskfull-" + randomString(4) + "/full.cap"
	tg, err := s.PrepareUpload(ctx, key, size, "", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Leave room for part 1 and a bit, not for part 2.
	var st syscall.Statfs_t
	if err := syscall.Statfs(disk, &st); err != nil {
		t.Fatal(err)
	}
	avail := int64(st.Bavail) * st.Bsize
	filler := filepath.Join(disk, "filler")
	if err := os.WriteFile(filler, make([]byte, avail-tg.PartSize-tg.PartSize/2), 0o600); err != nil {
		t.Fatalf("fill the disk: %v", err)
	}

	rec := NewRecorder(nil)
	u := &capturefile.Uploader{Client: rec.Client(), Attempts: 3, MinBackoff: 50 * time.Millisecond}
	err = u.File(ctx, tg, path, nil)
	if err == nil {
		t.Fatalf("upload to a full disk succeeded (%s)", rec)
	}
	if capturefile.IsPermanent(err) || tripcap.ErrorCode(err) != tripcap.EUNAVAILABLE {
		t.Errorf("upload to a full disk = %v, want a transient EUNAVAILABLE error", err)
	}
	if !strings.Contains(err.Error(), "HTTP 5") {
		t.Errorf("upload to a full disk = %v, want the storage's 5xx answer in the message", err)
	}
	t.Logf("disk full: %v (%s)", err, rec)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	again, err := s.PrepareUpload(ctx, key, size, tg.UploadID, 10*time.Minute)
	if err != nil {
		t.Fatalf("PrepareUpload to resume after the disk was freed: %v", err)
	}
	if !slices.Contains(again.DoneParts, 1) {
		t.Errorf("resumed target has parts %v done, want part 1, stored before the disk filled", again.DoneParts)
	}
	if err := capturefile.UploadParts(ctx, nil, again, path, nil); err != nil {
		t.Fatalf("upload after freeing the disk: %v", err)
	}
	info, err := s.CompleteUpload(ctx, key, again, SHA256(data))
	if err != nil || info.Size != size || info.SHA256 != SHA256(data) {
		t.Fatalf("CompleteUpload after a full disk = %+v, %v", info, err)
	}
	if got, _ := readAll(t, ctx, s, key); !bytes.Equal(got, data) {
		t.Fatal("stored object differs from the file")
	}
}
