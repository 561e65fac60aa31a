package controlplane

// Scale sets and the captures that target them (Azure's AzureVMSS target
// type): a scale set is the hosts labelled tripcap.LabelScaleSet=NAME in a
// subscription and resource group, an instance is one of them (its id is
// the host's name), and a capture of a scale set is one capture without a
// host plus one session, an ordinary capture, per selected instance. Users
// name, list, stop and delete the scale-set capture; agents run the
// sessions; the scale-set capture's status is its sessions', aggregated
// when it is read.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/capturefile"
)

// hostPage is how many hosts a scale set's scan reads at a time.
const hostPage = 500

// FindScaleSets lists the scale sets of a subscription (and of one of its
// resource groups when group is not ""), made of the hosts the caller may
// read, ordered by resource group and name.
func (s *Service) FindScaleSets(ctx context.Context, subscription, group string) ([]*tripcap.ScaleSet, error) {
	p, err := tripcap.AuthorizeSome(ctx, tripcap.PermRead)
	if err != nil {
		return nil, err
	}
	if subscription == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "subscription: required")
	}
	f := tripcap.HostFilter{SubscriptionID: &subscription, Limit: hostPage}
	if group != "" {
		f.ResourceGroup = &group
	}
	byKey := map[string]*tripcap.ScaleSet{}
	for {
		hosts, next, err := s.store.FindHosts(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("find hosts of subscription %s: %w", subscription, err)
		}
		for _, h := range hosts {
			name := h.Labels[tripcap.LabelScaleSet]
			if tripcap.ValidateName("", name) != nil || !p.Can(tripcap.PermRead, h) {
				continue // no scale set (or a label from before names were checked)
			}
			// ARM names are case-insensitive: one scale set, however spelled.
			key := strings.ToLower(h.ResourceGroup + "/" + name)
			ss := byKey[key]
			if ss == nil {
				ss = &tripcap.ScaleSet{Name: name, SubscriptionID: h.SubscriptionID, ResourceGroup: h.ResourceGroup}
				byKey[key] = ss
			}
			ss.Instances = append(ss.Instances, h)
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	out := make([]*tripcap.ScaleSet, 0, len(byKey))
	for _, ss := range byKey {
		slices.SortFunc(ss.Instances, func(a, b *tripcap.Host) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
		ss.Location = ss.Instances[0].Location
		out = append(out, ss)
	}
	slices.SortFunc(out, func(a, b *tripcap.ScaleSet) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.ResourceGroup), strings.ToLower(b.ResourceGroup)), strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)))
	})
	return out, nil
}

// FindScaleSet returns one scale set with the instances the caller may
// read; ENOTFOUND when it has none.
func (s *Service) FindScaleSet(ctx context.Context, subscription, group, name string) (*tripcap.ScaleSet, error) {
	if group == "" || name == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "scale set: resource group and name required")
	}
	sets, err := s.FindScaleSets(ctx, subscription, group)
	if err != nil {
		return nil, err
	}
	for _, ss := range sets {
		if strings.EqualFold(ss.Name, name) {
			return ss, nil
		}
	}
	return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no scale set %s: no host you may read is labelled %s=%s in subscription %s, resource group %s",
		tripcap.VMSSResourceID(subscription, group, name), tripcap.LabelScaleSet, name, subscription, group)
}

// scaleSetTarget checks the target type against the target and returns
// the scale set a capture targets: nil for a VM. p.TargetType is set to
// AzureVMSS when the target is a scale set's id and no type was given.
func (s *Service) scaleSetTarget(ctx context.Context, p *tripcap.PacketCaptureParameters) (*tripcap.ScaleSet, error) {
	sub, group, name, isSet := tripcap.ParseVMSSResourceID(p.Target)
	switch {
	case isSet && p.TargetType == tripcap.TargetAzureVM:
		return nil, tripcap.Errorf(tripcap.EINVALID, "targetType: %s is a scale set; its targetType is AzureVMSS", p.Target)
	case !isSet && p.TargetType == tripcap.TargetAzureVMSS:
		return nil, tripcap.Errorf(tripcap.EINVALID, "target: %q is not a scale set's resource id (/subscriptions/S/resourceGroups/G/providers/Microsoft.Compute/virtualMachineScaleSets/NAME), which targetType AzureVMSS needs", p.Target)
	case !isSet:
		if sc := p.Scope; sc != nil && (len(sc.Include) > 0 || len(sc.Exclude) > 0) {
			return nil, tripcap.Errorf(tripcap.EINVALID, "scope: selects instances of a scale set; the target %q is a VM", p.Target)
		}
		return nil, nil
	}
	p.TargetType = tripcap.TargetAzureVMSS
	ss, err := s.FindScaleSet(ctx, sub, group, name)
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
		return nil, tripcap.Errorf(tripcap.EINVALID, "target: %s", tripcap.ErrorMessage(err))
	}
	return ss, err
}

