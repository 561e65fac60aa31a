package metricstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// fill gives two hosts two hours of points: the host series of Network Out
// Total and an interface's, one point a second (1..7200 s after t0).
func fill(t *testing.T, s *Store) {
	t.Helper()
	var b tripcap.MetricBatch
	for sec := 1; sec <= 7200; sec++ {
		at := t0.Add(time.Duration(sec) * time.Second)
		for _, h := range []string{"web.example.com", "db.example.com"} {
			b.Points = append(b.Points, pt(h, tripcap.MetricNetworkOutBytes, at, float64(sec%97)))
			p := pt(h, tripcap.MetricNetworkOutBytes, at, float64(sec%13))
			p.Interface = "eth0"
			b.Points = append(b.Points, p)
		}
	}
	if _, err := s.Append(b); err != nil {
		t.Fatal(err)
	}
}

// sameAnswers checks that two stores answer the same queries alike, at the
// second (the raw window) and at the minute (the rollups).
func sameAnswers(t *testing.T, a, b *Store, end time.Time) {
	t.Helper()
	for _, k := range a.Keys() {
		for _, w := range []time.Duration{5 * time.Second, 10 * time.Minute, 2 * time.Hour} {
			wa, wb := a.Summarize(k, end, w), b.Summarize(k, end, w)
			if wa.Summary != wb.Summary {
				t.Fatalf("%v over %s: %+v before, %+v after", k, w, wa.Summary, wb.Summary)
			}
		}
	}
	if got, want := len(b.Keys()), len(a.Keys()); got != want {
		t.Fatalf("%d series after, %d before", got, want)
	}
	if nb, _ := b.Newest("web.example.com"); !nb.Equal(end) {
		t.Fatalf("newest point after restore %v, want %v", nb, end)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	end := t0.Add(2 * time.Hour)
	c := newClock(end)
	a := newStore(t, Config{}, c)
	fill(t, a)
	var buf bytes.Buffer
	if err := a.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	b := newStore(t, Config{}, c)
	if err := b.ReadSnapshot(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	sameAnswers(t, a, b, end)
	t.Logf("snapshot of %d series over 2 h: %d bytes", len(a.Keys()), buf.Len())
}

// TestHistorySurvivesARestart: a store with a SnapshotPath saves when Run
// ends and a new one started on the same path answers as the old one did;
// rule windows and charts go on where they were.
func TestHistorySurvivesARestart(t *testing.T) {
	end := t0.Add(2 * time.Hour)
	c := newClock(end)
	path := filepath.Join(t.TempDir(), "metrics.snapshot")
	a := newStore(t, Config{SnapshotPath: path}, c)
	fill(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	cancel()
	<-done
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no snapshot after Run ended: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot mode %v, want 0600", st.Mode().Perm())
	}
	b := newStore(t, Config{SnapshotPath: path}, c)
	sameAnswers(t, a, b, end)
	// A point after the restart lands in the restored series.
	if res, err := b.Append(tripcap.MetricBatch{Points: []tripcap.MetricPoint{pt("web.example.com", tripcap.MetricNetworkOutBytes, end.Add(time.Second), 5)}}); err != nil || res.Stored != 1 {
		t.Fatalf("append after restore: %+v, %v", res, err)
	}
}

// TestSnapshotIntoSmallerRings: a server restarted with a shorter Raw and
// Rollup keeps the newest of what fits, and what fell out of its windows
// is gone, not misplaced.
func TestSnapshotIntoSmallerRings(t *testing.T) {
	end := t0.Add(2 * time.Hour)
	c := newClock(end)
	a := newStore(t, Config{}, c)
	fill(t, a)
	var buf bytes.Buffer
	if err := a.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	b := newStore(t, Config{Raw: time.Minute, Rollup: 30 * time.Minute}, c)
	if err := b.ReadSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	k := Key{"web.example.com", tripcap.MetricNetworkOutBytes, ""}
	for _, w := range []time.Duration{30 * time.Second, 30 * time.Minute} {
		if got, want := b.Summarize(k, end, w).Summary, a.Summarize(k, end, w).Summary; got != want {
			t.Fatalf("over %s: %+v, want %+v", w, got, want)
		}
	}
}

// TestDamagedSnapshotIsKeptAside: a torn snapshot is refused whole, kept
// as .damaged for inspection, and the store starts empty instead of failing.
func TestDamagedSnapshotIsKeptAside(t *testing.T) {
	end := t0.Add(2 * time.Hour)
	c := newClock(end)
	a := newStore(t, Config{}, c)
	fill(t, a)
	var buf bytes.Buffer
	if err := a.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "metrics.snapshot")
	if err := os.WriteFile(path, buf.Bytes()[:buf.Len()/2], 0o600); err != nil {
		t.Fatal(err)
	}
	b := newStore(t, Config{}, c)
	err := b.LoadSnapshot(path)
	if err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("a torn snapshot: %v, want a checksum error", err)
	}
	if len(b.Keys()) != 0 {
		t.Fatalf("a torn snapshot added %d series", len(b.Keys()))
	}
	if _, err := os.Stat(path + ".damaged"); err != nil {
		t.Fatalf("the damaged snapshot was not kept aside: %v", err)
	}
	// New with the path starts all the same.
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s := newStore(t, Config{SnapshotPath: path}, c); len(s.Keys()) != 0 {
		t.Fatal("garbage restored series")
	}
}

