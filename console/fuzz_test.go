package console

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
)

// FuzzSafeNext: whatever a sign-in form's next says, the browser is sent to
// a path of this console, never to another site.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/hosts?x=1", "//evil", "/\\evil", "https://evil", "/signin", "", "/\r\nLocation: x", "/%2f%2fevil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\r\n") {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		if got != "/" && got != next {
			t.Fatalf("safeNext(%q) = %q: neither the path nor /", next, got)
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
