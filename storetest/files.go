package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

var fileTests = []struct {
	name string
	fn   func(t *testing.T, s tripcap.Store)
}{
	{"File/OutlivesCapture", testFilesOutliveCaptures},
	{"File/Filters", testFileFilters},
	{"File/Pagination", testFilePagination},
	{"File/InvalidFilter", testFileInvalidFilter},
}

func storedFile(name string, at time.Time) tripcap.CaptureFile {
	return tripcap.CaptureFile{Name: name, Size: 100, SHA256: "ab", Stored: true, StorageID: "local", Key: "k/" + name, CreatedAt: at}
}

func findFiles(t *testing.T, s tripcap.Store, f tripcap.FileFilter) []*tripcap.StoredFile {
	t.Helper()
	files, _, err := s.FindFiles(t.Context(), f)
	must(t, err)
	return files
}

func fileNames(files []*tripcap.StoredFile) []string {
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	return names
}

// A capture's files are indexed as its file records are written (by
// UpdateCapture and by UpdateCaptures), keep their ids, and stay listed when
// the capture is deleted and another of its name replaces it.
func testFilesOutliveCaptures(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 1)
	c := capture(f.w.ID, f.hosts[0].ID, "PSAzureFunction")
	c.AlertID = "alert-1"
	c.Files = []tripcap.CaptureFile{{Name: "first.cap", CreatedAt: base}}
	must(t, s.CreateCapture(ctx, c))
	files := findFiles(t, s, tripcap.FileFilter{})
	if len(files) != 1 || files[0].ID == "" || files[0].CaptureID != c.ID || files[0].Stored || files[0].AlertID != "alert-1" {
		t.Fatalf("after create: %+v", files)
	}
	id := files[0].ID

	_, err := s.UpdateCaptures(ctx, []string{c.ID}, func(c *tripcap.PacketCapture) bool {
		c.Files[0] = storedFile("first.cap", base)
		c.Files = append(c.Files, storedFile("second.cap", base.Add(time.Minute)))
		return true
	})
	must(t, err)
	files = findFiles(t, s, tripcap.FileFilter{CaptureID: &c.ID})
	wantEqual(t, "files after a batch update", fileNames(files), []string{"first.cap", "second.cap"})
	// Ids sort by first sight to the millisecond only: find the file by name.
	if files[0].Name != "first.cap" {
		files[0], files[1] = files[1], files[0]
	}
	if files[0].ID != id || !files[0].Stored || files[0].Key != "k/first.cap" || files[0].HostID != c.HostID || files[0].CaptureName != c.Name {
		t.Fatalf("first file after the batch update: %+v (id was %s)", files[0], id)
	}
	if !files[0].CreatedAt.Equal(base) || files[0].CreatedAt.Location() != time.UTC {
		t.Fatalf("CreatedAt %v, want %v in UTC", files[0].CreatedAt, base)
	}

	// Deleted, and replaced by a capture of the same name.
	got := findCapture(t, s, c.ID)
	now := base.Add(time.Hour)
	got.DeletedAt = &now
	must(t, s.UpdateCapture(ctx, got, got.Version))
	next := capture(f.w.ID, f.hosts[0].ID, "PSAzureFunction")
	next.Files = []tripcap.CaptureFile{storedFile("third.cap", base.Add(2*time.Hour))}
	must(t, s.CreateCapture(ctx, next))

	name := "PSAzureFunction"
	files = findFiles(t, s, tripcap.FileFilter{CaptureName: &name})
	wantEqual(t, "files of the name after the replace", fileNames(files), []string{"first.cap", "second.cap", "third.cap"})
	for _, sf := range files {
		if sf.CaptureDeleted != (sf.CaptureID == c.ID) {
			t.Fatalf("file %s: CaptureDeleted %v", sf.Name, sf.CaptureDeleted)
		}
	}

	// A file whose stored copy is deleted leaves the listing, not the index.
	got = findCapture(t, s, c.ID)
	got.Files[1].Stored, got.Files[1].DeletedAt = false, &now
	must(t, s.UpdateCapture(ctx, got, got.Version))
	wantEqual(t, "live files", fileNames(findFiles(t, s, tripcap.FileFilter{CaptureName: &name})), []string{"first.cap", "third.cap"})
	all := findFiles(t, s, tripcap.FileFilter{CaptureID: &c.ID, IncludeDeleted: true})
	if len(all) != 2 {
		t.Fatalf("files with deleted ones: %+v", all)
	}
	if all[1].Name != "second.cap" {
		all[0], all[1] = all[1], all[0]
	}
	if all[1].Name != "second.cap" || all[1].DeletedAt == nil || !all[1].DeletedAt.Equal(now) || all[0].DeletedAt != nil {
		t.Fatalf("deleted file: %+v", all)
	}
	byID := findFiles(t, s, tripcap.FileFilter{ID: &all[1].ID, IncludeDeleted: true})
	if len(byID) != 1 || byID[0].Name != "second.cap" {
		t.Fatalf("by id: %+v", byID)
	}
}

