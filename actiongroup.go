package tripcap

import (
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"
)

// Action group receivers.

// WebhookReceiver posts the alert to ServiceURI: the common alert schema when
// UseCommonAlertSchema is set, Azure's AzureMonitorMetricAlert schema otherwise.
type WebhookReceiver struct {
	Name                 string `json:"name"`
	ServiceURI           string `json:"serviceUri"`
	UseCommonAlertSchema bool   `json:"useCommonAlertSchema"`
}

// EmailReceiver mails the alert.
type EmailReceiver struct {
	Name                 string `json:"name"`
	EmailAddress         string `json:"emailAddress"`
	UseCommonAlertSchema bool   `json:"useCommonAlertSchema"`
}

// ResponderReceiver hands the alert to a tripcap responder (which may start
// a packet capture on the host); ResponderID names its configuration.
type ResponderReceiver struct {
	Name        string `json:"name"`
	ResponderID string `json:"responderId,omitempty"`
}

// ActionGroup is a set of receivers alerts are delivered to.
type ActionGroup struct {
	ID             string `json:"id,omitempty"`
	Name           string `json:"name"`
	GroupShortName string `json:"groupShortName,omitempty"`
	// Enabled defaults to true; a disabled group delivers nothing.
	Enabled            *bool               `json:"enabled,omitempty"`
	EmailReceivers     []EmailReceiver     `json:"emailReceivers,omitempty"`
	WebhookReceivers   []WebhookReceiver   `json:"webhookReceivers,omitempty"`
	ResponderReceivers []ResponderReceiver `json:"responderReceivers,omitempty"`
	// SigningSecret keys the HMAC signature of webhook deliveries. It is
	// generated at creation and shown to the caller then, so receivers can
	// verify; listings leave it out.
	SigningSecret string    `json:"signingSecret,omitempty"`
	CreatedAt     time.Time `json:"createdAt,omitzero"`
	UpdatedAt     time.Time `json:"updatedAt,omitzero"`
}

// checkReceivers checks receivers' names (each unique among them) and
// addresses. prefix goes before the field names, so a responder's own
// receivers are named as its fields are (notifyWebhookReceivers[0]).
func checkReceivers(prefix string, webhooks []WebhookReceiver, emails []EmailReceiver, responders []ResponderReceiver) error {
	field := func(kind string, i int) string {
		if prefix != "" {
			kind = prefix + strings.ToUpper(kind[:1]) + kind[1:]
		}
		return fmt.Sprintf("%s[%d]", kind, i)
	}
	names := map[string]bool{}
	checkName := func(field, name string) error {
		if strings.TrimSpace(name) == "" {
			return Errorf(EINVALID, "%s.name: required", field)
		}
		if names[name] {
			return Errorf(EINVALID, "%s.name: %q is used by another receiver", field, clip(name))
		}
		names[name] = true
		return nil
	}
	for i, w := range webhooks {
		field := field("webhookReceivers", i)
		if err := checkName(field, w.Name); err != nil {
			return err
		}
		u, err := url.Parse(w.ServiceURI)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Errorf(EINVALID, "%s.serviceUri: %q is not an http or https URL", field, clip(w.ServiceURI))
		}
	}
	for i, e := range emails {
		field := field("emailReceivers", i)
		if err := checkName(field, e.Name); err != nil {
			return err
		}
		a, err := mail.ParseAddress(e.EmailAddress)
		if err != nil || a.Name != "" || a.Address != e.EmailAddress {
			return Errorf(EINVALID, "%s.emailAddress: %q is not an email address", field, clip(e.EmailAddress))
		}
	}
	for i, r := range responders {
		if err := checkName(field("responderReceivers", i), r.Name); err != nil {
			return err
		}
	}
	return nil
}

// IsEnabled reports whether the group delivers (true when unset).
func (g *ActionGroup) IsEnabled() bool { return g.Enabled == nil || *g.Enabled }

// Validate checks the group; the error names the field and the reason.
func (g *ActionGroup) Validate() error {
	if strings.TrimSpace(g.Name) == "" || len(g.Name) > MaxAlertNameLength {
		return Errorf(EINVALID, "name: must be 1 to %d characters", MaxAlertNameLength)
	}
	if len(g.GroupShortName) > 12 {
		return Errorf(EINVALID, "groupShortName: %q is longer than 12 characters", clip(g.GroupShortName))
	}
	if err := checkReceivers("", g.WebhookReceivers, g.EmailReceivers, g.ResponderReceivers); err != nil {
		return err
	}
	if len(g.WebhookReceivers)+len(g.EmailReceivers)+len(g.ResponderReceivers) == 0 {
		return Errorf(EINVALID, "receivers: give at least one of webhookReceivers, emailReceivers, responderReceivers")
	}
	return nil
}

// Delivery is one attempt to deliver an alert transition to one receiver.
type Delivery struct {
	AlertID          string           `json:"alertId"`
	MonitorCondition MonitorCondition `json:"monitorCondition"`
	ActionGroupID    string           `json:"actionGroupId"`
	Receiver         string           `json:"receiver"`
	// ReceiverKind is webhook, email or responder.
	ReceiverKind string    `json:"receiverKind"`
	Attempt      int       `json:"attempt"`
	Time         time.Time `json:"time"`
	Duration     float64   `json:"durationSeconds"`
	// StatusCode is the webhook's HTTP status (0 when none came back).
	StatusCode int    `json:"statusCode,omitempty"`
	Success    bool   `json:"success"`
	Error      string `json:"error,omitempty"`
	// Final says no further attempt follows this one.
	Final bool `json:"final"`
}
