package console

import (
	"context"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// A host page's captures and alerts, sent with each live update, so that
// an alert firing and the capture it starts (running, stopping) show
// without a reload. Rows are formatted here; host.js only places them.

type hostActivity struct {
	Captures []activityCapture `json:"captures"`
	Alerts   []activityAlert   `json:"alerts"`
}

type activityCapture struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Packets uint64 `json:"packets"`
	Bytes   string `json:"bytes"`
	Created string `json:"created"`
}

type activityAlert struct {
	ID        string `json:"id"`
	Rule      string `json:"rule"`
	Condition string `json:"condition"`
	Muted     bool   `json:"muted"`
	Severity  string `json:"severity"`
	Fired     string `json:"fired"`
	Resolved  string `json:"resolved"`
}

// hostActivityLimit is how many captures and alerts the host page lists,
// as its first render does.
const hostActivityLimit = 20

func (c *Console) hostActivityOf(ctx context.Context, h *tripcap.Host) (*hostActivity, error) {
	caps, _, err := c.cfg.Service.ListCaptures(ctx, controlplane.CaptureQuery{Host: h.ID, NewestFirst: true, Limit: hostActivityLimit})
	if err != nil {
		return nil, err
	}
	a := &hostActivity{Captures: []activityCapture{}, Alerts: []activityAlert{}}
	for _, pc := range caps {
		a.Captures = append(a.Captures, activityCapture{ID: pc.ID, Name: pc.Name, Status: string(pc.Status), Packets: pc.Stats.Packets,
			Bytes: tripcap.HumanBytes(pc.Stats.Bytes), Created: ago(pc.CreatedAt)})
	}
	if c.cfg.Monitor == nil {
		return a, nil
	}
	as, err := c.cfg.Monitor.FindAlerts(ctx, controlplane.AlertQuery{Host: h.ID, Limit: hostActivityLimit})
	if err != nil {
		return nil, err
	}
	for _, al := range as {
		row := activityAlert{ID: al.ID, Rule: al.RuleName, Condition: string(al.MonitorCondition), Muted: al.Silenced,
			Severity: tripcap.SeverityName(al.Severity), Fired: utc(al.FiredAt)}
		if al.ResolvedAt != nil {
			row.Resolved = utc(*al.ResolvedAt)
		}
		a.Alerts = append(a.Alerts, row)
	}
	return a, nil
}
