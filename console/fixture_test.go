package console_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup/webhooktest"
	"github.com/tripcap/tripcap/audit"
	"github.com/tripcap/tripcap/console"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/filestore"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/identity"
	"github.com/tripcap/tripcap/internal/logtest"
	"github.com/tripcap/tripcap/responder"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
)

// fixture is a real server (SQLite, the control plane, monitor, responders,
// identities, the API) with the console mounted, as `tripcap server` runs
// it; pages' tests drive it with browsers (cookie jars) of their own.
type fixture struct {
	url     string
	ts      *httptest.Server
	store   tripcap.Store
	svc     *controlplane.Service
	monitor *controlplane.Monitor
	ids     *identity.Service
	console *console.Console
	audit   *audit.Recorder
	admin   string // the bootstrap admin token
	// adminCtx acts as the bootstrap admin, for setting up.
	adminCtx context.Context
	// credentials are the enrolled hosts' agent credentials, by host id.
	credentials map[string]string
}

// testPassword is a cheap argon2id cost, for tests only.
var testPassword = identity.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}

// fixtureOptions vary the server.
type fixtureOptions struct {
	tls bool
	// limits, when set, makes the server run its own Serve (its timeouts
	// and per-address limits) instead of httptest's.
	limits *tchttp.Limits
	// audited keeps the audit log (fixture.audit).
	audited bool
	// publicURL is the server's --public-url.
	publicURL string
}

func newFixture(t testing.TB) *fixture { return newFixtureWith(t, fixtureOptions{}) }

func newFixtureWith(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	store.SetSealer(storetest.NewSealer(t))
	t.Cleanup(func() { store.Close() })
	blobs, err := filestore.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	// The server's log is shown when the test fails.
	log, logs := logtest.New()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	svc := controlplane.New(store, controlplane.Config{Storage: map[string]tripcap.BlobStore{"local": blobs}, DefaultStorage: "local", OpenStorage: openFileURL}, log)
	go func() { _ = svc.Run(ctx) }()
	token, err := svc.EnsureAdmin(ctx, filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := responder.New(svc.ResponderDeps(), log, responder.Config{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = rsp.Run(ctx) }()
	mon, err := controlplane.NewMonitor(store, log, controlplane.MonitorConfig{Responder: rsp, WebhookTargets: webhooktest.Targets()})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = mon.Run(ctx) }()
	ts := httptest.NewUnstartedServer(nil)
	scheme := "http://"
	if o.tls {
		scheme = "https://"
	}
	base := scheme + ts.Listener.Addr().String()
	ids, err := identity.New(store, identity.Config{Issuer: base, Password: testPassword}, log)
	if err != nil {
		t.Fatal(err)
	}
	svc.SetIdentities(ids)
	opts := []tchttp.Option{tchttp.WithMonitor(mon), tchttp.WithResponders(rsp), tchttp.WithIdentity(ids)}
	if o.limits != nil {
		opts = append(opts, tchttp.WithLimits(*o.limits))
	}
	var rec *audit.Recorder
	if o.audited {
		rec = audit.New(store, log, audit.Config{})
		t.Cleanup(func() { rec.Close() })
		opts = append(opts, tchttp.WithAudit(rec))
	}
	srv := tchttp.NewServer(svc, log, opts...)
	cfg := console.Config{Service: svc, Monitor: mon, Responders: rsp, Identity: ids, PublicURL: o.publicURL}
	if rec != nil {
		cfg.Audit = rec // the audit log page
	}
	c, err := console.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv.MountConsole(func(g tchttp.ConsoleGate) http.Handler { return c.Handler(g) })
	ts.Config.Handler = srv
	switch {
	case o.limits != nil:
		// The server's own Serve on the listener httptest made.
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(ctx, ts.Listener) }()
		t.Cleanup(func() { cancel(); <-done })
	case o.tls:
		ts.StartTLS()
		t.Cleanup(ts.Close)
	default:
		ts.Start()
		t.Cleanup(ts.Close)
	}
	adminCtx := tripcap.NewContextWithPrincipal(ctx, &tripcap.Principal{ID: "test", Name: "test", Kind: tripcap.PrincipalSystem, Assignments: tripcap.OwnerEverywhere()})
	return &fixture{url: base, ts: ts, store: store, audit: rec, svc: svc, monitor: mon, ids: ids, console: c, admin: token, adminCtx: adminCtx, credentials: map[string]string{}}
}

