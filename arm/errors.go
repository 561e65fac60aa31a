package arm

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/tripcap/tripcap"
)

// Error is an ARM error answer: its status and the body
// {"error":{"code","message","target","details"}}.
type Error struct {
	Status  int
	Code    string
	Message string
	// Target names the property or parameter at fault, when there is one.
	Target  string
	Details []*Error
	// err is the tripcap error it came from, if any (for errors.As and
	// Retry-After).
	err error
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }
func (e *Error) Unwrap() error { return e.err }

// Errorf returns an *Error with the status, code and formatted message.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// BadRequest is a 400 with the code, the target (property or parameter,
// "" for none) and the message.
func BadRequest(code, target, format string, args ...any) *Error {
	e := Errorf(http.StatusBadRequest, code, format, args...)
	e.Target = target
	return e
}

// ErrorBody is the JSON of an error answer (also the "error" of a failed
// operation's status).
type ErrorBody struct {
	Error *ErrorDetail `json:"error"`
}

// ErrorDetail is ARM's error object.
type ErrorDetail struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Target  string         `json:"target,omitempty"`
	Details []*ErrorDetail `json:"details,omitempty"`
}

// Detail is the error's JSON object.
func (e *Error) Detail() *ErrorDetail {
	d := &ErrorDetail{Code: e.Code, Message: e.Message, Target: e.Target}
	for _, x := range e.Details {
		d.Details = append(d.Details, x.Detail())
	}
	return d
}

// codes maps tripcap's error codes to ARM's status and code.
var codes = map[string]struct {
	status int
	code   string
}{
	tripcap.EINVALID:      {http.StatusBadRequest, "InvalidRequestFormat"},
	tripcap.EUNAUTHORIZED: {http.StatusUnauthorized, "InvalidAuthenticationToken"},
	tripcap.EFORBIDDEN:    {http.StatusForbidden, "AuthorizationFailed"},
	tripcap.ENOTFOUND:     {http.StatusNotFound, "ResourceNotFound"},
	tripcap.ECONFLICT:     {http.StatusConflict, "Conflict"},
	tripcap.EUNAVAILABLE:  {http.StatusConflict, "Conflict"},
	tripcap.ELIMIT:        {http.StatusConflict, "QuotaExceeded"},
	tripcap.EPRECONDITION: {http.StatusPreconditionFailed, "PreconditionFailed"},
	tripcap.ERATELIMIT:    {http.StatusTooManyRequests, "TooManyRequests"},
}

// ErrorOf is err as an ARM error: an *Error in its chain as it is, a
// tripcap error mapped by its code with its message, anything else a 500
// InternalServerError whose details stay out of the answer.
func ErrorOf(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	code := tripcap.ErrorCode(err)
	if c, ok := codes[code]; ok {
		return &Error{Status: c.status, Code: c.code, Message: tripcap.ErrorMessage(err), err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "InternalServerError",
		Message: "The server encountered an internal error; see its log with the x-ms-request-id.", err: err}
}

// Recode gives err the ARM code armCode (keeping its status and message)
// when its tripcap code is tripcapCode; other errors pass unchanged. A
// provider uses it for its own codes: Recode(err, tripcap.ENOTFOUND,
// "PacketCaptureNotFound").
func Recode(err error, tripcapCode, armCode string) error {
	if err == nil || tripcap.ErrorCode(err) != tripcapCode {
		return err
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	a := ErrorOf(err)
	a.Code = armCode
	return a
}

// WithStatus is err as an ARM error with another status (the limits'
// refusals carry theirs: 429, 503).
func WithStatus(err error, status int) *Error {
	e := *ErrorOf(err)
	e.Status = status
	return &e
}

// WriteError writes err as ARM's error answer. Internal errors are logged
// (with the request id), not shown.
func WriteError(w http.ResponseWriter, r *http.Request, err error, log *slog.Logger) {
	e := ErrorOf(err)
	if e.Status >= 500 && e.err != nil {
		if r.Context().Err() != nil {
			return // the client went away
		}
		if log == nil {
			log = slog.Default()
		}
		log.Error("request failed", "method", r.Method, "path", r.URL.Path,
			"requestId", w.Header().Get("x-ms-request-id"), "err", tripcap.RedactURLs(err.Error()))
	}
	if wait, ok := tripcap.RetryAfter(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	}
	_ = WriteJSON(w, e.Status, ErrorBody{Error: e.Detail()})
}

// withTarget is err as an ARM error whose target is the field a tripcap
// EINVALID names first in its message ("timeLimitInSeconds: …"), under
// prefix ("properties."); other errors pass unchanged.
func withTarget(err error, prefix string) error {
	if tripcap.ErrorCode(err) != tripcap.EINVALID {
		return err
	}
	e := ErrorOf(err)
	if e.Target != "" {
		return e
	}
	field, _, ok := strings.Cut(e.Message, ": ")
	if !ok || field == "" || strings.ContainsAny(field, " \"'") {
		return e
	}
	c := *e
	c.Target = prefix + field
	return &c
}

// authorizationFailed words a refusal (tripcap's EFORBIDDEN) as Azure
// does: who, the operation's action, and the scope (the path), the
// service's reason kept as a detail. Other errors pass unchanged.
func authorizationFailed(r *Request, err error) error {
	if tripcap.ErrorCode(err) != tripcap.EFORBIDDEN {
		return err
	}
	e := ErrorOf(err)
	if e.Code != "AuthorizationFailed" {
		return err
	}
	name, id := "", ""
	if p := tripcap.PrincipalFromContext(r.Context()); p != nil {
		name, id = p.Name, p.ID
	}
	out := Errorf(http.StatusForbidden, "AuthorizationFailed",
		"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
		name, id, r.route.Action, r.URL.Path)
	out.Details = []*Error{{Code: "AuthorizationFailed", Message: e.Message}}
	out.err = err
	return out
}
