package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/tripcap/tripcap"
)

// Users, service principals, their tokens and role assignments, and the
// token-signing keys. Secret hashes and private keys go through
// sealSecret, so the sealer encrypts them at rest.

var (
	principalNotFound  = notFound("principal")
	apiTokenNotFound   = notFound("API token")
	assignmentNotFound = notFound("role assignment")
	credentialNotFound = notFound("credential")
)

// The sealed fields bind each secret to its row, so a sealed value copied
// into another row does not open.
func principalSecretField(id string) string { return "principals." + id + ".secretHash" }
func signingKeyField(kid string) string     { return "signing_keys." + kid + ".privateKey" }

const principalColumns = "id, kind, name, secret_hash, created_by, created_at"

// CreatePrincipal inserts p. ECONFLICT when its name (regardless of case) or id is taken.
func (s *Store) CreatePrincipal(ctx context.Context, p *tripcap.PrincipalRecord) error {
	if err := CheckID("principal id", p.ID); err != nil {
		return err
	}
	if p.Kind != tripcap.PrincipalUser && p.Kind != tripcap.PrincipalService {
		return tripcap.Errorf(tripcap.EINVALID, "principal kind: %q is not %q or %q", p.Kind, tripcap.PrincipalUser, tripcap.PrincipalService)
	}
	if p.Name == "" {
		return tripcap.Errorf(tripcap.EINVALID, "principal name: required")
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = utcNow()
	}
	hash, err := s.sealSecret(principalSecretField(p.ID), p.SecretHash)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO principals (`+principalColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		p.ID, string(p.Kind), p.Name, hash, p.CreatedBy, s.t(p.CreatedAt))
	switch s.violation(err) {
	case "primarykey":
		return tripcap.Errorf(tripcap.ECONFLICT, "a principal with id %q already exists", p.ID)
	case "unique":
		return tripcap.Errorf(tripcap.ECONFLICT, "a principal named %q already exists (names are unique regardless of case)", p.Name)
	}
	if err != nil {
		return fmt.Errorf("create principal %s: %w", p.Name, err)
	}
	return nil
}

// FindPrincipals lists the principals f selects, ordered by id.
func (s *Store) FindPrincipals(ctx context.Context, f tripcap.PrincipalFilter) ([]*tripcap.PrincipalRecord, error) {
	w := &Where{}
	if f.ID != nil {
		if err := CheckID("principal id", *f.ID); err != nil {
			return nil, err
		}
		w.Add("id = ?", *f.ID)
	}
	if f.Name != nil {
		w.Add("lower(name) = lower(?)", *f.Name)
	}
	if f.Kind != nil {
		w.Add("kind = ?", string(*f.Kind))
	}
	rows, err := s.query(ctx, `SELECT `+principalColumns+` FROM principals`+w.String()+` ORDER BY id`, w.Args...)
	out, err := collect(rows, err, func(r rowScanner) (*tripcap.PrincipalRecord, error) {
		var p tripcap.PrincipalRecord
		var sealed string
		if err := r.Scan(&p.ID, &p.Kind, &p.Name, &sealed, &p.CreatedBy, timeCol{&p.CreatedAt}); err != nil {
			return nil, err
		}
		var err error
		if p.SecretHash, err = s.openSecret(principalSecretField(p.ID), sealed); err != nil {
			return nil, err
		}
		if p.Kind == tripcap.PrincipalService {
			p.ClientID = p.ID
		}
		return &p, nil
	})
	if err != nil {
		return nil, fmt.Errorf("find principals: %w", err)
	}
	return out, nil
}

// DeletePrincipal removes a principal; its tokens and assignments go with
// it (ON DELETE CASCADE).
func (s *Store) DeletePrincipal(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "principals", "principal", id, principalNotFound)
}

const apiTokenColumns = "id, principal_id, name, hash, expires_at, created_by, created_at"

func scanAPIToken(r rowScanner) (*tripcap.APIToken, error) {
	var t tripcap.APIToken
	if err := r.Scan(&t.ID, &t.PrincipalID, &t.Name, &t.Hash, timeCol{&t.ExpiresAt}, &t.CreatedBy, timeCol{&t.CreatedAt}); err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateAPIToken stores a token's hash. ENOTFOUND when the principal is
// unknown, ECONFLICT when the id or hash exists.
func (s *Store) CreateAPIToken(ctx context.Context, t *tripcap.APIToken) error {
	if err := CheckID("token id", t.ID); err != nil {
		return err
	}
	if err := CheckID("token principal id", t.PrincipalID); err != nil {
		return err
	}
	if t.Hash == "" || t.ExpiresAt.IsZero() {
		return tripcap.Errorf(tripcap.EINVALID, "token hash, expiresAt: required")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = utcNow()
	}
	err := s.write(ctx, func(tx *Tx) error {
		if err := principalExists(ctx, tx, t.PrincipalID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO api_tokens (`+apiTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.PrincipalID, t.Name, t.Hash, tx.Time(t.ExpiresAt), t.CreatedBy, tx.Time(t.CreatedAt))
		if s.violation(err) != "" {
			return tripcap.Errorf(tripcap.ECONFLICT, "a token with this id or secret already exists")
		}
		return err
	})
	if err != nil && tripcap.ErrorCode(err) == tripcap.EINTERNAL {
		return fmt.Errorf("create API token %s: %w", t.ID, err)
	}
	return err
}

