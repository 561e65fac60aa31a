//go:build linux

package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/tripcap/tripcap/internal/testenv"
	"github.com/tripcap/tripcap/tlscert"
)

// browser is a headless Debian chromium driven by chromedp for the
// console's tests. Every console error, uncaught exception, failed load and
// Content-Security-Policy violation of any page it shows fails the test
// (at the end, with all of them listed), and every page it visits is saved
// as a screenshot under shotDir, outside the repository, for review.
type browser struct {
	t       *testing.T
	ctx     context.Context
	shotDir string

	mu       sync.Mutex
	problems []string
	shots    int
	// allowed are console messages a test expects (a 403 it provoked on
	// purpose); each matches one message at most once.
	allowed []*regexp.Regexp
}

// cspProbe reports Content-Security-Policy violations to the test. It is
// added by the DevTools protocol, not by the page, so the policy under test
// does not apply to it.
const cspProbe = `document.addEventListener('securitypolicyviolation', function (e) {
  if (window.tripcapCSP) {
    window.tripcapCSP(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber);
  }
});`

// screenshotRoot is where the console tests' screenshots go:
// $TRIPCAP_E2E_SCREENSHOTS, else a folder in the system's temporary
// directory (never the repository).
func screenshotRoot() string {
	if d := os.Getenv("TRIPCAP_E2E_SCREENSHOTS"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "tripcap-console-screenshots")
}

// newBrowser starts chromium for one test. trust, when given, is the
// server's certificate chain: chromium accepts those keys (by their SPKI
// hashes) and no others.
func newBrowser(t *testing.T, trust []*x509.Certificate) *browser {
	t.Helper()
	exe := testenv.RequireBinary(t, "chromium")
	shotDir := filepath.Join(screenshotRoot(), sanitizeName(t.Name()))
	if err := os.RemoveAll(shotDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(shotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Root has no user namespace sandbox here.
		chromedp.NoSandbox,
		// The machine's network is closed: no calls home, no updates.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	if len(trust) > 0 {
		var spki []string
		for _, c := range trust {
			sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
			spki = append(spki, base64.StdEncoding.EncodeToString(sum[:]))
		}
		opts = append(opts, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(spki, ",")))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	b := &browser{t: t, ctx: ctx, shotDir: shotDir}

	messages := chromedp.Console(ctx)
	if err := chromedp.Do(ctx,
		chromedp.ExposeFunc("tripcapCSP", func(_ context.Context, msg string) (chromedp.Void, error) {
			b.problem("CSP violation: " + msg)
			return chromedp.Void{}, nil
		}),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe})
			return err
		}),
	); err != nil {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		t.Fatalf("starting chromium: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			switch m.Type {
			case chromedp.ConsoleError, chromedp.ConsoleException:
				b.consoleProblem(m)
			case chromedp.ConsoleWarning:
				// Chromium reports a violation of a report-only policy, and
				// some of an enforced one, as a security warning.
				if m.Source == "security" || strings.Contains(m.Text, "Content Security Policy") {
					b.consoleProblem(m)
				}
			}
		}
	}()
	t.Logf("screenshots: %s", shotDir)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		<-done
		for _, p := range b.takeProblems() {
			t.Errorf("browser: %s", p)
		}
	})
	return b
}

// environmental are browser messages about the test machine, not the
// page: chromium drops its connections with ERR_NETWORK_CHANGED whenever an
// interface appears or goes in its namespace, which the e2e labs (this
// test's and others' on the same machine) do as they make test hosts. The
// live pages' EventSource reconnects by itself.
var environmental = regexp.MustCompile(`net::ERR_NETWORK_CHANGED`)

func (b *browser) consoleProblem(m chromedp.ConsoleMessage) {
	text := m.String()
	if environmental.MatchString(text) {
		return
	}
	if m.URL != "" {
		text += fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
	}
	b.mu.Lock()
	for i, re := range b.allowed {
		if re.MatchString(text) {
			b.allowed = append(b.allowed[:i], b.allowed[i+1:]...)
			b.mu.Unlock()
			return
		}
	}
	b.mu.Unlock()
	b.problem(text)
}

