// Package http serves tripcap's native REST API (/api/v1) and the agent
// protocol over net/http, and provides the client the CLI and agents use.
// Handlers only translate HTTP to controlplane calls and back.
package http

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/arm"
	"github.com/tripcap/tripcap/audit"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/identity"
	"github.com/tripcap/tripcap/responder"
)

// MaxJSONBody bounds request bodies other than file uploads.
const MaxJSONBody = 1 << 20

// Server is the control plane's HTTP server.
type Server struct {
	svc      *controlplane.Service
	log      *slog.Logger
	handler  http.Handler
	registry *prometheus.Registry
	requests *prometheus.HistogramVec
	routes   []route
	mux      *http.ServeMux
	// monitor serves metrics, alert rules, action groups and alerts when set.
	monitor *controlplane.Monitor
	// responders serves responders and /api/functions/{responder} when set.
	responders *responder.Responders
	// identity serves principals, tokens, role assignments, login and OAuth2 when set.
	identity *identity.Service
	// tls, when set, makes Serve speak HTTPS (h2 and HTTP/1.1 by ALPN)
	// instead of HTTP/1.1 and h2c.
	tls *tls.Config
	// audit, when set, records audited calls (see audit.go).
	audit *audit.Recorder
	// limits and guard bound unauthenticated callers (limits.go).
	limits Limits
	guard  *guard
	// arm, when set, serves the Azure Resource Manager surface (arm.go).
	arm *arm.API
}

// Option configures a Server.
type Option func(*Server)

// WithMonitor serves the monitor's API (metrics, alert rules, action
// groups, alerts) beside the control plane's.
func WithMonitor(m *controlplane.Monitor) Option { return func(s *Server) { s.monitor = m } }

// WithTLS serves HTTPS with cfg (its GetCertificate or Certificates).
func WithTLS(cfg *tls.Config) Option { return func(s *Server) { s.tls = cfg } }