// principalExists returns ENOTFOUND unless the principal exists: what a
// foreign key violation would say, worded for the user, in both dialects.
func principalExists(ctx context.Context, tx *Tx, id string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM principals WHERE id = ?`+tx.s.d.Lock, id).Scan(&one)
	if isNoRows(err) {
		return principalNotFound(id)
	}
	return err
}

// FindAPITokenByHash returns the token with this hash, ENOTFOUND when none.
func (s *Store) FindAPITokenByHash(ctx context.Context, hash string) (*tripcap.APIToken, error) {
	if hash == "" {
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no such token")
	}
	t, err := scanAPIToken(s.queryRow(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens WHERE hash = ?`, hash))
	if isNoRows(err) {
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no such token")
	}
	if err != nil {
		return nil, fmt.Errorf("find API token: %w", err)
	}
	return t, nil
}

// FindAPITokens lists a principal's tokens ("" for all), ordered by id.
func (s *Store) FindAPITokens(ctx context.Context, principalID string) ([]*tripcap.APIToken, error) {
	w := &Where{}
	if principalID != "" {
		if err := CheckID("principal id", principalID); err != nil {
			return nil, err
		}
		w.Add("principal_id = ?", principalID)
	}
	rows, err := s.query(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens`+w.String()+` ORDER BY id`, w.Args...)
	out, err := collect(rows, err, scanAPIToken)
	if err != nil {
		return nil, fmt.Errorf("find API tokens: %w", err)
	}
	return out, nil
}

// DeleteAPIToken revokes a token. ENOTFOUND when unknown.
func (s *Store) DeleteAPIToken(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "api_tokens", "API token", id, apiTokenNotFound)
}

const assignmentColumns = "id, principal_id, role, scope, created_by, created_at"

// CreateRoleAssignment stores a. ENOTFOUND when the principal is unknown,
// ECONFLICT when it holds that role at that scope already.
func (s *Store) CreateRoleAssignment(ctx context.Context, a *tripcap.RoleAssignment) error {
	if err := CheckID("role assignment id", a.ID); err != nil {
		return err
	}
	if err := CheckID("role assignment principal id", a.PrincipalID); err != nil {
		return err
	}
	if err := tripcap.ValidateRoleName("role", a.Role); err != nil {
		return err
	}
	if err := a.Scope.Validate(); err != nil {
		return tripcap.Errorf(tripcap.EINVALID, "scope: %v", err)
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = utcNow()
	}
	err := s.write(ctx, func(tx *Tx) error {
		if err := principalExists(ctx, tx, a.PrincipalID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO role_assignments (`+assignmentColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
			a.ID, a.PrincipalID, string(a.Role), string(a.Scope), a.CreatedBy, tx.Time(a.CreatedAt))
		switch s.violation(err) {
		case "primarykey":
			return tripcap.Errorf(tripcap.ECONFLICT, "a role assignment with id %q already exists", a.ID)
		case "unique":
			return tripcap.Errorf(tripcap.ECONFLICT, "the principal already holds %s at %s", a.Role, a.Scope)
		}
		return err
	})
	if err != nil && tripcap.ErrorCode(err) == tripcap.EINTERNAL {
		return fmt.Errorf("create role assignment: %w", err)
	}
	return err
}

// FindRoleAssignments lists the assignments f selects, ordered by id.
func (s *Store) FindRoleAssignments(ctx context.Context, f tripcap.RoleAssignmentFilter) ([]*tripcap.RoleAssignment, error) {
	w := &Where{}
	if f.ID != nil {
		if err := CheckID("role assignment id", *f.ID); err != nil {
			return nil, err
		}
		w.Add("id = ?", *f.ID)
	}
	if f.PrincipalID != nil {
		if err := CheckID("principal id", *f.PrincipalID); err != nil {
			return nil, err
		}
		w.Add("principal_id = ?", *f.PrincipalID)
	}
	rows, err := s.query(ctx, `SELECT `+assignmentColumns+` FROM role_assignments`+w.String()+` ORDER BY id`, w.Args...)
	out, err := collect(rows, err, func(r rowScanner) (*tripcap.RoleAssignment, error) {
		var a tripcap.RoleAssignment
		if err := r.Scan(&a.ID, &a.PrincipalID, &a.Role, &a.Scope, &a.CreatedBy, timeCol{&a.CreatedAt}); err != nil {
			return nil, err
		}
		return &a, nil
	})
	if err != nil {
		return nil, fmt.Errorf("find role assignments: %w", err)
	}
	return out, nil
}

