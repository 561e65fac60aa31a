package console_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	tchttp "github.com/tripcap/tripcap/http"
)

// capture starts a capture named name on a new online host.
func (f *fixture) capture(t testing.TB, host, name string) *tripcap.PacketCapture {
	t.Helper()
	f.online(t, f.host(t, host, "eastus", nil))
	pc, err := f.svc.CreateCapture(f.adminCtx, controlplane.CreateCaptureRequest{Name: name, Parameters: tripcap.PacketCaptureParameters{Target: host}})
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// check posts a form as the console's script does as it is typed (JSON
// asked for, the CSRF token in its header unless csrf is false).
func (b *browser) check(path string, form url.Values, csrf bool) *page {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.f.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if csrf {
		req.Header.Set("X-CSRF-Token", b.csrf)
	}
	return b.do(req)
}

// online marks a host Online, as its agent's heartbeat does.
func (f *fixture) online(t testing.TB, h *tripcap.Host) {
	t.Helper()
	if err := f.store.UpdateHostInventory(f.adminCtx, h.ID, h.Inventory, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestReaderGetsNoCaptureControlsAndForgedPostIsRefused(t *testing.T) {
	f := newFixture(t)
	pc := f.capture(t, "web1", "c1")
	pw := f.user(t, "rita", tripcap.RoleReader)
	b := f.browser(t)
	b.signIn("rita", pw)
	for _, path := range []string{"/captures", "/captures/" + pc.ID, "/hosts/web1"} {
		p := b.get(path)
		if p.StatusCode != 200 {
			t.Fatalf("%s as a Reader: %s\n%s", path, p.Status, p.body)
		}
		for _, control := range []string{`href="/captures/new`, `/stop"`, `/delete"`, "New capture", "/download"} {
			if strings.Contains(p.body, control) {
				t.Errorf("%s offers a Reader %q", path, control)
			}
		}
	}
	if p := b.get("/captures/new"); p.StatusCode != http.StatusForbidden || strings.Contains(p.body, `action="/captures"`) {
		t.Errorf("the create form for a Reader: %s", p.Status)
	}
	// The forms are not offered, but the server refuses them anyway.
	for path, form := range map[string]url.Values{
		"/captures":                      {"name": {"forged"}, "target": {"web1"}},
		"/captures/" + pc.ID + "/stop":   nil,
		"/captures/" + pc.ID + "/delete": nil,
	} {
		if p := b.post(path, form); p.StatusCode != http.StatusForbidden {
			t.Errorf("forged POST %s as a Reader: %s, want 403\n%s", path, p.Status, p.body)
		}
	}
	got, err := f.svc.FindCapture(f.adminCtx, "", pc.ID)
	if err != nil || got.Desired != tripcap.DesiredRunning {
		t.Fatalf("the capture after the Reader's posts: %+v, %v", got, err)
	}
	if _, err := f.svc.FindCapture(f.adminCtx, "", "forged"); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Fatalf("a Reader's forged capture exists: %v", err)
	}
	if p := b.get("/captures/" + pc.ID + "/download?name=x"); p.StatusCode != http.StatusForbidden && p.StatusCode != http.StatusNotFound {
		t.Errorf("a Reader's download: %s, want 403 or 404", p.Status)
	}
}

func TestCaptureCreateStopDelete(t *testing.T) {
	f := newFixture(t)
	h := f.host(t, "web1", "eastus", nil)
	f.online(t, h)
	pw := f.user(t, "nora", tripcap.RoleNetworkContributor)
	b := f.browser(t)
	b.signIn("nora", pw)
	p := b.get("/captures/new?target=web1")
	if p.StatusCode != 200 || !strings.Contains(p.body, `data-validate="/captures/validate"`) || !strings.Contains(p.body, `value="web1"`) {
		t.Fatalf("the create form: %s\n%s", p.Status, p.body)
	}
	p = b.post("/captures", url.Values{"name": {"c1"}, "target": {"web1"}, "filters[0].protocol": {"TCP"}, "filters[0].localPort": {"443"},
		"filterExpression": {"host 198.18.0.2"}, "timeLimitInSeconds": {"60"}})
	if p.StatusCode != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/captures/") {
		t.Fatalf("create: %s\n%s", p.Status, p.body)
	}
	loc := p.Header.Get("Location")
	pc, err := f.svc.FindCapture(f.adminCtx, "", strings.TrimPrefix(loc, "/captures/"))
	if err != nil {
		t.Fatal(err)
	}
	if q := pc.Parameters; q.TimeLimitInSeconds != 60 || len(q.Filters) != 1 || q.Filters[0].LocalPort != "443" || q.FilterExpression != "host 198.18.0.2" {
		t.Fatalf("the capture's parameters: %+v", q)
	}
	p = b.get(loc)
	for _, want := range []string{"Capture c1", `data-live="/captures/` + pc.ID + `/live"`, "/stop", "/delete"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the capture's page lacks %q", want)
		}
	}
	if p := b.post(loc+"/stop", nil); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("stop: %s\n%s", p.Status, p.body)
	}
	if got, _ := f.svc.FindCapture(f.adminCtx, "", pc.ID); got.Desired != tripcap.DesiredStopped {
		t.Fatalf("after stop: desired %s", got.Desired)
	}
	if p := b.post(loc+"/delete", nil); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %s\n%s", p.Status, p.body)
	}
	if _, err := f.svc.FindCapture(f.adminCtx, "", pc.ID); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Fatalf("after delete: %v", err)
	}
}

