package arm

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"strings"

	"github.com/tripcap/tripcap"
)

// Microsoft.Insights/actionGroups ⇄ tripcap's action groups: email and
// webhook receivers are tripcap's own; an azureFunction receiver whose
// httpTriggerUrl is this server's /api/functions/{responder} is a
// responder receiver (the responder gets the alert in process), and one
// elsewhere a webhook to the function's trigger, marked as a function.
// Every other receiver kind is refused by name.

// groupLocation is how Azure answers an action group's location.
const groupLocation = "Global"

// functionsPath is where this server's responders take alerts.
const functionsPath = "/api/functions/"

// actionGroupResource is Microsoft.Insights/actionGroups.
type actionGroupResource = resource[actionGroupProperties]

// actionGroupProperties has every receiver kind of the 2024-10-01-preview
// API; the kinds tripcap does not deliver to must be empty.
type actionGroupProperties struct {
	GroupShortName             string                 `json:"groupShortName"`
	Enabled                    *bool                  `json:"enabled"`
	EmailReceivers             []emailReceiverWire    `json:"emailReceivers"`
	WebhookReceivers           []webhookReceiverWire  `json:"webhookReceivers"`
	AzureFunctionReceivers     []functionReceiverWire `json:"azureFunctionReceivers"`
	SmsReceivers               []json.RawMessage      `json:"smsReceivers"`
	VoiceReceivers             []json.RawMessage      `json:"voiceReceivers"`
	AzureAppPushReceivers      []json.RawMessage      `json:"azureAppPushReceivers"`
	ItsmReceivers              []json.RawMessage      `json:"itsmReceivers"`
	AutomationRunbookReceivers []json.RawMessage      `json:"automationRunbookReceivers"`
	LogicAppReceivers          []json.RawMessage      `json:"logicAppReceivers"`
	ArmRoleReceivers           []json.RawMessage      `json:"armRoleReceivers"`
	EventHubReceivers          []json.RawMessage      `json:"eventHubReceivers"`
	IncidentReceivers          []json.RawMessage      `json:"incidentReceivers"`
}

// actionGroupPatchProperties are what a PATCH of a group may change.
type actionGroupPatchProperties struct {
	Enabled *bool `json:"enabled"`
}

type emailReceiverWire struct {
	tripcap.EmailReceiver
	// Status is read-only: "Enabled" in answers.
	Status string `json:"status,omitempty"`
}

type webhookReceiverWire struct {
	tripcap.WebhookReceiver
	UseAADAuth      *bool  `json:"useAadAuth,omitempty"`
	ObjectID        string `json:"objectId,omitempty"`
	IdentifierURI   string `json:"identifierUri,omitempty"`
	TenantID        string `json:"tenantId,omitempty"`
	ManagedIdentity string `json:"managedIdentity,omitempty"`
}

type functionReceiverWire struct {
	Name                  string `json:"name"`
	FunctionAppResourceID string `json:"functionAppResourceId"`
	FunctionName          string `json:"functionName"`
	HTTPTriggerURL        string `json:"httpTriggerUrl"`
	UseCommonAlertSchema  bool   `json:"useCommonAlertSchema"`
	ManagedIdentity       string `json:"managedIdentity,omitempty"`
}

// functionEnv tells the translation which trigger URLs are this server's
// and which responders exist.
type functionEnv struct {
	// local reports whether u addresses this server.
	local func(u *url.URL) bool
	// responder finds a responder by name, ENOTFOUND when none.
	responder func(name string) (*tripcap.Responder, error)
}

// otherReceivers names the receiver kinds tripcap does not deliver to,
// each with what it would take.
func (p *actionGroupProperties) otherReceivers() error {
	for _, k := range []struct {
		field string
		n     int
		what  string
	}{
		{"smsReceivers", len(p.SmsReceivers), "tripcap sends no SMS"},
		{"voiceReceivers", len(p.VoiceReceivers), "tripcap places no voice calls"},
		{"azureAppPushReceivers", len(p.AzureAppPushReceivers), "tripcap sends no Azure app push notifications"},
		{"itsmReceivers", len(p.ItsmReceivers), "tripcap has no ITSM connector"},
		{"automationRunbookReceivers", len(p.AutomationRunbookReceivers), "tripcap runs no Automation runbooks"},
		{"logicAppReceivers", len(p.LogicAppReceivers), "tripcap runs no Logic Apps (a webhookReceiver to the app's trigger URL does the same)"},
		{"armRoleReceivers", len(p.ArmRoleReceivers), "tripcap does not mail role members"},
		{"eventHubReceivers", len(p.EventHubReceivers), "tripcap sends to no Event Hub"},
		{"incidentReceivers", len(p.IncidentReceivers), "tripcap opens no incidents"},
	} {
		if k.n > 0 {
			return invalid("properties."+k.field, "%s; use emailReceivers, webhookReceivers or azureFunctionReceivers (a tripcap responder)", k.what)
		}
	}
	return nil
}

