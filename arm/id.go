package arm

import (
	"net/http"
	"strings"

	"github.com/tripcap/tripcap"
)

// ResourceID is a parsed ARM resource id:
// /subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{type}/{name}…].
type ResourceID struct {
	Subscription  string
	ResourceGroup string
	Namespace     string
	// Types and Names are the resource's type chain (networkWatchers,
	// packetCaptures) and names, one for one.
	Types []string
	Names []string
}

// ParseResourceID parses id as field names it in errors (400
// InvalidResourceId, LinkedInvalidPropertyId for a property).
func ParseResourceID(field, id string) (*ResourceID, error) {
	bad := func(why string) error {
		code := "InvalidResourceId"
		if field != "" {
			code = "LinkedInvalidPropertyId"
		}
		shown := id
		if len(shown) > 256 {
			shown = shown[:256] + "…"
		}
		return BadRequest(code, field, "Property id '%s' at path '%s' is invalid: %s.", shown, field, why)
	}
	if !strings.HasPrefix(id, "/") {
		return nil, bad("expected a fully qualified resource id that starts with '/subscriptions/{subscriptionId}'")
	}
	segs := strings.Split(strings.TrimPrefix(id, "/"), "/")
	if len(segs) < 2 || !strings.EqualFold(segs[0], "subscriptions") || segs[1] == "" {
		return nil, bad("expected '/subscriptions/{subscriptionId}' first")
	}
	r := &ResourceID{Subscription: segs[1]}
	if err := CheckSubscriptionID(r.Subscription); err != nil {
		return nil, bad("the subscription id is not a GUID")
	}
	rest := segs[2:]
	if len(rest) >= 2 && strings.EqualFold(rest[0], "resourceGroups") {
		r.ResourceGroup = rest[1]
		if err := CheckResourceGroupName(r.ResourceGroup); err != nil {
			return nil, bad("the resource group name is invalid")
		}
		rest = rest[2:]
	}
	if len(rest) == 0 {
		return r, nil
	}
	if len(rest) < 4 || !strings.EqualFold(rest[0], "providers") || len(rest[2:])%2 != 0 {
		return nil, bad("expected '/providers/{namespace}/{type}/{name}' after the resource group")
	}
	r.Namespace = rest[1]
	for i := 2; i < len(rest); i += 2 {
		if rest[i] == "" || rest[i+1] == "" {
			return nil, bad("empty type or name")
		}
		r.Types = append(r.Types, rest[i])
		r.Names = append(r.Names, rest[i+1])
	}
	return r, nil
}

// Is reports whether the id is of the namespace and type chain given
// (without case), e.g. Is("Microsoft.Compute", "virtualMachines").
func (r *ResourceID) Is(namespace string, types ...string) bool {
	if !strings.EqualFold(r.Namespace, namespace) || len(types) != len(r.Types) {
		return false
	}
	for i, t := range types {
		if !strings.EqualFold(t, r.Types[i]) {
			return false
		}
	}
	return true
}

// Name is the last name of the id ("" for a subscription or group).
func (r *ResourceID) Name() string {
	if len(r.Names) == 0 {
		return ""
	}
	return r.Names[len(r.Names)-1]
}

// String is the id in ARM's usual casing.
func (r *ResourceID) String() string {
	var b strings.Builder
	b.WriteString("/subscriptions/" + r.Subscription)
	if r.ResourceGroup != "" {
		b.WriteString("/resourceGroups/" + r.ResourceGroup)
	}
	if r.Namespace != "" {
		b.WriteString("/providers/" + r.Namespace)
		for i := range r.Types {
			b.WriteString("/" + r.Types[i] + "/" + r.Names[i])
		}
	}
	return b.String()
}

// CheckSubscriptionID refuses a subscription id that is not a GUID (400
// InvalidSubscriptionId).
func CheckSubscriptionID(id string) error {
	if !tripcap.IsGUID(id) {
		shown := id
		if len(shown) > 64 {
			shown = shown[:64] + "…"
		}
		return Errorf(http.StatusBadRequest, "InvalidSubscriptionId", "The provided subscription identifier '%s' is malformed or invalid.", shown)
	}
	return nil
}

// CheckResourceGroupName applies Azure's rule: 1 to 90 letters, digits,
// '_', '-', '.', '(' or ')', not ending in '.' (400 InvalidResourceGroup).
func CheckResourceGroupName(name string) error {
	if tripcap.ValidateResourceGroupName("resourceGroupName", name) != nil {
		return BadRequest("InvalidResourceGroup", "resourceGroupName",
			"The provided resource group name '%.90s' has these invalid characters or length: it must be 1 to 90 letters, digits, '_', '-', '.', '(' or ')', and not end in '.'.", name)
	}
	return nil
}

// CheckName applies the usual rule for a resource name (what Microsoft.Network
// asks): 1 to 80 letters, digits, '_', '-' or '.', starting with a letter or
// digit and ending with a letter, digit or '_' (400 InvalidResourceName).
func CheckName(kind, name string) error {
	ok := len(name) >= 1 && len(name) <= 80
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		switch {
		case !alnum && !strings.ContainsRune("_-.", c):
			ok = false
		case i == 0 && !alnum:
			ok = false
		case i == len(name)-1 && !alnum && c != '_':
			ok = false
		}
	}
	if !ok {
		return BadRequest("InvalidResourceName", kind,
			"Resource name '%.80s' is invalid: a %s name is 1 to 80 letters, digits, '_', '-' or '.', starting with a letter or digit and ending with a letter, digit or '_'.", name, kind)
	}
	return nil
}