// DeleteRoleAssignment removes an assignment. ENOTFOUND when unknown.
func (s *Store) DeleteRoleAssignment(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "role_assignments", "role assignment", id, assignmentNotFound)
}

const signingKeyColumns = "kid, algorithm, private_key, created_at, retire_after"

// CreateSigningKey stores k with its private key sealed. ECONFLICT when the kid exists.
func (s *Store) CreateSigningKey(ctx context.Context, k *tripcap.SigningKey) error {
	if err := CheckID("signing key id", k.KID); err != nil {
		return err
	}
	if k.Algorithm == "" || k.PrivateKey == "" || k.CreatedAt.IsZero() || !k.RetireAfter.After(k.CreatedAt) {
		return tripcap.Errorf(tripcap.EINVALID, "signing key: alg, private key, createdAt and a retireAfter after it are required")
	}
	priv, err := s.sealSecret(signingKeyField(k.KID), k.PrivateKey)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO signing_keys (`+signingKeyColumns+`) VALUES (?, ?, ?, ?, ?)`,
		k.KID, k.Algorithm, priv, s.t(k.CreatedAt), s.t(k.RetireAfter))
	if s.violation(err) != "" {
		return tripcap.Errorf(tripcap.ECONFLICT, "a signing key with kid %q already exists", k.KID)
	}
	if err != nil {
		return fmt.Errorf("create signing key %s: %w", k.KID, err)
	}
	return nil
}

// FindSigningKeys lists the keys f selects, newest first.
func (s *Store) FindSigningKeys(ctx context.Context, f tripcap.SigningKeyFilter) ([]*tripcap.SigningKey, error) {
	w := &Where{}
	if f.KID != nil {
		if err := CheckID("signing key id", *f.KID); err != nil {
			return nil, err
		}
		w.Add("kid = ?", *f.KID)
	}
	if f.UsableAt != nil {
		w.Add("retire_after > ?", s.t(*f.UsableAt))
	}
	rows, err := s.query(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys`+w.String()+` ORDER BY created_at DESC, kid DESC`, w.Args...)
	out, err := collect(rows, err, func(r rowScanner) (*tripcap.SigningKey, error) {
		var k tripcap.SigningKey
		var sealed string
		if err := r.Scan(&k.KID, &k.Algorithm, &sealed, timeCol{&k.CreatedAt}, timeCol{&k.RetireAfter}); err != nil {
			return nil, err
		}
		var err error
		if k.PrivateKey, err = s.openSecret(signingKeyField(k.KID), sealed); err != nil {
			return nil, err
		}
		return &k, nil
	})
	if err != nil {
		return nil, fmt.Errorf("find signing keys: %w", err)
	}
	return out, nil
}

// DeleteSigningKeysRetiredBefore removes the keys retired before t.
func (s *Store) DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) (int, error) {
	n, err := s.exec(ctx, `DELETE FROM signing_keys WHERE retire_after < ?`, s.t(t))
	if err != nil {
		return 0, fmt.Errorf("delete retired signing keys: %w", err)
	}
	return int(n), nil
}

// RevokeCredential deletes a credential and records its hash as revoked,
// in one transaction, and signals a change of every host so that every
// replica forgets what it cached.
func (s *Store) RevokeCredential(ctx context.Context, id string, at time.Time) error {
	if err := CheckID("credential id", id); err != nil {
		return err
	}
	err := s.write(ctx, func(tx *Tx) error {
		c, err := scanCredential(tx.QueryRow(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE id = ?`+s.d.Lock, id))
		if isNoRows(err) {
			return credentialNotFound(id)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM credentials WHERE id = ?`, id); err != nil {
			return err
		}
		// A hash revoked twice (re-registered from a stale file, say) is recorded once.
		if _, err := tx.Exec(ctx, `DELETE FROM revoked_credentials WHERE hash = ?`, c.Hash); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO revoked_credentials (hash, role, revoked_at) VALUES (?, ?, ?)`, c.Hash, string(c.Role), tx.Time(at)); err != nil {
			return err
		}
		return tx.hostChanged(ctx, "")
	})
	if err != nil && tripcap.ErrorCode(err) == tripcap.EINTERNAL {
		return fmt.Errorf("revoke credential %s: %w", id, err)
	}
	return err
}

// FindRevokedCredentials lists the hashes of a role's revoked credentials.
func (s *Store) FindRevokedCredentials(ctx context.Context, role tripcap.Role) ([]string, error) {
	rows, err := s.query(ctx, `SELECT hash FROM revoked_credentials WHERE role = ? ORDER BY hash`, string(role))
	out, err := collect(rows, err, func(r rowScanner) (string, error) {
		var h string
		return h, r.Scan(&h)
	})
	if err != nil {
		return nil, fmt.Errorf("find revoked credentials: %w", err)
	}
	return out, nil
}
