// Package s3 keeps capture files in an S3 bucket (AWS S3 or any S3-compatible
// server: MinIO, versitygw, Ceph RGW, …) through minio-go:
//
//	s3://BUCKET/PREFIX?endpoint=HOST:PORT&region=REGION&insecure=true
//
// Credentials come from the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN; or MINIO_ACCESS_KEY,
// MINIO_SECRET_KEY), the AWS shared credentials file, or the server's
// configuration through OpenWith. The store also lets agents upload directly
// with presigned multipart URLs (tripcap.DirectUploads).
package s3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/tripcap/tripcap"
)

// DefaultPartSize is the size of the parts of multipart uploads, both the
// server's own (Put) and the agents' (PrepareUpload): big enough that a 1 GiB
// capture takes 128 requests, small enough to buffer and to resend.
const DefaultPartSize = 8 << 20

// S3 limits on multipart uploads.
const (
	minPartSize = 5 << 20
	maxParts    = 10000
	maxPartSize = 5 << 30
	maxPresign  = 7 * 24 * time.Hour
)

// Credentials is an explicit access key from the server's configuration.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// Store is a tripcap.BlobStore in one bucket, under one key prefix.
type Store struct {
	client   *minio.Client
	core     minio.Core
	bucket   string
	prefix   string // "" or ending in "/"
	region   string // "" on AWS when the URL names none: minio finds it
	partSize int64
}

var (
	_ tripcap.BlobStore     = (*Store)(nil)
	_ tripcap.DirectUploads = (*Store)(nil)
)

// config is a parsed s3:// URL.
type config struct {
	bucket, prefix string
	endpoint       string
	region         string
	secure         bool
	pathStyle      bool
}

func parseURL(rawURL string) (config, error) {
	var c config
	u, err := url.Parse(rawURL)
	if err != nil {
		return c, tripcap.Errorf(tripcap.EINVALID, "storage URL: %v", err)
	}
	if u.Scheme != "s3" {
		return c, tripcap.Errorf(tripcap.EINVALID, "storage URL %q: scheme must be s3", tripcap.RedactURL(u.String()))
	}
	if u.User != nil {
		return c, tripcap.Errorf(tripcap.EINVALID, "storage URL %q: credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", tripcap.RedactURL(u.String()))
	}
	c.bucket = u.Host
	if c.bucket == "" {
		return c, tripcap.Errorf(tripcap.EINVALID, "storage URL %q: bucket is missing (s3://BUCKET/PREFIX)", tripcap.RedactURL(u.String()))
	}
	if err := s3utils.CheckValidBucketNameStrict(c.bucket); err != nil {
		return c, tripcap.Errorf(tripcap.EINVALID, "storage URL %q: bucket %q: %v", tripcap.RedactURL(u.String()), c.bucket, err)
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		if err := tripcap.CheckStorageKey(p); err != nil {
			return c, tripcap.Errorf(tripcap.EINVALID, "storage URL %q: prefix %q is not a clean relative path", tripcap.RedactURL(u.String()), p)
		}
		c.prefix = p + "/"
	}
	q := u.Query()
	for name := range q {
		switch name {
		case "endpoint", "region", "insecure":
		default:
			return c, tripcap.Errorf(tripcap.EINVALID, "storage URL %q: unknown parameter %q (want endpoint, region, insecure)", tripcap.RedactURL(u.String()), name)
		}
	}
	c.secure = true
	if v := q.Get("insecure"); v != "" {
		insecure, err := strconv.ParseBool(v)
		if err != nil {
			return c, tripcap.Errorf(tripcap.EINVALID, "storage URL %q: insecure=%q is not a boolean", tripcap.RedactURL(u.String()), v)
		}
		c.secure = !insecure
	}
	c.endpoint = q.Get("endpoint")
	if strings.Contains(c.endpoint, "://") {
		// Accept a full URL too; its scheme says whether to use TLS.
		eu, err := url.Parse(c.endpoint)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" || strings.Trim(eu.Path, "/") != "" {
			return c, tripcap.Errorf(tripcap.EINVALID, "storage URL %q: endpoint %q must be HOST[:PORT] or http(s)://HOST[:PORT]", tripcap.RedactURL(u.String()), c.endpoint)
		}
		c.endpoint, c.secure = eu.Host, eu.Scheme == "https"
	}
	if c.endpoint != "" && strings.ContainsAny(c.endpoint, "/?#@ ") {
		return c, tripcap.Errorf(tripcap.EINVALID, "storage URL %q: endpoint %q must be HOST[:PORT]", tripcap.RedactURL(u.String()), c.endpoint)
	}
	c.region = q.Get("region")
	aws := c.endpoint == "" || s3utils.IsAmazonEndpoint(url.URL{Host: c.endpoint})
	if c.endpoint == "" {
		c.endpoint = "s3.amazonaws.com"
	}
	// Other servers seldom have wildcard DNS for virtual-host buckets, and
	// need a region for signing that no bucket-location lookup should guess.
	c.pathStyle = !aws
	if c.region == "" && !aws {
		c.region = "us-east-1"
	}
	return c, nil
}

// Open connects to the bucket that rawURL names, with credentials from the
// environment, and creates the bucket if it is missing.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	return OpenWith(ctx, rawURL, Credentials{})
}

