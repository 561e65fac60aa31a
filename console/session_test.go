package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

func TestSignInWithPasswordShowsOverview(t *testing.T) {
	f := newFixture(t)
	pw := f.user(t, "alice", tripcap.RoleReader)
	b := f.browser(t)
	if p := b.get("/"); p.StatusCode != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/signin") {
		t.Fatalf("GET / without a session: %s %s, want 303 to /signin", p.Status, p.Header.Get("Location"))
	}
	b.signIn("alice", pw)
	p := b.get("/")
	if p.StatusCode != 200 || !strings.Contains(p.body, "<h1>Overview</h1>") || !strings.Contains(p.body, "alice") {
		t.Fatalf("overview after sign-in: %s\n%s", p.Status, p.body)
	}
}

func TestSignInRefusesWrongPassword(t *testing.T) {
	f := newFixture(t)
	f.user(t, "alice", tripcap.RoleReader)
	b := f.browser(t)
	b.get("/signin")
	p := b.post("/signin", url.Values{"user": {"alice"}, "password": {"not the password"}})
	if p.StatusCode != http.StatusUnauthorized || !strings.Contains(p.body, "user name or password is wrong") {
		t.Fatalf("wrong password: %s\n%s", p.Status, p.body)
	}
	if b.cookie("tripcap_session") != nil {
		t.Fatal("a refused sign-in set a session cookie")
	}
}

func TestSignInWithBootstrapAdminToken(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.signInToken(f.admin)
	if p := b.get("/"); p.StatusCode != 200 || !strings.Contains(p.body, "Overview") {
		t.Fatalf("overview as the admin: %s", p.Status)
	}
}

func TestSignInRefusesAgentCredential(t *testing.T) {
	f := newFixture(t)
	jt, err := f.svc.CreateJoinToken(f.adminCtx, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.svc.Enroll(f.adminCtx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.signInToken(resp.Credential) // the token itself is valid…
	if p := b.get("/"); p.StatusCode == 200 {
		t.Fatal("…but an agent's credential may not use the console")
	}
}

func TestSessionCookieFlags(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tls], func(t *testing.T) {
			f := newFixtureWith(t, fixtureOptions{tls: tls})
			pw := f.user(t, "alice", tripcap.RoleReader)
			b := f.browser(t)
			b.get("/signin")
			p := b.post("/signin", url.Values{"user": {"alice"}, "password": {pw}})
			var session *http.Cookie
			for _, c := range p.Cookies() {
				if strings.HasSuffix(c.Name, "tripcap_session") && c.Value != "" {
					session = c
				}
			}
			if session == nil {
				t.Fatalf("no session cookie in %v", p.Header["Set-Cookie"])
			}
			if !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/" {
				t.Errorf("session cookie %q: want HttpOnly, SameSite=Strict, Path=/", p.Header["Set-Cookie"])
			}
			if session.Secure != tls {
				t.Errorf("session cookie Secure=%v under TLS=%v", session.Secure, tls)
			}
			if tls && session.Name != "__Host-tripcap_session" {
				t.Errorf("under TLS the cookie is %s, want the __Host- prefix", session.Name)
			}
		})
	}
}

func TestSignOutRevokesLoginToken(t *testing.T) {
	f := newFixture(t)
	pw := f.user(t, "alice", tripcap.RoleReader)
	b := f.browser(t)
	b.signIn("alice", pw)
	cred := strings.TrimPrefix(b.cookie("tripcap_session").Value, "l.")
	b.get("/")
	if p := b.post("/signout", nil); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %s", p.Status)
	}
	if _, err := f.svc.Authenticate(f.adminCtx, cred); tripcap.ErrorCode(err) != tripcap.EUNAUTHORIZED {
		t.Fatalf("the login's token after sign-out: %v, want EUNAUTHORIZED", err)
	}
	if p := b.get("/"); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET / after sign-out: %s, want 303 to sign in", p.Status)
	}
}

