package console

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// The overview: what the on-call engineer looks at first. Each part asks
// its service as the caller; a part the caller may not read is left out.

func (c *Console) overviewPage() {
	c.nav(navOverview, "Overview", "/", tripcap.PermRead)
	c.get("/{$}", c.overview)
}

// overviewList bounds each list of the overview (and the counts of what
// is listed: "1000+").
const overviewList = 1000

type overviewData struct {
	Online, Offline int
	// Firing are the alerts firing now (newest first); Running the captures
	// that may still run.
	Firing  []*tripcap.Alert
	Running []*captureRow
	// More say a list was cut at overviewList.
	MoreFiring, MoreRunning bool
	Runs                    []runRow
	Storage                 []controlplane.StorageCheck
	// Changes is the last hour, newest first.
	Changes  []change
	Monitor  bool
	HasRuns  bool
	Storages bool
}

// runRow is a responder run with its responder's name.
type runRow struct {
	*tripcap.ResponderRun
	Responder string
}

// change is one thing that happened in the last hour.
type change struct {
	At   time.Time
	What string
	Link string
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) error {
	d, err := c.overviewOf(r.Context())
	if err != nil {
		return err
	}
	return c.render(w, r, "overview", d)
}

// overviewOf gathers the overview from the services, as the caller may see it.
func (c *Console) overviewOf(ctx context.Context) (*overviewData, error) {
	d := &overviewData{Monitor: c.cfg.Monitor != nil}
	var err error
	online, offline := tripcap.HostOnline, tripcap.HostOffline
	if d.Online, err = c.cfg.Service.CountHosts(ctx, tripcap.HostFilter{State: &online}); err != nil {
		return nil, err
	}
	if d.Offline, err = c.cfg.Service.CountHosts(ctx, tripcap.HostFilter{State: &offline}); err != nil {
		return nil, err
	}
	since := c.cfg.Now().Add(-time.Hour)
	running, _, err := c.cfg.Service.ListCaptures(ctx, controlplane.CaptureQuery{ActiveOnly: true, NewestFirst: true, Limit: overviewList})
	if err != nil {
		return nil, err
	}
	d.MoreRunning = len(running) == overviewList
	if d.Running, err = c.captureRows(ctx, running); err != nil {
		return nil, err
	}
	recent, _, err := c.cfg.Service.ListCaptures(ctx, controlplane.CaptureQuery{NewestFirst: true, Limit: 100})
	if err != nil {
		return nil, err
	}
	for _, pc := range recent {
		if pc.CreatedAt.After(since) {
			d.Changes = append(d.Changes, change{At: pc.CreatedAt, What: "capture " + pc.Name + " created" + causeOf(pc), Link: capturePath(pc.ID)})
		}
		if t := pc.CaptureStopTime; t != nil && t.After(since) {
			d.Changes = append(d.Changes, change{At: *t, What: "capture " + pc.Name + " ended: " + string(pc.Status) + " " + pc.StopReason, Link: capturePath(pc.ID)})
		}
	}
	if c.cfg.Monitor != nil {
		fired := string(tripcap.ConditionFired)
		if d.Firing, err = c.cfg.Monitor.FindAlerts(ctx, controlplane.AlertQuery{State: fired, Limit: overviewList}); err != nil {
			return nil, err
		}
		d.MoreFiring = len(d.Firing) == overviewList
		latest, err := c.cfg.Monitor.FindAlerts(ctx, controlplane.AlertQuery{Limit: 100})
		if err != nil {
			return nil, err
		}
		for _, a := range latest {
			if a.FiredAt.After(since) {
				d.Changes = append(d.Changes, change{At: a.FiredAt, What: "alert " + a.RuleName + " fired on " + a.HostName + mutedOf(a), Link: hostPath(a.HostName)})
			}
			if t := a.ResolvedAt; t != nil && t.After(since) {
				d.Changes = append(d.Changes, change{At: *t, What: "alert " + a.RuleName + " resolved on " + a.HostName, Link: hostPath(a.HostName)})
			}
		}
	}
	if err := c.overviewRuns(ctx, d, since); err != nil {
		return nil, err
	}
	switch d.Storage, err = c.cfg.Service.CheckStorage(ctx); {
	case err == nil:
		d.Storages = true
	case tripcap.ErrorCode(err) != tripcap.EFORBIDDEN:
		return nil, err
	}
	slices.SortStableFunc(d.Changes, func(a, b change) int { return b.At.Compare(a.At) })
	return d, nil
}

// overviewRuns adds the newest responder runs (of every responder) and
// those of the last hour to the changes.
func (c *Console) overviewRuns(ctx context.Context, d *overviewData, since time.Time) error {
	if c.cfg.Responders == nil {
		return nil
	}
	rs, err := c.cfg.Responders.FindResponders(ctx)
	if tripcap.ErrorCode(err) == tripcap.EFORBIDDEN {
		return nil
	} else if err != nil {
		return err
	}
	d.HasRuns = true
	for _, rsp := range rs {
		runs, err := c.cfg.Responders.FindRuns(ctx, rsp.ID, 10)
		if err != nil {
			return err
		}
		for _, run := range runs {
			d.Runs = append(d.Runs, runRow{ResponderRun: run, Responder: rsp.Name})
			if run.ReceivedAt.After(since) {
				d.Changes = append(d.Changes, change{At: run.ReceivedAt, What: "responder " + rsp.Name + ": " + cmp.Or(run.Decision, "received") + " " + run.Summary})
			}
		}
	}
	slices.SortFunc(d.Runs, func(a, b runRow) int { return b.ReceivedAt.Compare(a.ReceivedAt) })
	d.Runs = d.Runs[:min(len(d.Runs), 10)]
	return nil
}

func causeOf(pc *tripcap.PacketCapture) string {
	if pc.Cause == "" {
		return ""
	}
	return " (" + pc.Cause + ")"
}

func mutedOf(a *tripcap.Alert) string {
	if a.Silenced {
		return " (muted by a silence)"
	}
	return ""
}