func TestCaptureFormNamesTheField(t *testing.T) {
	f := newFixture(t)
	h := f.host(t, "web1", "eastus", nil)
	f.online(t, h)
	b := f.browser(t)
	b.signInToken(f.admin)
	b.get("/captures/new")
	for _, tc := range []struct {
		form  url.Values
		field string
	}{
		{url.Values{"name": {"c1"}, "target": {"web1"}, "filters[1].localPort": {"eighty"}}, "filters[1].localPort"},
		{url.Values{"name": {"c1"}, "target": {"web1"}, "filterExpression": {"tcp port"}}, "filterExpression"},
		{url.Values{"name": {"c1"}, "target": {"nosuchhost"}}, "target"},
		{url.Values{"name": {"c1"}, "target": {"web1"}, "timeLimitInSeconds": {"soon"}}, "timeLimitInSeconds"},
		{url.Values{"name": {"bad name!"}, "target": {"web1"}}, "name"},
	} {
		// As typed: the check answers the field and a message, storing nothing.
		p := b.check("/captures/validate", tc.form, true)
		var fe struct{ Field, Message string }
		if err := json.Unmarshal([]byte(p.body), &fe); err != nil || p.StatusCode != 200 {
			t.Fatalf("validate %v: %s %s", tc.form, p.Status, p.body)
		}
		if fe.Field != tc.field || fe.Message == "" {
			t.Errorf("validate %v: field %q (%s), want %q", tc.form, fe.Field, fe.Message, tc.field)
		}
		// Submitted: the form again, 400, the field marked.
		p = b.post("/captures", tc.form)
		if p.StatusCode != http.StatusBadRequest || !strings.Contains(p.body, `data-field-name="`+tc.field+`" aria-invalid="true"`) {
			t.Errorf("create %v: %s; the field %s is not marked\n%s", tc.form, p.Status, tc.field, p.body)
		}
	}
	caps, _, err := f.svc.FindCaptures(f.adminCtx, "", "", "", 0)
	if err != nil || len(caps) != 0 {
		t.Fatalf("invalid forms stored captures: %v %v", caps, err)
	}
	// A valid form checks clean.
	form := url.Values{"name": {"c1"}, "target": {"web1"}, "filters[0].remotePort": {"80;443"}}
	if p := b.check("/captures/validate", form, true); strings.TrimSpace(p.body) != `{"message":""}` {
		t.Errorf("a valid form's check: %s", p.body)
	}
	// The check is a post like any other: no CSRF token, no answer.
	if p := b.check("/captures/validate", form, false); p.StatusCode != http.StatusForbidden {
		t.Errorf("a check without the CSRF token: %s, want 403", p.Status)
	}
}

func TestCaptureLiveStatus(t *testing.T) {
	f := newFixture(t)
	pc := f.capture(t, "web1", "c1")
	b := f.browser(t)
	b.signInToken(f.admin)
	var events []map[string]any
	for _, data := range b.events("/captures/"+pc.ID+"/live", 2) {
		var v map[string]any
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		events = append(events, v)
	}
	if events[0]["status"] != "NotStarted" || events[1]["desired"] != "Running" {
		t.Fatalf("live events: %v", events)
	}
}

// TestLiveOutlastsWriteTimeout: a live stream runs past the server's write
// timeout (each event extends it), where a page's answer would be cut.
func TestLiveOutlastsWriteTimeout(t *testing.T) {
	lim := tchttp.DefaultLimits()
	lim.WriteTimeout = time.Second
	f := newFixtureWith(t, fixtureOptions{limits: &lim})
	pc := f.capture(t, "web1", "c1")
	b := f.browser(t)
	b.signInToken(f.admin)
	start := time.Now()
	b.events("/captures/"+pc.ID+"/live", 4)
	if time.Since(start) < 2500*time.Millisecond {
		t.Fatalf("4 events in %s, want them over 3 s", time.Since(start))
	}
}

