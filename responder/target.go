package responder

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/responder/payload"
)

// resolveTargets maps a trigger's targets to hosts, and says which targets
// matched none. The metric alert schemas name one resource twice (id and
// name): that is one target, resolved by either.
func (r *Responders) resolveTargets(ctx context.Context, rs *tripcap.Responder, t payload.Trigger) ([]*tripcap.Host, []string, error) {
	var (
		hosts      []*tripcap.Host
		seen       = map[string]bool{}
		unresolved []string
	)
	add := func(h *tripcap.Host) {
		if !seen[h.ID] {
			seen[h.ID] = true
			hosts = append(hosts, h)
		}
	}
	type target struct {
		desc string
		try  []func() (*tripcap.Host, error)
	}
	byID := func(id string) func() (*tripcap.Host, error) {
		return func() (*tripcap.Host, error) { return r.hosts.FindHost(ctx, tripcap.HostFilter{ResourceID: &id}) }
	}
	byName := func(n payload.NameTarget) func() (*tripcap.Host, error) {
		return func() (*tripcap.Host, error) {
			h, err := r.hosts.FindHost(ctx, tripcap.HostFilter{Name: &n.Name})
			if err == nil && n.ResourceGroup != "" && !strings.EqualFold(h.ResourceGroup, n.ResourceGroup) {
				return nil, tripcap.Errorf(tripcap.ENOTFOUND, "host %s is in resource group %s, not %s", h.Name, h.ResourceGroup, n.ResourceGroup)
			}
			return h, err
		}
	}
	var targets []target
	ts := t.Targets
	if len(ts.ResourceIDs) == 1 && len(ts.Names) == 1 {
		targets = append(targets, target{desc: "resource " + ts.ResourceIDs[0], try: []func() (*tripcap.Host, error){byID(ts.ResourceIDs[0]), byName(ts.Names[0])}})
	} else {
		for _, id := range ts.ResourceIDs {
			targets = append(targets, target{desc: "resource " + id, try: []func() (*tripcap.Host, error){byID(id)}})
		}
		for _, n := range ts.Names {
			targets = append(targets, target{desc: "resource " + n.ResourceGroup + "/" + n.Name, try: []func() (*tripcap.Host, error){byName(n)}})
		}
	}
	if len(ts.Labels) > 0 {
		cands := payload.LabelCandidates(ts.Labels, rs.TargetLabels)
		tg := target{desc: "labels " + describeLabels(ts.Labels, rs.TargetLabels)}
		for _, c := range cands {
			tg.try = append(tg.try, func() (*tripcap.Host, error) { return r.hostByNameOrAddress(ctx, c) })
		}
		targets = append(targets, tg)
	}
	for _, tg := range targets {
		var found *tripcap.Host
		reason := tg.desc
		for _, try := range tg.try {
			h, err := try()
			if err == nil {
				found = h
				break
			}
			c := tripcap.ErrorCode(err)
			if c == tripcap.ECONFLICT {
				// Several hosts match: capturing on one would be a guess.
				reason = tg.desc + ": " + tripcap.ErrorMessage(err)
				break
			}
			if c != tripcap.ENOTFOUND && c != tripcap.EINVALID {
				return nil, nil, err
			}
		}
		if found == nil {
			unresolved = append(unresolved, reason)
			continue
		}
		add(found)
	}
	return hosts, unresolved, nil
}

// hostByNameOrAddress finds a host by name, or, when v is an IP address,
// by an interface address only (no host is named like an address, see
// tripcap.ValidateHostName). ECONFLICT when several hosts have the address.
func (r *Responders) hostByNameOrAddress(ctx context.Context, v string) (*tripcap.Host, error) {
	addr, err := netip.ParseAddr(v)
	if err != nil {
		return r.hosts.FindHost(ctx, tripcap.HostFilter{Name: &v})
	}
	addr = addr.Unmap().WithZone("")
	var found []*tripcap.Host
	cursor := ""
	for {
		hs, next, err := r.hosts.FindHosts(ctx, tripcap.HostFilter{Cursor: cursor, Limit: 500})
		if err != nil {
			return nil, fmt.Errorf("finding hosts with address %s: %w", addr, err)
		}
		for _, h := range hs {
			if hasAddress(h, addr) {
				found = append(found, h)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	switch len(found) {
	case 0:
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no host has address %s", addr)
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, h := range found {
		names[i] = h.Name
	}
	return nil, tripcap.Errorf(tripcap.ECONFLICT, "address %s is on %d hosts (%s); no capture is started on a guess", addr, len(found), strings.Join(names, ", "))
}

// hasAddress reports whether one of h's interfaces has addr.
func hasAddress(h *tripcap.Host, addr netip.Addr) bool {
	for _, a := range h.Inventory.Addresses() {
		if b, err := netip.ParseAddr(a); err == nil && b.Unmap().WithZone("") == addr {
			return true
		}
	}
	return false
}

// hostAddress is the address ${host.address} stands for: the first global
// IPv4 address, else the first non-loopback one.
func hostAddress(h *tripcap.Host) string {
	var fallback string
	for _, a := range h.Inventory.Addresses() {
		ip, err := netip.ParseAddr(a)
		if err != nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			continue
		}
		if ip.Is4() {
			return ip.String()
		}
		if fallback == "" {
			fallback = ip.String()
		}
	}
	return fallback
}
