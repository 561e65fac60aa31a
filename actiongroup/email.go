package actiongroup

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// TLS policies of SMTPConfig.
const (
	// TLSOpportunistic uses STARTTLS when the server offers it (the default).
	TLSOpportunistic = "opportunistic"
	// TLSRequired refuses to send without STARTTLS.
	TLSRequired = "required"
	// TLSNone never starts TLS (a relay on the same host).
	TLSNone = "none"
)

// SMTPConfig is the mail server alerts are sent through.
type SMTPConfig struct {
	// Addr is host:port of the submission server.
	Addr string
	// From is the sender address.
	From string
	// Username and Password enable AUTH PLAIN, only ever over TLS (or to
	// localhost), as net/smtp insists.
	Username, Password string
	// TLS is TLSOpportunistic (default), TLSRequired or TLSNone.
	TLS string
	// RootCAs verifies the server's certificate (system roots when nil);
	// ServerName overrides the name checked (default: Addr's host).
	RootCAs    *x509.CertPool
	ServerName string
	// Helo is the name tripcap gives in EHLO (default "localhost").
	Helo string
}

func (c *SMTPConfig) validate() error {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil || host == "" || port == "" {
		return tripcap.Errorf(tripcap.EINVALID, "smtp.addr: %q is not host:port", c.Addr)
	}
	if a, err := mail.ParseAddress(c.From); err != nil || a.Address == "" {
		return tripcap.Errorf(tripcap.EINVALID, "smtp.from: %q is not an email address", c.From)
	}
	switch c.TLS {
	case "", TLSOpportunistic, TLSRequired, TLSNone:
	default:
		return tripcap.Errorf(tripcap.EINVALID, "smtp.tls: %q is not one of opportunistic, required, none", c.TLS)
	}
	return nil
}

// email mails the alert through the configured SMTP server.
type email struct {
	tripcap.EmailReceiver
	n *Notifier
}

// Check needs an SMTP server.
func (e email) Check(_ context.Context, field string) error {
	if e.n.cfg.SMTP == nil {
		return tripcap.Errorf(tripcap.EINVALID, "%s: this server has no SMTP server configured, so it cannot send email", field)
	}
	return nil
}

func (e email) Notify(ctx context.Context, m Message) Result {
	n := e.n
	if n.cfg.SMTP == nil {
		return Result{Err: errors.New("no SMTP server is configured")}
	}
	var msg []byte
	var err error
	if m.Completion != nil {
		msg, err = n.completionMessage(e.EmailReceiver, m)
	} else {
		msg, err = n.message(e.EmailReceiver, m.Alert, m.Custom)
	}
	if err != nil {
		return Result{Err: err}
	}
	err = sendMail(ctx, n.cfg.SMTP, e.EmailAddress, msg)
	if err == nil {
		return Result{}
	}
	res := Result{Err: err, Retry: true}
	var te *textproto.Error
	if errors.As(err, &te) {
		res.Status = te.Code
		// 4xx is "try again later"; 5xx is permanent.
		res.Retry = te.Code >= 400 && te.Code < 500
	}
	var perm permanentError
	if errors.As(err, &perm) {
		res.Retry = false
	}
	return res
}

