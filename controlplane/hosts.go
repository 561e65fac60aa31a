package controlplane

import (
	"context"
	"crypto/subtle"
	"fmt"
	"maps"
	"slices"

	"github.com/tripcap/tripcap"
)

// CheckJoinToken says whether token (as an agent sends it, with or without
// the CA fingerprint) is a usable join token, without using it up, so that
// an enrollment without one is refused before its body is read.
func (s *Service) CheckJoinToken(ctx context.Context, token string) error {
	if token == "" {
		return tripcap.Errorf(tripcap.EUNAUTHORIZED, "a join token is required as the bearer credential")
	}
	secret, _, err := tripcap.ParseJoinToken(token)
	if err != nil {
		secret = token
	}
	hash := tripcap.HashSecret(secret)
	ts, err := s.store.FindJoinTokens(ctx, s.now())
	if err != nil {
		return fmt.Errorf("check join token: %w", err)
	}
	for _, t := range ts {
		if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hash)) == 1 {
			return nil
		}
	}
	return tripcap.Errorf(tripcap.EUNAUTHORIZED, "joinToken: unknown, expired or used up; create one with `tripcap host join-token create`")
}

// Enroll trades a join token for an agent credential. A host that enrolls
// again under the same name (a reinstalled agent) keeps its record and history;
// its old credentials are revoked.
func (s *Service) Enroll(ctx context.Context, req tripcap.EnrollRequest) (*tripcap.EnrollResponse, error) {
	if err := tripcap.ValidateHostName("name", req.Name); err != nil {
		return nil, err
	}
	if req.Location == "" {
		req.Location = s.cfg.DefaultLocation
	}
	if err := tripcap.ValidateHostName("location", req.Location); err != nil {
		return nil, err
	}
	for k, v := range req.Labels {
		if k == "" || len(k) > 63 || len(v) > 253 {
			return nil, tripcap.Errorf(tripcap.EINVALID, "labels: %q=%q: keys are 1 to 63 characters, values at most 253", k, v)
		}
	}
	// The fingerprint part, if sent, is the agent's business: the secret
	// alone is what was hashed and stored.
	joinSecret, _, perr := tripcap.ParseJoinToken(req.JoinToken)
	if perr != nil {
		joinSecret = req.JoinToken // matches no stored token: refused below like any unknown one
	}
	if _, err := s.store.ConsumeJoinToken(ctx, tripcap.HashSecret(joinSecret), s.now()); err != nil {
		if tripcap.ErrorCode(err) == tripcap.EUNAUTHORIZED {
			return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "joinToken: unknown, expired or used up; create one with `tripcap host join-token create`")
		}
		return nil, fmt.Errorf("consume join token: %w", err)
	}
	now := s.now()
	host, err := s.store.FindHost(ctx, tripcap.HostFilter{Name: &req.Name})
	switch tripcap.ErrorCode(err) {
	case "":
		if err := s.store.DeleteCredentialsOfHost(ctx, host.ID); err != nil {
			return nil, fmt.Errorf("revoke old credentials of %s: %w", host.Name, err)
		}
		s.principals.revokeHost(host.ID)
		if err := s.store.UpdateHostInventory(ctx, host.ID, req.Inventory, now); err != nil {
			return nil, fmt.Errorf("update host %s: %w", host.Name, err)
		}
		host.Inventory, host.State, host.LastSeen = req.Inventory, tripcap.HostOnline, now
	case tripcap.ENOTFOUND:
		host = &tripcap.Host{
			ID:             tripcap.NewID(),
			Name:           req.Name,
			Location:       req.Location,
			Labels:         maps.Clone(req.Labels),
			SubscriptionID: labelOr(req.Labels, tripcap.LabelSubscription, s.cfg.SubscriptionID),
			ResourceGroup:  labelOr(req.Labels, tripcap.LabelResourceGroup, s.cfg.ResourceGroup),
			Inventory:      req.Inventory,
			State:          tripcap.HostOnline,
			LastSeen:       now,
			CreatedAt:      now,
			UpdatedAt:      now,
		}
		if err := s.store.CreateHost(ctx, host); err != nil {
			return nil, fmt.Errorf("create host %s: %w", req.Name, err)
		}
	default:
		return nil, fmt.Errorf("find host %s: %w", req.Name, err)
	}
	secret := tripcap.NewSecret(tripcap.SecretPrefixAgent)
	cred := &tripcap.Credential{ID: tripcap.NewID(), Name: "agent " + host.Name, Role: tripcap.RoleAgent, HostID: host.ID, Hash: tripcap.HashSecret(secret), CreatedAt: now}
	if err := s.store.CreateCredential(ctx, cred); err != nil {
		return nil, fmt.Errorf("create agent credential: %w", err)
	}
	if _, err := s.store.EnsureWatcher(ctx, host.Location, s.cfg.MaxCapturesPerWatcher); err != nil {
		return nil, fmt.Errorf("ensure watcher for %s: %w", host.Location, err)
	}
	s.log.Info("host enrolled", "host", host.Name, "id", host.ID, "location", host.Location, "agentProtocol", tripcap.AgentProtocolFromContext(ctx))
	return &tripcap.EnrollResponse{Host: host, Credential: secret, HeartbeatSeconds: s.cfg.HeartbeatInterval.Seconds()}, nil
}

