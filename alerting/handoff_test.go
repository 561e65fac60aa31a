package alerting

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/metricstore"
)

// TestResetBaselinesLearnsBackfilledHistory: a replica that attached a
// host mid-life has learnt its baseline from the little it held; once the
// agent's history is backfilled, ResetBaselines makes the baseline learn
// from all of it, and a spike fires that the thin baseline could not judge.
func TestResetBaselinesLearnsBackfilledHistory(t *testing.T) {
	level := func(p int) float64 { return 1000 + noise(7, 20)(p) }
	for _, reset := range []bool{false, true} {
		l := newLab(t, dynamicRule(tripcap.SensitivityMedium, tripcap.OperatorGreaterThan, 1, 1))
		// This replica holds periods 40 and 41 only.
		l.runPeriods(40, 42, level)
		// The agent's history: periods 20 to 39, a second each.
		h := metricstore.SeriesHistory{Key: metricstore.Key{Metric: tripcap.MetricNetworkOutBytes}}
		for p := 20; p < 40; p++ {
			for s := int64(p)*period + 1; s <= int64(p+1)*period; s++ {
				h.Raw = append(h.Raw, metricstore.RawPoint{Sec: t0.Unix() + s, Value: level(p)})
			}
		}
		if _, err := l.store.Backfill("h1", []metricstore.SeriesHistory{h}); err != nil {
			t.Fatal(err)
		}
		l.taken()
		if reset {
			l.ev.ResetBaselines("h1")
		}
		got := l.runPeriods(42, 44, func(p int) float64 {
			if p == 43 {
				return 5000
			}
			return level(p)
		})
		fired := len(got[43]) == 1 && got[43][0].MonitorCondition == tripcap.ConditionFired
		if fired != reset {
			t.Errorf("reset %v: spike transitions %v", reset, periodsOf(got))
		}
	}
}

// TestRestoreHost: the database's Fired alerts replace what the evaluator
// held for the host, and an instance evaluates from after its restored
// alert's last transition on.
func TestRestoreHost(t *testing.T) {
	l := newLab(t, staticRule("r", "Network Out Total", tripcap.AggregationAverage, tripcap.OperatorGreaterThan, 100, "PT1S", "PT5S"))
	l.addHost("h2", nil)
	high := func(int64) (float64, bool) { return 500, true }
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 0, 10, high)
	got := l.taken()
	if len(got) != 1 || got[0].MonitorCondition != tripcap.ConditionFired {
		t.Fatalf("transitions %+v", got)
	}
	mine := got[0]
	// Another replica fired h1's alert at second 20 (it resolved this
	// one meanwhile): the database holds it, with one for another host.
	other := mine
	other.ID, other.Condition.Time = "elsewhere", t0.Add(20*time.Second)
	h2 := mine
	h2.ID, h2.HostID = "h2-alert", "h2"
	l.ev.RestoreHost("h1", []tripcap.Alert{other, h2})
	if _, err := l.ev.Alert(mine.ID); err == nil {
		t.Error("this evaluator's own Fired alert survived the restore")
	}
	if _, err := l.ev.Alert("h2-alert"); err == nil {
		t.Error("another host's alert was restored")
	}
	// The breach goes on: no new alert, and the seconds up to 20, judged
	// elsewhere, are not judged here.
	before := l.ev.Stats().Evaluations
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 10, 25, high)
	if got := l.taken(); len(got) != 0 {
		t.Fatalf("after the restore: %+v", got)
	}
	if n := l.ev.Stats().Evaluations - before; n != 5 {
		t.Errorf("%d evaluations after the restore, want seconds 21 to 25", n)
	}
	// It resolves the restored alert.
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 25, 35, func(int64) (float64, bool) { return 0, true })
	if got := l.taken(); len(got) != 1 || got[0].ID != "elsewhere" || got[0].MonitorCondition != tripcap.ConditionResolved {
		t.Fatalf("resolution: %+v", got)
	}
}

// TestRestoreHosts: one call restores several hosts, each from its own
// list (an empty one drops what the evaluator held as Fired), and leaves
// other hosts' alerts and cached instance lists alone.
func TestRestoreHosts(t *testing.T) {
	l := newLab(t, staticRule("r", "Network Out Total", tripcap.AggregationAverage, tripcap.OperatorGreaterThan, 100, "PT1S", "PT5S"))
	l.addHost("h2", nil)
	l.addHost("h3", nil)
	high := func(int64) (float64, bool) { return 500, true }
	mine := map[string]tripcap.Alert{}
	for _, h := range []string{"h1", "h2", "h3"} {
		l.feed(h, tripcap.MetricNetworkOutBytes, "", 0, 10, high)
		got := l.taken()
		if len(got) != 1 || got[0].MonitorCondition != tripcap.ConditionFired {
			t.Fatalf("%s: transitions %+v", h, got)
		}
		mine[h] = got[0]
	}
	other := mine["h1"]
	other.ID, other.Condition.Time = "elsewhere", t0.Add(20*time.Second)
	stray := mine["h3"]
	stray.ID = "stray" // h3's, listed under h1: ignored
	l.ev.RestoreHosts(map[string][]tripcap.Alert{"h1": {other, stray}, "h2": nil})
	for _, h := range []string{"h1", "h2"} {
		if _, err := l.ev.Alert(mine[h].ID); err == nil {
			t.Errorf("%s: this evaluator's own Fired alert survived the restore", h)
		}
	}
	if _, err := l.ev.Alert("stray"); err == nil {
		t.Error("an alert listed under another host was restored")
	}
	if _, err := l.ev.Alert(mine["h3"].ID); err != nil {
		t.Errorf("h3, not restored, lost its alert: %v", err)
	}
	l.ev.mu.Lock()
	c3, c1 := l.ev.hosts["h3"], l.ev.hosts["h1"]
	l.ev.mu.Unlock()
	if c3.stale || c3.gen != l.ev.gen || !c1.stale {
		t.Errorf("cache: h3 stale %v gen %d (evaluator %d), h1 stale %v", c3.stale, c3.gen, l.ev.gen, c1.stale)
	}
	// h1 goes on with the restored alert and resolves it; h2 fires anew.
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 10, 25, high)
	l.feed("h2", tripcap.MetricNetworkOutBytes, "", 10, 12, high)
	got := l.taken()
	if len(got) != 1 || got[0].HostID != "h2" || got[0].MonitorCondition != tripcap.ConditionFired {
		t.Fatalf("after the restore: %+v", got)
	}
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 25, 35, func(int64) (float64, bool) { return 0, true })
	if got := l.taken(); len(got) != 1 || got[0].ID != "elsewhere" || got[0].MonitorCondition != tripcap.ConditionResolved {
		t.Fatalf("resolution: %+v", got)
	}
}
