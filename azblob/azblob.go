// Package azblob keeps capture files in an Azure Blob Storage container (or
// Azurite) through the Azure SDK for Go:
//
//	azblob://ACCOUNT/CONTAINER/PREFIX?endpoint=URL
//
// CONTAINER defaults to network-watcher-logs, as in Azure Network Watcher.
// endpoint is the blob service URL, https://ACCOUNT.blob.core.windows.net by
// default (Azurite: http://127.0.0.1:10000/devstoreaccount1). The account
// key comes from the server's configuration (OpenWith), the URL's key
// parameter (discouraged: URLs end up in logs and process lists),
// AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_KEY, in that order. An
// account key is required because the store signs the SAS URLs that agents
// upload with (tripcap.DirectUploads).
package azblob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/tripcap/tripcap"
)

// DefaultContainer is where Azure Network Watcher keeps packet captures.
const DefaultContainer = "network-watcher-logs"

// DefaultPartSize is the size of the blocks of uploads, the server's own
// (Put) and the agents' (PrepareUpload).
const DefaultPartSize = 8 << 20

// Azure limits on block blobs.
const (
	maxBlocks    = 50000
	maxBlockSize = 4000 << 20
)

// The emulator's well-known account, which UseDevelopmentStorage=true means.
const (
	devAccount  = "devstoreaccount1"
	devKey      = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	devEndpoint = "http://127.0.0.1:10000/devstoreaccount1"
)

// Credentials come from the server's configuration: a connection string or
// an account key.
type Credentials struct {
	ConnectionString string
	AccountKey       string
}

// Store is a tripcap.BlobStore in one container, under one name prefix.
type Store struct {
	container     *container.Client
	cred          *blob.SharedKeyCredential
	containerName string
	prefix        string // "" or ending in "/"
	insecure      bool   // http endpoint (Azurite): SAS must allow http
	partSize      int64
}

var (
	_ tripcap.BlobStore     = (*Store)(nil)
	_ tripcap.DirectUploads = (*Store)(nil)
)

type config struct {
	account, container, prefix string
	endpoint                   string // blob service URL, no trailing slash
	key                        string // from the URL, discouraged
}

var (
	accountName   = regexp.MustCompile(`^[a-z0-9]{3,24}$`)
	containerName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
)

func parseURL(rawURL string) (config, error) {
	var c config
	u, err := url.Parse(rawURL)
	if err != nil {
		return c, tripcap.Errorf(tripcap.EINVALID, "storage URL: %v", err)
	}
	if u.Scheme != "azblob" {
		return c, tripcap.Errorf(tripcap.EINVALID, "storage URL %q: scheme must be azblob", tripcap.RedactURL(u.String()))
	}
	c.account = u.Host
	if !accountName.MatchString(c.account) {
		return c, tripcap.Errorf(tripcap.EINVALID, "storage URL %q: account %q must be 3 to 24 lowercase letters and digits (azblob://ACCOUNT/CONTAINER)", tripcap.RedactURL(u.String()), c.account)
	}
	path := strings.Trim(u.Path, "/")
	c.container, c.prefix, _ = strings.Cut(path, "/")
	if c.container == "" {
		c.container = DefaultContainer
	}
	if !containerName.MatchString(c.container) || strings.Contains(c.container, "--") {
		return c, tripcap.Errorf(tripcap.EINVALID, "storage URL %q: container %q must be 3 to 63 lowercase letters, digits and single hyphens", tripcap.RedactURL(u.String()), c.container)
	}
	if c.prefix != "" {
		if err := tripcap.CheckStorageKey(c.prefix); err != nil {
			return c, tripcap.Errorf(tripcap.EINVALID, "storage URL %q: prefix %q is not a clean relative path", tripcap.RedactURL(u.String()), c.prefix)
		}
		c.prefix += "/"
	}
	q := u.Query()
	for name := range q {
		if name != "endpoint" && name != "key" {
			return c, tripcap.Errorf(tripcap.EINVALID, "storage URL %q: unknown parameter %q (want endpoint, key)", tripcap.RedactURL(u.String()), name)
		}
	}
	c.key = q.Get("key")
	if e := q.Get("endpoint"); e != "" {
		if c.endpoint, err = parseEndpoint(e); err != nil {
			return c, tripcap.Errorf(tripcap.EINVALID, "storage URL %q: endpoint %q: %v", tripcap.RedactURL(u.String()), e, err)
		}
	}
	return c, nil
}

// parseEndpoint takes a blob service URL, https:// by default.
func parseEndpoint(e string) (string, error) {
	if !strings.Contains(e, "://") {
		e = "https://" + e
	}
	eu, err := url.Parse(e)
	if err != nil {
		return "", err
	}
	if (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" || eu.RawQuery != "" || eu.User != nil {
		return "", errors.New("must be an http(s)://HOST[:PORT][/PATH] blob service URL")
	}
	return strings.TrimRight(eu.String(), "/"), nil
}

