package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
)

// Keys are ES256 (ECDSA P-256), the algorithm every JWT library verifies.
const keyAlgorithm = "ES256"

// keyLeeway is the clock difference between replicas a key's retirement allows for.
const keyLeeway = time.Minute

// loadedKey is a signing key parsed.
type loadedKey struct {
	kid         string
	priv        *ecdsa.PrivateKey
	created     time.Time
	retireAfter time.Time
}

// keyRing holds the signing keys this replica knows, read from the store.
// One key signs for KeyRotation from its creation; then the next signing
// asks the store for a newer one, creating it when there is none. The kid
// of a new key is its rotation period's (periodKID), so two replicas
// rotating at the same moment offer the store the same kid: one key is
// stored, the other replica's is refused, and both sign with the stored
// one. A token whose kid is unknown here is looked up in the store, so a
// key another replica made is verified at once.
type keyRing struct {
	store tripcap.IdentityStore
	cfg   *Config
	log   *slog.Logger

	mu     sync.RWMutex
	keys   map[string]*loadedKey
	signer *loadedKey
	// rotating serializes creating keys in this process.
	rotating sync.Mutex
}

func parseKey(k *tripcap.SigningKey) (*loadedKey, error) {
	if k.Algorithm != keyAlgorithm {
		return nil, fmt.Errorf("signing key %s: algorithm %q is not %s", k.KID, k.Algorithm, keyAlgorithm)
	}
	der, err := base64.StdEncoding.DecodeString(k.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", k.KID, err)
	}
	anyKey, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", k.KID, err)
	}
	priv, ok := anyKey.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("signing key %s: not a P-256 ECDSA key", k.KID)
	}
	return &loadedKey{kid: k.KID, priv: priv, created: k.CreatedAt, retireAfter: k.RetireAfter}, nil
}

// signing returns the key to sign with now, rotating when it is due.
func (r *keyRing) signing(ctx context.Context) (*loadedKey, error) {
	now := r.cfg.Now()
	r.mu.RLock()
	k := r.signer
	r.mu.RUnlock()
	if k != nil && r.signs(k, now) {
		return k, nil
	}
	r.rotating.Lock()
	defer r.rotating.Unlock()
	if err := r.load(ctx, now); err != nil {
		return nil, err
	}
	if k := r.newestSigner(now); k != nil {
		return k, nil
	}
	err := r.create(ctx, now, r.periodKID(now))
	if tripcap.ErrorCode(err) == tripcap.ECONFLICT {
		// Another replica stored this period's key first: sign with it or,
		// when it cannot sign (a changed rotation period, clocks apart), with
		// a key of this replica's own.
		if err = r.load(ctx, now); err == nil {
			if k := r.newestSigner(now); k != nil {
				return k, nil
			}
			err = r.create(ctx, now, tripcap.NewID())
		}
	}
	if err != nil {
		return nil, err
	}
	// Read back: a replica that rotated at the same moment may have stored
	// a newer key, and every replica then signs with the newest.
	if err := r.load(ctx, now); err != nil {
		return nil, err
	}
	if k := r.newestSigner(now); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("signing key: none usable after creating one")
}

// signs reports whether k may sign at now.
func (r *keyRing) signs(k *loadedKey, now time.Time) bool {
	return now.Before(k.created.Add(r.cfg.KeyRotation)) && !now.Before(k.created.Add(-keyLeeway))
}

func (r *keyRing) newestSigner(now time.Time) *loadedKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *loadedKey
	for _, k := range r.keys {
		if !r.signs(k, now) {
			continue
		}
		if best == nil || k.created.After(best.created) || k.created.Equal(best.created) && k.kid > best.kid {
			best = k
		}
	}
	r.signer = best
	return best
}

// load replaces the known keys with the store's usable ones.
func (r *keyRing) load(ctx context.Context, now time.Time) error {
	stored, err := r.store.FindSigningKeys(ctx, tripcap.SigningKeyFilter{UsableAt: &now})
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	keys := map[string]*loadedKey{}
	for _, sk := range stored {
		k, err := parseKey(sk)
		if err != nil {
			r.log.Error("skipping a signing key", "kid", sk.KID, "err", err)
			continue
		}
		keys[k.kid] = k
	}
	r.mu.Lock()
	r.keys = keys
	r.mu.Unlock()
	return nil
}

