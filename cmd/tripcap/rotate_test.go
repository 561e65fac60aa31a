package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/pgtest"
	"github.com/tripcap/tripcap/seal"
)

// `tripcap server rotate-master-key` on SQLite and PostgreSQL: the key
// file ends with one new key, every secret is resealed under it, and the
// next start reads them all.
func TestRotateMasterKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		db   func(t *testing.T) string
	}{
		{"SQLite", func(*testing.T) string { return "" }},
		{"PostgreSQL", func(t *testing.T) string { return pgtest.FreshDatabase(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			o := &serverOptions{data: t.TempDir(), db: tc.db(t)}
			must(t, o.resolve())
			store, err := openSealedStore(ctx, o, log)
			must(t, err)
			g := &tripcap.ActionGroup{ID: tripcap.NewID(), Name: "ops", SigningSecret: "SigningS3cretSigningS3cret",
				WebhookReceivers: []tripcap.WebhookReceiver{{Name: "fn", ServiceURI: "https://fn.example.invalid/api?code=FnS3cret"}}}
			must(t, store.CreateActionGroup(ctx, g))
			must(t, store.CreateStorageAccount(ctx, &tripcap.StorageAccount{Name: "azure", URL: "azblob://acct/c?key=AzS3cret"}))
			must(t, store.Close())
			oldKeys, err := seal.ReadFile(o.masterKeyFile)
			must(t, err)

			var out bytes.Buffer
			must(t, rotateMasterKey(ctx, &serverOptions{data: o.data, db: o.db}, "", log, &out))
			keys, err := seal.ReadFile(o.masterKeyFile)
			must(t, err)
			if len(keys) != 1 || bytes.Equal(keys[0], oldKeys[0]) {
				t.Fatalf("key file after rotation: %d keys, the old one kept: %v", len(keys), bytes.Equal(keys[0], oldKeys[0]))
			}
			id := seal.KeyID(keys[0])
			if !strings.Contains(out.String(), "Resealed 3 secrets") || !strings.Contains(out.String(), id) {
				t.Fatalf("rotation said: %s", out.String())
			}

			// The next start reads every secret with the new key alone.
			store, err = openSealedStore(ctx, o, log)
			must(t, err)
			defer store.Close()
			got, err := store.FindActionGroup(ctx, tripcap.ActionGroupFilter{ID: &g.ID})
			must(t, err)
			if got.SigningSecret != g.SigningSecret || got.WebhookReceivers[0].ServiceURI != g.WebhookReceivers[0].ServiceURI {
				t.Fatalf("group after rotation: %+v", got)
			}
			as, err := store.FindStorageAccounts(ctx)
			must(t, err)
			if len(as) != 1 || as[0].URL != "azblob://acct/c?key=AzS3cret" {
				t.Fatalf("storage accounts after rotation: %+v", as)
			}
			// With the old key alone, nothing opens: the old key is of no use to a thief.
			must(t, seal.WriteFile(o.masterKeyFile, oldKeys))
			old, err := openSealedStore(ctx, o, log)
			if err == nil {
				_, err = old.FindStorageAccounts(ctx)
				old.Close()
			}
			if err == nil || !strings.Contains(err.Error(), id) {
				t.Fatalf("the old key after rotation: %v, want an error naming the new key", err)
			}
		})
	}
}

// An empty data directory has no key to rotate: a clear error, no new key.
func TestRotateMasterKeyWithoutKeyFile(t *testing.T) {
	o := &serverOptions{data: t.TempDir()}
	err := rotateMasterKey(t.Context(), o, "", slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "master key file") {
		t.Fatalf("rotation with no key file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(o.data, seal.FileName)); !os.IsNotExist(err) {
		t.Fatalf("a key file was created: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
