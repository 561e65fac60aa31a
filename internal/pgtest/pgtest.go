// Package pgtest gives tests their own PostgreSQL database on the server that
// scripts/start-postgres runs (TRIPCAP_TEST_POSTGRES).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tripcap/tripcap/internal/testenv"
)

// FreshDatabase creates an empty database on the server TRIPCAP_TEST_POSTGRES
// names (scripts/start-postgres prints one), drops it when the test ends,
// and returns its DSN.
func FreshDatabase(t testing.TB) string {
	t.Helper()
	admin := testenv.Env(t, "TRIPCAP_TEST_POSTGRES")
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to TRIPCAP_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	name := "tripcap_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	if strings.Contains(admin, "://") {
		u, err := url.Parse(admin)
		if err != nil {
			t.Fatalf("TRIPCAP_TEST_POSTGRES: %v", err)
		}
		u.Path = "/" + name
		// Enough connections for the concurrency tests to race for real.
		q := u.Query()
		q.Set("pool_max_conns", "16")
		u.RawQuery = q.Encode()
		return u.String()
	}
	return admin + " dbname=" + name + " pool_max_conns=16"
}
