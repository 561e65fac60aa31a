package http

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tripcap/tripcap"
)

// auditRoutes are the audit log's API; NewServer adds them when WithAudit is given.
func (s *Server) auditRoutes() []route {
	return []route{
		{Method: "GET", Path: "/api/v1/audit", ID: "listAuditEvents", Summary: "The audit log, newest first: who did what to which resource, from where, when, with what result (needs audit/read).", Perm: tripcap.PermAuditRead,
			Query: []param{
				{"principal", "string", "a principal's id or name"},
				{"action", "string", "an operation id, e.g. createCapture"},
				{"resource", "string", "resources starting with this, e.g. captures/"},
				{"result", "string", "success, denied or failed"},
				{"since", "string", "RFC 3339: events at or after"},
				{"until", "string", "RFC 3339: events before"},
				{"cursor", "string", "from a previous page's nextLink"},
				{"limit", "integer", "page size, 1..1000 (default 100)"},
			},
			Response: List[*tripcap.AuditEvent]{}, Handler: s.handleListAudit},
	}
}

// registerAuditMetrics exports the recorder's counts: a dropped event (one
// that could not be stored, logged at error level) is what to alert on.
func (s *Server) registerAuditMetrics() {
	a := s.audit
	s.registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tripcap_audit_events_total", Help: "Audit events stored."},
			func() float64 { return float64(a.Recorded()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tripcap_audit_events_dropped_total", Help: "Audit events that could not be stored (each is logged at error level)."},
			func() float64 { return float64(a.Dropped()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tripcap_audit_events_pruned_total", Help: "Audit events deleted past their retention."},
			func() float64 { return float64(a.Pruned()) }))
}

func (s *Server) handleListAudit(w http.ResponseWriter, r *http.Request) error {
	cursor, limit, err := pageParams(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := tripcap.AuditFilter{Cursor: cursor, Limit: limit}
	for name, dst := range map[string]**string{"principal": &f.Principal, "action": &f.Action, "resource": &f.ResourcePrefix} {
		if v := q.Get(name); v != "" {
			*dst = &v
		}
	}
	if v := q.Get("result"); v != "" {
		res := tripcap.AuditResult(v)
		if err := tripcap.ValidateAuditResult("result", res); err != nil {
			return err
		}
		f.Result = &res
	}
	if f.Since, err = timeParam(r, "since"); err != nil {
		return err
	}
	if f.Until, err = timeParam(r, "until"); err != nil {
		return err
	}
	events, next, err := s.audit.List(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, List[*tripcap.AuditEvent]{Value: nonNil(events), NextLink: nextLink(r, next)})
	return nil
}

// AuditQuery selects audit events; empty fields select all. Since and
// Until are RFC 3339 times.
type AuditQuery struct {
	Principal, Action, Resource, Result, Since, Until string
	// Limit is the most events returned, newest first, 1..1000 (0: every one).
	Limit int
}

// ListAuditEvents returns the audit events q selects, newest first.
func (c *Client) ListAuditEvents(ctx context.Context, aq AuditQuery) ([]*tripcap.AuditEvent, error) {
	q := url.Values{}
	for k, v := range map[string]string{"principal": aq.Principal, "action": aq.Action, "resource": aq.Resource, "result": aq.Result, "since": aq.Since, "until": aq.Until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if aq.Limit <= 0 {
		return listAll[*tripcap.AuditEvent](ctx, c, "/api/v1/audit", q)
	}
	// One page: the newest Limit events.
	q.Set("limit", strconv.Itoa(aq.Limit))
	var page List[*tripcap.AuditEvent]
	return page.Value, c.do(ctx, "GET", "/api/v1/audit", q, nil, &page)
}
