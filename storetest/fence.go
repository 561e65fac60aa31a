package storetest

import (
	"database/sql"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// wantFenced checks err is an *AlertFencedError naming winner, and returns it.
func wantFenced(t *testing.T, what string, err error, winner string) *tripcap.AlertFencedError {
	t.Helper()
	var fe *tripcap.AlertFencedError
	if !errors.As(err, &fe) {
		t.Fatalf("%s: %v, want an AlertFencedError naming %s", what, err, winner)
	}
	if fe.WinnerID != winner || fe.Winner == nil || fe.Winner.ID != winner {
		t.Fatalf("%s: the error names winner %s (%+v), want %s", what, fe.WinnerID, fe.Winner, winner)
	}
	return fe
}

func testFenceActive(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	rule, host := tripcap.NewID(), tripcap.NewID()
	x := firedAlert(rule, host, base)
	must(t, s.UpsertAlert(ctx, x))
	// Rewriting the active alert (a retry, a silence recorded) is no conflict.
	x.SilencedBy = []string{"s1"}
	must(t, s.UpsertAlert(ctx, x))

	// Another replica's alert of the same instance loses, and learns the winner whole.
	y := firedAlert(rule, host, base.Add(time.Second))
	fe := wantFenced(t, "a second active alert", s.UpsertAlert(ctx, y), x.ID)
	if fe.AlertID != y.ID {
		t.Fatalf("the error names the refused alert %s, want %s", fe.AlertID, y.ID)
	}
	wantEqual(t, "the winner", fe.Winner, utcCopy(x))
	if _, err := s.FindAlert(ctx, y.ID); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Fatalf("the losing alert was stored: %v", err)
	}
	// Other rules and hosts are other instances.
	must(t, s.UpsertAlert(ctx, firedAlert(rule, tripcap.NewID(), base)))
	must(t, s.UpsertAlert(ctx, firedAlert(tripcap.NewID(), host, base)))

	// A rule without autoMitigate releases its alert, which stays Fired:
	// the instance fires anew on the next breach.
	x.Released = true
	must(t, s.UpsertAlert(ctx, x))
	got, err := s.FindAlert(ctx, x.ID)
	must(t, err)
	if got.MonitorCondition != tripcap.ConditionFired || !got.Released || got.Active() {
		t.Fatalf("released alert read back %s released=%v", got.MonitorCondition, got.Released)
	}
	must(t, s.UpsertAlert(ctx, y))

	// Resolved stays resolved: a second resolution (another replica's) and
	// a late Fired write are refused, naming the stored alert, which keeps
	// the first resolution.
	resolved := base.Add(time.Minute)
	y.MonitorCondition, y.ResolvedAt = tripcap.ConditionResolved, &resolved
	y.Condition.MonitorCondition = tripcap.ConditionResolved
	y.History = append(y.History, y.Condition)
	must(t, s.UpsertAlert(ctx, y))
	want := utcCopy(y)
	again := utcCopy(y)
	later := base.Add(2 * time.Minute)
	again.ResolvedAt = &later
	fe = wantFenced(t, "a second resolution", s.UpsertAlert(ctx, again), y.ID)
	wantEqual(t, "the stored resolution", fe.Winner, want)
	late := firedAlert(rule, host, y.FiredAt)
	late.ID = y.ID
	wantFenced(t, "a Fired write of a resolved alert", s.UpsertAlert(ctx, late), y.ID)
	got, err = s.FindAlert(ctx, y.ID)
	must(t, err)
	wantEqual(t, "the resolved alert", got, want)

	// With x released and y resolved the instance is free.
	must(t, s.UpsertAlert(ctx, firedAlert(rule, host, base.Add(3*time.Minute))))
	fired := tripcap.ConditionFired
	list, err := s.FindAlerts(ctx, tripcap.AlertFilter{RuleID: &rule, HostID: &host, MonitorCondition: &fired})
	must(t, err)
	active := 0
	for _, a := range list {
		if a.Active() {
			active++
		}
	}
	if len(list) != 2 || active != 1 {
		t.Fatalf("instance's Fired alerts: %d, %d active; want 2, 1 active", len(list), active)
	}
}

