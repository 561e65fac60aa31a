package console

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// The alerts page: a timeline of alerts fired and resolved, with the value
// and window that fired each one; and each alert's incident: the metric,
// the alert, the capture it caused (with its pre-trigger part), the
// deliveries and the notification on one time axis.

func (c *Console) alertsPage() {
	if c.cfg.Monitor == nil {
		return
	}
	c.nav(navAlerts, "Alerts", "/alerts", tripcap.PermRead)
	c.get("/alerts", c.alertsList)
	c.get("/alerts/{alert}", c.alertIncident)
	c.get("/alerts/{alert}/series", c.alertSeries)
}

type alertsData struct {
	Alerts            []alertRow
	State, Rule, Host string
	Timeline          timeline
	Limit             int
}

type alertRow struct {
	*tripcap.Alert
	// Fired is the evaluation that fired the alert: its value and window.
	Fired tripcap.AlertEvaluation
	Value string
}

// alertValue is an evaluation's values against thresholds, one per criterion.
func alertValue(e tripcap.AlertEvaluation) string {
	var parts []string
	for _, r := range e.AllOf {
		parts = append(parts, fmt.Sprintf("%s %s %s %s", r.MetricName, formatNumber(r.MetricValue), operatorSign(r.Operator), formatNumber(r.Threshold)))
	}
	return strings.Join(parts, "; ")
}

const alertListLimit = 100

func (c *Console) alertsList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := alertsData{State: q.Get("state"), Rule: q.Get("rule"), Host: q.Get("host"), Limit: alertListLimit}
	as, err := c.cfg.Monitor.FindAlerts(r.Context(), controlplane.AlertQuery{Rule: d.Rule, Host: d.Host, State: d.State, Limit: alertListLimit})
	if err != nil {
		return err
	}
	now := c.cfg.Now()
	var spans []span
	for _, a := range as {
		row := alertRow{Alert: a, Fired: a.Condition}
		if len(a.History) > 0 {
			row.Fired = a.History[0]
		}
		row.Value = alertValue(row.Fired)
		d.Alerts = append(d.Alerts, row)
		end := now
		if a.ResolvedAt != nil {
			end = *a.ResolvedAt
		}
		spans = append(spans, span{Label: a.RuleName + " on " + a.HostName, From: a.FiredAt, To: end, Class: "span", Open: a.ResolvedAt == nil,
			Muted: a.Silenced, Link: "/alerts/" + a.ID})
	}
	d.Timeline = layoutTimeline(spans, nil, now)
	return c.render(w, r, "alerts", d)
}

// incident is what one alert set off, on one time axis.
type incident struct {
	Alert      *tripcap.Alert
	Deliveries []*tripcap.Delivery
	Captures   []*tripcap.PacketCapture
	Runs       []incidentRun
	Events     []incidentEvent
	Timeline   timeline
	// From and To bound the axis; Metric is the criterion's metric, drawn
	// from /alerts/{id}/series.
	From, To time.Time
	Metric   string
}

type incidentRun struct {
	Responder string
	Run       *tripcap.ResponderRun
}

// incidentEvent is one moment of the incident, in time order.
type incidentEvent struct {
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	Text string    `json:"text"`
	Link string    `json:"-"`
}

// maxIncidentCaptures bounds the captures of the alert's host looked at
// for the ones it caused.
const maxIncidentCaptures = 1000

