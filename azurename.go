package tripcap

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
)

// IsGUID reports whether s is a GUID as Azure writes its ids (tenants,
// subscriptions, role assignments): 8-4-4-4-12 hex digits, either case.
func IsGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// ValidateSubscriptionID refuses a subscription id that is not a GUID:
// every ARM id of a host is made of it.
func ValidateSubscriptionID(field, id string) error {
	if !IsGUID(id) {
		return Errorf(EINVALID, "%s: %q is not a subscription id: it must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", field, clip(id))
	}
	return nil
}

// ValidateResourceGroupName applies Azure's rule for a resource group's
// name: 1 to 90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'.
func ValidateResourceGroupName(field, name string) error {
	ok := len(name) >= 1 && len(name) <= 90 && !strings.HasSuffix(name, ".")
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-.()", c)) {
			ok = false
		}
	}
	if !ok {
		return Errorf(EINVALID, "%s: %q is not a resource group name: it must be 1 to 90 letters, digits, '_', '-', '.', '(' or ')', and not end in '.'", field, clip(name))
	}
	return nil
}

// GUIDNamespaceURL is RFC 9562's URL namespace for NameGUID.
var GUIDNamespaceURL = [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// NameGUID is the name-based GUID (RFC 9562 v5) of name in namespace ns:
// the same name always gives the same GUID, so nothing need be stored.
func NameGUID(ns [16]byte, name string) string {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	x := hex.EncodeToString(u)
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}
