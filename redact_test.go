package tripcap_test

import (
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://fn.example.invalid/api/alert?code=S3CRET":                                                                                       "https://fn.example.invalid/api/alert?code=REDACTED",
		"https://fn.example.invalid/api/alert?code=S3CRET&clientId=default":                                                                      "https://fn.example.invalid/api/alert?code=REDACTED&clientId=default",
		"azblob://acct/captures?endpoint=http://127.0.0.1:10000/acct&key=S3CRET":                                                                 "azblob://acct/captures?endpoint=http://127.0.0.1:10000/acct&key=REDACTED",
		"https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sig=S3CRET&se=2026":                                                                "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sig=REDACTED&se=2026",
		"s3://AKIAEXAMPLE:S3CRET@bucket/prefix?region=eu-west-1":                                                                                 "s3://AKIAEXAMPLE:REDACTED@bucket/prefix?region=eu-west-1",
		"postgres://tripcap:S3CRET@db.internal/tripcap?sslmode=require":                                                                          "postgres://tripcap:REDACTED@db.internal/tripcap?sslmode=require",
		"https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=S3CRET&X-Amz-Signature=S3CRET&X-Amz-Security-Token=S3CRET":           "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED",
		"https://h.example.invalid/x?token=S3CRET&secret=S3CRET&password=S3CRET&api-key=S3CRET&apikey=S3CRET&access_token=S3CRET&api_key=S3CRET": "https://h.example.invalid/x?token=REDACTED&secret=REDACTED&password=REDACTED&api-key=REDACTED&apikey=REDACTED&access_token=REDACTED&api_key=REDACTED",
		"https://h.example.invalid/x?CODE=S3CRET":                                                                                                "https://h.example.invalid/x?CODE=REDACTED",
		"file:///var/lib/tripcap/storage":                                                                                                        "file:///var/lib/tripcap/storage",
		"https://h.example.invalid/x?team=net":                                                                                                   "https://h.example.invalid/x?team=net",
		"https://user@h.example.invalid/x":                                                                                                       "https://user@h.example.invalid/x",
		"http://[::1:S3CRET@x?code=S3CRET":                                                                                                       "REDACTED",
		"":                                                                                                                                       "",
	} {
		if got := tripcap.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q)\n = %q\nwant %q", in, got, want)
		}
	}
}

func TestRedactURLs(t *testing.T) {
	in := `posting webhook: Post "https://fn.example.invalid/api?code=S3CRET": dial tcp 127.0.0.1:1: connect: connection refused; also s3=s3://k:S3CRET@b/p and https://x.invalid/?sig=S3CRET`
	got := tripcap.RedactURLs(in)
	if strings.Contains(got, "S3CRET") {
		t.Fatalf("RedactURLs left a secret: %s", got)
	}
	want := `posting webhook: Post "https://fn.example.invalid/api?code=REDACTED": dial tcp 127.0.0.1:1: connect: connection refused; also s3=s3://k:REDACTED@b/p and https://x.invalid/?sig=REDACTED`
	if got != want {
		t.Fatalf("RedactURLs:\n got %s\nwant %s", got, want)
	}
	if s := "no url here: a://"; tripcap.RedactURLs(s) != s {
		t.Fatalf("RedactURLs(%q) = %q", s, tripcap.RedactURLs(s))
	}
}

// A webhook receiver's URL is shown as its scheme and host only: Slack,
// Discord and Teams keep the key in the path, not the query.
func TestRedactWebhookURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T000/B000/S3CRET":                                   "https://hooks.slack.com/REDACTED",
		"https://discord.com/api/webhooks/123456/S3CRET":                                      "https://discord.com/REDACTED",
		"https://contoso.webhook.office.com/webhookb2/S3CRET@tenant/IncomingWebhook/S3CRET/x": "https://contoso.webhook.office.com/REDACTED",
		"https://fn.example.invalid:8443/api/alert?code=S3CRET&clientId=default":              "https://fn.example.invalid:8443/REDACTED",
		"https://user:S3CRET@h.example.invalid/x":                                             "https://h.example.invalid/REDACTED",
		"http://[::1]:9000/S3CRET":                                                            "http://[::1]:9000/REDACTED",
		"https://h.example.invalid":                                                           "https://h.example.invalid/REDACTED",
		"not a url S3CRET":                                                                    "REDACTED",
		"http://[::1:S3CRET":                                                                  "REDACTED",
	} {
		if got := tripcap.RedactWebhookURL(in); got != want {
			t.Errorf("RedactWebhookURL(%q) = %q, want %q", in, got, want)
		}
	}
	in := `posting webhook: Post "https://hooks.slack.com/services/T/B/S3CRET": dial tcp: refused`
	if got, want := tripcap.RedactWebhookURLs(in), `posting webhook: Post "https://hooks.slack.com/REDACTED": dial tcp: refused`; got != want {
		t.Fatalf("RedactWebhookURLs:\n got %s\nwant %s", got, want)
	}
}

