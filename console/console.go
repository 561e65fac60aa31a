// Package console is tripcap's web console: server-rendered html/template
// pages over the same services the REST API calls (controlplane.Service,
// controlplane.Monitor, responder.Responders, identity.Service), with its
// assets embedded (go:embed) and a strict Content-Security-Policy: no
// inline script, no inline style, nothing from another origin.
//
// # Adding a page
//
// One file per page, console/<page>.go, with its template in
// console/templates/<page>.html defining "title" and "content" (the layout,
// templates/layout.html, wraps it; templates/parts.html has the shared
// pieces: "csrf", "error", "field", "pager", "state"). Templates are parsed
// once at New; a template error fails New, so tests catch it. The file has
// one method that registers the page's routes and its nav entry, and
// (*Console).routes in this file calls it:
//
//	func (c *Console) hostsPage() {
//		c.nav(navHosts, "Hosts", "/hosts", tripcap.PermRead)
//		c.get("/hosts", c.hostsList)
//		c.post("/hosts/{host}/delete", c.hostDelete)
//	}
//
// get and post wrap the handler: the caller must be signed in (else it is
// sent to the sign-in page), every post must carry the session's CSRF token
// (the "csrf" template, or the X-CSRF-Token header for fetch), and a
// returned error becomes a page (EINVALID 400, EFORBIDDEN 403, ENOTFOUND
// 404…) with the message the service gave, or JSON to a script.
//
// Handlers stay thin: read the form or path, call the service with
// r.Context() (it carries the signed-in principal), render with
// c.render(w, r, "<page>", data). The services authorize, exactly as for
// the API: the console never decides who may do what, so a forged post is
// refused by the service. The console only leaves out what the role may not
// do: templates ask {{if .Can "captures/write"}} (the permission at some
// scope), {{if .CanAll "monitoring/write"}} (at "*", for what is not tied to
// a host) or {{if .CanOn "captures/write" .Page.Host}} (at that host). The
// template's view has .Page (the data), .CSRF, .User and .Nav (the entries
// the role may use). A form re-rendered after EINVALID marks the field the
// service named (newFormError splits its "field: reason" message; the
// "field" template marks the input). A form with data-validate="URL" is
// posted there as it is typed (answer: {"field","message"}); a form with
// data-fetch is posted without leaving the page.
//
// A page over an optional service (Monitor, Responders, Identity)
// registers only when the service is there. The nav orders (navRules,
// navAlerts…) are declared below for every page, so pages added in parallel
// do not edit each other's lines.
//
// # Tests
//
// console/fixture_test.go runs a real server (SQLite, every service, the API
// with the console mounted by http.Server.MountConsole, as `tripcap server`
// does): newFixture(t), f.user(t, name, role) for a user and its password,
// f.host(t, …) to enroll a host, and f.browser(t), a cookie-keeping client
// with signIn, get, and post (which sends the last page's CSRF token).
//
// # Live updates
//
// A page that updates live has an element with data-live="URL" (a route
// registered with c.live): the browser opens a server-sent event stream
// there, and the server sends the value its function returns (JSON) every
// interval, calling the services each time (so authorization and
// revocation apply to every event). assets/console.js puts each field of
// the value into the elements with data-field="name" inside the live
// element, and hands it to the page's script (assets/<page>.js, registered
// with tripcap.page("<page>", fn)) for charts. Without JavaScript the page
// is a plain page that a reload refreshes.
//
// # Sessions
//
// Signing in with a user's password (identity.Service.Login) gives a
// login token; signing in with an API token uses that token. The session
// cookie holds it (HttpOnly, SameSite=Strict, Secure under TLS), and every
// request authenticates it through controlplane.Service.Authenticate, as
// the API does with a bearer token: sessions work on every replica and end
// when the token is revoked. The bootstrap admin token never goes in the
// cookie (it does not expire, and a copy would be the admin for good):
// signing in with it, or with a one-time link (SignInLink, printed by
// `tripcap up`; its GET shows a button that posts to spend it, so a link
// preview spends nothing), gives a secret held in this process's memory for
// adminLoginLifetime, forgotten at sign-out (so such a session is this
// replica's only). CSRF tokens are derived from the session, so no state is
// kept for them.
package console

import (
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/identity"
	"github.com/tripcap/tripcap/responder"
)

