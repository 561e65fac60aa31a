package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/tripcap/tripcap"
)

// PasswordParams is argon2id's cost. A hash carries the parameters it was
// made with (PHC string format), so raising them later leaves old hashes
// verifiable.
type PasswordParams struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

// DefaultPasswordParams is OWASP's first argon2id configuration (19 MiB,
// two passes, one lane): about 30 ms a login on a server core.
var DefaultPasswordParams = PasswordParams{MemoryKiB: 19 * 1024, Time: 2, Threads: 1}

const (
	saltBytes = 16
	keyBytes  = 32
	// Bounds of the parameters a stored hash may ask for, so that a
	// tampered row cannot make a login allocate without limit.
	maxMemoryKiB = 256 << 10
	maxTime      = 16
)

// checkPassword refuses a password too short or too long.
func checkPassword(pw string) error {
	if n := utf8.RuneCountInString(pw); n < MinPasswordLength {
		return tripcap.Errorf(tripcap.EINVALID, "password: %d characters; at least %d are required", n, MinPasswordLength)
	}
	if len(pw) > maxPasswordBytes {
		return tripcap.Errorf(tripcap.EINVALID, "password: longer than %d bytes", maxPasswordBytes)
	}
	return nil
}

// hashPassword returns pw's argon2id hash in the PHC string format:
// $argon2id$v=19$m=MEMORY,t=TIME,p=THREADS$SALT$KEY.
func hashPassword(pw string, p PasswordParams) (string, error) {
	salt := make([]byte, saltBytes)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, keyBytes)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// parsePasswordHash reads a PHC argon2id string.
func parsePasswordHash(encoded string) (PasswordParams, []byte, []byte, error) {
	var p PasswordParams
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("password hash: not an argon2id PHC string")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, fmt.Errorf("password hash: version %q is not %d", parts[2], argon2.Version)
	}
	var threads uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &threads); err != nil || n != 3 {
		return p, nil, nil, fmt.Errorf("password hash: parameters %q", parts[3])
	}
	if p.MemoryKiB < 8 || p.MemoryKiB > maxMemoryKiB || p.Time < 1 || p.Time > maxTime || threads < 1 || threads > 255 {
		return p, nil, nil, fmt.Errorf("password hash: parameters %q out of bounds", parts[3])
	}
	p.Threads = uint8(threads)
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return p, nil, nil, fmt.Errorf("password hash: salt")
	}
	key, err := enc.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 128 {
		return p, nil, nil, fmt.Errorf("password hash: key")
	}
	return p, salt, key, nil
}

// verifyPassword reports whether pw matches the encoded hash, comparing in
// constant time.
func verifyPassword(pw, encoded string) (bool, error) {
	p, salt, key, err := parsePasswordHash(encoded)
	if err != nil {
		return false, err
	}
	if len(pw) > maxPasswordBytes {
		return false, nil
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// hashTurn waits, for at most PasswordWait and while ctx lasts, for one of
// the PasswordConcurrency turns to hash a password in; done gives it back.
// Every hash (a known user's, the dummy of an unknown one) takes a turn,
// so both wait alike.
func (s *Service) hashTurn(ctx context.Context) (done func(), err error) {
	done = func() { <-s.hashing }
	select {
	case s.hashing <- struct{}{}:
		return done, nil
	default:
	}
	t := time.NewTimer(s.cfg.PasswordWait)
	defer t.Stop()
	select {
	case s.hashing <- struct{}{}:
		return done, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting to check a password: %w", ctx.Err())
	case <-t.C:
		return nil, tripcap.Errorf(tripcap.EUNAVAILABLE, "too many passwords are being checked at once; retry later")
	}
}