// incidentOf gathers an alert's incident from the services, as the caller
// may see it.
func (c *Console) incidentOf(ctx context.Context, id string) (*incident, error) {
	det, err := c.cfg.Monitor.FindAlert(ctx, id)
	if err != nil {
		return nil, err
	}
	a := det.Alert
	in := &incident{Alert: a, Deliveries: det.Deliveries}
	// The captures the alert caused: a responder records the alert on them.
	// One replaced since (deleted) is still part of the incident.
	cursor := ""
	for n := 0; n < maxIncidentCaptures; {
		cs, next, err := c.cfg.Service.ListCaptures(ctx, controlplane.CaptureQuery{Host: a.HostID, IncludeDeleted: true, NewestFirst: true, Cursor: cursor, Limit: 200})
		if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
			break // the host is gone; so are its captures
		}
		if err != nil {
			return nil, err
		}
		for _, cp := range cs {
			if cp.AlertID == a.ID {
				in.Captures = append(in.Captures, cp)
			}
		}
		n += len(cs)
		if next == "" {
			break
		}
		cursor = next
	}
	if c.cfg.Responders != nil && tripcap.PrincipalFromContext(ctx).Can(tripcap.PermRead, nil) {
		if in.Runs, err = c.runsOf(ctx, in.Captures); err != nil {
			return nil, err
		}
	}
	if len(a.Condition.AllOf) > 0 {
		in.Metric = a.Condition.AllOf[0].MetricName
	}
	in.events()
	return in, nil
}

// runsOf finds the responder runs that started the captures.
func (c *Console) runsOf(ctx context.Context, caps []*tripcap.PacketCapture) ([]incidentRun, error) {
	if len(caps) == 0 {
		return nil, nil
	}
	ids := map[string]bool{}
	for _, cp := range caps {
		ids[cp.ID] = true
	}
	rs, err := c.cfg.Responders.FindResponders(ctx)
	if err != nil {
		return nil, err
	}
	var out []incidentRun
	for _, rsp := range rs {
		runs, err := c.cfg.Responders.FindRuns(ctx, rsp.ID, 100)
		if err != nil {
			return nil, err
		}
		for _, run := range runs {
			if slices.ContainsFunc(run.Hosts, func(h tripcap.ResponderRunHost) bool { return ids[h.CaptureID] }) {
				out = append(out, incidentRun{Responder: rsp.Name, Run: run})
			}
		}
	}
	return out, nil
}