// periodKID is the kid of a key made now: the start of the rotation period
// holding now, and bits every replica derives alike from the period.
func (r *keyRing) periodKID(now time.Time) string {
	period := r.cfg.KeyRotation.Milliseconds()
	if period <= 0 {
		return tripcap.NewID()
	}
	n := now.UnixMilli() / period
	sum := sha256.Sum256(fmt.Appendf(nil, "tripcap signing key %d/%d", period, n))
	return tripcap.IDAt(time.UnixMilli(n*period), [10]byte(sum[:10]))
}

// create stores a new key with this kid and deletes the retired ones; an
// ECONFLICT when the kid is taken.
func (r *keyRing) create(ctx context.Context, now time.Time, kid string) error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("encode signing key: %w", err)
	}
	k := &tripcap.SigningKey{KID: kid, Algorithm: keyAlgorithm, PrivateKey: base64.StdEncoding.EncodeToString(der),
		CreatedAt: now.UTC(), RetireAfter: now.UTC().Add(r.cfg.KeyRotation + MaxJWTLifetime + keyLeeway)}
	if err := r.store.CreateSigningKey(ctx, k); err != nil {
		return fmt.Errorf("store signing key: %w", err) // keeps its ECONFLICT
	}
	r.log.Info("token signing key created", "kid", k.KID, "signsUntil", now.Add(r.cfg.KeyRotation).UTC(), "retireAfter", k.RetireAfter)
	if n, err := r.store.DeleteSigningKeysRetiredBefore(ctx, now); err != nil {
		r.log.Error("deleting retired signing keys", "err", err)
	} else if n > 0 {
		r.log.Info("retired signing keys deleted", "count", n)
	}
	return nil
}

// verifying returns the public key of kid, looking it up in the store when
// this replica does not know it (another replica made it). Each lookup is
// one indexed read, as a personal token's is.
func (r *keyRing) verifying(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	now := r.cfg.Now()
	r.mu.RLock()
	k, ok := r.keys[kid]
	r.mu.RUnlock()
	if ok {
		if !now.Before(k.retireAfter) {
			return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the token's signing key %q is retired", kid)
		}
		return &k.priv.PublicKey, nil
	}
	if !tripcap.IsID(kid) {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the token's kid is not a signing key of this server")
	}
	stored, err := r.store.FindSigningKeys(ctx, tripcap.SigningKeyFilter{KID: &kid, UsableAt: &now})
	if err != nil {
		return nil, fmt.Errorf("find signing key %s: %w", kid, err)
	}
	if len(stored) == 0 {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the token's kid %q is not a signing key of this server", kid)
	}
	k, err = parseKey(stored[0])
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.keys[kid] = k
	r.mu.Unlock()
	return &k.priv.PublicKey, nil
}

// JWK is a public key in a JWKS document (RFC 7517).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// JWKS is the document of the keys that verify this server's tokens.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns the public keys that verify tokens now, newest first: the
// signing key and those retired from signing whose tokens may still be valid.
func (s *Service) JWKS(ctx context.Context) (*JWKS, error) {
	if _, err := s.keys.signing(ctx); err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	stored, err := s.store.FindSigningKeys(ctx, tripcap.SigningKeyFilter{UsableAt: &now})
	if err != nil {
		return nil, err
	}
	doc := &JWKS{Keys: []JWK{}}
	for _, sk := range stored {
		k, err := parseKey(sk)
		if err != nil {
			continue
		}
		pub, err := k.priv.PublicKey.ECDH()
		if err != nil {
			continue
		}
		b := pub.Bytes() // 0x04 || X || Y
		enc := base64.RawURLEncoding
		doc.Keys = append(doc.Keys, JWK{Kty: "EC", Crv: "P-256", X: enc.EncodeToString(b[1:33]), Y: enc.EncodeToString(b[33:65]),
			Kid: k.kid, Use: "sig", Alg: keyAlgorithm})
	}
	return doc, nil
}
