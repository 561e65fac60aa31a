package controlplane

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tripcap/tripcap"
)

// FindWatcherByResource returns the watcher a resource id names (its
// subscription, resource group and name, matched regardless of case), if
// the caller may see it (FindWatchers). ENOTFOUND otherwise.
func (s *Service) FindWatcherByResource(ctx context.Context, subscription, group, name string) (*tripcap.NetworkWatcher, error) {
	ws, err := s.FindWatchers(ctx)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		if strings.EqualFold(w.SubscriptionID, subscription) && strings.EqualFold(w.ResourceGroup, group) && strings.EqualFold(w.Name, name) {
			return w, nil
		}
	}
	return nil, tripcap.Errorf(tripcap.ENOTFOUND, "network watcher %s not found in resource group %s", name, group)
}

// authorizeWatcher refuses a caller that may not change watchers of the
// resource group: that takes captures/write (what Azure's Network
// Contributor holds) at a scope covering the group, as in Azure.
func authorizeWatcher(ctx context.Context, subscription, group string) error {
	p := tripcap.PrincipalFromContext(ctx)
	if p == nil {
		return tripcap.Errorf(tripcap.EUNAUTHORIZED, "a bearer credential is required")
	}
	if !p.CanInGroup(tripcap.PermCaptureWrite, subscription, group) {
		return tripcap.Errorf(tripcap.EFORBIDDEN, "%s may not %s in resource group %s of subscription %s", p.Name, tripcap.PermCaptureWrite, group, subscription)
	}
	return nil
}

// PutWatcher creates the watcher w names (subscription, group, name) or,
// when it exists, replaces its tags (its location cannot change); created
// says which. A subscription has one watcher per location (ECONFLICT).
// It takes captures/write at a scope covering the watcher's group.
func (s *Service) PutWatcher(ctx context.Context, w tripcap.NetworkWatcher) (_ *tripcap.NetworkWatcher, created bool, err error) {
	if err := authorizeWatcher(ctx, w.SubscriptionID, w.ResourceGroup); err != nil {
		return nil, false, err
	}
	if w.Location == "" {
		return nil, false, tripcap.Errorf(tripcap.EINVALID, "location: required")
	}
	existing, err := s.FindWatcherByResource(ctx, w.SubscriptionID, w.ResourceGroup, w.Name)
	switch {
	case err == nil:
		if !strings.EqualFold(existing.Location, w.Location) {
			return nil, false, tripcap.Errorf(tripcap.EINVALID, "location: network watcher %s is in %s; a watcher's location cannot change", existing.Name, existing.Location)
		}
		if err := s.store.SetWatcherTags(ctx, existing.ID, w.Tags); err != nil {
			return nil, false, fmt.Errorf("update network watcher %s: %w", w.Name, err)
		}
		existing.Tags = w.Tags
		if len(existing.Tags) == 0 {
			existing.Tags = nil
		}
		return existing, false, nil
	case tripcap.ErrorCode(err) != tripcap.ENOTFOUND:
		return nil, false, err
	}
	w.ID, w.MaxCaptures, w.CreatedAt = tripcap.NewID(), s.cfg.MaxCapturesPerWatcher, s.now()
	if len(w.Tags) == 0 {
		w.Tags = nil
	}
	if err := s.store.CreateWatcher(ctx, &w); err != nil {
		return nil, false, err
	}
	s.log.Info("network watcher created", "watcher", w.Name, "resourceGroup", w.ResourceGroup, "location", w.Location)
	return &w, true, nil
}

// DeleteWatcher deletes the watcher the resource id names; one with
// captures on record stays (ECONFLICT). It takes captures/write at a scope
// covering the watcher's group.
func (s *Service) DeleteWatcher(ctx context.Context, subscription, group, name string) error {
	if err := authorizeWatcher(ctx, subscription, group); err != nil {
		return err
	}
	w, err := s.FindWatcherByResource(ctx, subscription, group, name)
	if err != nil {
		return err
	}
	if err := s.store.DeleteWatcher(ctx, w.ID); err != nil {
		return err
	}
	s.log.Info("network watcher deleted", "watcher", w.Name, "resourceGroup", w.ResourceGroup, "location", w.Location)
	return nil
}

// Subscriptions lists the subscription ids this control plane serves
// that the caller may see, ordered, each once regardless of case: of its
// own (Config.SubscriptionID) and its watchers' (every host's subscription
// has one), those where the caller holds a role at "*" or at the
// subscription or something in it, or may read a host. As Azure does, one
// the caller has no access to is as absent as one that does not exist.
func (s *Service) Subscriptions(ctx context.Context) ([]string, error) {
	ws, err := s.store.FindWatchers(ctx)
	if err != nil {
		return nil, fmt.Errorf("find subscriptions: %w", err)
	}
	subs := []string{s.cfg.SubscriptionID}
	for _, w := range ws {
		if w.SubscriptionID != "" && !slices.ContainsFunc(subs, func(x string) bool { return strings.EqualFold(x, w.SubscriptionID) }) {
			subs = append(subs, w.SubscriptionID)
		}
	}
	slices.SortFunc(subs, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	p := tripcap.PrincipalFromContext(ctx)
	if p == nil {
		return nil, nil
	}
	var granted tripcap.HostGrant
	if p.CanSome(tripcap.PermRead) {
		if granted, err = tripcap.GrantedHosts(ctx, s.store, tripcap.PermRead); err != nil {
			return nil, fmt.Errorf("find the subscriptions' hosts: %w", err)
		}
	}
	return slices.DeleteFunc(subs, func(sub string) bool {
		for _, a := range p.Assignments {
			if a.Scope == tripcap.ScopeAll || strings.EqualFold(a.Scope.Subscription(), sub) {
				return false
			}
		}
		return !granted.CoversSubscription(sub)
	}), nil
}

// HasSubscription reports whether a subscription id is one this control
// plane serves and the caller may see (Subscriptions).
func (s *Service) HasSubscription(ctx context.Context, id string) (bool, error) {
	subs, err := s.Subscriptions(ctx)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(subs, func(x string) bool { return strings.EqualFold(x, id) }), nil
}
