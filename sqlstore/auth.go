package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/tripcap/tripcap"
)

const joinTokenColumns = "id, hash, expires_at, uses_left, created_at, host_name"

func scanJoinToken(r rowScanner) (*tripcap.JoinToken, error) {
	var t tripcap.JoinToken
	if err := r.Scan(&t.ID, &t.Hash, timeCol{&t.ExpiresAt}, &t.UsesLeft, timeCol{&t.CreatedAt}, &t.HostName); err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateJoinToken stores a join token: its hash, never its secret. ECONFLICT
// when the id or hash exists.
func (s *Store) CreateJoinToken(ctx context.Context, t *tripcap.JoinToken) error {
	if err := CheckJoinToken(t, utcNow()); err != nil {
		return err
	}
	_, err := s.exec(ctx, `INSERT INTO join_tokens (`+joinTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		t.ID, t.Hash, s.t(t.ExpiresAt), t.UsesLeft, s.t(t.CreatedAt), t.HostName)
	if s.violation(err) != "" {
		return JoinTokenTaken()
	}
	if err != nil {
		return fmt.Errorf("create join token %s: %w", t.ID, err)
	}
	return nil
}

// ConsumeJoinToken uses up one use of the token with this hash, atomically
// (one conditional UPDATE, which concurrent callers serialize on), and
// returns it with the uses left after this one. EUNAUTHORIZED when unknown,
// expired (at or after ExpiresAt) or used up.
func (s *Store) ConsumeJoinToken(ctx context.Context, hash string, now time.Time) (*tripcap.JoinToken, error) {
	if hash == "" {
		return nil, JoinTokenRefused()
	}
	t, err := scanJoinToken(s.db.QueryRowContext(ctx, s.q(`UPDATE join_tokens SET uses_left = uses_left - 1
		WHERE hash = ? AND uses_left > 0 AND expires_at > ? RETURNING `+joinTokenColumns), hash, s.t(now)))
	if isNoRows(err) {
		return nil, JoinTokenRefused()
	}
	if err != nil {
		return nil, fmt.Errorf("consume join token: %w", err)
	}
	return t, nil
}

// FindJoinTokens lists the tokens still usable at now, ordered by id.
func (s *Store) FindJoinTokens(ctx context.Context, now time.Time) ([]*tripcap.JoinToken, error) {
	rows, err := s.query(ctx, `SELECT `+joinTokenColumns+` FROM join_tokens WHERE uses_left > 0 AND expires_at > ? ORDER BY id`, s.t(now))
	tokens, err := collect(rows, err, scanJoinToken)
	if err != nil {
		return nil, fmt.Errorf("find join tokens: %w", err)
	}
	return tokens, nil
}

// DeleteJoinToken revokes a token. ENOTFOUND when unknown.
func (s *Store) DeleteJoinToken(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "join_tokens", "join token", id, JoinTokenNotFound)
}

const credentialColumns = "id, name, role, host_id, hash, created_at"

func scanCredential(r rowScanner) (*tripcap.Credential, error) {
	var c tripcap.Credential
	if err := r.Scan(&c.ID, &c.Name, &c.Role, &c.HostID, &c.Hash, timeCol{&c.CreatedAt}); err != nil {
		return nil, err
	}
	return &c, nil
}

// CreateCredential stores a credential (its hash). ECONFLICT when the id or hash exists.
func (s *Store) CreateCredential(ctx context.Context, c *tripcap.Credential) error {
	if err := CheckCredential(c, utcNow()); err != nil {
		return err
	}
	_, err := s.exec(ctx, `INSERT INTO credentials (`+credentialColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, string(c.Role), c.HostID, c.Hash, s.t(c.CreatedAt))
	if s.violation(err) != "" {
		return CredentialTaken()
	}
	if err != nil {
		return fmt.Errorf("create credential %s: %w", c.ID, err)
	}
	return nil
}

// FindCredentialByHash returns the credential with this hash, ENOTFOUND when none.
func (s *Store) FindCredentialByHash(ctx context.Context, hash string) (*tripcap.Credential, error) {
	if hash == "" {
		return nil, CredentialNotFound()
	}
	c, err := scanCredential(s.queryRow(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE hash = ?`, hash))
	if isNoRows(err) {
		return nil, CredentialNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("find credential: %w", err)
	}
	return c, nil
}

// FindCredentials lists credentials with the given role ("" for all), ordered by id.
func (s *Store) FindCredentials(ctx context.Context, role tripcap.Role) ([]*tripcap.Credential, error) {
	rows, err := s.query(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE ? = '' OR role = ? ORDER BY id`, string(role), string(role))
	creds, err := collect(rows, err, scanCredential)
	if err != nil {
		return nil, fmt.Errorf("find credentials: %w", err)
	}
	return creds, nil
}

// DeleteCredentialsOfHost revokes every credential bound to the host (none
// is fine), and signals a change of the host, so that every watcher forgets
// what it cached of them.
func (s *Store) DeleteCredentialsOfHost(ctx context.Context, hostID string) error {
	if err := CheckID("host id", hostID); err != nil {
		return err
	}
	err := s.write(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM credentials WHERE host_id = ?`, hostID); err != nil {
			return err
		}
		return tx.hostChanged(ctx, hostID)
	})
	if err != nil {
		return fmt.Errorf("delete credentials of host %s: %w", hostID, err)
	}
	return nil
}
