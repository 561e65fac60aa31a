package sqlite

import (
	"fmt"
	"testing"
)

// TestReadPoolPreparesOnceWithinBound: repeated texts reuse one statement;
// past the bound, new texts still run, unprepared.
func TestReadPoolPreparesOnceWithinBound(t *testing.T) {
	s, err := Open(t.Context(), t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for round := range 2 {
		for i := range maxPreparedReads + 50 {
			var got int
			if err := s.reader.QueryRowContext(t.Context(), fmt.Sprintf("SELECT ? + %d", i), round).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != i+round {
				t.Fatalf("SELECT %d + %d = %d", round, i, got)
			}
		}
	}
	if n := len(s.reader.stmts); n != maxPreparedReads {
		t.Fatalf("%d statements kept, want %d", n, maxPreparedReads)
	}
	if _, err := s.reader.QueryContext(t.Context(), "SELECT nonsense FROM"); err == nil {
		t.Fatal("a bad statement prepared")
	}
}
