package controlplane_test

import (
	"slices"
	"testing"
	"time"

	"github.com/tripcap/tripcap/internal/teststore"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// TestAccessMonitoring: rules, action groups and silences are not tied to
// a host, so they need the role at "*" (reads Reader, writes Monitoring
// Contributor); alerts and metrics are a host's, so a grant at a scope
// sees those of its hosts, a page of alerts filled from further back when
// the newest are out of scope.
func TestAccessMonitoring(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := newAccessFixture(t, store)
		m := startMonitor(t, f.fixture)
		hook := []tripcap.WebhookReceiver{{Name: "w", ServiceURI: "http://127.0.0.1:9/hook"}}
		mon := f.who["monAll"]

		g, err := m.mon.CreateActionGroup(mon, &tripcap.ActionGroup{Name: "ops", WebhookReceivers: hook})
		if err != nil {
			t.Fatalf("monAll: CreateActionGroup: %v", err)
		}
		rule, err := m.mon.CreateRule(mon, egressRule("r", "ops", 1))
		if err != nil {
			t.Fatalf("monAll: CreateRule: %v", err)
		}
		sl, err := m.mon.CreateSilence(mon, &tripcap.Silence{Rule: "r", Comment: "maintenance", EndsAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatalf("monAll: CreateSilence: %v", err)
		}
		if sl.CreatedBy != "monAll" {
			t.Errorf("silence created by %q, want monAll", sl.CreatedBy)
		}
		for _, name := range []string{"readerAll", "readerA", "netA", "filesX", "none", "ownerTeamA"} {
			ctx := f.who[name]
			_, err := m.mon.CreateActionGroup(ctx, &tripcap.ActionGroup{Name: "x", WebhookReceivers: hook})
			wantRefused(t, name+": CreateActionGroup", err, tripcap.EFORBIDDEN)
			_, err = m.mon.UpdateActionGroup(ctx, "ops", &tripcap.ActionGroup{WebhookReceivers: hook}, "*")
			wantRefused(t, name+": UpdateActionGroup", err, tripcap.EFORBIDDEN)
			wantRefused(t, name+": DeleteActionGroup", m.mon.DeleteActionGroup(ctx, "ops"), tripcap.EFORBIDDEN)
			_, err = m.mon.CreateRule(ctx, egressRule("x", "ops", 1))
			wantRefused(t, name+": CreateRule", err, tripcap.EFORBIDDEN)
			_, err = m.mon.UpdateRule(ctx, "r", egressRule("r", "ops", 2), "*")
			wantRefused(t, name+": UpdateRule", err, tripcap.EFORBIDDEN)
			wantRefused(t, name+": DeleteRule", m.mon.DeleteRule(ctx, "r"), tripcap.EFORBIDDEN)
			_, err = m.mon.CreateSilence(ctx, &tripcap.Silence{Rule: "r", Comment: "maintenance", EndsAt: time.Now().Add(time.Hour)})
			wantRefused(t, name+": CreateSilence", err, tripcap.EFORBIDDEN)
			_, err = m.mon.ExpireSilence(ctx, sl.ID)
			wantRefused(t, name+": ExpireSilence", err, tripcap.EFORBIDDEN)
		}
		for name, ok := range map[string]bool{"readerAll": true, "monAll": true, "readerA": false, "netA": false, "filesX": false, "none": false, "ownerTeamA": false} {
			ctx := f.who[name]
			_, errRules := m.mon.FindRules(ctx)
			_, errRule := m.mon.FindRule(ctx, "r")
			_, errGroups := m.mon.FindActionGroups(ctx)
			_, errGroup := m.mon.FindActionGroup(ctx, g.ID)
			_, errSilences := m.mon.FindSilences(ctx, true)
			for what, err := range map[string]error{"FindRules": errRules, "FindRule": errRule, "FindActionGroups": errGroups, "FindActionGroup": errGroup, "FindSilences": errSilences} {
				if ok && err != nil {
					t.Errorf("%s: %s: %v", name, what, err)
				} else if !ok {
					wantRefused(t, name+": "+what, err, tripcap.EFORBIDDEN)
				}
			}
		}
		if _, err := m.mon.UpdateRule(mon, "r", egressRule("r", "ops", 2), "*"); err != nil {
			t.Errorf("monAll: UpdateRule: %v", err)
		}
		if _, err := m.mon.ExpireSilence(mon, sl.ID); err != nil {
			t.Errorf("monAll: ExpireSilence: %v", err)
		}

		// Four alerts a host, newest on x1 and b1: a page of two for team=a
		// must reach back past them.
		base := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
		var alerts []*tripcap.Alert
		for i := range 4 {
			for j, h := range []string{"a1", "a2", "b1", "x1"} {
				a := &tripcap.Alert{ID: tripcap.NewID(), RuleID: rule.ID, RuleName: rule.Name, HostID: f.hosts[h].ID, HostName: h,
					MonitorCondition: tripcap.ConditionFired, FiredAt: base.Add(time.Duration(4*i+j) * time.Minute), Released: i < 3}
				if err := f.store.UpsertAlert(f.admin, a); err != nil {
					t.Fatal(err)
				}
				alerts = append(alerts, a)
			}
		}
		slices.Reverse(alerts) // newest first, as listed
		for name, hosts := range seen {
			ctx := f.who[name]
			for _, limit := range []int{1, 2, 3, 100} {
				got, err := m.mon.FindAlerts(ctx, controlplane.AlertQuery{Limit: limit})
				if hosts == nil {
					wantRefused(t, name+": FindAlerts", err, tripcap.EFORBIDDEN)
					continue
				}
				if err != nil {
					t.Fatalf("%s: FindAlerts: %v", name, err)
				}
				var want []string
				for _, a := range alerts {
					if slices.Contains(hosts, a.HostName) && len(want) < limit {
						want = append(want, a.ID)
					}
				}
				var ids []string
				for _, a := range got {
					ids = append(ids, a.ID)
				}
				if !slices.Equal(ids, want) {
					t.Errorf("%s: FindAlerts limit %d: %d alerts %v, want %d %v", name, limit, len(ids), ids, len(want), want)
				}
			}
			for _, a := range alerts[:4] {
				_, errOne := m.mon.FindAlert(ctx, a.ID)
				_, errHost := m.mon.FindAlerts(ctx, controlplane.AlertQuery{Host: a.HostName})
				_, errMetrics := m.mon.QueryMetrics(ctx, controlplane.MetricsQuery{Host: a.HostName, Metric: "Network Out Total"})
				switch {
				case hosts == nil:
					wantRefused(t, name+": FindAlert", errOne, tripcap.EFORBIDDEN)
					wantRefused(t, name+": FindAlerts of a host", errHost, tripcap.EFORBIDDEN)
					wantRefused(t, name+": QueryMetrics", errMetrics, tripcap.EFORBIDDEN)
				case slices.Contains(hosts, a.HostName):
					if errOne != nil || errHost != nil || errMetrics != nil {
						t.Errorf("%s: alert and metrics of %s: %v, %v, %v", name, a.HostName, errOne, errHost, errMetrics)
					}
				default:
					wantRefused(t, name+": FindAlert of "+a.HostName, errOne, tripcap.ENOTFOUND)
					wantRefused(t, name+": FindAlerts of "+a.HostName, errHost, tripcap.ENOTFOUND)
					wantRefused(t, name+": QueryMetrics of "+a.HostName, errMetrics, tripcap.ENOTFOUND)
				}
			}
			_, err := m.mon.MetricDefinitions(ctx)
			if hosts == nil {
				wantRefused(t, name+": MetricDefinitions", err, tripcap.EFORBIDDEN)
			} else if err != nil {
				t.Errorf("%s: MetricDefinitions: %v", name, err)
			}
		}
	})
}
