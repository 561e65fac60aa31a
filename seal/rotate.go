package seal

import (
	"errors"
	"fmt"
)

// Rotate replaces the master key in the key file at path by a new one;
// reseal must reseal every secret under the Sealer it is given (in one
// transaction) with its first key. The steps, each safe to be cut short:
//
//  1. The file is rewritten (atomically) with the new key first and the
//     old keys after it. Cut here: a server started now seals under the
//     new key and opens what the old ones sealed; nothing is lost.
//  2. reseal seals every secret under the new key, in one transaction.
//     Cut here: the transaction is rolled back (or committed whole); the
//     file still holds every key either needs.
//  3. The file is rewritten with the new key alone.
//
// Run again after a cut, Rotate starts a new rotation with the keys the
// file holds, and ends with only its own new key. Servers hold the key in
// memory: stop them while Rotate runs (a server still on the old key
// could seal a value after step 2 that the new key alone cannot open) and
// start them after.
func Rotate(path string, reseal func(s *Sealer) error) (newKeyID string, err error) {
	old, err := ReadFile(path)
	if err != nil {
		return "", err
	}
	k := NewKey()
	s, err := New(append([][]byte{k}, old...)...)
	if err != nil {
		return "", err
	}
	if err := WriteFile(path, append([][]byte{k}, old...)); err != nil {
		return "", fmt.Errorf("rotate master key: add the new key to the key file: %w", err)
	}
	if err := reseal(s); err != nil {
		return "", fmt.Errorf("rotate master key: reseal (the key file holds the new key and the old; run the rotation again): %w", err)
	}
	if err := WriteFile(path, [][]byte{k}); err != nil {
		return "", fmt.Errorf("rotate master key: every secret is sealed under the new key %s, but the old keys could not be dropped from the key file (run the rotation again): %w", KeyID(k), err)
	}
	return KeyID(k), nil
}

// RotateEnv finishes a rotation of keys given in the environment (EnvVar's
// value env): the operator puts the new key first and the old after it,
// reseal seals every secret under the first, and the old keys may then be
// dropped from the environment.
func RotateEnv(env string, reseal func(s *Sealer) error) (keyID string, err error) {
	keys, err := ParseEnv(env)
	if err != nil {
		return "", err
	}
	s, err := New(keys...)
	if err != nil {
		return "", err
	}
	if len(s.keys) == 1 {
		return "", errors.New(EnvVar + " holds one key: put the new key first and the old one after it (NEW,OLD), rotate, then set it to the new key alone")
	}
	if err := reseal(s); err != nil {
		return "", fmt.Errorf("rotate master key: reseal: %w", err)
	}
	return s.KeyIDs()[0], nil
}
