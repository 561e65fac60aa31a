package controlplane

import (
	"cmp"
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

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
// again under the same name (a reinstalled agent) keeps its record and
// history and its old credentials are revoked — which hands the host, and
// its captures, to the caller. So enrolling under an enrolled host's name
// takes a join token bound to that host (`tripcap host join-token create
// --host NAME`), or else an admin's approval: the enrollment is recorded
// as pending, refused with ECONFLICT saying so and a ticket
// (EnrollmentHeldError), and the agent's next try after the approval with
// the same token, from the same address and with that ticket, enrolls. A
// bound token enrolls its host's name only.
func (s *Service) Enroll(ctx context.Context, req tripcap.EnrollRequest) (*tripcap.EnrollResponse, error) {
	if err := tripcap.ValidateHostName("name", req.Name); err != nil {
		return nil, err
	}
	if req.Location == "" {
		req.Location = s.cfg.DefaultLocation
	}
	if err := tripcap.ValidateName("location", req.Location); err != nil {
		return nil, err
	}
	for k, v := range req.Labels {
		if k == "" || len(k) > 63 || len(v) > 253 {
			return nil, tripcap.Errorf(tripcap.EINVALID, "labels: %q=%q: keys are 1 to 63 characters, values at most 253", k, v)
		}
	}
	// The labels place the host in Azure's ids (controlplane.Config's
	// defaults otherwise): a malformed one would make it unreachable.
	if v := req.Labels[tripcap.LabelSubscription]; v != "" {
		if err := tripcap.ValidateSubscriptionID("labels."+tripcap.LabelSubscription, v); err != nil {
			return nil, err
		}
	}
	if v := req.Labels[tripcap.LabelResourceGroup]; v != "" {
		if err := tripcap.ValidateResourceGroupName("labels."+tripcap.LabelResourceGroup, v); err != nil {
			return nil, err
		}
	}
	if v, ok := req.Labels[tripcap.LabelScaleSet]; ok {
		// It names a resource: the scale set's id is made of it.
		if err := tripcap.ValidateName("labels."+tripcap.LabelScaleSet, v); err != nil {
			return nil, err
		}
	}
	// The fingerprint part, if sent, is the agent's business: the secret
	// alone is what was hashed and stored.
	joinSecret, _, perr := tripcap.ParseJoinToken(req.JoinToken)
	if perr != nil {
		joinSecret = req.JoinToken // matches no stored token: refused below like any unknown one
	}
	hash := tripcap.HashSecret(joinSecret)
	tok, err := s.store.FindJoinTokenByHash(ctx, hash, s.now())
	if tripcap.ErrorCode(err) == tripcap.EUNAUTHORIZED {
		return nil, errJoinToken
	} else if err != nil {
		return nil, fmt.Errorf("find join token: %w", err)
	}
	log := s.log.With("host", req.Name, "token", tok.ID, "remote", req.Remote)
	if tok.HostName != "" && !strings.EqualFold(tok.HostName, req.Name) {
		log.Warn("enrollment refused: the join token is bound to another host", "tokenHost", tok.HostName)
		return nil, tripcap.Errorf(tripcap.EFORBIDDEN, "joinToken: bound to host %s, it cannot enroll %s; enroll as %s, or ask an admin for a token for %s (`tripcap host join-token create --host %s`)",
			tok.HostName, req.Name, tok.HostName, req.Name, req.Name)
	}
	host, err := s.store.FindHost(ctx, tripcap.HostFilter{Name: &req.Name})
	if err != nil && tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		return nil, fmt.Errorf("find host %s: %w", req.Name, err)
	}
	var approval *tripcap.PendingEnrollment
	if host != nil && tok.HostName == "" {
		if approval, err = s.approvedTakeover(ctx, log, host, tok, req); err != nil {
			return nil, err
		}
	}
	if _, err := s.store.ConsumeJoinToken(ctx, hash, s.now()); err != nil {
		if tripcap.ErrorCode(err) == tripcap.EUNAUTHORIZED {
			return nil, errJoinToken
		}
		return nil, fmt.Errorf("consume join token: %w", err)
	}
	now := s.now()
	if host != nil {
		if err := s.store.DeleteCredentialsOfHost(ctx, host.ID); err != nil {
			return nil, fmt.Errorf("revoke old credentials of %s: %w", host.Name, err)
		}
		s.principals.revokeHost(host.ID)
		if err := s.store.UpdateHostInventory(ctx, host.ID, req.Inventory, now); err != nil {
			return nil, fmt.Errorf("update host %s: %w", host.Name, err)
		}
		host.Inventory, host.State, host.LastSeen = req.Inventory, tripcap.HostOnline, now
		if approval != nil {
			if err := s.store.DeletePendingEnrollment(ctx, approval.ID); err != nil && tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
				log.Error("forgetting a used enrollment approval", "pending", approval.ID, "err", err)
			}
			log.Warn("host re-enrolled with an admin's approval; the previous agent's credentials are revoked", "id", host.ID, "approvedBy", approval.ApprovedBy, "pending", approval.ID)
		} else {
			log.Warn("host re-enrolled with a join token bound to it; the previous agent's credentials are revoked", "id", host.ID)
		}
	} else {
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
		if err := s.store.CreateHost(ctx, host); tripcap.ErrorCode(err) == tripcap.ECONFLICT {
			// The name differs in case only from an enrolled host's (names
			// are unique regardless of case), or another agent enrolled it
			// a moment ago: not a takeover, and not one to wait for.
			log.Warn("enrollment refused: the name is taken", "err", err)
			return nil, tripcap.Errorf(tripcap.EINVALID, "name: a host named %s (in some case) is enrolled already; enroll under its exact name, which needs an admin's approval, or under another name", req.Name)
		} else if err != nil {
			return nil, fmt.Errorf("create host %s: %w", req.Name, err)
		}
	}
	secret := tripcap.NewSecret(tripcap.SecretPrefixAgent)
	cred := &tripcap.Credential{ID: tripcap.NewID(), Name: "agent " + host.Name, Role: tripcap.RoleAgent, HostID: host.ID, Hash: tripcap.HashSecret(secret), CreatedAt: now}
	if err := s.store.CreateCredential(ctx, cred); err != nil {
		return nil, fmt.Errorf("create agent credential: %w", err)
	}
	if _, err := s.watcherOf(ctx, host); err != nil {
		return nil, err
	}
	log.Info("host enrolled", "id", host.ID, "location", host.Location, "agentProtocol", tripcap.AgentProtocolFromContext(ctx))
	return &tripcap.EnrollResponse{Host: host, Credential: secret, HeartbeatSeconds: s.cfg.HeartbeatInterval.Seconds()}, nil
}

