package s3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/tripcap/tripcap"
)

// partLimits keep within S3's limits: at most 10,000 parts, each but the
// last at least 5 MiB and at most 5 GiB.
var partLimits = tripcap.PartLimits{Backend: "S3", MinPart: minPartSize, MaxParts: maxParts, MaxPart: maxPartSize}

// PrepareUpload starts a multipart upload of size bytes to key and presigns a
// PUT URL for every part, valid for ttl (S3 allows at most 7 days). With
// resumeID, the UploadID of an earlier target, it lists the parts S3 already
// holds and reports those of the expected size in DoneParts; when that
// upload is gone (aborted, expired by a lifecycle rule, or completed), it
// starts a new one under a new UploadID.
func (s *Store) PrepareUpload(ctx context.Context, key string, size int64, resumeID string, ttl time.Duration) (*tripcap.UploadTarget, error) {
	if err := tripcap.CheckUploadRequest(key, size, ttl, maxPresign); err != nil {
		return nil, err
	}
	ps, err := tripcap.PartSize(size, s.partSize, partLimits)
	if err != nil {
		return nil, err
	}
	t := &tripcap.UploadTarget{Kind: tripcap.UploadS3Multipart, Size: size, PartSize: ps}
	object := s.prefix + key
	if resumeID != "" {
		parts, err := s.listParts(ctx, object, resumeID)
		switch {
		case err == nil:
			t.UploadID = resumeID
			for n := 1; n <= t.Parts(); n++ {
				if p, ok := parts[n]; ok && p.Size == partLen(t, n) {
					t.DoneParts = append(t.DoneParts, n)
				}
			}
		case tripcap.ErrorCode(err) == tripcap.ENOTFOUND:
			// Start afresh below.
		default:
			return nil, err
		}
	}
	if t.UploadID == "" {
		id, err := s.core.NewMultipartUpload(ctx, s.bucket, object, minio.PutObjectOptions{ContentType: "application/octet-stream"})
		if err != nil {
			return nil, s3Error("start upload of "+key, err)
		}
		t.UploadID = id
	}
	t.ExpiresAt = time.Now().Add(ttl)
	t.PartURLs = make([]string, t.Parts())
	for n := range t.PartURLs {
		// Content-Length is signed: storage refuses a part of any other
		// length, so a target bounds what an agent can store with it.
		u, err := s.client.PresignHeader(ctx, "PUT", s.bucket, object, ttl, url.Values{
			"partNumber": {strconv.Itoa(n + 1)},
			"uploadId":   {t.UploadID},
		}, http.Header{"Content-Length": {strconv.FormatInt(partLen(t, n+1), 10)}})
		if err != nil {
			return nil, s3Error(fmt.Sprintf("presign part %d of %s", n+1, key), err)
		}
		t.PartURLs[n] = u.String()
	}
	return t, nil
}

func partLen(t *tripcap.UploadTarget, n int) int64 {
	_, l := t.PartRange(n)
	return l
}

// listParts returns the parts S3 holds for an upload, by part number.
func (s *Store) listParts(ctx context.Context, object, uploadID string) (map[int]minio.ObjectPart, error) {
	parts := make(map[int]minio.ObjectPart)
	marker := 0
	for {
		res, err := s.core.ListObjectParts(ctx, s.bucket, object, uploadID, marker, 1000)
		if err != nil {
			return nil, s3Error("list parts of upload "+uploadID, err)
		}
		for _, p := range res.ObjectParts {
			parts[p.PartNumber] = p
		}
		if !res.IsTruncated || res.NextPartNumberMarker <= marker {
			return parts, nil
		}
		marker = res.NextPartNumberMarker
	}
}

func checkTarget(key string, t *tripcap.UploadTarget) error {
	if err := tripcap.CheckStorageKey(key); err != nil {
		return err
	}
	if t == nil || t.Kind != tripcap.UploadS3Multipart || t.UploadID == "" {
		return tripcap.Errorf(tripcap.EINVALID, "upload target for %s is not an s3-multipart upload with an uploadId", key)
	}
	return nil
}

