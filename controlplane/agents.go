package controlplane

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// MaxPollWait bounds an agent's long poll, below common proxy idle timeouts.
const MaxPollWait = 55 * time.Second

// Assignments returns the calling agent's desired state as soon as its
// revision differs from known, or after wait with the same revision. Each
// poll also counts as a heartbeat.
func (s *Service) Assignments(ctx context.Context, known int64, wait time.Duration) (*tripcap.Assignments, error) {
	hostID, err := requireAgent(ctx)
	if err != nil {
		return nil, err
	}
	wait = min(max(wait, 0), MaxPollWait)
	s.counters.PollsWaiting.Add(1)
	defer s.counters.PollsWaiting.Add(-1)
	s.polls.open(hostID, s.now())
	defer s.polls.close(hostID)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		s.heartbeats.add(hostID, s.now())
		// Take the channel before reading, so a change in between still wakes us.
		changed := s.waiters.channel(hostID)
		rev, err := s.store.HostRevision(ctx, hostID)
		if err != nil {
			return nil, fmt.Errorf("revision of the agent's host: %w", err)
		}
		if rev != known {
			h, err := s.store.FindHost(ctx, tripcap.HostFilter{ID: &hostID})
			if err != nil {
				return nil, fmt.Errorf("find host of agent: %w", err)
			}
			return s.assignments(ctx, h)
		}
		select {
		case <-changed:
		case <-deadline.C:
			return &tripcap.Assignments{Revision: known, Assignments: nil}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *Service) assignments(ctx context.Context, h *tripcap.Host) (*tripcap.Assignments, error) {
	caps, _, err := s.store.FindCaptures(ctx, tripcap.CaptureFilter{HostID: &h.ID, ActiveOnly: true, IncludeDeleted: true})
	if err != nil {
		return nil, fmt.Errorf("captures of %s: %w", h.Name, err)
	}
	out := &tripcap.Assignments{Revision: h.Revision, Assignments: make([]tripcap.Assignment, 0, len(caps))}
	for _, c := range caps {
		out.Assignments = append(out.Assignments, tripcap.Assignment{
			ID: c.ID, Name: c.Name, Desired: c.Desired, Status: c.Status,
			Parameters: c.Parameters, Cause: c.Cause, CreatedAt: c.CreatedAt,
		})
	}
	return out, nil
}

// Report applies an agent's session reports. Reports on captures the server
// does not know (or that belong to another host) come back as Unknown.
func (s *Service) Report(ctx context.Context, reports []tripcap.SessionReport) (*tripcap.ReportResult, error) {
	hostID, err := requireAgent(ctx)
	if err != nil {
		return nil, err
	}
	s.heartbeats.add(hostID, s.now())
	s.counters.Reports.Add(uint64(len(reports)))
	res := &tripcap.ReportResult{}
	for _, r := range reports {
		if !validReportStatus(r.Status) {
			return nil, tripcap.Errorf(tripcap.EINVALID, "reports[%s].status: %q is not a session status", r.CaptureID, r.Status)
		}
	}
	now := s.now()
	for _, r := range reports {
		if s.batching.Load() && s.progress.hold(hostID, r, now) {
			continue
		}
		var applied *tripcap.PacketCapture
		err := s.updateCapture(ctx, r.CaptureID, func(c *tripcap.PacketCapture) bool {
			if c.HostID != hostID {
				res.Unknown = append(res.Unknown, r.CaptureID)
				return false
			}
			applied = c
			return applyReport(c, r)
		})
		switch {
		case tripcap.ErrorCode(err) == tripcap.ENOTFOUND:
			res.Unknown = append(res.Unknown, r.CaptureID)
			s.progress.forget(r.CaptureID)
		case err != nil:
			return nil, err
		default:
			s.progress.applied(hostID, applied, now)
		}
	}
	return res, nil
}

func validReportStatus(st tripcap.PacketCaptureStatus) bool {
	switch st {
	case tripcap.StatusNotStarted, tripcap.StatusRunning, tripcap.StatusStopped, tripcap.StatusError:
		return true
	}
	return false
}

// applyReport merges a report into c and says whether anything changed. A
// capture the server already ended (AgentStopped) keeps its status, but still
// takes the agent's final counters and files: that is how a partial file is
// recovered after an agent restarts.
func applyReport(c *tripcap.PacketCapture, r tripcap.SessionReport) bool {
	// Progress on a capture that has ended is older than what ended it (a
	// report held for the batch, or one delayed in flight): the final figures
	// are the file's and must stay.
	if c.Status.Terminal() && !r.Status.Terminal() {
		return false
	}
	before := reportedFields(c)
	if !c.Status.Terminal() {
		c.Status = r.Status
		if r.Status.Terminal() {
			c.StopReason = r.StopReason
			c.Errors = r.Errors
			c.ErrorMessage = r.Message
		}
	}
	// A file the agent could not store is reported after the session ended:
	// it turns an ended capture into an Error one, with the backend's message.
	if slices.Contains(r.Errors, tripcap.CaptureErrStorageFailed) && !slices.Contains(c.Errors, tripcap.CaptureErrStorageFailed) {
		c.Errors = append(c.Errors, tripcap.CaptureErrStorageFailed)
		c.ErrorMessage = strings.TrimPrefix(c.ErrorMessage+"; "+r.Message, "; ")
		if c.Status.Terminal() {
			c.Status = tripcap.StatusError
		}
	}
	if r.StartTime != nil && c.CaptureStartTime == nil {
		c.CaptureStartTime = r.StartTime
	}
	if r.StopTime != nil && c.CaptureStopTime == nil {
		c.CaptureStopTime = r.StopTime
	}
	c.Stats = r.Stats
	for _, f := range r.Files {
		i := fileIndex(c, f.Name)
		if i < 0 {
			c.Files = append(c.Files, tripcap.CaptureFile{Name: f.Name})
			i = len(c.Files) - 1
		}
		cur := &c.Files[i]
		if cur.Stored {
			continue // the stored copy is what counts now
		}
		cur.Size, cur.SHA256, cur.LocalPath, cur.CreatedAt = f.Size, f.SHA256, f.LocalPath, f.CreatedAt
	}
	return !reflect.DeepEqual(before, reportedFields(c))
}

// reportedFields copies what a report may change, to tell whether it did.
func reportedFields(c *tripcap.PacketCapture) tripcap.PacketCapture {
	return tripcap.PacketCapture{
		Status: c.Status, StopReason: c.StopReason, Errors: slices.Clone(c.Errors), ErrorMessage: c.ErrorMessage,
		CaptureStartTime: c.CaptureStartTime, CaptureStopTime: c.CaptureStopTime, Stats: c.Stats, Files: slices.Clone(c.Files),
	}
}

// fileSlot is where one file of an agent's capture goes in storage.
type fileSlot struct {
	capture *tripcap.PacketCapture
	blobs   tripcap.BlobStore
	file    tripcap.CaptureFile // the capture's record of it, Key set
}

// reserveFile checks that the calling agent may upload the named file of a
// capture and records the file with its storage key, so that every attempt
// (and every replica) writes the same object.
func (s *Service) reserveFile(ctx context.Context, captureID, name string) (*fileSlot, error) {
	hostID, err := requireAgent(ctx)
	if err != nil {
		return nil, err
	}
	if name == "" || strings.ContainsAny(name, "/\\") || name == "." || name == ".." {
		return nil, tripcap.Errorf(tripcap.EINVALID, "name: %q is not a file name", name)
	}
	c, err := s.store.FindCapture(ctx, tripcap.CaptureFilter{ID: &captureID, IncludeDeleted: true})
	if err != nil {
		return nil, err
	}
	if c.HostID != hostID {
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no capture %s on this host", captureID)
	}
	storageID := c.Parameters.StorageLocation.StorageID
	if storageID == "" || c.StorageKey == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "capture %s keeps its files on the host (no storage account)", c.Name)
	}
	blobs, err := s.blobStore(ctx, storageID)
	if err != nil {
		return nil, err
	}
	slot := &fileSlot{blobs: blobs}
	err = s.updateCapture(ctx, c.ID, func(c *tripcap.PacketCapture) bool {
		slot.capture = c
		i := fileIndex(c, name)
		if i < 0 {
			c.Files = append(c.Files, tripcap.CaptureFile{Name: name, CreatedAt: s.now()})
			i = len(c.Files) - 1
		}
		f := &c.Files[i]
		changed := f.Key == ""
		if changed {
			f.Key, f.StorageID = fileKey(c.StorageKey, i), storageID
		}
		slot.file = *f
		return changed
	})
	if err != nil {
		return nil, err
	}
	return slot, nil
}

