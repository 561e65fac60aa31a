package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/sqldoc"
)

const joinTokenColumns = "id, hash, expires_at, uses_left, created_at"

func scanJoinToken(r rowScanner) (*tripcap.JoinToken, error) {
	var t tripcap.JoinToken
	if err := r.Scan(&t.ID, &t.Hash, timeText{&t.ExpiresAt}, &t.UsesLeft, timeText{&t.CreatedAt}); err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateJoinToken stores a join token: its hash, never its secret. ECONFLICT
// when the id or hash exists.
func (s *Store) CreateJoinToken(ctx context.Context, t *tripcap.JoinToken) error {
	if err := sqldoc.CheckJoinToken(t, utcNow()); err != nil {
		return err
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO join_tokens (`+joinTokenColumns+`) VALUES (?, ?, ?, ?, ?)`,
			t.ID, t.Hash, formatTime(t.ExpiresAt), t.UsesLeft, formatTime(t.CreatedAt))
		return err
	})
	if constraint(err) != "" {
		return sqldoc.JoinTokenTaken()
	}
	if err != nil {
		return fmt.Errorf("create join token %s: %w", t.ID, err)
	}
	return nil
}

// ConsumeJoinToken uses up one use of the token with this hash, atomically,
// and returns it with the uses left after this one. EUNAUTHORIZED when
// unknown, expired (at or after ExpiresAt) or used up.
func (s *Store) ConsumeJoinToken(ctx context.Context, hash string, now time.Time) (*tripcap.JoinToken, error) {
	if hash == "" {
		return nil, sqldoc.JoinTokenRefused()
	}
	var t *tripcap.JoinToken
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = scanJoinToken(tx.QueryRowContext(ctx, `UPDATE join_tokens SET uses_left = uses_left - 1
			WHERE hash = ? AND uses_left > 0 AND expires_at > ? RETURNING `+joinTokenColumns, hash, formatTime(now)))
		return err
	})
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
	rows, err := s.reader.QueryContext(ctx, `SELECT `+joinTokenColumns+` FROM join_tokens
		WHERE uses_left > 0 AND expires_at > ? ORDER BY id`, formatTime(now))
	if err != nil {
		return nil, fmt.Errorf("find join tokens: %w", err)
	}
	defer rows.Close()
	var tokens []*tripcap.JoinToken
	for rows.Next() {
		t, err := scanJoinToken(rows)
		if err != nil {
			return nil, fmt.Errorf("find join tokens: %w", err)
		}
		tokens = append(tokens, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find join tokens: %w", err)
	}
	return tokens, nil
}

// DeleteJoinToken revokes a token. ENOTFOUND when unknown.
func (s *Store) DeleteJoinToken(ctx context.Context, id string) error {
	if err := sqldoc.CheckID("join token id", id); err != nil {
		return err
	}
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM join_tokens WHERE id = ?`, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("delete join token %s: %w", id, err)
	}
	if n == 0 {
		return sqldoc.JoinTokenNotFound(id)
	}
	return nil
}

const credentialColumns = "id, name, role, host_id, hash, created_at"

func scanCredential(r rowScanner) (*tripcap.Credential, error) {
	var c tripcap.Credential
	if err := r.Scan(&c.ID, &c.Name, &c.Role, &c.HostID, &c.Hash, timeText{&c.CreatedAt}); err != nil {
		return nil, err
	}
	return &c, nil
}

// CreateCredential stores a credential (its hash). ECONFLICT when the id or hash exists.
func (s *Store) CreateCredential(ctx context.Context, c *tripcap.Credential) error {
	if err := sqldoc.CheckCredential(c, utcNow()); err != nil {
		return err
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO credentials (`+credentialColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
			c.ID, c.Name, string(c.Role), c.HostID, c.Hash, formatTime(c.CreatedAt))
		return err
	})
	if constraint(err) != "" {
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
	c, err := scanCredential(s.reader.QueryRowContext(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE hash = ?`, hash))
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
	rows, err := s.reader.QueryContext(ctx, `SELECT `+credentialColumns+` FROM credentials
		WHERE ? = '' OR role = ? ORDER BY id`, string(role), string(role))
	if err != nil {
		return nil, fmt.Errorf("find credentials: %w", err)
	}
	defer rows.Close()
	var creds []*tripcap.Credential
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, fmt.Errorf("find credentials: %w", err)
		}
		creds = append(creds, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find credentials: %w", err)
	}
	return creds, nil
}

// DeleteCredentialsOfHost revokes every credential bound to the host (none is fine).
func (s *Store) DeleteCredentialsOfHost(ctx context.Context, hostID string) error {
	if err := sqldoc.CheckID("host id", hostID); err != nil {
		return err
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE host_id = ?`, hostID)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete credentials of host %s: %w", hostID, err)
	}
	s.hub.publish(hostID)
	return nil
}