var errJoinToken = tripcap.Errorf(tripcap.EUNAUTHORIZED, "joinToken: unknown, expired or used up; create one with `tripcap host join-token create`")

// approvedTakeover returns the admin's approval of enrolling under the name
// of host, enrolled already, with an unbound token; without one it records
// the enrollment as pending and refuses it with a ticket. The approval is
// the ticket holder's alone: another agent with the same token and address
// has no ticket or another one.
func (s *Service) approvedTakeover(ctx context.Context, log *slog.Logger, host *tripcap.Host, tok *tripcap.JoinToken, req tripcap.EnrollRequest) (*tripcap.PendingEnrollment, error) {
	pending, err := s.store.FindPendingEnrollments(ctx, host.Name, s.now())
	if err != nil {
		return nil, fmt.Errorf("find pending enrollments of %s: %w", host.Name, err)
	}
	refusal := tripcap.Errorf(tripcap.ECONFLICT, "host %s is enrolled already: enrolling again would revoke its agent, so it awaits an admin's approval (`tripcap host approve %s`), after which this agent's next try enrolls; "+
		"or enroll with a join token bound to the host (`tripcap host join-token create --host %s`), or under another --name", host.Name, host.Name, host.Name)
	var p *tripcap.PendingEnrollment
	if req.Ticket != "" {
		hash := tripcap.HashSecret(req.Ticket)
		for _, e := range pending {
			if e.JoinTokenID == tok.ID && e.Remote == req.Remote && subtle.ConstantTimeCompare([]byte(e.TicketHash), []byte(hash)) == 1 {
				p = e
			}
		}
	}
	if p != nil && p.ApprovedAt != nil {
		return p, nil
	}
	if p != nil {
		return nil, &tripcap.EnrollmentHeldError{Ticket: req.Ticket, Err: refusal}
	}
	// A new request. The cap counts per token and address, so that asking
	// from many addresses cannot crowd out the real agent's request, and
	// one address asking again and again keeps a few.
	fromHere := 0
	for _, e := range pending {
		if e.JoinTokenID == tok.ID && e.Remote == req.Remote {
			fromHere++
		}
	}
	if fromHere >= maxPendingPerSource {
		log.Warn("enrollment under an enrolled host's name refused, not recorded: this token and address have requests waiting already", "id", host.ID, "pending", fromHere)
		return nil, refusal
	}
	if len(pending) >= maxPendingPerHost {
		// The oldest request not approved goes (an admin can approve
		// the real one once it asks again); approved ones stay.
		var oldest *tripcap.PendingEnrollment
		for _, e := range pending {
			if e.ApprovedAt == nil && (oldest == nil || e.CreatedAt.Before(oldest.CreatedAt)) {
				oldest = e
			}
		}
		if oldest == nil {
			log.Warn("enrollment under an enrolled host's name refused, not recorded: every waiting request is approved", "id", host.ID, "pending", len(pending))
			return nil, refusal
		}
		if err := s.store.DeletePendingEnrollment(ctx, oldest.ID); err != nil && tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
			return nil, fmt.Errorf("evict pending enrollment of %s: %w", host.Name, err)
		}
		log.Warn("pending enrollment evicted by a newer one: too many wait under this name", "id", host.ID, "evicted", oldest.ID, "evictedRemote", oldest.Remote)
	}
	ticket := tripcap.NewSecret(tripcap.SecretPrefixEnrollment)
	p = &tripcap.PendingEnrollment{ID: tripcap.NewID(), HostName: host.Name, JoinTokenID: tok.ID, Remote: req.Remote,
		Hostname: clip(req.Inventory.Hostname, 253), TicketHash: tripcap.HashSecret(ticket), CreatedAt: s.now()}
	if err := s.store.CreatePendingEnrollment(ctx, p); err != nil {
		return nil, fmt.Errorf("record pending enrollment of %s: %w", host.Name, err)
	}
	log.Warn("enrollment under an enrolled host's name refused: it would revoke the host's agent; it awaits an admin's approval", "id", host.ID, "pending", p.ID, "hostname", p.Hostname)
	return nil, &tripcap.EnrollmentHeldError{Ticket: ticket, Err: refusal}
}

