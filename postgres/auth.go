package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/sqldoc"
)

const joinTokenColumns = "id, hash, expires_at, uses_left, created_at"

func scanJoinToken(r pgx.Row) (*tripcap.JoinToken, error) {
	var t tripcap.JoinToken
	if err := r.Scan(&t.ID, &t.Hash, &t.ExpiresAt, &t.UsesLeft, &t.CreatedAt); err != nil {
		return nil, err
	}
	utc(&t.ExpiresAt)
	utc(&t.CreatedAt)
	return &t, nil
}

// CreateJoinToken stores a join token: its hash, never its secret. ECONFLICT
// when the id or hash exists.
func (s *Store) CreateJoinToken(ctx context.Context, t *tripcap.JoinToken) error {
	if err := sqldoc.CheckJoinToken(t, utcNow()); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO join_tokens (`+joinTokenColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		t.ID, t.Hash, t.ExpiresAt, t.UsesLeft, t.CreatedAt)
	if uniqueViolation(err) != "" {
		return sqldoc.JoinTokenTaken()
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
		return nil, sqldoc.JoinTokenRefused()
	}
	t, err := scanJoinToken(s.pool.QueryRow(ctx, `UPDATE join_tokens SET uses_left = uses_left - 1
		WHERE hash = $1 AND uses_left > 0 AND expires_at > $2 RETURNING `+joinTokenColumns, hash, now))
	if isNoRows(err) {
		return nil, sqldoc.JoinTokenRefused()
	}
	if err != nil {
		return nil, fmt.Errorf("consume join token: %w", err)
	}
	return t, nil
}

// FindJoinTokens lists the tokens still usable at now, ordered by id.
func (s *Store) FindJoinTokens(ctx context.Context, now time.Time) ([]*tripcap.JoinToken, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+joinTokenColumns+` FROM join_tokens WHERE uses_left > 0 AND expires_at > $1 ORDER BY id`, now)
	if err != nil {
		return nil, fmt.Errorf("find join tokens: %w", err)
	}
	tokens, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tripcap.JoinToken, error) { return scanJoinToken(r) })
	if err != nil {
		return nil, fmt.Errorf("find join tokens: %w", err)
	}
	return tokens, nil
}

// DeleteJoinToken revokes a token. ENOTFOUND when unknown.
func (s *Store) DeleteJoinToken(ctx context.Context, id string) error {
	if err := sqldoc.CheckID("join token id", id); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM join_tokens WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete join token %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return sqldoc.JoinTokenNotFound(id)
	}
	return nil
}

const credentialColumns = "id, name, role, host_id, hash, created_at"

func scanCredential(r pgx.Row) (*tripcap.Credential, error) {
	var c tripcap.Credential
	if err := r.Scan(&c.ID, &c.Name, &c.Role, &c.HostID, &c.Hash, &c.CreatedAt); err != nil {
		return nil, err
	}
	utc(&c.CreatedAt)
	return &c, nil
}

// CreateCredential stores a credential (its hash). ECONFLICT when the id or hash exists.
func (s *Store) CreateCredential(ctx context.Context, c *tripcap.Credential) error {
	if err := sqldoc.CheckCredential(c, utcNow()); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO credentials (`+credentialColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		c.ID, c.Name, string(c.Role), c.HostID, c.Hash, c.CreatedAt)
	if uniqueViolation(err) != "" {
		return sqldoc.CredentialTaken()
	}
	if err != nil {
		return fmt.Errorf("create credential %s: %w", c.ID, err)
	}
	return nil
}

// FindCredentialByHash returns the credential with this hash, ENOTFOUND when none.
func (s *Store) FindCredentialByHash(ctx context.Context, hash string) (*tripcap.Credential, error) {
	if hash == "" {
		return nil, sqldoc.CredentialNotFound()
	}
	c, err := scanCredential(s.pool.QueryRow(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE hash = $1`, hash))
	if isNoRows(err) {
		return nil, sqldoc.CredentialNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("find credential: %w", err)
	}
	return c, nil
}

// FindCredentials lists credentials with the given role ("" for all), ordered by id.
func (s *Store) FindCredentials(ctx context.Context, role tripcap.Role) ([]*tripcap.Credential, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE $1 = '' OR role = $1 ORDER BY id`, string(role))
	if err != nil {
		return nil, fmt.Errorf("find credentials: %w", err)
	}
	creds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tripcap.Credential, error) { return scanCredential(r) })
	if err != nil {
		return nil, fmt.Errorf("find credentials: %w", err)
	}
	return creds, nil
}

// DeleteCredentialsOfHost revokes every credential bound to the host (none is fine).
func (s *Store) DeleteCredentialsOfHost(ctx context.Context, hostID string) error {
	if err := sqldoc.CheckID("host id", hostID); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM credentials WHERE host_id = $1`, hostID); err != nil {
			return err
		}
		return notify(ctx, tx, hostID)
	})
	if err != nil {
		return fmt.Errorf("delete credentials of host %s: %w", hostID, err)
	}
	return nil
}
