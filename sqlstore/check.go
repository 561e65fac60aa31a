package sqlstore

import (
	"cmp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tripcap/tripcap"
)

// maxIDLen bounds ids and cursors; tripcap.NewID makes 26 characters.
const maxIDLen = 64

// CheckID returns EINVALID unless id looks like an id: 1 to 64 letters,
// digits, '-' or '_'. what names the id in the message ("host id").
func CheckID(what, id string) error {
	if id == "" {
		return tripcap.Errorf(tripcap.EINVALID, "%s: required", what)
	}
	if len(id) > maxIDLen {
		return tripcap.Errorf(tripcap.EINVALID, "%s: longer than %d characters", what, maxIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return tripcap.Errorf(tripcap.EINVALID, "%s: %q is not an id (letters, digits, '-' and '_')", what, id)
		}
	}
	return nil
}

// checkText refuses what a text column cannot hold (PostgreSQL's text takes
// neither NUL nor invalid UTF-8), so both stores accept the same strings.
func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return tripcap.Errorf(tripcap.EINVALID, "%s: %q is not valid UTF-8", field, s)
	}
	if strings.ContainsRune(s, 0) {
		return tripcap.Errorf(tripcap.EINVALID, "%s: %q contains a NUL character", field, s)
	}
	return nil
}

// checkTexts runs checkText on field/value pairs.
func checkTexts(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := checkText(pairs[i], pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// CheckLocation checks a watcher's location.
func CheckLocation(location string) error {
	if location == "" {
		return tripcap.Errorf(tripcap.EINVALID, "location: required")
	}
	return checkText("location", location)
}

// CheckSubscription checks a watcher's subscription id.
func CheckSubscription(subscription string) error {
	if subscription == "" {
		return tripcap.Errorf(tripcap.EINVALID, "subscriptionId: required")
	}
	return checkText("subscriptionId", subscription)
}

// CheckWatcher checks a watcher a user creates: an id, a name, a
// subscription, a group and a location, valid tags and limit.
func CheckWatcher(w *tripcap.NetworkWatcher) error {
	if err := CheckID("watcher id", w.ID); err != nil {
		return err
	}
	for _, f := range []struct{ field, value string }{{"name", w.Name}, {"resourceGroup", w.ResourceGroup}} {
		if f.value == "" {
			return tripcap.Errorf(tripcap.EINVALID, "%s: required", f.field)
		}
		if err := checkText(f.field, f.value); err != nil {
			return err
		}
	}
	if err := CheckSubscription(w.SubscriptionID); err != nil {
		return err
	}
	if err := CheckLocation(w.Location); err != nil {
		return err
	}
	if w.CreatedAt.IsZero() {
		return tripcap.Errorf(tripcap.EINVALID, "createdAt: required")
	}
	if err := CheckTags(w.Tags); err != nil {
		return err
	}
	return CheckWatcherLimit(w.MaxCaptures)
}

// CheckTags checks ARM tags: at most 50, names of 1 to 512 and values of at
// most 256 characters, as Azure allows.
func CheckTags(tags map[string]string) error {
	if len(tags) > 50 {
		return tripcap.Errorf(tripcap.EINVALID, "tags: %d tags, at most 50", len(tags))
	}
	for k, v := range tags {
		if k == "" || len(k) > 512 || len(v) > 256 {
			return tripcap.Errorf(tripcap.EINVALID, "tags: %.64q: a name is 1 to 512 characters, a value at most 256", k)
		}
		if err := checkTexts("tags", k, "tags", v); err != nil {
			return err
		}
	}
	return nil
}

// CheckPage checks a listing's cursor (an id from a previous page, or "") and limit.
func CheckPage(cursor string, limit int) error {
	if cursor != "" {
		if err := CheckID("cursor", cursor); err != nil {
			return tripcap.Errorf(tripcap.EINVALID, "cursor: %q is not a cursor from a previous page", cursor)
		}
	}
	if limit < 0 {
		return tripcap.Errorf(tripcap.EINVALID, "limit: %d is negative", limit)
	}
	return nil
}

// VMID is an Azure VM resource id, split; the stores match it case-insensitively.
type VMID struct{ Subscription, Group, Name string }

// CheckHostFilter checks f and splits its ResourceID, if any.
func CheckHostFilter(f tripcap.HostFilter) (*VMID, error) {
	if f.ID != nil {
		if err := CheckID("host id", *f.ID); err != nil {
			return nil, err
		}
	}
	if f.Name != nil && *f.Name == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "host name: must not be empty")
	}
	if f.Location != nil && *f.Location == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "location: must not be empty")
	}
	if f.Name != nil {
		if err := checkText("host name", *f.Name); err != nil {
			return nil, err
		}
	}
	if f.Location != nil {
		if err := checkText("location", *f.Location); err != nil {
			return nil, err
		}
	}
	for _, t := range []struct {
		what string
		v    *string
	}{{"subscription id", f.SubscriptionID}, {"resource group", f.ResourceGroup}} {
		if t.v == nil {
			continue
		}
		if *t.v == "" {
			return nil, tripcap.Errorf(tripcap.EINVALID, "%s: must not be empty", t.what)
		}
		if err := checkText(t.what, *t.v); err != nil {
			return nil, err
		}
	}
	if f.State != nil && *f.State != tripcap.HostOnline && *f.State != tripcap.HostOffline {
		return nil, tripcap.Errorf(tripcap.EINVALID, "state: %q is not one of Online, Offline", *f.State)
	}
	if err := CheckPage(f.Cursor, f.Limit); err != nil {
		return nil, err
	}
	if f.ResourceID == nil {
		return nil, nil
	}
	sub, group, name, ok := tripcap.ParseVMResourceID(*f.ResourceID)
	if !ok || checkText("resourceId", *f.ResourceID) != nil {
		return nil, tripcap.Errorf(tripcap.EINVALID,
			"resourceId: %q is not a virtual machine id (/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name})", *f.ResourceID)
	}
	return &VMID{sub, group, name}, nil
}

