package main

import (
	"context"
	"fmt"
	"time"

	"github.com/tripcap/tripcap"
)

// seeded names what the pages under test show.
type seeded struct {
	Host    *tripcap.Host
	Capture string
	Rule    string
	Alert   string
	// HostsCursor is a cursor 5,000 hosts deep.
	HostsCursor string
}

var locations = []string{"westeurope", "northeurope", "eastus", "westus2"}

// seed fills the store through its own API, as the control plane would
// have: hosts in four locations with a team label, stored captures spread
// over them (Stopped, with a file each), rules, an action group, a
// responder, alerts and audit events.
func seed(ctx context.Context, store tripcap.Store, nHosts, nCaptures, nAlerts, nEvents int) (*seeded, error) {
	now := time.Now().UTC()
	watchers := map[string]*tripcap.NetworkWatcher{}
	for _, loc := range locations {
		w, err := store.EnsureWatcher(ctx, "00000000-0000-0000-0000-000000000000", loc, tripcap.DefaultParallelCapturesPerWatcher)
		if err != nil {
			return nil, fmt.Errorf("watcher %s: %w", loc, err)
		}
		watchers[loc] = w
	}
	hosts := make([]*tripcap.Host, nHosts)
	for i := range hosts {
		loc := locations[i%len(locations)]
		h := &tripcap.Host{ID: tripcap.NewID(), Name: fmt.Sprintf("vm-%05d", i), Location: loc, Labels: map[string]string{"team": fmt.Sprintf("t%d", i%20)},
			SubscriptionID: "00000000-0000-0000-0000-000000000000", ResourceGroup: "fleet", State: tripcap.HostOnline, LastSeen: now,
			CreatedAt: now, UpdatedAt: now}
		if i%10 == 9 {
			h.State = tripcap.HostOffline
		}
		if err := store.CreateHost(ctx, h); err != nil {
			return nil, fmt.Errorf("host %d: %w", i, err)
		}
		hosts[i] = h
	}
	s := &seeded{Host: hosts[nHosts/2]}
	for i := range nCaptures {
		h := hosts[i%nHosts]
		start := now.Add(-time.Duration(nCaptures-i) * time.Second)
		stop := start.Add(30 * time.Second)
		c := &tripcap.PacketCapture{ID: tripcap.NewID(), Name: fmt.Sprintf("cap-%06d", i), WatcherID: watchers[h.Location].ID, HostID: h.ID,
			Parameters:        tripcap.PacketCaptureParameters{Target: h.Name, TimeLimitInSeconds: 30},
			ProvisioningState: tripcap.ProvisioningSucceeded, Desired: tripcap.DesiredStopped, Status: tripcap.StatusStopped, StopReason: "TimeExceeded",
			CaptureStartTime: &start, CaptureStopTime: &stop, Stats: tripcap.CaptureStats{Packets: 1000, Bytes: 1_200_000},
			Files:     []tripcap.CaptureFile{{Name: "packetcapture.cap", Size: 1_200_024, Stored: true, StorageID: "local", CreatedAt: stop}},
			CreatedAt: start, UpdatedAt: stop}
		c.Parameters.ApplyDefaults()
		if err := store.CreateCapture(ctx, c); err != nil {
			return nil, fmt.Errorf("capture %d: %w", i, err)
		}
		if h == s.Host {
			s.Capture = c.ID
		}
	}

	g := &tripcap.ActionGroup{ID: tripcap.NewID(), Name: "capture", ResponderReceivers: []tripcap.ResponderReceiver{{Name: "pc", ResponderID: "pc"}},
		CreatedAt: now, UpdatedAt: now, Version: 1}
	if err := store.CreateActionGroup(ctx, g); err != nil {
		return nil, fmt.Errorf("action group: %w", err)
	}
	rs := &tripcap.Responder{ID: tripcap.NewID(), Name: "pc", CreatedAt: now, UpdatedAt: now, Version: 1}
	rs.ApplyDefaults()
	if err := store.CreateResponder(ctx, rs); err != nil {
		return nil, fmt.Errorf("responder: %w", err)
	}
	var rules []*tripcap.AlertRule
	for i := range 10 {
		r, err := tripcap.PresetAlertRule(tripcap.PresetSeed, fmt.Sprintf("egress-%d", i), []tripcap.Scope{tripcap.Scope(fmt.Sprintf("label:team=t%d", i))}, g.ID)
		if err != nil {
			return nil, err
		}
		r.ID, r.CreatedAt, r.UpdatedAt, r.Version = tripcap.NewID(), now, now, 1
		if err := store.CreateAlertRule(ctx, r); err != nil {
			return nil, fmt.Errorf("rule %d: %w", i, err)
		}
		rules = append(rules, r)
	}
	s.Rule = rules[0].ID
	for i := range nAlerts {
		r := rules[i%len(rules)]
		h := hosts[(i*7)%nHosts]
		fired := now.Add(-time.Duration(nAlerts-i) * time.Minute)
		resolved := fired.Add(3 * time.Minute)
		ev := tripcap.AlertEvaluation{MonitorCondition: tripcap.ConditionFired, Time: fired, WindowStartTime: fired.Add(-5 * time.Minute), WindowEndTime: fired,
			AllOf: []tripcap.ConditionResult{{Name: "Metric1", MetricName: "Network Out Total", Metric: tripcap.MetricNetworkOutBytes, Operator: tripcap.OperatorGreaterThan,
				TimeAggregation: tripcap.AggregationAverage, Dimensions: []tripcap.DimensionValue{}, MetricValue: 4, Threshold: 3, Met: true}}}
		res := ev
		res.MonitorCondition, res.Time, res.AllOf = tripcap.ConditionResolved, resolved, append([]tripcap.ConditionResult(nil), ev.AllOf...)
		res.AllOf[0].MetricValue, res.AllOf[0].Met = 1, false
		a := &tripcap.Alert{ID: tripcap.NewID(), RuleID: r.ID, RuleName: r.Name, Severity: 3, HostID: h.ID, HostName: h.Name, TargetResourceID: h.ResourceID(),
			ConditionType: tripcap.ConditionTypeStatic, WindowSize: r.WindowSize, MonitorCondition: tripcap.ConditionResolved, FiredAt: fired, ResolvedAt: &resolved,
			Condition: res, History: []tripcap.AlertEvaluation{ev, res}, Actions: r.Actions}
		if err := store.UpsertAlert(ctx, a); err != nil {
			return nil, fmt.Errorf("alert %d: %w", i, err)
		}
		s.Alert = a.ID
	}
	batch := make([]*tripcap.AuditEvent, 0, 1000)
	for i := range nEvents {
		batch = append(batch, &tripcap.AuditEvent{ID: tripcap.NewID(), Time: now.Add(-time.Duration(nEvents-i) * time.Second), PrincipalName: "ops",
			PrincipalKind: tripcap.PrincipalUser, Action: []string{"createCapture", "stopCapture", "listHosts", "console"}[i%4],
			Resource: fmt.Sprintf("captures/cap-%06d", i%max(nCaptures, 1)), RemoteAddr: "198.18.0.10:50000", Result: tripcap.AuditSuccess, Status: 200})
		if len(batch) == cap(batch) || i == nEvents-1 {
			if err := store.AppendAuditEvents(ctx, batch); err != nil {
				return nil, fmt.Errorf("audit events: %w", err)
			}
			batch = batch[:0]
		}
	}
	_, cur, err := store.FindHosts(ctx, tripcap.HostFilter{Limit: min(5000, nHosts)})
	if err != nil {
		return nil, err
	}
	s.HostsCursor = cur
	return s, nil
}
