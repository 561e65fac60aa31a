package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tripcap/tripcap"
)

// The responders page: the seeds' alert-triggered capture "functions" as
// resources, their capture templates, and their runs (decision, hosts,
// timing, notification). Creating one needs what starting captures needs
// (tripcap.AuthorizeCaptureTrigger); the Responders service decides.

func (c *Console) respondersPage() {
	if c.cfg.Responders == nil {
		return
	}
	c.nav(navResponders, "Responders", "/responders", tripcap.PermRead)
	c.get("/responders", c.respondersList)
	c.post("/responders", c.responderCreate)
	c.get("/responders/{responder}", c.responderShow)
	c.post("/responders/{responder}/delete", c.responderDelete)
}

type respondersData struct {
	Responders []*tripcap.Responder
	Form       responderForm
	Error      *formError
	Groups     []*tripcap.ActionGroup
	Storage    []*tripcap.StorageAccount
	Notice     string
	// CanTrigger says the caller may make responders (they start captures
	// on their own: monitoring/write and captures/write at *).
	CanTrigger bool
}

// responderForm is the create form's fields, as typed.
type responderForm struct {
	Name, Description, Filters, FilterExpression string
	TimeLimit, PreTrigger, Cooldown              string
	StorageAccount, Notify                       string
	StopOnResolved                               bool
}

func (c *Console) respondersList(w http.ResponseWriter, r *http.Request) error {
	return c.renderResponders(w, r, http.StatusOK, responderForm{TimeLimit: strconv.Itoa(tripcap.DefaultResponderTimeLimit), PreTrigger: "10"}, nil)
}

func (c *Console) renderResponders(w http.ResponseWriter, r *http.Request, status int, f responderForm, ferr *formError) error {
	ctx := r.Context()
	rs, err := c.cfg.Responders.FindResponders(ctx)
	if err != nil {
		return err
	}
	d := respondersData{Responders: rs, Form: f, Error: ferr, Notice: notice(r), CanTrigger: canTrigger(r)}
	if c.cfg.Monitor != nil {
		if d.Groups, err = c.cfg.Monitor.FindActionGroups(ctx); err != nil {
			return err
		}
	}
	if d.Storage, err = c.cfg.Service.FindStorageAccounts(ctx); err != nil {
		return err
	}
	c.renderStatus(w, r, status, "responders", d)
	return nil
}

// responder turns the form into a responder; the error names the field.
func (f responderForm) responder() (*tripcap.Responder, error) {
	rs := &tripcap.Responder{Name: f.Name, Description: f.Description, StopOnResolved: f.StopOnResolved, NotifyActionGroup: f.Notify}
	rs.Capture.StorageAccount = f.StorageAccount
	rs.Capture.FilterExpression = strings.TrimSpace(f.FilterExpression)
	for i, line := range strings.Split(f.Filters, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		flt, err := tripcap.ParseFilterFlag(line)
		if err != nil {
			return nil, tripcap.Errorf(tripcap.EINVALID, "capture.filters[%d]: %s", i, tripcap.ErrorMessage(err))
		}
		rs.Capture.Filters = append(rs.Capture.Filters, flt)
	}
	for _, n := range []struct {
		field, v string
		dst      *int32
	}{{"capture.timeLimitInSeconds", f.TimeLimit, &rs.Capture.TimeLimitInSeconds}, {"capture.preTriggerSeconds", f.PreTrigger, &rs.Capture.PreTriggerSeconds}} {
		if strings.TrimSpace(n.v) == "" {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(n.v), 10, 32)
		if err != nil {
			return nil, tripcap.Errorf(tripcap.EINVALID, "%s: %q is not a whole number of seconds", n.field, n.v)
		}
		*n.dst = int32(v)
	}
	if s := strings.TrimSpace(f.Cooldown); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			return nil, tripcap.Errorf(tripcap.EINVALID, "cooldownMinutes: %q is not a whole number of minutes", s)
		}
		rs.CooldownMinutes = v
	}
	return rs, nil
}

func (c *Console) responderCreate(w http.ResponseWriter, r *http.Request) error {
	v := postForm(r)
	f := responderForm{Name: strings.TrimSpace(v.Get("name")), Description: v.Get("description"), Filters: v.Get("filters"),
		FilterExpression: v.Get("filterExpression"), TimeLimit: v.Get("timeLimitInSeconds"), PreTrigger: v.Get("preTriggerSeconds"),
		Cooldown: v.Get("cooldownMinutes"), StorageAccount: v.Get("storageAccount"), Notify: v.Get("notifyActionGroup"),
		StopOnResolved: v.Get("stopOnResolved") != ""}
	rs, err := f.responder()
	if err == nil {
		rs, err = c.cfg.Responders.CreateResponder(r.Context(), rs)
	}
	if code := tripcap.ErrorCode(err); code == tripcap.EINVALID || code == tripcap.ECONFLICT {
		return c.renderResponders(w, r, http.StatusBadRequest, f, newFormError(err))
	}
	if err != nil {
		return err
	}
	done(w, r, "/responders/"+url.PathEscape(rs.Name), "responder-created")
	return nil
}

type responderData struct {
	Responder  *tripcap.Responder
	Runs       []*tripcap.ResponderRun
	Notice     string
	CanTrigger bool
}

// canTrigger reports whether the caller may change what starts captures
// by itself (tripcap.AuthorizeCaptureTrigger decides; this hides controls).
func canTrigger(r *http.Request) bool {
	return tripcap.AuthorizeCaptureTrigger(r.Context()) == nil
}

// responderRuns is how many of a responder's runs its page shows.
const responderRuns = 100

func (c *Console) responderShow(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	rs, err := c.cfg.Responders.FindResponder(ctx, r.PathValue("responder"))
	if err != nil {
		return err
	}
	runs, err := c.cfg.Responders.FindRuns(ctx, rs.ID, responderRuns)
	if err != nil {
		return err
	}
	return c.render(w, r, "responder", responderData{Responder: rs, Runs: runs, Notice: notice(r), CanTrigger: canTrigger(r)})
}

func (c *Console) responderDelete(w http.ResponseWriter, r *http.Request) error {
	if err := c.cfg.Responders.DeleteResponder(r.Context(), r.PathValue("responder")); err != nil {
		return err
	}
	done(w, r, "/responders", "responder-deleted")
	return nil
}
