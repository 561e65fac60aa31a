package tripcap

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// A Responder is the alert-triggered capture "function" of the seeds, as a
// resource: when an alert reaches it (from an action group's responder
// receiver, or posted to /api/functions/{name} by Azure Monitor,
// Alertmanager or Grafana) it starts a packet capture on the alert's host
// from its capture template, and tells its notify action group when the
// capture is done.
type Responder struct {
	ID          string `json:"id,omitempty"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Enabled defaults to true; a disabled responder records runs but
	// starts nothing.
	Enabled *bool `json:"enabled,omitempty"`

	Capture ResponderCapture `json:"capture"`
	// NameConflict says what happens when a capture of the template's name
	// already exists on the host's watcher.
	NameConflict NameConflictPolicy `json:"nameConflict,omitempty"`
	// Limit is the most captures the host's watcher may hold; at or above
	// it the run is skipped with the reason recorded (the seed's
	// $packetCaptureLimit, 100).
	Limit int `json:"limit,omitempty"`
	// CooldownMinutes keeps the responder from capturing again on a host
	// for the same alert within this many minutes (0: no cooldown; a
	// redelivered alert is never captured twice regardless).
	CooldownMinutes int `json:"cooldownMinutes,omitempty"`
	// StopOnResolved stops the capture the alert started when the alert
	// resolves, instead of letting it run to its limits.
	StopOnResolved bool `json:"stopOnResolved,omitempty"`
	// NotifyActionGroup names the action group told when a capture the
	// responder started completes ("" for none).
	NotifyActionGroup string `json:"notifyActionGroup,omitempty"`
	// NotifyWebhookReceivers and NotifyEmailReceivers are told as well:
	// the responder's own receivers, for a notice without an action group.
	// Their webhook posts are not signed; an action group's are.
	NotifyWebhookReceivers []WebhookReceiver `json:"notifyWebhookReceivers,omitempty"`
	NotifyEmailReceivers   []EmailReceiver   `json:"notifyEmailReceivers,omitempty"`
	// TargetLabels are the Alertmanager/Grafana labels tried, in order, to
	// find the host by name or address; empty means host, instance, node,
	// nodename.
	TargetLabels []string `json:"targetLabels,omitempty"`
	// BodyOverrides are the capture parameters an inbound body may choose
	// (the 2017 custom JSON's storageID and timeLimit): none unless allowed
	// here, so that a function key starts the template and nothing else.
	BodyOverrides *BodyOverrides `json:"bodyOverrides,omitempty"`

	// Version counts the responder's writes; its ETag is made from it, so
	// an update can be made conditional (If-Match).
	Version   int64     `json:"version,omitempty"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// Notifies reports whether anyone is told when a capture completes.
func (r *Responder) Notifies() bool {
	return r.NotifyActionGroup != "" || len(r.NotifyWebhookReceivers)+len(r.NotifyEmailReceivers) > 0
}

// OwnReceivers is the responder's own receivers as an action group to
// deliver through (nil when it has none): unsigned, always enabled.
func (r *Responder) OwnReceivers() *ActionGroup {
	if len(r.NotifyWebhookReceivers)+len(r.NotifyEmailReceivers) == 0 {
		return nil
	}
	return &ActionGroup{ID: r.ID, Name: "responder " + r.Name,
		WebhookReceivers: r.NotifyWebhookReceivers, EmailReceivers: r.NotifyEmailReceivers}
}

// AuthorizeCaptureTrigger refuses a caller that may not make something
// start captures on its own: a responder, its function keys, an action
// group with a responder receiver. A responder captures on whatever host
// its alerts or triggers name, acting as the server, so this needs
// PermCaptureWrite at "*" besides PermMonitoringWrite.
func AuthorizeCaptureTrigger(ctx context.Context) error {
	if err := Authorize(ctx, PermMonitoringWrite, nil); err != nil {
		return err
	}
	if err := Authorize(ctx, PermCaptureWrite, nil); err != nil {
		return Errorf(EFORBIDDEN, "%s: a responder captures on any host its alerts name, so this needs %s at * besides %s", ErrorMessage(err), PermCaptureWrite, PermMonitoringWrite)
	}
	return nil
}

// ETag is the responder's entity tag, for If-Match on update.
func (r *Responder) ETag() string { return versionETag(r.Version) }

// ResponderCapture is the template of the captures a responder starts: the
// capture's name and its parameters without a target (the alert's host is
// the target). Filter addresses may use the placeholders ${host.address}
// and ${host.name}, filled from the resolved host.
type ResponderCapture struct {
	Name                    string                `json:"name,omitempty"`
	TimeLimitInSeconds      int32                 `json:"timeLimitInSeconds,omitempty"`
	BytesToCapturePerPacket int64                 `json:"bytesToCapturePerPacket,omitempty"`
	TotalBytesPerSession    int64                 `json:"totalBytesPerSession,omitempty"`
	Filters                 []PacketCaptureFilter `json:"filters,omitempty"`
	// FilterExpression is a tcpdump expression; it may use the placeholders too.
	FilterExpression string `json:"filterExpression,omitempty"`
	// StorageAccount names a configured storage account; "" keeps the file
	// on the host (under the capture directory).
	StorageAccount    string           `json:"storageAccount,omitempty"`
	Format            string           `json:"format,omitempty"`
	PreTriggerSeconds int32            `json:"preTriggerSeconds,omitempty"`
	ContinuousCapture *bool            `json:"continuousCapture,omitempty"`
	CaptureSettings   *CaptureSettings `json:"captureSettings,omitempty"`
	IncludeMetadata   bool             `json:"includeMetadata,omitempty"`
}

// BodyOverrides allow an inbound body to change a responder's template. A
// body's value equal to the template's own is no choice and always taken.
type BodyOverrides struct {
	// StorageAccounts are the accounts a body's storageID may name.
	StorageAccounts []string `json:"storageAccounts,omitempty"`
	// MaxTimeLimitInSeconds lets a body's timeLimit set the capture's time
	// limit, from 1 up to this; 0 takes none.
	MaxTimeLimitInSeconds int32 `json:"maxTimeLimitInSeconds,omitempty"`
}

// NameConflictPolicy is what a responder does when its capture name is taken.
type NameConflictPolicy string

// The name-conflict policies.
const (
	// ConflictReplace deletes the existing capture, then creates (the seed).
	ConflictReplace NameConflictPolicy = "replace"
	// ConflictUnique suffixes the name with the alert's timestamp.
	ConflictUnique NameConflictPolicy = "unique"
	// ConflictSkip records the run as skipped.
	ConflictSkip NameConflictPolicy = "skip"
)

// Responder defaults, the current seed's values.
const (
	DefaultResponderCaptureName = "PSAzureFunction"
	DefaultResponderTimeLimit   = 30
	DefaultResponderLimit       = 100
	// MaxResponderCooldownMinutes is a week: longer is a disabled responder.
	MaxResponderCooldownMinutes = 7 * 24 * 60
)

// Template placeholders in a responder's filter addresses.
const (
	PlaceholderHostAddress = "${host.address}"
	PlaceholderHostName    = "${host.name}"
)

// IsEnabled reports whether the responder acts (true when unset).
func (r *Responder) IsEnabled() bool { return r.Enabled == nil || *r.Enabled }

// ApplyDefaults fills unset fields with the seed's values.
func (r *Responder) ApplyDefaults() {
	if r.Capture.Name == "" {
		r.Capture.Name = DefaultResponderCaptureName
	}
	if r.Capture.TimeLimitInSeconds == 0 {
		r.Capture.TimeLimitInSeconds = DefaultResponderTimeLimit
	}
	if r.NameConflict == "" {
		r.NameConflict = ConflictReplace
	}
	if r.Limit == 0 {
		r.Limit = DefaultResponderLimit
	}
}

// Parameters returns the capture parameters for target, with the
// template's placeholders filled from the host's name and address.
// storageID is the storage account's resource id ("" for a file kept on
// the host, at localPath).
func (c ResponderCapture) Parameters(target, hostName, hostAddress, storageID, localPath string) PacketCaptureParameters {
	fill := strings.NewReplacer(PlaceholderHostAddress, hostAddress, PlaceholderHostName, hostName).Replace
	filters := make([]PacketCaptureFilter, len(c.Filters))
	for i, f := range c.Filters {
		f.LocalIPAddress, f.RemoteIPAddress = fill(f.LocalIPAddress), fill(f.RemoteIPAddress)
		filters[i] = f
	}
	if len(filters) == 0 {
		filters = nil
	}
	p := PacketCaptureParameters{
		Target:                  target,
		BytesToCapturePerPacket: c.BytesToCapturePerPacket,
		TotalBytesPerSession:    c.TotalBytesPerSession,
		TimeLimitInSeconds:      c.TimeLimitInSeconds,
		Filters:                 filters,
		FilterExpression:        fill(c.FilterExpression),
		ContinuousCapture:       c.ContinuousCapture,
		CaptureSettings:         c.CaptureSettings,
		Format:                  c.Format,
		PreTriggerSeconds:       c.PreTriggerSeconds,
		IncludeMetadata:         c.IncludeMetadata,
	}
	p.StorageLocation.StorageID = storageID
	if storageID == "" {
		p.StorageLocation.LocalPath = localPath
	}
	return p
}

// Validate checks the responder; the error names the field and the reason.
func (r *Responder) Validate() error {
	if strings.TrimSpace(r.Name) == "" || len(r.Name) > MaxAlertNameLength {
		return Errorf(EINVALID, "name: must be 1 to %d characters", MaxAlertNameLength)
	}
	// The name is a URL path segment (/api/functions/{name}).
	if strings.ContainsAny(r.Name, "/?#%\\ \t\n") {
		return Errorf(EINVALID, "name: %q must not contain /, ?, #, %%, \\ or spaces", clip(r.Name))
	}
	if n := r.Capture.Name; n != "" && (len(n) > 80 || strings.ContainsAny(n, "/?#%\\ \t\n")) {
		return Errorf(EINVALID, "capture.name: %q must be 1 to 80 characters without /, ?, #, %%, \\ or spaces", clip(n))
	}
	switch r.NameConflict {
	case "", ConflictReplace, ConflictUnique, ConflictSkip:
	default:
		return Errorf(EINVALID, "nameConflict: %q is not one of replace, unique, skip", clip(string(r.NameConflict)))
	}
	if r.Limit < 0 || r.Limit > 10000 {
		return Errorf(EINVALID, "limit: %d is outside 0..10000", r.Limit)
	}
	if r.CooldownMinutes < 0 || r.CooldownMinutes > MaxResponderCooldownMinutes {
		return Errorf(EINVALID, "cooldownMinutes: %d is outside 0..%d", r.CooldownMinutes, MaxResponderCooldownMinutes)
	}
	for i, l := range r.TargetLabels {
		if strings.TrimSpace(l) == "" {
			return Errorf(EINVALID, "targetLabels[%d]: empty", i)
		}
	}
	if o := r.BodyOverrides; o != nil {
		for i, a := range o.StorageAccounts {
			if strings.TrimSpace(a) == "" {
				return Errorf(EINVALID, "bodyOverrides.storageAccounts[%d]: empty", i)
			}
		}
		if o.MaxTimeLimitInSeconds < 0 || o.MaxTimeLimitInSeconds > MaxTimeLimitInSeconds {
			return Errorf(EINVALID, "bodyOverrides.maxTimeLimitInSeconds: %d is outside 0..%d", o.MaxTimeLimitInSeconds, MaxTimeLimitInSeconds)
		}
	}
	own := ActionGroup{WebhookReceivers: r.NotifyWebhookReceivers, EmailReceivers: r.NotifyEmailReceivers}
	if err := checkReceivers("notify", own.Receivers()); err != nil {
		return err
	}
	// The template is checked as the capture it becomes, with a stand-in
	// host for the placeholders and the target.
	storage := ""
	if r.Capture.StorageAccount != "" {
		storage = "/storageAccounts/" + r.Capture.StorageAccount
	}
	p := r.Capture.Parameters("template-host", "template-host", "192.0.2.1", storage, DefaultCaptureDir+"/template.cap")
	p.ApplyDefaults()
	if err := p.Validate(); err != nil {
		return Errorf(EINVALID, "capture.%s", ErrorMessage(err))
	}
	return nil
}

// ResponderKey is a function key: the secret a sender puts in ?code= or the
// x-functions-key header. Only its hash is stored; the secret is shown once,
// when it is created or rotated.
type ResponderKey struct {
	ID          string    `json:"id"`
	ResponderID string    `json:"responderId"`
	Name        string    `json:"name"`
	Hash        string    `json:"-"`
	CreatedAt   time.Time `json:"createdAt"`
	// Secret is set only in the answer to create/rotate.
	Secret string `json:"secret,omitempty"`
}

// Run decisions.
const (
	// DecisionPending: accepted, the work is under way.
	DecisionPending = "pending"
	// DecisionStarted: a capture was created.
	DecisionStarted = "started"
	// DecisionStopped: a Resolved alert stopped the capture early.
	DecisionStopped = "stopped"
	// DecisionSkipped: nothing started, for the recorded reason (limit,
	// cooldown, name taken, disabled, resolved without stop, …).
	DecisionSkipped = "skipped"
	// DecisionDuplicate: a redelivery of an alert already handled.
	DecisionDuplicate = "duplicate"
	// DecisionUnresolved: the target matched no host.
	DecisionUnresolved = "unresolved"
	// DecisionFailed: an error prevented the capture.
	DecisionFailed = "failed"
)

// ResponderRunHost is what a run did on one target host.
type ResponderRunHost struct {
	HostID      string `json:"hostId,omitempty"`
	HostName    string `json:"hostName,omitempty"`
	Decision    string `json:"decision"`
	Reason      string `json:"reason,omitempty"`
	CaptureID   string `json:"captureId,omitempty"`
	CaptureName string `json:"captureName,omitempty"`
	// Notification is where telling the run's notify action group of the
	// capture's completion stands: "" (nothing to tell), pending, sent or
	// failed. A pending one survives a restart of the server.
	Notification string `json:"notification,omitempty"`
	// Notified is when the notify action group was told of completion.
	Notified *time.Time `json:"notifiedAt,omitempty"`
}

// Notification states of a run's host.
const (
	// NotifyPending: the capture's completion is awaited, then told.
	NotifyPending = "pending"
	// NotifySent: every receiver of the group was told.
	NotifySent = "sent"
	// NotifyFailed: a receiver could not be told (the run's errors say why).
	NotifyFailed = "failed"
)

// ResponderRun records one invocation of a responder for one alert.
type ResponderRun struct {
	ID          string `json:"id"`
	ResponderID string `json:"responderId"`
	// Source is "internal" (an action group) or "http" (inbound).
	Source string `json:"source"`
	Format string `json:"format"`
	// IdempotencyKey identifies the alert delivery; "" when the payload
	// has none. Runs of a responder have distinct non-empty keys.
	IdempotencyKey string           `json:"idempotencyKey,omitempty"`
	AlertKey       string           `json:"alertKey,omitempty"`
	Condition      MonitorCondition `json:"condition"`
	Summary        string           `json:"summary,omitempty"`
	// Targets is the input's target summary (resource ids, names, labels).
	Targets  string             `json:"targets,omitempty"`
	Decision string             `json:"decision"`
	Reason   string             `json:"reason,omitempty"`
	Hosts    []ResponderRunHost `json:"hosts,omitempty"`
	Errors   []string           `json:"errors,omitempty"`
	// NotifyActionGroup is the group told of the run's completed captures:
	// the responder's when the run was decided.
	NotifyActionGroup string `json:"notifyActionGroup,omitempty"`

	ReceivedAt time.Time  `json:"receivedAt"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`

	// Trigger is the alert as the responder received it, normalized (a
	// responder.Trigger), kept so that a run accepted but not yet decided
	// when the server stopped is decided after it starts again.
	Trigger json.RawMessage `json:"-"`
	// Owner is the server instance working on the run and LeaseUntil when
	// its claim ends unless renewed (see ClaimResponderRuns); "" when no
	// one holds it. Kept by the store, not part of the API.
	Owner      string    `json:"-"`
	LeaseUntil time.Time `json:"-"`
}

// Open reports whether the run has work left: a decision, or a
// notification of a capture's completion.
func (r *ResponderRun) Open() bool {
	if r.Decision == DecisionPending {
		return true
	}
	for _, h := range r.Hosts {
		if h.Notification == NotifyPending {
			return true
		}
	}
	return false
}

// ResponderFilter selects responders; nil fields select all.
type ResponderFilter struct {
	ID *string
	// Name matches regardless of case.
	Name *string
}

// ResponderRunFilter selects runs, newest first (by receivedAt, then id).
type ResponderRunFilter struct {
	ID          *string
	ResponderID *string
	AlertKey    *string
	// Since keeps runs received at or after it.
	Since *time.Time
	Limit int
}

// ResponderStore persists responders, their keys and their runs. Store
// embeds it; sqlite and postgres implement it and pass storetest's
// Responder subtests. Errors are *Error: malformed ids EINVALID, unknown
// ids ENOTFOUND.
type ResponderStore interface {
	// CreateResponder inserts r, whose ID the caller sets, with Version 1;
	// zero times become now. ECONFLICT when the id or the name (in any
	// case) is taken.
	CreateResponder(ctx context.Context, r *Responder) error
	// UpdateResponder replaces the responder with r.ID (name included;
	// ECONFLICT when the new name is taken) if its stored version is
	// expectVersion (else EPRECONDITION), setting UpdatedAt to now and
	// r.Version to the next version.
	UpdateResponder(ctx context.Context, r *Responder, expectVersion int64) error
	// FindResponders lists the responders f selects, ordered by name.
	FindResponders(ctx context.Context, f ResponderFilter) ([]*Responder, error)
	// FindResponder returns the one responder f selects, ENOTFOUND when none.
	FindResponder(ctx context.Context, f ResponderFilter) (*Responder, error)
	// DeleteResponder removes a responder with its keys; its runs stay.
	DeleteResponder(ctx context.Context, id string) error

	// CreateResponderKey stores a key (its hash). ECONFLICT when the id,
	// the hash, or the name within the responder is taken; ENOTFOUND when
	// the responder is unknown.
	CreateResponderKey(ctx context.Context, k *ResponderKey) error
	// FindResponderKeys lists a responder's keys, ordered by name.
	FindResponderKeys(ctx context.Context, responderID string) ([]*ResponderKey, error)
	// FindResponderKeyByHash returns the key with this hash, ENOTFOUND when none.
	FindResponderKeyByHash(ctx context.Context, hash string) (*ResponderKey, error)
	// DeleteResponderKey revokes a key. ENOTFOUND when unknown.
	DeleteResponderKey(ctx context.Context, id string) error

	// CreateResponderRun inserts a run with its Trigger. When r.Owner is
	// set the run is created claimed by it, leased for lease on the
	// database's clock (r.LeaseUntil is set to the lease's end). ECONFLICT
	// when the responder already has a run with the same non-empty
	// IdempotencyKey: that is how a redelivered alert is recognised,
	// atomically, across replicas.
	CreateResponderRun(ctx context.Context, r *ResponderRun, lease time.Duration) error
	// UpdateResponderRun replaces the run with r.ID, fenced by its lease:
	// only while owner holds a lease on it that has not ended by the
	// database's clock. Otherwise ECONFLICT with ErrLeaseLost, so a server
	// whose lease lapsed cannot overwrite the new holder's record. Its
	// Trigger and claim stay as stored. ENOTFOUND when unknown.
	UpdateResponderRun(ctx context.Context, r *ResponderRun, owner string) error
	// FindResponderRuns lists the runs f selects, newest first.
	FindResponderRuns(ctx context.Context, f ResponderRunFilter) ([]*ResponderRun, error)

	// ClaimResponderRuns hands owner up to limit open runs (Open) that no
	// one holds — no owner, or a lease that has ended — oldest first,
	// leased for lease, and returns them. Leases start and end on the
	// database's clock, never a caller's, so replicas whose clocks differ
	// agree on who holds a run. While a lease lasts no other owner gets the
	// run, across replicas: that is what makes one server, and one only,
	// resume a run another left.
	ClaimResponderRuns(ctx context.Context, owner string, lease time.Duration, limit int) ([]*ResponderRun, error)
	// ClaimResponderRun takes or renews one open run for owner, for lease
	// on the database's clock: when no one holds it, owner does, or the
	// lease has ended. ECONFLICT when another owner's lease lasts or the
	// run has no work left; ENOTFOUND when unknown.
	ClaimResponderRun(ctx context.Context, id, owner string, lease time.Duration) error
	// ReleaseResponderRuns ends owner's claims (a clean shutdown), so
	// another server takes the work at once instead of when leases end.
	ReleaseResponderRuns(ctx context.Context, owner string) error
}

// ErrLeaseLost is the message of the ECONFLICT UpdateResponderRun returns
// when the writer no longer holds the run's lease: another server may have
// taken the run over, and its record is that server's to write.
const ErrLeaseLost = "the lease on the responder run was lost: another server may hold it now"

// String names the run for logs.
func (r *ResponderRun) String() string {
	return fmt.Sprintf("run %s of responder %s (%s, %s)", r.ID, r.ResponderID, r.Format, r.Condition)
}
