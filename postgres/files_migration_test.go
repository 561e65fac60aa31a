package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/tripcap/tripcap/sqlstore"
	"github.com/tripcap/tripcap/storetest"
)

// The file index migration indexes the files of captures stored before it.
func TestFileIndexMigrationIndexesExistingFiles(t *testing.T) {
	dsn, db := migratedTo(t, 5)
	c := storetest.SeedBeforeFileIndex(t, db, sqlstore.Rebind, func(t time.Time) any { return t })
	db.Close()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckFileBackfill(t, s, c)
}
