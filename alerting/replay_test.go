package alerting

import (
	"context"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// TestReplayAgreesWithTheEvaluator replays a rule over the points the live
// evaluator saw second by second: the replay fires and resolves exactly
// where the evaluator did, shows each window's value and the threshold,
// has no value where the window had no data, and leaves the live alerts
// alone.
func TestReplayAgreesWithTheEvaluator(t *testing.T) {
	rule := staticRule("r1", "Network Out Total", tripcap.AggregationTotal, tripcap.OperatorGreaterThan, 2000, "PT5S", "PT10S")
	l := newLab(t, rule)
	rate := func(s int64) (float64, bool) {
		switch {
		case s > 60 && s <= 90, s > 140 && s <= 150:
			return 500, true
		default:
			return 100, true
		}
	}
	for s := int64(1); s <= 200; s++ {
		l.feed("h1", tripcap.MetricNetworkOutBytes, "", s-1, s, rate)
	}
	live := l.taken()
	if len(live) != 4 {
		t.Fatalf("live transitions: %d, want 4 (two bursts, each fired and resolved)", len(live))
	}
	before := len(l.ev.Alerts(tripcap.AlertFilter{}))

	rp, err := l.ev.Replay(context.Background(), rule, l.hosts["h1"], t0, t0.Add(200*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(rp.Evaluations) != 40 || rp.Frequency != 5 || rp.Window != 10 || rp.Host != "vm-h1" {
		t.Fatalf("replay: %d evaluations, frequency %v, window %v, host %s", len(rp.Evaluations), rp.Frequency, rp.Window, rp.Host)
	}
	var got []tripcap.Alert
	for _, p := range rp.Evaluations {
		if p.Transition != "" {
			got = append(got, tripcap.Alert{MonitorCondition: p.Transition, FiredAt: p.Time})
		}
		if p.Thresholds[0] != 2000 {
			t.Fatalf("threshold at %s: %v", p.Time, p.Thresholds[0])
		}
	}
	if rp.Fired != 2 || len(got) != len(live) {
		t.Fatalf("replay: %d fired, transitions %+v; live %d", rp.Fired, got, len(live))
	}
	for i, a := range live {
		at := a.FiredAt
		if a.MonitorCondition == tripcap.ConditionResolved {
			at = *a.ResolvedAt
		}
		if got[i].MonitorCondition != a.MonitorCondition || !got[i].FiredAt.Equal(at) {
			t.Errorf("transition %d: replay %s at %s, live %s at %s", i, got[i].MonitorCondition, got[i].FiredAt, a.MonitorCondition, at)
		}
	}
	// 5 s has too few points in its window; 75 s is inside the burst.
	if v := rp.Evaluations[0].Values[0]; v != nil {
		t.Errorf("value with no data: %v, want none", *v)
	}
	if v := rp.Evaluations[14].Values[0]; v == nil || *v != 5000 || !rp.Evaluations[14].Met {
		t.Errorf("value at 75 s: %v, want 5000 and met", v)
	}
	if n := len(l.ev.Alerts(tripcap.AlertFilter{})); n != before {
		t.Errorf("the replay changed the live alerts: %d, was %d", n, before)
	}
	if len(l.taken()) != 0 {
		t.Error("the replay delivered a transition")
	}
}

// TestReplayBounded refuses a replay of more evaluations than an hour at
// one a second, naming the field.
func TestReplayBounded(t *testing.T) {
	rule := staticRule("r1", "Network Out Total", tripcap.AggregationTotal, tripcap.OperatorGreaterThan, 1, "PT1S", "PT5S")
	l := newLab(t, rule)
	_, err := l.ev.Replay(context.Background(), rule, l.hosts["h1"], t0, t0.Add(2*time.Hour))
	if tripcap.ErrorCode(err) != tripcap.EINVALID {
		t.Fatalf("2 h at 1 s: %v, want EINVALID", err)
	}
	if _, err := l.ev.Replay(context.Background(), rule, l.hosts["h1"], t0, t0.Add(time.Hour)); err != nil {
		t.Fatalf("1 h at 1 s: %v", err)
	}
}
