//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tripcap/tripcap"
)

// consoleUsers are the people the console tests sign in as.
const (
	opsUser, opsPassword     = "ops", "correct horse battery staple ops"
	readerUser, readerPasswd = "rita", "correct horse battery staple rita"
)

// TestConsoleIncidentInBrowser is the console's end-to-end test in a real
// browser (Debian's chromium, headless) against the real binary over TLS:
// the bootstrap admin signs in with the admin token and makes an Owner and
// a Reader on the access page; the Owner signs in with a password, creates
// a responder, an action group starting it and a rule (from the seed's
// preset) on the pages; a netns host floods; the alert fires and the
// responder's capture appears, runs and stops on the host page without a
// reload; the file downloads from the capture page and capinfos reads it;
// the incident page shows the alert and the capture on one axis; the rule
// is silenced on the rules page and the next breach is recorded as muted,
// with nothing delivered. The Reader sees no create or delete control, and
// the same posts sent anyway are refused. Every page visited has no console
// error and no CSP violation, and is saved as a screenshot.
func TestConsoleIncidentInBrowser(t *testing.T) {
	l := newLab(t)
	h1, h2 := l.addHost("h1"), l.addHost("h2")
	l.link(h1, h2)
	b := newBrowser(t, l.servedChain())
	base := l.apiURL

	// The bootstrap admin signs in with the admin token and makes the people.
	b.signInToken(base, l.token)
	b.visit("access", base+"/access")
	b.do("creating the Owner",
		chromedp.SendKeys(chromedp.ID("us-name"), opsUser), chromedp.SendKeys(chromedp.ID("us-password"), opsPassword),
		chromedp.Submit(chromedp.ID("us-name")), chromedp.WaitVisible(chromedp.CSS(`tr[data-principal="ops"]`)))
	b.assign(opsUser, "Owner")
	b.do("creating the Reader",
		chromedp.SendKeys(chromedp.ID("us-name"), readerUser), chromedp.SendKeys(chromedp.ID("us-password"), readerPasswd),
		chromedp.Submit(chromedp.ID("us-name")), chromedp.WaitVisible(chromedp.CSS(`tr[data-principal="rita"]`)))
	b.assign(readerUser, "Reader")
	b.shot("access-done")
	b.signOut()

	// The Owner builds the seed's loop from the pages.
	b.signIn(base, opsUser, opsPassword)
	b.visit("responders", base+"/responders")
	b.do("creating the responder",
		chromedp.SendKeys(chromedp.ID("rsp-name"), "pc"),
		chromedp.SendKeys(chromedp.ID("rsp-filters"), "protocol=UDP,remotePort=7100"),
		retype("rsp-time", "5"),
		retype("rsp-pre", "10"),
		chromedp.Click(chromedp.ID("responder-create")))
	b.waitText("the responder's page", "main h1", "Responder pc", 10*time.Second)
	b.shot("responder")
	b.visit("action-groups", base+"/action-groups")
	b.do("creating the action group",
		chromedp.SendKeys(chromedp.ID("ag-name"), "capture"),
		chromedp.Click(chromedp.Search(`//label[.="pc"]`)),
		chromedp.Click(chromedp.ID("group-create")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-group="capture"]`)))
	b.shot("action-group")

	// The rule: the seed's preset, one click, then made fast for a test.
	b.visit("rules-empty", base+"/rules")
	b.do("opening the seed's preset", chromedp.Click(chromedp.CSS(`a[data-preset="seed"]`)), chromedp.WaitVisible(chromedp.ID("rule-form")))
	if v := b.value("#rule-threshold"); v != "3" {
		t.Fatalf("the seed preset's threshold: %q, want 3", v)
	}
	b.shot("rule-preset")
	b.do("editing the rule",
		retype("rule-name", "high-egress"),
		retype("rule-threshold", "100000"),
		retype("rule-frequency", "every second"))
	// The server checks the form as it is typed, naming the field.
	b.waitAttr("the frequency marked invalid", "#rule-frequency", "aria-invalid", "true", 10*time.Second)
	b.shot("rule-invalid")
	b.do("fixing the rule",
		retype("rule-frequency", "PT1S"),
		retype("rule-window", "PT5S"),
		retype("rule-host", "h1"),
		chromedp.Click(chromedp.Search(`//label[.="capture"]`)))
	b.poll("the frequency no longer marked invalid", `!document.getElementById("rule-frequency").hasAttribute("aria-invalid")`, 10*time.Second)
	// The chart of the last hour, as this rule sees it, on h1.
	b.waitText("the rule's chart of the last hour", "#preview-summary", "on h1", 20*time.Second)
	b.shot("rule-preview")
	b.do("creating the rule", chromedp.Click(chromedp.ID("rule-save")), chromedp.WaitVisible(chromedp.CSS(`tr[data-rule="high-egress"]`)))
	b.shot("rules")
	l.eventually("h1's metrics on the server", 20*time.Second, func() bool { return l.points("h1") > 0 })

	// The host page, live: the alert fires, the capture appears, runs and stops.
	b.visit("host-h1", base+"/hosts/h1")
	b.markPage()
	stop := l.flood(h1, h2, 7100)
	b.waitText("the capture on the host page", "main", "PSAzureFunction-h1", 60*time.Second)
	b.waitText("the capture running on the host page", "main", "Running", 30*time.Second)
	b.shot("host-capture-running")
	b.waitText("the alert on the host page", "main", "high-egress", 30*time.Second)
	stop()
	b.waitText("the capture stopped on the host page", "main", "Stopped", 60*time.Second)
	b.shot("host-capture-stopped")
	b.checkMark("the host page")

	// The file: downloaded from the capture page, read by capinfos. Once
	// the alert resolved (the flood is over) no later alert replaces it.
	l.eventually("the alert to resolve", 60*time.Second, func() bool {
		as := l.alerts()
		return len(as) > 0 && as[0].MonitorCondition == tripcap.ConditionResolved
	})
	c := l.capture("PSAzureFunction-h1")
	l.eventually("the capture's file stored", 30*time.Second, func() bool {
		c = l.capture("PSAzureFunction-h1")
		return len(c.Files) > 0 && c.Files[0].Stored
	})
	b.visit("capture", base+"/captures/"+c.ID)
	dir := t.TempDir()
	file := b.download(`a[href*="/download"]`, dir)
	if n := packets(t, file); n == 0 {
		t.Fatalf("the downloaded file %s holds no packets", file)
	}
	if fi, _ := os.Stat(file); fi.Size() != c.Files[0].Size {
		t.Errorf("downloaded %d bytes, the capture's file has %d", fi.Size(), c.Files[0].Size)
	}

	// The incident: the alert, its capture with the pre-trigger part, the
	// responder's run, on one axis.
	// (The flood may fire the rule more than once; the capture names its alert.)
	if c.AlertID == "" {
		t.Fatalf("the capture names no alert: %+v", c)
	}
	b.visit("alerts", base+"/alerts")
	b.waitText("the alert on the alerts page", "#alerts", "high-egress", 5*time.Second)
	b.visit("incident", base+"/alerts/"+c.AlertID)
	b.waitText("the capture on the incident", "#incident-events", "Capture PSAzureFunction-h1", 5*time.Second)
	b.waitText("the pre-trigger part on the incident", "#incident-events", "pre-trigger", 5*time.Second)
	b.waitAttrSet("the incident's metric chart", "#incident-chart", "data-points", 10*time.Second)
	b.shot("incident-chart")
	b.visit("responder-runs", base+"/responders/pc")
	b.waitText("the responder's run", "#runs", "PSAzureFunction-h1", 5*time.Second)

	// Silence the rule; the next breach is recorded as muted, delivered to no one.
	var as []*tripcap.Alert
	l.eventually("the alert to resolve", 60*time.Second, func() bool {
		as = l.alerts()
		return len(as) > 0 && as[0].MonitorCondition == tripcap.ConditionResolved
	})
	b.visit("rules-before-silence", base+"/rules")
	b.do("silencing the rule",
		chromedp.SendKeys(chromedp.CSS(`tr[data-rule="high-egress"] form.silence input[name=comment]`), "load test"),
		chromedp.Submit(chromedp.CSS(`tr[data-rule="high-egress"] form.silence input[name=comment]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-rule="high-egress"] .muted`)))
	b.shot("rules-silenced")
	var runs []*tripcap.ResponderRun
	if err := l.cliJSON(&runs, "responder", "runs", "pc"); err != nil {
		t.Fatal(err)
	}
	runsBefore := len(runs)
	stop = l.flood(h1, h2, 7100)
	alertsBefore := len(as)
	l.eventually("the muted breach", 60*time.Second, func() bool { return len(l.alerts()) > alertsBefore })
	stop()
	muted := l.alerts()[0]
	if !muted.Silenced {
		t.Fatalf("the breach under the silence: %+v", muted)
	}
	b.visit("alerts-muted", base+"/alerts")
	if n := b.count(fmt.Sprintf(`tr[data-alert=%q][data-muted="true"]`, muted.ID)); n != 1 {
		t.Fatalf("the alerts page shows the muted alert %d times", n)
	}
	b.visit("incident-muted", base+"/alerts/"+muted.ID)
	b.waitText("muted on the incident", "#alert-facts", "muted by a silence", 5*time.Second)
	time.Sleep(2 * time.Second)
	if err := l.cliJSON(&runs, "responder", "runs", "pc"); err != nil || len(runs) != runsBefore {
		t.Fatalf("the muted alert reached the responder: %d runs, were %d (%v)", len(runs), runsBefore, err)
	}
	// The Owner's other pages: the audit log records what the pages did.
	b.visit("audit", base+"/audit?resource="+url.QueryEscape("console/rules"))
	b.waitText("the rule's creation in the audit log", "#audit-events", "console/rules/new", 5*time.Second)
	for _, pg := range []string{"/", "/hosts", "/captures", "/storage", "/access", "/action-groups"} {
		b.visit("owner"+strings.ReplaceAll(pg, "/", "-"), base+pg)
	}
	b.signOut()

	// The Reader: every page, no create or delete control; posts refused.
	// (The capture read again: a re-firing during the first flood may have
	// replaced the one downloaded; the silence keeps this one.)
	c = l.capture("PSAzureFunction-h1")
	b.signIn(base, readerUser, readerPasswd)
	rule := ""
	for _, pg := range []struct{ name, path string }{
		{"reader-overview", "/"}, {"reader-hosts", "/hosts"}, {"reader-host", "/hosts/h1"}, {"reader-captures", "/captures"},
		{"reader-capture", "/captures/" + c.ID}, {"reader-rules", "/rules"}, {"reader-alerts", "/alerts"},
		{"reader-incident", "/alerts/" + c.AlertID}, {"reader-responders", "/responders"}, {"reader-responder", "/responders/pc"},
		{"reader-action-groups", "/action-groups"}, {"reader-storage", "/storage"},
	} {
		b.visit(pg.name, base+pg.path)
		for _, control := range readerForbiddenControls {
			if n := b.count(control); n != 0 {
				t.Errorf("%s: a Reader is offered %d of %s", pg.path, n, control)
			}
		}
		if pg.path == "/rules" {
			rule = b.attr(`tr[data-rule="high-egress"] a`, "href")
		}
	}
	for _, nav := range []string{`header nav a[href="/access"]`, `header nav a[href="/audit"]`} {
		if n := b.count(nav); n != 0 {
			t.Errorf("a Reader's navigation offers %s", nav)
		}
	}
	for path, body := range map[string]string{
		rule + "/enabled":               "enabled=false",
		rule + "/delete":                "",
		"/rules/new":                    "name=x&severity=3&scopes=*&metric=Network+Out+Total&aggregation=Average&operator=GreaterThan&threshold=1&evaluationFrequency=PT1M&windowSize=PT5M",
		"/responders":                   "name=evil&timeLimitInSeconds=5",
		"/action-groups":                "name=evil&responder=pc",
		"/captures/" + c.ID + "/delete": "",
		"/access/assignments":           "principal=rita&role=Owner&scope=*",
		"/storage":                      "name=evil&url=file:///tmp",
	} {
		if status := b.forgePost(path, body); status != 403 {
			t.Errorf("a Reader's forged POST %s: %d, want 403", path, status)
		}
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
	// The capture is still there, the rule still enabled.
	if c := l.capture("PSAzureFunction-h1"); c.DeletedAt != nil {
		t.Error("a Reader's forged delete deleted the capture")
	}
	var rules []*tripcap.AlertRule
	if err := l.cliJSON(&rules, "rule", "list"); err != nil || len(rules) != 1 || !rules[0].IsEnabled() {
		t.Errorf("the rules after a Reader's posts: %v %v", rules, err)
	}
	t.Logf("screenshots of %d pages in %s", b.shots, b.shotDir)
}

// readerForbiddenControls are the create, change and delete controls of
// the console's pages: none may be offered to a Reader.
var readerForbiddenControls = []string{
	`a[href="/rules/new"]`, `a[data-preset]`, `#rule-save`, `form[action$="/enabled"]`, `form.silence`,
	`form[action$="/delete"]`, `form[action$="/stop"]`, `form[action$="/expire"]`,
	`#responder-form`, `#group-form`, `form[action="/storage"]`, `a[href^="/captures/new"]`, `form[method="post"][action="/captures"]`,
}

// retype replaces a field's text by typing, as a person does (the page's
// scripts see every key).
func retype(id, text string) chromedp.Action[chromedp.Void] {
	clear := fmt.Sprintf(`(function(){var e=document.getElementById(%q);e.value="";return e.value===""})()`, id)
	return chromedp.Steps(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](clear))
		if err == nil && !ok {
			err = fmt.Errorf("could not clear #%s", id)
		}
		return err
	}), chromedp.SendKeys(chromedp.ID(id), text))
}