// selectInstances applies a capture's scope to a scale set: the instances
// include names (all when empty) minus those exclude names. Instances are
// named by id (the host's name) or VM resource id, regardless of case; one
// naming no instance is an error, as a typo would capture the wrong hosts.
func selectInstances(ss *tripcap.ScaleSet, scope *tripcap.CaptureScope) ([]*tripcap.Host, error) {
	var sc tripcap.CaptureScope
	if scope != nil {
		sc = *scope
	}
	find := func(field string, i int, ref string) (*tripcap.Host, error) {
		id := ref
		if _, _, vm, ok := tripcap.ParseVMResourceID(ref); ok {
			id = vm
		}
		for _, h := range ss.Instances {
			if strings.EqualFold(h.Name, id) {
				return h, nil
			}
		}
		names := make([]string, len(ss.Instances))
		for i, h := range ss.Instances {
			names[i] = h.Name
		}
		return nil, tripcap.Errorf(tripcap.EINVALID, "scope.%s[%d]: %q is not an instance of scale set %s (instances: %s)", field, i, ref, ss.Name, strings.Join(names, ", "))
	}
	selected := ss.Instances
	if len(sc.Include) > 0 {
		selected = nil
		for i, ref := range sc.Include {
			h, err := find("include", i, ref)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(selected, h) {
				selected = append(selected, h)
			}
		}
	}
	var excluded []*tripcap.Host
	for i, ref := range sc.Exclude {
		h, err := find("exclude", i, ref)
		if err != nil {
			return nil, err
		}
		excluded = append(excluded, h)
	}
	out := slices.DeleteFunc(slices.Clone(selected), func(h *tripcap.Host) bool { return slices.Contains(excluded, h) })
	if len(out) == 0 {
		return nil, tripcap.Errorf(tripcap.EINVALID, "scope: selects no instance of scale set %s", ss.Name)
	}
	return out, nil
}

// createScaleSetCapture records a capture of a scale set: a session per
// selected instance, each checked as a capture of that host alone is.
func (s *Service) createScaleSetCapture(ctx context.Context, req CreateCaptureRequest, p tripcap.PacketCaptureParameters, blobs tripcap.BlobStore, ss *tripcap.ScaleSet) (*tripcap.PacketCapture, error) {
	hosts, err := selectInstances(ss, p.Scope)
	if err != nil {
		return nil, err
	}
	var offline []string
	for _, h := range hosts {
		if err := tripcap.AuthorizeAt(ctx, tripcap.PermCaptureWrite, h, tripcap.NoHost(h.Name)); err != nil {
			return nil, err
		}
		if h.State != tripcap.HostOnline {
			offline = append(offline, h.Name)
		}
		if h.Location != hosts[0].Location {
			return nil, tripcap.Errorf(tripcap.EINVALID, "scope: instances %s (%s) and %s (%s) of scale set %s are in different locations; a capture runs in one watcher's location, so scope it to one",
				hosts[0].Name, hosts[0].Location, h.Name, h.Location, ss.Name)
		}
		if err := s.checkHostPathFree(ctx, h, p.StorageLocation); err != nil {
			return nil, err
		}
	}
	if len(offline) > 0 {
		return nil, tripcap.Errorf(tripcap.EUNAVAILABLE, "target: instances %s of scale set %s are Offline; their agents must be running (or leave them out with scope.exclude)", strings.Join(offline, ", "), ss.Name)
	}
	if req.ValidateOnly {
		return nil, nil
	}
	location := hosts[0].Location
	w, err := s.watcherOf(ctx, hosts[0])
	if err != nil {
		return nil, err
	}
	if req.Watcher != "" && !strings.EqualFold(req.Watcher, w.Name) && req.Watcher != w.ID {
		return nil, tripcap.Errorf(tripcap.EINVALID, "target: scale set %s is in location %s, watched by %s, not %s", ss.Name, location, w.Name, req.Watcher)
	}
	now := s.now()
	set := newCapture(req, cmp.Or(req.ID, tripcap.NewID()), w.ID, "", p, now)
	if p.StorageLocation.StorageID != "" {
		// Every session's file is under the scale set's folder.
		set.Parameters.StorageLocation.StoragePath = blobs.URL(scaleSetFolder(ss))
	}
	sessions := make([]*tripcap.PacketCapture, len(hosts))
	for i, h := range hosts {
		sp := p
		sp.Target, sp.TargetType, sp.Scope = h.ResourceID(), tripcap.TargetAzureVM, nil
		c := newCapture(req, tripcap.NewID(), w.ID, h.ID, sp, now)
		c.ScaleSetID = set.ID
		if p.StorageLocation.StorageID != "" {
			c.StorageKey = sessionKey(ss, h, now, p.Format)
			c.Parameters.StorageLocation.StoragePath = blobs.URL(c.StorageKey)
		}
		sessions[i] = c
	}
	if err := s.store.CreateScaleSetCapture(ctx, set, sessions); err != nil {
		return nil, err
	}
	s.log.Info("scale-set capture created", "capture", set.Name, "id", set.ID, "scaleSet", ss.ResourceID(), "sessions", len(sessions), "watcher", w.Name)
	return s.withSessions(ctx, set, sessions)
}

