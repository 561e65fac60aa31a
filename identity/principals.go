package identity

import (
	"context"
	"crypto/subtle"
	"fmt"

	"github.com/tripcap/tripcap"
)

// checkPrincipalName refuses a name that is not 1..64 letters, digits and . _ @ -.
func checkPrincipalName(name string) error {
	if name == "" || len(name) > 64 {
		return tripcap.Errorf(tripcap.EINVALID, "name: %d characters; 1 to 64 are allowed", len(name))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '@' || r == '-') {
			return tripcap.Errorf(tripcap.EINVALID, "name: %q may hold only letters, digits and . _ @ -", name)
		}
	}
	return nil
}

// CreateUser creates a user with a password (at least MinPasswordLength
// characters), stored as an argon2id hash. It needs PermAccessWrite.
func (s *Service) CreateUser(ctx context.Context, name, password string) (*tripcap.PrincipalRecord, error) {
	if err := requireAccessWrite(ctx); err != nil {
		return nil, err
	}
	if err := checkPrincipalName(name); err != nil {
		return nil, err
	}
	if err := checkPassword(password); err != nil {
		return nil, err
	}
	done, err := s.hashTurn(ctx)
	if err != nil {
		return nil, err
	}
	hash, err := hashPassword(password, s.cfg.Password)
	done()
	if err != nil {
		return nil, err
	}
	u := &tripcap.PrincipalRecord{ID: tripcap.NewID(), Kind: tripcap.PrincipalUser, Name: name, SecretHash: hash,
		CreatedBy: tripcap.CallerName(ctx), CreatedAt: s.cfg.Now().UTC()}
	if err := s.store.CreatePrincipal(ctx, u); err != nil {
		return nil, err
	}
	s.log.Info("user created", "user", name, "id", u.ID, "by", u.CreatedBy)
	return u, nil
}

// CreateServicePrincipal creates a service principal and returns it with
// its client id and client secret, the secret shown only this once (a
// 256-bit random secret: its SHA-256 is what is kept). It needs PermAccessWrite.
func (s *Service) CreateServicePrincipal(ctx context.Context, name string) (*tripcap.PrincipalRecord, error) {
	if err := requireAccessWrite(ctx); err != nil {
		return nil, err
	}
	if err := checkPrincipalName(name); err != nil {
		return nil, err
	}
	secret := tripcap.NewSecret(tripcap.SecretPrefixService)
	sp := &tripcap.PrincipalRecord{ID: tripcap.NewID(), Kind: tripcap.PrincipalService, Name: name, SecretHash: tripcap.HashSecret(secret),
		CreatedBy: tripcap.CallerName(ctx), CreatedAt: s.cfg.Now().UTC()}
	if err := s.store.CreatePrincipal(ctx, sp); err != nil {
		return nil, err
	}
	s.log.Info("service principal created", "name", name, "id", sp.ID, "by", sp.CreatedBy)
	sp.ClientID, sp.ClientSecret = sp.ID, secret
	return sp, nil
}

// FindPrincipals lists users and service principals. It needs PermAccessWrite.
func (s *Service) FindPrincipals(ctx context.Context, kind tripcap.PrincipalKind) ([]*tripcap.PrincipalRecord, error) {
	if err := requireAccessWrite(ctx); err != nil {
		return nil, err
	}
	f := tripcap.PrincipalFilter{}
	if kind != "" {
		if kind != tripcap.PrincipalUser && kind != tripcap.PrincipalService {
			return nil, tripcap.Errorf(tripcap.EINVALID, "kind: %q is not %q or %q", kind, tripcap.PrincipalUser, tripcap.PrincipalService)
		}
		f.Kind = &kind
	}
	return s.store.FindPrincipals(ctx, f)
}

// FindPrincipal returns a user or service principal by id or name. It
// needs PermAccessWrite, except for the caller itself.
func (s *Service) FindPrincipal(ctx context.Context, ref string) (*tripcap.PrincipalRecord, error) {
	p, err := s.principalByRef(ctx, ref)
	if err != nil {
		if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
			// Who may not manage principals learns nothing of which exist.
			if aerr := requireAccessWrite(ctx); aerr != nil {
				return nil, aerr
			}
		}
		return nil, err
	}
	if _, err := requireSelfOr(ctx, p.ID); err != nil {
		return nil, err
	}
	return p, nil
}

// principalByRef finds a principal by id, else by name (regardless of case).
func (s *Service) principalByRef(ctx context.Context, ref string) (*tripcap.PrincipalRecord, error) {
	if ref == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "principal: required (a name or id)")
	}
	if tripcap.IsID(ref) {
		found, err := s.store.FindPrincipals(ctx, tripcap.PrincipalFilter{ID: &ref})
		if err != nil {
			return nil, err
		}
		if len(found) == 1 {
			return found[0], nil
		}
	}
	found, err := s.store.FindPrincipals(ctx, tripcap.PrincipalFilter{Name: &ref})
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "principal %q not found", ref)
	}
	return found[0], nil
}

// DeletePrincipal deletes a user or service principal with its tokens and
// role assignments. It needs PermAccessWrite.
func (s *Service) DeletePrincipal(ctx context.Context, ref string) error {
	if err := requireAccessWrite(ctx); err != nil {
		return err
	}
	p, err := s.principalByRef(ctx, ref)
	if err != nil {
		return err
	}
	if err := s.keepManageable(ctx, func(a *tripcap.RoleAssignment) bool { return a.PrincipalID == p.ID }); err != nil {
		return err
	}
	if err := s.store.DeletePrincipal(ctx, p.ID); err != nil {
		return err
	}
	s.cache.clear()
	s.log.Info("principal deleted", "name", p.Name, "id", p.ID, "kind", p.Kind, "by", tripcap.CallerName(ctx))
	return nil
}

// checkServiceSecret returns the service principal whose client id and
// secret these are; EUNAUTHORIZED, saying no more, otherwise.
func (s *Service) checkServiceSecret(ctx context.Context, clientID, secret string) (*tripcap.PrincipalRecord, error) {
	refused := tripcap.Errorf(tripcap.EUNAUTHORIZED, "client id or secret is wrong")
	if !tripcap.IsID(clientID) || secret == "" || len(secret) > 512 {
		return nil, refused
	}
	kind := tripcap.PrincipalService
	found, err := s.store.FindPrincipals(ctx, tripcap.PrincipalFilter{ID: &clientID, Kind: &kind})
	if err != nil {
		return nil, fmt.Errorf("find client %s: %w", clientID, err)
	}
	want := tripcap.HashSecret("")
	if len(found) == 1 {
		want = found[0].SecretHash
	}
	if subtle.ConstantTimeCompare([]byte(tripcap.HashSecret(secret)), []byte(want)) != 1 || len(found) != 1 {
		return nil, refused
	}
	return found[0], nil
}