func testFileFilters(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 2)
	a := capture(f.w.ID, f.hosts[0].ID, "a")
	a.AlertID = "alert-a"
	a.Files = []tripcap.CaptureFile{storedFile("a0", base), storedFile("a1", base.Add(time.Hour))}
	b := capture(f.w.ID, f.hosts[1].ID, "b")
	b.Files = []tripcap.CaptureFile{storedFile("b0", base.Add(30*time.Minute)), {Name: "b1", CreatedAt: base.Add(2 * time.Hour)}}
	must(t, s.CreateCapture(ctx, a))
	must(t, s.CreateCapture(ctx, b))

	hostB, alert, nameA := f.hosts[1].ID, "alert-a", "a"
	since, until := base.Add(30*time.Minute), base.Add(2*time.Hour)
	for _, tc := range []struct {
		what string
		f    tripcap.FileFilter
		want []string
	}{
		{"all", tripcap.FileFilter{}, []string{"a0", "a1", "b0", "b1"}},
		{"host", tripcap.FileFilter{HostID: &hostB}, []string{"b0", "b1"}},
		{"alert", tripcap.FileFilter{AlertID: &alert}, []string{"a0", "a1"}},
		{"capture name", tripcap.FileFilter{CaptureName: &nameA}, []string{"a0", "a1"}},
		{"since (inclusive)", tripcap.FileFilter{Since: &since}, []string{"a1", "b0", "b1"}},
		{"until (exclusive)", tripcap.FileFilter{Until: &until}, []string{"a0", "a1", "b0"}},
		{"range and host", tripcap.FileFilter{Since: &since, Until: &until, HostID: &hostB}, []string{"b0"}},
		{"stored only", tripcap.FileFilter{StoredOnly: true, HostID: &hostB}, []string{"b0"}},
	} {
		wantEqual(t, tc.what, fileNames(findFiles(t, s, tc.f)), tc.want)
	}
}

func testFilePagination(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 1)
	c := capture(f.w.ID, f.hosts[0].ID, "c")
	for i := range 5 {
		c.Files = append(c.Files, storedFile(string(rune('a'+i)), base.Add(time.Duration(i)*time.Second)))
	}
	must(t, s.CreateCapture(ctx, c))
	var seen []string
	cursor := ""
	for range 10 {
		files, next, err := s.FindFiles(ctx, tripcap.FileFilter{Cursor: cursor, Limit: 2})
		must(t, err)
		if len(files) > 2 {
			t.Fatalf("page of %d", len(files))
		}
		for _, sf := range files {
			seen = append(seen, sf.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 5 || !slices.IsSorted(seen) || len(slices.Compact(slices.Clone(seen))) != 5 {
		t.Fatalf("paged ids %v", seen)
	}
}

func testFileInvalidFilter(t *testing.T, s tripcap.Store) {
	bad, empty := "no/such id", ""
	since := base
	for _, f := range []tripcap.FileFilter{{ID: &bad}, {HostID: &bad}, {CaptureID: &bad}, {CaptureName: &empty}, {AlertID: &empty},
		{Since: &since, Until: &since}, {Limit: -1}} {
		_, _, err := s.FindFiles(t.Context(), f)
		wantCode(t, err, tripcap.EINVALID)
	}
}
