package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/identity"
	"github.com/tripcap/tripcap/internal/pgtest"
	"github.com/tripcap/tripcap/postgres"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
)

func decodeSegment(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// jwtFixture is a service with a service principal and a token it issued,
// and the private key that signed it, read from the store as an attacker
// holding a copy of the database would, to forge tokens the service must
// still refuse for their claims.
type jwtFixture struct {
	svc   *identity.Service
	clock *clock
	sp    *tripcap.PrincipalRecord
	good  string
	kid   string
	key   *ecdsa.PrivateKey
}

func newJWTFixture(t testing.TB) *jwtFixture {
	t.Helper()
	store, err := sqlite.Open(t.Context(), t.TempDir()+"/tripcap.db")
	must(t, err)
	t.Cleanup(func() { store.Close() })
	store.SetSealer(storetest.NewSealer(t))
	f := &jwtFixture{clock: &clock{t: time.Now()}}
	f.svc = newService(t, store, f.clock)
	f.sp, err = f.svc.CreateServicePrincipal(owner(), "bot")
	must(t, err)
	res, err := f.svc.Token(context.Background(), identity.TokenRequest{GrantType: "client_credentials", ClientID: f.sp.ClientID, ClientSecret: f.sp.ClientSecret})
	must(t, err)
	f.good = res.AccessToken
	keys, err := store.FindSigningKeys(context.Background(), tripcap.SigningKeyFilter{})
	must(t, err)
	if len(keys) != 1 {
		t.Fatalf("%d signing keys", len(keys))
	}
	f.kid = keys[0].KID
	der, err := base64.StdEncoding.DecodeString(keys[0].PrivateKey)
	must(t, err)
	k, err := x509.ParsePKCS8PrivateKey(der)
	must(t, err)
	f.key = k.(*ecdsa.PrivateKey)
	return f
}

// claims are a valid token's, to change one at a time.
func (f *jwtFixture) claims() jwt.RegisteredClaims {
	now := f.clock.Now()
	return jwt.RegisteredClaims{Issuer: issuer, Subject: f.sp.ID, Audience: jwt.ClaimStrings{"tripcap"},
		ExpiresAt: jwt.NewNumericDate(now.Add(30 * time.Minute)), NotBefore: jwt.NewNumericDate(now), IssuedAt: jwt.NewNumericDate(now), ID: tripcap.NewID()}
}

func sign(t *testing.T, m jwt.SigningMethod, c jwt.Claims, kid string, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	must(t, err)
	return s
}

func TestJWTRefusals(t *testing.T) {
	f := newJWTFixture(t)
	ctx := context.Background()
	if _, err := f.svc.Authenticate(ctx, sign(t, jwt.SigningMethodES256, f.claims(), f.kid, f.key)); err != nil {
		t.Fatalf("a well-formed forged-with-the-real-key token is the control: %v", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	must(t, err)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	with := func(mod func(c *jwt.RegisteredClaims)) jwt.RegisteredClaims {
		c := f.claims()
		mod(&c)
		return c
	}
	now := f.clock.Now()
	parts := strings.Split(f.good, ".")
	flip := func(s string) string {
		b := []byte(s)
		if b[10] == 'A' {
			b[10] = 'B'
		} else {
			b[10] = 'A'
		}
		return string(b)
	}
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + issuer + `","sub":"` + tripcap.NewID() + `","aud":["tripcap"],"exp":` +
		jwt.NewNumericDate(now.Add(time.Hour)).String() + `,"iat":` + jwt.NewNumericDate(now).String() + `}`))
	cases := map[string]string{
		"expired": sign(t, jwt.SigningMethodES256, with(func(c *jwt.RegisteredClaims) {
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-2 * time.Minute))
			c.IssuedAt = jwt.NewNumericDate(now.Add(-time.Hour))
		}), f.kid, f.key),
		"not yet valid":                 sign(t, jwt.SigningMethodES256, with(func(c *jwt.RegisteredClaims) { c.NotBefore = jwt.NewNumericDate(now.Add(5 * time.Minute)) }), f.kid, f.key),
		"issued in future":              sign(t, jwt.SigningMethodES256, with(func(c *jwt.RegisteredClaims) { c.IssuedAt = jwt.NewNumericDate(now.Add(5 * time.Minute)) }), f.kid, f.key),
		"no expiry":                     sign(t, jwt.SigningMethodES256, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil }), f.kid, f.key),
		"lives too long":                sign(t, jwt.SigningMethodES256, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(2 * time.Hour)) }), f.kid, f.key),
		"wrong audience":                sign(t, jwt.SigningMethodES256, with(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"other"} }), f.kid, f.key),
		"no audience":                   sign(t, jwt.SigningMethodES256, with(func(c *jwt.RegisteredClaims) { c.Audience = nil }), f.kid, f.key),
		"wrong issuer":                  sign(t, jwt.SigningMethodES256, with(func(c *jwt.RegisteredClaims) { c.Issuer = "https://evil.test" }), f.kid, f.key),
		"subject not an id":             sign(t, jwt.SigningMethodES256, with(func(c *jwt.RegisteredClaims) { c.Subject = "admin" }), f.kid, f.key),
		"unknown subject":               sign(t, jwt.SigningMethodES256, with(func(c *jwt.RegisteredClaims) { c.Subject = tripcap.NewID() }), f.kid, f.key),
		"unknown kid":                   sign(t, jwt.SigningMethodES256, f.claims(), tripcap.NewID(), other),
		"kid not an id":                 sign(t, jwt.SigningMethodES256, f.claims(), "../../etc/passwd", other),
		"no kid":                        sign(t, jwt.SigningMethodES256, f.claims(), "", f.key),
		"other key, our kid":            sign(t, jwt.SigningMethodES256, f.claims(), f.kid, other),
		"alg none":                      sign(t, jwt.SigningMethodNone, f.claims(), f.kid, jwt.UnsafeAllowNoneSignatureType),
		"HS256 with the public key PEM": sign(t, jwt.SigningMethodHS256, f.claims(), f.kid, pubPEM),
		"HS256 with the public key DER": sign(t, jwt.SigningMethodHS256, f.claims(), f.kid, pubDER),
		"ES384":                         sign(t, jwt.SigningMethodES384, f.claims(), f.kid, mustKey(t, elliptic.P384())),
		"tampered signature":            parts[0] + "." + parts[1] + "." + flip(parts[2]),
		"tampered payload":              parts[0] + "." + payload + "." + parts[2],
		"no signature":                  parts[0] + "." + parts[1] + ".",
		"garbage":                       "a.b.c",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := f.svc.Authenticate(ctx, tok)
			wantCode(t, err, tripcap.EUNAUTHORIZED)
		})
	}
	// The issued token itself is fine, until it expires.
	if _, err := f.svc.Authenticate(ctx, f.good); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Hour + time.Minute)
	_, err = f.svc.Authenticate(ctx, f.good)
	wantCode(t, err, tripcap.EUNAUTHORIZED)
	if !strings.Contains(tripcap.ErrorMessage(err), "expired") {
		t.Fatalf("the refusal does not say why: %v", err)
	}
}

func mustKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	must(t, err)
	return k
}

// TestReplicasShareKeys: two services on one PostgreSQL database, started
// together, each make a first key without failing; each verifies the
// other's tokens, and again after a rotation on one of them.
func TestReplicasShareKeys(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	c := &clock{t: time.Now()}
	sealer := storetest.NewSealer(t) // the replicas share the master key
	replica := func() (*identity.Service, tripcap.Store) {
		store, err := postgres.Open(context.Background(), dsn)
		must(t, err)
		t.Cleanup(func() { store.Close() })
		store.SetSealer(sealer)
		svc, err := identity.New(store, identity.Config{Issuer: issuer, Password: cheap, Now: c.Now, KeyRotation: 24 * time.Hour}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		must(t, err)
		return svc, store
	}
	a, store := replica()
	b, _ := replica()
	// Both make their first key at once.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, svc := range []*identity.Service{a, b} {
		wg.Go(func() { _, errs[i] = svc.JWKS(context.Background()) })
	}
	wg.Wait()
	must(t, errs[0])
	must(t, errs[1])

	sp, err := a.CreateServicePrincipal(owner(), "bot")
	must(t, err)
	req := identity.TokenRequest{GrantType: "client_credentials", ClientID: sp.ClientID, ClientSecret: sp.ClientSecret}
	fromA, err := a.Token(context.Background(), req)
	must(t, err)
	fromB, err := b.Token(context.Background(), req)
	must(t, err)
	if kid(t, fromA.AccessToken) != kid(t, fromB.AccessToken) {
		t.Fatalf("replicas sign with different keys: %s, %s", kid(t, fromA.AccessToken), kid(t, fromB.AccessToken))
	}
	for name, pair := range map[string][2]any{"A's on B": {b, fromA}, "B's on A": {a, fromB}} {
		svc, tok := pair[0].(*identity.Service), pair[1].(*identity.TokenResponse)
		if _, err := svc.Authenticate(context.Background(), tok.AccessToken); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	c.Add(24*time.Hour + time.Minute)
	rotated, err := a.Token(context.Background(), req)
	must(t, err)
	if kid(t, rotated.AccessToken) == kid(t, fromA.AccessToken) {
		t.Fatal("no rotation after the rotation period")
	}
	p, err := b.Authenticate(context.Background(), rotated.AccessToken)
	must(t, err)
	if p.ID != sp.ID {
		t.Fatalf("principal: %+v", p)
	}
	fromB, err = b.Token(context.Background(), req)
	must(t, err)
	if kid(t, fromB.AccessToken) != kid(t, rotated.AccessToken) {
		t.Fatalf("after the rotation B signs with %s, A with %s", kid(t, fromB.AccessToken), kid(t, rotated.AccessToken))
	}
	keys, err := store.FindSigningKeys(context.Background(), tripcap.SigningKeyFilter{})
	must(t, err)
	if len(keys) > 3 {
		t.Fatalf("%d signing keys after one rotation", len(keys))
	}
}

// FuzzAuthenticate: no bearer string panics the service or passes as a
// principal, and none is the store's fault (EINTERNAL).
func FuzzAuthenticate(f *testing.F) {
	fx := newJWTFixture(f)
	f.Add(fx.good)
	f.Add(tripcap.NewSecret(tripcap.SecretPrefixToken))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add(strings.Repeat(".", 2) + strings.Repeat("A", 9000))
	parts := strings.Split(fx.good, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Fuzz(func(t *testing.T, bearer string) {
		if bearer == fx.good {
			return
		}
		p, err := fx.svc.Authenticate(context.Background(), bearer)
		if err == nil {
			t.Fatalf("%q authenticated as %+v", bearer, p)
		}
		if code := tripcap.ErrorCode(err); code != tripcap.EUNAUTHORIZED {
			t.Fatalf("%q: %v (code %s)", bearer, err, code)
		}
	})
}
