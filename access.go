package tripcap

import (
	"context"
	"slices"
	"time"
)

// Permission is one kind of action a role grants.
type Permission string

const (
	// PermRead reads hosts, captures' records, rules, action groups,
	// responders, silences, alerts and metrics (not packets).
	PermRead Permission = "read"
	// PermCaptureWrite creates, stops and deletes captures.
	PermCaptureWrite Permission = "captures/write"
	// PermFileRead downloads capture files: packets are the most sensitive
	// data tripcap holds, so reading them is a permission of its own.
	PermFileRead Permission = "files/read"
	// PermFileDelete deletes stored capture files.
	PermFileDelete Permission = "files/delete"
	// PermMonitoringWrite changes alert rules, action groups, responders and silences.
	PermMonitoringWrite Permission = "monitoring/write"
	// PermRawBPF sets a capture's raw BPF program instead of filters or an expression.
	PermRawBPF Permission = "captures/rawBPF"
	// PermHostsWrite deletes hosts, issues join tokens, approves enrollments
	// and changes watchers.
	PermHostsWrite Permission = "hosts/write"
	// PermStorageWrite adds and removes storage accounts.
	PermStorageWrite Permission = "storage/write"
	// PermAccessWrite manages principals, tokens and role assignments.
	PermAccessWrite Permission = "access/write"
	// PermAuditRead reads the audit log.
	PermAuditRead Permission = "audit/read"
)

// RoleName names a built-in role; Azure's names where Azure has one.
type RoleName string

const (
	RoleReader                RoleName = "Reader"
	RoleNetworkContributor    RoleName = "Network Contributor"
	RoleMonitoringContributor RoleName = "Monitoring Contributor"
	RoleCaptureFileReader     RoleName = "Capture File Reader"
	// RoleContributor is Azure's Contributor: everything but granting
	// access (principals, tokens, role assignments, the admin token).
	RoleContributor RoleName = "Contributor"
	RoleOwner       RoleName = "Owner"
)

// RoleNames lists the built-in roles, least to most powerful.
func RoleNames() []RoleName {
	return []RoleName{RoleReader, RoleCaptureFileReader, RoleNetworkContributor, RoleMonitoringContributor, RoleContributor, RoleOwner}
}

// RolePermissions returns what a built-in role grants, nil for an unknown role.
func RolePermissions(r RoleName) []Permission {
	switch r {
	case RoleReader:
		return []Permission{PermRead}
	case RoleCaptureFileReader:
		return []Permission{PermRead, PermFileRead}
	case RoleNetworkContributor:
		return []Permission{PermRead, PermCaptureWrite}
	case RoleMonitoringContributor:
		return []Permission{PermRead, PermMonitoringWrite}
	case RoleContributor:
		return []Permission{PermRead, PermCaptureWrite, PermFileRead, PermFileDelete, PermMonitoringWrite,
			PermRawBPF, PermHostsWrite, PermStorageWrite, PermAuditRead}
	case RoleOwner:
		return append(RolePermissions(RoleContributor), PermAccessWrite)
	}
	return nil
}

// ValidateRoleName refuses a name that is not a built-in role.
func ValidateRoleName(field string, r RoleName) error {
	if RolePermissions(r) == nil {
		return Errorf(EINVALID, "%s: %q is not a role (one of %q)", field, r, RoleNames())
	}
	return nil
}

// RoleAssignment grants a principal a role at a scope: "*" (everything), a
// location ("location:westeurope", one network watcher), a subscription or
// resource group, a host, or hosts with a label ("label:team=a"). A grant
// narrower than "*" covers only resources of matching hosts (captures,
// their files, hosts, alerts); resources not tied to a host (rules, action
// groups, responders, storage accounts, principals) need the role at "*".
type RoleAssignment struct {
	ID          string `json:"id"`
	PrincipalID string `json:"principalId"`
	// PrincipalName is filled in answers, for people; it is not stored.
	PrincipalName string    `json:"principalName,omitempty"`
	Role          RoleName  `json:"role"`
	Scope         Scope     `json:"scope"`
	CreatedBy     string    `json:"createdBy,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
}

// PrincipalKind tells what kind of caller a principal is.
type PrincipalKind string

const (
	PrincipalUser    PrincipalKind = "user"
	PrincipalService PrincipalKind = "servicePrincipal"
	PrincipalAgent   PrincipalKind = "agent"
	// PrincipalBootstrap is the admin token the server creates on first run.
	PrincipalBootstrap PrincipalKind = "bootstrap"
	// PrincipalFunctionKey is a responder's function key: it starts that
	// responder's template and nothing else.
	PrincipalFunctionKey PrincipalKind = "functionKey"
	// PrincipalSystem is the server acting on its own (a responder firing on
	// an alert rule of its own).
	PrincipalSystem PrincipalKind = "system"
)

// Can reports whether p holds perm at a scope covering h; a nil h is a
// resource not tied to a host, which needs perm at "*".
func (p *Principal) Can(perm Permission, h *Host) bool {
	if p == nil {
		return false
	}
	for _, a := range p.Assignments {
		if !slices.Contains(RolePermissions(a.Role), perm) {
			continue
		}
		if a.Scope == ScopeAll || h != nil && a.Scope.Matches(h) {
			return true
		}
	}
	return false
}

// CanSome reports whether p holds perm at any scope, so that a listing can
// be answered, filtered by Can, instead of refused.
func (p *Principal) CanSome(perm Permission) bool {
	if p == nil {
		return false
	}
	for _, a := range p.Assignments {
		if slices.Contains(RolePermissions(a.Role), perm) {
			return true
		}
	}
	return false
}

// Authorize refuses the caller unless it holds perm at a scope covering h
// (nil h: a resource not tied to a host): EUNAUTHORIZED with no caller,
// EFORBIDDEN without the grant.
func Authorize(ctx context.Context, perm Permission, h *Host) error {
	p := PrincipalFromContext(ctx)
	if p == nil {
		return Errorf(EUNAUTHORIZED, "a bearer credential is required")
	}
	if !p.Can(perm, h) {
		if h != nil {
			return Errorf(EFORBIDDEN, "%s may not %s on host %s", p.Name, perm, h.Name)
		}
		return Errorf(EFORBIDDEN, "%s may not %s", p.Name, perm)
	}
	return nil
}

// AuthorizeSome refuses the caller unless it holds perm at some scope, and
// returns it so a listing can keep what it may see (Principal.Can).
func AuthorizeSome(ctx context.Context, perm Permission) (*Principal, error) {
	p := PrincipalFromContext(ctx)
	if p == nil {
		return nil, Errorf(EUNAUTHORIZED, "a bearer credential is required")
	}
	if !p.CanSome(perm) {
		return nil, Errorf(EFORBIDDEN, "%s may not %s", p.Name, perm)
	}
	return p, nil
}

// OwnerEverywhere is the grant of the bootstrap admin token and of the
// server acting on its own.
func OwnerEverywhere() []RoleAssignment {
	return []RoleAssignment{{Role: RoleOwner, Scope: ScopeAll}}
}
