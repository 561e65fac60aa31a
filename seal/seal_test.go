package seal_test

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tripcap/tripcap/seal"
)

func newSealer(t *testing.T, keys ...[]byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpen(t *testing.T) {
	k := seal.NewKey()
	s := newSealer(t, k)
	for _, plain := range []string{"", "x", "https://fn.example.invalid/api?code=abc", strings.Repeat("é", 1000)} {
		v, err := s.Seal("t.id.col", []byte(plain))
		if err != nil {
			t.Fatal(err)
		}
		if !s.IsSealed(v) || !strings.HasPrefix(v, "tcs1:"+seal.KeyID(k)+":") {
			t.Fatalf("sealed %q as %q: not in the sealed form", plain, v)
		}
		if len(plain) > 8 && strings.Contains(v, plain) {
			t.Fatalf("sealed value %q holds the plaintext", v)
		}
		got, err := s.Open("t.id.col", v)
		if err != nil || string(got) != plain {
			t.Fatalf("open: %q, %v; want %q", got, err, plain)
		}
		// Another field: refused.
		if _, err := s.Open("t.other.col", v); err == nil || !strings.Contains(err.Error(), "another field") {
			t.Fatalf("opened under another field: %v", err)
		}
	}
	a, _ := s.Seal("f", []byte("same"))
	b, _ := s.Seal("f", []byte("same"))
	if a == b {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
}

func TestTamper(t *testing.T) {
	s := newSealer(t, seal.NewKey())
	v, _ := s.Seal("f", []byte("signing secret"))
	i := strings.LastIndexByte(v, ':') + 1
	raw, err := base64.RawURLEncoding.DecodeString(v[i:])
	if err != nil {
		t.Fatal(err)
	}
	for b := range raw {
		c := bytes.Clone(raw)
		c[b] ^= 0x80
		if _, err := s.Open("f", v[:i]+base64.RawURLEncoding.EncodeToString(c)); err == nil || !strings.Contains(err.Error(), "altered") {
			t.Fatalf("byte %d flipped: %v, want the value refused as altered", b, err)
		}
	}
	for _, bad := range []string{"tcs1:", "tcs1:abcd", "tcs1:" + seal.KeyID(seal.NewKey()) + ":AAAA", v[:len(v)-30], "tcs9:x:y", "plain"} {
		if _, err := s.Open("f", bad); err == nil {
			t.Fatalf("%q opened", bad)
		}
	}
}

func TestRotationKeys(t *testing.T) {
	oldKey, newKey := seal.NewKey(), seal.NewKey()
	old := newSealer(t, oldKey)
	v, _ := old.Seal("f", []byte("x"))
	both := newSealer(t, newKey, oldKey)
	if got, err := both.Open("f", v); err != nil || string(got) != "x" {
		t.Fatalf("open an old value with old and new keys: %q, %v", got, err)
	}
	w, _ := both.Seal("f", []byte("y"))
	if !strings.HasPrefix(w, "tcs1:"+seal.KeyID(newKey)+":") {
		t.Fatalf("sealed %q, want it under the first (new) key %s", w, seal.KeyID(newKey))
	}
	if _, err := old.Open("f", w); err == nil || !strings.Contains(err.Error(), seal.KeyID(newKey)) {
		t.Fatalf("open a new value with the old key only: %v, want an error naming the key", err)
	}
	if _, err := seal.New(make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte key was taken")
	}
	if _, err := seal.New(); err == nil {
		t.Fatal("no key was taken")
	}
}

func TestIsSealed(t *testing.T) {
	for v, want := range map[string]bool{"tcs1:ab:cd": true, "tcs12:x": true, "tcs:x": false, "tcs1": false,
		"https://x?code=y": false, "azblob://a/c?key=k": false, "": false, "TCS1:x": false} {
		if got := seal.IsSealed(v); got != want {
			t.Errorf("IsSealed(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestKeyFile(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	path := filepath.Join(t.TempDir(), "data", seal.FileName)
	s, err := seal.Load(path, "", log)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("created key file: %v, %v; want mode 0600", fi, err)
	}
	if !strings.Contains(logs.String(), "created the master key file") {
		t.Fatalf("creating the key file was not logged: %s", logs.String())
	}
	v, _ := s.Seal("f", []byte("x"))
	// The next start reads the same key.
	s2, err := seal.Load(path, "", log)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Open("f", v); err != nil || string(got) != "x" {
		t.Fatalf("after reloading the key file: %q, %v", got, err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(logs.String(), strings.TrimSpace(string(b))) {
		t.Fatal("the log holds the key")
	}

	// Wider than 0600: refused, naming the mode.
	for _, mode := range []os.FileMode{0o640, 0o604, 0o700} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := seal.Load(path, "", log); err == nil || !strings.Contains(err.Error(), "wider than 0600") {
			t.Fatalf("mode %04o: %v, want it refused", mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := seal.Load(path, "", log); err != nil {
		t.Fatalf("mode 0400: %v", err)
	}

	// Not 32 bytes, not base64: refused.
	for _, bad := range []string{base64.StdEncoding.EncodeToString(make([]byte, 31)) + "\n", "not base64!\n", "\n"} {
		p := filepath.Join(t.TempDir(), seal.FileName)
		if err := os.WriteFile(p, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := seal.Load(p, "", log); err == nil {
			t.Fatalf("key file %q taken", bad)
		}
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	path := filepath.Join(t.TempDir(), seal.FileName)
	if err := seal.WriteFile(path, [][]byte{seal.NewKey()}); err != nil {
		t.Fatal(err)
	}
	envKey, oldKey := seal.NewKey(), seal.NewKey()
	env := base64.StdEncoding.EncodeToString(envKey) + "," + base64.StdEncoding.EncodeToString(oldKey)
	s, err := seal.Load(path, env, log)
	if err != nil {
		t.Fatal(err)
	}
	if ids := s.KeyIDs(); len(ids) != 2 || ids[0] != seal.KeyID(envKey) || ids[1] != seal.KeyID(oldKey) {
		t.Fatalf("keys %v, want the environment's, in its order", ids)
	}
	if !strings.Contains(logs.String(), "overrides the key file") || !strings.Contains(logs.String(), seal.EnvVar) {
		t.Fatalf("the override was not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), base64.StdEncoding.EncodeToString(envKey)) {
		t.Fatal("the log holds the key")
	}
	if _, err := seal.Load(path, "c2hvcnQ=", log); err == nil || !strings.Contains(err.Error(), seal.EnvVar) {
		t.Fatalf("a short key in the environment: %v, want an error naming %s", err, seal.EnvVar)
	}
}

func FuzzOpen(f *testing.F) {
	k := make([]byte, seal.KeySize)
	s, err := seal.New(k)
	if err != nil {
		f.Fatal(err)
	}
	v, _ := s.Seal("f", []byte("secret"))
	f.Add(v)
	f.Add("tcs1:" + seal.KeyID(k) + ":")
	f.Add("tcs1::")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := s.Open("f", in)
		if err == nil && in != v {
			t.Fatalf("%q, never sealed, opened (to %q)", in, got)
		}
		if err != nil && !seal.IsSealed(in) && !strings.Contains(err.Error(), "not a sealed value") {
			t.Fatalf("%q: %v", in, err)
		}
	})
}

func FuzzParseEnv(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 32)))
	f.Add("a,b,,")
	f.Fuzz(func(t *testing.T, in string) {
		keys, err := seal.ParseEnv(in)
		if err != nil {
			return
		}
		for _, k := range keys {
			if len(k) != seal.KeySize {
				t.Fatalf("%q gave a %d-byte key", in, len(k))
			}
		}
	})
}