func TestActionGroupRedacted(t *testing.T) {
	const slack = "https://hooks.slack.com/services/T000/B000/S3CRET"
	g := &tripcap.ActionGroup{Name: "ops", SigningSecret: "S3CRET",
		WebhookReceivers: []tripcap.WebhookReceiver{{Name: "fn", ServiceURI: "https://fn.example.invalid/api?code=S3CRET"}, {Name: "slack", ServiceURI: slack}}}
	r := g.Redacted()
	if r.SigningSecret != "" || !r.SigningSecretSet || r.WebhookReceivers[0].ServiceURI != "https://fn.example.invalid/REDACTED" || r.WebhookReceivers[1].ServiceURI != "https://hooks.slack.com/REDACTED" {
		t.Fatalf("redacted group: %+v", r)
	}
	if g.SigningSecret != "S3CRET" || g.WebhookReceivers[0].ServiceURI != "https://fn.example.invalid/api?code=S3CRET" || g.WebhookReceivers[1].ServiceURI != slack {
		t.Fatalf("Redacted changed the group: %+v", g)
	}
	if (&tripcap.ActionGroup{}).Redacted().SigningSecretSet {
		t.Fatal("a group without a secret says it has one")
	}
	rs := (&tripcap.Responder{NotifyWebhookReceivers: g.WebhookReceivers}).Redacted()
	if rs.NotifyWebhookReceivers[1].ServiceURI != "https://hooks.slack.com/REDACTED" {
		t.Fatalf("redacted responder: %+v", rs.NotifyWebhookReceivers)
	}
	// A client sends the answer back: the URL it stands for is restored.
	restored, err := tripcap.RestoreWebhooks("webhookReceivers", r.WebhookReceivers, g.WebhookReceivers)
	if err != nil || restored[0].ServiceURI != g.WebhookReceivers[0].ServiceURI || restored[1].ServiceURI != slack {
		t.Fatalf("restore: %+v, %v", restored, err)
	}
	// A new URL is taken as given.
	in := []tripcap.WebhookReceiver{{Name: "fn", ServiceURI: "https://fn2.example.invalid/api?code=NEW"}}
	if restored, err := tripcap.RestoreWebhooks("webhookReceivers", in, g.WebhookReceivers); err != nil || restored[0].ServiceURI != in[0].ServiceURI {
		t.Fatalf("restore of a new URL: %+v, %v", restored, err)
	}
	// A redacted URL that stands for none of the receivers: refused, naming the field.
	for _, bad := range []tripcap.WebhookReceiver{{Name: "other", ServiceURI: "https://fn.example.invalid/REDACTED"}, {Name: "fn", ServiceURI: "https://elsewhere.example.invalid/REDACTED"}} {
		in = []tripcap.WebhookReceiver{bad}
		if _, err := tripcap.RestoreWebhooks("webhookReceivers", in, g.WebhookReceivers); tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(err.Error(), "webhookReceivers[0].serviceUri") {
			t.Fatalf("restore of an unknown redacted URL %+v: %v", bad, err)
		}
	}
}

func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{"https://h/x?code=abc", "s3://a:b@c/d", "http://[::1", "x?key=v&sig=w", "%zz?code=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := tripcap.RedactURL(in)
		if tripcap.RedactURL(out) != out {
			t.Fatalf("RedactURL is not idempotent on %q: %q then %q", in, out, tripcap.RedactURL(out))
		}
		_ = tripcap.RedactURLs(in)
		w := tripcap.RedactWebhookURL(in)
		if tripcap.RedactWebhookURL(w) != w {
			t.Fatalf("RedactWebhookURL is not idempotent on %q: %q then %q", in, w, tripcap.RedactWebhookURL(w))
		}
	})
}