// actionGroup translates an action group resource PUT at sub/rg/name.
func actionGroup(in *actionGroupResource, sub, rg, name string, env functionEnv) (*tripcap.ActionGroup, error) {
	if err := checkGlobal("location", in.Location, "action groups"); err != nil {
		return nil, err
	}
	if err := checkNoIdentity("identity", in.Identity); err != nil {
		return nil, err
	}
	p := in.Properties
	if p == nil {
		return nil, invalid("properties", "required")
	}
	if p.GroupShortName == "" {
		return nil, invalid("properties.groupShortName", "required (1 to 12 characters)")
	}
	if p.Enabled == nil {
		return nil, invalid("properties.enabled", "required")
	}
	if err := p.otherReceivers(); err != nil {
		return nil, err
	}
	g := &tripcap.ActionGroup{Name: name, GroupShortName: p.GroupShortName, Enabled: new(*p.Enabled),
		AzurePlacement: tripcap.AzurePlacement{SubscriptionID: sub, ResourceGroup: rg, Tags: maps.Clone(in.Tags)}}
	if g.Tags == nil {
		g.Tags = map[string]string{}
	}
	for _, e := range p.EmailReceivers {
		g.EmailReceivers = append(g.EmailReceivers, e.EmailReceiver)
	}
	for i, w := range p.WebhookReceivers {
		f := fmt.Sprintf("properties.webhookReceivers[%d]", i)
		switch {
		case w.UseAADAuth != nil && *w.UseAADAuth:
			return nil, invalid(f+".useAadAuth", "tripcap signs webhook deliveries with the group's HMAC secret (X-Tripcap-Signature), not with an Entra ID token; leave it false")
		case w.ObjectID != "":
			return nil, invalid(f+".objectId", "applies to useAadAuth, which tripcap does not do; leave it out")
		case w.IdentifierURI != "":
			return nil, invalid(f+".identifierUri", "applies to useAadAuth, which tripcap does not do; leave it out")
		case w.TenantID != "":
			return nil, invalid(f+".tenantId", "applies to useAadAuth, which tripcap does not do; leave it out")
		case w.ManagedIdentity != "" && !strings.EqualFold(w.ManagedIdentity, "None"):
			return nil, invalid(f+".managedIdentity", "tripcap delivers as the server, with no managed identity; leave it out")
		case w.FunctionName != "":
			return nil, invalid(f+".functionName", "not a property of a webhook receiver; a function is an azureFunctionReceivers entry")
		case w.FunctionAppResourceID != "":
			return nil, invalid(f+".functionAppResourceId", "not a property of a webhook receiver; a function is an azureFunctionReceivers entry")
		}
		g.WebhookReceivers = append(g.WebhookReceivers, w.WebhookReceiver)
	}
	for i, fr := range p.AzureFunctionReceivers {
		f := fmt.Sprintf("properties.azureFunctionReceivers[%d]", i)
		r, w, err := fr.receiver(f, env)
		switch {
		case err != nil:
			return nil, err
		case r != nil:
			g.ResponderReceivers = append(g.ResponderReceivers, *r)
		default:
			g.WebhookReceivers = append(g.WebhookReceivers, *w)
		}
	}
	return g, nil
}

// receiver is what an azureFunction receiver stands for: the responder
// its httpTriggerUrl names when that is this server's
// /api/functions/{responder}, else a webhook to the function's trigger
// (as Azure Monitor calls a function: the alert posted to its URL, the
// key in the URL).
func (fr *functionReceiverWire) receiver(f string, env functionEnv) (*tripcap.ResponderReceiver, *tripcap.WebhookReceiver, error) {
	if fr.ManagedIdentity != "" && !strings.EqualFold(fr.ManagedIdentity, "None") {
		return nil, nil, invalid(f+".managedIdentity", "tripcap delivers as the server, with no managed identity; leave it out")
	}
	if fr.HTTPTriggerURL == "" {
		return nil, nil, invalid(f+".httpTriggerUrl", "required: the function's trigger URL, or this server's %s{responder}", functionsPath)
	}
	u, err := url.Parse(fr.HTTPTriggerURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, nil, invalid(f+".httpTriggerUrl", "%q is not an http or https URL", clip(tripcap.RedactWebhookURL(fr.HTTPTriggerURL)))
	}
	if id, err := ParseResourceID(f+".functionAppResourceId", fr.FunctionAppResourceID); fr.FunctionAppResourceID != "" && (err != nil || !id.Is("Microsoft.Web", "sites") || id.ResourceGroup == "") {
		return nil, nil, invalid(f+".functionAppResourceId", "%q is not a function app resource id (/subscriptions/…/providers/Microsoft.Web/sites/NAME)", clip(fr.FunctionAppResourceID))
	}
	name, ok := strings.CutPrefix(u.EscapedPath(), functionsPath)
	if !env.local(u) || !ok {
		if fr.FunctionName == "" {
			return nil, nil, invalid(f+".functionName", "required")
		}
		if fr.FunctionAppResourceID == "" {
			return nil, nil, invalid(f+".functionAppResourceId", "required")
		}
		return nil, &tripcap.WebhookReceiver{Name: fr.Name, ServiceURI: fr.HTTPTriggerURL, UseCommonAlertSchema: fr.UseCommonAlertSchema,
			FunctionName: fr.FunctionName, FunctionAppResourceID: fr.FunctionAppResourceID}, nil
	}
	r, err := fr.responder(f, name, env)
	return r, nil, err
}

