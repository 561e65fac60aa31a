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
	// FunctionName and FunctionAppResourceID, when set, say the receiver
	// is an Azure Function's HTTP trigger (Azure's azureFunctionReceivers,
	// ServiceURI its httpTriggerUrl): Azure Monitor posts the alert to a
	// function as to a webhook, so it is delivered as one, and the
	// Azure-compatible API shows it as the function receiver it was
	// written as.
	FunctionName          string `json:"functionName,omitempty"`
	FunctionAppResourceID string `json:"functionAppResourceId,omitempty"`
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
	// FunctionAppResourceID and UseCommonAlertSchema are what an Azure
	// action group's azureFunctionReceivers entry said when it named the
	// responder (arm/): kept so the group reads back as it was written.
	// The responder gets the alert itself, in either case, not a payload.
	FunctionAppResourceID string `json:"functionAppResourceId,omitempty"`
	UseCommonAlertSchema  bool   `json:"useCommonAlertSchema,omitempty"`
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
	SigningSecret string `json:"signingSecret,omitempty"`
	// SigningSecretSet says, in answers that leave the secret out, that
	// the group has one.
	SigningSecretSet bool `json:"signingSecretSet,omitempty"`
	AzurePlacement
	CreatedAt time.Time `json:"createdAt,omitzero"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
	// Version counts the group's writes (see AlertRule.Version).
	Version int64 `json:"version,omitempty"`
}

// ETag is the group's entity tag, from its version.
func (g *ActionGroup) ETag() string { return versionETag(g.Version) }

// Receiver kinds, as deliveries name them (Delivery.ReceiverKind).
const (
	ReceiverWebhook   = "webhook"
	ReceiverEmail     = "email"
	ReceiverResponder = "responder"
)

// ReceiverConfig is one configured receiver of an action group, of any
// kind: what the kinds share, so that checking and delivering loop over
// one list (actiongroup builds its deliverers from it).
type ReceiverConfig interface {
	// ReceiverKind is the kind (ReceiverWebhook, …); the group's JSON array
	// of the kind is named kind+"Receivers".
	ReceiverKind() string
	ReceiverName() string
	// Validate checks the kind's own fields; field names the receiver
	// (webhookReceivers[0]).
	Validate(field string) error
}

// ReceiverKind is ReceiverWebhook.
func (WebhookReceiver) ReceiverKind() string { return ReceiverWebhook }

// ReceiverName is the receiver's name.
func (w WebhookReceiver) ReceiverName() string { return w.Name }

// Validate checks the service URI.
func (w WebhookReceiver) Validate(field string) error {
	u, err := url.Parse(w.ServiceURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Errorf(EINVALID, "%s.serviceUri: %q is not an http or https URL", field, clip(RedactWebhookURL(w.ServiceURI)))
	}
	return nil
}

// ReceiverKind is ReceiverEmail.
func (EmailReceiver) ReceiverKind() string { return ReceiverEmail }

// ReceiverName is the receiver's name.
func (e EmailReceiver) ReceiverName() string { return e.Name }

// Validate checks the address: a bare address, no display name.
func (e EmailReceiver) Validate(field string) error {
	a, err := mail.ParseAddress(e.EmailAddress)
	if err != nil || a.Name != "" || a.Address != e.EmailAddress {
		return Errorf(EINVALID, "%s.emailAddress: %q is not an email address", field, clip(e.EmailAddress))
	}
	return nil
}

// ReceiverKind is ReceiverResponder.
func (ResponderReceiver) ReceiverKind() string { return ReceiverResponder }

// ReceiverName is the receiver's name.
func (r ResponderReceiver) ReceiverName() string { return r.Name }

// Validate has nothing of its own to check: whether the responder exists
// is the server's to say.
func (ResponderReceiver) Validate(string) error { return nil }

// Receivers lists the group's receivers of every kind, kind by kind in the
// order of the kinds above. It is the one place that knows the group's
// per-kind arrays (kept as they are: they are the API's and the stored form).
func (g *ActionGroup) Receivers() []ReceiverConfig {
	out := make([]ReceiverConfig, 0, len(g.WebhookReceivers)+len(g.EmailReceivers)+len(g.ResponderReceivers))
	for _, w := range g.WebhookReceivers {
		out = append(out, w)
	}
	for _, e := range g.EmailReceivers {
		out = append(out, e)
	}
	for _, r := range g.ResponderReceivers {
		out = append(out, r)
	}
	return out
}

// ReceiverFields names each of rs as the API does (webhookReceivers[0]),
// after prefix when one is given (notifyWebhookReceivers[0]).
func ReceiverFields(prefix string, rs []ReceiverConfig) []string {
	out := make([]string, len(rs))
	index := map[string]int{}
	for i, r := range rs {
		kind := r.ReceiverKind() + "Receivers"
		if prefix != "" {
			kind = prefix + strings.ToUpper(kind[:1]) + kind[1:]
		}
		out[i] = fmt.Sprintf("%s[%d]", kind, index[kind])
		index[kind]++
	}
	return out
}

// checkReceivers checks receivers' names (each unique among them) and
// their kinds' fields, named after prefix (see ReceiverFields).
func checkReceivers(prefix string, rs []ReceiverConfig) error {
	names := map[string]bool{}
	for i, field := range ReceiverFields(prefix, rs) {
		name := rs[i].ReceiverName()
		if strings.TrimSpace(name) == "" {
			return Errorf(EINVALID, "%s.name: required", field)
		}
		if names[name] {
			return Errorf(EINVALID, "%s.name: %q is used by another receiver", field, clip(name))
		}
		names[name] = true
		if err := rs[i].Validate(field); err != nil {
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
	if strings.Trim(g.Name, ".") == "" {
		return Errorf(EINVALID, "name: %q is not a name", g.Name)
	}
	if len(g.GroupShortName) > 12 {
		return Errorf(EINVALID, "groupShortName: %q is longer than 12 characters", clip(g.GroupShortName))
	}
	if err := g.ValidatePlacement(); err != nil {
		return err
	}
	rs := g.Receivers()
	if err := checkReceivers("", rs); err != nil {
		return err
	}
	if len(rs) == 0 {
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
