// Package arm serves tripcap's Azure Resource Manager-compatible surface:
// the paths under /subscriptions/… that the official Azure SDKs, Az
// PowerShell and raw REST callers speak, translated onto tripcap's services.
// The services authorize; this package only translates.
//
// # The framework
//
// An *API holds providers (a namespace such as Microsoft.Network with the
// api-versions it accepts) and their operations. It answers every request
// the ARM way: x-ms-request-id and x-ms-correlation-request-id on every
// answer, the api-version checked against the operation's provider before
// the handler runs, errors as {"error":{"code","message","target","details"}}
// (tripcap error codes are mapped by ErrorOf), lists as {"value","nextLink"}
// with an absolute nextLink, and long-running operations through an
// operation-status resource polled at absolute URLs (lro.go).
//
// http.Server mounts API.Handler (http/arm.go) behind its own
// authentication, audit and limits; the wrap function it passes sees each
// Route, so audit records and metrics name the operation.
//
// # Adding a provider file
//
// A provider file (arm/network.go, arm/compute.go, …) has one function
// func(a *API, svc Services) that declares its provider and routes, and
// adds its name to providerFiles (services.go), e.g.
//
//	func registerCompute(a *API, svc Services) {
//		p := a.Provider("Microsoft.Compute", "2017-03-30", "2024-07-01")
//		p.Handle(http.MethodGet, "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/virtualMachines/{vmName}",
//			"VirtualMachines_Get", func(w http.ResponseWriter, r *Request) error {
//				h, err := svc.Control.FindHost(r.Context(), …r.Param("vmName")…)
//				if err != nil {
//					return Recode(err, tripcap.ENOTFOUND, "ResourceNotFound")
//				}
//				return WriteJSON(w, http.StatusOK, vmOf(h))
//			})
//	}
//
// Patterns are absolute paths; literal segments match regardless of case
// (ARM ids are case-insensitive), {name} matches one non-empty segment.
// {subscriptionId} is checked (a GUID this server serves) and
// {resourceGroupName} too (Azure's naming rule) before the handler runs,
// after the api-version. Handlers return errors instead of writing them:
// an *Error keeps its status and code; a tripcap error is mapped by its code
// (ENOTFOUND → 404 ResourceNotFound, EINVALID → 400 InvalidRequestFormat,
// EFORBIDDEN → 403 AuthorizationFailed, ECONFLICT → 409 Conflict, …; see
// ErrorOf), Recode gives it a provider's own code. Request.Decode reads a
// body (400 InvalidRequestFormat naming where it fails). Lists answer with
// WritePage (Paginate cuts a page from a whole list): $skipToken in, an
// absolute nextLink out. A long-running operation registers its progress
// function with Provider.Operation(kind, f) and answers with
// Request.Accepted(w, 201 or 202, r.NewOperation(kind, resourceID,
// location), body): the client then polls the provider's
// …/locations/{location}/operations/{id} (Azure-AsyncOperation) or
// …/operationResults/{id} (Location), and f says where it stands each time.
package arm

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
)

// API is the ARM surface: providers, their routes and the shared
// behaviour of every answer.
type API struct {
	log       *slog.Logger
	baseURL   string
	pageSize  int
	retry     time.Duration
	providers map[string]*Provider // by lower-case namespace
	routes    []*Route
	subs      SubscriptionChecker
	now       func() time.Time
}

// SubscriptionChecker says whether a subscription id is one this server
// serves; a route with {subscriptionId} answers 404 SubscriptionNotFound
// for any other.
type SubscriptionChecker func(r *http.Request, id string) (bool, error)

// Option configures an API.
type Option func(*API)

// WithBaseURL sets the absolute URL (scheme://host[:port]) the API writes
// in nextLink and polling headers, for a server behind a proxy. By default
// it is taken from each request (https when it came over TLS).
func WithBaseURL(u string) Option { return func(a *API) { a.baseURL = strings.TrimSuffix(u, "/") } }