// CheckCaptureFilter checks f.
func CheckCaptureFilter(f tripcap.CaptureFilter) error {
	for _, id := range []struct {
		what string
		v    *string
	}{{"capture id", f.ID}, {"watcher id", f.WatcherID}, {"host id", f.HostID}} {
		if id.v != nil {
			if err := CheckID(id.what, *id.v); err != nil {
				return err
			}
		}
	}
	if f.ScaleSetID != nil && *f.ScaleSetID != "" {
		if err := CheckID("scale-set capture id", *f.ScaleSetID); err != nil {
			return err
		}
	}
	if f.Name != nil {
		if *f.Name == "" {
			return tripcap.Errorf(tripcap.EINVALID, "capture name: must not be empty")
		}
		if err := checkText("capture name", *f.Name); err != nil {
			return err
		}
	}
	return CheckPage(f.Cursor, f.Limit)
}

// CheckHost checks a host about to be created and fills defaults: State
// Offline and CreatedAt/UpdatedAt now when unset.
func CheckHost(h *tripcap.Host, now time.Time) error {
	if err := CheckID("host id", h.ID); err != nil {
		return err
	}
	if h.Name == "" {
		return tripcap.Errorf(tripcap.EINVALID, "host name: required")
	}
	if err := checkTexts("host name", h.Name, "location", h.Location, "subscriptionId", h.SubscriptionID, "resourceGroup", h.ResourceGroup); err != nil {
		return err
	}
	switch h.State {
	case "":
		h.State = tripcap.HostOffline
	case tripcap.HostOnline, tripcap.HostOffline:
	default:
		return tripcap.Errorf(tripcap.EINVALID, "state: %q is not one of Online, Offline", h.State)
	}
	fillTimes(&h.CreatedAt, &h.UpdatedAt, now)
	return nil
}

// CheckCapture checks a capture about to be created or updated and fills
// CreatedAt/UpdatedAt with now when unset.
func CheckCapture(c *tripcap.PacketCapture, now time.Time) error {
	if err := CheckID("capture id", c.ID); err != nil {
		return err
	}
	if c.Name == "" {
		return tripcap.Errorf(tripcap.EINVALID, "capture name: required")
	}
	if err := checkTexts("capture name", c.Name, "packetCaptureStatus", string(c.Status), "desiredState", string(c.Desired)); err != nil {
		return err
	}
	if err := CheckID("watcher id", c.WatcherID); err != nil {
		return err
	}
	// A scale-set capture has no host; its sessions have one each.
	if !c.IsScaleSet() {
		if err := CheckID("host id", c.HostID); err != nil {
			return err
		}
	}
	if c.ScaleSetID != "" {
		if err := CheckID("scale-set capture id", c.ScaleSetID); err != nil {
			return err
		}
	}
	fillTimes(&c.CreatedAt, &c.UpdatedAt, now)
	return nil
}

