package console

import (
	"net/http"
	"slices"
	"strings"

	"github.com/tripcap/tripcap"
)

// The action groups page: who is told of an alert (webhooks, email) and
// which responders it starts. Groups are not tied to a host: reading needs
// read at "*", changing monitoring/write there (the Monitor decides).

func (c *Console) actionGroupsPage() {
	if c.cfg.Monitor == nil {
		return
	}
	c.nav(navActionGroups, "Action groups", "/action-groups", tripcap.PermRead)
	c.get("/action-groups", c.actionGroupsList)
	c.post("/action-groups", c.actionGroupCreate)
	c.post("/action-groups/{group}/delete", c.actionGroupDelete)
}

type actionGroupsData struct {
	Groups     []*tripcap.ActionGroup
	Responders []*tripcap.Responder
	Form       actionGroupForm
	Error      *formError
	Notice     string
	// Secret is a new group's signing secret, shown once.
	Secret string
}

type actionGroupForm struct {
	Name, ShortName, Webhooks, Originals, Emails string
	Responders                                   []string
}

// Has reports whether the form chose the responder.
func (f actionGroupForm) Has(name string) bool { return slices.Contains(f.Responders, name) }

func (c *Console) actionGroupsList(w http.ResponseWriter, r *http.Request) error {
	return c.renderActionGroups(w, r, http.StatusOK, actionGroupsData{Notice: notice(r)})
}

func (c *Console) renderActionGroups(w http.ResponseWriter, r *http.Request, status int, d actionGroupsData) error {
	ctx := r.Context()
	var err error
	if d.Groups, err = c.cfg.Monitor.FindActionGroups(ctx); err != nil {
		return err
	}
	if c.cfg.Responders != nil {
		if d.Responders, err = c.cfg.Responders.FindResponders(ctx); err != nil {
			return err
		}
	}
	c.renderStatus(w, r, status, "actiongroups", d)
	return nil
}

// receiverLines reads "NAME=VALUE" lines; the error names the field and line.
func receiverLines(field, text string) ([][2]string, error) {
	var out [][2]string
	for i, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if name, value = strings.TrimSpace(name), strings.TrimSpace(value); !ok || name == "" || value == "" {
			return nil, tripcap.Errorf(tripcap.EINVALID, "%s[%d]: %q is not NAME=VALUE", field, i, clipLine(line))
		}
		out = append(out, [2]string{name, value})
	}
	return out, nil
}

func clipLine(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// group turns the form into an action group; the error names the field.
func (f actionGroupForm) group() (*tripcap.ActionGroup, error) {
	g := &tripcap.ActionGroup{Name: f.Name, GroupShortName: f.ShortName}
	for _, spec := range []struct {
		field, text string
		common      bool
	}{{"webhookReceivers", f.Webhooks, true}, {"webhookReceivers", f.Originals, false}} {
		lines, err := receiverLines(spec.field, spec.text)
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			g.WebhookReceivers = append(g.WebhookReceivers, tripcap.WebhookReceiver{Name: l[0], ServiceURI: l[1], UseCommonAlertSchema: spec.common})
		}
	}
	lines, err := receiverLines("emailReceivers", f.Emails)
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		g.EmailReceivers = append(g.EmailReceivers, tripcap.EmailReceiver{Name: l[0], EmailAddress: l[1], UseCommonAlertSchema: true})
	}
	for _, rsp := range f.Responders {
		if rsp != "" {
			g.ResponderReceivers = append(g.ResponderReceivers, tripcap.ResponderReceiver{Name: rsp, ResponderID: rsp})
		}
	}
	return g, nil
}

func (c *Console) actionGroupCreate(w http.ResponseWriter, r *http.Request) error {
	v := postForm(r)
	f := actionGroupForm{Name: strings.TrimSpace(v.Get("name")), ShortName: strings.TrimSpace(v.Get("groupShortName")),
		Webhooks: v.Get("webhooks"), Originals: v.Get("webhooksOriginal"), Emails: v.Get("emails"), Responders: v["responder"]}
	g, err := f.group()
	if err == nil {
		g, err = c.cfg.Monitor.CreateActionGroup(r.Context(), g)
	}
	if code := tripcap.ErrorCode(err); code == tripcap.EINVALID || code == tripcap.ECONFLICT {
		return c.renderActionGroups(w, r, http.StatusBadRequest, actionGroupsData{Form: f, Error: newFormError(err)})
	}
	if err != nil {
		return err
	}
	// The signing secret is shown this once, as the API answers it once.
	return c.renderActionGroups(w, r, http.StatusOK, actionGroupsData{Notice: "Action group " + g.Name + " created.", Secret: g.SigningSecret})
}

func (c *Console) actionGroupDelete(w http.ResponseWriter, r *http.Request) error {
	if err := c.cfg.Monitor.DeleteActionGroup(r.Context(), r.PathValue("group")); err != nil {
		return err
	}
	done(w, r, "/action-groups", "action-group-deleted")
	return nil
}
