package controlplane_test

import (
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup/webhooktest"
	"github.com/tripcap/tripcap/controlplane"
)

// TestMonitorReplicasFireOnce: two replicas on one database get the same
// host's breach at once (an agent between them): the store's fence lets
// one alert in, delivered once; the other replica adopts it, and of the
// two resolutions one is stored and delivered.
func TestMonitorReplicasFireOnce(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	a, b := startMonitor(t, f), startMonitor(t, f)
	agent, host := f.enroll(t, "web1")
	rc := webhooktest.Start(t)
	if _, err := a.mon.CreateActionGroup(f.admin, &tripcap.ActionGroup{Name: "ops", WebhookReceivers: []tripcap.WebhookReceiver{{Name: "w", ServiceURI: rc.URL + "/w"}}}); err != nil {
		t.Fatal(err)
	}
	// Both replicas read the rule when they start; create it first, then restart.
	if _, err := a.mon.CreateRule(f.admin, egressRule("high-egress", "ops", 1000)); err != nil {
		t.Fatal(err)
	}
	a.stop()
	b.stop()
	a, b = startMonitor(t, f), startMonitor(t, f)
	both := func(start time.Time, values ...float64) time.Time {
		var wg sync.WaitGroup
		var next time.Time
		for _, m := range []*monitorFixture{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				next = ingest(t, m.mon, agent, start, values...)
			}()
		}
		wg.Wait()
		return next
	}
	start := time.Now().Truncate(time.Second).Add(-2 * time.Minute)
	next := both(start, repeat(100, 10)...)
	next = both(next, repeat(5000, 10)...)
	eventually(t, "the alert to fire", func() bool { return len(alertsOf(t, f)) == 1 })
	eventually(t, "the Fired delivery", func() bool { return len(rc.Accepted("/w")) == 1 })
	time.Sleep(300 * time.Millisecond) // room for a second alert or delivery, were there one
	as := alertsOf(t, f)
	if len(as) != 1 || as[0].HostID != host.ID || len(rc.Accepted("/w")) != 1 {
		t.Fatalf("one breach on two replicas: %d alerts, %d deliveries; want 1, 1", len(as), len(rc.Accepted("/w")))
	}
	// Both replicas hold the one alert as the instance's: neither fires
	// again while the breach lasts.
	for i, m := range []*monitorFixture{a, b} {
		if st := m.mon.Stats().Alerting; st.Fired != 1 {
			t.Fatalf("replica %d holds %d Fired alerts; want the stored one", i, st.Fired)
		}
	}
	next = both(next, repeat(5000, 10)...)
	both(next, repeat(100, 10)...)
	eventually(t, "the alert to resolve", func() bool {
		as := alertsOf(t, f)
		return len(as) == 1 && as[0].MonitorCondition == tripcap.ConditionResolved
	})
	eventually(t, "the Resolved delivery", func() bool { return len(rc.Accepted("/w")) == 2 })
	time.Sleep(300 * time.Millisecond)
	if as := alertsOf(t, f); len(as) != 1 || len(as[0].History) != 2 || len(rc.Accepted("/w")) != 2 {
		t.Fatalf("after the clear: %d alerts (history %d), %d deliveries; want 1 (Fired, Resolved), 2", len(as), len(as[0].History), len(rc.Accepted("/w")))
	}
}

// TestMonitorReleaseLetsTheNextBreachFire: a rule without autoMitigate
// leaves its alert Fired when the condition clears, and the store records
// the release, so the fence lets the next breach's new alert in; the
// release itself is delivered to no one.
func TestMonitorReleaseLetsTheNextBreachFire(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	m := startMonitor(t, f)
	agent, _ := f.enroll(t, "web1")
	rc := webhooktest.Start(t)
	if _, err := m.mon.CreateActionGroup(f.admin, &tripcap.ActionGroup{Name: "ops", WebhookReceivers: []tripcap.WebhookReceiver{{Name: "w", ServiceURI: rc.URL + "/w"}}}); err != nil {
		t.Fatal(err)
	}
	r := egressRule("high-egress", "ops", 1000)
	r.AutoMitigate = new(false)
	if _, err := m.mon.CreateRule(f.admin, r); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Truncate(time.Second).Add(-2 * time.Minute)
	next := ingest(t, m.mon, agent, start, repeat(5000, 10)...)
	eventually(t, "the alert to fire", func() bool { return len(alertsOf(t, f)) == 1 })
	next = ingest(t, m.mon, agent, next, repeat(100, 10)...)
	eventually(t, "the release to be stored", func() bool {
		as := alertsOf(t, f)
		return len(as) == 1 && as[0].Released
	})
	if a := alertsOf(t, f)[0]; a.MonitorCondition != tripcap.ConditionFired || a.Active() {
		t.Fatalf("released alert: %s active=%v, want Fired and not active", a.MonitorCondition, a.Active())
	}
	ingest(t, m.mon, agent, next, repeat(5000, 10)...)
	eventually(t, "the next breach's alert", func() bool { return len(alertsOf(t, f)) == 2 })
	eventually(t, "two Fired deliveries", func() bool { return len(rc.Accepted("/w")) == 2 })
	time.Sleep(300 * time.Millisecond)
	as := alertsOf(t, f)
	if len(rc.Accepted("/w")) != 2 || !as[0].Active() || as[1].Active() {
		t.Fatalf("after two breaches: %d deliveries, newest active=%v, oldest active=%v; want 2, true, false", len(rc.Accepted("/w")), as[0].Active(), as[1].Active())
	}
}
