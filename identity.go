package tripcap

import (
	"context"
	"time"
)

// Secret prefixes of the identities' credentials.
const (
	// SecretPrefixToken starts a personal API token (and a login's token).
	SecretPrefixToken = "tc_pat_"
	// SecretPrefixService starts a service principal's client secret.
	SecretPrefixService = "tc_sp_"
)

// PrincipalRecord is a user or a service principal as stored: who may be
// granted roles and hold tokens. Agents, the bootstrap admin token and
// function keys are principals too, but are not stored here.
type PrincipalRecord struct {
	ID   string        `json:"id"`
	Kind PrincipalKind `json:"kind"` // PrincipalUser or PrincipalService
	// Name is unique among principals regardless of case.
	Name string `json:"name"`
	// SecretHash is a user's password hash (argon2id, its parameters
	// encoded in it) or a service principal's client secret hash.
	SecretHash string    `json:"-"`
	CreatedBy  string    `json:"createdBy,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	// ClientID is a service principal's OAuth2 client id (its ID).
	ClientID string `json:"clientId,omitempty"`
	// ClientSecret is set once, in the answer that created a service principal.
	ClientSecret string `json:"clientSecret,omitempty"`
}

// PrincipalFilter selects principal records; nil fields select all.
type PrincipalFilter struct {
	ID   *string
	Name *string // compared regardless of case
	Kind *PrincipalKind
}

// APIToken is a bearer token of a user or a service principal: a personal
// token, or one a login issued. Only its hash is stored; it expires and can
// be revoked (deleted).
type APIToken struct {
	ID          string    `json:"id"`
	PrincipalID string    `json:"principalId"`
	Name        string    `json:"name"`
	Hash        string    `json:"-"`
	ExpiresAt   time.Time `json:"expiresAt"`
	CreatedBy   string    `json:"createdBy,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	// Token is set once, in the answer that created the token.
	Token string `json:"token,omitempty"`
}

// RoleAssignmentFilter selects role assignments; nil fields select all.
type RoleAssignmentFilter struct {
	ID          *string
	PrincipalID *string
}

// SigningKey signs the JWTs the token endpoint issues. It signs from
// CreatedAt for the rotation period, and verifies until RetireAfter (when
// no token it signed can still be valid).
type SigningKey struct {
	KID       string `json:"kid"`
	Algorithm string `json:"alg"`
	// PrivateKey is the PKCS #8 DER key, base64; sealed at rest.
	PrivateKey  string    `json:"-"`
	CreatedAt   time.Time `json:"createdAt"`
	RetireAfter time.Time `json:"retireAfter"`
}

// SigningKeyFilter selects signing keys; nil fields select all.
type SigningKeyFilter struct {
	KID *string
	// UsableAt keeps keys not retired at this time.
	UsableAt *time.Time
}

// IdentityStore keeps users, service principals, their tokens and role
// assignments, the token-signing keys, and the revoked bootstrap
// credentials. Deleting a principal deletes its tokens and assignments.
type IdentityStore interface {
	// CreatePrincipal inserts p. ECONFLICT when its name (regardless of case) or id is taken.
	CreatePrincipal(ctx context.Context, p *PrincipalRecord) error
	// FindPrincipals lists the principals f selects, ordered by id.
	FindPrincipals(ctx context.Context, f PrincipalFilter) ([]*PrincipalRecord, error)
	// DeletePrincipal removes a principal, its tokens and role assignments. ENOTFOUND when unknown.
	DeletePrincipal(ctx context.Context, id string) error

	// CreateAPIToken stores a token (its hash). ENOTFOUND when its principal
	// is unknown, ECONFLICT when the id or hash exists.
	CreateAPIToken(ctx context.Context, t *APIToken) error
	// FindAPITokenByHash returns the token with this hash, ENOTFOUND when none.
	FindAPITokenByHash(ctx context.Context, hash string) (*APIToken, error)
	// FindAPITokens lists a principal's tokens ("" for everyone's), ordered by id.
	FindAPITokens(ctx context.Context, principalID string) ([]*APIToken, error)
	// DeleteAPIToken revokes a token. ENOTFOUND when unknown.
	DeleteAPIToken(ctx context.Context, id string) error

	// CreateRoleAssignment stores a. ENOTFOUND when its principal is
	// unknown, ECONFLICT when the principal already holds that role at that scope.
	CreateRoleAssignment(ctx context.Context, a *RoleAssignment) error
	// FindRoleAssignments lists the assignments f selects, ordered by id.
	FindRoleAssignments(ctx context.Context, f RoleAssignmentFilter) ([]*RoleAssignment, error)
	// DeleteRoleAssignment removes an assignment. ENOTFOUND when unknown.
	DeleteRoleAssignment(ctx context.Context, id string) error

	// CreateSigningKey stores a key, its private key sealed. ECONFLICT when the kid exists.
	CreateSigningKey(ctx context.Context, k *SigningKey) error
	// FindSigningKeys lists the keys f selects, newest first.
	FindSigningKeys(ctx context.Context, f SigningKeyFilter) ([]*SigningKey, error)
	// DeleteSigningKeysRetiredBefore removes keys retired before t and says how many.
	DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) (int, error)

	// RevokeCredential deletes a credential (the bootstrap admin token's)
	// and records its hash as revoked, so that no token file can register
	// it again; it signals a change of every host (WatchHostChanges'
	// fn("")), so that every replica forgets the credentials it cached.
	// ENOTFOUND when unknown.
	RevokeCredential(ctx context.Context, id string, at time.Time) error
	// FindRevokedCredentials lists the hashes of revoked credentials of a role.
	FindRevokedCredentials(ctx context.Context, role Role) ([]string, error)
}

// CallerName is who a record shows as having done something: the name of
// ctx's principal, "" for none.
func CallerName(ctx context.Context) string {
	if p := PrincipalFromContext(ctx); p != nil {
		return p.Name
	}
	return ""
}
