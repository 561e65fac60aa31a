//go:build linux

package e2e

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConsoleBrowserHarness proves the browser harness sees what it must
// fail the console's tests on: a Content-Security-Policy violation (an
// inline script under script-src 'self'), a console.error, an uncaught
// exception and a failed load; that a clean page gives nothing; and that
// each visit leaves a screenshot.
func TestConsoleBrowserHarness(t *testing.T) {
	csp := "default-src 'self'; script-src 'self'; style-src 'self'"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		switch r.URL.Path {
		case "/clean":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(`<!doctype html><html lang="en"><head><title>clean</title><script src="/ok.js"></script></head><body><p id="p">waiting</p></body></html>`))
		case "/favicon.ico":
			w.WriteHeader(http.StatusNoContent)
		case "/ok.js":
			w.Header().Set("Content-Type", "text/javascript")
			w.Write([]byte(`document.addEventListener('DOMContentLoaded', function () { document.getElementById('p').textContent = 'ready'; });`))
		case "/dirty":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(`<!doctype html><html lang="en"><head><title>dirty</title><script src="/bad.js"></script></head><body><p>x</p><script>document.title='inline ran'</script><img src="/missing.png" alt=""></body></html>`))
		case "/bad.js":
			w.Header().Set("Content-Type", "text/javascript")
			w.Write([]byte(`console.error('boom from bad.js'); setTimeout(function () { throw new Error('uncaught from bad.js'); }, 0);`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	b := newBrowser(t, nil)
	b.visit("clean", srv.URL+"/clean")
	b.waitText("the script to run", "#p", "ready", 5*time.Second)
	if p := b.takeProblems(); len(p) != 0 {
		t.Fatalf("a clean page gave problems: %q", p)
	}

	b.visit("dirty", srv.URL+"/dirty")
	want := map[string]bool{"CSP violation": false, "boom from bad.js": false, "uncaught from bad.js": false, "404": false}
	deadline := time.Now().Add(10 * time.Second)
	var seen []string
	for time.Now().Before(deadline) {
		seen = append(seen, b.takeProblems()...)
		all := true
		for k := range want {
			want[k] = want[k] || strings.Contains(strings.Join(seen, "\n"), k)
			all = all && want[k]
		}
		if all {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for k, ok := range want {
		if !ok {
			t.Errorf("the harness did not report %q; it saw %q", k, seen)
		}
	}
	if title := b.text("title"); title == "inline ran" {
		t.Error("the inline script ran under script-src 'self'")
	}
	shots, _ := filepath.Glob(filepath.Join(b.shotDir, "*.png"))
	if len(shots) != 2 {
		t.Errorf("screenshots: got %d files in %s, want 2", len(shots), b.shotDir)
	}
	for _, s := range shots {
		if fi, err := os.Stat(s); err != nil || fi.Size() < 100 {
			t.Errorf("screenshot %s is empty: %v", s, err)
		}
	}
}
