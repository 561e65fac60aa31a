package http

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/identity"
)

// Limits bound what a caller costs the server before, and while, it proves
// who it is. The zero value serves with no per-address limits and the
// default timeouts; DefaultLimits is what `tripcap server` runs with.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers (and, for a
	// new connection, the TLS handshake).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included. An
	// upload (PUT of a capture file) instead gets ReadTimeout again as
	// bytes arrive (at least three quarters of it ahead of the last), so a
	// slow but steady upload is not cut.
	ReadTimeout time.Duration
	// WriteTimeout bounds handling a request and writing its answer. A
	// long poll gets the most it may wait on top; a download gets
	// WriteTimeout again as bytes leave (likewise).
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection with no request under way.
	IdleTimeout time.Duration
	// UnauthenticatedPerAddress caps, per client address (IPv6: per /64),
	// the connections that have not yet presented a valid credential and,
	// apart, the requests whose credential is being checked. A connection
	// over the cap is closed at once; a request over it is answered 503.
	// 0: no cap.
	UnauthenticatedPerAddress int
	// AuthFailures is how many failed authentications an address may have
	// in AuthFailureWindow; beyond, its requests are answered 429 until the
	// window ends, before their credential is looked at. 0: no limit.
	AuthFailures      int
	AuthFailureWindow time.Duration
	// NameFailures is how many failed logins (POST /api/v1/login) or
	// token requests (/oauth2/token) one user name or client id may have
	// in AuthFailureWindow, from whatever addresses; beyond, attempts for
	// it are answered 429 until the window ends, before the password is
	// hashed. It slows a guesser spread over many addresses, at a cost:
	// anyone can keep a name's logins refused by failing NameFailures
	// times a window (tokens already issued keep working). So it is set
	// well above AuthFailures, which one address reaches first; a delay
	// instead would hold a request per guess and bound nothing against
	// parallel guessers. 0: no limit.
	NameFailures int
	// TrackedAddresses bounds the addresses the failure limiter remembers
	// (default 16384): memory stays bounded whatever addresses are used.
	TrackedAddresses int
}

// Default timeouts: a header in 10 s, a request in a minute, an answer in a
// minute, and idle connections kept two.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	DefaultWriteTimeout      = time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
)

// DefaultLimits are the limits of `tripcap server`.
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout: DefaultReadHeaderTimeout, ReadTimeout: DefaultReadTimeout,
		WriteTimeout: DefaultWriteTimeout, IdleTimeout: DefaultIdleTimeout,
		UnauthenticatedPerAddress: 64, AuthFailures: 30, AuthFailureWindow: time.Minute, NameFailures: 100,
	}
}

// WithLimits sets the server's timeouts and per-address limits.
func WithLimits(l Limits) Option { return func(s *Server) { s.limits = l } }

func (l *Limits) defaults() {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = DefaultReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.AuthFailureWindow <= 0 {
		l.AuthFailureWindow = time.Minute
	}
	if l.TrackedAddresses <= 0 {
		l.TrackedAddresses = 16384
	}
}

// Credential kinds, the reason label of tripcap_auth_failures_total.
const (
	credBearer      = "bearer"
	credFunctionKey = "function_key"
	credJoinToken   = "join_token"
	credMissing     = "missing"
	credLogin       = "login"  // a user's password (POST /api/v1/login)
	credOAuth2      = "oauth2" // a service principal's client secret (/oauth2/token)
)

// guard enforces Limits: it counts unauthenticated connections and
// requests per address and limits addresses that fail to authenticate.
type guard struct {
	lim      Limits
	log      *slog.Logger
	now      func() time.Time
	conns    addrCounts
	reqs     addrCounts
	failures *failureLimiter
	// names limits failed logins and token requests per claimed name.
	names *failureLimiter

	authFailures *prometheus.CounterVec
	rateLimited  prometheus.Counter
	refused      *prometheus.CounterVec
}

