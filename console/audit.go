package console

import (
	"context"
	"net/http"
	"time"

	"github.com/tripcap/tripcap"
)

// The audit log page: who did what to which resource, from where, with
// what result; newest first, filtered and paged on the server. It needs
// audit/read (the recorder decides).

// AuditLog is the audit log the page reads: an *audit.Recorder, which
// authorizes (audit/read) and flushes what it holds before answering.
type AuditLog interface {
	List(ctx context.Context, f tripcap.AuditFilter) ([]*tripcap.AuditEvent, string, error)
}

func (c *Console) auditPage() {
	if c.cfg.Audit == nil {
		return
	}
	c.nav(navAudit, "Audit log", "/audit", tripcap.PermAuditRead)
	c.get("/audit", c.auditList)
}

// auditPageSize is one page of the audit log.
const auditPageSize = 100

type auditData struct {
	Events                              []*tripcap.AuditEvent
	Principal, Action, Resource, Result string
	Since                               string
	Next, First                         string
	Error                               *formError
}

func (c *Console) auditList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := auditData{Principal: q.Get("principal"), Action: q.Get("action"), Resource: q.Get("resource"), Result: q.Get("result"), Since: q.Get("since")}
	f := tripcap.AuditFilter{Cursor: q.Get("cursor"), Limit: auditPageSize}
	for _, p := range []struct {
		v   string
		dst **string
	}{{d.Principal, &f.Principal}, {d.Action, &f.Action}, {d.Resource, &f.ResourcePrefix}} {
		if p.v != "" {
			v := p.v
			*p.dst = &v
		}
	}
	var ferr error
	if d.Result != "" {
		res := tripcap.AuditResult(d.Result)
		if ferr = tripcap.ValidateAuditResult("result", res); ferr == nil {
			f.Result = &res
		}
	}
	if d.Since != "" && ferr == nil {
		// The form's datetime-local is the browser's local time without a
		// zone; RFC 3339 is taken as well.
		t, err := time.Parse(time.RFC3339, d.Since)
		if err != nil {
			t, err = time.Parse("2006-01-02T15:04", d.Since)
		}
		if err != nil {
			ferr = tripcap.Errorf(tripcap.EINVALID, "since: %q is not a time (2006-01-02T15:04 or RFC 3339)", d.Since)
		} else {
			f.Since = &t
		}
	}
	if ferr != nil {
		d.Error = newFormError(ferr)
		c.renderStatus(w, r, http.StatusBadRequest, "audit", d)
		return nil
	}
	events, next, err := c.cfg.Audit.List(r.Context(), f)
	if err != nil {
		return err
	}
	d.Events = events
	if next != "" {
		q.Set("cursor", next)
		d.Next = "/audit?" + q.Encode()
	}
	if f.Cursor != "" {
		q.Del("cursor")
		d.First = "/audit?" + q.Encode()
	}
	return c.render(w, r, "audit", d)
}