type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// message renders the mail: a short summary, then the same JSON a webhook
// with the receiver's schema setting would get.
func (n *Notifier) message(r tripcap.EmailReceiver, a tripcap.Alert, custom map[string]string) ([]byte, error) {
	var payload any = NewMetricAlert(a, custom, n.cfg.PortalURL)
	if r.UseCommonAlertSchema {
		payload = NewCommonAlert(a, custom)
	}
	js, err := json.MarshalIndent(payload, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("rendering alert: %w", err)
	}
	var body strings.Builder
	fmt.Fprintf(&body, "Alert %s: %s on %s\n\n", a.MonitorCondition, a.RuleName, a.HostName)
	fmt.Fprintf(&body, "Severity:  %s\nHost:      %s (%s)\nFired:     %s\n", tripcap.SeverityName(a.Severity), a.HostName, a.TargetResourceID, a.FiredAt.UTC().Format(time.RFC3339))
	if a.ResolvedAt != nil {
		fmt.Fprintf(&body, "Resolved:  %s\n", a.ResolvedAt.UTC().Format(time.RFC3339))
	}
	// A notice that is not a metric alert's (a responder's capture
	// completion) has no window.
	if !a.Condition.WindowStartTime.IsZero() {
		fmt.Fprintf(&body, "Window:    %s to %s\n", a.Condition.WindowStartTime.UTC().Format(time.RFC3339), a.Condition.WindowEndTime.UTC().Format(time.RFC3339))
	}
	for _, c := range a.Condition.AllOf {
		fmt.Fprintf(&body, "Condition: %s %s of %s = %g, %s %g\n", c.Name, c.TimeAggregation, c.MetricName, c.MetricValue, c.Operator, c.Threshold)
	}
	if a.Description != "" {
		fmt.Fprintf(&body, "\n%s\n", a.Description)
	}
	// The custom properties are what a reader acts on (a capture's
	// download link, say): listed in the text too, not only in the JSON.
	if len(custom) > 0 {
		body.WriteString("\n")
		for _, k := range slices.Sorted(maps.Keys(custom)) {
			fmt.Fprintf(&body, "%s: %s\n", k, custom[k])
		}
	}
	body.WriteString("\n")
	body.Write(js)
	body.WriteString("\n")

	subject := fmt.Sprintf("[tripcap] %s: %s %s on %s", a.MonitorCondition, tripcap.SeverityName(a.Severity), a.RuleName, a.HostName)
	return n.mail(r.EmailAddress, subject, a.ID, strings.ToLower(string(a.MonitorCondition)), body.String())
}

// completionMessage renders a capture completion notice as a mail: the
// capture's health in a few lines, then the JSON a webhook with the
// receiver's schema setting would get.
func (n *Notifier) completionMessage(r tripcap.EmailReceiver, m Message) ([]byte, error) {
	c := m.Completion
	var payload any = c
	if r.UseCommonAlertSchema {
		payload = NewCompletionCommonAlert(c)
	}
	js, err := json.MarshalIndent(payload, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("rendering notice: %w", err)
	}
	d := c.Data
	var body strings.Builder
	fmt.Fprintf(&body, "Packet capture %s on %s completed: %s", d.Capture.Name, d.Host.Name, d.Capture.Status)
	if d.Capture.StopReason != "" {
		fmt.Fprintf(&body, " (%s)", d.Capture.StopReason)
	}
	body.WriteString("\n\n")
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&body, "%-11s%s\n", k+":", v)
		}
	}
	line("Host", d.Host.Name+" ("+d.Host.ResourceID+")")
	line("Responder", d.Responder.Name+", run "+d.RunID)
	line("Alert", strings.TrimSpace(d.Alert.Condition+" "+d.Alert.Summary+" "+d.Alert.ID))
	line("Started", d.Capture.StartTime)
	line("Stopped", d.Capture.StopTime)
	health := fmt.Sprintf("%d (%d bytes), %d kernel drops", d.Stats.Packets, d.Stats.Bytes, d.Stats.KernelDrops)
	switch t := d.Stats.TruncatedPackets; {
	case d.Stats.SnapLength == 0:
	case t == nil:
		health += fmt.Sprintf(", cut to %d bytes (truncated packets not counted by this agent)", d.Stats.SnapLength)
	default:
		health += fmt.Sprintf(", %d truncated to %d bytes", *t, d.Stats.SnapLength)
	}
	line("Packets", health)
	for _, e := range d.Stats.InterfacesEnded {
		line("Ended", strings.TrimSpace(e.Name+" at "+e.At+" "+e.Reason))
	}
	line("Upload", strings.TrimSpace(d.Upload.Result+" "+d.Upload.Message))
	line("Errors", strings.TrimSpace(strings.Join(d.Capture.Errors, ",")+" "+d.Capture.ErrorMessage))
	line("File", d.StoragePath)
	line("Download", d.DownloadURL)
	if len(d.Summary) > 0 {
		body.WriteString("\nWhat it holds:\n")
		for _, s := range d.Summary {
			fmt.Fprintf(&body, "  %s\n", s)
		}
	}
	body.WriteString("\n")
	body.Write(js)
	body.WriteString("\n")
	subject := fmt.Sprintf("[tripcap] capture completed: %s on %s, %d packets, upload %s", d.Capture.Name, d.Host.Name, d.Stats.Packets, d.Upload.Result)
	return n.mail(r.EmailAddress, subject, d.EventID, "completed", body.String())
}