// maxPendingPerHost bounds the enrollments waiting under one host's name;
// maxPendingPerSource those among them of one token and address.
const (
	maxPendingPerHost   = 10
	maxPendingPerSource = 3
)

// clip keeps at most n bytes of s.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ApproveEnrollment approves a pending enrollment under the name of host
// (id selects one when several wait; "" takes the only one). Only the agent
// that holds the request's ticket can use it.
func (s *Service) ApproveEnrollment(ctx context.Context, hostRef, id string) (*tripcap.PendingEnrollment, error) {
	h, err := s.authorizedHost(ctx, tripcap.PermHostsWrite, hostRef)
	if err != nil {
		return nil, err
	}
	pending, err := s.store.FindPendingEnrollments(ctx, h.Name, s.now())
	if err != nil {
		return nil, fmt.Errorf("find pending enrollments of %s: %w", h.Name, err)
	}
	var p *tripcap.PendingEnrollment
	switch {
	case id != "":
		for _, e := range pending {
			if e.ID == id {
				p = e
			}
		}
		if p == nil {
			return nil, tripcap.Errorf(tripcap.ENOTFOUND, "id: no enrollment %s of host %s awaits approval", id, h.Name)
		}
	case len(pending) == 0:
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no enrollment of host %s awaits approval", h.Name)
	case len(pending) > 1:
		ids := make([]string, len(pending))
		for i, e := range pending {
			ids[i] = e.ID + " (from " + e.Remote + ")"
		}
		return nil, tripcap.Errorf(tripcap.EINVALID, "id: %d enrollments of host %s await approval; give the id of one: %s", len(pending), h.Name, strings.Join(ids, ", "))
	default:
		p = pending[0]
	}
	by := "admin"
	if pr := tripcap.PrincipalFromContext(ctx); pr != nil && pr.Name != "" {
		by = pr.Name
	}
	now := s.now()
	if err := s.store.ApprovePendingEnrollment(ctx, p.ID, by, now); err != nil {
		return nil, err
	}
	p.ApprovedAt, p.ApprovedBy = &now, by
	s.log.Warn("enrollment under an enrolled host's name approved: the host's agent is revoked when it enrolls", "host", h.Name, "pending", p.ID, "token", p.JoinTokenID, "remote", p.Remote, "approvedBy", by)
	return p, nil
}

