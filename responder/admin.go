package responder

import (
	"context"
	"fmt"

	"github.com/tripcap/tripcap"
)

// resolve finds a responder by id or name.
func (r *Responders) resolve(ctx context.Context, ref string) (*tripcap.Responder, error) {
	if ref == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "responder: required")
	}
	if tripcap.IsID(ref) {
		if rs, err := r.store.FindResponder(ctx, tripcap.ResponderFilter{ID: &ref}); err == nil {
			return rs, nil
		}
	}
	return r.store.FindResponder(ctx, tripcap.ResponderFilter{Name: &ref})
}

// check validates a responder and what it refers to.
func (r *Responders) check(ctx context.Context, rs *tripcap.Responder) error {
	rs.ApplyDefaults()
	if err := rs.Validate(); err != nil {
		return err
	}
	for i, h := range rs.NotifyWebhookReceivers {
		if err := r.notifier.CheckWebhookTarget(fmt.Sprintf("notifyWebhookReceivers[%d].serviceUri", i), h.ServiceURI); err != nil {
			return err
		}
	}
	if rs.NotifyActionGroup != "" {
		if _, err := r.groups.FindActionGroup(ctx, tripcap.ActionGroupFilter{Name: &rs.NotifyActionGroup}); err != nil {
			if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
				return tripcap.Errorf(tripcap.EINVALID, "notifyActionGroup: no action group named %q", rs.NotifyActionGroup)
			}
			return err
		}
	}
	if sa := rs.Capture.StorageAccount; sa != "" {
		if err := r.captures.CheckStorage(ctx, sa); err != nil {
			return tripcap.Errorf(tripcap.EINVALID, "capture.storageAccount: %s", tripcap.ErrorMessage(err))
		}
	}
	return nil
}

// CreateResponder validates and stores a payload. Like every change that
// makes a responder start captures, it needs tripcap.AuthorizeCaptureTrigger.
func (r *Responders) CreateResponder(ctx context.Context, in *tripcap.Responder) (*tripcap.Responder, error) {
	if err := tripcap.AuthorizeCaptureTrigger(ctx); err != nil {
		return nil, err
	}
	if in == nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "body: a responder is required")
	}
	rs := *in
	if err := r.check(ctx, &rs); err != nil {
		return nil, err
	}
	now := r.now().UTC()
	rs.ID, rs.CreatedAt, rs.UpdatedAt = tripcap.NewID(), now, now
	if rs.Enabled == nil {
		rs.Enabled = new(true)
	}
	if err := r.store.CreateResponder(ctx, &rs); err != nil {
		return nil, err
	}
	r.log.Info("responder created", "responder", rs.Name, "id", rs.ID)
	return rs.Redacted(), nil
}

// UpdateResponder replaces a responder's settings with in, checked as for
// create; its id, keys, runs and creation time stay. ifMatch, when set
// (and not "*"), must be the responder's current ETag, else EPRECONDITION.
// Without it the last writer wins.
func (r *Responders) UpdateResponder(ctx context.Context, ref string, in *tripcap.Responder, ifMatch string) (*tripcap.Responder, error) {
	if err := tripcap.AuthorizeCaptureTrigger(ctx); err != nil {
		return nil, err
	}
	if in == nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "body: a responder is required")
	}
	for attempt := 0; ; attempt++ {
		cur, err := r.resolve(ctx, ref)
		if err != nil {
			return nil, err
		}
		if ifMatch != "" && ifMatch != "*" && ifMatch != cur.ETag() {
			return nil, tripcap.Errorf(tripcap.EPRECONDITION, "responder %s changed (ETag %s, If-Match %s)", cur.Name, cur.ETag(), ifMatch)
		}
		if in.ID != "" && in.ID != cur.ID {
			return nil, tripcap.Errorf(tripcap.EINVALID, "id: %q is not the responder's (%s); ids do not change", in.ID, cur.ID)
		}
		rs := *in
		if rs.Name == "" {
			rs.Name = cur.Name
		}
		if rs.NotifyWebhookReceivers, err = tripcap.RestoreWebhooks("notifyWebhookReceivers", in.NotifyWebhookReceivers, cur.NotifyWebhookReceivers); err != nil {
			return nil, err
		}
		if err := r.check(ctx, &rs); err != nil {
			return nil, err
		}
		rs.ID, rs.CreatedAt = cur.ID, cur.CreatedAt
		if rs.Enabled == nil {
			rs.Enabled = new(true)
		}
		err = r.store.UpdateResponder(ctx, &rs, cur.Version)
		// Changed between the read and the write: with If-Match that is
		// the caller's to resolve; without, read again.
		if tripcap.ErrorCode(err) == tripcap.EPRECONDITION && (ifMatch == "" || ifMatch == "*") && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, err
		}
		r.log.Info("responder updated", "responder", rs.Name, "id", rs.ID, "version", rs.Version)
		return rs.Redacted(), nil
	}
}

