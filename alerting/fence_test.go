package alerting

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// TestFencedFiringAdoptsWinner: another replica fired the instance first
// (the store refuses this replica's alert, naming the winner): the
// instance adopts the winner, fires nothing more while the breach lasts,
// and resolves the winner when it clears; a resolution another replica
// wrote first is adopted as it stands.
func TestFencedFiringAdoptsWinner(t *testing.T) {
	l := newLab(t, staticRule("r", "Network Out Total", tripcap.AggregationMaximum, tripcap.OperatorGreaterThan, 3, "PT1S", "PT1S"))
	at := t0.Add(time.Second)
	winner := &tripcap.Alert{ID: "other-replica", RuleID: "r", RuleName: "rule-r", HostID: "h1", HostName: "vm-h1",
		MonitorCondition: tripcap.ConditionFired, FiredAt: at, Condition: tripcap.AlertEvaluation{MonitorCondition: tripcap.ConditionFired, Time: at}}
	winner.History = []tripcap.AlertEvaluation{winner.Condition}
	var resolution *tripcap.Alert
	l.storeAlert = func(a tripcap.Alert) error {
		switch {
		case a.MonitorCondition == tripcap.ConditionFired && a.ID != winner.ID:
			return &tripcap.AlertFencedError{AlertID: a.ID, WinnerID: winner.ID, Winner: winner}
		case a.MonitorCondition == tripcap.ConditionResolved && resolution != nil:
			return &tripcap.AlertFencedError{AlertID: a.ID, WinnerID: resolution.ID, Winner: resolution}
		}
		return nil
	}
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 0, 5, constant(10))
	got := l.taken()
	if len(got) != 1 || got[0].MonitorCondition != tripcap.ConditionFired || got[0].ID == winner.ID {
		t.Fatalf("transitions during the breach: %+v, want one refused Fired", got)
	}
	if _, err := l.ev.Alert(got[0].ID); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Fatalf("the refused alert is still listed: %v", err)
	}
	if list := l.ev.Alerts(tripcap.AlertFilter{}); len(list) != 1 || list[0].ID != winner.ID {
		t.Fatalf("alerts after the fence: %+v, want the winner only", list)
	}
	// The clear resolves the winner: this replica now owns the instance.
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 5, 6, constant(1))
	got = l.taken()
	if len(got) != 1 || got[0].ID != winner.ID || got[0].MonitorCondition != tripcap.ConditionResolved || len(got[0].History) != 2 {
		t.Fatalf("transitions at the clear: %+v, want the winner resolved", got)
	}

	// Next breach: this replica's alert is stored; the other replica
	// resolves it first, and this replica's resolution adopts that one.
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 6, 7, constant(10))
	got = l.taken()
	if len(got) != 1 || got[0].MonitorCondition != tripcap.ConditionFired {
		t.Fatalf("second breach: %+v", got)
	}
	winner.ID = got[0].ID // the store has it now
	theirs := got[0]
	resolvedAt := t0.Add(6500 * time.Millisecond)
	theirs.MonitorCondition, theirs.ResolvedAt = tripcap.ConditionResolved, &resolvedAt
	resolution = &theirs
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 7, 8, constant(1))
	if got = l.taken(); len(got) != 1 || got[0].MonitorCondition != tripcap.ConditionResolved {
		t.Fatalf("second clear: %+v", got)
	}
	a, err := l.ev.Alert(theirs.ID)
	if err != nil || a.ResolvedAt == nil || !a.ResolvedAt.Equal(resolvedAt) {
		t.Fatalf("the adopted resolution: %+v, %v", a, err)
	}
	// The instance is free: a third breach fires anew.
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 8, 9, constant(10))
	if got = l.taken(); len(got) != 1 || got[0].MonitorCondition != tripcap.ConditionFired || got[0].ID == theirs.ID {
		t.Fatalf("third breach: %+v", got)
	}
}