// scaleSetFolder is the folder of a scale set's files in a storage
// account, in Azure's lower-case form:
// subscriptions/<sub>/resourcegroups/<rg>/providers/microsoft.compute/virtualmachinescalesets/<name>/
func scaleSetFolder(ss *tripcap.ScaleSet) string {
	return strings.ToLower(strings.TrimPrefix(ss.ResourceID(), "/")) + "/"
}

// sessionKey is the object key of a session's first file: the instance's
// folder under the scale set's, then the date and time as for a VM
// (capturefile.Key).
func sessionKey(ss *tripcap.ScaleSet, h *tripcap.Host, created time.Time, format string) string {
	vmKey := capturefile.Key(h, created, format)
	vmFolder := strings.ToLower(strings.TrimPrefix(h.ResourceID(), "/"))
	return scaleSetFolder(ss) + "virtualmachines/" + strings.ToLower(h.Name) + strings.TrimPrefix(vmKey, vmFolder)
}

// sessionsOf returns a scale-set capture's sessions, deleted ones too.
func (s *Service) sessionsOf(ctx context.Context, set *tripcap.PacketCapture) ([]*tripcap.PacketCapture, error) {
	sessions, _, err := s.store.FindCaptures(ctx, tripcap.CaptureFilter{ScaleSetID: &set.ID, IncludeDeleted: true})
	if err != nil {
		return nil, fmt.Errorf("sessions of capture %s: %w", set.Name, err)
	}
	return sessions, nil
}