// connString holds the parts of a storage connection string this store uses.
type connString struct {
	account, key, endpoint string
}

// parseConnectionString reads AccountName, AccountKey and the blob endpoint
// (BlobEndpoint, or DefaultEndpointsProtocol and EndpointSuffix), or
// UseDevelopmentStorage=true. A key's value may itself contain '='.
func parseConnectionString(s string) (connString, error) {
	f := map[string]string{}
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return connString{}, errors.New("connection string: a part has no '='")
		}
		f[strings.ToLower(k)] = v
	}
	if strings.EqualFold(f["usedevelopmentstorage"], "true") {
		return connString{account: devAccount, key: devKey, endpoint: devEndpoint}, nil
	}
	c := connString{account: f["accountname"], key: f["accountkey"]}
	if c.key == "" {
		if f["sharedaccesssignature"] != "" {
			return c, errors.New("connection string: it holds a SAS, but the store signs agents' upload SAS itself and needs AccountKey")
		}
		return c, errors.New("connection string: AccountKey is missing")
	}
	if e := f["blobendpoint"]; e != "" {
		ep, err := parseEndpoint(e)
		if err != nil {
			return c, fmt.Errorf("connection string: BlobEndpoint: %w", err)
		}
		c.endpoint = ep
	} else if c.account != "" {
		proto, suffix := f["defaultendpointsprotocol"], f["endpointsuffix"]
		if proto == "" {
			proto = "https"
		}
		if suffix == "" {
			suffix = "core.windows.net"
		}
		c.endpoint = proto + "://" + c.account + ".blob." + suffix
	}
	return c, nil
}

// Open connects to the container rawURL names, creating it if it is
// missing, with credentials from the URL or the environment.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	return OpenWith(ctx, rawURL, Credentials{})
}

// OpenWith is Open with credentials from the server's configuration, which
// take precedence over the URL's key and the environment.
func OpenWith(ctx context.Context, rawURL string, creds Credentials) (*Store, error) {
	s, err := newStore(rawURL, creds)
	if err != nil {
		return nil, err
	}
	// Creating the container checks the endpoint and the key at start-up.
	_, err = s.container.Create(ctx, nil)
	if err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return nil, azError(fmt.Sprintf("open container %s at %s", s.containerName, s.container.URL()), err)
	}
	return s, nil
}

// newStore builds the client without any request.
func newStore(rawURL string, creds Credentials) (*Store, error) {
	c, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	key, endpoint := "", c.endpoint
	var cs string
	switch {
	case creds.ConnectionString != "":
		cs = creds.ConnectionString
	case creds.AccountKey != "":
		key = creds.AccountKey
	case c.key != "":
		key = c.key
	case os.Getenv("AZURE_STORAGE_CONNECTION_STRING") != "":
		cs = os.Getenv("AZURE_STORAGE_CONNECTION_STRING")
	case os.Getenv("AZURE_STORAGE_KEY") != "":
		key = os.Getenv("AZURE_STORAGE_KEY")
	default:
		return nil, tripcap.Errorf(tripcap.EINVALID, "azure storage account %s: no credentials; set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_KEY", c.account)
	}
	if cs != "" {
		p, err := parseConnectionString(cs)
		if err != nil {
			return nil, tripcap.Errorf(tripcap.EINVALID, "azure storage account %s: %v", c.account, err)
		}
		if p.account != "" && p.account != c.account {
			return nil, tripcap.Errorf(tripcap.EINVALID, "azure storage: the connection string is for account %q but the URL names %q", p.account, c.account)
		}
		key = p.key
		if endpoint == "" {
			endpoint = p.endpoint
		}
	}
	if endpoint == "" {
		endpoint = "https://" + c.account + ".blob.core.windows.net"
	}
	cred, err := blob.NewSharedKeyCredential(c.account, key)
	if err != nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "azure storage account %s: account key: %v", c.account, err)
	}
	client, err := container.NewClientWithSharedKeyCredential(endpoint+"/"+c.container, cred, nil)
	if err != nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "azure storage account %s: endpoint %q: %v", c.account, endpoint, err)
	}
	return &Store{
		container:     client,
		cred:          cred,
		containerName: c.container,
		prefix:        c.prefix,
		insecure:      strings.HasPrefix(endpoint, "http://"),
		partSize:      DefaultPartSize,
	}, nil
}