func newGuard(lim Limits, log *slog.Logger, reg prometheus.Registerer) *guard {
	lim.defaults()
	g := &guard{lim: lim, log: log, now: time.Now,
		conns: addrCounts{n: map[string]int{}}, reqs: addrCounts{n: map[string]int{}},
		failures: newFailureLimiter(lim.AuthFailures, lim.AuthFailureWindow, lim.TrackedAddresses),
		names:    newFailureLimiter(lim.NameFailures, lim.AuthFailureWindow, lim.TrackedAddresses),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tripcap_auth_failures_total",
			Help: "Requests refused for a missing or invalid credential, by the credential's kind (missing, bearer, function_key, join_token, login, oauth2)."}, []string{"reason"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{Name: "tripcap_auth_rate_limited_total",
			Help: "Requests answered 429 because their address failed to authenticate too often."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tripcap_http_unauthenticated_refused_total",
			Help: "Connections closed and requests answered 503 over the per-address cap on unauthenticated ones."}, []string{"kind"}),
	}
	for _, r := range []string{credMissing, credBearer, credFunctionKey, credJoinToken, credLogin, credOAuth2} {
		g.authFailures.WithLabelValues(r)
	}
	g.refused.WithLabelValues("connection")
	g.refused.WithLabelValues("request")
	reg.MustRegister(g.authFailures, g.rateLimited, g.refused)
	return g
}

// httpServer is the http.Server of Serve, with the timeouts.
func (g *guard) httpServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: g.lim.ReadHeaderTimeout, ReadTimeout: g.lim.ReadTimeout,
		WriteTimeout: g.lim.WriteTimeout, IdleTimeout: g.lim.IdleTimeout, ConnContext: connContext}
}

// addrKey is the unit limits count by: the IPv4 address, or the IPv6 /64
// (one host commonly holds a whole /64, so per-address keys would let it
// use 2^64 of them).
func addrKey(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return remote
	}
	a := ap.Addr().Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// addrCounts counts things per address; an address at 0 is forgotten, so
// the map holds only addresses with something open.
type addrCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *addrCounts) acquire(key string, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if max > 0 && c.n[key] >= max {
		return false
	}
	c.n[key]++
	return true
}

func (c *addrCounts) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key]--; c.n[key] <= 0 {
		delete(c.n, key)
	}
}

// failureLimiter counts failed authentications per address in fixed
// windows. It remembers at most capacity addresses: when full, expired
// windows go first, then an arbitrary one, so a caller with many
// addresses can make it forget, not grow.
type failureLimiter struct {
	mu       sync.Mutex
	max      int
	window   time.Duration
	capacity int
	entries  map[string]*failureWindow
}

func newFailureLimiter(max int, window time.Duration, capacity int) *failureLimiter {
	return &failureLimiter{max: max, window: window, capacity: capacity, entries: map[string]*failureWindow{}}
}

type failureWindow struct {
	start  time.Time
	n      int
	logged bool
}

