package console_test

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/tripcap/tripcap/controlplane"
)

// postJSON posts a form as the pages' scripts do: the CSRF token in the
// X-CSRF-Token header, asking for JSON.
func (b *browser) postJSON(path string, form url.Values) *page {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.f.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-CSRF-Token", b.csrf)
	return b.do(req)
}

func controlplaneQuery() controlplane.AlertQuery { return controlplane.AlertQuery{} }