// Two replicas fire the same instance at once: exactly one wins, and the
// other learns which.
func testFenceRace(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	const rounds = 20
	for range rounds {
		rule, host := tripcap.NewID(), tripcap.NewID()
		alerts := []*tripcap.Alert{firedAlert(rule, host, base), firedAlert(rule, host, base)}
		errs := make([]error, len(alerts))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, a := range alerts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = s.UpsertAlert(ctx, a)
			}()
		}
		close(start)
		wg.Wait()
		won := -1
		for i, err := range errs {
			if err == nil {
				if won >= 0 {
					t.Fatal("both racing alerts were stored")
				}
				won = i
			}
		}
		if won < 0 {
			t.Fatalf("neither racing alert was stored: %v, %v", errs[0], errs[1])
		}
		wantFenced(t, "the race's loser", errs[1-won], alerts[won].ID)
		list, err := s.FindAlerts(ctx, tripcap.AlertFilter{RuleID: &rule, HostID: &host})
		must(t, err)
		if len(list) != 1 || list[0].ID != alerts[won].ID {
			t.Fatalf("after the race the instance has %d alerts, want the winner's only", len(list))
		}
	}
}

// AlertsBeforeFence is what SeedBeforeAlertFence wrote: of one instance,
// three Fired alerts (a rule without autoMitigate fires anew each breach)
// oldest first, and a Resolved one; of another instance, one Fired.
type AlertsBeforeFence struct {
	Fired    []*tripcap.Alert
	Resolved *tripcap.Alert
	Other    *tripcap.Alert
}

// SeedBeforeAlertFence writes, into a database migrated to version 14
// (before the fence), alerts as an older server stored them; rebind and
// tm adapt placeholders and times to the dialect. CheckAlertFence checks
// what the migration made of them.
func SeedBeforeAlertFence(t *testing.T, db *sql.DB, rebind func(string) string, tm func(time.Time) any) AlertsBeforeFence {
	t.Helper()
	rule, host := tripcap.NewID(), tripcap.NewID()
	var seed AlertsBeforeFence
	for i := range 3 {
		seed.Fired = append(seed.Fired, firedAlert(rule, host, base.Add(time.Duration(i)*time.Hour)))
	}
	seed.Resolved = fullAlert(rule, host, base.Add(4*time.Hour))
	seed.Other = firedAlert(tripcap.NewID(), host, base)
	for _, a := range append(append([]*tripcap.Alert{}, seed.Fired...), seed.Resolved, seed.Other) {
		doc, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(t.Context(), rebind(`INSERT INTO alerts (id, rule_id, host_id, monitor_condition, fired_at, doc) VALUES (?, ?, ?, ?, ?, ?)`),
			a.ID, a.RuleID, a.HostID, string(a.MonitorCondition), tm(a.FiredAt), string(doc)); err != nil {
			t.Fatal(err)
		}
	}
	return seed
}

// CheckAlertFence checks that after the migration the newest Fired alert
// of each instance is its active one, the older ones are released, and
// the fence holds.
func CheckAlertFence(t *testing.T, s tripcap.Store, seed AlertsBeforeFence) {
	t.Helper()
	ctx := t.Context()
	for i, a := range seed.Fired {
		got, err := s.FindAlert(ctx, a.ID)
		must(t, err)
		if newest := i == len(seed.Fired)-1; got.Active() != newest || got.MonitorCondition != tripcap.ConditionFired {
			t.Fatalf("Fired alert %d of 3 (oldest first): %s active=%v", i+1, got.MonitorCondition, got.Active())
		}
	}
	for _, a := range []*tripcap.Alert{seed.Resolved, seed.Other} {
		got, err := s.FindAlert(ctx, a.ID)
		must(t, err)
		if got.MonitorCondition != a.MonitorCondition || got.Active() != (a.MonitorCondition == tripcap.ConditionFired) {
			t.Fatalf("alert %s: %s active=%v", a.ID, got.MonitorCondition, got.Active())
		}
	}
	newest := seed.Fired[len(seed.Fired)-1]
	wantFenced(t, "a new alert of the migrated instance", s.UpsertAlert(ctx, firedAlert(newest.RuleID, newest.HostID, base.Add(5*time.Hour))), newest.ID)
	wantFenced(t, "a new alert of the other instance", s.UpsertAlert(ctx, firedAlert(seed.Other.RuleID, seed.Other.HostID, base.Add(5*time.Hour))), seed.Other.ID)
	newest.Released = true
	must(t, s.UpsertAlert(ctx, newest))
	must(t, s.UpsertAlert(ctx, firedAlert(newest.RuleID, newest.HostID, base.Add(5*time.Hour))))
}