// WithPageSize sets how many items a list answers per page (default 100).
func WithPageSize(n int) Option { return func(a *API) { a.pageSize = n } }

// WithRetryAfter sets the Retry-After of long-running operations (default 1 s).
func WithRetryAfter(d time.Duration) Option { return func(a *API) { a.retry = d } }

// WithSubscriptions sets which subscription ids exist (by default, those
// the control plane serves: controlplane.Service.HasSubscription).
func WithSubscriptions(c SubscriptionChecker) Option { return func(a *API) { a.subs = c } }

// New returns the API serving every provider file's routes
// (providerFiles) over svc.
func New(log *slog.Logger, svc Services, opts ...Option) *API {
	if log == nil {
		log = slog.Default()
	}
	a := &API{log: log.With("component", "arm"), pageSize: 100, retry: time.Second,
		providers: map[string]*Provider{}, now: time.Now}
	for _, o := range opts {
		o(a)
	}
	if a.subs == nil && svc.Control != nil {
		a.subs = func(r *http.Request, id string) (bool, error) { return svc.Control.HasSubscription(r.Context(), id) }
	}
	for _, reg := range providerFiles() {
		reg(a, svc)
	}
	return a
}

// Provider is a resource provider namespace and the api-versions its
// operations accept.
type Provider struct {
	api       *API
	Namespace string
	versions  []string
	ops       map[string]OperationFunc
}

// Provider declares (or returns) the namespace with the api-versions it
// accepts; versions given again are added.
func (a *API) Provider(namespace string, versions ...string) *Provider {
	key := strings.ToLower(namespace)
	p, ok := a.providers[key]
	if !ok {
		p = &Provider{api: a, Namespace: namespace, ops: map[string]OperationFunc{}}
		a.providers[key] = p
		p.registerOperations()
	}
	for _, v := range versions {
		if !slices.Contains(p.versions, v) {
			p.versions = append(p.versions, v)
		}
	}
	slices.Sort(p.versions)
	return p
}

// Versions are the api-versions the provider accepts, oldest first.
func (p *Provider) Versions() []string { return slices.Clone(p.versions) }

// HandlerFunc serves one operation; a returned error is written as ARM's
// error body (nothing must have been written yet).
type HandlerFunc func(w http.ResponseWriter, r *Request) error

// Route is one operation: what http.Server's wrap sees.
type Route struct {
	Method  string
	Pattern string
	// ID names the operation as Azure's REST specs do (e.g.
	// "PacketCaptures_Create"), for audit records and metrics.
	ID string
	// Action is the Azure operation the route performs
	// ("Microsoft.Network/networkWatchers/packetCaptures/write"), named in
	// an AuthorizationFailed answer.
	Action   string
	provider *Provider
	segs     []string
	handler  HandlerFunc
	served   http.Handler // set by Handler
}

// Handle adds an operation to the provider. It panics on a malformed or
// duplicate pattern (a programming error, found at start).
func (p *Provider) Handle(method, pattern, id string, h HandlerFunc) {
	segs := strings.Split(strings.TrimPrefix(pattern, "/"), "/")
	if pattern != "/subscriptions" && !strings.HasPrefix(pattern, "/subscriptions/") {
		panic("arm: pattern must be under /subscriptions (see Patterns): " + pattern)
	}
	for _, s := range segs {
		if s == "" {
			panic("arm: empty segment in pattern " + pattern)
		}
	}
	for _, rt := range p.api.routes {
		if rt.Method == method && samePattern(rt.segs, segs) {
			panic("arm: duplicate route " + method + " " + pattern)
		}
	}
	p.api.routes = append(p.api.routes, &Route{Method: method, Pattern: pattern, ID: id, Action: actionOf(method, segs), provider: p, segs: segs, handler: h})
}