// OpenWith is Open with credentials from the server's configuration; a zero
// Credentials means the environment's: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
// (AWS_SESSION_TOKEN), then MINIO_ACCESS_KEY/MINIO_SECRET_KEY (or
// MINIO_ROOT_USER/MINIO_ROOT_PASSWORD), then the AWS shared credentials file.
// Instance metadata (IAM roles) is not consulted: it would probe a link-local
// address on every host that has no keys.
func OpenWith(ctx context.Context, rawURL string, creds Credentials) (*Store, error) {
	s, err := newStore(rawURL, creds)
	if err != nil {
		return nil, err
	}
	// Check the endpoint and the credentials now, so that a wrong
	// configuration fails at start-up rather than at the first capture.
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return nil, s3Error(fmt.Sprintf("open bucket %s at %s", s.bucket, s.client.EndpointURL().Host), err)
	}
	if !ok {
		if err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region}); err != nil {
			return nil, s3Error(fmt.Sprintf("create missing bucket %s", s.bucket), err)
		}
	}
	return s, nil
}

// newStore builds the client without any request.
func newStore(rawURL string, creds Credentials) (*Store, error) {
	c, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	var cr *credentials.Credentials
	if creds.AccessKeyID != "" || creds.SecretAccessKey != "" {
		if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
			return nil, tripcap.Errorf(tripcap.EINVALID, "s3 credentials: both the access key id and the secret access key are needed")
		}
		cr = credentials.NewStaticV4(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)
	} else {
		cr = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.EnvMinio{}, &credentials.FileAWSCredentials{},
		})
		if v, _ := cr.GetWithContext(nil); v.SignerType.IsAnonymous() {
			return nil, tripcap.Errorf(tripcap.EINVALID, "s3 credentials: none found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or MINIO_ACCESS_KEY and MINIO_SECRET_KEY)")
		}
	}
	lookup := minio.BucketLookupAuto
	if c.pathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(c.endpoint, &minio.Options{
		Creds:        cr,
		Secure:       c.secure,
		Region:       c.region,
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "storage URL: endpoint %q: %v", c.endpoint, err)
	}
	return &Store{client: client, core: minio.Core{Client: client}, bucket: c.bucket, prefix: c.prefix, region: c.region, partSize: DefaultPartSize}, nil
}

// s3Error says what failed, keeping S3's code and message, and gives
// refusals and missing things their tripcap codes so that callers can tell a
// wrong configuration (StorageFailed) from a passing fault.
func s3Error(op string, err error) error {
	if err == nil {
		return nil
	}
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) || resp.StatusCode == 0 {
		return fmt.Errorf("s3 %s: %w", op, err)
	}
	msg := fmt.Sprintf("s3 %s: HTTP %d %s: %s", op, resp.StatusCode, resp.Code, resp.Message)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return tripcap.Errorf(tripcap.EFORBIDDEN, "%s", msg)
	case resp.Code == "NoSuchKey" || resp.Code == "NoSuchBucket" || resp.Code == "NoSuchUpload" || resp.StatusCode == http.StatusNotFound:
		return tripcap.Errorf(tripcap.ENOTFOUND, "%s", msg)
	case resp.StatusCode >= 500:
		return tripcap.Errorf(tripcap.EUNAVAILABLE, "%s", msg)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

func isCode(err error, code string) bool {
	var resp minio.ErrorResponse
	return errors.As(err, &resp) && resp.Code == code
}

// Put streams r to the bucket, in parts of DefaultPartSize when it is larger
// than one part, and returns the SHA-256 of the bytes sent. Memory use is one
// part whatever the object's size.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (tripcap.ObjectInfo, error) {
	if err := tripcap.CheckStorageKey(key); err != nil {
		return tripcap.ObjectInfo{}, err
	}
	h := sha256.New()
	up, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, io.TeeReader(r, h), -1, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    uint64(s.partSize),
		NumThreads:  1,
	})
	if err != nil {
		return tripcap.ObjectInfo{}, s3Error("put "+key, err)
	}
	info := tripcap.ObjectInfo{Key: key, Size: up.Size, SHA256: hex.EncodeToString(h.Sum(nil)), ModTime: up.LastModified}
	if info.ModTime.IsZero() {
		// Multipart completions carry no date; ask, so that ModTime is the
		// store's like the other backends'.
		st, err := s.client.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{})
		if err != nil {
			return tripcap.ObjectInfo{}, s3Error("stat "+key, err)
		}
		info.ModTime, info.Size = st.LastModified, st.Size
	}
	return info, nil
}

// Open returns minio's object reader, which fetches ranges as it is read and
// seeked. The SHA-256 is not recomputed: the capture records it.
func (s *Store) Open(ctx context.Context, key string) (io.ReadSeekCloser, tripcap.ObjectInfo, error) {
	if err := tripcap.CheckStorageKey(key); err != nil {
		return nil, tripcap.ObjectInfo{}, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, tripcap.ObjectInfo{}, s3Error("open "+key, err)
	}
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		if isCode(err, "NoSuchKey") {
			return nil, tripcap.ObjectInfo{}, tripcap.Errorf(tripcap.ENOTFOUND, "no stored file %q", key)
		}
		return nil, tripcap.ObjectInfo{}, s3Error("open "+key, err)
	}
	return obj, tripcap.ObjectInfo{Key: key, Size: st.Size, ModTime: st.LastModified}, nil
}

// Delete removes the object; S3 answers absent objects with success too.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := tripcap.CheckStorageKey(key); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil && !isCode(err, "NoSuchKey") {
		return s3Error("delete "+key, err)
	}
	return nil
}

// URL is s3://BUCKET/PREFIX/KEY, the form the AWS CLI and SDKs take, rather
// than the endpoint's URL, which only works with a signature anyway.
func (s *Store) URL(key string) string {
	return "s3://" + s.bucket + "/" + s.prefix + key
}
