package azblob

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"slices"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/tripcap/tripcap"
)

// uploadIDs are 16 hex digits, so that every block id has the same length.
var uploadID = regexp.MustCompile(`^[0-9a-f]{16}$`)

// clockSkew backdates a SAS's start, so that an agent or storage clock a
// little ahead or behind the server's does not refuse a fresh URL.
const clockSkew = 5 * time.Minute

// partLimits are Azure's block blob limits.
var partLimits = tripcap.PartLimits{Backend: "Azure Blob", MinPart: 1, MaxParts: maxBlocks, MaxPart: maxBlockSize}

// PrepareUpload returns a SAS URL for the blob, with create and write
// permission only, valid for ttl: the agent stages blocks with Put Block
// (ids from UploadTarget.BlockID) and cannot read, list or delete anything.
// The SAS is signed with the account key (a service SAS); nothing is sent to
// Azure for a new upload. With resumeID, the blob's uncommitted block list
// tells which parts Azure already holds (Azure keeps uncommitted blocks for a
// week).
func (s *Store) PrepareUpload(ctx context.Context, key string, size int64, resumeID string, ttl time.Duration) (*tripcap.UploadTarget, error) {
	// A service SAS has no upper bound of its own: a year is far beyond any upload.
	if err := tripcap.CheckUploadRequest(key, size, ttl, 365*24*time.Hour); err != nil {
		return nil, err
	}
	ps, err := tripcap.PartSize(size, s.partSize, partLimits)
	if err != nil {
		return nil, err
	}
	t := &tripcap.UploadTarget{Kind: tripcap.UploadAzureBlocks, Size: size, PartSize: ps, UploadID: resumeID}
	if resumeID != "" {
		if !uploadID.MatchString(resumeID) {
			return nil, tripcap.Errorf(tripcap.EINVALID, "resume id %q is not an azure-blocks upload id (16 hex digits)", resumeID)
		}
		staged, _, err := s.blocks(ctx, key, blockblob.BlockListTypeUncommitted)
		if err != nil {
			return nil, err
		}
		for n := 1; n <= t.Parts(); n++ {
			if sz, ok := staged[t.BlockID(n)]; ok && sz == partLen(t, n) {
				t.DoneParts = append(t.DoneParts, n)
			}
		}
	} else {
		var b [8]byte
		rand.Read(b[:])
		t.UploadID = hex.EncodeToString(b[:])
	}
	now := time.Now()
	t.ExpiresAt = now.Add(ttl)
	proto := sas.ProtocolHTTPS
	if s.insecure {
		proto = sas.ProtocolHTTPSandHTTP
	}
	qp, err := sas.BlobSignatureValues{
		Protocol:      proto,
		StartTime:     now.Add(-clockSkew).UTC(),
		ExpiryTime:    t.ExpiresAt.UTC(),
		Permissions:   (&sas.BlobPermissions{Create: true, Write: true}).String(),
		ContainerName: s.containerName,
		BlobName:      s.prefix + key,
	}.SignWithSharedKey(s.cred)
	if err != nil {
		return nil, fmt.Errorf("azure blob sign upload SAS for %s: %w", key, err)
	}
	t.URL = s.blob(key).URL() + "?" + qp.Encode()
	return t, nil
}

func partLen(t *tripcap.UploadTarget, n int) int64 {
	_, l := t.PartRange(n)
	return l
}

// blocks returns the blob's blocks of the given list type by id, and the
// committed block ids in order. A blob with no blocks at all has none.
func (s *Store) blocks(ctx context.Context, key string, lt blockblob.BlockListType) (staged map[string]int64, committed []string, err error) {
	resp, err := s.blob(key).GetBlockList(ctx, lt, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return map[string]int64{}, nil, nil
	} else if err != nil {
		return nil, nil, azError("list blocks of "+key, err)
	}
	staged = make(map[string]int64)
	if resp.BlockList.UncommittedBlocks != nil {
		for _, b := range resp.BlockList.UncommittedBlocks {
			if b.Name != nil && b.Size != nil {
				staged[*b.Name] = *b.Size
			}
		}
	}
	for _, b := range resp.BlockList.CommittedBlocks {
		if b.Name != nil {
			committed = append(committed, *b.Name)
		}
	}
	return staged, committed, nil
}