func labelOr(labels map[string]string, key, def string) string {
	if v := labels[key]; v != "" {
		return v
	}
	return def
}

// Heartbeat records that the calling agent is alive, and its inventory when
// sent, and tells the agent how often to heartbeat.
func (s *Service) Heartbeat(ctx context.Context, hb tripcap.Heartbeat) (*tripcap.HeartbeatResponse, error) {
	hostID, err := requireAgent(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	s.counters.Heartbeats.Add(1)
	if hb.Inventory != nil {
		if err := s.store.UpdateHostInventory(ctx, hostID, *hb.Inventory, now); err != nil {
			return nil, err
		}
	} else {
		s.heartbeats.add(hostID, now)
	}
	resp := &tripcap.HeartbeatResponse{HeartbeatSeconds: s.cfg.HeartbeatInterval.Seconds()}
	if tripcap.AgentProtocolFromContext(ctx) < 1 {
		// An agent from before versions learns only this way that its open
		// poll counts (Assignments), and would heartbeat every interval.
		resp.OpenPollIsHeartbeat = true
	}
	return resp, nil
}

// FindHosts lists the hosts the caller may read.
func (s *Service) FindHosts(ctx context.Context, f tripcap.HostFilter) ([]*tripcap.Host, string, error) {
	p, err := tripcap.AuthorizeSome(ctx, tripcap.PermRead)
	if err != nil {
		return nil, "", err
	}
	if p.Can(tripcap.PermRead, nil) {
		return s.store.FindHosts(ctx, f)
	}
	return tripcap.FilterPage(f.Cursor, f.Limit,
		func(cursor string, limit int) ([]*tripcap.Host, string, error) {
			f.Cursor, f.Limit = cursor, limit
			return s.store.FindHosts(ctx, f)
		},
		func(h *tripcap.Host) bool { return p.Can(tripcap.PermRead, h) },
		func(h *tripcap.Host) string { return h.ID })
}

// FindHost returns a host by id, name or Azure VM resource id.
func (s *Service) FindHost(ctx context.Context, ref string) (*tripcap.Host, error) {
	return s.authorizedHost(ctx, tripcap.PermRead, ref)
}

// authorizedHost resolves a host the caller holds perm at; one it may not
// read is not found (tripcap.AuthorizeAt).
func (s *Service) authorizedHost(ctx context.Context, perm tripcap.Permission, ref string) (*tripcap.Host, error) {
	if _, err := tripcap.AuthorizeSome(ctx, perm); err != nil {
		return nil, err
	}
	h, err := s.resolveHost(ctx, ref)
	if err != nil {
		return nil, err
	}
	if err := tripcap.AuthorizeAt(ctx, perm, h, tripcap.NoHost(ref)); err != nil {
		return nil, err
	}
	return h, nil
}

func (s *Service) resolveHost(ctx context.Context, ref string) (*tripcap.Host, error) {
	return tripcap.FindHostByRef(ctx, s.store, ref)
}

// DeleteHost forgets a host and revokes its agent's credentials; its captures
// and their files remain.
func (s *Service) DeleteHost(ctx context.Context, ref string) error {
	h, err := s.authorizedHost(ctx, tripcap.PermHostsWrite, ref)
	if err != nil {
		return err
	}
	if err := s.store.DeleteCredentialsOfHost(ctx, h.ID); err != nil {
		return fmt.Errorf("revoke credentials of %s: %w", h.Name, err)
	}
	s.principals.revokeHost(h.ID)
	return s.store.DeleteHost(ctx, h.ID)
}

// FindWatchers lists network watchers: below "*", those of the locations
// of hosts the caller may read (a watcher watches one location).
func (s *Service) FindWatchers(ctx context.Context) ([]*tripcap.NetworkWatcher, error) {
	g, err := tripcap.GrantedHosts(ctx, s.store, tripcap.PermRead)
	if err != nil {
		return nil, err
	}
	ws, err := s.store.FindWatchers(ctx)
	if err != nil || g.All() {
		return ws, err
	}
	return slices.DeleteFunc(ws, func(w *tripcap.NetworkWatcher) bool { return !g.CoversLocation(w.Location) }), nil
}

// SetWatcherLimit changes a watcher's parallel-capture limit.
func (s *Service) SetWatcherLimit(ctx context.Context, name string, limit int) (*tripcap.NetworkWatcher, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermHostsWrite, nil); err != nil {
		return nil, err
	}
	if limit < 1 || limit > 1000000 {
		return nil, tripcap.Errorf(tripcap.EINVALID, "maxCaptures: %d is outside 1..1000000", limit)
	}
	w, err := s.store.FindWatcher(ctx, "", name)
	if err != nil {
		return nil, err
	}
	if err := s.store.SetWatcherLimit(ctx, w.ID, limit); err != nil {
		return nil, fmt.Errorf("set limit of %s: %w", name, err)
	}
	w.MaxCaptures = limit
	return w, nil
}
