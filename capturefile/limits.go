package capturefile

import (
	"io"
	"strings"

	"github.com/tripcap/tripcap"
)

// MaxMetadataFileBytes bounds the host metadata file of a capture with
// includeMetadata (tripcap.MetadataFileSuffix), which no capture parameter
// bounds: the agent keeps at most 4 MiB of each of its 18 sections, 72 MiB
// in all, and JSON escaping may grow text; 128 MiB holds that with room.
const MaxMetadataFileBytes = 128 << 20

// fileLimit is what a capture lets one of its files hold in storage, and
// how many files of its kind it stores. The agent honours the capture's
// limits exactly (afpacket's output counts every header, record and
// trailer byte against them and rotates or stops before a file would
// exceed them), so the server allows no slack:
//
//   - without continuousCapture, one file of at most totalBytesPerSession;
//   - with it, a ring of at most fileCount files (at least one) of at most
//     fileSizeInBytes each, the oldest removed as a new one opens;
//   - with includeMetadata, one metadata file besides, of at most
//     MaxMetadataFileBytes.
type fileLimit struct {
	bytes int64
	files int
	// field and count name the parameters the limits come from, for errors.
	field, count string
	metadata     bool
}

func limitOf(c *tripcap.PacketCapture, name string) fileLimit {
	p := c.Parameters
	p.ApplyDefaults()
	if p.IncludeMetadata && strings.HasSuffix(name, tripcap.MetadataFileSuffix) {
		return fileLimit{bytes: MaxMetadataFileBytes, files: 1, field: "the metadata file's bound", count: "includeMetadata", metadata: true}
	}
	if p.Continuous() {
		return fileLimit{bytes: *p.CaptureSettings.FileSizeInBytes, files: max(int(*p.CaptureSettings.FileCount), 1),
			field: "captureSettings.fileSizeInBytes", count: "captureSettings.fileCount"}
	}
	return fileLimit{bytes: p.TotalBytesPerSession, files: 1, field: "totalBytesPerSession", count: "one file without continuousCapture"}
}

// sameKind reports whether file f counts against the same file limit.
func (l fileLimit) sameKind(c *tripcap.PacketCapture, f tripcap.CaptureFile) bool {
	return limitOf(c, f.Name).metadata == l.metadata
}

// checkSize refuses size bytes for file name of capture c.
func (l fileLimit) checkSize(c *tripcap.PacketCapture, name string, size int64) error {
	if size > l.bytes {
		return tripcap.Errorf(tripcap.ELIMIT, "file %s: %d bytes is more than capture %s lets a file hold (%s: %d bytes)", name, size, c.Name, l.field, l.bytes)
	}
	return nil
}

// checkCount refuses to store one more file of its kind for capture c when
// it stores as many as its limit already (a file is counted once it has a
// key in storage: from its first upload target on).
func (l fileLimit) checkCount(c *tripcap.PacketCapture, name string) error {
	n := 0
	for _, f := range c.Files {
		if f.Key != "" && f.Name != name && l.sameKind(c, f) {
			n++
		}
	}
	if n >= l.files {
		return tripcap.Errorf(tripcap.ELIMIT, "file %s: capture %s stores at most %d file(s) (%s) and has %d", name, c.Name, l.files, l.count, n)
	}
	return nil
}

// boundedReader fails a read that would take more than n bytes, so a body
// larger than its file may hold is cut off, not stored.
type boundedReader struct {
	r     io.Reader
	n     int64 // bytes still allowed
	limit func() error
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.n < 0 {
		return 0, b.limit()
	}
	// One byte more than allowed tells a body at the limit from one over it.
	if int64(len(p)) > b.n+1 {
		p = p[:b.n+1]
	}
	k, err := b.r.Read(p)
	b.n -= int64(k)
	if b.n < 0 {
		return k, b.limit()
	}
	return k, err
}

// over returns the limit error once more was offered than allowed, else
// nil: what a backend made of the failed read may not say so.
func (b *boundedReader) over() error {
	if b.n < 0 {
		return b.limit()
	}
	return nil
}

func (l fileLimit) bound(c *tripcap.PacketCapture, name string, r io.Reader) *boundedReader {
	return &boundedReader{r: r, n: l.bytes, limit: func() error {
		return tripcap.Errorf(tripcap.ELIMIT, "file %s: more than capture %s lets a file hold (%s: %d bytes)", name, c.Name, l.field, l.bytes)
	}}
}
