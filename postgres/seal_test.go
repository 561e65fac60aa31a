package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/tripcap/tripcap/internal/pgtest"
	"github.com/tripcap/tripcap/storetest"
)

func TestSecrets(t *testing.T) {
	storetest.Secrets(t, func(t *testing.T) (storetest.SecretStore, storetest.Raw) {
		dsn := pgtest.FreshDatabase(t)
		s := open(t, dsn)
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		db := stdlib.OpenDB(*cfg.ConnConfig)
		t.Cleanup(func() { db.Close() })
		return s, storetest.Raw{DB: db, Numbered: true}
	})
}
