package sqlite_test

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/storetest"
)

func TestSecrets(t *testing.T) {
	storetest.Secrets(t, func(t *testing.T) (storetest.SecretStore, storetest.Raw) {
		path := filepath.Join(t.TempDir(), "tripcap.db")
		s := openAt(t, path)
		db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return s, storetest.Raw{DB: db}
	})
}

// The database and the files SQLite keeps beside it are the owner's alone,
// whatever the umask, and so is the directory the store creates.
func TestFileModes(t *testing.T) {
	// No umask to narrow what is created: the modes are the store's own.
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "tripcap.db")
	s := openAt(t, path)
	if err := s.CreateStorageAccount(t.Context(), &tripcap.StorageAccount{Name: "a", URL: "file:///srv/a"}); err != nil {
		t.Fatal(err)
	}
	wantMode := func(p string, want os.FileMode) {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", p, got, want)
		}
	}
	wantMode(dir, 0o700)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		wantMode(p, 0o600)
	}

	// A database made before this rule (files 0644) is made private when opened.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o644); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	s = openAt(t, path)
	if err := s.CreateStorageAccount(t.Context(), &tripcap.StorageAccount{Name: "b", URL: "file:///srv/b"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		wantMode(p, 0o600)
	}
}

// Nothing secret reaches the database's files in clear: the file, its WAL.
func TestSecretsNotInFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tripcap.db")
	s := openAt(t, path)
	ctx := t.Context()
	const secret = "AzureKeyInClear0123456789"
	if err := s.CreateStorageAccount(ctx, &tripcap.StorageAccount{Name: "azure", URL: "azblob://acct/c?key=" + secret}); err != nil {
		t.Fatal(err)
	}
	g := &tripcap.ActionGroup{ID: tripcap.NewID(), Name: "ops", SigningSecret: "SigningSecretInClear0123",
		WebhookReceivers: []tripcap.WebhookReceiver{{Name: "fn", ServiceURI: "https://fn.example.invalid/api?code=FunctionCodeInClear"}}}
	if err := s.CreateActionGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindStorageAccounts(ctx); err != nil || got[0].URL != "azblob://acct/c?key="+secret {
		t.Fatalf("storage accounts: %v, %v", got, err)
	}
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			t.Fatalf("%s is empty: nothing was checked", p)
		}
		for _, s := range []string{secret, "SigningSecretInClear0123", "FunctionCodeInClear"} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q in clear", p, s)
			}
		}
	}
}