// NewServer returns the HTTP server over the control plane.
func NewServer(svc *controlplane.Service, log *slog.Logger, opts ...Option) *Server {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "http")
	s := &Server{svc: svc, log: log, registry: prometheus.NewRegistry(), mux: http.NewServeMux()}
	for _, o := range opts {
		o(s)
	}
	s.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tripcap_http_request_duration_seconds",
		Help:    "HTTP request latency by route and status code.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60},
	}, []string{"route", "code"})
	s.guard = newGuard(s.limits, log, s.registry)
	c := svc.Counters()
	s.registry.MustRegister(s.requests, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tripcap_agent_polls_waiting", Help: "Agents' long polls waiting for a change."},
			func() float64 { return float64(c.PollsWaiting.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tripcap_agent_heartbeats_total", Help: "Agent heartbeats received."},
			func() float64 { return float64(c.Heartbeats.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tripcap_agent_session_reports_total", Help: "Session reports received from agents."},
			func() float64 { return float64(c.Reports.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tripcap_capture_file_uploads_total", Help: "Capture files stored."},
			func() float64 { return float64(c.Uploads.Load()) }))
	s.routes = s.routeTable()
	if s.monitor != nil {
		s.routes = append(s.routes, s.monitorRoutes()...)
		s.registerMonitorMetrics()
	}
	if s.identity != nil {
		s.routes = append(s.routes, s.identityRoutes()...)
		s.routes = append(s.routes, s.aadRoutes()...)
	}
	if s.responders != nil {
		s.routes = append(s.routes, s.responderRoutes()...)
		s.mux.Handle("POST /api/functions/{responder}", s.auditing(functionAction, "POST", "/api/functions/{responder}", s.functionHandler()))
	}

	if s.audit != nil {
		s.routes = append(s.routes, s.auditRoutes()...)
		s.registerAuditMetrics()
	}
	mux := s.mux
	for _, rt := range s.routes {
		mux.Handle(rt.Method+" "+rt.Path, s.withTransfer(rt.Transfer, s.instrument(rt)))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.Handle("GET /metrics", s.auditing("metrics", "GET", "/metrics", s.authenticate(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))))
	s.handler = mux
	if s.arm != nil {
		s.handler = s.withARM(mux)
	}
	return s
}

// Registry is the server's Prometheus registry, for other layers' metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Mount adds a handler for a pattern outside /api/v1 (e.g. the ARM surface).
// Call it before serving.
func (s *Server) Mount(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Serve serves on l until ctx ends, then shuts down gracefully: HTTPS when
// the server has a TLS config (HTTP/2 by ALPN, so an agent keeps one
// connection, and HTTP/1.1 for the rest), else HTTP/1.1 and h2c.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	// Timeouts bound every request; the routes that stream (uploads,
	// downloads, long polls) extend theirs as they go (withTransfer).
	hs := s.guard.httpServer(s)
	hs.BaseContext = func(net.Listener) context.Context { return ctx }
	hs.Protocols, hs.TLSConfig = new(http.Protocols), s.tls
	hs.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	l = limitListener{Listener: l, g: s.guard}
	hs.Protocols.SetHTTP1(true)
	hs.Protocols.SetHTTP2(true)
	hs.Protocols.SetUnencryptedHTTP2(s.tls == nil)
	// An agent's open long poll counts as its heartbeat: a connection
	// silent for 30 s is pinged, and one that does not answer is closed,
	// which ends its poll, so a host that vanished without a FIN still goes
	// Offline in time. (Live agents ping first; see NewClient.)
	hs.HTTP2 = &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second}
	errc := make(chan error, 1)
	go func() {
		if s.tls != nil {
			errc <- hs.ServeTLS(l, "", "")
			return
		}
		errc <- hs.Serve(l)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		// Long polls are still open: they end with the server.
		err = hs.Close()
	}
	return err
}

// route is one API operation; the table drives both the mux and the OpenAPI document.
type route struct {
	Method, Path, ID, Summary string
	// Auth names who may call: "agent" (an agent credential), "join" (a
	// join token), "anonymous" (anyone, no credential looked at), or "" for
	// any authenticated principal, whom the service authorizes.
	Auth string
	// Perm is the permission the service asks of a principal (at the host
	// the call acts on), documented as x-tripcap-permission.
	Perm     tripcap.Permission
	Query    []param
	Request  any
	Response any
	// Status is the success status code.
	Status int
	// Transfer, when set, names how the route's body or answer may
	// outlast the timeouts while it makes progress (limits.go).
	Transfer string
	Handler  func(w http.ResponseWriter, r *http.Request) error
}

type param struct {
	Name, Type, Description string
}

func (s *Server) instrument(rt route) http.Handler {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := rt.Handler(w, r); err != nil {
			s.Error(w, r, err)
		}
	})
	var inner http.Handler = h
	if rt.Auth != "join" && rt.Auth != "anonymous" {
		inner = s.authenticate(h)
	}
	if isAgentPath(rt.Path) {
		inner = s.agentProtocol(inner)
	}
	return s.observe(rt.ID, s.auditing(rt.ID, rt.Method, rt.Path, inner))
}

// observe records the latency of the operation id's calls by status code.
func (s *Server) observe(id string, inner http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		inner.ServeHTTP(sw, r)
		s.requests.WithLabelValues(id, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int)        { w.code = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// authenticate attaches the caller's principal to the request or refuses it.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return s.authenticateWith(next, s.Error)
}

// authenticateWith is authenticate answering a refusal with fail (the ARM
// surface writes its own error shape).
func (s *Server) authenticateWith(next http.Handler, fail func(http.ResponseWriter, *http.Request, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := BearerToken(r)
		var p *tripcap.Principal
		err := s.admit(w, r, credBearer, token, func() (err error) {
			p, err = s.svc.Authenticate(r.Context(), token)
			return err
		})
		if err != nil {
			fail(w, r, err)
			return
		}
		noteAuditPrincipal(r.Context(), p)
		next.ServeHTTP(w, r.WithContext(tripcap.NewContextWithPrincipal(r.Context(), p)))
	})
}

// BearerToken returns the request's bearer credential, or "".
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// ErrorBody is every error response: {"error":{"code","message"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the body of an error.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// StatusOf maps an error code to its HTTP status.
func StatusOf(code string) int {
	switch code {
	case tripcap.EINVALID:
		return http.StatusBadRequest
	case tripcap.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case tripcap.EFORBIDDEN:
		return http.StatusForbidden
	case tripcap.ENOTFOUND:
		return http.StatusNotFound
	case tripcap.ECONFLICT, tripcap.ELIMIT, tripcap.EUNAVAILABLE:
		return http.StatusConflict
	case tripcap.EPRECONDITION:
		return http.StatusPreconditionFailed
	case tripcap.ERATELIMIT:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// Error writes err as the standard error body; internal errors are logged, not shown.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := tripcap.ErrorCode(err), tripcap.ErrorMessage(err)
	if code == tripcap.EINTERNAL {
		if r.Context().Err() != nil {
			return // the client went away
		}
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", tripcap.RedactURLs(err.Error()))
	}
	status := StatusOf(code)
	if st, ok := refusalStatus(err); ok {
		status = st
	}
	if wait, ok := tripcap.RetryAfter(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	}
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// decodeJSON reads a bounded JSON body into v, refusing unknown fields, with
// errors that name the field.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, MaxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return JSONError(err)
	}
	if dec.More() {
		return tripcap.Errorf(tripcap.EINVALID, "body: more than one JSON value")
	}
	return nil
}

// JSONError turns a decoding error into an EINVALID that says where and why.
func JSONError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var big *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return tripcap.Errorf(tripcap.EINVALID, "body: empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return tripcap.Errorf(tripcap.EINVALID, "body: malformed JSON: it ends early")
	case errors.As(err, &syn):
		return tripcap.Errorf(tripcap.EINVALID, "body: malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		return tripcap.Errorf(tripcap.EINVALID, "%s: expected %s, got JSON %s", typ.Field, typ.Type, typ.Value)
	case errors.As(err, &big):
		return tripcap.Errorf(tripcap.EINVALID, "body: larger than %d bytes", big.Limit)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return tripcap.Errorf(tripcap.EINVALID, "body: unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return tripcap.Errorf(tripcap.EINVALID, "body: %s", err.Error())
}

// List is a page of a listing; NextLink, when set, fetches the next page.
type List[T any] struct {
	Value    []T    `json:"value"`
	NextLink string `json:"nextLink,omitempty"`
}

func pageParams(r *http.Request) (cursor string, limit int, err error) {
	q := r.URL.Query()
	limit = 100
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return "", 0, tripcap.Errorf(tripcap.EINVALID, "limit: %q is not a number in 1..1000", v)
		}
	}
	return q.Get("cursor"), limit, nil
}

func nextLink(r *http.Request, cursor string) string {
	if cursor == "" {
		return ""
	}
	q := r.URL.Query()
	q.Set("cursor", cursor)
	return r.URL.Path + "?" + q.Encode()
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, tripcap.Errorf(tripcap.EINVALID, "%s: %q is not true or false", name, v)
	}
	return b, nil
}

func durationParam(r *http.Request, name string, def time.Duration) (time.Duration, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, tripcap.Errorf(tripcap.EINVALID, "%s: %q is not a duration like 30s", name, v)
	}
	return d, nil
}
