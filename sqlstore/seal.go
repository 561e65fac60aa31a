package sqlstore

import (
	"fmt"

	"github.com/tripcap/tripcap"
)

// SetSealer makes the store encrypt secret columns with x. Call it before use.
func (s *Store) SetSealer(x tripcap.Sealer) { s.sealer = x }

// sealSecret encrypts a secret column's value ("" stays "").
func (s *Store) sealSecret(field, plain string) (string, error) {
	if plain == "" || s.sealer == nil {
		return plain, nil
	}
	v, err := s.sealer.Seal([]byte(plain))
	if err != nil {
		return "", fmt.Errorf("seal %s: %w", field, err)
	}
	return v, nil
}

// openSecret decrypts what sealSecret stored.
func (s *Store) openSecret(field, sealed string) (string, error) {
	if sealed == "" || s.sealer == nil {
		return sealed, nil
	}
	b, err := s.sealer.Open(sealed)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", field, err)
	}
	return string(b), nil
}
