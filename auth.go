package tripcap

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"time"
)

// Role is what a credential may do.
type Role string

const (
	RoleAdmin Role = "admin"
	RoleAgent Role = "agent"
)

// Credential is a bearer credential. Only its hash is stored.
type Credential struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	HostID    string    `json:"hostId,omitempty"`
	Hash      string    `json:"-"`
	CreatedAt time.Time `json:"createdAt"`
}

// Principal is the authenticated caller of a request.
type Principal struct {
	// ID is the principal's id: a user's or service principal's id, an
	// agent's host credential, the bootstrap token's credential.
	ID           string
	CredentialID string
	Kind         PrincipalKind
	// Name is what records of who did what show.
	Name   string
	Role   Role
	HostID string // set for agents: the only host they may act for
	// Assignments are the principal's role grants (see Can).
	Assignments []RoleAssignment
	// ResponderID is set for function keys: the only responder they may start.
	ResponderID string
	// Credential is how the caller authenticated, where that limits what
	// it may do ("" where it does not matter).
	Credential CredentialKind
}

// CredentialKind tells how a principal authenticated.
type CredentialKind string

const (
	// CredentialAPIToken is a personal API token or a login's token.
	CredentialAPIToken CredentialKind = "apiToken"
	// CredentialJWT is a short-lived JWT of the token endpoint: it may not
	// make itself a longer-lived credential (an API token).
	CredentialJWT CredentialKind = "jwt"
)

type principalKey struct{}

// NewContextWithPrincipal returns a context carrying the caller.
func NewContextWithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// IsID reports whether s could be an id NewID made: 26 characters of its
// alphabet, so a name is never looked up as an id.
func IsID(s string) bool {
	if len(s) != 26 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return true
}

// PrincipalFromContext returns the caller, or nil.
func PrincipalFromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// Secret prefixes tell a leaked token's kind at a glance (and to secret scanners).
const (
	SecretPrefixAdmin = "tc_admin_"
	SecretPrefixAgent = "tc_agent_"
	SecretPrefixJoin  = "tc_join_"
)

// NewSecret returns a random secret with the given prefix.
func NewSecret(prefix string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return prefix + strings.TrimRight(base32.StdEncoding.EncodeToString(b[:]), "=")
}

// HashSecret is how secrets are stored and looked up: a SHA-256, which suffices
// for 256-bit random secrets (no dictionary to attack).
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a 26-character id that sorts by creation time (millisecond
// timestamp, then 80 random bits), so listings page by id.
func NewID() string {
	var tail [10]byte
	if _, err := rand.Read(tail[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return IDAt(time.Now(), tail)
}

// IDAt is the id of NewID's form for the time t with these 80 bits after
// the timestamp: an id several processes derive alike (the same t and tail)
// when they must agree on one.
func IDAt(t time.Time, tail [10]byte) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	copy(b[6:], tail[:])
	return idEncoding.EncodeToString(b[:])
}