// events puts every moment on the axis, and lays out the lanes.
func (in *incident) events() {
	a := in.Alert
	add := func(t time.Time, kind, text, link string) {
		if !t.IsZero() {
			in.Events = append(in.Events, incidentEvent{Time: t, Kind: kind, Text: text, Link: link})
		}
	}
	for i, h := range a.History {
		kind, what := "alert", "Fired"
		if h.MonitorCondition == tripcap.ConditionResolved {
			kind, what = "resolved", "Resolved"
		}
		if i == 0 && kind == "alert" {
			add(h.WindowStartTime, "window", "The window that fired began", "")
		}
		muted := ""
		if h.Silenced {
			muted = " (muted by a silence: delivered to no one)"
		}
		add(h.Time, kind, what+": "+alertValue(h)+muted, "")
	}
	var spans []span
	now := time.Now()
	end := now
	if a.ResolvedAt != nil {
		end = *a.ResolvedAt
	}
	spans = append(spans, span{Label: "alert", From: a.FiredAt, To: end, Class: "span", Open: a.ResolvedAt == nil, Muted: a.Silenced})
	var marks []mark
	for _, cp := range in.Captures {
		link := "/captures/" + cp.ID
		if cp.DeletedAt != nil {
			link = "" // replaced or deleted since: no page
		}
		start := cp.CreatedAt
		if cp.CaptureStartTime != nil {
			start = *cp.CaptureStartTime
		}
		add(cp.CreatedAt, "capture", "Capture "+cp.Name+" created", link)
		if pt := cp.Stats.PreTrigger; pt != nil && pt.Seconds > 0 {
			from := start.Add(-time.Duration(pt.Seconds * float64(time.Second)))
			add(from, "pretrigger", fmt.Sprintf("Capture %s's file begins (pre-trigger: %.1f s, %d packets)", cp.Name, pt.Seconds, pt.Packets), link)
			spans = append(spans, span{Label: "pre-trigger", From: from, To: start, Class: "pretrigger", Link: link})
		} else if p := cp.Parameters.PreTriggerSeconds; p > 0 {
			spans = append(spans, span{Label: "pre-trigger (asked)", From: start.Add(-time.Duration(p) * time.Second), To: start, Class: "pretrigger", Link: link})
		}
		if cp.CaptureStartTime != nil {
			add(start, "capture", "Capture "+cp.Name+" running", link)
		}
		stop := now
		if cp.CaptureStopTime != nil {
			stop = *cp.CaptureStopTime
			add(stop, "capture", fmt.Sprintf("Capture %s %s (%s): %d packets", cp.Name, cp.Status, cp.StopReason, cp.Stats.Packets), link)
		}
		spans = append(spans, span{Label: "capture " + cp.Name, From: start, To: stop, Class: "capture", Open: cp.CaptureStopTime == nil, Link: link})
	}
	for _, d := range in.Deliveries {
		res := "delivered"
		if !d.Success {
			res = "failed: " + cmp.Or(d.Error, fmt.Sprint(d.StatusCode))
		}
		add(d.Time, "delivery", fmt.Sprintf("%s to %s %s (attempt %d): %s", d.MonitorCondition, d.ReceiverKind, d.Receiver, d.Attempt, res), "")
		marks = append(marks, mark{At: d.Time, Class: "notify", Label: d.ReceiverKind + " " + d.Receiver})
	}
	for _, rr := range in.Runs {
		add(rr.Run.ReceivedAt, "responder", "Responder "+rr.Responder+" received the alert: "+rr.Run.Decision+" "+rr.Run.Reason, "/responders/"+rr.Responder)
		for _, h := range rr.Run.Hosts {
			if h.Notified != nil {
				add(*h.Notified, "notification", "Responder "+rr.Responder+" told of capture "+h.CaptureName+"'s completion", "/responders/"+rr.Responder)
				marks = append(marks, mark{At: *h.Notified, Class: "notify", Label: "notification"})
			}
		}
	}
	slices.SortStableFunc(in.Events, func(x, y incidentEvent) int { return x.Time.Compare(y.Time) })
	in.Timeline = layoutTimeline(spans, marks, now)
	in.From, in.To = in.Timeline.From, in.Timeline.To
}

func (c *Console) alertIncident(w http.ResponseWriter, r *http.Request) error {
	in, err := c.incidentOf(r.Context(), r.PathValue("alert"))
	if err != nil {
		return err
	}
	return c.render(w, r, "incident", in)
}

// alertSeries is the alert's metric on its host over the incident's axis,
// for the chart.
func (c *Console) alertSeries(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	in, err := c.incidentOf(ctx, r.PathValue("alert"))
	if err != nil {
		return err
	}
	type seriesAnswer struct {
		From   time.Time       `json:"from"`
		To     time.Time       `json:"to"`
		Series any             `json:"series"`
		Events []incidentEvent `json:"events"`
		// Threshold is the first criterion's (0 and absent when none).
		Threshold *float64 `json:"threshold,omitempty"`
	}
	ans := seriesAnswer{From: in.From, To: in.To, Events: in.Events}
	if a := in.Alert; len(a.Condition.AllOf) > 0 {
		cr := a.Condition.AllOf[0]
		// The store answers whole seconds up to now.
		end := in.To
		if now := c.cfg.Now(); end.After(now) {
			end = now
		}
		end = end.Truncate(time.Second)
		window := max(end.Sub(in.From.Truncate(time.Second)), time.Second)
		interval := min(max(time.Second, (window/600).Truncate(time.Second)), window)
		res, err := c.cfg.Monitor.QueryMetrics(ctx, controlplane.MetricsQuery{Host: a.HostID, Metric: string(cr.Metric), Window: window, Interval: interval, End: end})
		if err != nil && tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
			return err
		}
		ans.Series = res
		th := cr.Threshold
		ans.Threshold = &th
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}