// actionOf is the Azure operation of a route: its namespace and resource
// types, then read, write or delete by method, or a POST's verb and
// "action" (…/packetCaptures/stop/action). A path without a provider is
// Microsoft.Resources' (subscriptions, resourceGroups).
func actionOf(method string, segs []string) string {
	ns, rest := "Microsoft.Resources", segs
	if i := lastProviders(segs); i >= 0 && i+1 < len(segs) {
		ns, rest = segs[i+1], segs[i+2:]
	}
	var types []string
	verb := ""
	for i, s := range rest {
		switch {
		case isParam(s):
		case method == http.MethodPost && i == len(rest)-1 && i > 0 && isParam(rest[i-1]):
			verb = s + "/action"
		default:
			types = append(types, s)
		}
	}
	if verb == "" {
		switch method {
		case http.MethodPut, http.MethodPatch:
			verb = "write"
		case http.MethodDelete:
			verb = "delete"
		case http.MethodPost:
			verb = "action"
		default:
			verb = "read"
		}
	}
	return strings.Join(append(append([]string{ns}, types...), verb), "/")
}

// lastProviders is the index of the last "providers" segment: an extension
// resource's (…/virtualMachines/{vm}/providers/Microsoft.Insights/metrics)
// operation is its own provider's, as in Azure.
func lastProviders(segs []string) int {
	for i := len(segs) - 1; i >= 0; i-- {
		if strings.EqualFold(segs[i], "providers") {
			return i
		}
	}
	return -1
}

func samePattern(a, b []string) bool {
	return slices.EqualFunc(a, b, func(x, y string) bool {
		return isParam(x) && isParam(y) || strings.EqualFold(x, y)
	})
}

func isParam(seg string) bool { return strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") }

// match returns the route's parameters if the path's segments fit.
func (rt *Route) match(segs []string) (map[string]string, bool) {
	if len(segs) != len(rt.segs) {
		return nil, false
	}
	var params map[string]string
	for i, s := range rt.segs {
		if isParam(s) {
			if segs[i] == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[s[1:len(s)-1]] = segs[i]
			continue
		}
		if !strings.EqualFold(s, segs[i]) {
			return nil, false
		}
	}
	return params, true
}

// IsPath says whether a request path is the ARM surface's: its first
// segment is "subscriptions" in any case (ARM paths are case-insensitive:
// Az PowerShell and old SDKs send /Subscriptions/…/ResourceGroups/…).
// http.Server sends such paths to Handler before its ServeMux, whose
// patterns are case-sensitive and which would redirect
// /subscriptions/{id}/resourceGroups (no trailing slash) with an HTML 307;
// no ServeMux pattern is needed, so none overlaps the token endpoints'
// /{tenant}/oauth2/….
func IsPath(p string) bool {
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return strings.EqualFold(first, "subscriptions")
}

// Handler returns the http.Handler of the whole surface. wrap, when not
// nil, wraps each operation's handler (authentication, audit, metrics)
// once, here; requests that match no operation go through wrap with a
// Route whose ID is "ARM_NotFound", so they are authenticated too.
func (a *API) Handler(wrap func(rt *Route, h http.Handler) http.Handler) http.Handler {
	if wrap == nil {
		wrap = func(_ *Route, h http.Handler) http.Handler { return h }
	}
	for _, rt := range a.routes {
		rt.served = wrap(rt, a.serve(rt))
	}
	unknown := &Route{Method: "*", Pattern: "/subscriptions/…", ID: "ARM_NotFound"}
	unknownServed := wrap(unknown, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, a.unmatched(r), a.log)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setRequestIDs(w, r)
		segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
		for _, rt := range a.routes {
			if rt.Method != r.Method {
				continue
			}
			if params, ok := rt.match(segs); ok {
				r = r.WithContext(withParams(r.Context(), params))
				// The wrappers (audit records) read them as the mux's.
				for k, v := range params {
					r.SetPathValue(k, v)
				}
				rt.served.ServeHTTP(w, r)
				return
			}
		}
		unknownServed.ServeHTTP(w, r)
	})
}

