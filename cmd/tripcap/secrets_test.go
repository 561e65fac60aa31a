package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap/internal/logtest"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup/webhooktest"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/internal/blobtest"
	"github.com/tripcap/tripcap/tlscert"
)

// TestSecretsNeverInClear is the regression test of issue 12's finding
// "secrets in clear": an action group's signing secret, its webhook URLs'
// ?code= keys, a storage account's ?key=, the SMTP password, through 40
// and more deliveries: none is in the database file or its WAL, in the
// server's log, or in an API answer (which show the URLs redacted).
func TestSecretsNeverInClear(t *testing.T) {
	const (
		code       = "FnCodeS3cretXyz"
		deadCode   = "DeadFnCodeS3cret"
		smtpPass   = "SmtpPassS3cret"
		notifyCode = "NotifyS3cretCode"
	)
	t.Setenv("TRIPCAP_SMTP_ADDR", "127.0.0.1:1")
	t.Setenv("TRIPCAP_SMTP_FROM", "tripcap@example.invalid")
	t.Setenv("TRIPCAP_SMTP_USERNAME", "tripcap")
	t.Setenv("TRIPCAP_SMTP_PASSWORD", smtpPass)
	t.Setenv("TRIPCAP_SMTP_TLS", "none")
	rc := webhooktest.Start(t)
	data := t.TempDir()
	var logs logtest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// Its receivers are on loopback, which the operator allows.
	cp := startControlPlane(t, &serverOptions{listen: "127.0.0.1:0", data: data, heartbeat: 10 * time.Second,
		maxCaptures: tripcap.DefaultParallelCapturesPerWatcher, allowWebhookTargets: []string{"127.0.0.0/8"}}, log)
	ctx := t.Context()
	c := apiClient(t, cp.url, cp.adminToken)

	// Ten receivers answering 503 then 200: Fired and Resolved, two
	// attempts each, are 40 deliveries; one receiver no one listens on
	// (its errors quote its URL), and an email receiver (no SMTP server
	// there either).
	g := &tripcap.ActionGroup{Name: "ops"}
	for i := range 10 {
		g.WebhookReceivers = append(g.WebhookReceivers, tripcap.WebhookReceiver{Name: "fn" + string(rune('a'+i)),
			ServiceURI: rc.URL + "/flaky/" + string(rune('a'+i)) + "?code=" + code + "&clientId=default"})
	}
	g.WebhookReceivers = append(g.WebhookReceivers, tripcap.WebhookReceiver{Name: "dead", ServiceURI: "http://127.0.0.1:1/api?code=" + deadCode})
	g.EmailReceivers = []tripcap.EmailReceiver{{Name: "oncall", EmailAddress: "oncall@example.invalid"}}
	created, err := c.CreateActionGroup(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	signing := created.SigningSecret
	if len(signing) < 32 {
		t.Fatalf("created group: %+v", created)
	}
	// An Azure account whose key is in its URL (the server opens it, so
	// the key must be right: Azurite's account).
	az := blobtest.NewAzurite(t)
	storageKey := az.Key
	if _, err := c.AddStorageAccount(ctx, "azure", "azblob://"+az.Account+"/captures?endpoint="+url.QueryEscape(az.BlobEndpoint)+"&key="+url.QueryEscape(storageKey)); err != nil {
		t.Fatalf("add storage account: %v", err)
	}
	if _, err := c.CreateResponder(ctx, &tripcap.Responder{Name: "pc",
		NotifyWebhookReceivers: []tripcap.WebhookReceiver{{Name: "done", ServiceURI: rc.URL + "/done?code=" + notifyCode}}}); err != nil {
		t.Fatal(err)
	}
	jt, err := c.CreateJoinToken(ctx, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	enrolled, err := c.Enroll(ctx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	rule := &tripcap.AlertRule{Name: "egress", Scopes: []tripcap.Scope{"host:web1"}, EvaluationFrequency: "PT1S", WindowSize: "PT5S",
		Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{
			MetricCriterion: tripcap.MetricCriterion{MetricName: "Network Out Total", TimeAggregation: tripcap.AggregationAverage},
			Operator:        tripcap.OperatorGreaterThan, Threshold: 1000}}}},
		Actions: []tripcap.Action{{ActionGroupID: "ops"}}}
	if _, err := c.CreateAlertRule(ctx, rule); err != nil {
		t.Fatal(err)
	}
	agent := c.WithToken(enrolled.Credential)
	next := time.Now().Truncate(10 * time.Second).Add(-2*time.Minute + time.Second)
	post := func(v float64) {
		var b tripcap.MetricBatch
		for range 10 {
			b.Points = append(b.Points, tripcap.MetricPoint{Metric: tripcap.MetricNetworkOutBytes, Time: next, Value: v})
			next = next.Add(time.Second)
		}
		if err := agent.PostMetrics(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	accepted := func() (n int) {
		for i := range 10 {
			n += len(rc.Accepted("/flaky/" + string(rune('a'+i))))
		}
		return n
	}
	post(100)
	post(5000)
	waitFor("the Fired deliveries", func() bool { return accepted() == 10 })
	post(100)
	waitFor("the Resolved deliveries", func() bool { return accepted() == 20 })
	alerts, err := c.ListAlerts(ctx, controlplane.AlertQuery{})
	if err != nil || len(alerts) != 1 {
		t.Fatalf("alerts: %v, %v", alerts, err)
	}
	var failedDead int
	waitFor("40 deliveries and the dead receiver's failures recorded", func() bool {
		d, err := c.GetAlert(ctx, alerts[0].ID)
		if err != nil {
			return false
		}
		var flaky int
		failedDead = 0
		for _, dl := range d.Deliveries {
			switch {
			case strings.HasPrefix(dl.Receiver, "fn"):
				flaky++
			case dl.Receiver == "dead" && !dl.Success:
				failedDead++
			}
		}
		return flaky == 40 && failedDead >= 2
	})

	secrets := []string{code, deadCode, storageKey, url.QueryEscape(storageKey), smtpPass, notifyCode, signing}
	wantNone := func(what string, b []byte) {
		t.Helper()
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds the secret %q", what, s)
			}
		}
	}
	// The API's answers: secrets redacted, signing secret left out.
	for _, path := range []string{"/api/v1/action-groups", "/api/v1/action-groups/ops", "/api/v1/storage", "/api/v1/responders",
		"/api/v1/responders/pc", "/api/v1/alerts", "/api/v1/alerts/" + alerts[0].ID} {
		b := getRaw(t, cp.url, cp.adminToken, path)
		wantNone("GET "+path, b)
		if path == "/api/v1/storage" && !bytes.Contains(b, []byte("key=REDACTED")) {
			t.Errorf("GET %s: the key is not shown redacted: %s", path, b)
		}
		if strings.HasPrefix(path, "/api/v1/action-groups") && (!bytes.Contains(b, []byte(`/REDACTED"`)) || bytes.Contains(b, []byte("/flaky/")) || !bytes.Contains(b, []byte(`"signingSecretSet":true`))) {
			t.Errorf("GET %s: the webhook URLs are not shown redacted, or the signing secret not said to be set: %s", path, b)
		}
		if path == "/api/v1/alerts/"+alerts[0].ID && !bytes.Contains(b, []byte("http://127.0.0.1:1/REDACTED")) {
			t.Errorf("GET %s: the dead receiver's errors do not show its URL redacted: %s", path, b)
		}
	}
	// The database's files, as a copy or a backup would hold them.
	db := filepath.Join(data, "tripcap.db")
	for _, p := range []string{db, db + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		wantNone(p, b)
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", p, fi.Mode().Perm())
		}
	}
	// The server's log.
	out := logs.String()
	wantNone("the server's log", []byte(out))
	if !strings.Contains(out, "delivery failed") || !strings.Contains(out, "created the master key file") {
		t.Errorf("the log does not show the deliveries failing or the master key created:\n%s", out)
	}
}

// getRaw is the body of an API answer, as the server sent it.
func getRaw(t *testing.T, base, token, path string) []byte {
	t.Helper()
	pool, err := tlscert.LoadPool(os.Getenv("TRIPCAP_CA_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}, Timeout: 10 * time.Second}
	req, err := http.NewRequestWithContext(t.Context(), "GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %v %s", path, resp.Status, err, b)
	}
	return b
}
