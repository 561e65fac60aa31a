// Package seal implements tripcap.Sealer with AES-256-GCM under a master
// key: the secrets tripcap keeps in its database (signing secrets, webhook
// URLs, storage keys) are stored sealed, so a copy of the database file or
// of a backup alone does not give them away.
//
// A sealed value is text:
//
//	tcs1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>
//
// "tcs1" is the format (version 1: AES-256-GCM, 12-byte random nonce); the
// key id (8 hex digits derived from the key) says which master key sealed
// it, so a Sealer may hold the old keys beside the new one while a rotation
// reseals. The additional data authenticated with the ciphertext is the
// version, the key id and the field the value belongs to: a value moved to
// another column (or another row, when the field names the row) does not
// open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/tripcap/tripcap"
)

// KeySize is a master key's length: AES-256.
const KeySize = 32

// version is the format this package writes.
const version = "tcs1"

var _ tripcap.Sealer = (*Sealer)(nil)

type key struct {
	id   string
	aead cipher.AEAD
}

// Sealer seals with its first key and opens with any of its keys. It is
// safe for concurrent use.
type Sealer struct {
	keys []key
}

// NewKey returns a new random master key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	// crypto/rand.Read never fails (it panics on a broken system source).
	_, _ = rand.Read(k)
	return k
}

// KeyID is the id sealed values carry of the key that sealed them: a
// truncated hash, which tells keys apart and says nothing of the key.
func KeyID(k []byte) string {
	h := sha256.Sum256(append([]byte("tripcap master key id\x00"), k...))
	return hex.EncodeToString(h[:4])
}

// New returns a Sealer sealing with keys[0] and opening with any of keys.
func New(keys ...[]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: no master key")
	}
	s := &Sealer{}
	seen := map[string]bool{}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("seal: master key %d is %d bytes; a master key is %d bytes (AES-256)", i+1, len(k), KeySize)
		}
		id := KeyID(k)
		if seen[id] {
			continue
		}
		seen[id] = true
		b, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
		aead, err := cipher.NewGCM(b)
		if err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
		s.keys = append(s.keys, key{id: id, aead: aead})
	}
	return s, nil
}

// KeyIDs lists the ids of the keys held, the sealing key first.
func (s *Sealer) KeyIDs() []string {
	out := make([]string, len(s.keys))
	for i, k := range s.keys {
		out[i] = k.id
	}
	return out
}

func aad(id, field string) []byte { return []byte(version + ":" + id + ":" + field) }

// Seal encrypts plaintext for field under the first key.
func (s *Sealer) Seal(field string, plaintext []byte) (string, error) {
	k := s.keys[0]
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	_, _ = rand.Read(nonce)
	out := k.aead.Seal(nonce, nonce, plaintext, aad(k.id, field))
	return version + ":" + k.id + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value Seal returned for field.
func (s *Sealer) Open(field, sealed string) ([]byte, error) {
	ver, rest, ok := strings.Cut(sealed, ":")
	if !ok || !IsSealed(sealed) {
		return nil, errors.New("not a sealed value")
	}
	if ver != version {
		return nil, fmt.Errorf("sealed in format %q, which this tripcap does not read (it reads %q)", ver, version)
	}
	id, data, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, errors.New("sealed value has no key id")
	}
	i := -1
	for j, k := range s.keys {
		if k.id == id {
			i = j
		}
	}
	if i < 0 {
		return nil, fmt.Errorf("sealed under master key %s, which is not among the keys held (%s): is this the master key the database was sealed with?", id, strings.Join(s.KeyIDs(), ", "))
	}
	k := s.keys[i]
	raw, err := base64.RawURLEncoding.DecodeString(data)
	if err != nil || len(raw) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, errors.New("sealed value is damaged (not base64url of nonce, ciphertext and tag)")
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], aad(id, field))
	if err != nil {
		return nil, fmt.Errorf("sealed value does not open under master key %s: it was altered, or belongs to another field", id)
	}
	return plain, nil
}

// IsSealed reports whether v has the form of a sealed value: "tcs", a
// version number, ':' (any version, so that a value sealed by a newer
// tripcap is not taken for a clear one and sealed again).
func IsSealed(v string) bool {
	rest, ok := strings.CutPrefix(v, "tcs")
	if !ok {
		return false
	}
	digits := 0
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
		digits++
	}
	return digits > 0 && digits < len(rest) && rest[digits] == ':'
}

// IsSealed is the package's IsSealed.
func (s *Sealer) IsSealed(v string) bool { return IsSealed(v) }
