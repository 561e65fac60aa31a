package seal_test

import (
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tripcap/tripcap/seal"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// A rotation cut at each step leaves every value readable, and run again it
// ends with one key.
func TestRotate(t *testing.T) {
	path := filepath.Join(t.TempDir(), seal.FileName)
	first, err := seal.Load(path, "", quiet())
	if err != nil {
		t.Fatal(err)
	}
	oldID := first.KeyIDs()[0]
	stored := map[string]string{}
	stored["a"], _ = first.Seal("a", []byte("secret a"))

	// Cut during the reseal: the transaction is gone, the old values stay.
	_, err = seal.Rotate(path, func(s *seal.Sealer) error { return errors.New("database went away") })
	if err == nil || !strings.Contains(err.Error(), "run the rotation again") {
		t.Fatalf("rotation whose reseal failed: %v", err)
	}
	keys, err := seal.ReadFile(path)
	if err != nil || len(keys) != 2 || seal.KeyID(keys[1]) != oldID {
		t.Fatalf("key file after a cut rotation: %d keys, %v; want the new key and the old", len(keys), err)
	}
	mid, err := seal.Load(path, "", quiet())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := mid.Open("a", stored["a"]); err != nil || string(got) != "secret a" {
		t.Fatalf("a server started after the cut opens an old value: %q, %v", got, err)
	}
	// What a server started after the cut sealed, under the new key.
	stored["b"], _ = mid.Seal("b", []byte("secret b"))

	// Run again: everything resealed under a newer key, the others dropped.
	newID, err := seal.Rotate(path, func(s *seal.Sealer) error {
		for f, v := range stored {
			plain, err := s.Open(f, v)
			if err != nil {
				return err
			}
			if stored[f], err = s.Seal(f, plain); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	keys, err = seal.ReadFile(path)
	if err != nil || len(keys) != 1 || seal.KeyID(keys[0]) != newID || newID == oldID {
		t.Fatalf("key file after rotation: %d keys, %v", len(keys), err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode after rotation: %04o", fi.Mode().Perm())
	}
	last, err := seal.Load(path, "", quiet())
	if err != nil {
		t.Fatal(err)
	}
	for f, v := range stored {
		if !strings.HasPrefix(v, "tcs1:"+newID+":") {
			t.Fatalf("%s not under the new key: %s", f, v)
		}
		if _, err := last.Open(f, v); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRotateEnv(t *testing.T) {
	k := base64.StdEncoding.EncodeToString(seal.NewKey())
	if _, err := seal.RotateEnv(k, func(*seal.Sealer) error { return nil }); err == nil || !strings.Contains(err.Error(), "NEW,OLD") {
		t.Fatalf("rotation with one key in the environment: %v", err)
	}
	newKey := seal.NewKey()
	var got []string
	id, err := seal.RotateEnv(base64.StdEncoding.EncodeToString(newKey)+","+k, func(s *seal.Sealer) error { got = s.KeyIDs(); return nil })
	if err != nil || id != seal.KeyID(newKey) || len(got) != 2 || got[0] != id {
		t.Fatalf("rotation from the environment: %s %v %v", id, got, err)
	}
}
