package tripcap

import (
	"context"
	"strings"
)

// HostLister lists and finds hosts; every Store implements it.
type HostLister interface {
	HostFinder
	FindHosts(ctx context.Context, f HostFilter) ([]*Host, string, error)
}

// AuthorizeAt refuses the caller unless it holds perm at a scope covering h
// (nil h: a host since deleted, or none, which needs perm at "*"). A caller
// that may not even read h gets notFound, the answer it would get if h did
// not exist, so that a refusal tells nothing of what exists outside its
// scope; one that sees h but may not do perm there gets EFORBIDDEN.
func AuthorizeAt(ctx context.Context, perm Permission, h *Host, notFound error) error {
	p, err := AuthorizeSome(ctx, perm)
	if err != nil {
		return err
	}
	if p.Can(perm, h) {
		return nil
	}
	if !p.Can(PermRead, h) {
		return notFound
	}
	return Authorize(ctx, perm, h)
}

// HostGrant is the hosts a caller holds a permission at, to filter a
// listing of host-bound resources by host id.
type HostGrant struct {
	// all: the permission is held at "*", which covers resources of hosts
	// since deleted too.
	all   bool
	hosts map[string]*Host
}

// GrantedHosts returns the hosts the caller holds perm at; it refuses a
// caller holding perm nowhere (AuthorizeSome). Below "*" it reads every
// host once: scopes select hosts by labels, location and ARM names, which
// only the host record has.
func GrantedHosts(ctx context.Context, hosts HostLister, perm Permission) (HostGrant, error) {
	p, err := AuthorizeSome(ctx, perm)
	if err != nil {
		return HostGrant{}, err
	}
	if p.Can(perm, nil) {
		return HostGrant{all: true}, nil
	}
	all, _, err := hosts.FindHosts(ctx, HostFilter{})
	if err != nil {
		return HostGrant{}, err
	}
	g := HostGrant{hosts: map[string]*Host{}}
	for _, h := range all {
		if p.Can(perm, h) {
			g.hosts[h.ID] = h
		}
	}
	return g, nil
}

// All reports whether the grant is at "*": a listing needs no filter.
func (g HostGrant) All() bool { return g.all }

// Covers reports whether the grant covers the host with this id.
func (g HostGrant) Covers(hostID string) bool {
	_, ok := g.hosts[hostID]
	return g.all || ok
}

// Empty reports whether the grant covers no host at all.
func (g HostGrant) Empty() bool { return !g.all && len(g.hosts) == 0 }

// Only returns the one host id a grant covers, when it covers exactly one:
// a listing then asks the store for that host's rows alone.
func (g HostGrant) Only() (string, bool) {
	if g.all || len(g.hosts) != 1 {
		return "", false
	}
	for id := range g.hosts {
		return id, true
	}
	return "", false
}

// CoversSubscription reports whether the grant covers a host of the
// subscription.
func (g HostGrant) CoversSubscription(sub string) bool {
	return g.coversSome(func(h *Host) bool { return strings.EqualFold(h.SubscriptionID, sub) })
}

// coversSome reports whether the grant covers a host that match selects.
func (g HostGrant) coversSome(match func(*Host) bool) bool {
	if g.all {
		return true
	}
	for _, h := range g.hosts {
		if match(h) {
			return true
		}
	}
	return false
}

// FilterPage is the page of a listing ordered by id (cursors are "after
// this id") that keep selects: it fetches the store's pages until limit
// rows pass keep or the listing ends, so that rows the caller may not see
// never end a listing early; the next cursor is the last row's id, given
// only when another row passes. limit 0 lists every row.
func FilterPage[T any](cursor string, limit int, fetch func(cursor string, limit int) ([]T, string, error), keep func(T) bool, id func(T) string) ([]T, string, error) {
	if limit <= 0 {
		rows, _, err := fetch(cursor, 0)
		if err != nil {
			return nil, "", err
		}
		var out []T
		for _, r := range rows {
			if keep(r) {
				out = append(out, r)
			}
		}
		return out, "", nil
	}
	// A batch larger than the page: a narrow grant skips many rows.
	batch := max(limit, 100)
	var out []T
	for {
		rows, next, err := fetch(cursor, batch)
		if err != nil {
			return nil, "", err
		}
		for _, r := range rows {
			if !keep(r) {
				continue
			}
			if len(out) == limit {
				return out, id(out[limit-1]), nil
			}
			out = append(out, r)
		}
		if next == "" {
			return out, "", nil
		}
		cursor = next
	}
}

// HostOf returns the host with this id, nil when it was deleted: what a
// host-bound resource outliving its host is authorized against.
func HostOf(ctx context.Context, hosts HostFinder, id string) (*Host, error) {
	h, err := hosts.FindHost(ctx, HostFilter{ID: &id})
	if ErrorCode(err) == ENOTFOUND {
		return nil, nil
	}
	return h, err
}

// CoversWatcher reports whether the grant covers a host the watcher
// watches: one of its subscription and location (a host without a
// subscription is in defaultSubscription, as its watcher is; a watcher
// without one, from before subscriptions, watches its location's hosts).
// Location alone would show one subscription's watchers to a reader of
// another's hosts.
func (g HostGrant) CoversWatcher(w *NetworkWatcher, defaultSubscription string) bool {
	return g.coversSome(func(h *Host) bool {
		sub := h.SubscriptionID
		if sub == "" {
			sub = defaultSubscription
		}
		return strings.EqualFold(h.Location, w.Location) && (w.SubscriptionID == "" || strings.EqualFold(sub, w.SubscriptionID))
	})
}
