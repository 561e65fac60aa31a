package seal

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/tripcap/tripcap/atomicfile"
)

// The master keys live in a key file beside the database (mode 0600, one
// base64 key a line, the sealing key first) or, overriding it, in the
// environment variable EnvVar (the same keys, separated by commas).
// More than one key is held only during a rotation (see Rotate).

// EnvVar gives the master keys in the environment.
const EnvVar = "TRIPCAP_MASTER_KEY"

// FileName is the key file's name in the server's data directory.
const FileName = "master.key"

// decodeKeys decodes base64 keys; what names their source in errors.
func decodeKeys(what string, fields []string) ([][]byte, error) {
	var keys [][]byte
	for i, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(f)
		if err != nil {
			return nil, fmt.Errorf("%s: key %d is not base64: %w", what, i+1, err)
		}
		if len(k) != KeySize {
			return nil, fmt.Errorf("%s: key %d is %d bytes after base64 decoding; a master key is %d bytes", what, i+1, len(k), KeySize)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: holds no key", what)
	}
	return keys, nil
}

func encodeKeys(keys [][]byte) []byte {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(base64.StdEncoding.EncodeToString(k))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// ParseEnv decodes EnvVar's value: base64 keys separated by commas, the
// sealing key first.
func ParseEnv(v string) ([][]byte, error) {
	return decodeKeys(EnvVar, strings.Split(v, ","))
}

// ReadFile reads the key file at path. It is refused when anyone but its
// owner may read or write it (mode wider than 0600), and when a key is not
// KeySize bytes.
func ReadFile(path string) ([][]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("master key file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&^0o600 != 0 {
		return nil, fmt.Errorf("master key file %s: mode %04o is wider than 0600; run chmod 600 %s if no one else read it, or rotate the master key", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	return decodeKeys("master key file "+path, strings.Split(string(b), "\n"))
}

// WriteFile replaces the key file at path with keys (the sealing key
// first), atomically, mode 0600.
func WriteFile(path string, keys [][]byte) error {
	if len(keys) == 0 {
		return errors.New("master key file: no key to write")
	}
	return atomicfile.Write(path, encodeKeys(keys), 0o600)
}

// createFile writes a new key file at path unless one exists: written
// whole beside it, then linked into place, so that two servers starting at
// once on one directory end up with the same key, never each their own.
func createFile(path string, k []byte) (created bool, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("master key file: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return false, fmt.Errorf("master key file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(encodeKeys([][]byte{k}))
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, path)
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
	}
	if err != nil {
		return false, fmt.Errorf("create master key file %s: %w", path, err)
	}
	return true, nil
}

// Load returns the server's Sealer. env is EnvVar's value: when set, its
// keys are used, and the log says so (and that they override the file at
// path, when there is one). Otherwise the key file at path is read, and
// created with a new key when there is none.
func Load(path, env string, log *slog.Logger) (*Sealer, error) {
	log = log.With("component", "seal")
	if env != "" {
		keys, err := ParseEnv(env)
		if err != nil {
			return nil, err
		}
		s, err := New(keys...)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(path); err == nil {
			log.Warn("master key from the environment overrides the key file", "variable", EnvVar, "file", path, "keyId", s.KeyIDs()[0])
		} else {
			log.Info("master key from the environment", "variable", EnvVar, "keyId", s.KeyIDs()[0])
		}
		return s, nil
	}
	created, err := createFile(path, NewKey())
	if err != nil {
		return nil, err
	}
	keys, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := New(keys...)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("created the master key file; back it up apart from the database: sealed secrets cannot be read without it", "file", path, "keyId", s.KeyIDs()[0])
	}
	if len(keys) > 1 {
		log.Warn("the master key file holds more than one key: a rotation did not finish; run tripcap server rotate-master-key again", "file", path, "keyIds", s.KeyIDs())
	}
	return s, nil
}