// signInToken signs in on the sign-in page with a token.
func (b *browser) signInToken(base, token string) {
	b.t.Helper()
	b.visit("signin", base+"/signin")
	b.do("signing in with a token", chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS("form.signout")))
	b.shot("signed-in")
}

// signIn signs in on the sign-in page with a user's password.
func (b *browser) signIn(base, user, password string) {
	b.t.Helper()
	b.visit("signin-"+user, base+"/signin")
	b.do("signing in as "+user, chromedp.SendKeys(chromedp.ID("user"), user), chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Submit(chromedp.ID("password")), chromedp.WaitVisible(chromedp.CSS("form.signout")))
	if who := b.text("header .who"); who != user {
		b.t.Fatalf("signed in as %q, want %s", who, user)
	}
	b.shot("signed-in-" + user)
}

func (b *browser) signOut() {
	b.t.Helper()
	b.do("signing out", chromedp.Click(chromedp.CSS("form.signout button")), chromedp.WaitVisible(chromedp.ID("token")))
}

// assign gives a principal a role at "*" on the access page.
func (b *browser) assign(principal, role string) {
	b.t.Helper()
	pick := fmt.Sprintf(`(function(){var s=document.getElementById("as-principal");for(var i=0;i<s.options.length;i++){if(s.options[i].textContent.trim()===%q){s.value=s.options[i].value;return true}}return false})()`, principal)
	if ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](pick)); err != nil || !ok {
		b.t.Fatalf("no principal %s to assign to: %v", principal, err)
	}
	b.do("assigning "+role+" to "+principal,
		chromedp.SetValue(chromedp.ID("as-role"), role),
		chromedp.Submit(chromedp.ID("as-scope")),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-principal=%q] button[aria-label^="Remove %s at"]`, principal, role))))
}

// value is a form field's value.
func (b *browser) value(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browser: value of %s: %v", sel, err)
	}
	return v
}

// attr is an element's attribute.
func (b *browser) attr(sel, name string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{getAttribute:function(){return ""}}).getAttribute(%q)||""`, sel, name)))
	if err != nil {
		b.t.Fatalf("browser: %s of %s: %v", name, sel, err)
	}
	return v
}