func TestCSRFRefused(t *testing.T) {
	f := newFixture(t)
	pw := f.user(t, "alice", tripcap.RoleReader)
	b := f.browser(t)
	b.signIn("alice", pw)
	b.get("/")
	for name, form := range map[string]url.Values{
		"missing": {"csrf": {""}},
		"wrong":   {"csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
	} {
		if p := b.post("/signout", form); p.StatusCode != http.StatusForbidden || !strings.Contains(p.body, "CSRF") {
			t.Errorf("sign out with a %s CSRF token: %s, want 403", name, p.Status)
		}
	}
	// A cross-site post carrying the right token is refused too.
	form := url.Values{"csrf": {b.csrf}}
	req, _ := http.NewRequest("POST", f.url+"/signout", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if p := b.do(req); p.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin post: %s, want 403", p.Status)
	}
	if p := b.get("/"); p.StatusCode != 200 {
		t.Fatalf("the session ended though every sign-out was refused: %s", p.Status)
	}
	// The sign-in form has its own token: a post without it is refused.
	other := f.browser(t)
	if p := other.post("/signin", url.Values{"user": {"alice"}, "password": {pw}}); p.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without the form's CSRF token: %s, want 403", p.Status)
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	for _, path := range []string{"/signin", "/"} {
		p := b.get(path)
		csp := p.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q allows inline code", path, csp)
		}
		if p.Header.Get("X-Content-Type-Options") != "nosniff" || p.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", path, p.Header)
		}
	}
}

func TestOneTimeSignInLink(t *testing.T) {
	f := newFixture(t)
	link := f.console.SignInLink(f.admin, time.Minute)
	// A link preview (a chat's unfurler, a prefetch) GETs it: that signs
	// nothing in and spends nothing.
	preview := f.browser(t)
	if p := preview.get(link); p.StatusCode != 200 || preview.cookie("tripcap_session") != nil || !strings.Contains(p.body, `<form method="post">`) {
		t.Fatalf("the link's GET: %s, session %v\n%s", p.Status, preview.cookie("tripcap_session"), p.body)
	}
	b := f.browser(t)
	b.get(link)
	// The button's post needs the page's CSRF token.
	if p := b.post(link, url.Values{"csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}); p.StatusCode != http.StatusForbidden {
		t.Fatalf("the link's post with a wrong CSRF token: %s, want 403", p.Status)
	}
	b.get(link)
	p := b.post(link, nil)
	if p.StatusCode != http.StatusSeeOther || p.Header.Get("Location") != "/" {
		t.Fatalf("the link's button: %s %s\n%s", p.Status, p.Header.Get("Location"), p.body)
	}
	session := b.cookie("tripcap_session")
	if session == nil || strings.Contains(session.Value, f.admin) || !strings.HasPrefix(session.Value, "a.") {
		t.Fatalf("the session cookie %v holds the admin token, or is no admin sign-in", session)
	}
	if q := b.get("/"); q.StatusCode != 200 {
		t.Fatalf("after the link: %s", q.Status)
	}
	other := f.browser(t)
	if p := other.get(link); p.StatusCode != http.StatusNotFound || other.cookie("tripcap_session") != nil {
		t.Fatalf("the link's GET a second time: %s, want 404 and no session", p.Status)
	}
	other.get("/signin")
	if p := other.post(link, nil); p.StatusCode != http.StatusNotFound || other.cookie("tripcap_session") != nil {
		t.Fatalf("the link's post a second time: %s, want 404 and no session", p.Status)
	}
	checkAdminSignOut(t, f, b)
}

// TestSignInWithAdminTokenKeepsItOutOfTheCookie: the form's admin token
// gives an admin sign-in that ends at sign-out; the cookie never holds it.
func TestSignInWithAdminTokenKeepsItOutOfTheCookie(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.signInToken(f.admin)
	session := b.cookie("tripcap_session")
	if session == nil || strings.Contains(session.Value, f.admin) || !strings.HasPrefix(session.Value, "a.") {
		t.Fatalf("the session cookie %v holds the admin token, or is no admin sign-in", session)
	}
	checkAdminSignOut(t, f, b)
	// The admin token itself still works: only the sign-in ended.
	if _, err := f.svc.Authenticate(f.adminCtx, f.admin); err != nil {
		t.Fatalf("the admin token after signing out: %v", err)
	}
}

// checkAdminSignOut signs b (an admin sign-in) out and checks a copy of its
// cookie no longer works.
func checkAdminSignOut(t *testing.T, f *fixture, b *browser) {
	t.Helper()
	stolen := b.cookie("tripcap_session").Value
	copied := func() *page {
		req, _ := http.NewRequest("GET", f.url+"/", nil)
		req.AddCookie(&http.Cookie{Name: "tripcap_session", Value: stolen})
		return f.browser(t).do(req)
	}
	if p := copied(); p.StatusCode != 200 {
		t.Fatalf("a copy of the cookie before sign-out: %s", p.Status)
	}
	b.get("/")
	if p := b.post("/signout", nil); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %s", p.Status)
	}
	if p := copied(); p.StatusCode != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/signin") {
		t.Fatalf("a copy of the cookie after sign-out: %s %s, want 303 to sign in", p.Status, p.Header.Get("Location"))
	}
}