// azError says what failed with Azure's status and error code, and gives
// refusals and missing things their tripcap codes so that callers can tell a
// wrong configuration (StorageFailed) from a passing fault. The SDK's own
// message is a multi-line request dump, kept for the wrapped error only.
func azError(op string, err error) error {
	if err == nil {
		return nil
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("azure blob %s: %w", op, err)
	}
	msg := fmt.Sprintf("azure blob %s: HTTP %d %s", op, re.StatusCode, re.ErrorCode)
	switch {
	case re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden:
		return tripcap.Errorf(tripcap.EFORBIDDEN, "%s", msg)
	case re.StatusCode == http.StatusNotFound:
		return tripcap.Errorf(tripcap.ENOTFOUND, "%s", msg)
	case re.StatusCode >= 500:
		return tripcap.Errorf(tripcap.EUNAVAILABLE, "%s", msg)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

func (s *Store) blob(key string) *blockblob.Client {
	return s.container.NewBlockBlobClient(s.prefix + key)
}

// Put streams r to a block blob in blocks of DefaultPartSize, two in flight,
// and returns the SHA-256 of the bytes sent. The blob appears only when its
// block list is committed, so a failed Put leaves no partial object.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (tripcap.ObjectInfo, error) {
	if err := tripcap.CheckStorageKey(key); err != nil {
		return tripcap.ObjectInfo{}, err
	}
	h := sha256.New()
	cr := &countingReader{r: io.TeeReader(r, h)}
	resp, err := s.blob(key).UploadStream(ctx, cr, &blockblob.UploadStreamOptions{
		BlockSize:   s.partSize,
		Concurrency: 2,
		HTTPHeaders: &blob.HTTPHeaders{BlobContentType: to.Ptr("application/octet-stream")},
	})
	if err != nil {
		return tripcap.ObjectInfo{}, azError("put "+key, err)
	}
	info := tripcap.ObjectInfo{Key: key, Size: cr.n, SHA256: hex.EncodeToString(h.Sum(nil))}
	if resp.LastModified != nil {
		info.ModTime = *resp.LastModified
	}
	return info, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Open returns a reader that downloads from its position to the end of the
// blob on first Read, and again after each Seek that moves it, each download
// pinned to the blob's ETag: a blob replaced while it is read fails the read
// instead of mixing two files.
func (s *Store) Open(ctx context.Context, key string) (io.ReadSeekCloser, tripcap.ObjectInfo, error) {
	if err := tripcap.CheckStorageKey(key); err != nil {
		return nil, tripcap.ObjectInfo{}, err
	}
	b := s.blob(key).BlobClient()
	props, err := b.GetProperties(ctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return nil, tripcap.ObjectInfo{}, tripcap.Errorf(tripcap.ENOTFOUND, "no stored file %q", key)
	} else if err != nil {
		return nil, tripcap.ObjectInfo{}, azError("open "+key, err)
	}
	info := tripcap.ObjectInfo{Key: key}
	if props.ContentLength != nil {
		info.Size = *props.ContentLength
	}
	if props.LastModified != nil {
		info.ModTime = *props.LastModified
	}
	return &reader{ctx: ctx, key: key, blob: b, size: info.Size, etag: props.ETag}, info, nil
}

// reader is an io.ReadSeekCloser over ranged downloads.
type reader struct {
	ctx  context.Context
	key  string
	blob *blob.Client
	size int64
	etag *azcore.ETag
	pos  int64
	body io.ReadCloser
}

func (r *reader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.body == nil {
		resp, err := r.blob.DownloadStream(r.ctx, &blob.DownloadStreamOptions{
			Range: blob.HTTPRange{Offset: r.pos},
			AccessConditions: &blob.AccessConditions{
				ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: r.etag},
			},
		})
		if err != nil {
			return 0, azError(fmt.Sprintf("read %s at %d", r.key, r.pos), err)
		}
		// The retry reader resumes a broken download from where it stopped.
		r.body = resp.NewRetryReader(r.ctx, &blob.RetryReaderOptions{MaxRetries: 3})
	}
	n, err := r.body.Read(p)
	r.pos += int64(n)
	if err == io.EOF && r.pos < r.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (r *reader) Seek(offset int64, whence int) (int64, error) {
	var pos int64
	switch whence {
	case io.SeekStart:
		pos = offset
	case io.SeekCurrent:
		pos = r.pos + offset
	case io.SeekEnd:
		pos = r.size + offset
	default:
		return r.pos, fmt.Errorf("seek %s: invalid whence %d", r.key, whence)
	}
	if pos < 0 {
		return r.pos, fmt.Errorf("seek %s: negative position %d", r.key, pos)
	}
	if pos != r.pos && r.body != nil {
		r.body.Close()
		r.body = nil
	}
	r.pos = pos
	return pos, nil
}

func (r *reader) Close() error {
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}

// Delete removes the blob and its snapshots; an absent blob is no error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := tripcap.CheckStorageKey(key); err != nil {
		return err
	}
	_, err := s.blob(key).Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: to.Ptr(blob.DeleteSnapshotsOptionTypeInclude)})
	if err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound) {
		return azError("delete "+key, err)
	}
	return nil
}

// URL is the blob's URL, as Azure reports a capture's storagePath: path
// segments escaped one by one, so that the key's slashes stay slashes (the
// SDK's own URL escapes them as %2F, which works but reads badly).
func (s *Store) URL(key string) string {
	parts := strings.Split(s.prefix+key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return s.container.URL() + "/" + strings.Join(parts, "/")
}
