package arm

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// checkVersion returns the request's api-version if the provider accepts
// it: 400 MissingApiVersionParameter without one, 400
// InvalidApiVersionParameter (listing the accepted ones) for another.
func (p *Provider) checkVersion(q url.Values) (string, error) {
	vs, ok := q["api-version"]
	if !ok || len(vs) == 0 || vs[0] == "" {
		return "", Errorf(http.StatusBadRequest, "MissingApiVersionParameter",
			"The api-version query parameter (?api-version=) is required for all requests.")
	}
	v := vs[0]
	if len(vs) > 1 {
		return "", Errorf(http.StatusBadRequest, "InvalidApiVersionParameter",
			"The api-version query parameter is given %d times; give it once.", len(vs))
	}
	// Versions are compared without case, as ARM does (2016-03-30-Preview).
	if i := slices.IndexFunc(p.versions, func(s string) bool { return strings.EqualFold(s, v) }); i >= 0 {
		return p.versions[i], nil
	}
	shown := v
	if len(shown) > 64 {
		shown = shown[:64] + "…"
	}
	return "", Errorf(http.StatusBadRequest, "InvalidApiVersionParameter",
		"The api-version '%s' is invalid. The supported versions are '%s'.", shown, strings.Join(p.versions, ","))
}

// Since reports whether the request's api-version is v or newer (ARM
// versions are dates, so they order as strings), for a property an older
// version does not know.
func (r *Request) Since(v string) bool { return r.APIVersion >= v }
