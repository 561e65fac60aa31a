package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
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
	b := f.browser(t)
	p := b.get(link)
	if p.StatusCode != 200 || !strings.Contains(p.body, `http-equiv="refresh"`) {
		t.Fatalf("the link: %s\n%s", p.Status, p.body)
	}
	if q := b.get("/"); q.StatusCode != 200 {
		t.Fatalf("after the link: %s", q.Status)
	}
	other := f.browser(t)
	if p := other.get(link); p.StatusCode != http.StatusNotFound || other.cookie("tripcap_session") != nil {
		t.Fatalf("the link a second time: %s, want 404 and no session", p.Status)
	}
}

func TestSignInNextStaysOnConsole(t *testing.T) {
	f := newFixture(t)
	pw := f.user(t, "alice", tripcap.RoleReader)
	for next, want := range map[string]string{"/hosts?state=Online": "/hosts?state=Online", "//evil.example/": "/", "https://evil.example/": "/", "/\\evil": "/"} {
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
