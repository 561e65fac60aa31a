package main

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// database is the store a run's server uses.
type database struct {
	url string // the server's --db
	// pid is the PostgreSQL postmaster when it runs on this machine (0
	// otherwise): its CPU is the server's too.
	pid  int
	drop func(context.Context) error
}

// sqliteDatabase is a fresh SQLite file in the server's data directory, on
// the server's disk as in production (not a tmpfs).
func sqliteDatabase(dataDir string) *database {
	return &database{url: "sqlite://" + filepath.Join(dataDir, "tripcap.db"), drop: func(context.Context) error { return nil }}
}

// postgresDatabase creates a fresh database for the run in the cluster dsn
// points at, so that runs do not see each other's hosts, and finds the
// cluster's postmaster to measure its CPU.
func postgresDatabase(ctx context.Context, dsn string) (*database, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	name := "tripcap_fleet_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("-dsn: give a postgres:// URL")
	}
	u.Path = "/" + name
	db := &database{url: u.String(), drop: func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		return err
	}}
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err == nil {
		if f, err := procStatFields(backend); err == nil {
			db.pid, _ = strconv.Atoi(f[1]) // the backend's parent is the postmaster
		}
	}
	return db, nil
}

// redact hides a password in a database URL.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "****")
	}
	return strings.Replace(u.String(), "%2A%2A%2A%2A", "****", 1)
}