// mail is a text message to one address, quoted-printable; id names what
// it tells of (an alert, a capture) in its headers, with the event.
func (n *Notifier) mail(to, subject, id, event, body string) ([]byte, error) {
	var m bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&m, "%s: %s\r\n", k, v) }
	hdr("From", n.cfg.SMTP.From)
	hdr("To", to)
	hdr("Subject", mimeHeader(subject))
	hdr("Date", n.cfg.Now().UTC().Format(time.RFC1123Z))
	hdr("Message-ID", fmt.Sprintf("<%s.%s.%s@tripcap>", id, event, tripcap.NewID()))
	hdr("X-Tripcap-Alert-Id", id)
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	m.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&m)
	if _, err := qp.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return m.Bytes(), nil
}

// mimeHeader encodes a header value with non-ASCII text (RFC 2047).
func mimeHeader(s string) string {
	for _, r := range s {
		if r > 126 || r < 32 {
			return mime.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}

// sendMail runs one SMTP session: EHLO, STARTTLS when offered (or
// required), AUTH PLAIN when configured, one message.
func sendMail(ctx context.Context, c *SMTPConfig, to string, msg []byte) error {
	host, _, _ := net.SplitHostPort(c.Addr)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("connecting to SMTP server %s: %w", c.Addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Closing the connection is how a cancelled ctx interrupts the session.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	cl, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("SMTP greeting from %s: %w", c.Addr, err)
	}
	defer cl.Close()
	helo := c.Helo
	if helo == "" {
		helo = "localhost"
	}
	if err := cl.Hello(helo); err != nil {
		return fmt.Errorf("SMTP EHLO: %w", err)
	}
	if ok, _ := cl.Extension("STARTTLS"); ok && c.TLS != TLSNone {
		name := c.ServerName
		if name == "" {
			name = host
		}
		if err := cl.StartTLS(&tls.Config{ServerName: name, RootCAs: c.RootCAs, MinVersion: tls.VersionTLS12}); err != nil {
			return permanentError{fmt.Errorf("SMTP STARTTLS: %w", err)}
		}
	} else if c.TLS == TLSRequired {
		return permanentError{fmt.Errorf("SMTP server %s does not offer STARTTLS, which smtp.tls requires", c.Addr)}
	}
	if c.Username != "" {
		if ok, _ := cl.Extension("AUTH"); !ok {
			return permanentError{fmt.Errorf("SMTP server %s offers no AUTH; cannot log in as %s", c.Addr, c.Username)}
		}
		if err := cl.Auth(smtp.PlainAuth("", c.Username, c.Password, host)); err != nil {
			return fmt.Errorf("SMTP AUTH: %w", err)
		}
	}
	from, _ := mail.ParseAddress(c.From)
	if err := cl.Mail(from.Address); err != nil {
		return fmt.Errorf("SMTP MAIL FROM: %w", err)
	}
	if err := cl.Rcpt(to); err != nil {
		return fmt.Errorf("SMTP RCPT TO %s: %w", to, err)
	}
	w, err := cl.Data()
	if err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("SMTP message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("SMTP end of message: %w", err)
	}
	return cl.Quit()
}
