package controlplane

import (
	"cmp"
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/bpf"
	"github.com/tripcap/tripcap/capturefile"
)

// CreateCaptureRequest asks for a new capture session.
type CreateCaptureRequest struct {
	// ID is the capture's id, for a caller that must find the capture
	// again rather than create a second one (a responder); "" for a new one.
	ID   string
	Name string
	// Watcher optionally names the watcher; it must be the target's.
	Watcher    string
	Parameters tripcap.PacketCaptureParameters
	// Cause says why the capture exists (e.g. the alert); it goes into the pcapng comment.
	Cause string
	// AlertID is the alert a responder captures for (tripcap.PacketCapture.AlertID).
	AlertID string
	// ValidateOnly checks the request (parameters, filters, target,
	// permission) and returns nil, nil when it would be accepted, storing
	// nothing: the console's checking as the user types.
	ValidateOnly bool
}

// CreateCapture validates the request, resolves the target host, and records
// the capture; the host's agent starts it within moments.
func (s *Service) CreateCapture(ctx context.Context, req CreateCaptureRequest) (*tripcap.PacketCapture, error) {
	if _, err := tripcap.AuthorizeSome(ctx, tripcap.PermCaptureWrite); err != nil {
		return nil, err
	}
	if err := tripcap.ValidateName("name", req.Name); err != nil {
		return nil, err
	}
	p := req.Parameters
	p.ApplyDefaults()
	loc := &p.StorageLocation
	if loc.StorageID == "" && loc.FilePath == "" && loc.LocalPath == "" {
		loc.StorageID = s.cfg.DefaultStorage
	}
	var blobs tripcap.BlobStore
	if loc.StorageID != "" {
		var err error
		if blobs, err = s.blobStore(ctx, loc.StorageID); err != nil {
			return nil, err
		}
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	// Valid filters can still make a program larger than the kernel takes;
	// say so now rather than failing on the host.
	if _, err := bpf.CompileCapture(p.Filters, p.FilterExpression, bpf.LinkEthernet, 0); err != nil {
		return nil, err
	}
	if ss, err := s.scaleSetTarget(ctx, &p); err != nil {
		return nil, err
	} else if ss != nil {
		return s.createScaleSetCapture(ctx, req, p, blobs, ss)
	}
	host, err := s.resolveHost(ctx, p.Target)
	if err == nil {
		// A host the caller may not read is as unknown as one that does not exist.
		err = tripcap.AuthorizeAt(ctx, tripcap.PermCaptureWrite, host, tripcap.NoHost(p.Target))
	}
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
		return nil, tripcap.Errorf(tripcap.EINVALID, "target: %s", tripcap.ErrorMessage(err))
	} else if err != nil {
		return nil, err
	}
	if host.State != tripcap.HostOnline {
		return nil, tripcap.Errorf(tripcap.EUNAVAILABLE, "target: host %s is %s (last seen %s); its agent must be running", host.Name, host.State, host.LastSeen.UTC().Format(time.RFC3339))
	}
	if req.ValidateOnly {
		return nil, nil
	}
	w, err := s.watcherOf(ctx, host)
	if err != nil {
		return nil, err
	}
	if req.Watcher != "" && !strings.EqualFold(req.Watcher, w.Name) && req.Watcher != w.ID {
		return nil, tripcap.Errorf(tripcap.EINVALID, "target: host %s is in location %s, watched by %s, not %s", host.Name, host.Location, w.Name, req.Watcher)
	}
	if err := s.checkHostPathFree(ctx, host, p.StorageLocation); err != nil {
		return nil, err
	}
	// Azure's targets are resource ids; keep the caller's form but make it resolvable.
	if !strings.HasPrefix(p.Target, "/") {
		p.Target = host.ResourceID()
	}
	now := s.now()
	c := newCapture(req, cmp.Or(req.ID, tripcap.NewID()), w.ID, host.ID, p, now)
	if loc.StorageID != "" {
		c.StorageKey = capturefile.Key(host, now, p.Format)
		c.Parameters.StorageLocation.StoragePath = blobs.URL(c.StorageKey)
	}
	if err := s.store.CreateCapture(ctx, c); err != nil {
		return nil, err
	}
	s.log.Info("capture created", "capture", c.Name, "id", c.ID, "host", host.Name, "watcher", w.Name)
	return c, nil
}

