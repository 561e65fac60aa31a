package tripcap

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// HostState says whether a host's agent is reporting.
type HostState string

const (
	HostOnline  HostState = "Online"
	HostOffline HostState = "Offline"
)

// Labels that set a host's ARM identity when present.
const (
	LabelResourceGroup = "azure.resourceGroup"
	LabelSubscription  = "azure.subscription"
	// LabelScaleSet names the scale set (Azure's virtualMachineScaleSets) the
	// host is an instance of, in its subscription and resource group.
	LabelScaleSet = "azure.scaleSet"
)

// Interface is a network interface on a host.
type Interface struct {
	Name      string   `json:"name"`
	Index     int      `json:"index"`
	MAC       string   `json:"mac,omitempty"`
	MTU       int      `json:"mtu,omitempty"`
	Up        bool     `json:"up"`
	Loopback  bool     `json:"loopback,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
}

// Inventory is what an agent reports about its host.
type Inventory struct {
	Hostname     string      `json:"hostname"`
	OS           string      `json:"os"`
	Kernel       string      `json:"kernel,omitempty"`
	AgentVersion string      `json:"agentVersion"`
	Interfaces   []Interface `json:"interfaces"`
}

// Addresses lists every address on the host's interfaces, without prefix lengths.
func (inv Inventory) Addresses() []string {
	var out []string
	for _, ifc := range inv.Interfaces {
		for _, a := range ifc.Addresses {
			if p, err := netip.ParsePrefix(a); err == nil {
				a = p.Addr().String()
			}
			out = append(out, a)
		}
	}
	return out
}

// Host is a machine running the tripcap agent (Azure's VM with the watcher extension).
type Host struct {
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	Location       string            `json:"location"`
	Labels         map[string]string `json:"labels,omitempty"`
	SubscriptionID string            `json:"subscriptionId"`
	ResourceGroup  string            `json:"resourceGroup"`
	Inventory      Inventory         `json:"inventory"`
	State          HostState         `json:"state"`
	LastSeen       time.Time         `json:"lastSeen"`
	// Revision increases whenever the captures assigned to the host change,
	// so an agent's long poll can tell whether it is up to date.
	Revision  int64     `json:"revision"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// ResourceID is the host's Azure-style VM resource id, so Azure-shaped alerts resolve to it.
func (h *Host) ResourceID() string {
	return VMResourceID(h.SubscriptionID, h.ResourceGroup, h.Name)
}

// VMResourceID builds an Azure virtual machine resource id.
func VMResourceID(subscription, group, vm string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s", subscription, group, vm)
}

// ParseVMResourceID splits an Azure VM resource id, case-insensitively as ARM does.
func ParseVMResourceID(id string) (subscription, group, vm string, ok bool) {
	return ParseResourceID(id, "Microsoft.Compute", "virtualMachines")
}

// ParseResourceID splits the id of a resource of provider and type
// (/subscriptions/S/resourceGroups/G/providers/PROVIDER/TYPE/NAME),
// case-insensitively as ARM does; ok is false for any other shape or an
// empty segment.
func ParseResourceID(id, provider, typ string) (subscription, group, name string, ok bool) {
	parts := strings.Split(strings.Trim(id, "/"), "/")
	if len(parts) != 8 || !strings.EqualFold(parts[0], "subscriptions") || !strings.EqualFold(parts[2], "resourceGroups") ||
		!strings.EqualFold(parts[4], "providers") || !strings.EqualFold(parts[5], provider) || !strings.EqualFold(parts[6], typ) ||
		parts[1] == "" || parts[3] == "" || parts[7] == "" {
		return "", "", "", false
	}
	return parts[1], parts[3], parts[7], true
}

// ValidateName checks a resource's name (a capture's, a storage
// account's, a function key's, a location): 1–80 characters of letters,
// digits, '-', '_' and '.', as Azure resource names allow, and not of an
// id's form, since resources are found by name or id.
func ValidateName(field, name string) error {
	if name == "" || len(name) > 80 {
		return Errorf(EINVALID, "%s: must be 1 to 80 characters", field)
	}
	if strings.Trim(name, ".") == "" {
		// "." and ".." would name a directory, not a resource, in file paths.
		return Errorf(EINVALID, "%s: %q is not a name", field, name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return Errorf(EINVALID, "%s: %q has %q; use letters, digits, '-', '_' or '.'", field, name, r)
		}
	}
	if IsID(name) {
		return Errorf(EINVALID, "%s: %q has the form of an id (26 lowercase letters and digits); give a name that is not one", field, name)
	}
	return nil
}

// ValidateHostName checks a host's name: a name (ValidateName) that does
// not look like an IP address either, since alerts name hosts by address
// too, and a host named after another's address would receive its
// captures.
func ValidateHostName(field, name string) error {
	if err := ValidateName(field, name); err != nil {
		return err
	}
	if _, err := netip.ParseAddr(name); err == nil || numericDotted(name) {
		return Errorf(EINVALID, "%s: %q is an IP address, not a name (alerts find hosts by address too); give a name", field, name)
	}
	return nil
}

// numericDotted reports whether s is digits and dots with a dot: an IPv4
// address in some notation ("010.0.0.5", "10.5") that resolvers may accept.
func numericDotted(s string) bool {
	return strings.Contains(s, ".") && strings.Trim(s, "0123456789.") == ""
}

// HostFilter selects hosts in a listing.
type HostFilter struct {
	ID         *string
	Name       *string
	Location   *string
	ResourceID *string
	// SubscriptionID and ResourceGroup select the hosts of an ARM
	// subscription and resource group, regardless of case as ARM's names.
	SubscriptionID *string
	ResourceGroup  *string
	State          *HostState
	Cursor         string
	Limit          int
}

// JoinToken lets one agent (or several, until it expires or is used up) enroll.
type JoinToken struct {
	ID        string    `json:"id"`
	Hash      string    `json:"-"`
	ExpiresAt time.Time `json:"expiresAt"`
	UsesLeft  int       `json:"usesLeft"`
	// HostName, when set, binds the token to that host: it enrolls that
	// name only, and may re-enroll it when it is enrolled already (an agent
	// that lost its state), revoking the old agent's credentials.
	HostName  string    `json:"hostName,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// Token is the secret, returned once at creation and never stored.
	Token string `json:"token,omitempty"`
}

// NetworkWatcher scopes captures per location of a subscription (Azure's
// NetworkWatcher_<location> in NetworkWatcherRG, or one a user created) and
// bounds how many run in parallel.
type NetworkWatcher struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Location string `json:"location"`
	// SubscriptionID and ResourceGroup place the watcher in Azure's
	// hierarchy; a watcher watches the hosts of its subscription and
	// location. SubscriptionID is "" for one from before subscriptions
	// whose location had no host: the first subscription to need that
	// location's watcher takes it.
	SubscriptionID string            `json:"subscriptionId"`
	ResourceGroup  string            `json:"resourceGroup"`
	Tags           map[string]string `json:"tags,omitempty"`
	MaxCaptures    int               `json:"maxCaptures"`
	CreatedAt      time.Time         `json:"createdAt"`
}

// WatcherResourceGroup is the resource group Azure puts the watchers it
// creates in.
const WatcherResourceGroup = "NetworkWatcherRG"

// WatcherName is the name Azure gives the watcher of a location.
func WatcherName(location string) string { return "NetworkWatcher_" + location }

// ResourceID is the watcher's Azure resource id.
func (w *NetworkWatcher) ResourceID() string {
	return "/subscriptions/" + w.SubscriptionID + "/resourceGroups/" + w.ResourceGroup + "/providers/Microsoft.Network/networkWatchers/" + w.Name
}

// HostFinder finds one host; every Store implements it.
type HostFinder interface {
	FindHost(ctx context.Context, f HostFilter) (*Host, error)
}

// FindHostByRef returns the host a user names, the one way every path
// resolves a host: by VM resource id when ref starts with "/", else by id,
// else by name. A name such as "web.example.com" is not an id (ids have no
// dots), so that lookup is skipped rather than failing the whole search.
func FindHostByRef(ctx context.Context, s HostFinder, ref string) (*Host, error) {
	if ref == "" {
		return nil, Errorf(EINVALID, "host: required")
	}
	filters := []HostFilter{{ID: &ref}, {Name: &ref}}
	if strings.HasPrefix(ref, "/") {
		filters = []HostFilter{{ResourceID: &ref}}
	}
	for _, f := range filters {
		h, err := s.FindHost(ctx, f)
		if code := ErrorCode(err); code == ENOTFOUND || (code == EINVALID && f.ID != nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("finding host %q: %w", ref, err)
		}
		return h, nil
	}
	return nil, NoHost(ref)
}

// NoHost is the ENOTFOUND of a host reference that names no host (or none
// the caller may see).
func NoHost(ref string) error {
	return Errorf(ENOTFOUND, "no host %q (give a host name, id or VM resource id)", ref)
}
