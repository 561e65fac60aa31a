package sqlstore

import (
	"strconv"
	"strings"

	"github.com/tripcap/tripcap"
)

// Where is the WHERE clause of a listing, with '?' placeholders (see Rebind).
type Where struct {
	conds []string
	Args  []any
}

// Add appends a condition and its arguments.
func (w *Where) Add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.Args = append(w.Args, args...)
}

// String is "" or " WHERE a AND b".
func (w *Where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// HostWhere selects the hosts of a checked filter (see CheckHostFilter);
// position is the dialect's Position.
func HostWhere(f tripcap.HostFilter, vm *VMID, position string) *Where {
	w := &Where{}
	if f.NameContains != nil {
		// Both sides folded by the database, so they fold alike.
		w.Add(position+"(lower(name), lower(?)) > 0", *f.NameContains)
	}
	if f.Label != nil {
		w.Add(position+"(CAST(labels AS TEXT), ?) > 0", LabelNeedle(*f.Label))
	}
	if f.ID != nil {
		w.Add("id = ?", *f.ID)
	}
	if f.Name != nil {
		// The exact name, found through the index of lower(name) (names
		// are unique in any case): "name = ?" alone scans every host.
		w.Add("lower(name) = lower(?) AND name = ?", *f.Name, *f.Name)
	}
	if f.Location != nil {
		w.Add("location = ?", *f.Location)
	}
	if f.State != nil {
		w.Add("state = ?", string(*f.State))
	}
	if f.SubscriptionID != nil {
		w.Add("lower(subscription_id) = lower(?)", *f.SubscriptionID)
	}
	if f.ResourceGroup != nil {
		w.Add("lower(resource_group) = lower(?)", *f.ResourceGroup)
	}
	if vm != nil {
		// lower() on both sides: the database folds case one way for both.
		w.Add("lower(name) = lower(?) AND lower(subscription_id) = lower(?) AND lower(resource_group) = lower(?)", vm.Name, vm.Subscription, vm.Group)
	}
	if f.Cursor != "" {
		w.Add("id > ?", f.Cursor)
	}
	return w
}

// NonTerminalCapture is the SQL condition of a capture whose status is not
// terminal (tripcap.PacketCaptureStatus.Terminal): CaptureFilter.ActiveOnly.
const NonTerminalCapture = "status NOT IN ('Stopped', 'Error')"

// ActiveCapture is the SQL condition of tripcap.PacketCapture.Active: the
// captures that count against a watcher's limit.
const ActiveCapture = "deleted_at IS NULL AND " + NonTerminalCapture

// CaptureWhere selects the captures of a checked filter.
func CaptureWhere(f tripcap.CaptureFilter) *Where {
	w := &Where{}
	if f.ID != nil {
		w.Add("id = ?", *f.ID)
	}
	if f.WatcherID != nil {
		w.Add("watcher_id = ?", *f.WatcherID)
	}
	if f.HostID != nil {
		w.Add("host_id = ?", *f.HostID)
	}
	if f.Name != nil {
		// Capture names ignore case, as ARM's do (the live-name index is
		// on lower(name)); lower() on both sides folds them alike.
		w.Add("lower(name) = lower(?)", *f.Name)
	}
	if f.ScaleSetID != nil {
		w.Add("scale_set_id = ?", *f.ScaleSetID)
	}
	if f.ActiveOnly {
		w.Add(NonTerminalCapture)
	}
	if !f.IncludeDeleted {
		w.Add("deleted_at IS NULL")
	}
	switch {
	case f.Cursor != "" && f.NewestFirst:
		w.Add("id < ?", f.Cursor)
	case f.Cursor != "":
		w.Add("id > ?", f.Cursor)
	}
	return w
}

// OrderLimitNewest is OrderLimit in descending order of id: newest first.
func OrderLimitNewest(n int) string {
	return strings.Replace(OrderLimit(n), " ORDER BY id", " ORDER BY id DESC", 1)
}

// OrderLimit is " ORDER BY id", with " LIMIT n" when n > 0.
func OrderLimit(n int) string {
	if n <= 0 {
		return " ORDER BY id"
	}
	return " ORDER BY id LIMIT " + strconv.Itoa(n)
}

// Rebind turns the '?' placeholders of query into PostgreSQL's $1, $2….
// Queries given to it have no '?' in literals.
func Rebind(query string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}
