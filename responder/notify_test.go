package responder_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap/actiongroup/webhooktest"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/actiongroup/eximtest"
	"github.com/tripcap/tripcap/controlplane"
)

// completionFields are what every completion notification carries.
var completionFields = []string{"captureName", "host", "storagePath", "downloadUrl", "packets", "stopReason", "errors"}

// mailPayload returns a mail's recipient, text before the JSON, and the
// JSON's properties: customProperties of the common alert schema, or
// the properties of a tripcap.captureCompleted/1 notice.
func mailPayload(t *testing.T, m *mail.Message) (to, text string, props map[string]string) {
	t.Helper()
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	s := string(body)
	i := strings.Index(s, "{")
	if i < 0 {
		t.Fatalf("mail without JSON:\n%s", s)
	}
	var p struct {
		SchemaID string `json:"schemaId"`
		Data     struct {
			CustomProperties map[string]string `json:"customProperties"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(s[i:]), &p); err != nil {
		t.Fatalf("mail JSON: %v\n%s", err, s)
	}
	props = p.Data.CustomProperties
	if p.SchemaID == actiongroup.SchemaCaptureCompleted {
		var n actiongroup.CaptureCompleted
		if err := json.Unmarshal([]byte(s[i:]), &n); err != nil {
			t.Fatalf("mail JSON: %v\n%s", err, s)
		}
		props = n.Properties()
	}
	return m.Header.Get("Envelope-To"), s[:i], props
}

func wantCompletion(t *testing.T, where string, props map[string]string, captureID, captureName, packets, errs string) {
	t.Helper()
	for _, k := range completionFields {
		if _, ok := props[k]; !ok {
			t.Errorf("%s: no %s in %v", where, k, props)
		}
	}
	if props["captureName"] != captureName || props["host"] != "web1" || props["packets"] != packets || props["stopReason"] != "TimeExceeded" ||
		props["errors"] != errs || !strings.HasPrefix(props["storagePath"], "file://") ||
		props["downloadUrl"] != "https://tripcap.example/api/v1/captures/"+captureID+"/file" {
		t.Errorf("%s: properties %v", where, props)
	}
}

// mailNotifier delivers through the test's real mail server, retrying fast.
func mailNotifier(t *testing.T, mta *eximtest.Server) *actiongroup.Notifier {
	t.Helper()
	n, err := actiongroup.New(actiongroup.Config{Targets: webhooktest.Targets(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Retry:  actiongroup.Retry{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, Total: 5 * time.Second},
		SMTP: &actiongroup.SMTPConfig{Addr: mta.Addr, From: "tripcap <alerts@example.test>", Username: eximtest.Username, Password: eximtest.Password,
			TLS: actiongroup.TLSRequired, RootCAs: mta.Pool},
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Completion notifications reach an email receiver (a real mail server)
// and every receiver of an action group with several kinds (webhook and
// email), each with the capture's facts.
func TestResponderNotifiesByEmailAndActionGroup(t *testing.T) {
	mta := eximtest.Start(t)
	f := newFixture(t, controlplane.Config{})
	agentCtx, _ := f.enroll(t, "web1")
	rc := webhooktest.Start(t)
	n := mailNotifier(t, mta)
	rsp := newResponderServer(t, f, "server-a", n, true)
	mon, err := controlplane.NewMonitor(f.store, slog.New(slog.NewTextHandler(io.Discard, nil)), controlplane.MonitorConfig{WebhookTargets: webhooktest.Targets(), SMTP: &actiongroup.SMTPConfig{Addr: mta.Addr, From: "alerts@example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*tripcap.ActionGroup{
		{Name: "mail", EmailReceivers: []tripcap.EmailReceiver{{Name: "oncall", EmailAddress: "oncall@example.test", UseCommonAlertSchema: true}}},
		{Name: "all",
			WebhookReceivers: []tripcap.WebhookReceiver{{Name: "hook", ServiceURI: rc.URL + "/all", UseCommonAlertSchema: true}},
			EmailReceivers:   []tripcap.EmailReceiver{{Name: "dev", EmailAddress: "dev@example.test"}}},
	} {
		if _, err := mon.CreateActionGroup(f.admin, g); err != nil {
			t.Fatal(err)
		}
	}
	captureOf := map[string]string{}
	for i, c := range []struct{ responder, group string }{{"by-mail", "mail"}, {"by-all", "all"}} {
		if _, err := rsp.CreateResponder(f.admin, &tripcap.Responder{Name: c.responder, NotifyActionGroup: c.group, Capture: tripcap.ResponderCapture{Name: c.responder}}); err != nil {
			t.Fatal(err)
		}
		k, err := rsp.CreateKey(f.admin, c.responder, "default")
		if err != nil {
			t.Fatal(err)
		}
		runs, err := rsp.Invoke(context.Background(), c.responder, k.Secret, amBody("firing", "web1", c.responder, fmt.Sprintf("2026-01-01T00:00:%02dZ", i)))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, c.responder+" decided", func() bool { return storedRun(t, f, runs[0].ID).Decision != tripcap.DecisionPending })
		r := storedRun(t, f, runs[0].ID)
		if r.Decision != tripcap.DecisionStarted {
			t.Fatalf("%s: %+v", c.responder, r)
		}
		captureOf[c.responder] = r.Hosts[0].CaptureID
	}
	complete(t, f, agentCtx, captureOf["by-mail"], 42)
	complete(t, f, agentCtx, captureOf["by-all"], 9, "InsufficientBuffer", "FileTruncated")

	for _, m := range mta.WaitMail(t, 2) {
		to, text, props := mailPayload(t, m)
		switch to {
		case "oncall@example.test":
			wantCompletion(t, "mail to oncall (common schema)", props, captureOf["by-mail"], "by-mail-web1", "42", "")
			if !strings.Contains(text, "Packet capture by-mail-web1 on web1 completed") || !strings.Contains(text, "Download:  https://tripcap.example/api/v1/captures/"+captureOf["by-mail"]+"/file") {
				t.Errorf("mail text:\n%s", text)
			}
		case "dev@example.test":
			wantCompletion(t, "mail to dev (metric alert schema)", props, captureOf["by-all"], "by-all-web1", "9", "InsufficientBuffer,FileTruncated")
		default:
			t.Errorf("mail to %q", to)
		}
	}
	eventually(t, "the group's webhook", func() bool { return len(rc.Accepted("/all")) == 1 })
	var p actiongroup.CommonAlert
	if err := json.Unmarshal(rc.Accepted("/all")[0].Body, &p); err != nil {
		t.Fatal(err)
	}
	wantCompletion(t, "webhook of the group", p.Data.CustomProperties, captureOf["by-all"], "by-all-web1", "9", "InsufficientBuffer,FileTruncated")

	for name, id := range captureOf {
		runs, err := rsp.FindRuns(f.admin, name, 0)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, name+" notification recorded", func() bool {
			r := storedRun(t, f, runs[0].ID)
			return r.Hosts[0].Notification == tripcap.NotifySent
		})
		if r := storedRun(t, f, runs[0].ID); r.Hosts[0].CaptureID != id || len(r.Errors) != 0 {
			t.Errorf("%s: run %+v", name, r)
		}
	}
}

// A receiver that cannot be told (its mail server is down) is recorded in
// the run as a failed notification, and the other receivers are told.
func TestResponderNotificationFailureIsRecorded(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	agentCtx, _ := f.enroll(t, "web1")
	rc := webhooktest.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := &actiongroup.SMTPConfig{Addr: l.Addr().String(), From: "alerts@example.test"}
	l.Close()
	n, err := actiongroup.New(actiongroup.Config{Targets: webhooktest.Targets(), SMTP: down, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Retry: actiongroup.Retry{Attempts: 2, Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	rsp := newResponderServer(t, f, "server-a", n, true)
	mon, err := controlplane.NewMonitor(f.store, slog.New(slog.NewTextHandler(io.Discard, nil)), controlplane.MonitorConfig{WebhookTargets: webhooktest.Targets(), SMTP: down})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mon.CreateActionGroup(f.admin, &tripcap.ActionGroup{Name: "all",
		WebhookReceivers: []tripcap.WebhookReceiver{{Name: "hook", ServiceURI: rc.URL + "/all"}},
		EmailReceivers:   []tripcap.EmailReceiver{{Name: "dev", EmailAddress: "dev@example.test"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "pc", NotifyActionGroup: "all"}); err != nil {
		t.Fatal(err)
	}
	k, err := rsp.CreateKey(f.admin, "pc", "default")
	if err != nil {
		t.Fatal(err)
	}
	runs, err := rsp.Invoke(context.Background(), "pc", k.Secret, amBody("firing", "web1", "fp", "2026-01-01T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "decided", func() bool { return storedRun(t, f, runs[0].ID).Decision != tripcap.DecisionPending })
	complete(t, f, agentCtx, storedRun(t, f, runs[0].ID).Hosts[0].CaptureID, 1)
	eventually(t, "notification recorded", func() bool { return storedRun(t, f, runs[0].ID).Hosts[0].Notification != tripcap.NotifyPending })
	r := storedRun(t, f, runs[0].ID)
	if r.Hosts[0].Notification != tripcap.NotifyFailed || r.Hosts[0].Notified != nil || len(r.Errors) != 1 ||
		!strings.Contains(r.Errors[0], "email dev: connecting to SMTP server") || r.Open() {
		b, _ := json.Marshal(r)
		t.Fatalf("run: %s", b)
	}
	if len(rc.Accepted("/all")) != 1 {
		t.Fatalf("the webhook was not told: %d", len(rc.Accepted("/all")))
	}
}

// A responder's own receivers (no action group) are told too: an unsigned
// webhook and an email, each with the capture's facts. Bad ones are refused
// with the field named.
func TestResponderOwnReceivers(t *testing.T) {
	mta := eximtest.Start(t)
	f := newFixture(t, controlplane.Config{})
	agentCtx, _ := f.enroll(t, "web1")
	rc := webhooktest.Start(t)
	n := mailNotifier(t, mta)
	rsp := newResponderServer(t, f, "server-a", n, true)
	for field, bad := range map[string]tripcap.Responder{
		"notifyWebhookReceivers[0].serviceUri": {Name: "bad", NotifyWebhookReceivers: []tripcap.WebhookReceiver{{Name: "w", ServiceURI: "ftp://x"}}},
		"notifyEmailReceivers[0].emailAddress": {Name: "bad", NotifyEmailReceivers: []tripcap.EmailReceiver{{Name: "e", EmailAddress: "nobody"}}},
	} {
		_, err := rsp.CreateResponder(f.admin, &bad)
		if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(tripcap.ErrorMessage(err), field) {
			t.Errorf("responder with a bad %s: %v", field, err)
		}
	}
	if _, err := rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "own", Capture: tripcap.ResponderCapture{Name: "own"},
		NotifyWebhookReceivers: []tripcap.WebhookReceiver{{Name: "hook", ServiceURI: rc.URL + "/own", UseCommonAlertSchema: true}},
		NotifyEmailReceivers:   []tripcap.EmailReceiver{{Name: "oncall", EmailAddress: "oncall@example.test", UseCommonAlertSchema: true}}}); err != nil {
		t.Fatal(err)
	}
	k, err := rsp.CreateKey(f.admin, "own", "default")
	if err != nil {
		t.Fatal(err)
	}
	runs, err := rsp.Invoke(context.Background(), "own", k.Secret, amBody("firing", "web1", "fp-own", "2026-01-01T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "decided", func() bool { return storedRun(t, f, runs[0].ID).Decision != tripcap.DecisionPending })
	r := storedRun(t, f, runs[0].ID)
	if r.Decision != tripcap.DecisionStarted || r.Hosts[0].Notification != tripcap.NotifyPending {
		t.Fatalf("run %+v", r)
	}
	id := r.Hosts[0].CaptureID
	complete(t, f, agentCtx, id, 7)

	eventually(t, "the responder's webhook", func() bool { return len(rc.Accepted("/own")) == 1 })
	got := rc.Accepted("/own")[0]
	if got.Header.Get(actiongroup.HeaderSignature) != "" {
		t.Error("a responder's own webhook was signed: it has no signing secret to share")
	}
	var p actiongroup.CommonAlert
	if err := json.Unmarshal(got.Body, &p); err != nil {
		t.Fatal(err)
	}
	wantCompletion(t, "the responder's webhook", p.Data.CustomProperties, id, "own-web1", "7", "")
	for _, m := range mta.WaitMail(t, 1) {
		to, _, props := mailPayload(t, m)
		if to != "oncall@example.test" {
			t.Errorf("mail to %q", to)
		}
		wantCompletion(t, "the responder's email", props, id, "own-web1", "7", "")
	}
	eventually(t, "notification recorded", func() bool { return storedRun(t, f, runs[0].ID).Hosts[0].Notification == tripcap.NotifySent })
}

// A notify group with a webhook and a responder receiver: the webhook is
// told and the run records the notification as sent, with no error for
// the responder receiver, which is not told of completions.
func TestResponderNotifyGroupWithResponderReceiver(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	agentCtx, _ := f.enroll(t, "web1")
	rc := webhooktest.Start(t)
	rsp := newResponderServer(t, f, "server-a", nil, true)
	mon, err := controlplane.NewMonitor(f.store, slog.New(slog.NewTextHandler(io.Discard, nil)), controlplane.MonitorConfig{WebhookTargets: webhooktest.Targets(), Responder: rsp.Responders})
	if err != nil {
		t.Fatal(err)
	}
	capturer, err := rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "capturer", Capture: tripcap.ResponderCapture{Name: "capturer"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mon.CreateActionGroup(f.admin, &tripcap.ActionGroup{Name: "ops",
		WebhookReceivers:   []tripcap.WebhookReceiver{{Name: "hook", ServiceURI: rc.URL + "/ops", UseCommonAlertSchema: true}},
		ResponderReceivers: []tripcap.ResponderReceiver{{Name: "cap", ResponderID: capturer.ID}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "pc", NotifyActionGroup: "ops"}); err != nil {
		t.Fatal(err)
	}
	run := fireDecided(t, f, rsp, "pc", "fp")
	complete(t, f, agentCtx, run.Hosts[0].CaptureID, 1)
	eventually(t, "notification recorded", func() bool { return storedRun(t, f, run.ID).Hosts[0].Notification != tripcap.NotifyPending })
	r := storedRun(t, f, run.ID)
	if r.Hosts[0].Notification != tripcap.NotifySent || len(r.Errors) != 0 || len(rc.Accepted("/ops")) != 1 {
		b, _ := json.Marshal(r)
		t.Fatalf("webhook told %d times; run: %s", len(rc.Accepted("/ops")), b)
	}
	if rr, err := rsp.FindRuns(f.admin, "capturer", 0); err != nil || len(rr) != 0 {
		t.Fatalf("the group's responder got the notice: %d runs, %v", len(rr), err)
	}
}
