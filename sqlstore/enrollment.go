package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/tripcap/tripcap"
)

// FindJoinTokenByHash returns the token with this hash when it is usable at
// now, without using it up. EUNAUTHORIZED otherwise (JoinTokenRefused).
func (s *Store) FindJoinTokenByHash(ctx context.Context, hash string, now time.Time) (*tripcap.JoinToken, error) {
	if hash == "" {
		return nil, JoinTokenRefused()
	}
	t, err := scanJoinToken(s.queryRow(ctx, `SELECT `+joinTokenColumns+` FROM join_tokens WHERE hash = ? AND uses_left > 0 AND expires_at > ?`, hash, s.t(now)))
	if isNoRows(err) {
		return nil, JoinTokenRefused()
	}
	if err != nil {
		return nil, fmt.Errorf("find join token: %w", err)
	}
	return t, nil
}

const pendingColumns = "p.id, p.host_name, p.token_id, t.expires_at, p.remote, p.hostname, p.ticket_hash, p.created_at, p.approved_at, p.approved_by"

func scanPending(r rowScanner) (*tripcap.PendingEnrollment, error) {
	var e tripcap.PendingEnrollment
	if err := r.Scan(&e.ID, &e.HostName, &e.JoinTokenID, timeCol{&e.ExpiresAt}, &e.Remote, &e.Hostname, &e.TicketHash, timeCol{&e.CreatedAt}, nullTimeCol{&e.ApprovedAt}, &e.ApprovedBy); err != nil {
		return nil, err
	}
	return &e, nil
}

// CreatePendingEnrollment stores an enrollment waiting for approval.
// ECONFLICT when one with the same ticket hash exists.
func (s *Store) CreatePendingEnrollment(ctx context.Context, e *tripcap.PendingEnrollment) error {
	if err := CheckID("pending enrollment id", e.ID); err != nil {
		return err
	}
	if err := CheckID("join token id", e.JoinTokenID); err != nil {
		return err
	}
	if e.HostName == "" {
		return tripcap.Errorf(tripcap.EINVALID, "pending enrollment host name: required")
	}
	if e.TicketHash == "" {
		return tripcap.Errorf(tripcap.EINVALID, "pending enrollment ticket hash: required")
	}
	if err := checkTexts("pending enrollment host name", e.HostName, "pending enrollment remote", e.Remote, "pending enrollment hostname", e.Hostname, "pending enrollment ticket hash", e.TicketHash); err != nil {
		return err
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = utcNow()
	}
	err := s.write(ctx, func(tx *Tx) error {
		// Those whose token is no longer usable are of no use: they go,
		// so the table holds what tokens alive now could approve.
		if _, err := tx.Exec(ctx, `DELETE FROM pending_enrollments WHERE token_id NOT IN
			(SELECT id FROM join_tokens WHERE uses_left > 0 AND expires_at > ?)`, s.t(e.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO pending_enrollments (id, host_name, token_id, remote, hostname, ticket_hash, created_at, approved_at, approved_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.ID, e.HostName, e.JoinTokenID, e.Remote, e.Hostname, e.TicketHash, s.t(e.CreatedAt), s.tp(e.ApprovedAt), e.ApprovedBy)
		return err
	})
	if s.violation(err) != "" {
		return tripcap.Errorf(tripcap.ECONFLICT, "an enrollment of host %q with this ticket is pending already", e.HostName)
	}
	if err != nil {
		return fmt.Errorf("create pending enrollment of %s: %w", e.HostName, err)
	}
	return nil
}

// FindPendingEnrollments lists the enrollments of hostName ("" for all)
// whose join token is still usable at now, ordered by id.
func (s *Store) FindPendingEnrollments(ctx context.Context, hostName string, now time.Time) ([]*tripcap.PendingEnrollment, error) {
	rows, err := s.query(ctx, `SELECT `+pendingColumns+` FROM pending_enrollments p JOIN join_tokens t ON t.id = p.token_id
		WHERE (? = '' OR p.host_name = ?) AND t.uses_left > 0 AND t.expires_at > ? ORDER BY p.id`, hostName, hostName, s.t(now))
	es, err := collect(rows, err, scanPending)
	if err != nil {
		return nil, fmt.Errorf("find pending enrollments: %w", err)
	}
	return es, nil
}

// ApprovePendingEnrollment records an admin's approval. ENOTFOUND when unknown.
func (s *Store) ApprovePendingEnrollment(ctx context.Context, id, by string, at time.Time) error {
	if err := CheckID("pending enrollment id", id); err != nil {
		return err
	}
	if err := checkText("approved by", by); err != nil {
		return err
	}
	n, err := s.exec(ctx, `UPDATE pending_enrollments SET approved_at = ?, approved_by = ? WHERE id = ?`, s.t(at), by, id)
	if err != nil {
		return fmt.Errorf("approve pending enrollment %s: %w", id, err)
	}
	if n == 0 {
		return pendingNotFound(id)
	}
	return nil
}

// DeletePendingEnrollment forgets one. ENOTFOUND when unknown.
func (s *Store) DeletePendingEnrollment(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "pending_enrollments", "pending enrollment", id, pendingNotFound)
}

func pendingNotFound(id string) error {
	return tripcap.Errorf(tripcap.ENOTFOUND, "pending enrollment %q not found", id)
}
