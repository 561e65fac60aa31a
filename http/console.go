package http

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/tripcap/tripcap"
)

// ConsoleGate is what the server lends the web console (package console)
// mounted at "/": the API's own limits on authentication, and the audit
// record's knowledge of who the caller is.
type ConsoleGate struct{ s *Server }

// Authenticate returns the principal of a session's credential, as a bearer
// token is authenticated: under the limits of failed authentications per
// address, and noted for the audit record.
func (g ConsoleGate) Authenticate(w http.ResponseWriter, r *http.Request, credential string) (*tripcap.Principal, error) {
	var p *tripcap.Principal
	err := g.s.admit(w, r, credBearer, credential, func() (err error) {
		p, err = g.s.svc.Authenticate(r.Context(), credential)
		return err
	})
	if err != nil {
		return nil, err
	}
	noteAuditPrincipal(r.Context(), p)
	return p, nil
}

// SignIn runs check, the check of a password claimed for user, under the
// limits POST /api/v1/login is under (per address and per name).
func (g ConsoleGate) SignIn(w http.ResponseWriter, r *http.Request, user string, check func() error) error {
	err := g.s.admitClaim(w, r, credLogin, func() (string, error) { return user, nil }, check)
	if err != nil {
		noteAuditClaim(r.Context(), user)
		return err
	}
	noteAuditPrincipal(r.Context(), &tripcap.Principal{Kind: tripcap.PrincipalUser, Name: user})
	return nil
}

// ErrorStatus is the HTTP status err is answered with: its code's
// (StatusOf), or a refusal's own (429, 503).
func ErrorStatus(err error) int {
	if st, ok := refusalStatus(err); ok {
		return st
	}
	return StatusOf(tripcap.ErrorCode(err))
}

// ServeCaptureFile answers a download of a stored capture file as the API
// does: Range requests, its SHA-256 (X-Tripcap-Sha256, Repr-Digest), an ETag.
func ServeCaptureFile(w http.ResponseWriter, r *http.Request, rc io.ReadSeeker, f *tripcap.CaptureFile) {
	serveFile(w, r, rc, f)
}

// MountConsole serves the console at "/", the least specific pattern, so
// that it never conflicts with the API's routes; newHandler is given the
// gate. Posts are recorded in the audit log as the API's mutations are
// (action "console", resource "console/<path>"), and so are downloads
// (paths ending in /download, action "downloadCaptureFile"); other reads,
// and a form's checks as it is typed (posts to paths ending in /validate),
// are not.
func (s *Server) MountConsole(newHandler func(ConsoleGate) http.Handler) {
	h := newHandler(ConsoleGate{s: s})
	const path = "/console/{page...}"
	reads := s.auditing("consoleRead", http.MethodGet, path, h)
	downloads := s.auditing("downloadCaptureFile", http.MethodGet, path, h)
	writes := s.auditing("console", http.MethodPost, path, h)
	s.mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			s.apiNotFound(w, r)
			return
		}
		// The record names the console's own path.
		r.SetPathValue("page", strings.TrimPrefix(r.URL.Path, "/"))
		switch {
		case (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.HasSuffix(r.URL.Path, "/download"):
			downloads.ServeHTTP(w, r)
			return
		case r.Method == http.MethodGet || r.Method == http.MethodHead, strings.HasSuffix(r.URL.Path, "/validate"):
			// A form's check as it is typed changes nothing.
			reads.ServeHTTP(w, r)
			return
		}
		writes.ServeHTTP(w, r)
	}))
}

// apiNotFound answers an API path no route took, as the mux did before the
// console took "/": 405 with Allow when the path has routes for other
// methods, else 404, with the API's error body rather than a page.
func (s *Server) apiNotFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: ErrorDetail{Code: tripcap.EINVALID,
			Message: fmt.Sprintf("%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))}})
		return
	}
	s.Error(w, r, tripcap.Errorf(tripcap.ENOTFOUND, "%s %s: no such API operation (see /api/v1/openapi.json)", r.Method, r.URL.Path))
}
