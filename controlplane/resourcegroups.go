package controlplane

import (
	"context"
	"slices"
	"strings"

	"github.com/tripcap/tripcap"
)

// ResourceGroups lists the resource groups of a subscription that hold
// something the caller may read: its hosts' groups, its watchers', and the
// server's own group when it has storage accounts the caller may read. Each
// group once regardless of case (as first spelled), ordered by name.
func (s *Service) ResourceGroups(ctx context.Context, subscription string) ([]tripcap.ResourceGroup, error) {
	var out []tripcap.ResourceGroup
	add := func(group, location string) {
		if group == "" || slices.ContainsFunc(out, func(g tripcap.ResourceGroup) bool { return strings.EqualFold(g.Name, group) }) {
			return
		}
		out = append(out, tripcap.ResourceGroup{SubscriptionID: subscription, Name: group, Location: location})
	}
	f := tripcap.HostFilter{SubscriptionID: &subscription, Limit: 1000}
	for {
		hs, next, err := s.FindHosts(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			add(h.ResourceGroup, h.Location)
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	ws, err := s.FindWatchers(ctx)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		if strings.EqualFold(w.SubscriptionID, subscription) {
			add(w.ResourceGroup, w.Location)
		}
	}
	if strings.EqualFold(subscription, s.cfg.SubscriptionID) {
		accounts, err := s.FindStorageAccounts(ctx)
		switch {
		case tripcap.ErrorCode(err) == tripcap.EFORBIDDEN:
			// The caller may not read the server's group: not listed.
		case err != nil:
			return nil, err
		case len(accounts) > 0:
			add(s.cfg.ResourceGroup, s.cfg.DefaultLocation)
		}
	}
	slices.SortFunc(out, func(a, b tripcap.ResourceGroup) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	return out, nil
}

// FindResourceGroup returns the resource group of the subscription with
// this name (regardless of case) if ResourceGroups lists it; ENOTFOUND
// otherwise.
func (s *Service) FindResourceGroup(ctx context.Context, subscription, name string) (*tripcap.ResourceGroup, error) {
	gs, err := s.ResourceGroups(ctx, subscription)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		if strings.EqualFold(g.Name, name) {
			return &g, nil
		}
	}
	return nil, tripcap.Errorf(tripcap.ENOTFOUND, "resource group %s not found in subscription %s", name, subscription)
}
