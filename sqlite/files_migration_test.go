package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tripcap/tripcap/storetest"
)

// The file index migration indexes the files of captures stored before it.
func TestFileIndexMigrationIndexesExistingFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tripcap.db")
	db := migratedTo(t, path, 5)
	c := storetest.SeedBeforeFileIndex(t, db, func(q string) string { return q }, func(t time.Time) any { return t.UTC().Format(timeFormat) })
	db.Close()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckFileBackfill(t, s, c)
}