// retryAfter says how long key is still limited (0: not limited), and
// whether this is the first refusal of its window (to log it once).
func (l *failureLimiter) retryAfter(key string, now time.Time) (time.Duration, bool) {
	if l.max <= 0 {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[key]
	if e == nil || e.n < l.max {
		return 0, false
	}
	left := e.start.Add(l.window).Sub(now)
	if left <= 0 {
		delete(l.entries, key)
		return 0, false
	}
	first := !e.logged
	e.logged = true
	return left, first
}

// fail records a failure of key; it returns the failures in the window.
func (l *failureLimiter) fail(key string, now time.Time) int {
	if l.max <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[key]
	if e != nil && now.Sub(e.start) >= l.window {
		e.start, e.n, e.logged = now, 0, false
	}
	if e == nil {
		if len(l.entries) >= l.capacity {
			l.evict(now)
		}
		e = &failureWindow{start: now}
		l.entries[key] = e
	}
	e.n++
	return e.n
}

// evict makes room for one entry: expired ones if any (a bounded sweep),
// else an arbitrary one (map order is random).
func (l *failureLimiter) evict(now time.Time) {
	const sweep = 64
	seen, removed := 0, 0
	var any string
	for k, e := range l.entries {
		if any == "" {
			any = k
		}
		if now.Sub(e.start) >= l.window {
			delete(l.entries, k)
			removed++
		}
		if seen++; seen >= sweep {
			break
		}
	}
	if removed == 0 {
		delete(l.entries, any)
	}
}

// trackedConn is a connection Serve accepted: it counts against its
// address until a request on it presents a valid credential.
type trackedConn struct {
	net.Conn
	g    *guard
	key  string
	once sync.Once
	// trusted holds the SHA-256 of the credentials that authenticated on
	// the connection (the first maxTrusted: an agent's join token, then
	// its own credential), and tainted is set (for good) when one failed:
	// only a request carrying one of those, on an untainted connection,
	// skips the failure limiter. So an established agent keeps working
	// from an address others abuse, while a caller holding a valid
	// credential can guess others neither on its connection, nor on many
	// connections it authenticated first, nor with HTTP/2 streams sent
	// before a failure taints the connection.
	mu      sync.Mutex
	trusted [][sha256.Size]byte
	tainted atomic.Bool
}

// maxTrusted bounds the credentials a connection remembers.
const maxTrusted = 4

func (c *trackedConn) release() { c.once.Do(func() { c.g.conns.release(c.key) }) }

func (c *trackedConn) Close() error {
	c.release()
	return c.Conn.Close()
}

// authenticated notes that cred authenticated on the connection.
func (c *trackedConn) authenticated(cred string) {
	if !c.tainted.Load() && cred != "" {
		h := sha256.Sum256([]byte(cred))
		c.mu.Lock()
		if len(c.trusted) < maxTrusted && !slices.Contains(c.trusted, h) {
			c.trusted = append(c.trusted, h)
		}
		c.mu.Unlock()
	}
	c.release()
}

func (c *trackedConn) failed() { c.tainted.Store(true) }

// exempts reports whether a request carrying cred skips the failure
// limiter: cred is the one that made the connection trusted.
func (c *trackedConn) exempts(cred string) bool {
	if c == nil || cred == "" || c.tainted.Load() {
		return false
	}
	h := sha256.Sum256([]byte(cred))
	c.mu.Lock()
	defer c.mu.Unlock()
	found := 0
	for _, t := range c.trusted {
		found |= subtle.ConstantTimeCompare(h[:], t[:])
	}
	return found == 1
}

// limitListener closes, at once, a new connection from an address that
// already has UnauthenticatedPerAddress connections not yet authenticated.
type limitListener struct {
	net.Listener
	g *guard
}

func (l limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := addrKey(c.RemoteAddr().String())
		if !l.g.conns.acquire(key, l.g.lim.UnauthenticatedPerAddress) {
			l.g.refused.WithLabelValues("connection").Inc()
			_ = c.Close()
			continue
		}
		return &trackedConn{Conn: c, g: l.g, key: key}, nil
	}
}

type connCtxKey struct{}

// connContext hands each request its connection's tracker.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if t, ok := c.(*trackedConn); ok {
		return context.WithValue(ctx, connCtxKey{}, t)
	}
	return ctx
}

func connOf(r *http.Request) *trackedConn {
	t, _ := r.Context().Value(connCtxKey{}).(*trackedConn)
	return t
}

// refusal is an error answered with a status of its own (429, 503).
type refusal struct {
	status int
	err    *tripcap.Error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// admit runs check, the check of r's credential cred (of the given kind;
// "" when r carries none), under the limits: an address that failed too
// often is answered 429 without check running; one with too many
// credentials being checked, 503. A request carrying the credential that
// made its connection trusted skips both. A failed check is counted
// against the address and returned. Refusals close an HTTP/1 connection
// rather than read a body the request will not use.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, kind, cred string, check func() error) error {
	g := s.guard
	key := addrKey(r.RemoteAddr)
	conn := connOf(r)
	if !conn.exempts(cred) {
		release, err := g.enter(w, r, key)
		if err != nil {
			return err
		}
		defer release()
	}
	err := check()
	if err == nil {
		if conn != nil {
			conn.authenticated(cred)
		}
		return nil
	}
	if tripcap.ErrorCode(err) != tripcap.EUNAUTHORIZED {
		return err
	}
	if cred == "" {
		// A missing credential guesses nothing; a wrong one may.
		g.authFailures.WithLabelValues(credMissing).Inc()
	} else {
		g.failed(key, "", kind, conn)
	}
	closeUnread(w, r)
	return err
}

