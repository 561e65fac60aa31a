package tripcap

import (
	"context"
	"time"
)

// CaptureFilter selects captures in a listing. Deleted captures are left out
// unless IncludeDeleted is set.
type CaptureFilter struct {
	ID        *string
	WatcherID *string
	HostID    *string
	// Name matches regardless of case (names are unique among a
	// watcher's live captures regardless of case, as in ARM).
	Name *string
	// ScaleSetID selects the sessions of one scale-set capture; a pointer
	// to "" selects the captures that are no scale set's session (those
	// users name and list). nil selects both.
	ScaleSetID *string
	// ActiveOnly keeps captures whose status is not terminal (deleted ones
	// too when IncludeDeleted is set: an agent must still stop those).
	ActiveOnly     bool
	IncludeDeleted bool
	// NewestFirst orders by id descending (newest first); Cursor then
	// lists before its id.
	NewestFirst bool
	Cursor      string // list after this id
	Limit       int    // 0 means no limit
}

// Store persists tripcap's state. sqlite.Store and postgres.Store implement it
// and pass the same conformance suite (storetest). Methods return *Error with
// ENOTFOUND, ECONFLICT, ELIMIT or EPRECONDITION where the text says so, and
// ENOTFOUND for any unknown id, EINVALID for malformed ids, cursors or limits.
// Times are kept to the microsecond at least. Host names are unique
// regardless of case, so a (case-insensitive) ARM resource id names one host.
type Store interface {
	StorageAccountStore
	ScaleSetCaptureStore
	FileStore
	AlertStore
	ResponderStore
	IdentityStore
	AuditStore
	EnrollmentStore

	// CreateHost inserts h. ECONFLICT when the name is taken.
	CreateHost(ctx context.Context, h *Host) error
	// FindHosts lists hosts ordered by id, and the cursor of the next page ("" at the end).
	FindHosts(ctx context.Context, f HostFilter) ([]*Host, string, error)
	// FindHost returns the one host f selects, ENOTFOUND when none.
	FindHost(ctx context.Context, f HostFilter) (*Host, error)
	// CountHosts counts the hosts f selects (its Cursor and Limit aside).
	CountHosts(ctx context.Context, f HostFilter) (int, error)
	// HostRevision returns a host's revision alone (ENOTFOUND when there is
	// no such host): what a waiting long poll compares, thousands of times a
	// second, without decoding the host.
	HostRevision(ctx context.Context, id string) (int64, error)
	// UpdateHostInventory stores an agent's report and marks the host Online at seen.
	UpdateHostInventory(ctx context.Context, id string, inv Inventory, seen time.Time) error
	// TouchHosts records heartbeats in one batch: last seen (never moved back) and Online.
	TouchHosts(ctx context.Context, seen map[string]time.Time) error
	// MarkHostsOffline turns every Online host last seen before cutoff Offline
	// and returns them. Concurrent callers each get a host at most once.
	MarkHostsOffline(ctx context.Context, cutoff time.Time) ([]*Host, error)
	// DeleteHost removes a host; its captures stay for their files.
	DeleteHost(ctx context.Context, id string) error

	// CreateJoinToken stores a join token (its hash).
	CreateJoinToken(ctx context.Context, t *JoinToken) error
	// ConsumeJoinToken uses up one use of the token with this hash, atomically.
	// EUNAUTHORIZED when unknown, expired or used up.
	ConsumeJoinToken(ctx context.Context, hash string, now time.Time) (*JoinToken, error)
	// FindJoinTokens lists tokens still usable at now.
	FindJoinTokens(ctx context.Context, now time.Time) ([]*JoinToken, error)
	// DeleteJoinToken revokes a token. ENOTFOUND when unknown.
	DeleteJoinToken(ctx context.Context, id string) error

	// CreateCredential stores a credential (its hash). ECONFLICT when the hash exists.
	CreateCredential(ctx context.Context, c *Credential) error
	// FindCredentialByHash returns the credential with this hash, ENOTFOUND when none.
	FindCredentialByHash(ctx context.Context, hash string) (*Credential, error)
	// FindCredentials lists credentials with the given role ("" for all).
	FindCredentials(ctx context.Context, role Role) ([]*Credential, error)
	// DeleteCredentialsOfHost revokes every credential bound to the host, and
	// signals a change of the host to WatchHostChanges, so that every replica
	// forgets what it cached of those credentials.
	DeleteCredentialsOfHost(ctx context.Context, hostID string) error

	// EnsureWatcher returns the watcher of the subscription's location,
	// creating it (named WatcherName(location) in WatcherResourceGroup, with
	// maxCaptures) if it does not exist. Safe under concurrency.
	EnsureWatcher(ctx context.Context, subscription, location string, maxCaptures int) (*NetworkWatcher, error)
	// CreateWatcher stores a watcher a user names. ECONFLICT when its
	// subscription has one in that location or one of that name in that group.
	CreateWatcher(ctx context.Context, w *NetworkWatcher) error
	// SetWatcherTags replaces a watcher's tags. ENOTFOUND when unknown.
	SetWatcherTags(ctx context.Context, id string, tags map[string]string) error
	// DeleteWatcher removes a watcher. ECONFLICT while any capture (even
	// deleted: its files are indexed by it) refers to it; ENOTFOUND when unknown.
	DeleteWatcher(ctx context.Context, id string) error
	// FindWatcher returns a watcher by id or by name ("" to skip either).
	// ENOTFOUND when none; EINVALID when a name alone matches watchers of
	// several subscriptions.
	FindWatcher(ctx context.Context, id, name string) (*NetworkWatcher, error)
	// FindWatchers lists every watcher, ordered by name, subscription and group.
	FindWatchers(ctx context.Context) ([]*NetworkWatcher, error)
	// SetWatcherLimit changes a watcher's parallel-capture limit.
	SetWatcherLimit(ctx context.Context, id string, maxCaptures int) error

	// CreateCapture inserts c with Version 1 and bumps its host's revision, in
	// one transaction. ECONFLICT when a live capture of that name exists in the
	// watcher; ELIMIT when the watcher already has MaxCaptures active captures.
	CreateCapture(ctx context.Context, c *PacketCapture) error
	// FindCaptures lists captures ordered by id, and the cursor of the next page.
	FindCaptures(ctx context.Context, f CaptureFilter) ([]*PacketCapture, string, error)
	// CountCaptures counts what FindCaptures would list in all its pages
	// (f.Limit is ignored), without reading the captures.
	CountCaptures(ctx context.Context, f CaptureFilter) (int, error)
	// FindCapture returns the one capture f selects, ENOTFOUND when none.
	FindCapture(ctx context.Context, f CaptureFilter) (*PacketCapture, error)
	// UpdateCapture writes c if the stored version is expectVersion (else
	// EPRECONDITION), sets c.Version to the next version, and bumps the host's
	// revision when Desired or DeletedAt changed, in one transaction. Name,
	// WatcherID, HostID and CreatedAt cannot change (EINVALID).
	UpdateCapture(ctx context.Context, c *PacketCapture, expectVersion int64) error
	// UpdateCaptures calls fn on each capture of ids (deleted ones included)
	// and writes those fn says it changed, with their next version, all in
	// one transaction: the agents' once-a-second progress, batched. fn may
	// not change Desired, DeletedAt or what UpdateCapture keeps fixed
	// (EINVALID, nothing written). Ids that do not exist come back in missing.
	UpdateCaptures(ctx context.Context, ids []string, fn func(c *PacketCapture) bool) (missing []string, err error)

	// WatchHostChanges calls fn with the id of each host whose revision changed,
	// by this process or (for a shared database) any other, until ctx ends.
	// fn("") means changes may have been missed: it is called once the watch
	// is set up and after every reconnect, so the caller rechecks all.
	// It returns nil when ctx ends.
	WatchHostChanges(ctx context.Context, fn func(hostID string)) error

	Close() error
}
