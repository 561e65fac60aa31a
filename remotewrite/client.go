package remotewrite

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/tlscert"
)

// HTTPConfig is how tripcap reaches the remote store, for writes and
// reads alike. Secrets are never in it as flag values: the bearer token
// is read from a file (again for each request, so a rotated token is used
// at once), the basic-auth password comes from the environment.
type HTTPConfig struct {
	// BearerTokenFile holds the token sent as Authorization: Bearer.
	BearerTokenFile string
	// Username and Password are basic auth (set neither with a token).
	Username, Password string
	// CAFile is a PEM bundle of the CAs the store's certificate is checked
	// against (default the system's).
	CAFile string
	// Timeout bounds one request (default 30 s for writes, 10 s for reads).
	Timeout time.Duration
}

// client is an HTTP client with the store's authentication.
type client struct {
	http *http.Client
	cfg  HTTPConfig
}

func newClient(cfg HTTPConfig, timeout time.Duration) (*client, error) {
	if cfg.BearerTokenFile != "" && (cfg.Username != "" || cfg.Password != "") {
		return nil, tripcap.Errorf(tripcap.EINVALID, "remote auth: a bearer token file and basic auth are exclusive")
	}
	if cfg.Password != "" && cfg.Username == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "remote auth: a password without a user name")
	}
	if cfg.BearerTokenFile != "" {
		if _, err := readToken(cfg.BearerTokenFile); err != nil {
			return nil, err
		}
	}
	if cfg.Timeout > 0 {
		timeout = cfg.Timeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	if cfg.CAFile != "" {
		pool, err := tlscert.LoadPool(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("remote CA file: %w", err)
		}
		tr.TLSClientConfig = tlscert.ClientConfig(pool)
	}
	return &client{http: &http.Client{Transport: tr, Timeout: timeout,
		// A redirect would carry the credentials elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, cfg: cfg}, nil
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("remote bearer token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", tripcap.Errorf(tripcap.EINVALID, "remote bearer token file %s: empty", path)
	}
	return t, nil
}

// authorize sets the request's credentials.
func (c *client) authorize(req *http.Request) error {
	switch {
	case c.cfg.BearerTokenFile != "":
		t, err := readToken(c.cfg.BearerTokenFile)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+t)
	case c.cfg.Username != "":
		req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	}
	return nil
}

// checkURL refuses a URL that is not http(s) or that carries credentials
// (they belong in the token file or the environment, never in a flag a
// process listing shows); the error names field.
func checkURL(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "%s: %q is not an http(s) URL", field, tripcap.RedactURL(raw))
	}
	if u.User != nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "%s: credentials in the URL; use the bearer token file or the basic-auth environment variables", field)
	}
	return u, nil
}
