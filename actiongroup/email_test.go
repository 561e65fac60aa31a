package actiongroup

import (
	"context"
	"encoding/json"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup/eximtest"
)

func TestEmailThroughExim(t *testing.T) {
	srv := eximtest.Start(t)
	log := &memLog{}
	n, err := New(Config{Log: log, Retry: fastRetry(), SMTP: &SMTPConfig{
		Addr: srv.Addr, From: "tripcap <alerts@example.test>", Username: eximtest.Username, Password: eximtest.Password,
		TLS: TLSRequired, RootCAs: srv.Pool,
	}})
	if err != nil {
		t.Fatal(err)
	}
	g := &tripcap.ActionGroup{ID: "ag1", Name: "oncall", EmailReceivers: []tripcap.EmailReceiver{
		{Name: "ops", EmailAddress: "oncall@example.test", UseCommonAlertSchema: true},
		{Name: "dev", EmailAddress: "dev@example.test"},
	}}
	ds := n.Notify(context.Background(), g, seedAlert(), map[string]string{"team": "net"})
	if len(ds) != 2 || !ds[0].Success || !ds[1].Success {
		t.Fatalf("deliveries %+v", ds)
	}
	msgs := srv.WaitMail(t, 2)
	seen := map[string]bool{}
	for _, m := range msgs {
		to := m.Header.Get("Envelope-To")
		seen[to] = true
		if subj := m.Header.Get("Subject"); subj != "[tripcap] Fired: Sev3 seed-network-out on vm1" {
			t.Errorf("subject %q", subj)
		}
		// Received over TLS with AUTH, as exim records.
		if rcv := strings.Join(m.Header["Received"], " "); !strings.Contains(rcv, "esmtpsa") {
			t.Errorf("not authenticated over TLS: %s", rcv)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
		if err != nil {
			t.Fatal(err)
		}
		text := string(body)
		js := text[strings.Index(text, "{"):]
		var p struct {
			SchemaID string `json:"schemaId"`
		}
		if err := json.Unmarshal([]byte(js), &p); err != nil {
			t.Fatalf("%s: body JSON: %v\n%s", to, err, text)
		}
		want := "AzureMonitorMetricAlert"
		if to == "oncall@example.test" {
			want = "azureMonitorCommonAlertSchema"
		}
		if p.SchemaID != want || !strings.Contains(text, "Network Out Total = 1234.5, GreaterThan 3") {
			t.Errorf("%s: schema %s, body:\n%s", to, p.SchemaID, text)
		}
	}
	if !seen["oncall@example.test"] || !seen["dev@example.test"] {
		t.Errorf("recipients %v", seen)
	}

	// A wrong password is refused for good (535): one attempt, logged.
	bad, _ := New(Config{Retry: fastRetry(), SMTP: &SMTPConfig{Addr: srv.Addr, From: "alerts@example.test", Username: "alerts", Password: "nope", RootCAs: srv.Pool}})
	ds = bad.Notify(context.Background(), &tripcap.ActionGroup{ID: "g", Name: "g", EmailReceivers: []tripcap.EmailReceiver{{Name: "e", EmailAddress: "oncall@example.test"}}}, seedAlert(), nil)
	if len(ds) != 1 || ds[0].Success || ds[0].StatusCode != 535 || !ds[0].Final {
		t.Fatalf("wrong password: %+v", ds)
	}
	// A recipient the server will not relay for: 550, no retry.
	ds = n.Notify(context.Background(), &tripcap.ActionGroup{ID: "g", Name: "g", EmailReceivers: []tripcap.EmailReceiver{{Name: "e", EmailAddress: "someone@elsewhere.test"}}}, seedAlert(), nil)
	if len(ds) != 1 || ds[0].Success || ds[0].StatusCode != 550 || !strings.Contains(ds[0].Error, "relay not permitted") {
		t.Fatalf("relay: %+v", ds)
	}
	// Without the test CA the certificate does not verify: no mail sent in clear.
	untrusted, _ := New(Config{Retry: fastRetry(), SMTP: &SMTPConfig{Addr: srv.Addr, From: "alerts@example.test"}})
	ds = untrusted.Notify(context.Background(), &tripcap.ActionGroup{ID: "g", Name: "g", EmailReceivers: []tripcap.EmailReceiver{{Name: "e", EmailAddress: "oncall@example.test"}}}, seedAlert(), nil)
	if len(ds) != 1 || ds[0].Success || !strings.Contains(ds[0].Error, "certificate") {
		t.Fatalf("untrusted certificate: %+v", ds)
	}
}

// A notice without a metric window (a responder's capture completion)
// shows no empty window, and lists its custom properties in the text, where
// a reader finds the download link, not only in the JSON below it.
func TestEmailTextListsCustomProperties(t *testing.T) {
	n, err := New(Config{SMTP: &SMTPConfig{Addr: "127.0.0.1:25", From: "alerts@example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	a := tripcap.Alert{ID: "c1", RuleName: "responder pc", HostName: "web1", MonitorCondition: tripcap.ConditionFired, Severity: 4,
		Description: "packet capture PSAzureFunction completed: Stopped"}
	msg, err := n.message(tripcap.EmailReceiver{Name: "ops", EmailAddress: "ops@example.test", UseCommonAlertSchema: true}, a,
		map[string]string{"downloadUrl": "https://tripcap.example/api/v1/captures/c1/file", "captureName": "PSAzureFunction"})
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(string(msg), "\r\n\r\n")
	text, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	summary, _, _ := strings.Cut(string(text), "{")
	if strings.Contains(summary, "Window:") || !strings.Contains(summary, "captureName: PSAzureFunction\r\ndownloadUrl: https://tripcap.example/api/v1/captures/c1/file\r\n") {
		t.Fatalf("summary:\n%s", summary)
	}
	// A metric alert keeps its window.
	msg, err = n.message(tripcap.EmailReceiver{Name: "ops", EmailAddress: "ops@example.test"}, seedAlert(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(msg), "Window:") {
		t.Fatalf("metric alert without its window:\n%s", msg)
	}
}