// newCapture is a capture the request asks for, about to be stored: to
// start on its host (none for a scale-set capture).
func newCapture(req CreateCaptureRequest, id, watcherID, hostID string, p tripcap.PacketCaptureParameters, now time.Time) *tripcap.PacketCapture {
	return &tripcap.PacketCapture{
		ID:                id,
		Name:              req.Name,
		WatcherID:         watcherID,
		HostID:            hostID,
		Parameters:        p,
		ProvisioningState: tripcap.ProvisioningSucceeded,
		Desired:           tripcap.DesiredRunning,
		Status:            tripcap.StatusNotStarted,
		Cause:             req.Cause,
		AlertID:           req.AlertID,
		CreatedAt:         now,
		UpdatedAt:         now,
	}
}

// FindCaptures lists captures, optionally of one watcher or host: those of
// the hosts the caller may read.
func (s *Service) FindCaptures(ctx context.Context, watcher, host string, cursor string, limit int) ([]*tripcap.PacketCapture, string, error) {
	return s.ListCaptures(ctx, CaptureQuery{Watcher: watcher, Host: host, Cursor: cursor, Limit: limit})
}

// CaptureQuery selects captures for ListCaptures.
type CaptureQuery struct {
	// Watcher and Host (a name, id or VM resource id) narrow the listing.
	Watcher, Host string
	// ActiveOnly keeps the captures that may still run.
	ActiveOnly bool
	// NewestFirst lists the newest first.
	NewestFirst bool
	// IncludeDeleted lists deleted captures too (a replaced capture is
	// still part of the incident that caused it).
	IncludeDeleted bool
	Cursor         string
	Limit          int
}

// ListCaptures lists the captures q selects that the caller may read, by
// id (newest first when asked), and the cursor of the next page.
func (s *Service) ListCaptures(ctx context.Context, q CaptureQuery) ([]*tripcap.PacketCapture, string, error) {
	watcher, host, cursor, limit := q.Watcher, q.Host, q.Cursor, q.Limit
	f := tripcap.CaptureFilter{Cursor: cursor, Limit: limit, ActiveOnly: q.ActiveOnly, NewestFirst: q.NewestFirst, IncludeDeleted: q.IncludeDeleted}
	g := tripcap.HostGrant{}
	if host != "" {
		h, err := s.authorizedHost(ctx, tripcap.PermRead, host)
		if err != nil {
			return nil, "", err
		}
		f.HostID = &h.ID
	} else {
		var err error
		if g, err = tripcap.GrantedHosts(ctx, s.store, tripcap.PermRead); err != nil {
			return nil, "", err
		}
		// Scale-set captures, not their sessions (those are a host's).
		f.ScaleSetID = new("")
	}
	if watcher != "" {
		w, err := s.findWatcher(ctx, watcher)
		if f.HostID == nil && !g.All() && (tripcap.ErrorCode(err) == tripcap.ENOTFOUND || err == nil && !g.CoversWatcher(w, s.cfg.SubscriptionID)) {
			// One answer for a watcher unknown and one watching no host
			// in scope: no oracle of locations out of scope.
			err = tripcap.Errorf(tripcap.ENOTFOUND, "no network watcher %q watches a host you may read", watcher)
		}
		if err != nil {
			return nil, "", err
		}
		f.WatcherID = &w.ID
	}
	caps, next, err := s.findCaptures(ctx, f, g)
	if err != nil {
		return nil, "", err
	}
	for i, c := range caps {
		if caps[i], err = s.view(ctx, c); err != nil {
			return nil, "", err
		}
	}
	return caps, next, nil
}