// unmatched is the error for a path or method no route serves.
func (a *API) unmatched(r *http.Request) *Error {
	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	for _, rt := range a.routes {
		if _, ok := rt.match(segs); ok {
			return Errorf(http.StatusMethodNotAllowed, "HttpMethodNotAllowed",
				"The HTTP method '%s' is not supported at '%s'.", r.Method, r.URL.Path)
		}
	}
	ns, rest := "Microsoft.Resources", segs[min(2, len(segs)):]
	if i := slices.IndexFunc(segs, func(s string) bool { return strings.EqualFold(s, "providers") }); i >= 0 && i+1 < len(segs) {
		ns, rest = segs[i+1], segs[i+2:]
	}
	if a.providers[strings.ToLower(ns)] == nil {
		return Errorf(http.StatusBadRequest, "NoRegisteredProviderFound",
			"No registered resource provider found for namespace '%s'.", ns)
	}
	// The type is the path's type segments after the namespace
	// (networkWatchers/nothing), as Azure names it.
	var types []string
	for i := 0; i < len(rest); i += 2 {
		types = append(types, rest[i])
	}
	return Errorf(http.StatusBadRequest, "InvalidResourceType",
		"The resource type '%s' could not be found in the namespace '%s' for api version '%s'.", strings.Join(types, "/"), ns, r.URL.Query().Get("api-version"))
}

// serve checks what every operation needs (api-version, subscription)
// and runs the handler.
func (a *API) serve(rt *Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		r := &Request{Request: hr, api: a, route: rt, params: paramsOf(hr.Context())}
		err := a.check(r)
		if err == nil {
			err = rt.handler(w, r)
		}
		if err != nil {
			WriteError(w, hr, authorizationFailed(r, err), a.log)
		}
	})
}

func (a *API) check(r *Request) error {
	v, err := r.route.provider.checkVersion(r.URL.Query())
	if err != nil {
		return err
	}
	r.APIVersion = v
	if sub, ok := r.params["subscriptionId"]; ok {
		if err := CheckSubscriptionID(sub); err != nil {
			return err
		}
		if a.subs != nil {
			ok, err := a.subs(r.Request, sub)
			if err != nil {
				return fmt.Errorf("look up subscription %s: %w", sub, err)
			}
			if !ok {
				return Errorf(http.StatusNotFound, "SubscriptionNotFound", "The subscription '%s' could not be found.", sub)
			}
		}
	}
	if rg, ok := r.params["resourceGroupName"]; ok {
		if err := CheckResourceGroupName(rg); err != nil {
			return err
		}
	}
	return nil
}

// baseOf is the absolute scheme://host the client reached.
func (a *API) baseOf(r *http.Request) string {
	if a.baseURL != "" {
		return a.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// setRequestIDs stamps the answer with ARM's request headers: a new
// x-ms-request-id, the caller's x-ms-correlation-request-id (or a new
// one), and x-ms-client-request-id echoed when asked for.
func setRequestIDs(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	id := newUUID()
	h.Set("x-ms-request-id", id)
	h.Set("x-ms-correlation-request-id", cmp.Or(safeHeaderID(r.Header.Get("x-ms-correlation-request-id")), id))
	if c := safeHeaderID(r.Header.Get("x-ms-client-request-id")); c != "" && !strings.EqualFold(r.Header.Get("x-ms-return-client-request-id"), "false") {
		h.Set("x-ms-client-request-id", c)
	}
}

// safeHeaderID returns v if it is a plausible request id (what a client
// sends is echoed, so it must not carry anything but an id), else "".
func safeHeaderID(v string) string {
	if v == "" || len(v) > 128 {
		return ""
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return ""
		}
	}
	return v
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b[:])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}
