package arm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// MaxBody bounds a request body.
const MaxBody = 1 << 20

// Request is an operation's request: the HTTP request, the path's
// parameters and the api-version it was checked against.
type Request struct {
	*http.Request
	// APIVersion is the request's api-version, one its provider accepts.
	APIVersion string
	api        *API
	route      *Route
	params     map[string]string
}

type paramsKey struct{}

func withParams(ctx context.Context, p map[string]string) context.Context {
	return context.WithValue(ctx, paramsKey{}, p)
}

func paramsOf(ctx context.Context) map[string]string {
	p, _ := ctx.Value(paramsKey{}).(map[string]string)
	return p
}

// Param is the path segment the pattern names {name}, "" if none.
func (r *Request) Param(name string) string { return r.params[name] }

// Route is the operation being served.
func (r *Request) Route() *Route { return r.route }

// Provider is the operation's provider.
func (r *Request) Provider() *Provider { return r.route.provider }

// AbsURL is the absolute URL of path with query (nil for none) on this
// server, as nextLink and the polling headers need.
func (r *Request) AbsURL(path string, query url.Values) string {
	u := r.api.baseOf(r.Request) + (&url.URL{Path: path}).EscapedPath()
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// Decode reads the JSON body into v. Unknown fields are ignored as ARM
// does (clients send read-only properties back); malformed JSON is a 400
// InvalidRequestFormat naming where.
func (r *Request) Decode(v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, MaxBody))
	err := dec.Decode(v)
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var big *http.MaxBytesError
	switch {
	case err == nil:
		if dec.More() {
			return BadRequest("InvalidRequestFormat", "", "The request body has more than one JSON value.")
		}
		return nil
	case errors.Is(err, io.EOF):
		return BadRequest("InvalidRequestFormat", "", "The request body is empty; a JSON object is required.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("InvalidRequestFormat", "", "Cannot parse the request: the JSON ends early.")
	case errors.As(err, &syn):
		return BadRequest("InvalidRequestFormat", "", "Cannot parse the request: malformed JSON at byte %d.", syn.Offset)
	case errors.As(err, &typ):
		return BadRequest("InvalidRequestFormat", typ.Field, "Cannot parse the request: %s must be %s, not a JSON %s.", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.As(err, &big):
		return BadRequest("InvalidRequestFormat", "", "The request body is larger than %d bytes.", big.Limit)
	}
	return BadRequest("InvalidRequestFormat", "", "Cannot parse the request: %s.", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "bool":
		return "true or false"
	case k == "string":
		return "a string"
	case k == "slice":
		return "an array"
	}
	return "an object"
}

// WriteJSON writes v as the answer with status.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if v == nil {
		return nil
	}
	return json.NewEncoder(w).Encode(v)
}