// admitClaim runs check, the check of a secret sent in r's body (a
// password, a client secret) for a name the body claims (read reads it),
// under admit's limits, with no connection exempt, and under a limit of
// failures per claimed name: a name that failed too often is answered 429
// before its secret is checked, whatever the address. A wrong secret
// (EUNAUTHORIZED, or OAuth2's invalid_client) counts against both; a check
// too busy to run (EUNAVAILABLE) is answered 503 with Retry-After.
func (s *Server) admitClaim(w http.ResponseWriter, r *http.Request, kind string, read func() (name string, err error), check func() error) error {
	g := s.guard
	key := addrKey(r.RemoteAddr)
	release, err := g.enter(w, r, key)
	if err != nil {
		return err
	}
	defer release()
	name, err := read()
	if err != nil {
		return err
	}
	// Names are matched regardless of case, and clipped: the map keys
	// stay small whatever is claimed.
	nameKey := kind + ":" + strings.ToLower(name[:min(len(name), 128)])
	if left, first := g.names.retryAfter(nameKey, g.now()); left > 0 {
		g.rateLimited.Inc()
		if first {
			g.log.Warn("authentication failures: name rate-limited", "kind", kind, "name", name[:min(len(name), 64)],
				"failures", g.lim.NameFailures, "window", g.lim.AuthFailureWindow.String(), "retryAfter", left.Round(time.Second).String())
		}
		return refuse(w, r, http.StatusTooManyRequests, left,
			tripcap.Errorf(tripcap.EUNAVAILABLE, "too many failed attempts for this name; retry after %s", retryAfter(left)))
	}
	err = check()
	var oerr *identity.OAuthError
	switch {
	case err == nil:
		return nil
	case tripcap.ErrorCode(err) == tripcap.EUNAUTHORIZED || errors.As(err, &oerr) && oerr.Code == "invalid_client":
		g.failed(key, nameKey, kind, connOf(r))
	case tripcap.ErrorCode(err) == tripcap.EUNAVAILABLE:
		return refuse(w, r, http.StatusServiceUnavailable, time.Second, tripcap.Errorf(tripcap.EUNAVAILABLE, "%s", tripcap.ErrorMessage(err)))
	}
	return err
}

// enter answers 429 to an address that failed to authenticate too often
// and 503 to one with too many credentials being checked at once; else it
// counts r among the latter until release is called.
func (g *guard) enter(w http.ResponseWriter, r *http.Request, key string) (release func(), err error) {
	if left, first := g.failures.retryAfter(key, g.now()); left > 0 {
		g.rateLimited.Inc()
		if first {
			g.log.Warn("authentication failures: address rate-limited", "address", key,
				"failures", g.lim.AuthFailures, "window", g.lim.AuthFailureWindow.String(), "retryAfter", left.Round(time.Second).String())
		}
		return nil, refuse(w, r, http.StatusTooManyRequests, left,
			tripcap.Errorf(tripcap.EUNAVAILABLE, "too many failed authentications from this address; retry after %s", retryAfter(left)))
	}
	if !g.reqs.acquire(key, g.lim.UnauthenticatedPerAddress) {
		g.refused.WithLabelValues("request").Inc()
		return nil, refuse(w, r, http.StatusServiceUnavailable, time.Second,
			tripcap.Errorf(tripcap.EUNAVAILABLE, "too many unauthenticated requests from this address at once; retry later"))
	}
	return func() { g.reqs.release(key) }, nil
}

// failed counts a wrong credential of the given kind: against the address,
// the claimed name (when nameKey is set) and the connection.
func (g *guard) failed(key, nameKey, kind string, conn *trackedConn) {
	g.authFailures.WithLabelValues(kind).Inc()
	now := g.now()
	g.failures.fail(key, now)
	if nameKey != "" {
		g.names.fail(nameKey, now)
	}
	if conn != nil {
		conn.failed()
	}
}

// refuse sets Retry-After and returns the refusal to answer.
func refuse(w http.ResponseWriter, r *http.Request, status int, after time.Duration, err *tripcap.Error) error {
	w.Header().Set("Retry-After", retryAfter(after))
	closeUnread(w, r)
	return &refusal{status: status, err: err}
}

// retryAfter is a Retry-After value: whole seconds, rounded up.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// closeUnread asks net/http to close an HTTP/1 connection after the answer
// instead of reading (up to 256 KiB of) a body no handler will read: a
// refused caller cannot keep the connection busy by sending it slowly.
// (HTTP/2 resets the stream by itself.)
func closeUnread(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}