// CompleteUpload lists the upload's parts (the agent reports none), checks
// that every part is there in full, completes the upload with their ETags,
// then reads the object back to compute its SHA-256. A SHA-256 that differs
// from sha256 (when given) deletes the object: a corrupt capture is worse
// than a missing one, and the agent still has the file.
func (s *Store) CompleteUpload(ctx context.Context, key string, t *tripcap.UploadTarget, sha256 string) (tripcap.ObjectInfo, error) {
	if err := checkTarget(key, t); err != nil {
		return tripcap.ObjectInfo{}, err
	}
	object := s.prefix + key
	parts, err := s.listParts(ctx, object, t.UploadID)
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
		// Completed before (the server restarted before it recorded so)? The
		// stored object then proves it; verify it like a fresh one.
		// An object that does not match is left alone: it is not this
		// upload's to delete.
		gone := tripcap.Errorf(tripcap.ENOTFOUND, "s3 upload %s of %s no longer exists (aborted or expired): %s", t.UploadID, key, tripcap.ErrorMessage(err))
		st, serr := s.client.StatObject(ctx, s.bucket, object, minio.StatObjectOptions{})
		if serr != nil || st.Size != t.Size {
			return tripcap.ObjectInfo{}, gone
		}
		info, verr := s.verify(ctx, key, t.Size, sha256, false)
		if tripcap.ErrorCode(verr) == tripcap.EPRECONDITION {
			return tripcap.ObjectInfo{}, gone
		}
		return info, verr
	}
	if err != nil {
		return tripcap.ObjectInfo{}, err
	}
	complete := make([]minio.CompletePart, 0, t.Parts())
	for n := 1; n <= t.Parts(); n++ {
		p, ok := parts[n]
		if !ok {
			return tripcap.ObjectInfo{}, tripcap.Errorf(tripcap.EPRECONDITION, "s3 upload of %s: part %d of %d was never uploaded", key, n, t.Parts())
		}
		if want := partLen(t, n); p.Size != want {
			return tripcap.ObjectInfo{}, tripcap.Errorf(tripcap.EPRECONDITION, "s3 upload of %s: part %d holds %d bytes, want %d", key, n, p.Size, want)
		}
		complete = append(complete, minio.CompletePart{PartNumber: n, ETag: p.ETag})
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.bucket, object, t.UploadID, complete, minio.PutObjectOptions{}); err != nil {
		return tripcap.ObjectInfo{}, s3Error("complete upload of "+key, err)
	}
	return s.verify(ctx, key, t.Size, sha256, true)
}

// verify reads the stored object back and checks its size and SHA-256. The
// read costs a download of the object to the server, once; in exchange the
// recorded checksum is that of the bytes the store holds, not of what some
// client claims it sent.
func (s *Store) verify(ctx context.Context, key string, size int64, want string, deleteBad bool) (tripcap.ObjectInfo, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return tripcap.ObjectInfo{}, s3Error("verify "+key, err)
	}
	defer obj.Close()
	st, err := obj.Stat()
	if err != nil {
		return tripcap.ObjectInfo{}, s3Error("verify "+key, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, obj)
	if err != nil {
		return tripcap.ObjectInfo{}, s3Error("verify "+key, err)
	}
	info := tripcap.ObjectInfo{Key: key, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), ModTime: st.LastModified}
	if n != size || (want != "" && info.SHA256 != want) {
		if !deleteBad {
			return info, tripcap.Errorf(tripcap.EPRECONDITION, "s3 object %s: %d bytes with SHA-256 %s, want %d bytes with SHA-256 %s", key, n, info.SHA256, size, want)
		}
		if err := s.Delete(ctx, key); err != nil {
			return info, fmt.Errorf("delete corrupt upload of %s: %w", key, err)
		}
		return info, tripcap.Errorf(tripcap.EPRECONDITION, "s3 upload of %s: stored %d bytes with SHA-256 %s, want %d bytes with SHA-256 %s; deleted it", key, n, info.SHA256, size, want)
	}
	return info, nil
}

// AbortUpload discards the upload and its parts. An upload already gone is
// not an error.
func (s *Store) AbortUpload(ctx context.Context, key string, t *tripcap.UploadTarget) error {
	if err := checkTarget(key, t); err != nil {
		return err
	}
	err := s.core.AbortMultipartUpload(ctx, s.bucket, s.prefix+key, t.UploadID)
	if err != nil && !isCode(err, "NoSuchUpload") {
		return s3Error("abort upload of "+key, err)
	}
	return nil
}