// responder is the responder receiver for this server's
// /api/functions/{name}.
func (fr *functionReceiverWire) responder(f, name string, env functionEnv) (*tripcap.ResponderReceiver, error) {
	if name == "" || strings.Contains(name, "/") {
		return nil, invalid(f+".httpTriggerUrl", "%q is not this server's %s{responder}", clip(tripcap.RedactWebhookURL(fr.HTTPTriggerURL)), functionsPath)
	}
	name, err := url.PathUnescape(name)
	if err != nil {
		return nil, invalid(f+".httpTriggerUrl", "the responder's name is not a valid path segment")
	}
	rs, err := env.responder(name)
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND || tripcap.ErrorCode(err) == tripcap.EINVALID {
		return nil, invalid(f+".httpTriggerUrl", "no responder %q on this server (tripcap responder create)", clip(name))
	} else if err != nil {
		return nil, err
	}
	if fr.FunctionName != "" && !strings.EqualFold(fr.FunctionName, rs.Name) {
		return nil, invalid(f+".functionName", "%q is not the responder its httpTriggerUrl names (%s)", clip(fr.FunctionName), rs.Name)
	}
	// The trigger URL's key (code=…) is not kept: the responder is called
	// in process, and whoever writes the group needs the right to trigger
	// captures anyway (AlertAdmin checks it).
	return &tripcap.ResponderReceiver{Name: fr.Name, ResponderID: rs.ID,
		FunctionAppResourceID: fr.FunctionAppResourceID, UseCommonAlertSchema: fr.UseCommonAlertSchema}, nil
}

// responderName gives a responder's name by id (its id when it is gone).
type responderName func(id string) string

// actionGroupOf is the resource of group g (redacted), filed at sub/rg;
// trigger URLs are made on base (this server's URL as the caller sees it).
func actionGroupOf(g *tripcap.ActionGroup, sub, rg, base string, nameOf responderName) *actionGroupResource {
	p := &actionGroupProperties{GroupShortName: g.GroupShortName, Enabled: new(g.IsEnabled()),
		EmailReceivers: []emailReceiverWire{}, WebhookReceivers: []webhookReceiverWire{}, AzureFunctionReceivers: []functionReceiverWire{},
		SmsReceivers: []json.RawMessage{}, VoiceReceivers: []json.RawMessage{}, AzureAppPushReceivers: []json.RawMessage{},
		ItsmReceivers: []json.RawMessage{}, AutomationRunbookReceivers: []json.RawMessage{}, LogicAppReceivers: []json.RawMessage{},
		ArmRoleReceivers: []json.RawMessage{}, EventHubReceivers: []json.RawMessage{}, IncidentReceivers: []json.RawMessage{}}
	if p.GroupShortName == "" {
		// Azure requires one; a group made through the native API may have none.
		p.GroupShortName = g.Name[:min(len(g.Name), 12)]
	}
	for _, e := range g.EmailReceivers {
		p.EmailReceivers = append(p.EmailReceivers, emailReceiverWire{EmailReceiver: e, Status: "Enabled"})
	}
	for _, w := range g.WebhookReceivers {
		if w.FunctionName != "" {
			p.AzureFunctionReceivers = append(p.AzureFunctionReceivers, functionReceiverWire{Name: w.Name, FunctionAppResourceID: w.FunctionAppResourceID,
				FunctionName: w.FunctionName, HTTPTriggerURL: w.ServiceURI, UseCommonAlertSchema: w.UseCommonAlertSchema})
			continue
		}
		p.WebhookReceivers = append(p.WebhookReceivers, webhookReceiverWire{WebhookReceiver: w, UseAADAuth: new(false)})
	}
	for _, r := range g.ResponderReceivers {
		name := nameOf(r.ResponderID)
		p.AzureFunctionReceivers = append(p.AzureFunctionReceivers, functionReceiverWire{
			Name: r.Name, FunctionAppResourceID: r.FunctionAppResourceID, FunctionName: name,
			HTTPTriggerURL: strings.TrimSuffix(base, "/") + functionsPath + url.PathEscape(name), UseCommonAlertSchema: r.UseCommonAlertSchema,
		})
	}
	return envelope(sub, rg, typeActionGroups, g.Name, groupLocation, g.Tags, p)
}