// markStored records that a file is in storage with the given size and checksum.
func (s *Service) markStored(ctx context.Context, slot *fileSlot, info tripcap.ObjectInfo) (*tripcap.CaptureFile, error) {
	s.counters.Uploads.Add(1)
	var stored tripcap.CaptureFile
	err := s.updateCapture(ctx, slot.capture.ID, func(c *tripcap.PacketCapture) bool {
		i := fileIndex(c, slot.file.Name)
		if i < 0 {
			return false
		}
		f := &c.Files[i]
		f.Size, f.SHA256, f.Stored = info.Size, info.SHA256, true
		stored = *f
		return true
	})
	if err != nil {
		return nil, err
	}
	return &stored, nil
}

// UploadFile stores a file of the calling agent's capture through the server
// (the file backend's path), checking its SHA-256 when given. Uploading a file
// that is already stored with the same checksum is a no-op, so retries are safe.
func (s *Service) UploadFile(ctx context.Context, captureID, name, sha256 string, body io.Reader) (*tripcap.CaptureFile, error) {
	slot, err := s.reserveFile(ctx, captureID, name)
	if err != nil {
		return nil, err
	}
	if slot.file.Stored && slot.file.SHA256 == sha256 {
		_, _ = io.Copy(io.Discard, body)
		return &slot.file, nil
	}
	info, err := slot.blobs.Put(ctx, slot.file.Key, body)
	if err != nil {
		return nil, fmt.Errorf("store %s of capture %s: %w", name, slot.capture.Name, err)
	}
	if sha256 != "" && sha256 != info.SHA256 {
		_ = slot.blobs.Delete(ctx, slot.file.Key)
		return nil, tripcap.Errorf(tripcap.EINVALID, "file %s: SHA-256 %s does not match the upload's %s", name, sha256, info.SHA256)
	}
	return s.markStored(ctx, slot, info)
}