// CheckJoinToken checks a join token about to be stored.
func CheckJoinToken(t *tripcap.JoinToken, now time.Time) error {
	if err := CheckID("join token id", t.ID); err != nil {
		return err
	}
	if t.Hash == "" {
		return tripcap.Errorf(tripcap.EINVALID, "join token hash: required")
	}
	if err := checkText("join token hash", t.Hash); err != nil {
		return err
	}
	if t.UsesLeft < 1 {
		return tripcap.Errorf(tripcap.EINVALID, "join token uses: %d is less than 1", t.UsesLeft)
	}
	if err := checkText("join token host name", t.HostName); err != nil {
		return err
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	return nil
}

// CheckCredential checks a credential about to be stored.
func CheckCredential(c *tripcap.Credential, now time.Time) error {
	if err := CheckID("credential id", c.ID); err != nil {
		return err
	}
	if c.Hash == "" {
		return tripcap.Errorf(tripcap.EINVALID, "credential hash: required")
	}
	if c.Role == "" {
		return tripcap.Errorf(tripcap.EINVALID, "credential role: required")
	}
	if err := checkTexts("credential hash", c.Hash, "credential name", c.Name, "credential role", string(c.Role)); err != nil {
		return err
	}
	if c.HostID != "" {
		if err := CheckID("credential host id", c.HostID); err != nil {
			return err
		}
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	return nil
}

// CheckWatcherLimit checks a watcher's parallel-capture limit.
func CheckWatcherLimit(maxCaptures int) error {
	if maxCaptures < 0 {
		return tripcap.Errorf(tripcap.EINVALID, "maxCaptures: %d is negative", maxCaptures)
	}
	return nil
}

func fillTimes(created, updated *time.Time, now time.Time) {
	if created.IsZero() {
		*created = now
	}
	if updated.IsZero() {
		*updated = *created
	}
}

// Page trims rows fetched with limit+1 to limit and returns the cursor of
// the next page: the last row's id when a further row exists, else "".
func Page[T any](rows []T, limit int, id func(T) string) ([]T, string) {
	if limit <= 0 || len(rows) <= limit {
		return rows, ""
	}
	rows = rows[:limit]
	return rows, id(rows[limit-1])
}

// FetchLimit is the LIMIT to query for a page of limit rows: one more, to
// tell whether a next page exists; 0 (no limit) stays 0.
func FetchLimit(limit int) int {
	if limit <= 0 {
		return 0
	}
	return limit + 1
}

// DeletedAtChanged reports whether an update changes a capture's DeletedAt,
// at the microsecond precision every store keeps.
func DeletedAtChanged(old, new *time.Time) bool {
	if old == nil || new == nil {
		return (old == nil) != (new == nil)
	}
	return !old.Truncate(time.Microsecond).Equal(new.Truncate(time.Microsecond))
}

// CheckCaptureUpdate checks an update of old (as stored) to c.
func CheckCaptureUpdate(old, c *tripcap.PacketCapture, expectVersion int64) error {
	if old.Version != expectVersion {
		return CaptureVersion(c.ID, old.Version, expectVersion)
	}
	switch {
	case old.Name != c.Name:
		return CaptureFixed(c.ID, "name")
	case old.WatcherID != c.WatcherID:
		return CaptureFixed(c.ID, "watcherId")
	case old.HostID != c.HostID:
		return CaptureFixed(c.ID, "hostId")
	case old.ScaleSetID != c.ScaleSetID:
		return CaptureFixed(c.ID, "scaleSetCaptureId")
	}
	return nil
}

// ApplyProgress runs a batched progress update's fn on c and, when fn
// changed it, checks the change (CheckCaptureProgress, CheckCapture) and
// returns the document to store; nil when fn left c alone.
func ApplyProgress(c *tripcap.PacketCapture, fn func(*tripcap.PacketCapture) bool, now time.Time) ([]byte, error) {
	old := *c
	if !fn(c) {
		return nil, nil
	}
	if err := CheckCaptureProgress(&old, c); err != nil {
		return nil, err
	}
	if err := CheckCapture(c, now); err != nil {
		return nil, err
	}
	return EncodeCapture(c)
}

// CheckCaptureProgress checks that a batched progress update (UpdateCaptures)
// of old to c changed nothing that UpdateCapture treats with care: identity,
// desired state, deletion.
func CheckCaptureProgress(old, c *tripcap.PacketCapture) error {
	if err := CheckCaptureUpdate(old, c, c.Version); err != nil {
		return err
	}
	switch {
	case old.Desired != c.Desired:
		return captureNotProgress(c.ID, "desired")
	case DeletedAtChanged(old.DeletedAt, c.DeletedAt):
		return captureNotProgress(c.ID, "deletedAt")
	}
	return nil
}

// CheckWatcherRef checks FindWatcher's arguments: an id, a name, or both.
func CheckWatcherRef(id, name string) error {
	if id == "" && name == "" {
		return tripcap.Errorf(tripcap.EINVALID, "network watcher: give an id or a name")
	}
	if id != "" {
		if err := CheckID("watcher id", id); err != nil {
			return err
		}
	}
	return checkText("network watcher name", name)
}

// CheckClaimBatch checks ClaimResponderRuns' arguments: the lease, and a
// positive limit.
func CheckClaimBatch(owner string, lease time.Duration, limit int) error {
	if err := CheckClaim(owner, lease); err != nil {
		return err
	}
	if limit <= 0 {
		return tripcap.Errorf(tripcap.EINVALID, "limit: %d is not positive", limit)
	}
	return nil
}

// SortClaimed orders claimed runs as they were received (oldest first).
func SortClaimed(runs []*tripcap.ResponderRun) {
	slices.SortFunc(runs, func(a, b *tripcap.ResponderRun) int {
		return cmp.Or(a.ReceivedAt.Compare(b.ReceivedAt), strings.Compare(a.ID, b.ID))
	})
}

// CheckClaim checks a responder-run lease: who takes it and for how long.
func CheckClaim(owner string, lease time.Duration) error {
	if err := checkOwner(owner); err != nil {
		return err
	}
	if lease <= 0 {
		return tripcap.Errorf(tripcap.EINVALID, "lease: %s is not positive", lease)
	}
	return nil
}

func checkOwner(owner string) error {
	if owner == "" || strings.ContainsRune(owner, 0) || !utf8.ValidString(owner) {
		return tripcap.Errorf(tripcap.EINVALID, "owner: must be non-empty UTF-8 text without NUL")
	}
	return nil
}
