package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

// The session cookie's value is "<kind>.<credential>": kind "l" for a
// login's token (revoked at sign-out), "t" for a token the user gave (an API
// token or the bootstrap admin's, only forgotten at sign-out).
const (
	kindLogin = "l"
	kindToken = "t"
)

// Cookie names. Under TLS the __Host- prefix binds the cookie to this
// origin (Secure, Path=/, no Domain), so a sibling host cannot plant one.
const (
	sessionCookie       = "tripcap_session"
	secureSessionCookie = "__Host-tripcap_session"
	preCookie           = "tripcap_csrf"
	securePreCookie     = "__Host-tripcap_csrf"
	csrfField           = "csrf"
	csrfHeader          = "X-CSRF-Token"
)

// session is the signed-in caller of a request.
type session struct {
	p          *tripcap.Principal
	kind       string
	credential string
	csrf       string
}

type sessionKey struct{}

// sessionOf returns the request's session (set by signedIn), or nil.
func sessionOf(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

func (c *Console) secure(r *http.Request) bool { return c.cfg.Secure || r.TLS != nil }

func (c *Console) cookieName(r *http.Request, plain, secure string) string {
	if c.secure(r) {
		return secure
	}
	return plain
}

// session authenticates the request's session cookie through the gate.
func (c *Console) session(w http.ResponseWriter, r *http.Request) (*session, error) {
	ck, err := r.Cookie(c.cookieName(r, sessionCookie, secureSessionCookie))
	if err != nil || ck.Value == "" {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "sign in first")
	}
	kind, cred, ok := strings.Cut(ck.Value, ".")
	if !ok || (kind != kindLogin && kind != kindToken) || cred == "" {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the session is not valid; sign in again")
	}
	p, err := c.gate.Authenticate(w, r, cred)
	if err != nil {
		return nil, err
	}
	if p.Kind == tripcap.PrincipalAgent || p.Kind == tripcap.PrincipalFunctionKey {
		// Machine credentials act for one host or one responder, not a person.
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "an agent's or function key's credential does not sign in to the console")
	}
	return &session{p: p, kind: kind, credential: cred, csrf: csrfOf("session", ck.Value)}, nil
}

// csrfOf derives a CSRF token from a secret the browser holds in an
// HttpOnly cookie: a page can show it, a cross-site page cannot know it,
// and no server keeps state for it.
func csrfOf(purpose, secret string) string {
	sum := sha256.Sum256([]byte("tripcap console csrf\x00" + purpose + "\x00" + secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// checkCSRF refuses a post whose token (form field or header) is not want,
// or that a browser says came from another site.
func (c *Console) checkCSRF(r *http.Request, want string) error {
	refused := tripcap.Errorf(tripcap.EFORBIDDEN, "the form's CSRF token is missing or stale; reload the page and try again")
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return refused
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			return refused
		}
	}
	got := r.Header.Get(csrfHeader)
	if got == "" {
		r.Body = http.MaxBytesReader(nil, r.Body, maxForm)
		got = r.PostFormValue(csrfField)
	}
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return refused
	}
	return nil
}

// maxForm bounds a posted form.
const maxForm = 64 << 10

// setCookie sets a cookie of the console's: HttpOnly, SameSite=Strict,
// Secure under TLS, for the whole console; maxAge < 0 deletes it.
func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	ck := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.secure(r)}
	switch {
	case maxAge < 0:
		ck.MaxAge = -1
	case maxAge > 0:
		ck.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, ck)
}

// preSession returns the CSRF token of the sign-in form, from a random
// cookie it sets when the browser has none (a double-submit token: a
// cross-site page can neither read the cookie nor set it).
func (c *Console) preSession(w http.ResponseWriter, r *http.Request) string {
	name := c.cookieName(r, preCookie, securePreCookie)
	if ck, err := r.Cookie(name); err == nil && len(ck.Value) >= 32 {
		return csrfOf("signin", ck.Value)
	}
	v := tripcap.NewSecret("")
	c.setCookie(w, r, name, v, 0)
	return csrfOf("signin", v)
}

// sessionRoutes are the pages anyone may reach: sign-in and sign-out.
func (c *Console) sessionRoutes() {
	c.mux.HandleFunc("GET /signin", c.signInForm)
	c.mux.HandleFunc("POST /signin", c.signIn)
	c.mux.HandleFunc("GET /signin/once/{code}", c.signInOnce)
	c.post("/signout", c.signOut)
}

type signInPage struct {
	User, Next, Error string
	Passwords         bool
	CSRF              string
}

func (c *Console) signInForm(w http.ResponseWriter, r *http.Request) {
	c.renderSignIn(w, r, http.StatusOK, signInPage{Next: safeNext(r.URL.Query().Get("next"))})
}

func (c *Console) renderSignIn(w http.ResponseWriter, r *http.Request, status int, pg signInPage) {
	pg.CSRF = c.preSession(w, r)
	pg.Passwords = c.cfg.Identity != nil
	c.renderStatus(w, r, status, "signin", pg)
}

