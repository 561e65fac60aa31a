package identity

import (
	"context"
	"fmt"
	"time"

	"github.com/tripcap/tripcap"
)

// CreateToken issues a personal API token to a principal (by name or id;
// "" for the caller itself), valid until expiresAt (required, at most a
// year away). The answer holds the secret, shown only this once. A user
// may create tokens for themselves; others need PermAccessWrite. A caller
// authenticated by a JWT may not: its hour would become a year.
func (s *Service) CreateToken(ctx context.Context, principal, name string, expiresAt time.Time) (*tripcap.APIToken, error) {
	if p := tripcap.PrincipalFromContext(ctx); p != nil && p.Credential == tripcap.CredentialJWT {
		return nil, tripcap.Errorf(tripcap.EFORBIDDEN, "%s authenticated with a client-credentials JWT, which may not create API tokens (they outlive it); use the client-credentials flow for a new JWT when this one expires", p.Name)
	}
	owner, err := s.tokenOwner(ctx, principal)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = "personal"
	}
	if len(name) > 100 {
		return nil, tripcap.Errorf(tripcap.EINVALID, "name: longer than 100 characters")
	}
	now := s.cfg.Now().UTC()
	switch {
	case expiresAt.IsZero():
		return nil, tripcap.Errorf(tripcap.EINVALID, "expiresAt: required (a token lives at most %s)", MaxTokenLifetime)
	case !expiresAt.After(now):
		return nil, tripcap.Errorf(tripcap.EINVALID, "expiresAt: %s is not in the future", expiresAt.UTC().Format(time.RFC3339))
	case expiresAt.Sub(now) > MaxTokenLifetime:
		return nil, tripcap.Errorf(tripcap.EINVALID, "expiresAt: %s is more than a year away", expiresAt.UTC().Format(time.RFC3339))
	}
	return s.issueToken(ctx, owner, name, expiresAt, tripcap.CallerName(ctx))
}

// issueToken stores a new token of owner's and returns it with its secret.
func (s *Service) issueToken(ctx context.Context, owner *tripcap.PrincipalRecord, name string, expiresAt time.Time, by string) (*tripcap.APIToken, error) {
	secret := tripcap.NewSecret(tripcap.SecretPrefixToken)
	t := &tripcap.APIToken{ID: tripcap.NewID(), PrincipalID: owner.ID, Name: name, Hash: tripcap.HashSecret(secret),
		ExpiresAt: expiresAt.UTC(), CreatedBy: by, CreatedAt: s.cfg.Now().UTC()}
	if err := s.store.CreateAPIToken(ctx, t); err != nil {
		return nil, fmt.Errorf("create token for %s: %w", owner.Name, err)
	}
	s.log.Info("API token created", "principal", owner.Name, "token", t.ID, "name", name, "expiresAt", t.ExpiresAt, "by", by)
	t.Token = secret
	s.deleteExpiredTokens(ctx, owner.ID)
	return t, nil
}

// deleteExpiredTokens forgets a principal's expired tokens, so that the
// tokens of every login do not pile up. A failure only leaves them longer.
func (s *Service) deleteExpiredTokens(ctx context.Context, principalID string) {
	all, err := s.store.FindAPITokens(ctx, principalID)
	if err != nil {
		s.log.Error("listing tokens to delete the expired ones", "err", err)
		return
	}
	now := s.cfg.Now()
	for _, t := range all {
		if !now.Before(t.ExpiresAt) {
			if err := s.store.DeleteAPIToken(ctx, t.ID); err != nil && tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
				s.log.Error("deleting an expired token", "token", t.ID, "err", err)
			}
		}
	}
}

// tokenOwner resolves whose tokens a call is about, and checks the caller
// may act on them.
func (s *Service) tokenOwner(ctx context.Context, principal string) (*tripcap.PrincipalRecord, error) {
	caller := tripcap.PrincipalFromContext(ctx)
	if caller == nil {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "a bearer credential is required")
	}
	if principal == "" {
		if !isStored(caller) {
			return nil, tripcap.Errorf(tripcap.EINVALID, "principal: required: %s is not a user or service principal and holds no tokens", caller.Name)
		}
		principal = caller.ID
	}
	return s.FindPrincipal(ctx, principal)
}

// FindTokens lists a principal's tokens ("" for the caller's), without
// their secrets. A user may list their own; others need PermAccessWrite.
func (s *Service) FindTokens(ctx context.Context, principal string) ([]*tripcap.APIToken, error) {
	owner, err := s.tokenOwner(ctx, principal)
	if err != nil {
		return nil, err
	}
	return s.store.FindAPITokens(ctx, owner.ID)
}

// RevokeToken deletes a token. A user may revoke their own; others need
// PermAccessWrite.
func (s *Service) RevokeToken(ctx context.Context, id string) error {
	caller := tripcap.PrincipalFromContext(ctx)
	if caller == nil {
		return tripcap.Errorf(tripcap.EUNAUTHORIZED, "a bearer credential is required")
	}
	own := false
	if isStored(caller) {
		mine, err := s.store.FindAPITokens(ctx, caller.ID)
		if err != nil {
			return err
		}
		for _, t := range mine {
			own = own || t.ID == id
		}
	}
	if !own {
		if err := requireAccessWrite(ctx); err != nil {
			return err
		}
	}
	if err := s.store.DeleteAPIToken(ctx, id); err != nil {
		return err
	}
	s.cache.clear()
	s.log.Info("API token revoked", "token", id, "by", caller.Name)
	return nil
}

// Login checks a user's password and issues a token valid for
// LoginLifetime. A wrong name and a wrong password are refused alike, in
// about the same time.
func (s *Service) Login(ctx context.Context, user, password string) (*tripcap.APIToken, error) {
	refused := tripcap.Errorf(tripcap.EUNAUTHORIZED, "user name or password is wrong")
	if user == "" || len(user) > 64 || len(password) > maxPasswordBytes {
		return nil, refused
	}
	kind := tripcap.PrincipalUser
	found, err := s.store.FindPrincipals(ctx, tripcap.PrincipalFilter{Name: &user, Kind: &kind})
	if err != nil {
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	hash := s.dummyHash
	if len(found) == 1 {
		hash = found[0].SecretHash
	}
	done, err := s.hashTurn(ctx)
	if err != nil {
		return nil, err
	}
	ok, err := verifyPassword(password, hash)
	done()
	if err != nil {
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	if !ok || len(found) != 1 {
		s.log.Warn("login refused", "user", user)
		return nil, refused
	}
	u := found[0]
	return s.issueToken(ctx, u, "login", s.cfg.Now().Add(s.cfg.LoginLifetime), u.Name)
}
