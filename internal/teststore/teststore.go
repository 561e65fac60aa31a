// Package teststore opens the stores services' tests run on: SQLite and
// PostgreSQL (internal/pgtest), each with a sealer of its own, as a server
// opens them.
package teststore

import (
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/pgtest"
	"github.com/tripcap/tripcap/postgres"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
)

// Each runs fn as a subtest on a fresh SQLite store and on a fresh
// PostgreSQL database.
func Each(t *testing.T, fn func(t *testing.T, store tripcap.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		store, err := sqlite.Open(t.Context(), t.TempDir()+"/tripcap.db")
		if err != nil {
			t.Fatal(err)
		}
		store.SetSealer(storetest.NewSealer(t))
		t.Cleanup(func() { store.Close() })
		fn(t, store)
	})
	t.Run("postgres", func(t *testing.T) {
		store, err := postgres.Open(t.Context(), pgtest.FreshDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		store.SetSealer(storetest.NewSealer(t))
		t.Cleanup(func() { store.Close() })
		fn(t, store)
	})
}
