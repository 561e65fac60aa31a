package alerting

import (
	"context"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// TestHistoryNeed: what an attaching host's history must cover. A new
// instance reads its rule's window (and a frequency of margin); one that
// evaluated before catches up from its cursor, no further than maxCatchUp
// evaluations; a dynamic rule in scope wants the whole store; a host in
// no rule's scope, nothing.
func TestHistoryNeed(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, staticRule("a", "Network Out Total", tripcap.AggregationAverage, tripcap.OperatorGreaterThan, 1e9, "PT1M", "PT15M"))
	now := t0.Add(time.Hour)
	need, whole, err := l.ev.HistoryNeed(ctx, "h1", now)
	if err != nil || whole || need != 16*time.Minute {
		t.Fatalf("a new instance: need %s whole %v err %v; want 16m (a 15-minute window and a minute's margin)", need, whole, err)
	}
	// Every minute over 5 minutes, evaluated up to 20 minutes ago: it
	// catches up from its next evaluation, 19 minutes ago.
	if err := l.ev.SetRules([]*tripcap.AlertRule{staticRule("b", "Network Out Total", tripcap.AggregationAverage, tripcap.OperatorGreaterThan, 1e9, "PT1M", "PT5M")}); err != nil {
		t.Fatal(err)
	}
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 2399, 2400, constant(1))
	if need, _, _ = l.ev.HistoryNeed(ctx, "h1", now); need != 19*time.Minute+5*time.Minute+time.Minute {
		t.Errorf("catching up 19 minutes over a 5-minute window: need %s", need)
	}
	// From hours ago, at most maxCatchUp evaluations back.
	if need, _, _ = l.ev.HistoryNeed(ctx, "h1", now.Add(5*time.Hour)); need != time.Duration(maxCatchUp-1)*time.Minute+5*time.Minute+time.Minute {
		t.Errorf("catching up hours: need %s; want %d evaluations back", need, maxCatchUp)
	}
	if need, whole, err = l.ev.HistoryNeed(ctx, "nobody", now); need != 0 || whole || err != nil {
		t.Errorf("an unknown host: need %s whole %v err %v", need, whole, err)
	}
	if err := l.ev.SetRules([]*tripcap.AlertRule{dynamicRule(tripcap.SensitivityMedium, tripcap.OperatorGreaterThan, 4, 4)}); err != nil {
		t.Fatal(err)
	}
	if _, whole, _ = l.ev.HistoryNeed(ctx, "h1", now); !whole {
		t.Error("a dynamic rule in scope: want the whole history")
	}
}