// signIn checks a user's password (or takes a token), and starts a session.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	pre := ""
	if ck, err := r.Cookie(c.cookieName(r, preCookie, securePreCookie)); err == nil && len(ck.Value) >= 32 {
		pre = csrfOf("signin", ck.Value)
	}
	if err := c.checkCSRF(r, pre); err != nil {
		c.renderSignIn(w, r, http.StatusForbidden, signInPage{Error: tripcap.ErrorMessage(err)})
		return
	}
	user, password, token := strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("password"), strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	var kind, cred string
	var err error
	switch {
	case token != "":
		kind, cred = kindToken, token
		_, err = c.gate.Authenticate(w, r, token)
	case c.cfg.Identity == nil:
		err = tripcap.Errorf(tripcap.EINVALID, "token: required (this server signs in with tokens only)")
	case user == "":
		err = tripcap.Errorf(tripcap.EINVALID, "user: required (or sign in with a token)")
	default:
		kind = kindLogin
		err = c.gate.SignIn(w, r, user, func() error {
			t, err := c.cfg.Identity.Login(r.Context(), user, password)
			if err == nil {
				cred = t.Token
			}
			return err
		})
	}
	if err != nil {
		c.renderSignIn(w, r, tchttp.ErrorStatus(err), signInPage{User: user, Next: next, Error: tripcap.ErrorMessage(err)})
		return
	}
	c.startSession(w, r, kind, cred)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// startSession sets the session cookie; it lives as long as the browser
// (the credential's own expiry ends it sooner).
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, kind, cred string) {
	c.setCookie(w, r, c.cookieName(r, sessionCookie, secureSessionCookie), kind+"."+cred, 0)
	c.setCookie(w, r, c.cookieName(r, preCookie, securePreCookie), "", -1)
}

// signOut ends the session, revoking a login's token.
func (c *Console) signOut(w http.ResponseWriter, r *http.Request) error {
	s := sessionOf(r.Context())
	if s.kind == kindLogin && c.cfg.Identity != nil && s.p.CredentialID != "" {
		if err := c.cfg.Identity.RevokeToken(r.Context(), s.p.CredentialID); err != nil && tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
			return err
		}
	}
	c.setCookie(w, r, c.cookieName(r, sessionCookie, secureSessionCookie), "", -1)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
	return nil
}

// toSignIn sends a caller without a (valid) session to the sign-in page,
// to come back here after.
func (c *Console) toSignIn(w http.ResponseWriter, r *http.Request, err error) {
	if _, e := r.Cookie(c.cookieName(r, sessionCookie, secureSessionCookie)); e == nil {
		// A session that no longer authenticates (revoked, expired) is forgotten.
		c.setCookie(w, r, c.cookieName(r, sessionCookie, secureSessionCookie), "", -1)
	}
	if wantsJSON(r) || strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		// A script, or a live stream (EventSource gives up on a 401): no page.
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

// safeNext keeps a post-sign-in destination on this console: a path, not
// a URL to another site ("//evil", "/\evil").
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") ||
		strings.HasPrefix(next, "/signin") {
		return "/"
	}
	return next
}

// SignInLink returns a path that signs a browser in with credential once,
// within ttl (`tripcap up` prints it with the server's URL).
func (c *Console) SignInLink(credential string, ttl time.Duration) string {
	return "/signin/once/" + c.links.add(credential, c.cfg.Now().Add(ttl))
}

// signInOnce spends a one-time link. The answer is a page that moves on to
// the console by itself: the link arrives from outside (a terminal, a chat),
// and a SameSite=Strict cookie is not sent on a redirect from a cross-site
// navigation, while it is on the page's own refresh.
func (c *Console) signInOnce(w http.ResponseWriter, r *http.Request) {
	cred, ok := c.links.take(r.PathValue("code"), c.cfg.Now())
	if !ok {
		c.renderSignIn(w, r, http.StatusNotFound, signInPage{Next: "/", Error: "That sign-in link was used already or has expired; sign in here, or run the command again for a new link."})
		return
	}
	if _, err := c.gate.Authenticate(w, r, cred); err != nil {
		c.renderSignIn(w, r, tchttp.ErrorStatus(err), signInPage{Next: "/", Error: tripcap.ErrorMessage(err)})
		return
	}
	c.startSession(w, r, kindToken, cred)
	w.Header().Set("Cache-Control", "no-store")
	c.renderStatus(w, r, http.StatusOK, "signedin", nil)
}

// onceLinks are the one-time sign-in links not yet used, by their code's hash.
type onceLinks struct {
	mu    sync.Mutex
	links map[string]onceLink
}

type onceLink struct {
	credential string
	expires    time.Time
}

func newOnceLinks() *onceLinks { return &onceLinks{links: map[string]onceLink{}} }

func (l *onceLinks) add(credential string, expires time.Time) string {
	code := tripcap.NewSecret("")
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, v := range l.links {
		if expires.After(v.expires.Add(24 * time.Hour)) {
			delete(l.links, k)
		}
	}
	l.links[tripcap.HashSecret(code)] = onceLink{credential: credential, expires: expires}
	return code
}

// take spends a code: it works once, and not after it expires.
func (l *onceLinks) take(code string, now time.Time) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := tripcap.HashSecret(code)
	v, ok := l.links[k]
	delete(l.links, k)
	if !ok || !now.Before(v.expires) {
		return "", false
	}
	return v.credential, true
}