// TestAdminSignInExpires: an admin sign-in lasts 12 h, as a user's login.
func TestAdminSignInExpires(t *testing.T) {
	f := newFixture(t)
	var now atomic.Int64 // the server's goroutines read it
	now.Store(time.Now().UnixNano())
	f.console.SetClock(func() time.Time { return time.Unix(0, now.Load()) })
	b := f.browser(t)
	b.signInToken(f.admin)
	now.Add(int64(12*time.Hour - time.Minute))
	if p := b.get("/"); p.StatusCode != 200 {
		t.Fatalf("before 12 h: %s", p.Status)
	}
	now.Add(int64(2 * time.Minute))
	if p := b.get("/"); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("after 12 h: %s, want 303 to sign in", p.Status)
	}
}

// TestCSRFOriginBehindProxy: behind a proxy that rewrites Host, a form
// posted from the public URL's origin is accepted; another origin is not.
func TestCSRFOriginBehindProxy(t *testing.T) {
	f := newFixtureWith(t, fixtureOptions{publicURL: "https://console.example"})
	pw := f.user(t, "alice", tripcap.RoleReader)
	b := f.browser(t)
	b.get("/signin")
	post := func(origin string) *page {
		form := url.Values{"csrf": {b.csrf}, "user": {"alice"}, "password": {pw}}
		req, _ := http.NewRequest("POST", f.url+"/signin", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		return b.do(req)
	}
	for _, o := range []string{"https://evil.example", "http://console.example", "https://console.example.evil"} {
		if p := post(o); p.StatusCode != http.StatusForbidden {
			t.Errorf("Origin %s: %s, want 403", o, p.Status)
		}
	}
	if p := post("https://console.example"); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("Origin of the public URL: %s, want 303\n%s", p.Status, p.body)
	}
	u, _ := url.Parse(f.url)
	b2 := f.browser(t)
	b2.get("/signin")
	b = b2
	if p := post("http://" + u.Host); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("Origin of the request's Host: %s, want 303", p.Status)
	}
}

func TestSignInNextStaysOnConsole(t *testing.T) {
	f := newFixture(t)
	pw := f.user(t, "alice", tripcap.RoleReader)
	for next, want := range map[string]string{"/hosts?state=Online": "/hosts?state=Online", "//evil.example/": "/", "https://evil.example/": "/", "/\\evil": "/",
		"/\t/evil.example": "/", "/\n/evil.example": "/", "/\r//evil.example": "/", "/%09/evil.example": "/", "/%5cevil": "/", "\t//evil.example": "/",
		"/hosts#x": "/hosts", "/a b?c=d e": "/a%20b?c=d e"} {
		b := f.browser(t)
		b.get("/signin")
		p := b.post("/signin", url.Values{"user": {"alice"}, "password": {pw}, "next": {next}})
		if got := p.Header.Get("Location"); got != want {
			t.Errorf("next=%q: sent to %q, want %q", next, got, want)
		}
	}
}