func checkTarget(key string, t *tripcap.UploadTarget) error {
	if err := tripcap.CheckStorageKey(key); err != nil {
		return err
	}
	if t == nil || t.Kind != tripcap.UploadAzureBlocks || !uploadID.MatchString(t.UploadID) {
		return tripcap.Errorf(tripcap.EINVALID, "upload target for %s is not an azure-blocks upload with an uploadId", key)
	}
	return nil
}

// CompleteUpload checks on Azure that every block was staged in full (the
// agent reports none), commits the block list in part order, then reads the
// blob back to compute its SHA-256. A SHA-256 that differs from sha256 (when
// given) deletes the blob: a corrupt capture is worse than a missing one,
// and the agent still has the file. Completing twice verifies the committed
// blob again.
func (s *Store) CompleteUpload(ctx context.Context, key string, t *tripcap.UploadTarget, sha256 string) (tripcap.ObjectInfo, error) {
	if err := checkTarget(key, t); err != nil {
		return tripcap.ObjectInfo{}, err
	}
	staged, committed, err := s.blocks(ctx, key, blockblob.BlockListTypeAll)
	if err != nil {
		return tripcap.ObjectInfo{}, err
	}
	ids := make([]string, t.Parts())
	for i := range ids {
		ids[i] = t.BlockID(i + 1)
	}
	for i, id := range ids {
		sz, ok := staged[id]
		if ok && sz == partLen(t, i+1) {
			continue
		}
		if len(ids) > 0 && slices.Equal(committed, ids) {
			// Committed before (the server restarted before it recorded
			// so): verify the blob as if just committed.
			return s.verify(ctx, key, t.Size, sha256)
		}
		if !ok {
			return tripcap.ObjectInfo{}, tripcap.Errorf(tripcap.EPRECONDITION, "azure upload of %s: block of part %d of %d was never staged", key, i+1, len(ids))
		}
		return tripcap.ObjectInfo{}, tripcap.Errorf(tripcap.EPRECONDITION, "azure upload of %s: part %d holds %d bytes, want %d", key, i+1, sz, partLen(t, i+1))
	}
	_, err = s.blob(key).CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{
		HTTPHeaders: &blob.HTTPHeaders{BlobContentType: to.Ptr("application/octet-stream")},
	})
	if err != nil {
		return tripcap.ObjectInfo{}, azError("commit blocks of "+key, err)
	}
	return s.verify(ctx, key, t.Size, sha256)
}

// verify reads the blob back and checks its size and SHA-256, deleting it
// when they are wrong. The read costs a download of the blob to the server,
// once; in exchange the recorded checksum is that of the bytes Azure holds.
func (s *Store) verify(ctx context.Context, key string, size int64, want string) (tripcap.ObjectInfo, error) {
	resp, err := s.blob(key).DownloadStream(ctx, nil)
	if err != nil {
		return tripcap.ObjectInfo{}, azError("verify "+key, err)
	}
	body := resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 3})
	defer body.Close()
	h := sha256.New()
	n, err := io.Copy(h, body)
	if err != nil {
		return tripcap.ObjectInfo{}, azError("verify "+key, err)
	}
	info := tripcap.ObjectInfo{Key: key, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	if resp.LastModified != nil {
		info.ModTime = *resp.LastModified
	}
	if n != size || (want != "" && info.SHA256 != want) {
		if err := s.Delete(ctx, key); err != nil {
			return info, fmt.Errorf("delete corrupt upload of %s: %w", key, err)
		}
		return info, tripcap.Errorf(tripcap.EPRECONDITION, "azure upload of %s: stored %d bytes with SHA-256 %s, want %d bytes with SHA-256 %s; deleted it", key, n, info.SHA256, size, want)
	}
	return info, nil
}

// AbortUpload discards the staged blocks. Azure has no call for that: while
// no blob is committed under the key, committing an empty block list drops
// the staged blocks and deleting the empty blob leaves nothing. If a blob is
// committed there (an earlier upload), it is kept and the staged blocks are
// left for Azure to drop after a week.
func (s *Store) AbortUpload(ctx context.Context, key string, t *tripcap.UploadTarget) error {
	if err := checkTarget(key, t); err != nil {
		return err
	}
	b := s.blob(key)
	_, err := b.GetProperties(ctx, nil)
	if err == nil {
		return nil
	}
	if !bloberror.HasCode(err, bloberror.BlobNotFound) {
		return azError("abort upload of "+key, err)
	}
	if _, err := b.CommitBlockList(ctx, nil, nil); err != nil {
		return azError("abort upload of "+key, err)
	}
	return s.Delete(ctx, key)
}
