package sqlstore

import (
	"database/sql"
	"fmt"
	"testing"

	_ "modernc.org/sqlite"
)

// TestReadPoolPreparesOnceWithinBound: repeated texts reuse one statement;
// past the bound, new texts still run, unprepared.
func TestReadPoolPreparesOnceWithinBound(t *testing.T) {
	db, err := sql.Open("sqlite", t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	p := NewReadPool(db)
	defer p.Close()
	for round := range 2 {
		for i := range maxPreparedReads + 50 {
			var got int
			if err := p.QueryRowContext(t.Context(), fmt.Sprintf("SELECT ? + %d", i), round).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != i+round {
				t.Fatalf("SELECT %d + %d = %d", round, i, got)
			}
		}
	}
	if n := len(p.stmts); n != maxPreparedReads {
		t.Fatalf("%d statements kept, want %d", n, maxPreparedReads)
	}
	if _, err := p.QueryContext(t.Context(), "SELECT nonsense FROM"); err == nil {
		t.Fatal("a bad statement prepared")
	}
}