// user creates a user holding role at "*" and returns their password.
func (f *fixture) user(t testing.TB, name string, role tripcap.RoleName) string {
	t.Helper()
	pw := "correct horse battery " + name
	if _, err := f.ids.CreateUser(f.adminCtx, name, pw); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ids.AssignRole(f.adminCtx, name, role, tripcap.ScopeAll); err != nil {
		t.Fatal(err)
	}
	return pw
}

// host enrolls a host as an agent would.
func (f *fixture) host(t testing.TB, name, location string, labels map[string]string) *tripcap.Host {
	t.Helper()
	jt, err := f.svc.CreateJoinToken(f.adminCtx, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.svc.Enroll(f.adminCtx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: name, Location: location, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	f.credentials[resp.Host.ID] = resp.Credential
	return resp.Host
}

// agentCtx acts as h's agent (h enrolled by f.host).
func (f *fixture) agentCtx(t testing.TB, h *tripcap.Host) context.Context {
	t.Helper()
	p, err := f.svc.Authenticate(f.adminCtx, f.credentials[h.ID])
	if err != nil {
		t.Fatal(err)
	}
	return tripcap.NewContextWithPrincipal(f.adminCtx, p)
}

// browser is a cookie-keeping client that does not follow redirects, so
// tests see each answer.
type browser struct {
	t    testing.TB
	f    *fixture
	c    *http.Client
	csrf string // the last page's CSRF token
}

func (f *fixture) browser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{}
	if f.ts.URL != "" { // started by httptest, not by the server's own Serve
		// A copy: each browser keeps its own cookies.
		shared := *f.ts.Client()
		c = &shared
	}
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, f: f, c: c}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// page is an answer with its body read.
type page struct {
	*http.Response
	body string
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfInput.FindStringSubmatch(string(body)); m != nil {
		b.csrf = m[1]
	}
	return &page{Response: resp, body: string(body)}
}

func (b *browser) get(path string) *page {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.f.url+path, nil)
	return b.do(req)
}

// post sends a form with the last page's CSRF token (unless the form has one).
func (b *browser) post(path string, form url.Values) *page {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.f.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// signIn signs in with a password and checks it worked.
func (b *browser) signIn(user, password string) {
	b.t.Helper()
	b.get("/signin")
	p := b.post("/signin", url.Values{"user": {user}, "password": {password}})
	if p.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("sign in as %s: %s: %s", user, p.Status, p.body)
	}
}

// signInToken signs in with a token.
func (b *browser) signInToken(token string) {
	b.t.Helper()
	b.get("/signin")
	p := b.post("/signin", url.Values{"token": {token}})
	if p.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("sign in with a token: %s: %s", p.Status, p.body)
	}
}

// events reads the first n events of the live stream at path (within
// 10 s), checking it is one.
func (b *browser) events(path string, n int) []string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", b.f.url+path, nil)
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b.t.Fatalf("%s: %s %s, want an event stream", path, resp.Status, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var out []string
	for len(out) < n && sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, data)
		}
	}
	if len(out) < n {
		b.t.Fatalf("%s: %d events, want %d (%v)", path, len(out), n, sc.Err())
	}
	return out
}

// cookie returns the browser's cookie of that name for the console, or nil.
func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.f.url)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// openFileURL opens storage accounts added at run time: file:// only here
// (the server's opener takes S3 and Azure Blob too).
func openFileURL(_ context.Context, u string) (tripcap.BlobStore, error) {
	p, ok := strings.CutPrefix(u, "file://")
	if !ok || p == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "url: %q is not a file:// URL", u)
	}
	return filestore.Open(p)
}
