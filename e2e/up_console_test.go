//go:build linux

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/testenv"
)

// TestUpConsoleSignInLink runs `tripcap up` and follows the console link it
// prints: it signs a browser in once, over HTTPS with the server's CA, with
// the session cookie's flags, after its page's button is pressed (its GET
// spends nothing); a second browser gets nothing from it.
func TestUpConsoleSignInLink(t *testing.T) {
	testenv.RequireRoot(t)
	ns := netns.New(t).Namespace()
	dir := t.TempDir()
	env := append(os.Environ(), "TRIPCAP_CONFIG="+filepath.Join(dir, "config.json"))
	up := ns.Command(context.Background(), binary, "up", "--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0", "--name", "local")
	up.Env = env
	lines := startUp(t, up, dir)
	var link string
	for i := 0; i < 10 && link == "" && lines.Scan(); i++ {
		if rest, ok := strings.CutPrefix(lines.Text(), "console: "); ok {
			link, _, _ = strings.Cut(rest, " ")
		}
	}
	if !strings.HasPrefix(link, "https://127.0.0.1:") || !strings.Contains(link, "/signin/once/") {
		t.Fatalf("up printed no console link (got %q)", link)
	}
	go func() {
		for lines.Scan() {
		}
	}()
	ca, err := os.ReadFile(filepath.Join(dir, "data", "tls", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	browser := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		// The netns's loopback: each connection is dialled from inside it.
		dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = ns.Do(func() error {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DialContext: dial}
		return &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	get := func(c *http.Client, url string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	base := link[:strings.Index(link, "/signin/")]
	// A link preview's GET spends nothing and signs nothing in.
	if resp, _ := get(browser(), link); resp.StatusCode != 200 || sessionCookie(resp) != nil {
		t.Fatalf("the link's GET: %s, cookies %v", resp.Status, resp.Header["Set-Cookie"])
	}
	first := browser()
	resp, body := get(first, link)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("the link: %s, no sign-in button\n%s", resp.Status, body)
	}
	resp, err = first.PostForm(link, url.Values{"csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	session := sessionCookie(resp)
	if resp.StatusCode != http.StatusSeeOther || session == nil || !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("the link's button: %s, session cookie %v, want 303 and __Host-tripcap_session, Secure, HttpOnly, SameSite=Strict", resp.Status, resp.Header["Set-Cookie"])
	}
	admin, err := os.ReadFile(filepath.Join(dir, "data", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(session.Value, strings.TrimSpace(string(admin))) {
		t.Fatal("the session cookie holds the admin token")
	}
	if resp, body := get(first, base+"/"); resp.StatusCode != 200 || !strings.Contains(body, "<h1>Overview</h1>") {
		t.Fatalf("the console after the link: %s", resp.Status)
	}
	if resp, _ := get(browser(), link); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the link a second time: %s, want 404", resp.Status)
	}
}

// sessionCookie returns the console's session cookie an answer sets, or nil.
func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-tripcap_session" && c.Value != "" {
			return c
		}
	}
	return nil
}
