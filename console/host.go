package console

import (
	"context"
	"math"
	"net/http"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// A host's page: live 1-second charts of its metrics with the thresholds
// of the rules on it, its interfaces, captures, alerts and pre-trigger buffer.

func (c *Console) hostPage() {
	c.get("/hosts/{host}", c.hostShow)
	if c.cfg.Monitor != nil {
		c.live("/hosts/{host}/live", time.Second, c.hostLive)
	}
}

// hostChart is one chart of the host page: its series (tripcap metric ids)
// and their labels.
type hostChart struct {
	ID, Title string
	Unit      string
	Metrics   []tripcap.MetricID
	Labels    []string
}

// hostCharts are the host page's charts.
var hostCharts = []hostChart{
	{"net", "Network In / Out", "bytes/s", []tripcap.MetricID{tripcap.MetricNetworkInBytes, tripcap.MetricNetworkOutBytes}, []string{"in", "out"}},
	{"packets", "Packets", "packets/s", []tripcap.MetricID{tripcap.MetricNetworkInPackets, tripcap.MetricNetworkOutPackets}, []string{"received", "sent"}},
	{"flows", "Flows", "flows", []tripcap.MetricID{tripcap.MetricInboundFlows, tripcap.MetricOutboundFlows}, []string{"inbound", "outbound"}},
	{"retrans", "TCP retransmissions", "segments/s", []tripcap.MetricID{tripcap.MetricTCPRetransmittedSegment}, []string{"retransmitted"}},
}

// liveWindow is how much of each series the charts show.
const liveWindow = 2 * time.Minute

type hostData struct {
	Host     *tripcap.Host
	Charts   []hostChart
	Rules    []ruleLine
	Captures []hostCaptureRow
	Alerts   []hostAlertRow
	Monitor  bool
}

// ruleLine is a rule's threshold drawn on a chart: per second, as the
// charts' points are (a Total over the window is divided by its seconds).
type ruleLine struct {
	Rule      string              `json:"rule"`
	Metric    tripcap.MetricID    `json:"metric"`
	Chart     string              `json:"chart"`
	Operator  tripcap.Operator    `json:"operator"`
	Threshold float64             `json:"threshold"`
	PerSecond float64             `json:"perSecond"`
	Agg       tripcap.Aggregation `json:"aggregation"`
	Window    string              `json:"window"`
	Enabled   bool                `json:"enabled"`
	Dynamic   bool                `json:"dynamic"`
}

func (c *Console) hostShow(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	h, err := c.cfg.Service.FindHost(ctx, r.PathValue("host"))
	if err != nil {
		return err
	}
	d := &hostData{Host: h, Charts: hostCharts, Monitor: c.cfg.Monitor != nil}
	if d.Captures, d.Alerts, err = c.hostLists(ctx, h); err != nil {
		return err
	}
	if c.cfg.Monitor != nil {
		if d.Rules, err = c.rulesOn(ctx, h); err != nil {
			return err
		}
	}
	return c.render(w, r, "host", d)
}

// hostRows is how many captures and alerts the host page lists.
const hostRows = 20

// hostLists are the host's newest captures and alerts.
func (c *Console) hostLists(ctx context.Context, h *tripcap.Host) ([]hostCaptureRow, []hostAlertRow, error) {
	caps, _, err := c.cfg.Service.ListCaptures(ctx, controlplane.CaptureQuery{Host: h.ID, NewestFirst: true, Limit: hostRows})
	if err != nil {
		return nil, nil, err
	}
	var alerts []*tripcap.Alert
	if c.cfg.Monitor != nil {
		if alerts, err = c.cfg.Monitor.FindAlerts(ctx, controlplane.AlertQuery{Host: h.ID, Limit: hostRows}); err != nil {
			return nil, nil, err
		}
	}
	return captureRowsOf(ctx, h, caps), alertRowsOf(alerts), nil
}

// rulesOn lists the thresholds of the rules whose scope covers h, on the
// metrics the charts show. A caller who may not read rules sees none.
func (c *Console) rulesOn(ctx context.Context, h *tripcap.Host) ([]ruleLine, error) {
	rules, err := c.cfg.Monitor.FindRules(ctx)
	if tripcap.ErrorCode(err) == tripcap.EFORBIDDEN {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	chartOf := map[tripcap.MetricID]string{}
	for _, ch := range hostCharts {
		for _, m := range ch.Metrics {
			chartOf[m] = ch.ID
		}
	}
	var out []ruleLine
	for _, rule := range rules {
		if !coversHost(rule, h) {
			continue
		}
		window, _ := tripcap.ParseISODuration("windowSize", rule.WindowSize)
		for _, cr := range rule.Criteria.AllOf {
			base := cr.Base()
			m, err := tripcap.ParseMetric("metricName", base.MetricName)
			if err != nil || chartOf[m] == "" {
				continue
			}
			l := ruleLine{Rule: rule.Name, Metric: m, Chart: chartOf[m], Agg: base.TimeAggregation, Window: rule.WindowSize,
				Enabled: rule.Enabled == nil || *rule.Enabled, Dynamic: cr.Dynamic != nil}
			if cr.Static != nil {
				l.Operator, l.Threshold = cr.Static.Operator, cr.Static.Threshold
				l.PerSecond = l.Threshold
				if base.TimeAggregation == tripcap.AggregationTotal && window >= time.Second {
					l.PerSecond = l.Threshold / window.Seconds()
				}
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// coversHost reports whether one of the rule's scopes covers h.
func coversHost(rule *tripcap.AlertRule, h *tripcap.Host) bool {
	for _, s := range rule.Scopes {
		if s == tripcap.ScopeAll || s.Matches(h) {
			return true
		}
	}
	return false
}

// hostLiveData is a host page's live event: each chart's columns (uPlot's
// data: times, then one column per series), the host's state, and its
// newest captures and alerts, so that they appear and change in place.
type hostLiveData struct {
	State    tripcap.HostState       `json:"state"`
	LastSeen string                  `json:"lastSeen"`
	Charts   map[string][][]*float64 `json:"charts"`
	Captures []hostCaptureRow        `json:"captures"`
	Alerts   []hostAlertRow          `json:"alerts"`
}

// hostCaptureRow is a row of the host page's captures.
type hostCaptureRow struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Packets uint64 `json:"packets"`
	Bytes   string `json:"bytes"`
	Created string `json:"created"`
	// Stop offers the stop button: the session may still run and the
	// caller may stop it (the service decides when it is pressed).
	Stop bool `json:"stop"`
}

// hostAlertRow is a row of the host page's alerts.
type hostAlertRow struct {
	Rule      string `json:"rule"`
	Condition string `json:"condition"`
	Muted     bool   `json:"muted"`
	Severity  string `json:"severity"`
	Fired     string `json:"fired"`
	Resolved  string `json:"resolved"`
}

func captureRowsOf(ctx context.Context, h *tripcap.Host, caps []*tripcap.PacketCapture) []hostCaptureRow {
	p := tripcap.PrincipalFromContext(ctx)
	out := make([]hostCaptureRow, 0, len(caps))
	for _, pc := range caps {
		out = append(out, hostCaptureRow{ID: pc.ID, Name: pc.Name, Status: string(pc.Status), Packets: pc.Stats.Packets,
			Bytes: tripcap.HumanBytes(pc.Stats.Bytes), Created: ago(pc.CreatedAt), Stop: pc.Active() && p.Can(tripcap.PermCaptureWrite, h)})
	}
	return out
}

func alertRowsOf(as []*tripcap.Alert) []hostAlertRow {
	out := make([]hostAlertRow, 0, len(as))
	for _, a := range as {
		r := hostAlertRow{Rule: a.RuleName, Condition: string(a.MonitorCondition), Muted: a.Silenced, Severity: tripcap.SeverityName(a.Severity), Fired: utc(a.FiredAt)}
		if a.ResolvedAt != nil {
			r.Resolved = utc(*a.ResolvedAt)
		}
		out = append(out, r)
	}
	return out
}

func (c *Console) hostLive(ctx context.Context, r *http.Request) (any, error) {
	h, err := c.cfg.Service.FindHost(ctx, r.PathValue("host"))
	if err != nil {
		return nil, err
	}
	out := hostLiveData{State: h.State, LastSeen: ago(h.LastSeen), Charts: map[string][][]*float64{}}
	if out.Captures, out.Alerts, err = c.hostLists(ctx, h); err != nil {
		return nil, err
	}
	end := c.cfg.Now().Truncate(time.Second)
	for _, ch := range hostCharts {
		var cols [][]*float64
		for i, m := range ch.Metrics {
			res, err := c.cfg.Monitor.QueryMetrics(ctx, controlplane.MetricsQuery{Host: h.ID, Metric: string(m), Window: liveWindow, Interval: time.Second, End: end})
			if err != nil {
				return nil, err
			}
			if i == 0 {
				times := make([]*float64, len(res.Points))
				for j, p := range res.Points {
					t := float64(p.Time.Unix())
					times[j] = &t
				}
				cols = append(cols, times)
			}
			vals := make([]*float64, len(cols[0]))
			for j, p := range res.Points {
				if j < len(vals) && p.Count > 0 && !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) {
					v := p.Value
					vals[j] = &v
				}
			}
			cols = append(cols, vals)
		}
		out.Charts[ch.ID] = cols
	}
	return out, nil
}