// waitAttr waits until an element's attribute is want.
func (b *browser) waitAttr(what, sel, name, want string, timeout time.Duration) {
	b.t.Helper()
	b.poll(what, fmt.Sprintf(`(function(){var e=document.querySelector(%q);return !!e && e.getAttribute(%q)===%q})()`, sel, name, want), timeout)
}

// waitAttrSet waits until an element has the attribute.
func (b *browser) waitAttrSet(what, sel, name string, timeout time.Duration) {
	b.t.Helper()
	b.poll(what, fmt.Sprintf(`(function(){var e=document.querySelector(%q);return !!e && e.hasAttribute(%q)})()`, sel, name), timeout)
}

// markPage marks the page's window: checkMark fails if it was reloaded since.
func (b *browser) markPage() {
	b.t.Helper()
	b.do("marking the page", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.tripcapNoReload = true`))
		return err
	}))
}

func (b *browser) checkMark(what string) {
	b.t.Helper()
	ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`window.tripcapNoReload === true`))
	if err != nil || !ok {
		b.t.Fatalf("%s was reloaded (or navigated away): %v", what, err)
	}
}

// forgePost posts a form from the page as a script could, with the
// session's CSRF token, and returns the status: the server must refuse
// what the page does not offer. The browser logs the refusal as a failed
// load, which is expected here.
func (b *browser) forgePost(path, body string) int {
	b.t.Helper()
	b.expectConsole(`status of 403`)
	js := fmt.Sprintf(`fetch(%q, {method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": document.body.dataset.csrf || ""}, body: %q}).then(function (r) { return r.status; })`, path, body)
	status, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("browser: posting %s: %v", path, err)
	}
	return status
}
