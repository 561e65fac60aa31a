package controlplane

import (
	"context"
	"fmt"
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

// PutWatcher creates the watcher w names (subscription, group, name) or,
// when it exists, replaces its tags (its location cannot change); created
// says which. A subscription has one watcher per location (ECONFLICT).
func (s *Service) PutWatcher(ctx context.Context, w tripcap.NetworkWatcher) (_ *tripcap.NetworkWatcher, created bool, err error) {
	if err := tripcap.Authorize(ctx, tripcap.PermHostsWrite, nil); err != nil {
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
// captures on record stays (ECONFLICT).
func (s *Service) DeleteWatcher(ctx context.Context, subscription, group, name string) error {
	if err := tripcap.Authorize(ctx, tripcap.PermHostsWrite, nil); err != nil {
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

// HasSubscription reports whether a subscription id is one this control
// plane serves: its own (Config.SubscriptionID), a host's or a watcher's.
func (s *Service) HasSubscription(ctx context.Context, id string) (bool, error) {
	if strings.EqualFold(id, s.cfg.SubscriptionID) {
		return true, nil
	}
	ws, err := s.store.FindWatchers(ctx)
	if err != nil {
		return false, fmt.Errorf("find subscriptions: %w", err)
	}
	for _, w := range ws {
		if strings.EqualFold(w.SubscriptionID, id) {
			return true, nil
		}
	}
	return false, nil
}