func TestAPIPathsKeepAPIAnswers(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	p := b.get("/api/v1/nonesuch")
	if p.StatusCode != 404 || !strings.Contains(p.body, `"error"`) {
		t.Errorf("unknown API path: %s %s", p.Status, p.body)
	}
	req, _ := http.NewRequest("PUT", f.url+"/api/v1/hosts", nil)
	req.Header.Set("Authorization", "Bearer "+f.admin)
	if p := b.do(req); p.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(p.Header.Get("Allow"), "GET") {
		t.Errorf("PUT /api/v1/hosts: %s Allow=%q, want 405", p.Status, p.Header.Get("Allow"))
	}
}

// inlineHandler finds an inline event handler attribute (onclick=…).
var inlineHandler = regexp.MustCompile(`<[^>]+\son[a-z]+=`)

// TestPagesHaveNoInlineCode: no page of the console carries inline script,
// style or event handlers, so the CSP needs no 'unsafe-inline'.
func TestPagesHaveNoInlineCode(t *testing.T) {
	f := newFixture(t)
	pc := f.capture(t, "web1", "c1")
	b := f.browser(t)
	if p := b.get("/signin"); p.StatusCode != 200 {
		t.Fatal(p.Status)
	}
	checkNoInline(t, "/signin", b.get("/signin").body)
	b.signInToken(f.admin)
	for _, path := range []string{"/", "/hosts", "/hosts/web1", "/captures", "/captures/new", "/captures/" + pc.ID, "/hosts/nosuch"} {
		checkNoInline(t, path, b.get(path).body)
	}
}

var (
	inlineScript = regexp.MustCompile(`<script(?:\s[^>]*)?>`)
	styleAttr    = regexp.MustCompile(`<[^>]+\sstyle=`)
)

func checkNoInline(t *testing.T, path, body string) {
	t.Helper()
	for _, tag := range inlineScript.FindAllString(body, -1) {
		if !strings.Contains(tag, " src=") {
			t.Errorf("%s: inline script %s", path, tag)
		}
	}
	if strings.Contains(body, "<style") || styleAttr.MatchString(body) || inlineHandler.MatchString(body) || strings.Contains(body, "javascript:") {
		t.Errorf("%s: inline style or handler", path)
	}
}

// TestRevokedSessionEnds: a session whose token is revoked is sent to sign
// in (its cookie forgotten), and its live stream is refused with 401.
func TestRevokedSessionEnds(t *testing.T) {
	f := newFixture(t)
	pc := f.capture(t, "web1", "c1")
	pw := f.user(t, "alice", tripcap.RoleReader)
	b := f.browser(t)
	b.signIn("alice", pw)
	if p := b.get("/captures/" + pc.ID); p.StatusCode != 200 {
		t.Fatal(p.Status)
	}
	tokens, err := f.ids.FindTokens(f.adminCtx, "alice")
	if err != nil || len(tokens) != 1 {
		t.Fatalf("alice's tokens: %v %v", tokens, err)
	}
	if err := f.ids.RevokeToken(f.adminCtx, tokens[0].ID); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", f.url+"/captures/"+pc.ID+"/live", nil)
	req.Header.Set("Accept", "text/event-stream")
	if p := b.do(req); p.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the live stream after revocation: %s, want 401", p.Status)
	}
	b.signIn("alice", pw)
	if p := b.get("/captures/" + pc.ID); p.StatusCode != 200 {
		t.Fatal(p.Status)
	}
	tokens, _ = f.ids.FindTokens(f.adminCtx, "alice")
	for _, tk := range tokens {
		if err := f.ids.RevokeToken(f.adminCtx, tk.ID); err != nil {
			t.Fatal(err)
		}
	}
	p := b.get("/captures/" + pc.ID)
	if p.StatusCode != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/signin?next=") {
		t.Fatalf("a page after revocation: %s %s", p.Status, p.Header.Get("Location"))
	}
	if b.cookie("tripcap_session") != nil {
		t.Fatal("the revoked session's cookie is kept")
	}
}

func TestUnknownPageIsTheConsoles404(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	if p := b.get("/no/such/page"); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("an unknown page signed out: %s, want 303 to sign in", p.Status)
	}
	b.signInToken(f.admin)
	if p := b.get("/no/such/page"); p.StatusCode != http.StatusNotFound || !strings.Contains(p.body, "Not found") || p.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("an unknown page: %s\n%s", p.Status, p.body)
	}
}