// Transfers: routes whose request or answer may take longer than the
// timeouts, as long as it makes progress.
const (
	transferUpload   = "upload"   // a large request body (capture file PUT)
	transferDownload = "download" // a large answer (file download)
	transferPoll     = "poll"     // an answer that waits (agent long poll)
)

// withTransfer extends the deadlines of a route with a transfer: a long
// poll gets the most it may wait on top of WriteTimeout; an upload gets
// ReadTimeout (and WriteTimeout) again as bytes arrive; a download gets
// WriteTimeout again as bytes leave (each at most every extendAfter). One
// global timeout long enough for them would let any request hold a
// connection that long.
func (s *Server) withTransfer(kind string, next http.Handler) http.Handler {
	lim := s.guard.lim
	switch kind {
	case transferPoll:
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			_ = rc.SetWriteDeadline(time.Now().Add(controlplane.MaxPollWait + lim.WriteTimeout))
			if r.ProtoMajor == 2 && r.ContentLength == 0 {
				// HTTP/2 arms a timer per stream for ReadTimeout, which
				// bounds reading a body this poll does not have: with
				// thousands of polls waiting, thousands of timers the
				// runtime walks through (see controlplane's pollClock).
				_ = rc.SetReadDeadline(time.Time{})
			}
			next.ServeHTTP(w, r)
		})
	case transferUpload:
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			r.Body = &progressReader{body: r.Body, every: extendAfter(min(lim.ReadTimeout, lim.WriteTimeout)), extend: func(now time.Time) {
				_ = rc.SetReadDeadline(now.Add(lim.ReadTimeout))
				_ = rc.SetWriteDeadline(now.Add(lim.WriteTimeout))
			}}
			next.ServeHTTP(w, r)
		})
	case transferDownload:
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			next.ServeHTTP(&progressWriter{ResponseWriter: w, every: extendAfter(lim.WriteTimeout), extend: func(now time.Time) {
				_ = rc.SetWriteDeadline(now.Add(lim.WriteTimeout))
			}}, r)
		})
	}
	return next
}

// extendEvery bounds how often a transfer's deadline is moved: often
// enough to matter for a timeout of seconds, rarely enough to cost nothing.
const extendEvery = 250 * time.Millisecond

// extendAfter is how long a transfer's deadline stands before it is moved
// on: a quarter of the timeout (at least extendEvery), so the deadline is
// always at least three quarters of it ahead of the last progress. Moving
// it costs HTTP/2 a message to the connection's goroutine and a timer
// reset, for each deadline: a metric stream whose agent writes a frame a
// second would otherwise pay that every second.
func extendAfter(timeout time.Duration) time.Duration {
	return max(extendEvery, timeout/4)
}

// progressReader moves the deadlines forward as the body is read, once
// every has passed since it last did.
type progressReader struct {
	body   io.ReadCloser
	extend func(time.Time)
	every  time.Duration
	last   time.Time
	done   bool
}

func (p *progressReader) Read(b []byte) (int, error) {
	if p.done {
		return p.body.Read(b)
	}
	p.tick()
	n, err := p.body.Read(b)
	if err != nil {
		// At the end net/http clears the read deadline for its background
		// read; one set after would cut the handler's context once passed.
		p.done = true
	} else if n > 0 {
		p.tick()
	}
	return n, err
}

func (p *progressReader) Close() error { return p.body.Close() }

func (p *progressReader) tick() {
	if now := time.Now(); now.Sub(p.last) >= p.every {
		p.last = now
		p.extend(now)
	}
}

// progressWriter moves the write deadline forward as the answer is written.
type progressWriter struct {
	http.ResponseWriter
	extend func(time.Time)
	every  time.Duration
	last   time.Time
}

func (p *progressWriter) Write(b []byte) (int, error) {
	if now := time.Now(); now.Sub(p.last) >= p.every {
		p.last = now
		p.extend(now)
	}
	return p.ResponseWriter.Write(b)
}

func (p *progressWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

func (p *progressWriter) Flush() {
	if f, ok := p.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// refusalStatus reports whether err is a refusal, and its status.
func refusalStatus(err error) (int, bool) {
	var rf *refusal
	if errors.As(err, &rf) {
		return rf.status, true
	}
	return 0, false
}