// UploadTarget tells the calling agent where to send a file: presigned URLs
// of the capture's storage account when it takes direct uploads, else the
// server's own upload endpoint. A file already stored comes back as nil.
func (s *Service) UploadTarget(ctx context.Context, captureID, name string, req tripcap.UploadTargetRequest) (*tripcap.UploadTarget, error) {
	if req.Size < 0 {
		return nil, tripcap.Errorf(tripcap.EINVALID, "size: %d is negative", req.Size)
	}
	slot, err := s.reserveFile(ctx, captureID, name)
	if err != nil {
		return nil, err
	}
	if slot.file.Stored && slot.file.SHA256 == req.SHA256 {
		return nil, nil
	}
	direct, ok := slot.blobs.(tripcap.DirectUploads)
	if !ok {
		return &tripcap.UploadTarget{Kind: tripcap.UploadServer, Size: req.Size}, nil
	}
	t, err := direct.PrepareUpload(ctx, slot.file.Key, req.Size, req.ResumeID, UploadTargetTTL)
	if err != nil {
		return nil, storageError("prepare the upload of "+name, err)
	}
	return t, nil
}

// CompleteUpload commits a direct upload: the backend assembles the parts the
// agent sent and the stored bytes' SHA-256 must equal the agent's.
func (s *Service) CompleteUpload(ctx context.Context, captureID, name, sha256 string, t *tripcap.UploadTarget) (*tripcap.CaptureFile, error) {
	if t == nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "target: required")
	}
	slot, err := s.reserveFile(ctx, captureID, name)
	if err != nil {
		return nil, err
	}
	if slot.file.Stored && slot.file.SHA256 == sha256 {
		return &slot.file, nil
	}
	direct, ok := slot.blobs.(tripcap.DirectUploads)
	if !ok {
		return nil, tripcap.Errorf(tripcap.EINVALID, "storage account %s takes uploads through the server only", slot.file.StorageID)
	}
	info, err := direct.CompleteUpload(ctx, slot.file.Key, t, sha256)
	if err != nil {
		return nil, storageError("complete the upload of "+name, err)
	}
	return s.markStored(ctx, slot, info)
}

// storageError keeps a backend's *tripcap.Error (its message names the
// backend's own error) and marks anything else as a storage outage the
// agent retries.
func storageError(doing string, err error) error {
	if tripcap.ErrorCode(err) != tripcap.EINTERNAL {
		return err
	}
	return tripcap.Errorf(tripcap.EUNAVAILABLE, "storage: %s: %v", doing, err)
}

// OpenFile opens a stored file of a capture for download: the named one, or
// the first when name is empty.
func (s *Service) OpenFile(ctx context.Context, watcher, ref, name string) (io.ReadSeekCloser, *tripcap.CaptureFile, error) {
	c, err := s.FindCapture(ctx, watcher, ref)
	if err != nil {
		return nil, nil, err
	}
	if len(c.Files) == 0 {
		return nil, nil, tripcap.Errorf(tripcap.ENOTFOUND, "capture %s has no file yet (status %s)", c.Name, c.Status)
	}
	i := 0
	if name != "" {
		if i = fileIndex(c, name); i < 0 {
			names := make([]string, len(c.Files))
			for j, f := range c.Files {
				names[j] = f.Name
			}
			return nil, nil, tripcap.Errorf(tripcap.ENOTFOUND, "capture %s has no file %q (files: %v)", c.Name, name, names)
		}
	}
	f := c.Files[i]
	if !f.Stored {
		if c.Parameters.StorageLocation.StorageID == "" {
			return nil, nil, tripcap.Errorf(tripcap.ENOTFOUND, "capture %s keeps %s on its host only, at %s", c.Name, f.Name, f.LocalPath)
		}
		return nil, nil, tripcap.Errorf(tripcap.EUNAVAILABLE, "capture %s: %s is not uploaded yet (status %s)", c.Name, f.Name, c.Status)
	}
	blobs, err := s.blobStore(ctx, f.StorageID)
	if err != nil {
		return nil, nil, err
	}
	rc, _, err := blobs.Open(ctx, f.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s of capture %s: %w", f.Key, c.Name, err)
	}
	return rc, &f, nil
}

// QueryStatus is Azure's queryStatus: the capture's status fields.
func (s *Service) QueryStatus(ctx context.Context, watcher, ref string) (*tripcap.PacketCapture, error) {
	return s.FindCapture(ctx, watcher, ref)
}
