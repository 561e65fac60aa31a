package tripcap_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/tripcap/tripcap"
)

// TestFilterPage pages a listing of 1,000 ids, keeping a sparse subset,
// with store pages of the sizes FilterPage asks for: every page but the
// last is full, none is empty, and together they are the subset in order,
// whether the kept rows are dense, sparse, or cluster at either end.
func TestFilterPage(t *testing.T) {
	var ids []string
	for i := range 1000 {
		ids = append(ids, fmt.Sprintf("%04d", i))
	}
	fetches := 0
	fetch := func(cursor string, limit int) ([]string, string, error) {
		fetches++
		i, _ := slices.BinarySearch(ids, cursor)
		if cursor != "" && i < len(ids) && ids[i] == cursor {
			i++
		}
		rest := ids[i:]
		if limit <= 0 || len(rest) <= limit {
			return rest, "", nil
		}
		return rest[:limit], rest[limit-1], nil
	}
	id := func(s string) string { return s }
	for _, tc := range []struct {
		name string
		keep func(int) bool
	}{
		{"every 7th", func(i int) bool { return i%7 == 0 }},
		{"first 3", func(i int) bool { return i < 3 }},
		{"last 3", func(i int) bool { return i >= 997 }},
		{"one in the middle", func(i int) bool { return i == 500 }},
		{"none", func(int) bool { return false }},
		{"all", func(int) bool { return true }},
	} {
		keep := func(s string) bool { n, _ := strconv.Atoi(s); return tc.keep(n) }
		var want []string
		for _, s := range ids {
			if keep(s) {
				want = append(want, s)
			}
		}
		for _, limit := range []int{1, 3, 100, 150, 1000} {
			var got []string
			cursor := ""
			for page := 0; ; page++ {
				rows, next, err := tripcap.FilterPage(cursor, limit, fetch, keep, id)
				if err != nil {
					t.Fatal(err)
				}
				if next != "" && len(rows) != limit {
					t.Fatalf("%s, limit %d: page %d has %d rows and a next page", tc.name, limit, page, len(rows))
				}
				if next == "" && len(rows) == 0 && page > 0 {
					t.Fatalf("%s, limit %d: empty page %d after a cursor", tc.name, limit, page)
				}
				got = append(got, rows...)
				if next == "" {
					break
				}
				cursor = next
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s, limit %d: %d rows, want %d", tc.name, limit, len(got), len(want))
			}
		}
		rows, next, err := tripcap.FilterPage("", 0, fetch, keep, id)
		if err != nil || next != "" || !slices.Equal(rows, want) {
			t.Errorf("%s, no limit: %d rows, next %q, %v", tc.name, len(rows), next, err)
		}
	}
	if fetches == 0 {
		t.Fatal("no fetch")
	}
}
