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
// login's token (revoked at sign-out), "a" for a sign-in of the bootstrap
// admin (a secret of the console's standing for the admin token, which the
// cookie never holds; it ends after adminLoginLifetime or at sign-out), "t"
// for an API token the user gave (only forgotten at sign-out).
const (
	kindLogin = "l"
	kindAdmin = "a"
	kindToken = "t"
)

// adminLoginLifetime is how long a sign-in of the bootstrap admin lasts:
// as a user's login (identity's default LoginLifetime).
const adminLoginLifetime = 12 * time.Hour

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
	if !ok || (kind != kindLogin && kind != kindAdmin && kind != kindToken) || cred == "" {
		return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the session is not valid; sign in again")
	}
	bearer := cred
	if kind == kindAdmin {
		if bearer, ok = c.admins.get(cred, c.cfg.Now()); !ok {
			return nil, tripcap.Errorf(tripcap.EUNAUTHORIZED, "the session ended; sign in again")
		}
	}
	p, err := c.gate.Authenticate(w, r, bearer)
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
		u, err := url.Parse(o)
		// Behind a proxy that rewrites Host, the browser's origin is the
		// public URL's.
		public := c.public != nil && err == nil && u.Scheme == c.public.Scheme && u.Host == c.public.Host
		if err != nil || (u.Host != r.Host && !public) {
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
	c.mux.HandleFunc("GET /signin/once/{code}", c.signInOnceForm)
	c.mux.HandleFunc("POST /signin/once/{code}", c.signInOnce)
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
	if err := c.checkPreCSRF(r); err != nil {
		c.renderSignIn(w, r, http.StatusForbidden, signInPage{Error: tripcap.ErrorMessage(err)})
		return
	}
	user, password, token := strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("password"), strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	var kind, cred string
	var err error
	switch {
	case token != "":
		var p *tripcap.Principal
		if p, err = c.gate.Authenticate(w, r, token); err == nil {
			kind, cred = c.tokenSession(p, token)
		}
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

// checkPreCSRF checks a sign-in form's CSRF token (from the pre-session cookie).
func (c *Console) checkPreCSRF(r *http.Request) error {
	pre := ""
	if ck, err := r.Cookie(c.cookieName(r, preCookie, securePreCookie)); err == nil && len(ck.Value) >= 32 {
		pre = csrfOf("signin", ck.Value)
	}
	return c.checkCSRF(r, pre)
}

// tokenSession returns the session cookie's kind and credential for a
// token that authenticated as p: the bootstrap admin's token stays on the
// server (a copied cookie must not be the admin token for good), standing
// behind a secret that ends at sign-out or after adminLoginLifetime.
func (c *Console) tokenSession(p *tripcap.Principal, token string) (kind, cred string) {
	if p.Kind != tripcap.PrincipalBootstrap {
		return kindToken, token
	}
	now := c.cfg.Now()
	return kindAdmin, c.admins.add(token, now, now.Add(adminLoginLifetime))
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
	switch {
	case s.kind == kindAdmin:
		c.admins.drop(s.credential)
	case s.kind == kindLogin && c.cfg.Identity != nil && s.p.CredentialID != "":
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
// a URL to another site ("//evil", "/\\evil", "/<TAB>/evil": browsers drop
// tabs and newlines and read a backslash as a slash). What it returns is
// rebuilt from the parsed path and query, never the text as given.
func safeNext(next string) string {
	bad := func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }
	if next == "" || strings.ContainsFunc(next, bad) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") || strings.ContainsFunc(u.Path, bad) ||
		strings.HasPrefix(u.Path, "/signin") {
		return "/"
	}
	// The text as sent starts with one "/" too ("%2f" decodes to "/").
	out := (&url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}).String()
	if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") {
		return "/"
	}
	return out
}

// SignInLink returns a path that signs a browser in with credential once,
// within ttl (`tripcap up` prints it with the server's URL).
func (c *Console) SignInLink(credential string, ttl time.Duration) string {
	now := c.cfg.Now()
	return "/signin/once/" + c.links.add(credential, now, now.Add(ttl))
}

// signInOnceForm shows a one-time link's page: a button that spends it.
// A GET spends nothing, so that a link preview or prefetch (a chat's
// unfurler) cannot use the link up, nor sign itself in.
func (c *Console) signInOnceForm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !c.links.has(r.PathValue("code"), c.cfg.Now()) {
		c.onceLinkSpent(w, r)
		return
	}
	c.renderStatus(w, r, http.StatusOK, "signinonce", signInPage{CSRF: c.preSession(w, r)})
}

// signInOnce spends a one-time link (posted from its page, with the page's
// CSRF token). The form is posted from this origin, so the SameSite=Strict
// cookie set here is sent on the redirect that follows.
func (c *Console) signInOnce(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := c.checkPreCSRF(r); err != nil {
		c.renderSignIn(w, r, http.StatusForbidden, signInPage{Next: "/", Error: tripcap.ErrorMessage(err)})
		return
	}
	token, ok := c.links.take(r.PathValue("code"), c.cfg.Now())
	if !ok {
		c.onceLinkSpent(w, r)
		return
	}
	p, err := c.gate.Authenticate(w, r, token)
	if err != nil {
		c.renderSignIn(w, r, tchttp.ErrorStatus(err), signInPage{Next: "/", Error: tripcap.ErrorMessage(err)})
		return
	}
	kind, cred := c.tokenSession(p, token)
	c.startSession(w, r, kind, cred)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Console) onceLinkSpent(w http.ResponseWriter, r *http.Request) {
	c.renderSignIn(w, r, http.StatusNotFound, signInPage{Next: "/", Error: "That sign-in link was used already or has expired; sign in here, or run the command again for a new link."})
}

// heldCredentials are credentials the console keeps for a secret it hands
// out (a one-time link's code, an admin sign-in's cookie), by the secret's
// hash, each until it expires or is dropped.
type heldCredentials struct {
	mu    sync.Mutex
	byKey map[string]heldCredential
}

type heldCredential struct {
	credential string
	expires    time.Time
}

func newHeldCredentials() *heldCredentials {
	return &heldCredentials{byKey: map[string]heldCredential{}}
}

// add holds credential until expires and returns the secret standing for it.
func (h *heldCredentials) add(credential string, now, expires time.Time) string {
	secret := tripcap.NewSecret("")
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, v := range h.byKey {
		if !now.Before(v.expires) {
			delete(h.byKey, k)
		}
	}
	h.byKey[tripcap.HashSecret(secret)] = heldCredential{credential: credential, expires: expires}
	return secret
}

// get returns the credential of secret, unless it expired or was dropped.
func (h *heldCredentials) get(secret string, now time.Time) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.byKey[tripcap.HashSecret(secret)]
	if !ok || !now.Before(v.expires) {
		return "", false
	}
	return v.credential, true
}

// has reports whether secret holds a credential still.
func (h *heldCredentials) has(secret string, now time.Time) bool {
	_, ok := h.get(secret, now)
	return ok
}

// take spends secret: it works once, and not after it expires.
func (h *heldCredentials) take(secret string, now time.Time) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := tripcap.HashSecret(secret)
	v, ok := h.byKey[k]
	delete(h.byKey, k)
	if !ok || !now.Before(v.expires) {
		return "", false
	}
	return v.credential, true
}

// drop forgets secret's credential.
func (h *heldCredentials) drop(secret string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.byKey, tripcap.HashSecret(secret))
}
