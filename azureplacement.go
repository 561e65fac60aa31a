package tripcap

import (
	"strings"
	"unicode"
)

// Limits of Azure's resource groups and tags.
const (
	MaxResourceGroupLength = 90
	MaxTags                = 50
	MaxTagNameLength       = 512
	MaxTagValueLength      = 256
)

// AzurePlacement is where an alert rule or action group is filed in the
// Azure-compatible API: Azure scopes metricAlerts and actionGroups to a
// subscription and resource group, and gives them tags. Names stay unique
// on the server whatever the placement (the native API finds rules and
// groups by name alone). Empty SubscriptionID and ResourceGroup mean the
// server's own (the ones hosts without azure.* labels get).
type AzurePlacement struct {
	SubscriptionID string            `json:"subscriptionId,omitempty"`
	ResourceGroup  string            `json:"resourceGroup,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
}

// Inherit keeps cur's placement where p leaves it unset: an update through
// the native API, which knows nothing of placements, must not move a rule
// out of the resource group it was filed in or drop its tags.
func (p *AzurePlacement) Inherit(cur AzurePlacement) {
	if p.SubscriptionID == "" && p.ResourceGroup == "" {
		p.SubscriptionID, p.ResourceGroup = cur.SubscriptionID, cur.ResourceGroup
	}
	if p.Tags == nil {
		p.Tags = cur.Tags
	}
}

// Placed reports whether p is in subscription sub and, when group is not
// empty, resource group group; empty fields of p are the defaults given.
// Both compare regardless of case, as ARM does.
func (p AzurePlacement) Placed(sub, group, defaultSub, defaultGroup string) bool {
	s, g := p.SubscriptionID, p.ResourceGroup
	if s == "" {
		s = defaultSub
	}
	if g == "" {
		g = defaultGroup
	}
	return strings.EqualFold(s, sub) && (group == "" || strings.EqualFold(g, group))
}

// ValidatePlacement checks the placement's names and tags; the error names the field.
func (p AzurePlacement) ValidatePlacement() error {
	if (p.SubscriptionID == "") != (p.ResourceGroup == "") {
		return Errorf(EINVALID, "subscriptionId, resourceGroup: give both or neither (neither: the server's own)")
	}
	if p.SubscriptionID != "" {
		if len(p.SubscriptionID) > 64 || strings.ContainsAny(p.SubscriptionID, "/?#% \t\n\x00") {
			return Errorf(EINVALID, "subscriptionId: %q is not a subscription id", clip(p.SubscriptionID))
		}
		if err := ValidateResourceGroup("resourceGroup", p.ResourceGroup); err != nil {
			return err
		}
	}
	if len(p.Tags) > MaxTags {
		return Errorf(EINVALID, "tags: %d tags; at most %d", len(p.Tags), MaxTags)
	}
	for k, v := range p.Tags {
		if k == "" || len(k) > MaxTagNameLength || strings.ContainsAny(k, "<>%&\\?/\x00") {
			return Errorf(EINVALID, "tags: %q is not a tag name (1 to %d characters, none of < > %% & \\ ? /)", clip(k), MaxTagNameLength)
		}
		if len(v) > MaxTagValueLength || strings.ContainsRune(v, 0) {
			return Errorf(EINVALID, "tags[%q]: longer than %d characters", clip(k), MaxTagValueLength)
		}
	}
	return nil
}

// ValidateResourceGroup checks a resource group name as Azure does: 1 to 90
// letters, digits, '-', '_', '.', '(' and ')', not ending in '.'.
func ValidateResourceGroup(field, name string) error {
	if name == "" || len(name) > MaxResourceGroupLength {
		return Errorf(EINVALID, "%s: must be 1 to %d characters", field, MaxResourceGroupLength)
	}
	if strings.HasSuffix(name, ".") {
		return Errorf(EINVALID, "%s: %q ends in '.'", field, clip(name))
	}
	for _, r := range name {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_.()", r)) {
			return Errorf(EINVALID, "%s: %q has %q; use letters, digits, '-', '_', '.', '(' or ')'", field, clip(name), r)
		}
	}
	return nil
}