// TestCaptureDownloadAndAudit: a stored file is listed with its size and
// checksum and downloads whole, checksum in the answer, to whom may read
// packets; the download and the console's posts are in the audit log, a
// form's checks as typed are not.
func TestCaptureDownloadAndAudit(t *testing.T) {
	f := newFixtureWith(t, fixtureOptions{audited: true})
	pc := f.capture(t, "web1", "c1")
	data := []byte("not really packets, but stored as a capture file")
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	h, err := f.svc.FindHost(f.adminCtx, "web1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.UploadFile(f.agentCtx(t, h), pc.ID, "c1.cap", hexSum, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	owner := f.browser(t)
	owner.signInToken(f.admin)
	p := owner.get("/captures/" + pc.ID)
	link := "/captures/" + pc.ID + "/download?name=c1.cap"
	if !strings.Contains(p.body, hexSum) || !strings.Contains(p.body, `href="`+link+`"`) || !strings.Contains(p.body, "48 B") {
		t.Fatalf("the capture's page lacks the file's checksum, size or link:\n%s", p.body)
	}
	p = owner.get(link)
	if p.StatusCode != 200 || p.body != string(data) || p.Header.Get("X-Tripcap-Sha256") != hexSum || !strings.Contains(p.Header.Get("Content-Disposition"), "c1.cap") {
		t.Fatalf("download: %s %v %q", p.Status, p.Header, p.body)
	}
	reader := f.browser(t)
	reader.signIn("rita", f.user(t, "rita", tripcap.RoleReader))
	if p := reader.get(link); p.StatusCode != http.StatusForbidden && p.StatusCode != http.StatusNotFound {
		t.Fatalf("a Reader's download: %s", p.Status)
	}
	owner.get("/captures/new")
	owner.check("/captures/validate", url.Values{"name": {"c2"}, "target": {"web1"}}, true)
	owner.get("/captures/" + pc.ID)
	if p := owner.post("/captures/"+pc.ID+"/stop", nil); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("stop: %s %s", p.Status, p.body)
	}
	events, _, err := f.audit.List(f.adminCtx, tripcap.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, e.Action+" "+e.Resource+" "+string(e.Result)+" "+e.PrincipalName)
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"downloadCaptureFile console/captures/" + pc.ID + "/download success",
		"downloadCaptureFile console/captures/" + pc.ID + "/download denied rita",
		"console console/captures/" + pc.ID + "/stop success",
		"console console/signin success rita",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the audit log lacks %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "validate") {
		t.Errorf("a form's check as typed is in the audit log:\n%s", all)
	}
}

// TestCaptureTriageSummary: a capture's page shows what its files hold, as
// the agent summarized them, and what changed at the alert.
func TestCaptureTriageSummary(t *testing.T) {
	f := newFixture(t)
	pc := f.capture(t, "web1", "c1")
	h, _ := f.svc.FindHost(f.adminCtx, "web1")
	start := time.Now().Add(-time.Minute)
	stop := time.Now()
	sum := &tripcap.CaptureSummary{Packets: 1200, Bytes: 900_000, DurationSeconds: 60,
		Protocols:     []tripcap.ProtocolCount{{Path: "eth:ipv4:tcp:tls", Packets: 1000, Bytes: 800_000}},
		Conversations: []tripcap.Conversation{{Protocol: "tcp", A: "198.18.0.2:40000", B: "198.18.0.1:443", PacketsAB: 600, PacketsBA: 400, BytesAB: 500_000, BytesBA: 300_000}},
		Alert: &tripcap.AlertChange{Time: start.Add(30 * time.Second), Source: "the alert's firing time",
			Before: tripcap.Period{Seconds: 30, Packets: 100}, After: tripcap.Period{Seconds: 30, Packets: 1100},
			Talkers: []tripcap.Change{{Name: "198.18.0.2", RateBefore: 100, RateAfter: 25000}}}}
	_, err := f.svc.Report(f.agentCtx(t, h), []tripcap.SessionReport{{CaptureID: pc.ID, Status: tripcap.StatusStopped, StopReason: tripcap.StopTimeExceeded,
		StartTime: &start, StopTime: &stop, Stats: tripcap.CaptureStats{Packets: 1200, Bytes: 900_000}, Summary: sum}})
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.signInToken(f.admin)
	p := b.get("/captures/" + pc.ID)
	for _, want := range []string{"Triage summary", "eth:ipv4:tcp:tls", "198.18.0.1:443", "What changed at the alert", "198.18.0.2", "25000", "TimeExceeded", "1m0s"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the capture's page lacks %q", want)
		}
	}
}
