package actiongroup

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tripcap/tripcap/internal/logtest"

	"github.com/tripcap/tripcap"
)

// A webhook URL's key (?code=, as Azure Functions take it, or in the path,
// as Slack's) is in neither the delivery records nor the log lines of
// failed deliveries, though the HTTP client's errors quote the URL.
func TestDeliveryRedactsWebhookSecrets(t *testing.T) {
	const secret = "FunctionKeyS3cret"
	dead := httptest.NewServer(http.NotFoundHandler())
	const pathSecret = "SlackPathS3cret"
	url := dead.URL + "/services/T0/B0/" + pathSecret + "?code=" + secret + "&clientId=default"
	dead.Close()
	var logs logtest.Buffer
	rec := &memLog{}
	n, err := New(Config{Retry: fastRetry(), Log: rec, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Targets: loopback})
	if err != nil {
		t.Fatal(err)
	}
	g := &tripcap.ActionGroup{ID: "ag1", Name: "g", SigningSecret: "SigningS3cret",
		WebhookReceivers: []tripcap.WebhookReceiver{{Name: "fn", ServiceURI: url}}}
	ds := n.Notify(context.Background(), g, seedAlert(), nil)
	if len(ds) != 4 || ds[3].Success {
		t.Fatalf("deliveries to a dead receiver: %+v", ds)
	}
	for i, d := range ds {
		if strings.Contains(d.Error, secret) || strings.Contains(d.Error, pathSecret) || !strings.Contains(d.Error, dead.URL+"/REDACTED") {
			t.Errorf("delivery %d error %q: want the URL reduced to its host", i, d.Error)
		}
	}
	if len(rec.ds) != 4 {
		t.Fatalf("%d deliveries recorded, want 4", len(rec.ds))
	}
	for _, d := range rec.ds {
		if strings.Contains(d.Error, secret) || strings.Contains(d.Error, pathSecret) {
			t.Errorf("recorded delivery holds the secret: %q", d.Error)
		}
	}
	out := logs.String()
	if !strings.Contains(out, "delivery failed") {
		t.Fatalf("no failure logged: %s", out)
	}
	for _, s := range []string{secret, pathSecret, "SigningS3cret"} {
		if strings.Contains(out, s) {
			t.Errorf("the log holds %q:\n%s", s, out)
		}
	}
}