// DeletePendingEnrollment refuses a pending enrollment: it is forgotten,
// and the agent that asked is asked for approval anew if it tries again.
// Like listing them, it needs hosts/write at "*".
func (s *Service) DeletePendingEnrollment(ctx context.Context, id string) error {
	if err := tripcap.Authorize(ctx, tripcap.PermHostsWrite, nil); err != nil {
		return err
	}
	if err := s.store.DeletePendingEnrollment(ctx, id); err != nil {
		return err
	}
	by := ""
	if pr := tripcap.PrincipalFromContext(ctx); pr != nil {
		by = pr.Name
	}
	s.log.Warn("pending enrollment deleted", "pending", id, "by", by)
	return nil
}

// FindPendingEnrollments lists the enrollments waiting for approval. They
// name hosts not yet enrolled too, so listing them needs hosts/write at "*".
func (s *Service) FindPendingEnrollments(ctx context.Context) ([]*tripcap.PendingEnrollment, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermHostsWrite, nil); err != nil {
		return nil, err
	}
	return s.store.FindPendingEnrollments(ctx, "", s.now())
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

// CountHosts counts the hosts f selects that the caller may read.
func (s *Service) CountHosts(ctx context.Context, f tripcap.HostFilter) (int, error) {
	p, err := tripcap.AuthorizeSome(ctx, tripcap.PermRead)
	if err != nil {
		return 0, err
	}
	if p.Can(tripcap.PermRead, nil) {
		return s.store.CountHosts(ctx, f)
	}
	// A grant narrower than "*" is checked host by host.
	n := 0
	for f.Cursor = ""; ; {
		f.Limit = 1000
		hs, next, err := s.store.FindHosts(ctx, f)
		if err != nil {
			return 0, err
		}
		for _, h := range hs {
			if p.Can(tripcap.PermRead, h) {
				n++
			}
		}
		if next == "" {
			return n, nil
		}
		f.Cursor = next
	}
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
// of hosts the caller may read (a watcher watches one subscription and location), and those
// of the subscriptions and resource groups it may read (Azure's scopes).
func (s *Service) FindWatchers(ctx context.Context) ([]*tripcap.NetworkWatcher, error) {
	g, err := tripcap.GrantedHosts(ctx, s.store, tripcap.PermRead)
	if err != nil {
		return nil, err
	}
	ws, err := s.store.FindWatchers(ctx)
	if err != nil || g.All() {
		return ws, err
	}
	p := tripcap.PrincipalFromContext(ctx)
	return slices.DeleteFunc(ws, func(w *tripcap.NetworkWatcher) bool {
		return !g.CoversWatcher(w, s.cfg.SubscriptionID) && !p.CanInGroup(tripcap.PermRead, w.SubscriptionID, w.ResourceGroup)
	}), nil
}

// watcherOf returns the watcher of the host's subscription and location,
// made if need be.
func (s *Service) watcherOf(ctx context.Context, h *tripcap.Host) (*tripcap.NetworkWatcher, error) {
	w, err := s.store.EnsureWatcher(ctx, cmp.Or(h.SubscriptionID, s.cfg.SubscriptionID), h.Location, s.cfg.MaxCapturesPerWatcher)
	if err != nil {
		return nil, fmt.Errorf("ensure watcher of %s in %s: %w", h.Name, h.Location, err)
	}
	return w, nil
}

// SetWatcherLimit changes the parallel-capture limit of the watcher ref
// names (its id, or its name when no other subscription's watcher has it).
func (s *Service) SetWatcherLimit(ctx context.Context, name string, limit int) (*tripcap.NetworkWatcher, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermHostsWrite, nil); err != nil {
		return nil, err
	}
	if limit < 1 || limit > 1000000 {
		return nil, tripcap.Errorf(tripcap.EINVALID, "maxCaptures: %d is outside 1..1000000", limit)
	}
	w, err := s.findWatcher(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := s.store.SetWatcherLimit(ctx, w.ID, limit); err != nil {
		return nil, fmt.Errorf("set limit of %s: %w", name, err)
	}
	w.MaxCaptures = limit
	return w, nil
}
