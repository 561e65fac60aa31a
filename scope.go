package tripcap

import (
	"fmt"
	"strings"
)

// Scope selects hosts. Forms:
//
//	"*"                                        every host
//	"/subscriptions/S/resourceGroups/G/providers/Microsoft.Compute/virtualMachines/VM"
//	"/subscriptions/S" or "/subscriptions/S/resourceGroups/G"   hosts in it
//	"host:NAME-OR-ID"                          one host
//	"location:LOCATION"                        hosts of a location
//	"label:KEY=VALUE", "label:KEY!=VALUE", "label:KEY"   label selectors
//
// Resource ids and names compare case-insensitively, as ARM does.
type Scope string

// ScopeAll selects every host.
const ScopeAll Scope = "*"

type scopeKind int

const (
	scopeAll scopeKind = iota
	scopeVM
	scopeSubscription
	scopeGroup
	scopeHost
	scopeLocation
	scopeLabelEq
	scopeLabelNe
	scopeLabelExists
)

type parsedScope struct {
	kind              scopeKind
	sub, group, name  string
	key, value        string
	hostOrID, locName string
}

func (s Scope) parse() (parsedScope, error) {
	str := string(s)
	switch {
	case str == "*":
		return parsedScope{kind: scopeAll}, nil
	case strings.HasPrefix(str, "/"):
		if sub, group, vm, ok := ParseVMResourceID(str); ok {
			return parsedScope{kind: scopeVM, sub: sub, group: group, name: vm}, nil
		}
		parts := strings.Split(strings.Trim(str, "/"), "/")
		if len(parts) == 2 && strings.EqualFold(parts[0], "subscriptions") && parts[1] != "" {
			return parsedScope{kind: scopeSubscription, sub: parts[1]}, nil
		}
		if len(parts) == 4 && strings.EqualFold(parts[0], "subscriptions") && strings.EqualFold(parts[2], "resourceGroups") && parts[1] != "" && parts[3] != "" {
			return parsedScope{kind: scopeGroup, sub: parts[1], group: parts[3]}, nil
		}
		return parsedScope{}, fmt.Errorf("%q is not a subscription, resource group or virtual machine resource id", clip(str))
	case strings.HasPrefix(str, "host:"):
		v := strings.TrimPrefix(str, "host:")
		if v == "" {
			return parsedScope{}, fmt.Errorf("%q names no host", clip(str))
		}
		return parsedScope{kind: scopeHost, hostOrID: v}, nil
	case strings.HasPrefix(str, "location:"):
		v := strings.TrimPrefix(str, "location:")
		if v == "" {
			return parsedScope{}, fmt.Errorf("%q names no location", clip(str))
		}
		return parsedScope{kind: scopeLocation, locName: v}, nil
	case strings.HasPrefix(str, "label:"):
		v := strings.TrimPrefix(str, "label:")
		if k, val, ok := strings.Cut(v, "!="); ok {
			if k == "" {
				return parsedScope{}, fmt.Errorf("%q names no label key", clip(str))
			}
			return parsedScope{kind: scopeLabelNe, key: k, value: val}, nil
		}
		if k, val, ok := strings.Cut(v, "="); ok {
			if k == "" {
				return parsedScope{}, fmt.Errorf("%q names no label key", clip(str))
			}
			return parsedScope{kind: scopeLabelEq, key: k, value: val}, nil
		}
		if v == "" {
			return parsedScope{}, fmt.Errorf("%q names no label key", clip(str))
		}
		return parsedScope{kind: scopeLabelExists, key: v}, nil
	}
	return parsedScope{}, fmt.Errorf("%q is not \"*\", a resource id, host:NAME, location:NAME or label:KEY=VALUE", clip(str))
}

// Validate checks the scope's form.
func (s Scope) Validate() error {
	_, err := s.parse()
	return err
}

// Matches reports whether the scope selects h. An invalid scope selects nothing.
func (s Scope) Matches(h *Host) bool {
	p, err := s.parse()
	if err != nil || h == nil {
		return false
	}
	switch p.kind {
	case scopeAll:
		return true
	case scopeVM:
		return strings.EqualFold(p.name, h.Name) && strings.EqualFold(p.sub, h.SubscriptionID) && strings.EqualFold(p.group, h.ResourceGroup)
	case scopeSubscription:
		return strings.EqualFold(p.sub, h.SubscriptionID)
	case scopeGroup:
		return strings.EqualFold(p.sub, h.SubscriptionID) && strings.EqualFold(p.group, h.ResourceGroup)
	case scopeHost:
		return p.hostOrID == h.ID || strings.EqualFold(p.hostOrID, h.Name)
	case scopeLocation:
		return strings.EqualFold(p.locName, h.Location)
	case scopeLabelEq:
		v, ok := h.Labels[p.key]
		return ok && v == p.value
	case scopeLabelNe:
		return h.Labels[p.key] != p.value
	case scopeLabelExists:
		_, ok := h.Labels[p.key]
		return ok
	}
	return false
}