// FuzzReadSnapshot: any bytes are a snapshot or a clear error, never a
// crash or a runaway allocation. The checksum is recomputed so the fuzzer
// reaches the decoder.
func FuzzReadSnapshot(f *testing.F) {
	c := newClock(t0.Add(time.Hour))
	a, _ := New(Config{Now: c.Now, Raw: time.Minute, Rollup: time.Hour})
	var b tripcap.MetricBatch
	for sec := 1; sec <= 120; sec++ {
		b.Points = append(b.Points, pt("h", tripcap.MetricNetworkOutBytes, t0.Add(time.Hour-time.Duration(sec)*time.Second), float64(sec)))
	}
	_, _ = a.Append(b)
	var buf bytes.Buffer
	_ = a.WriteSnapshot(&buf)
	f.Add(buf.Bytes()[:buf.Len()-4])
	f.Add([]byte(snapshotMagic))
	if v1, err := os.ReadFile("testdata/snapshot-v1.bin"); err == nil {
		f.Add(v1[:len(v1)-4])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, _ := New(Config{Now: c.Now, Raw: time.Minute, Rollup: time.Hour})
		whole := binary.LittleEndian.AppendUint32(append([]byte(nil), body...), crc32.ChecksumIEEE(body))
		_ = s.ReadSnapshot(bytes.NewReader(whole))
	})
}

// TestIdleStoreWritesNoSnapshot: Run writes a snapshot when points arrived
// since the last one, and none while the store is idle.
func TestIdleStoreWritesNoSnapshot(t *testing.T) {
	c := newClock(t0.Add(time.Hour))
	path := filepath.Join(t.TempDir(), "metrics.snapshot")
	s := newStore(t, Config{SnapshotPath: path, SnapshotEvery: 20 * time.Millisecond}, c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFile := func() os.FileInfo {
		for range 200 {
			if st, err := os.Stat(path); err == nil {
				return st
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("no snapshot written")
		return nil
	}
	first := waitFile()
	time.Sleep(150 * time.Millisecond)
	if st := waitFile(); !st.ModTime().Equal(first.ModTime()) || st.Size() != first.Size() {
		t.Fatalf("an idle store rewrote its snapshot")
	}
	if _, err := s.Append(tripcap.MetricBatch{Points: []tripcap.MetricPoint{pt("h1", tripcap.MetricNetworkOutBytes, c.Now(), 1)}}); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		if st := waitFile(); st.Size() != first.Size() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("a new point did not reach the snapshot")
}

// TestVersion1SnapshotStillLoads reads a snapshot the previous format's
// code wrote (testdata/snapshot-v1.bin: fill's two hours in a store of
// Raw 10 min and Rollup 2 h, saved at t0+2h) and answers as a store given
// the same points does; saved again, it is version 2 and loads the same.
func TestVersion1SnapshotStillLoads(t *testing.T) {
	end := t0.Add(2 * time.Hour)
	c := newClock(end)
	cfg := Config{Raw: 10 * time.Minute, Rollup: 2 * time.Hour}
	want := newStore(t, cfg, c)
	fill(t, want)
	old := newStore(t, cfg, c)
	if err := old.LoadSnapshot("testdata/snapshot-v1.bin"); err != nil {
		t.Fatal(err)
	}
	sameAnswers(t, want, old, end)
	sameGrainAnswers(t, want, old, end)
	var buf bytes.Buffer
	if err := old.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	if v, _ := binary.Uvarint(buf.Bytes()[len(snapshotMagic):]); v != snapshotVersion {
		t.Fatalf("written as version %d", v)
	}
	v1, _ := os.ReadFile("testdata/snapshot-v1.bin")
	if buf.Len()*3 > len(v1) {
		t.Errorf("version 2 takes %d bytes, version 1 %d", buf.Len(), len(v1))
	}
	again := newStore(t, cfg, c)
	if err := again.ReadSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	sameGrainAnswers(t, want, again, end)
}