// captureHosts returns the hosts a capture is authorized against: its
// host, or a scale-set capture's sessions' hosts (nil for one deleted).
func (s *Service) captureHosts(ctx context.Context, c *tripcap.PacketCapture) ([]*tripcap.Host, error) {
	if !c.IsScaleSet() {
		h, err := tripcap.HostOf(ctx, s.store, c.HostID)
		if err != nil {
			return nil, err
		}
		return []*tripcap.Host{h}, nil
	}
	sessions, err := s.sessionsOf(ctx, c)
	if err != nil {
		return nil, err
	}
	hosts := make([]*tripcap.Host, 0, len(sessions))
	for _, m := range sessions {
		h, err := tripcap.HostOf(ctx, s.store, m.HostID)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// view is a capture as users see it: a scale-set capture with its
// sessions and their status aggregated (aggregateSessions), any other as
// it is.
func (s *Service) view(ctx context.Context, c *tripcap.PacketCapture) (*tripcap.PacketCapture, error) {
	if !c.IsScaleSet() {
		return c, nil
	}
	sessions, err := s.sessionsOf(ctx, c)
	if err != nil {
		return nil, err
	}
	return s.withSessions(ctx, c, sessions)
}

func (s *Service) withSessions(ctx context.Context, set *tripcap.PacketCapture, sessions []*tripcap.PacketCapture) (*tripcap.PacketCapture, error) {
	names := make(map[string]string, len(sessions))
	for _, m := range sessions {
		h, err := tripcap.HostOf(ctx, s.store, m.HostID)
		if err != nil {
			return nil, err
		}
		if h != nil {
			names[m.ID] = h.Name
		} else if _, _, vm, ok := tripcap.ParseVMResourceID(m.Parameters.Target); ok {
			names[m.ID] = vm // the host is gone; its VM id names it still
		}
	}
	return aggregateSessions(set, sessions, names), nil
}

// aggregateSessions returns a copy of a scale-set capture with its
// sessions (instance ids from names, by session id) and their status
// folded into its own: Running while any runs; NotStarted while any is yet
// to start and none runs; once all ended, Error if every one failed, else
// Stopped. Errors, stop reasons and messages are the sessions' (a message
// prefixed with its instance), counters their sums, the start the
// earliest, the stop the latest.
func aggregateSessions(set *tripcap.PacketCapture, sessions []*tripcap.PacketCapture, names map[string]string) *tripcap.PacketCapture {
	out := *set
	out.Sessions = make([]tripcap.ScaleSetSession, 0, len(sessions))
	out.Errors, out.StopReason, out.ErrorMessage = nil, "", ""
	out.CaptureStartTime, out.CaptureStopTime = nil, nil
	out.Stats = tripcap.CaptureStats{}
	var running, pending, failed, ended int
	var reasons, messages []string
	for _, m := range sessions {
		id := cmp.Or(names[m.ID], m.HostID)
		out.Sessions = append(out.Sessions, tripcap.ScaleSetSession{
			InstanceID: id, CaptureID: m.ID, HostID: m.HostID, Status: m.Status, StopReason: m.StopReason,
			Errors: slices.Clone(m.Errors), ErrorMessage: m.ErrorMessage, StoragePath: m.Parameters.StorageLocation.StoragePath,
			CaptureStartTime: m.CaptureStartTime, CaptureStopTime: m.CaptureStopTime, Stats: m.Stats, ProvisioningState: m.ProvisioningState,
		})
		switch {
		case m.Status == tripcap.StatusRunning:
			running++
		case m.Status.Terminal():
			ended++
			if m.Status == tripcap.StatusError {
				failed++
			}
		default:
			pending++
		}
		if m.StopReason != "" && !slices.Contains(reasons, m.StopReason) {
			reasons = append(reasons, m.StopReason)
		}
		for _, e := range m.Errors {
			out.Errors = tripcap.AddCaptureError(out.Errors, e)
		}
		if m.ErrorMessage != "" {
			messages = append(messages, id+": "+m.ErrorMessage)
		}
		if t := m.CaptureStartTime; t != nil && (out.CaptureStartTime == nil || t.Before(*out.CaptureStartTime)) {
			out.CaptureStartTime = t
		}
		if t := m.CaptureStopTime; t != nil && (out.CaptureStopTime == nil || t.After(*out.CaptureStopTime)) {
			out.CaptureStopTime = t
		}
		st := &out.Stats
		st.Packets += m.Stats.Packets
		st.Bytes += m.Stats.Bytes
		st.KernelDrops += m.Stats.KernelDrops
		if n := m.Stats.TruncatedPackets; n != nil {
			st.TruncatedPackets = new(*n + derefOr(st.TruncatedPackets))
		}
		st.EndedInterfaces = append(st.EndedInterfaces, m.Stats.EndedInterfaces...)
	}
	slices.SortFunc(out.Sessions, func(a, b tripcap.ScaleSetSession) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	switch {
	case running > 0:
		out.Status = tripcap.StatusRunning
	case pending > 0 || len(sessions) == 0:
		out.Status = tripcap.StatusNotStarted
	case failed == ended:
		out.Status = tripcap.StatusError
	default:
		out.Status = tripcap.StatusStopped
	}
	if running > 0 || pending > 0 {
		out.CaptureStopTime = nil
	}
	out.StopReason = strings.Join(reasons, ", ")
	out.ErrorMessage = strings.Join(messages, "; ")
	return &out
}

func derefOr(n *uint64) uint64 {
	if n == nil {
		return 0
	}
	return *n
}

// endSessions ends every session of a scale-set capture as end ends a
// capture (stop, or delete).
func (s *Service) endSessions(ctx context.Context, set *tripcap.PacketCapture, end func(c *tripcap.PacketCapture) bool) ([]*tripcap.PacketCapture, error) {
	sessions, err := s.sessionsOf(ctx, set)
	if err != nil {
		return nil, err
	}
	out := make([]*tripcap.PacketCapture, 0, len(sessions))
	for _, m := range sessions {
		var ended *tripcap.PacketCapture
		if err := s.updateCapture(ctx, m.ID, func(c *tripcap.PacketCapture) bool {
			ended = c
			return end(c)
		}); err != nil {
			return nil, fmt.Errorf("end session %s of capture %s: %w", m.ID, set.Name, err)
		}
		out = append(out, ended)
	}
	return out, nil
}