// Config is what the console serves.
type Config struct {
	// Service is the control plane (hosts, captures, files); required.
	Service *controlplane.Service
	// Monitor serves metrics, rules and alerts; nil hides them.
	Monitor *controlplane.Monitor
	// Responders serves responders and their runs; nil hides them.
	Responders *responder.Responders
	// Identity signs users in with their password; nil: tokens only.
	Identity *identity.Service
	// Audit answers the audit log page (an *audit.Recorder); nil hides it.
	Audit AuditLog
	// Secure marks cookies Secure on plain connections too (TLS ends in
	// front of the server); a TLS connection always does.
	Secure bool
	// PublicURL is the server's URL as browsers reach it ("" for none):
	// behind a proxy that rewrites Host, a form's Origin is this URL's
	// scheme and host, accepted besides the request's Host.
	PublicURL string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Gate is what the server in front of the console lends it, so that the
// console's sign-ins count against the same limits as the API's.
type Gate interface {
	// Authenticate returns the principal of a session's credential, under
	// the limits of failed authentications per address.
	Authenticate(w http.ResponseWriter, r *http.Request, credential string) (*tripcap.Principal, error)
	// SignIn runs check, the check of a password claimed for user, under
	// the limits per address and per name.
	SignIn(w http.ResponseWriter, r *http.Request, user string, check func() error) error
}

// Console is the web console's handler.
type Console struct {
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	pages map[string]*template.Template
	navs  []navEntry
	gate  Gate
	// links are the one-time sign-in links not yet used; admins, the
	// bootstrap admin's sign-ins.
	links, admins *heldCredentials
	// public is the server's public URL, or nil.
	public *url.URL
}

// New returns the console over cfg's services.
func New(cfg Config, log *slog.Logger) (*Console, error) {
	if cfg.Service == nil {
		return nil, fmt.Errorf("console: the control plane service is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Console{cfg: cfg, log: log.With("component", "console"), mux: http.NewServeMux(), links: newHeldCredentials(), admins: newHeldCredentials()}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("console: the public URL %q is not an absolute URL", cfg.PublicURL)
		}
		c.public = u
	}
	c.routes()
	slices.SortFunc(c.navs, func(a, b navEntry) int { return a.order - b.order })
	var err error
	if c.pages, err = parseTemplates(); err != nil {
		return nil, err
	}
	return c, nil
}

// routes registers every page. A page file adds one line here.
func (c *Console) routes() {
	c.assetRoutes()
	c.sessionRoutes()
	c.overviewPage()
	c.hostsPage()
	c.hostPage()
	c.capturesPage()
	c.rulesPage()
	c.alertsPage()
	c.respondersPage()
	c.actionGroupsPage()
	c.storagePage()
	c.auditPage()
	c.accessPage()
	// Any other path: the console's own 404 page (signed in first).
	c.get("/", func(w http.ResponseWriter, r *http.Request) error {
		return tripcap.Errorf(tripcap.ENOTFOUND, "%s: no such page", r.URL.Path)
	})
}

// Nav orders: each page's place in the navigation.
const (
	navOverview = 10 * (iota + 1)
	navHosts
	navCaptures
	navRules
	navAlerts
	navResponders
	navActionGroups
	navStorage
	navAudit
	navAccess
)

// navEntry is one link of the navigation, shown to whom holds perm.
type navEntry struct {
	order       int
	Label, Path string
	perm        tripcap.Permission
	Current     bool
}

// nav adds a navigation entry, shown to callers holding perm at some scope.
func (c *Console) nav(order int, label, path string, perm tripcap.Permission) {
	c.navs = append(c.navs, navEntry{order: order, Label: label, Path: path, perm: perm})
}

// Handler is the console behind gate (the API server's limits:
// http.Server.MountConsole gives it). Call it once.
func (c *Console) Handler(gate Gate) http.Handler {
	c.gate = gate
	return http.HandlerFunc(c.serve)
}

// serve serves the console with the headers every answer carries.
func (c *Console) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	c.mux.ServeHTTP(w, r)
}

// ContentSecurityPolicy is every answer's policy: scripts, styles and
// connections from this origin only, no inline script or style, no
// framing, forms posted here only.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// handlerFunc is a page's handler; an error it returns becomes the answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// get registers a page only a signed-in caller sees.
func (c *Console) get(pattern string, h handlerFunc) {
	c.mux.Handle("GET "+pattern, c.signedIn(h, false))
}

// post registers a form's target: signed in, CSRF checked.
func (c *Console) post(pattern string, h handlerFunc) {
	c.mux.Handle("POST "+pattern, c.signedIn(h, true))
}

// signedIn authenticates the session (sending a caller without one to
// sign in), checks a post's CSRF token, and turns h's error into a page.
func (c *Console) signedIn(h handlerFunc, mutating bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := c.session(w, r)
		if err != nil {
			if tripcap.ErrorCode(err) == tripcap.EUNAUTHORIZED && !mutating {
				c.toSignIn(w, r, err)
				return
			}
			c.fail(w, r, err)
			return
		}
		ctx := context.WithValue(tripcap.NewContextWithPrincipal(r.Context(), s.p), sessionKey{}, s)
		r = r.WithContext(ctx)
		if mutating {
			if err := c.checkCSRF(r, s.csrf); err != nil {
				c.fail(w, r, err)
				return
			}
		}
		if err := h(w, r); err != nil {
			c.fail(w, r, err)
		}
	})
}

// fail answers err as a page (or, to a script, as JSON).
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := tripcap.ErrorCode(err)
	status := tchttp.StatusOf(code)
	msg := tripcap.ErrorMessage(err)
	if code == tripcap.EINTERNAL {
		if r.Context().Err() != nil {
			return
		}
		c.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", tripcap.RedactURLs(err.Error()))
		msg = "Something went wrong on the server; it is in the server's log."
	}
	if wantsJSON(r) {
		writeJSON(w, status, fieldError{Field: errorField(msg), Message: msg})
		return
	}
	c.renderStatus(w, r, status, "error", errorPage{Status: status, Code: code, Message: msg})
}

type errorPage struct {
	Status        int
	Code, Message string
}
