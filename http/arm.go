package http

import (
	"errors"
	"net/http"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/arm"
	"github.com/tripcap/tripcap/identity"
)

// WithARM serves the Azure Resource Manager surface (/subscriptions/…)
// behind the server's authentication, audit and limits.
func WithARM(a *arm.API) Option { return func(s *Server) { s.arm = a } }

// withARM puts the ARM surface in front of next: every path arm.IsPath
// takes (any case) goes to the ARM handler, each operation wrapped, once,
// in the same authentication, audit and metrics as the native API's
// routes, with refusals in ARM's error shape; the rest to next.
func (s *Server) withARM(next http.Handler) http.Handler {
	h := s.arm.Handler(func(rt *arm.Route, h http.Handler) http.Handler {
		return s.observe(rt.ID, s.auditing(rt.ID, rt.Method, rt.Pattern, s.authenticateWith(h, s.armRefusal)))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arm.IsPath(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// armRefusal writes a refused authentication as ARM does: 401 with
// AuthenticationFailed (no credential) or InvalidAuthenticationToken, and
// never a WWW-Authenticate challenge, which the SDK would try to answer;
// the limits' refusals keep their status (429, 503) and Retry-After.
func (s *Server) armRefusal(w http.ResponseWriter, r *http.Request, err error) {
	var e *arm.Error
	switch {
	case errors.As(err, new(*refusal)):
		st, _ := refusalStatus(err)
		e = arm.WithStatus(err, st)
		if st == http.StatusTooManyRequests {
			e.Code = "TooManyRequests"
		} else {
			e.Code = "ServiceUnavailable"
		}
	case tripcap.ErrorCode(err) == tripcap.EUNAUTHORIZED && BearerToken(r) == "":
		e = arm.Errorf(http.StatusUnauthorized, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
	case errors.As(err, new(*identity.AudienceError)):
		e = arm.ErrorOf(err)
		e.Code = "InvalidAuthenticationTokenAudience"
	default:
		e = arm.ErrorOf(err)
	}
	arm.WriteError(w, r, e, s.log)
}
