package controlplane

import (
	"cmp"
	"context"
	"fmt"
	"path"
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
}

// CreateCapture validates the request, resolves the target host, and records
// the capture; the host's agent starts it within moments.
func (s *Service) CreateCapture(ctx context.Context, req CreateCaptureRequest) (*tripcap.PacketCapture, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	if err := tripcap.ValidateHostName("name", req.Name); err != nil {
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
	host, err := s.resolveHost(ctx, p.Target)
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
		return nil, tripcap.Errorf(tripcap.EINVALID, "target: %s", tripcap.ErrorMessage(err))
	} else if err != nil {
		return nil, err
	}
	if host.State != tripcap.HostOnline {
		return nil, tripcap.Errorf(tripcap.EUNAVAILABLE, "target: host %s is %s (last seen %s); its agent must be running", host.Name, host.State, host.LastSeen.UTC().Format(time.RFC3339))
	}
	w, err := s.store.EnsureWatcher(ctx, host.Location, s.cfg.MaxCapturesPerWatcher)
	if err != nil {
		return nil, fmt.Errorf("ensure watcher for %s: %w", host.Location, err)
	}
	if req.Watcher != "" && !strings.EqualFold(req.Watcher, w.Name) {
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
	c := &tripcap.PacketCapture{
		ID:                cmp.Or(req.ID, tripcap.NewID()),
		Name:              req.Name,
		WatcherID:         w.ID,
		HostID:            host.ID,
		Parameters:        p,
		ProvisioningState: tripcap.ProvisioningSucceeded,
		Desired:           tripcap.DesiredRunning,
		Status:            tripcap.StatusNotStarted,
		Cause:             req.Cause,
		AlertID:           req.AlertID,
		CreatedAt:         now,
		UpdatedAt:         now,
	}
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

// FindCaptures lists captures, optionally of one watcher or host.
func (s *Service) FindCaptures(ctx context.Context, watcher, host string, cursor string, limit int) ([]*tripcap.PacketCapture, string, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, "", err
	}
	f := tripcap.CaptureFilter{Cursor: cursor, Limit: limit}
	if watcher != "" {
		w, err := s.store.FindWatcher(ctx, "", watcher)
		if err != nil {
			return nil, "", err
		}
		f.WatcherID = &w.ID
	}
	if host != "" {
		h, err := s.resolveHost(ctx, host)
		if err != nil {
			return nil, "", err
		}
		f.HostID = &h.ID
	}
	return s.store.FindCaptures(ctx, f)
}

// FindCapture returns a capture by id, or by name (within watcher when given;
// a name used in several watchers needs the watcher).
func (s *Service) FindCapture(ctx context.Context, watcher, ref string) (*tripcap.PacketCapture, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	return s.resolveCapture(ctx, watcher, ref)
}

func (s *Service) resolveCapture(ctx context.Context, watcher, ref string) (*tripcap.PacketCapture, error) {
	if ref == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "capture: required")
	}
	f := tripcap.CaptureFilter{Name: &ref}
	if watcher != "" {
		w, err := s.store.FindWatcher(ctx, "", watcher)
		if err != nil {
			return nil, err
		}
		f.WatcherID = &w.ID
	} else if c, err := s.store.FindCapture(ctx, tripcap.CaptureFilter{ID: &ref}); err == nil {
		return c, nil
	} else if tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		return nil, err
	}
	caps, _, err := s.store.FindCaptures(ctx, f)
	if err != nil {
		return nil, err
	}
	switch len(caps) {
	case 0:
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no capture %q", ref)
	case 1:
		return caps[0], nil
	}
	return nil, tripcap.Errorf(tripcap.ECONFLICT, "%d watchers have a capture named %q: name the watcher or use the id", len(caps), ref)
}

// StopCapture asks the host to stop a session (ManuallyStopped). ifMatch, when
// not empty, must be the capture's current ETag.
func (s *Service) StopCapture(ctx context.Context, watcher, ref, ifMatch string) (*tripcap.PacketCapture, error) {
	return s.endCapture(ctx, watcher, ref, ifMatch, false)
}

// DeleteCapture removes a capture; a running session stops (SessionDeleted).
// Its stored files are kept unless deleteFiles is set, as in Azure.
func (s *Service) DeleteCapture(ctx context.Context, watcher, ref, ifMatch string, deleteFiles bool) error {
	c, err := s.endCapture(ctx, watcher, ref, ifMatch, true)
	if err != nil {
		return err
	}
	if deleteFiles {
		return s.Files.DeleteFiles(ctx, c)
	}
	return nil
}

func (s *Service) endCapture(ctx context.Context, watcher, ref, ifMatch string, deleting bool) (*tripcap.PacketCapture, error) {
	if err := tripcap.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	c, err := s.resolveCapture(ctx, watcher, ref)
	if err != nil {
		return nil, err
	}
	if ifMatch != "" && ifMatch != "*" && ifMatch != c.ETag() {
		return nil, tripcap.Errorf(tripcap.EPRECONDITION, "capture %s changed (ETag %s, If-Match %s)", c.Name, c.ETag(), ifMatch)
	}
	var out *tripcap.PacketCapture
	err = s.updateCapture(ctx, c.ID, func(c *tripcap.PacketCapture) bool {
		out = c
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
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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
// another live capture there: both would write one file and both report
// success. (The agent refuses it too, and a file that exists already.)
func (s *Service) checkHostPathFree(ctx context.Context, host *tripcap.Host, loc tripcap.StorageLocation) error {
	want := hostPath(loc)
	if want == "" {
		return nil
	}
	caps, _, err := s.store.FindCaptures(ctx, tripcap.CaptureFilter{HostID: &host.ID, ActiveOnly: true})
	if err != nil {
		return fmt.Errorf("captures of %s: %w", host.Name, err)
	}
	for _, c := range caps {
		if hostPath(c.Parameters.StorageLocation) == want {
			field := "storageLocation.localPath"
			if loc.LocalPath == "" {
				field = "storageLocation.filePath"
			}
			return tripcap.Errorf(tripcap.ECONFLICT, "%s: %s on %s is the file of capture %s, still running; give this capture its own file", field, want, host.Name, c.Name)
		}
	}
	return nil
}
