package tripcap

import (
	"net/url"
	"slices"
	"strings"
)

// Redacted replaces a secret in what tripcap shows: API answers, log lines,
// delivery records.
const Redacted = "REDACTED"

// RedactURL returns u with its secrets replaced by Redacted: the password
// of its userinfo and the values of query parameters that carry
// credentials (code, key, sig, token, secret, password, X-Amz-Signature…;
// see credentialParam). The rest is kept as written, so the URL still says
// where it points. Text that does not parse as a URL but may hold a
// secret (userinfo or a query) is replaced whole.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		if strings.ContainsAny(u, "@?") {
			return Redacted
		}
		return u
	}
	changed := false
	if _, has := p.User.Password(); has {
		p.User, changed = url.UserPassword(p.User.Username(), Redacted), true
	}
	if q, ok := redactQuery(p.RawQuery); ok {
		p.RawQuery, changed = q, true
	}
	if !changed {
		return u
	}
	return p.String()
}

// redactQuery redacts the credential parameters of a raw query, keeping
// their order and the others' encoding; ok says whether any was redacted.
func redactQuery(raw string) (string, bool) {
	if raw == "" {
		return raw, false
	}
	parts := strings.Split(raw, "&")
	ok := false
	for i, part := range parts {
		name, _, _ := strings.Cut(part, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if credentialParam(name) {
			parts[i], ok = url.QueryEscape(name)+"="+Redacted, true
		}
	}
	return strings.Join(parts, "&"), ok
}

// credentialParam reports whether a query parameter's name says its value
// is a credential: Azure Functions' code, Azure SAS's sig, API keys,
// tokens, secrets, passwords, AWS presigned URLs' signature, credential and
// security token. Broad on purpose: hiding a harmless value costs less
// than showing a key.
func credentialParam(name string) bool {
	n := strings.NewReplacer("-", "", "_", "", ".", "").Replace(strings.ToLower(name))
	switch n {
	case "code", "sig", "auth", "pass", "pwd", "sas":
		return true
	}
	for _, s := range []string{"key", "token", "secret", "passw", "signature", "credential", "apikey", "authorization"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// RedactURLs applies RedactURL to every URL (scheme://…) in free text, such
// as an error that quotes the URL it failed on.
func RedactURLs(text string) string {
	return replaceURLs(text, RedactURL)
}

// replaceURLs is text with every URL (scheme://…) in it passed through redact.
func replaceURLs(text string, redact func(string) string) string {
	var b strings.Builder
	for {
		i := strings.Index(text, "://")
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		start := i
		for start > 0 && schemeChar(text[start-1]) {
			start--
		}
		end := i + 3
		for end < len(text) && !strings.ContainsRune(" \t\r\n\"'<>`", rune(text[end])) {
			end++
		}
		b.WriteString(text[:start])
		if start == i {
			b.WriteString(text[start:end])
		} else {
			b.WriteString(redact(text[start:end]))
		}
		text = text[end:]
	}
}

func schemeChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
}

// RedactWebhookURL is a webhook receiver's URL as tripcap shows it:
// scheme://host[:port]/REDACTED. Its path and query are hidden whole, not
// just its credential-like parameters, because Slack, Discord and Teams
// put the key in the path (/services/T/B/KEY, /api/webhooks/ID/TOKEN); the
// host is kept so the answer still says where it points. Text that does
// not parse as an absolute URL is replaced whole.
func RedactWebhookURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || p.Host == "" {
		return Redacted
	}
	return p.Scheme + "://" + p.Host + "/" + Redacted
}

// isRedactedWebhook reports whether u has the form RedactWebhookURL gives.
func isRedactedWebhook(u string) bool {
	return u == Redacted || strings.HasSuffix(u, "/"+Redacted) && RedactWebhookURL(u) == u
}

// RedactWebhookURLs is text with every URL in it redacted as a webhook
// receiver's (RedactWebhookURL), for errors of a delivery to one.
func RedactWebhookURLs(text string) string {
	return replaceURLs(text, RedactWebhookURL)
}

// redactWebhooks is rs with each service URI redacted (RedactWebhookURL).
func redactWebhooks(rs []WebhookReceiver) []WebhookReceiver {
	if rs == nil {
		return nil
	}
	out := make([]WebhookReceiver, len(rs))
	for i, r := range rs {
		r.ServiceURI = RedactWebhookURL(r.ServiceURI)
		out[i] = r
	}
	return out
}

// Redacted is g as an answer shows it: without its signing secret
// (SigningSecretSet says it has one) and with its webhook URLs reduced to
// their host (RedactWebhookURL): a service URI is write-only.
func (g *ActionGroup) Redacted() *ActionGroup {
	c := *g
	c.SigningSecretSet = g.SigningSecret != "" || g.SigningSecretSet
	c.SigningSecret = ""
	c.WebhookReceivers = redactWebhooks(g.WebhookReceivers)
	return &c
}

// Redacted is r as an answer shows it: its webhook URLs reduced to their
// host (RedactWebhookURL).
func (r *Responder) Redacted() *Responder {
	c := *r
	c.NotifyWebhookReceivers = redactWebhooks(r.NotifyWebhookReceivers)
	return &c
}

// Redacted is a as an answer shows it: its URL's keys redacted.
func (a *StorageAccount) Redacted() *StorageAccount {
	c := *a
	c.URL = RedactURL(a.URL)
	return &c
}

// RestoreWebhooks returns in with each service URI that an answer redacted
// (a client read the receivers, changed something else and sent them
// back) replaced by the one it stands for: the URI of the receiver of cur
// with the same name that redacts to it. field names the receivers
// (webhookReceivers); EINVALID when a redacted URI stands for none of cur.
func RestoreWebhooks(field string, in, cur []WebhookReceiver) ([]WebhookReceiver, error) {
	if in == nil {
		return nil, nil
	}
	out := make([]WebhookReceiver, len(in))
	for i, r := range in {
		if isRedactedWebhook(r.ServiceURI) {
			j := slices.IndexFunc(cur, func(c WebhookReceiver) bool {
				return c.Name == r.Name && c.ServiceURI != r.ServiceURI && RedactWebhookURL(c.ServiceURI) == r.ServiceURI
			})
			if j < 0 {
				return nil, Errorf(EINVALID, "%s[%d].serviceUri: %q is a redacted URL, and receiver %q had no URL it stands for; give the whole URL", field, i, clip(r.ServiceURI), clip(r.Name))
			}
			r.ServiceURI = cur[j].ServiceURI
		}
		out[i] = r
	}
	return out, nil
}
