package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
)

func open(t testing.TB) *sqlite.Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "state", "tripcap.db"))
}

func openAt(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.SetSealer(storetest.NewSealer(t))
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tripcap.Store { return open(t) })
}

func BenchmarkStore(b *testing.B) {
	storetest.Benchmark(b, func(tb testing.TB) tripcap.Store { return open(tb) })
}
