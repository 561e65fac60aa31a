package console

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
)

// FuzzSafeNext: whatever a sign-in form's next says, the browser is sent to
// a path of this console, never to another site: resolved as a browser
// does (after dropping tabs and newlines, reading "\\" as "/"), it stays on
// the console's origin.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/hosts?x=1", "//evil", "/\\evil", "https://evil", "/signin", "", "/\r\nLocation: x", "/%2f%2fevil",
		"/\t/evil.example", "/\n/evil.example", "\t//evil", "/\x7f/evil", "/%09/evil", "/%5c%5cevil", "/a b?c", "/x#//evil", "/@evil", "/:evil"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://console.example/signin")
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") ||
			strings.ContainsFunc(got, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Scheme != "" || u.Host != "" {
			t.Fatalf("safeNext(%q) = %q: parses as %v, %v", next, got, u, err)
		}
		if to := base.ResolveReference(u); to.Scheme != base.Scheme || to.Host != base.Host {
			t.Fatalf("safeNext(%q) = %q: a browser goes to %s", next, got, to)
		}
		if got != "/" {
			in, err := url.Parse(next)
			if err != nil || in.Path != u.Path || in.RawQuery != u.RawQuery {
				t.Fatalf("safeNext(%q) = %q: neither the path and query given nor /", next, got)
			}
		}
	})
}

// FuzzCaptureForm: any posted body reads into a request, or into an
// EINVALID that names the field at fault.
func FuzzCaptureForm(f *testing.F) {
	for _, s := range []string{
		"name=c1&target=web1",
		"name=c1&target=web1&filters[0].localPort=80&timeLimitInSeconds=60",
		"timeLimitInSeconds=99999999999&continuousCapture=on&captureSettings.fileCount=x",
		"interfaces=eth0,,lo&preTriggerSeconds=-1",
		"%zz=1&name=%",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/captures", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		form, req, err := readCaptureForm(r)
		if err != nil {
			if tripcap.ErrorCode(err) != tripcap.EINVALID || errorField(tripcap.ErrorMessage(err)) == "" {
				t.Fatalf("%q: %v: not an EINVALID naming a field", body, err)
			}
			return
		}
		if len(form.rows) != len(req.Parameters.Filters) {
			t.Fatalf("%q: %d filter rows for %d filters", body, len(form.rows), len(req.Parameters.Filters))
		}
		_ = req.Parameters.Validate() // must not panic
	})
}

// FuzzErrorField: the field is a prefix of the message, short and without spaces.
func FuzzErrorField(f *testing.F) {
	for _, s := range []string{"name: required", `filters[0].localPort: "x" is not a port`, "no field here", ": x", "a b: c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		field := errorField(msg)
		if field != "" && (!strings.HasPrefix(msg, field+": ") || strings.ContainsAny(field, " \t\"'") || len(field) > 80) {
			t.Fatalf("errorField(%q) = %q", msg, field)
		}
	})
}