func (b *browser) problem(p string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, p)
}

// takeProblems returns the problems seen so far and forgets them.
func (b *browser) takeProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.problems
	b.problems = nil
	return p
}

// expectConsole lets one console message matching re through: a test that
// provokes an error on purpose says so first.
func (b *browser) expectConsole(re string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.allowed = append(b.allowed, regexp.MustCompile(re))
}

// do runs actions in the page; a failure ends the test with a screenshot.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.shot("failed-" + what)
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// visit opens a page, waits for it to load and saves its screenshot.
func (b *browser) visit(name, u string) {
	b.t.Helper()
	b.do("visiting "+name, chromedp.Navigate(u), chromedp.WaitReady(chromedp.CSS("body")))
	b.shot(name)
}

// shot saves a full-page screenshot named after the step, numbered in order.
func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.mu.Lock()
	b.shots++
	n := b.shots
	b.mu.Unlock()
	p := filepath.Join(b.shotDir, fmt.Sprintf("%02d-%s.png", n, sanitizeName(name)))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Errorf("saving screenshot: %v", err)
	}
}

// text is an element's visible text.
func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.shot("failed-text")
		b.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

// count is how many elements match sel now (no waiting).
func (b *browser) count(sel string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	if err != nil {
		b.t.Fatalf("browser: counting %s: %v", sel, err)
	}
	return n
}

// waitText waits, without reloading, until sel's text contains want.
func (b *browser) waitText(what, sel, want string, timeout time.Duration) {
	b.t.Helper()
	js := fmt.Sprintf(`(function(){var e=document.querySelector(%q);return !!e && e.textContent.indexOf(%q)>=0})()`, sel, want)
	if err := b.tryPoll(js, timeout); err != nil {
		b.shot("failed-" + what)
		got, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel)))
		b.t.Fatalf("browser: waiting %s for %s (%q in %s; it says %q): %v", timeout, what, want, sel, clipText(got), err)
	}
}

// poll waits until the expression is true in the page.
func (b *browser) poll(what, js string, timeout time.Duration) {
	b.t.Helper()
	if err := b.tryPoll(js, timeout); err != nil {
		b.shot("failed-" + what)
		b.t.Fatalf("browser: waiting %s for %s: %v", timeout, what, err)
	}
}

// tryPoll evaluates js every 200 ms until it is true; a navigation under
// way (the page submitted a form) is waited out, not failed on.
func (b *browser) tryPoll(js string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return nil
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("not yet")
		}
		if time.Now().After(deadline) || b.ctx.Err() != nil {
			return last
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// download clicks sel and waits for the file it downloads into dir.
func (b *browser) download(sel, dir string) string {
	b.t.Helper()
	progress := chromedp.BrowserEvents(b.ctx, cdpbrowser.DownloadProgress)
	b.do("downloading", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true),
		})
		return err
	}), chromedp.Click(chromedp.CSS(sel)))
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	for ev, err := range progress {
		if err != nil || ctx.Err() != nil {
			b.t.Fatalf("browser: download: %v %v", err, ctx.Err())
		}
		switch ev.State {
		case cdpbrowser.DownloadProgressStateCompleted:
			return filepath.Join(dir, ev.GUID)
		case cdpbrowser.DownloadProgressStateCanceled:
			b.t.Fatal("browser: the download was cancelled")
		}
	}
	b.t.Fatal("browser: the download never completed")
	return ""
}

func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

func clipText(s string) string {
	if len(s) > 400 {
		return s[:400] + "…"
	}
	return s
}

// servedChain is the certificate chain the lab server presents, verified
// against its CA: the browser trusts exactly these keys.
func (l *lab) servedChain() []*x509.Certificate {
	l.t.Helper()
	pool, err := tlscert.LoadPool(l.caFile())
	if err != nil {
		l.t.Fatal(err)
	}
	u, err := url.Parse(l.apiURL)
	if err != nil {
		l.t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", u.Host, tlscert.ClientConfig(pool))
	if err != nil {
		l.t.Fatalf("dialing the server for its certificate: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates
}
