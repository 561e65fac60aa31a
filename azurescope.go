package tripcap

import (
	"slices"
	"strings"
)

// CoversGroup reports whether the scope covers every resource of resource
// group group in subscription sub, as an Azure role assignment above a
// resource does: "*", that subscription, or that group (case-insensitive).
// Host-selecting scopes (a VM, a host, a location, a label) cover no group.
func (s Scope) CoversGroup(sub, group string) bool {
	ps, err := s.parse()
	if err != nil {
		return false
	}
	switch ps.kind {
	case scopeAll:
		return true
	case scopeSubscription:
		return strings.EqualFold(ps.sub, sub)
	case scopeGroup:
		return strings.EqualFold(ps.sub, sub) && strings.EqualFold(ps.group, group)
	}
	return false
}

// CanInGroup reports whether p holds perm at a scope covering the resource
// group: Azure's check for a resource that is not a host (a network watcher).
func (p *Principal) CanInGroup(perm Permission, sub, group string) bool {
	if p == nil {
		return false
	}
	for _, a := range p.Assignments {
		if slices.Contains(RolePermissions(a.Role), perm) && a.Scope.CoversGroup(sub, group) {
			return true
		}
	}
	return false
}

// Subscription is the subscription an ARM-id scope (a subscription,
// resource group or virtual machine) lies in, "" for any other scope.
func (s Scope) Subscription() string {
	ps, err := s.parse()
	if err != nil {
		return ""
	}
	switch ps.kind {
	case scopeSubscription, scopeGroup, scopeVM:
		return ps.sub
	}
	return ""
}
