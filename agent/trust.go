package agent

import (
	"crypto/x509"
	"errors"
	"io/fs"
	"net/url"
	"path/filepath"
	"sync/atomic"

	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/tlscert"
)

// How the agent trusts an https:// server, first match wins: --ca-file;
// when enrolling, the join token's fingerprint, pinned on first contact;
// the CA it pinned at enrollment (<state>/ca.pem); the system roots.

// trust is the client options for the server, and the CA a pin matched.
type trust struct {
	opts   []tchttp.ClientOption
	pinned *atomic.Pointer[x509.Certificate]
}

func (a *Agent) caPath() string { return filepath.Join(a.cfg.StateDir, "ca.pem") }

// trust chooses how to verify server; fingerprint is the join token's
// ("" when there is none or the agent is enrolled).
func (a *Agent) trust(server, fingerprint string) (trust, error) {
	t := trust{pinned: new(atomic.Pointer[x509.Certificate])}
	if u, err := url.Parse(server); err == nil && u.Scheme == "http" {
		if fingerprint != "" {
			a.log.Warn("the join token pins a CA but the server URL is http://: the connection is neither verified nor encrypted", "server", server)
		}
		return t, nil
	}
	if a.cfg.CAFile != "" {
		pool, err := tlscert.LoadPool(a.cfg.CAFile)
		if err != nil {
			return t, err
		}
		t.opts = append(t.opts, tchttp.WithTLSConfig(tlscert.ClientConfig(pool)))
		return t, nil
	}
	if fingerprint != "" {
		// Enrolling: the token's pin wins over a CA saved from another server.
		t.opts = append(t.opts, tchttp.WithTLSConfig(tlscert.PinnedConfig(fingerprint, t.pinned.Store)))
		return t, nil
	}
	pool, err := tlscert.LoadPool(a.caPath())
	switch {
	case err == nil:
		t.opts = append(t.opts, tchttp.WithTLSConfig(tlscert.ClientConfig(pool)))
	case !errors.Is(err, fs.ErrNotExist):
		return t, err
	}
	return t, nil
}
