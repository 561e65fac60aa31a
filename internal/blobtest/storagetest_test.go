package blobtest

import (
	"testing"

	"github.com/tripcap/tripcap/filestore"
)

// The file backend is the reference: the conformance suite must hold for it
// before it means anything for the cloud backends.
func TestConformanceFilestore(t *testing.T) {
	s, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	BlobStore(t, s)
}