func (s *Service) findCaptures(ctx context.Context, f tripcap.CaptureFilter, g tripcap.HostGrant) ([]*tripcap.PacketCapture, string, error) {
	if f.HostID != nil || g.All() {
		return s.store.FindCaptures(ctx, f)
	}
	if g.Empty() {
		return nil, "", nil
	}
	if id, ok := g.Only(); ok {
		// The one host's captures, the sessions it runs of scale-set
		// captures included (a caller seeing one host sees a scale-set
		// capture only as its session there).
		f.HostID, f.ScaleSetID = &id, nil
		return s.store.FindCaptures(ctx, f)
	}
	var lookupErr error
	caps, next, err := tripcap.FilterPage(f.Cursor, f.Limit,
		func(cursor string, limit int) ([]*tripcap.PacketCapture, string, error) {
			f.Cursor, f.Limit = cursor, limit
			return s.store.FindCaptures(ctx, f)
		},
		func(c *tripcap.PacketCapture) bool {
			if !c.IsScaleSet() {
				return g.Covers(c.HostID)
			}
			// A scale-set capture is seen by who sees all its sessions.
			hosts, err := s.captureHosts(ctx, c)
			lookupErr = cmp.Or(lookupErr, err)
			return err == nil && !slices.ContainsFunc(hosts, func(h *tripcap.Host) bool { return h == nil || !g.Covers(h.ID) })
		},
		func(c *tripcap.PacketCapture) string { return c.ID })
	if lookupErr != nil {
		return nil, "", lookupErr
	}
	return caps, next, err
}

// FindCapture returns a capture by id, or by name (within watcher when given;
// a name used in several watchers needs the watcher).
func (s *Service) FindCapture(ctx context.Context, watcher, ref string) (*tripcap.PacketCapture, error) {
	c, err := s.authorizedCapture(ctx, watcher, ref, tripcap.PermRead)
	if err != nil {
		return nil, err
	}
	return s.view(ctx, c)
}

