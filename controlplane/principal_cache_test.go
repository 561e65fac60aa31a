package controlplane

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// TestPrincipalCacheRevocationWins: a credential read from the store just
// before its host's credentials are revoked is not cached after the
// revocation, where it would be accepted for up to a minute more.
func TestPrincipalCacheRevocationWins(t *testing.T) {
	var c principalCache
	now := time.Now()
	p := &tripcap.Principal{ID: "cred", HostID: "h1", Kind: tripcap.PrincipalAgent}
	_, gen, ok := c.get("hash", now)
	if ok {
		t.Fatal("an empty cache answered")
	}
	c.revokeHost("h1") // while the store was being read
	c.put("hash", p, gen, now)
	if _, _, ok := c.get("hash", now); ok {
		t.Fatal("a credential read before its revocation was cached after it")
	}
	_, gen, _ = c.get("hash", now)
	c.put("hash", p, gen, now)
	if got, _, ok := c.get("hash", now); !ok || got != p {
		t.Fatal("a credential read after the revocation was not cached")
	}
}