// FindResponders lists responders.
func (r *Responders) FindResponders(ctx context.Context) ([]*tripcap.Responder, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermRead, nil); err != nil {
		return nil, err
	}
	rs, err := r.store.FindResponders(ctx, tripcap.ResponderFilter{})
	for i, x := range rs {
		rs[i] = x.Redacted()
	}
	return rs, err
}

// FindResponder returns a responder by id or name.
func (r *Responders) FindResponder(ctx context.Context, ref string) (*tripcap.Responder, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermRead, nil); err != nil {
		return nil, err
	}
	rs, err := r.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	return rs.Redacted(), nil
}

// DeleteResponder removes a responder and its keys; its runs stay.
func (r *Responders) DeleteResponder(ctx context.Context, ref string) error {
	if err := tripcap.Authorize(ctx, tripcap.PermMonitoringWrite, nil); err != nil {
		return err
	}
	rs, err := r.resolve(ctx, ref)
	if err != nil {
		return err
	}
	return r.store.DeleteResponder(ctx, rs.ID)
}

// CreateKey makes a function key; its secret is in the result only.
func (r *Responders) CreateKey(ctx context.Context, ref, name string) (*tripcap.ResponderKey, error) {
	if err := tripcap.AuthorizeCaptureTrigger(ctx); err != nil {
		return nil, err
	}
	if name == "" {
		name = "default"
	}
	if err := tripcap.ValidateName("name", name); err != nil {
		return nil, err
	}
	rs, err := r.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	secret := tripcap.NewSecret(SecretPrefixFunction)
	k := &tripcap.ResponderKey{ID: tripcap.NewID(), ResponderID: rs.ID, Name: name, Hash: tripcap.HashSecret(secret), CreatedAt: r.now().UTC()}
	if err := r.store.CreateResponderKey(ctx, k); err != nil {
		return nil, err
	}
	k.Secret = secret
	return k, nil
}

// RotateKey replaces the named key with a new secret (the old one stops
// working at once). It is refused before the old key is revoked to a
// caller that may not create one.
func (r *Responders) RotateKey(ctx context.Context, ref, name string) (*tripcap.ResponderKey, error) {
	if err := tripcap.AuthorizeCaptureTrigger(ctx); err != nil {
		return nil, err
	}
	if err := r.RevokeKey(ctx, ref, name); err != nil {
		return nil, err
	}
	return r.CreateKey(ctx, ref, name)
}

// FindKeys lists a responder's keys (never their secrets).
func (r *Responders) FindKeys(ctx context.Context, ref string) ([]*tripcap.ResponderKey, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermRead, nil); err != nil {
		return nil, err
	}
	rs, err := r.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	return r.store.FindResponderKeys(ctx, rs.ID)
}

// RevokeKey deletes a responder's key by name.
func (r *Responders) RevokeKey(ctx context.Context, ref, name string) error {
	if err := tripcap.Authorize(ctx, tripcap.PermMonitoringWrite, nil); err != nil {
		return err
	}
	keys, err := r.FindKeys(ctx, ref)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Name == name {
			return r.store.DeleteResponderKey(ctx, k.ID)
		}
	}
	return tripcap.Errorf(tripcap.ENOTFOUND, "responder %s has no key named %q", ref, name)
}

// FindRuns lists a responder's runs, newest first (limit 0: 100).
func (r *Responders) FindRuns(ctx context.Context, ref string, limit int) ([]*tripcap.ResponderRun, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermRead, nil); err != nil {
		return nil, err
	}
	rs, err := r.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 100
	}
	return r.store.FindResponderRuns(ctx, tripcap.ResponderRunFilter{ResponderID: &rs.ID, Limit: min(limit, 1000)})
}

// FindRun returns one run by id.
func (r *Responders) FindRun(ctx context.Context, id string) (*tripcap.ResponderRun, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermRead, nil); err != nil {
		return nil, err
	}
	runs, err := r.store.FindResponderRuns(ctx, tripcap.ResponderRunFilter{ID: &id, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "responder run %q not found", id)
	}
	return runs[0], nil
}