// authorizedCapture resolves a capture the caller holds every one of perms
// at (at its host, or at every host of a scale-set capture's sessions). A
// capture of a host the caller may not read is not found, as if it did not
// exist (tripcap.AuthorizeAt): a name shared with such captures is not
// ambiguous to it either.
func (s *Service) authorizedCapture(ctx context.Context, watcher, ref string, perms ...tripcap.Permission) (*tripcap.PacketCapture, error) {
	var p *tripcap.Principal
	for _, perm := range perms {
		var err error
		if p, err = tripcap.AuthorizeSome(ctx, perm); err != nil {
			return nil, err
		}
	}
	c, hosts, err := s.resolveCapture(ctx, p, watcher, ref)
	if err != nil {
		return nil, err
	}
	for _, perm := range perms {
		for _, h := range hosts {
			if err := tripcap.AuthorizeAt(ctx, perm, h, noCapture(ref)); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

func noCapture(ref string) error { return tripcap.Errorf(tripcap.ENOTFOUND, "no capture %q", ref) }

// resolveCapture finds the capture ref names among those p may read, and
// the hosts it is authorized against (captureHosts). By name it finds no
// scale set's session (they share the scale-set capture's name); by id, any.
func (s *Service) resolveCapture(ctx context.Context, p *tripcap.Principal, watcher, ref string) (*tripcap.PacketCapture, []*tripcap.Host, error) {
	if ref == "" {
		return nil, nil, tripcap.Errorf(tripcap.EINVALID, "capture: required")
	}
	visible := func(c *tripcap.PacketCapture) ([]*tripcap.Host, bool, error) {
		hosts, err := s.captureHosts(ctx, c)
		return hosts, err == nil && !slices.ContainsFunc(hosts, func(h *tripcap.Host) bool { return !p.Can(tripcap.PermRead, h) }), err
	}
	f := tripcap.CaptureFilter{Name: &ref, ScaleSetID: new("")}
	if watcher != "" {
		w, err := s.findWatcher(ctx, watcher)
		if tripcap.ErrorCode(err) == tripcap.ENOTFOUND && !p.Can(tripcap.PermRead, nil) {
			// As for a watcher of no host in scope, whose captures are not found.
			return nil, nil, noCapture(ref)
		}
		if err != nil {
			return nil, nil, err
		}
		f.WatcherID = &w.ID
	} else if c, err := s.store.FindCapture(ctx, tripcap.CaptureFilter{ID: &ref}); err == nil {
		if h, ok, err := visible(c); err != nil {
			return nil, nil, err
		} else if ok {
			return c, h, nil
		}
	} else if tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		return nil, nil, err
	}
	caps, _, err := s.store.FindCaptures(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	var found *tripcap.PacketCapture
	var host []*tripcap.Host
	n := 0
	for _, c := range caps {
		h, ok, err := visible(c)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			found, host, n = c, h, n+1
		}
	}
	switch n {
	case 0:
		return nil, nil, noCapture(ref)
	case 1:
		return found, host, nil
	}
	return nil, nil, tripcap.Errorf(tripcap.ECONFLICT, "%d watchers have a capture named %q: name the watcher or use the id", n, ref)
}

// StopCapture asks the host to stop a session (ManuallyStopped). ifMatch, when
// not empty, must be the capture's current ETag.
func (s *Service) StopCapture(ctx context.Context, watcher, ref, ifMatch string) (*tripcap.PacketCapture, error) {
	c, sessions, err := s.endCapture(ctx, watcher, ref, ifMatch, false, tripcap.PermCaptureWrite)
	if err != nil || !c.IsScaleSet() {
		return c, err
	}
	return s.withSessions(ctx, c, sessions)
}

// DeleteCapture removes a capture; a running session stops (SessionDeleted).
// Its stored files are kept unless deleteFiles is set, as in Azure.
func (s *Service) DeleteCapture(ctx context.Context, watcher, ref, ifMatch string, deleteFiles bool) error {
	perms := []tripcap.Permission{tripcap.PermCaptureWrite}
	if deleteFiles {
		// Checked before the capture goes, not after.
		perms = append(perms, tripcap.PermFileDelete)
	}
	c, sessions, err := s.endCapture(ctx, watcher, ref, ifMatch, true, perms...)
	if err != nil {
		return err
	}
	if !deleteFiles {
		return nil
	}
	for _, c := range append([]*tripcap.PacketCapture{c}, sessions...) {
		if err := s.Files.DeleteFiles(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// endCapture stops or deletes a capture, and a scale-set capture's
// sessions with it (returned too).
func (s *Service) endCapture(ctx context.Context, watcher, ref, ifMatch string, deleting bool, perms ...tripcap.Permission) (*tripcap.PacketCapture, []*tripcap.PacketCapture, error) {
	c, err := s.authorizedCapture(ctx, watcher, ref, perms...)
	if err != nil {
		return nil, nil, err
	}
	if ifMatch != "" && ifMatch != "*" && ifMatch != c.ETag() {
		return nil, nil, tripcap.Errorf(tripcap.EPRECONDITION, "capture %s changed (ETag %s, If-Match %s)", c.Name, c.ETag(), ifMatch)
	}
	end := func(c *tripcap.PacketCapture) bool {
		if c.DeletedAt != nil {
			return false // a scale set's session deleted already
		}
		now := s.now()
		reason := tripcap.StopManuallyStopped
		if deleting {
			reason = tripcap.StopSessionDeleted
			c.Desired = tripcap.DesiredDeleted
			c.DeletedAt = &now
			c.ProvisioningState = tripcap.ProvisioningDeleting
		} else if c.Desired == tripcap.DesiredRunning {
			c.Desired = tripcap.DesiredStopped
		} else {
			return false
		}
		// A session the agent has not started never will: end it here.
		if c.Status == tripcap.StatusNotStarted {
			c.Status = tripcap.StatusStopped
			c.StopReason = reason
			c.CaptureStopTime = &now
		}
		return true
	}
	var out *tripcap.PacketCapture
	if err := s.updateCapture(ctx, c.ID, func(c *tripcap.PacketCapture) bool {
		out = c
		return end(c)
	}); err != nil {
		return nil, nil, err
	}
	if !out.IsScaleSet() {
		return out, nil, nil
	}
	sessions, err := s.endSessions(ctx, out, end)
	return out, sessions, err
}

// findWatcher returns the watcher ref names: its id, else its name.
func (s *Service) findWatcher(ctx context.Context, ref string) (*tripcap.NetworkWatcher, error) {
	if tripcap.IsID(ref) {
		w, err := s.store.FindWatcher(ctx, ref, "")
		if tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
			return w, err
		}
	}
	return s.store.FindWatcher(ctx, "", ref)
}

// FindCaptureByID returns a capture by id, a deleted one too (what the
// progress of a deletion reads), if the caller may read its host.
func (s *Service) FindCaptureByID(ctx context.Context, id string) (*tripcap.PacketCapture, error) {
	if !tripcap.IsID(id) {
		return nil, noCapture(id)
	}
	c, err := s.captureByID(ctx, id)
	if err != nil {
		return nil, err
	}
	hosts, err := s.captureHosts(ctx, c)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		if err := tripcap.AuthorizeAt(ctx, tripcap.PermRead, h, noCapture(id)); err != nil {
			return nil, err
		}
	}
	return s.view(ctx, c)
}

// captureByID returns a capture by id, deleted ones too.
func (s *Service) captureByID(ctx context.Context, id string) (*tripcap.PacketCapture, error) {
	return s.store.FindCapture(ctx, tripcap.CaptureFilter{ID: &id, IncludeDeleted: true})
}

// hostPath is the file a capture names on its host (localPath, else
// filePath), cleaned; "" when the agent chooses it.
func hostPath(loc tripcap.StorageLocation) string {
	if p := cmp.Or(loc.LocalPath, loc.FilePath); p != "" {
		return path.Clean(p)
	}
	return ""
}

// checkHostPathFree refuses a capture whose file on the host is the file of
// another capture whose session may still run there: both would write one
// file and both report success. (The agent refuses it too, and a file that
// exists already.) A deleted capture counts until its agent reports the
// session ended: until then the old session holds the file, and the new one
// would be accepted only to fail on the host (LocalFileFailed).
func (s *Service) checkHostPathFree(ctx context.Context, host *tripcap.Host, loc tripcap.StorageLocation) error {
	want := hostPath(loc)
	if want == "" {
		return nil
	}
	caps, _, err := s.store.FindCaptures(ctx, tripcap.CaptureFilter{HostID: &host.ID, ActiveOnly: true, IncludeDeleted: true})
	if err != nil {
		return fmt.Errorf("captures of %s: %w", host.Name, err)
	}
	for _, c := range caps {
		if hostPath(c.Parameters.StorageLocation) == want {
			field := "storageLocation.localPath"
			if loc.LocalPath == "" {
				field = "storageLocation.filePath"
			}
			if c.DeletedAt != nil {
				return tripcap.Errorf(tripcap.ECONFLICT, "%s: %s on %s is the file of capture %s, deleted but its session on the host has not ended yet; retry once it has, or give this capture its own file", field, want, host.Name, c.Name)
			}
			return tripcap.Errorf(tripcap.ECONFLICT, "%s: %s on %s is the file of capture %s, still running; give this capture its own file", field, want, host.Name, c.Name)
		}
	}
	return nil
}
