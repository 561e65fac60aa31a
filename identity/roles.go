package identity

import (
	"context"
	"fmt"

	"github.com/tripcap/tripcap"
)

// AssignRole grants a principal (by name or id) a role at a scope. It
// needs PermAccessWrite.
func (s *Service) AssignRole(ctx context.Context, principal string, role tripcap.RoleName, scope tripcap.Scope) (*tripcap.RoleAssignment, error) {
	return s.AssignRoleWithID(ctx, tripcap.NewID(), principal, role, scope)
}

// AssignRoleWithID is AssignRole with the assignment's id chosen by the
// caller (an ARM role assignment's name, a GUID). ECONFLICT when the id
// is taken or the principal holds the role at the scope.
func (s *Service) AssignRoleWithID(ctx context.Context, id, principal string, role tripcap.RoleName, scope tripcap.Scope) (*tripcap.RoleAssignment, error) {
	if err := requireAccessWrite(ctx); err != nil {
		return nil, err
	}
	if err := tripcap.ValidateRoleName("role", role); err != nil {
		return nil, err
	}
	if scope == "" {
		scope = tripcap.ScopeAll
	}
	if err := scope.Validate(); err != nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "scope: %v", err)
	}
	p, err := s.principalByRef(ctx, principal)
	if err != nil {
		return nil, err
	}
	a := &tripcap.RoleAssignment{ID: id, PrincipalID: p.ID, Role: role, Scope: scope, CreatedBy: tripcap.CallerName(ctx), CreatedAt: s.cfg.Now().UTC()}
	if err := s.store.CreateRoleAssignment(ctx, a); err != nil {
		return nil, err
	}
	a.PrincipalName = p.Name
	s.cache.clear()
	s.log.Info("role assigned", "principal", p.Name, "role", role, "scope", scope, "by", a.CreatedBy)
	return a, nil
}

// FindRoleAssignments lists role assignments: a principal's (by name or
// id), or everyone's for "". The caller may list their own; others need
// PermAccessWrite.
func (s *Service) FindRoleAssignments(ctx context.Context, principal string) ([]*tripcap.RoleAssignment, error) {
	if principal == "" {
		if err := requireAccessWrite(ctx); err != nil {
			return nil, err
		}
		as, err := s.store.FindRoleAssignments(ctx, tripcap.RoleAssignmentFilter{})
		if err != nil {
			return nil, err
		}
		ps, err := s.store.FindPrincipals(ctx, tripcap.PrincipalFilter{})
		if err != nil {
			return nil, err
		}
		names := make(map[string]string, len(ps))
		for _, p := range ps {
			names[p.ID] = p.Name
		}
		for _, a := range as {
			a.PrincipalName = names[a.PrincipalID]
		}
		return as, nil
	}
	p, err := s.FindPrincipal(ctx, principal)
	if err != nil {
		return nil, err
	}
	as, err := s.store.FindRoleAssignments(ctx, tripcap.RoleAssignmentFilter{PrincipalID: &p.ID})
	for _, a := range as {
		a.PrincipalName = p.Name
	}
	return as, err
}

// DeleteRoleAssignment removes an assignment. It needs PermAccessWrite.
func (s *Service) DeleteRoleAssignment(ctx context.Context, id string) error {
	if err := requireAccessWrite(ctx); err != nil {
		return err
	}
	if err := s.keepManageable(ctx, func(a *tripcap.RoleAssignment) bool { return a.ID == id }); err != nil {
		return err
	}
	if err := s.store.DeleteRoleAssignment(ctx, id); err != nil {
		return err
	}
	s.cache.clear()
	s.log.Info("role assignment deleted", "id", id, "by", tripcap.CallerName(ctx))
	return nil
}

// keepManageable refuses a change that would leave the server with no one
// to manage it: the bootstrap admin token revoked and no Owner at "*" left
// once the assignments gone says go are gone. (Checked, then done: two
// such changes at the same moment on two replicas can both pass.)
func (s *Service) keepManageable(ctx context.Context, gone func(*tripcap.RoleAssignment) bool) error {
	admins, err := s.store.FindCredentials(ctx, tripcap.RoleAdmin)
	if err != nil {
		return fmt.Errorf("find the admin token: %w", err)
	}
	if len(admins) > 0 {
		return nil
	}
	revoked, err := s.store.FindRevokedCredentials(ctx, tripcap.RoleAdmin)
	if err != nil {
		return fmt.Errorf("find revoked admin tokens: %w", err)
	}
	if len(revoked) == 0 {
		return nil // a store the bootstrap token was never in (it is made at start)
	}
	as, err := s.store.FindRoleAssignments(ctx, tripcap.RoleAssignmentFilter{})
	if err != nil {
		return fmt.Errorf("find role assignments: %w", err)
	}
	for _, a := range as {
		if a.Role == tripcap.RoleOwner && a.Scope == tripcap.ScopeAll && !gone(a) {
			return nil
		}
	}
	return tripcap.Errorf(tripcap.EPRECONDITION, "this would leave no one to manage the server: the admin token is revoked and this is the last %s at %q; assign it to another principal first", tripcap.RoleOwner, tripcap.ScopeAll)
}
