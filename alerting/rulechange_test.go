package alerting

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// A rule changed while its alert is Fired: the same alert resolves at the
// next evaluation the new condition does not meet (Azure's behaviour), or
// stays Fired, without a second alert, while it is still met; a rule
// disabled is no longer evaluated and its alert stays Fired.
func TestChangedRuleResolvesOrKeepsFiredAlert(t *testing.T) {
	r := staticRule("r", "Network Out Total", tripcap.AggregationAverage, tripcap.OperatorGreaterThan, 3, "PT1S", "PT5S")
	l := newLab(t, r)
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 0, 10, constant(50))
	got := l.taken()
	if len(got) != 1 || got[0].MonitorCondition != tripcap.ConditionFired {
		t.Fatalf("want one firing: %+v", got)
	}
	fired := got[0].ID

	// Still met under a threshold of 10: it stays Fired, no new alert.
	up := *r
	up.Criteria = tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{
		MetricCriterion: r.Criteria.AllOf[0].Static.MetricCriterion, Operator: tripcap.OperatorGreaterThan, Threshold: 10}}}}
	if err := l.ev.SetRules([]*tripcap.AlertRule{&up}); err != nil {
		t.Fatal(err)
	}
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 10, 15, constant(50))
	if got := l.taken(); len(got) != 0 {
		t.Fatalf("a still-met changed rule made transitions: %+v", got)
	}

	// No longer met under 100: the fired alert resolves at the next evaluation.
	up2 := up
	up2.Criteria = tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{
		MetricCriterion: r.Criteria.AllOf[0].Static.MetricCriterion, Operator: tripcap.OperatorGreaterThan, Threshold: 100}}}}
	if err := l.ev.SetRules([]*tripcap.AlertRule{&up2}); err != nil {
		t.Fatal(err)
	}
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 15, 16, constant(50))
	got = l.taken()
	if len(got) != 1 || got[0].ID != fired || got[0].MonitorCondition != tripcap.ConditionResolved ||
		!got[0].ResolvedAt.Equal(t0.Add(16*time.Second)) || got[0].Condition.AllOf[0].Threshold != 100 {
		t.Fatalf("want the fired alert resolved at 16s under the new threshold: %+v", got)
	}

	// Disabled while Fired: not evaluated, the alert stays Fired.
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 16, 20, constant(500))
	if got := l.taken(); len(got) != 1 || got[0].MonitorCondition != tripcap.ConditionFired {
		t.Fatalf("want a new firing above 100: %+v", got)
	}
	off := up2
	off.Enabled = new(false)
	if err := l.ev.SetRules([]*tripcap.AlertRule{&off}); err != nil {
		t.Fatal(err)
	}
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 20, 30, constant(1))
	if got := l.taken(); len(got) != 0 {
		t.Fatalf("a disabled rule made transitions: %+v", got)
	}
	fired2 := l.ev.Alerts(tripcap.AlertFilter{})
	n := 0
	for _, a := range fired2 {
		if a.MonitorCondition == tripcap.ConditionFired {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("fired alerts after disabling: %d, want the one still Fired", n)
	}
}
