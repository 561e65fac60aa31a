package alerting

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/metricstore"
)

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday, midnight UTC

// lab is a real metric store whose append hook evaluates synchronously, so
// each test sees transitions the moment the point that causes them lands.
type lab struct {
	t     *testing.T
	now   atomic.Int64
	store *metricstore.Store
	ev    *Evaluator
	hosts map[string]*tripcap.Host

	mu          sync.Mutex
	transitions []tripcap.Alert
	// store, when set, is what OnTransition returns (a replica's store).
	storeAlert func(a tripcap.Alert) error
}

func newLab(t *testing.T, rules ...*tripcap.AlertRule) *lab {
	t.Helper()
	l := &lab{t: t, hosts: map[string]*tripcap.Host{}}
	l.now.Store(t0.Unix())
	clock := func() time.Time { return time.Unix(l.now.Load(), 0).UTC() }
	st, err := metricstore.New(metricstore.Config{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	l.store = st
	seq := 0
	ev, err := New(Config{
		Source: st,
		Hosts: func(_ context.Context, id string) (*tripcap.Host, error) {
			if h := l.hosts[id]; h != nil {
				return h, nil
			}
			return nil, tripcap.Errorf(tripcap.ENOTFOUND, "host %s", id)
		},
		OnTransition: func(_ context.Context, a tripcap.Alert) error {
			l.mu.Lock()
			l.transitions = append(l.transitions, a)
			store := l.storeAlert
			l.mu.Unlock()
			if store != nil {
				return store(a)
			}
			return nil
		},
		NewID: func() string { seq++; return fmt.Sprintf("alert-%d", seq) },
		Now:   clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	l.ev = ev
	st.OnAppend(func(host string, newest time.Time) {
		if err := ev.EvaluateHost(context.Background(), host, newest); err != nil {
			t.Errorf("EvaluateHost: %v", err)
		}
	})
	l.addHost("h1", nil)
	if err := ev.SetRules(rules); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *lab) addHost(id string, labels map[string]string) {
	l.hosts[id] = &tripcap.Host{ID: id, Name: "vm-" + id, Location: "westeurope", Labels: labels, SubscriptionID: "sub", ResourceGroup: "rg"}
}

// feed appends one point per second in (from, to] (seconds after t0) for
// which f gives a value, as one batch, with the clock at to.
func (l *lab) feed(host string, m tripcap.MetricID, iface string, from, to int64, f func(sec int64) (float64, bool)) {
	l.t.Helper()
	if l.now.Load() < t0.Unix()+to {
		l.now.Store(t0.Unix() + to)
	}
	var b tripcap.MetricBatch
	for s := from + 1; s <= to; s++ {
		if v, ok := f(s); ok {
			b.Points = append(b.Points, tripcap.MetricPoint{Host: host, Metric: m, Interface: iface, Time: t0.Add(time.Duration(s) * time.Second), Value: v})
		}
	}
	if _, err := l.store.Append(b); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) taken() []tripcap.Alert {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.transitions
	l.transitions = nil
	return out
}

func staticRule(id string, m string, agg tripcap.Aggregation, op tripcap.Operator, threshold float64, freq, window string) *tripcap.AlertRule {
	return &tripcap.AlertRule{ID: id, Name: "rule-" + id, Scopes: []tripcap.Scope{tripcap.ScopeAll}, EvaluationFrequency: freq, WindowSize: window,
		Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{
			MetricCriterion: tripcap.MetricCriterion{MetricName: m, TimeAggregation: agg}, Operator: op, Threshold: threshold}}}}}
}

func constant(v float64) func(int64) (float64, bool) {
	return func(int64) (float64, bool) { return v, true }
}

// TestEveryAggregationAndOperator fires (or not) on a 10-second window of
// 1..10 for each aggregation, each operator and a threshold just below, at
// and just above the window's value; the expectations are written out, not
// computed with the code under test.
func TestEveryAggregationAndOperator(t *testing.T) {
	values := map[tripcap.Aggregation]float64{
		tripcap.AggregationAverage: 5.5, tripcap.AggregationMinimum: 1, tripcap.AggregationMaximum: 10,
		tripcap.AggregationTotal: 55, tripcap.AggregationCount: 10,
	}
	// want[op] for threshold = value-1, value, value+1.
	want := map[tripcap.Operator][3]bool{
		tripcap.OperatorEquals:             {false, true, false},
		tripcap.OperatorNotEquals:          {true, false, true},
		tripcap.OperatorGreaterThan:        {true, false, false},
		tripcap.OperatorGreaterThanOrEqual: {true, true, false},
		tripcap.OperatorLessThan:           {false, false, true},
		tripcap.OperatorLessThanOrEqual:    {false, true, true},
	}
	for agg, value := range values {
		for op, w := range want {
			for i, delta := range []float64{-1, 0, 1} {
				t.Run(fmt.Sprintf("%s/%s/%+v", agg, op, delta), func(t *testing.T) {
					l := newLab(t, staticRule("r", "TCP Segments Sent", agg, op, value+delta, "PT10S", "PT10S"))
					l.feed("h1", tripcap.MetricTCPSegmentsSent, "", 0, 10, func(s int64) (float64, bool) { return float64(s), true })
					got := l.taken()
					if (len(got) == 1) != w[i] || len(got) > 1 {
						t.Fatalf("transitions %+v; want fired=%v", got, w[i])
					}
					if len(got) == 0 {
						return
					}
					a := got[0]
					c := a.Condition.AllOf[0]
					if a.MonitorCondition != tripcap.ConditionFired || c.MetricValue != value || c.Threshold != value+delta ||
						!a.Condition.WindowStartTime.Equal(t0) || !a.Condition.WindowEndTime.Equal(t0.Add(10*time.Second)) ||
						c.Operator != op || c.TimeAggregation != agg || c.MetricName != "TCP Segments Sent" {
						t.Fatalf("alert %+v", a)
					}
					if a.HostID != "h1" || a.TargetResourceID != tripcap.VMResourceID("sub", "rg", "vm-h1") || a.Severity != 3 {
						t.Fatalf("alert target %+v", a)
					}
				})
			}
		}
	}
}

// TestMissingDataIsNotZero: an empty or sparse window neither fires (a
// LessThan rule would, were missing points zeros) nor resolves.
func TestMissingDataIsNotZero(t *testing.T) {
	l := newLab(t, staticRule("r", "Network Out Total", tripcap.AggregationTotal, tripcap.OperatorLessThan, 100, "PT10S", "PT10S"))
	// The host reports another metric only: its clock advances, this series has no data.
	l.feed("h1", tripcap.MetricInboundFlows, "", 0, 60, constant(1))
	if got := l.taken(); len(got) != 0 {
		t.Fatalf("fired on an empty window: %+v", got)
	}
	// 7 of 10 seconds: below the 80% coverage, still no data.
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 60, 70, func(s int64) (float64, bool) { return 1, s%10 < 7 })
	if got := l.taken(); len(got) != 0 {
		t.Fatalf("fired on a sparse window: %+v", got)
	}
	// A full window of low values fires.
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 70, 80, constant(1))
	got := l.taken()
	if len(got) != 1 || got[0].Condition.AllOf[0].MetricValue != 10 {
		t.Fatalf("want one firing at 10: %+v", got)
	}
	// The agent goes quiet for a minute (other metrics still come): the
	// alert stays fired, nothing resolves.
	l.feed("h1", tripcap.MetricInboundFlows, "", 80, 140, constant(1))
	if got := l.taken(); len(got) != 0 {
		t.Fatalf("transition during a gap: %+v", got)
	}
	if a, _ := l.ev.Alert("alert-1"); a.MonitorCondition != tripcap.ConditionFired {
		t.Fatalf("alert after gap: %+v", a)
	}
	// Data shows the condition cleared: resolved, once.
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 140, 160, constant(1000))
	got = l.taken()
	if len(got) != 1 || got[0].MonitorCondition != tripcap.ConditionResolved || got[0].ID != "alert-1" {
		t.Fatalf("want alert-1 resolved: %+v", got)
	}
}

func TestFiredResolvedHistory(t *testing.T) {
	l := newLab(t, staticRule("r", "Network Out Total", tripcap.AggregationAverage, tripcap.OperatorGreaterThan, 3, "PT1S", "PT5S"))
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 0, 10, constant(1))
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 10, 11, constant(100)) // avg of 1,1,1,1,100 = 20.8
	got := l.taken()
	if len(got) != 1 || got[0].MonitorCondition != tripcap.ConditionFired || !got[0].FiredAt.Equal(t0.Add(11*time.Second)) {
		t.Fatalf("want a firing at 11s: %+v", got)
	}
	if v := got[0].Condition.AllOf[0].MetricValue; math.Abs(v-20.8) > 1e-9 {
		t.Fatalf("metricValue %v", v)
	}
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 11, 20, constant(1))
	got = l.taken()
	// The 100 leaves the window at 16s.
	if len(got) != 1 || got[0].MonitorCondition != tripcap.ConditionResolved || !got[0].ResolvedAt.Equal(t0.Add(16*time.Second)) {
		t.Fatalf("want a resolution at 16s: %+v", got)
	}
	a, err := l.ev.Alert(got[0].ID)
	if err != nil || len(a.History) != 2 || a.History[0].MonitorCondition != tripcap.ConditionFired || a.History[1].MonitorCondition != tripcap.ConditionResolved ||
		a.History[1].AllOf[0].MetricValue != 1 || !a.History[1].WindowStartTime.Equal(t0.Add(11*time.Second)) {
		t.Fatalf("history %+v, %v", a.History, err)
	}
	if list := l.ev.Alerts(tripcap.AlertFilter{}); len(list) != 1 {
		t.Fatalf("Alerts = %+v", list)
	}
	// Without autoMitigate nothing resolves: the clear releases the alert,
	// still Fired (stored so, for the replicas' fence), and a new breach is
	// a new alert.
	r := staticRule("r2", "Network Out Total", tripcap.AggregationMaximum, tripcap.OperatorGreaterThan, 3, "PT1S", "PT1S")
	r.AutoMitigate = new(bool)
	l2 := newLab(t, r)
	l2.feed("h1", tripcap.MetricNetworkOutBytes, "", 0, 1, constant(10))
	l2.feed("h1", tripcap.MetricNetworkOutBytes, "", 1, 5, constant(1))
	l2.feed("h1", tripcap.MetricNetworkOutBytes, "", 5, 6, constant(10))
	got = l2.taken()
	if len(got) != 3 || got[0].ID != got[1].ID || got[0].ID == got[2].ID || got[0].Released || !got[1].Released || got[2].Released {
		t.Fatalf("autoMitigate false: %+v", got)
	}
	for _, a := range got {
		if a.MonitorCondition != tripcap.ConditionFired {
			t.Fatalf("autoMitigate false: %+v", got)
		}
	}
}

// TestScopesSplitPerHost: each host in scope is its own instance.
func TestScopesSplitPerHost(t *testing.T) {
	r := staticRule("r", "Inbound Flows", tripcap.AggregationMaximum, tripcap.OperatorGreaterThan, 5, "PT1S", "PT1S")
	r.Scopes = []tripcap.Scope{"label:tier=web"}
	l := newLab(t, r)
	l.addHost("h2", map[string]string{"tier": "web"})
	l.addHost("h3", map[string]string{"tier": "web"})
	for _, h := range []string{"h1", "h2", "h3"} {
		l.feed(h, tripcap.MetricInboundFlows, "", 0, 1, constant(10))
	}
	got := l.taken()
	if len(got) != 2 || got[0].HostID == got[1].HostID || got[0].HostID == "h1" || got[1].HostID == "h1" {
		t.Fatalf("want h2 and h3: %+v", got)
	}
	if l.ev.Instances() != 2 {
		t.Fatalf("instances %d", l.ev.Instances())
	}
	// Resolving one host leaves the other fired.
	l.feed("h2", tripcap.MetricInboundFlows, "", 1, 2, constant(1))
	got = l.taken()
	if len(got) != 1 || got[0].HostID != "h2" || got[0].MonitorCondition != tripcap.ConditionResolved {
		t.Fatalf("want h2 resolved: %+v", got)
	}
	fired := tripcap.ConditionFired
	if list := l.ev.Alerts(tripcap.AlertFilter{MonitorCondition: &fired}); len(list) != 1 || list[0].HostID != "h3" {
		t.Fatalf("fired alerts %+v", list)
	}
}

func TestInterfaceDimension(t *testing.T) {
	r := staticRule("r", "Network In Total", tripcap.AggregationTotal, tripcap.OperatorGreaterThan, 100, "PT1S", "PT1S")
	r.Criteria.AllOf[0].Static.Dimensions = []tripcap.Dimension{{Name: "interface", Operator: "Exclude", Values: []string{"eth1"}}}
	l := newLab(t, r)
	l.feed("h1", tripcap.MetricNetworkInBytes, "eth0", 0, 1, constant(50))
	l.feed("h1", tripcap.MetricNetworkInBytes, "eth1", 1, 2, constant(500)) // excluded
	if got := l.taken(); len(got) != 0 {
		t.Fatalf("fired on an excluded interface: %+v", got)
	}
	l.feed("h1", tripcap.MetricNetworkInBytes, "eth0", 2, 3, constant(500))
	got := l.taken()
	if len(got) != 1 || fmt.Sprint(got[0].Condition.AllOf[0].Dimensions) != "[{interface eth0}]" {
		t.Fatalf("want eth0 firing: %+v", got)
	}
}

func TestAllOfNeedsEveryCriterion(t *testing.T) {
	r := staticRule("r", "Network Out Total", tripcap.AggregationTotal, tripcap.OperatorGreaterThan, 100, "PT1S", "PT1S")
	r.Criteria.AllOf = append(r.Criteria.AllOf, tripcap.Criterion{Static: &tripcap.StaticCriterion{
		MetricCriterion: tripcap.MetricCriterion{Name: "retrans", MetricName: "tcp_retransmitted_segments", TimeAggregation: tripcap.AggregationTotal},
		Operator:        tripcap.OperatorGreaterThan, Threshold: 0}})
	l := newLab(t, r)
	feedBoth := func(from, to int64, out, retrans float64) {
		var b tripcap.MetricBatch
		for s := from + 1; s <= to; s++ {
			at := t0.Add(time.Duration(s) * time.Second)
			b.Points = append(b.Points, tripcap.MetricPoint{Host: "h1", Metric: tripcap.MetricNetworkOutBytes, Time: at, Value: out},
				tripcap.MetricPoint{Host: "h1", Metric: tripcap.MetricTCPRetransmittedSegment, Time: at, Value: retrans})
		}
		l.now.Store(t0.Unix() + to)
		if _, err := l.store.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	feedBoth(0, 5, 1000, 0)
	if got := l.taken(); len(got) != 0 {
		t.Fatalf("fired with one criterion met: %+v", got)
	}
	feedBoth(5, 6, 1000, 3)
	if got := l.taken(); len(got) != 1 || len(got[0].Condition.AllOf) != 2 || got[0].Condition.AllOf[1].MetricValue != 3 {
		t.Fatalf("want one firing with both values: %+v", got)
	}
}

// TestFiresWithinOnePeriodLive streams points in real time through the
// store hook and Run's workers, as the server does, and measures from the
// append of the breaching second to the transition.
func TestFiresWithinOnePeriodLive(t *testing.T) {
	st, err := metricstore.New(metricstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	fired := make(chan time.Time, 4)
	ev, err := New(Config{Source: st,
		Hosts: func(context.Context, string) (*tripcap.Host, error) { return &tripcap.Host{ID: "h1", Name: "vm1"}, nil },
		OnTransition: func(_ context.Context, a tripcap.Alert) error {
			if a.MonitorCondition == tripcap.ConditionFired {
				fired <- time.Now()
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetRules([]*tripcap.AlertRule{staticRule("r", "Network Out Total", tripcap.AggregationTotal, tripcap.OperatorGreaterThan, 1000, "PT1S", "PT5S")}); err != nil {
		t.Fatal(err)
	}
	st.OnAppend(ev.Notify)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ev.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var breachAt time.Time
	for i := 0; i < 8; i++ {
		now := <-tick.C
		v := 10.0
		if i == 5 {
			v, breachAt = 5000, time.Now()
		}
		if _, err := st.Append(tripcap.MetricBatch{Points: []tripcap.MetricPoint{{Host: "h1", Metric: tripcap.MetricNetworkOutBytes, Time: now, Value: v}}}); err != nil {
			t.Fatal(err)
		}
		if i == 5 {
			select {
			case at := <-fired:
				if d := at.Sub(breachAt); d > time.Second {
					t.Fatalf("fired %v after the breach; the period is 1s", d)
				} else {
					t.Logf("fired %v after the breaching point arrived", d)
				}
				return
			case <-time.After(time.Second):
				t.Fatal("no firing within one evaluation period (1s) of the breach")
			}
		}
	}
}

func TestSetRulesRefusesInvalid(t *testing.T) {
	l := newLab(t)
	r := staticRule("r", "Network Out Total", "Median", tripcap.OperatorGreaterThan, 1, "PT1M", "PT5M")
	err := l.ev.SetRules([]*tripcap.AlertRule{r})
	if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(err.Error(), "criteria.allOf[0].timeAggregation") {
		t.Fatalf("SetRules = %v", err)
	}
	r = staticRule("", "Network Out Total", tripcap.AggregationTotal, tripcap.OperatorGreaterThan, 1, "PT1M", "PT5M")
	if err := l.ev.SetRules([]*tripcap.AlertRule{r}); !strings.Contains(fmt.Sprint(err), "id: required") {
		t.Fatalf("SetRules without id = %v", err)
	}
}

// Dynamic thresholds on synthetic series. Periods are 5 minutes; each
// second of a period carries the period's value. The rules run every 5
// minutes, so they aggregate at Azure's 1-minute grain: a period's Average
// is its per-minute total, perMinute times the per-second level.

const (
	period    = 300
	perMinute = 60
)

func dynamicRule(sens tripcap.Sensitivity, op tripcap.Operator, n, m int) *tripcap.AlertRule {
	return &tripcap.AlertRule{ID: "d", Name: "dyn", Scopes: []tripcap.Scope{tripcap.ScopeAll}, EvaluationFrequency: "PT5M", WindowSize: "PT5M",
		Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Dynamic: &tripcap.DynamicCriterion{
			MetricCriterion: tripcap.MetricCriterion{MetricName: "Network Out Total", TimeAggregation: tripcap.AggregationAverage},
			Operator:        op, AlertSensitivity: sens,
			FailingPeriods: tripcap.FailingPeriods{NumberOfEvaluationPeriods: n, MinFailingPeriodsToAlert: m}}}}}}
}

// run feeds periods [from, to) with level(p) and returns the transitions by period.
func (l *lab) runPeriods(from, to int, level func(p int) float64) map[int][]tripcap.Alert {
	out := map[int][]tripcap.Alert{}
	for p := from; p < to; p++ {
		v := level(p)
		l.feed("h1", tripcap.MetricNetworkOutBytes, "", int64(p)*period, int64(p+1)*period, constant(v))
		if got := l.taken(); len(got) > 0 {
			out[p] = got
		}
	}
	return out
}

func noise(seed uint64, sd float64) func(p int) float64 {
	return func(p int) float64 {
		r := rand.New(rand.NewPCG(seed, uint64(p)))
		return r.NormFloat64() * sd
	}
}

func TestDynamicSteady(t *testing.T) {
	l := newLab(t, dynamicRule(tripcap.SensitivityHigh, tripcap.OperatorGreaterOrLessThan, 1, 1))
	n := noise(1, 20)
	got := l.runPeriods(0, 2*288, func(p int) float64 { return 1000 + n(p) })
	if len(got) != 0 {
		t.Fatalf("steady series alerted: %v", periodsOf(got))
	}
}

func TestDynamicSpike(t *testing.T) {
	n := noise(2, 20)
	level := func(p int) float64 {
		if p == 200 {
			return 5000
		}
		return 1000 + n(p)
	}
	// One failing period in one: fires on the spike, resolves the next period.
	l := newLab(t, dynamicRule(tripcap.SensitivityMedium, tripcap.OperatorGreaterThan, 1, 1))
	got := l.runPeriods(0, 260, level)
	if len(got) != 2 || len(got[200]) != 1 || got[200][0].MonitorCondition != tripcap.ConditionFired ||
		len(got[201]) != 1 || got[201][0].MonitorCondition != tripcap.ConditionResolved {
		t.Fatalf("spike transitions: %v", periodsOf(got))
	}
	c := got[200][0].Condition.AllOf[0]
	if c.MetricValue != 5000*perMinute || c.UpperBound == nil || *c.UpperBound > 1300*perMinute || c.Threshold != *c.UpperBound || c.FailedPeriods != 1 {
		t.Fatalf("spike condition %+v", c)
	}
	// Four of four: a one-period spike is not enough.
	l = newLab(t, dynamicRule(tripcap.SensitivityMedium, tripcap.OperatorGreaterThan, 4, 4))
	if got := l.runPeriods(0, 260, level); len(got) != 0 {
		t.Fatalf("4/4 failing periods fired on a spike: %v", periodsOf(got))
	}
	// The spike did not move the baseline: a second spike later fires too.
	l = newLab(t, dynamicRule(tripcap.SensitivityMedium, tripcap.OperatorGreaterThan, 2, 1))
	got = l.runPeriods(0, 260, func(p int) float64 {
		if p == 200 || p == 230 {
			return 5000
		}
		return 1000 + n(p)
	})
	if len(got[200]) != 1 || len(got[230]) != 1 || got[230][0].MonitorCondition != tripcap.ConditionFired {
		t.Fatalf("second spike: %v", periodsOf(got))
	}
}

func TestDynamicStepChange(t *testing.T) {
	l := newLab(t, dynamicRule(tripcap.SensitivityMedium, tripcap.OperatorGreaterOrLessThan, 1, 1))
	n := noise(3, 20)
	const step = 288
	got := l.runPeriods(0, step+150, func(p int) float64 {
		if p >= step {
			return 2000 + n(p)
		}
		return 1000 + n(p)
	})
	ps := periodsOf(got)
	if len(got) != 2 || len(got[step]) != 1 || got[step][0].MonitorCondition != tripcap.ConditionFired {
		t.Fatalf("step change: want a firing at the step and one resolution: %v", ps)
	}
	var resolvedAt int
	for p, as := range got {
		if as[0].MonitorCondition == tripcap.ConditionResolved {
			resolvedAt = p
		}
	}
	// The baseline adapts to the new level once it is most of the recent history.
	if resolvedAt <= step || resolvedAt > step+recentCap/2+2 {
		t.Fatalf("resolved at period %d; want within %d periods of the step", resolvedAt, recentCap/2+2)
	}
	t.Logf("fired at the step (period %d), resolved %d periods later", step, resolvedAt-step)
}

func TestDynamicDailyCycle(t *testing.T) {
	l := newLab(t, dynamicRule(tripcap.SensitivityMedium, tripcap.OperatorGreaterOrLessThan, 1, 1))
	n := noise(4, 20)
	cycle := func(p int) float64 {
		hours := float64(p*period) / 3600
		return 1000 + 500*math.Sin(2*math.Pi*hours/24) + n(p)
	}
	// Two days to learn the cycle; days three and four must be quiet.
	learning := l.runPeriods(0, 2*288, cycle)
	quiet := l.runPeriods(2*288, 4*288, cycle)
	if len(quiet) != 0 {
		t.Fatalf("daily cycle alerted after two days of learning: %v", periodsOf(quiet))
	}
	t.Logf("transitions while learning (days 1-2): %d", len(learning))
	// Day five, 18:00 (the trough, ~500): a level normal at other hours of
	// the day (1100) is abnormal at this hour, and fires.
	anomaly := 4*288 + 18*12
	got := l.runPeriods(4*288, anomaly+3, func(p int) float64 {
		if p >= anomaly {
			return 1100
		}
		return cycle(p)
	})
	if len(got) != 1 || len(got[anomaly]) != 1 || got[anomaly][0].MonitorCondition != tripcap.ConditionFired {
		t.Fatalf("anomaly at the trough: %v", periodsOf(got))
	}
	c := got[anomaly][0].Condition.AllOf[0]
	t.Logf("anomaly 1100 at 18:00 against band [%.0f, %.0f]", *c.LowerBound, *c.UpperBound)
	if *c.UpperBound > 800*perMinute {
		t.Fatalf("band at the trough is not seasonal: [%v, %v]", *c.LowerBound, *c.UpperBound)
	}
}

func TestDynamicIgnoreDataBefore(t *testing.T) {
	r := dynamicRule(tripcap.SensitivityMedium, tripcap.OperatorGreaterThan, 1, 1)
	cut := t0.Add(100 * period * time.Second)
	r.Criteria.AllOf[0].Dynamic.IgnoreDataBefore = &cut
	l := newLab(t, r)
	n := noise(5, 20)
	// Before the cut the level is high; it must not teach the baseline.
	got := l.runPeriods(0, 100+minRecent-1, func(p int) float64 {
		if p < 100 {
			return 5000 + n(p)
		}
		return 1000 + n(p)
	})
	if len(got) != 0 {
		t.Fatalf("alerted before enough data after ignoreDataBefore: %v", periodsOf(got))
	}
	got = l.runPeriods(100+minRecent-1, 100+minRecent+20, func(p int) float64 {
		if p == 100+minRecent+10 {
			return 3000 // below the ignored level, far above the learned one
		}
		return 1000 + n(p)
	})
	if len(got[100+minRecent+10]) != 1 {
		t.Fatalf("want a firing on 3000 against a baseline of ~1000: %v", periodsOf(got))
	}
}

func periodsOf(m map[int][]tripcap.Alert) []string {
	var out []string
	for p := 0; len(out) < len(m) && p < 100000; p++ {
		for _, a := range m[p] {
			out = append(out, fmt.Sprintf("%d:%s", p, a.MonitorCondition))
		}
	}
	return out
}

// BenchmarkEvaluateInstance measures one (rule, host) evaluation: a static
// rule over a 5-minute window of 1-second points, and a dynamic one with
// four failing periods, at 1-second frequency.
func BenchmarkEvaluateInstance(b *testing.B) {
	for _, tc := range []struct {
		name string
		rule *tripcap.AlertRule
	}{
		{"static-PT5M", staticRule("s", "Network Out Total", tripcap.AggregationAverage, tripcap.OperatorGreaterThan, 1e12, "PT1S", "PT5M")},
		{"dynamic-PT1M-4periods", func() *tripcap.AlertRule {
			r := dynamicRule(tripcap.SensitivityMedium, tripcap.OperatorGreaterOrLessThan, 4, 4)
			r.EvaluationFrequency, r.WindowSize = "PT1S", "PT1M"
			return r
		}()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			st, _ := metricstore.New(metricstore.Config{Now: func() time.Time { return t0.Add(time.Hour) }})
			var batch tripcap.MetricBatch
			for s := 1; s <= 3600; s++ {
				batch.Points = append(batch.Points, tripcap.MetricPoint{Host: "h1", Metric: tripcap.MetricNetworkOutBytes, Time: t0.Add(time.Duration(s) * time.Second), Value: float64(1000 + s%7)})
			}
			if _, err := st.Append(batch); err != nil {
				b.Fatal(err)
			}
			ev, _ := New(Config{Source: st, Hosts: func(context.Context, string) (*tripcap.Host, error) { return &tripcap.Host{ID: "h1"}, nil }})
			if err := ev.SetRules([]*tripcap.AlertRule{tc.rule}); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			// Warm up: the first evaluation learns the dynamic baseline.
			_ = ev.EvaluateHost(ctx, "h1", t0.Add(1800*time.Second))
			in := ev.instances[instanceKey{tc.rule.ID, "h1"}]
			h := &tripcap.Host{ID: "h1"}
			i := 0
			for b.Loop() {
				i++
				// evaluateAt is one evaluation; times cycle through the data.
				in.mu.Lock()
				ev.evaluateAt(in, h, t0.Unix()+int64(1800+i%1800))
				in.mu.Unlock()
			}
		})
	}
}

// TestAzureGrainThresholdMeansTheSameBytes: the seed's rule shape (Average
// of Network Out Total, every minute over 5 minutes) with a threshold
// written for Azure, where each point is a minute's bytes, fires on the
// traffic Azure's rule would fire on: 20 kB/s is 1.2 MB a minute, above a
// 1 MB threshold; 10 kB/s (600 kB a minute) is below it. A mean of
// 1-second points (20 kB) would never reach 1 MB.
func TestAzureGrainThresholdMeansTheSameBytes(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		fire bool
	}{{20_000, true}, {10_000, false}} {
		l := newLab(t, staticRule("seed", "Network Out Total", tripcap.AggregationAverage, tripcap.OperatorGreaterThan, 1_000_000, "PT1M", "PT5M"))
		l.feed("h1", tripcap.MetricNetworkOutBytes, "", 0, 10*60, constant(tc.rate))
		got := l.taken()
		if tc.fire != (len(got) == 1 && got[0].MonitorCondition == tripcap.ConditionFired) {
			t.Fatalf("%.0f B/s: transitions %+v; want fired=%v", tc.rate, got, tc.fire)
		}
		if tc.fire {
			if v := got[0].Condition.AllOf[0].MetricValue; v != tc.rate*60 {
				t.Fatalf("metricValue %v, want the per-minute total %v", v, tc.rate*60)
			}
		}
	}
	// At a 1-second frequency the grain is the second: the same threshold is
	// a per-second mean.
	r := staticRule("fast", "Network Out Total", tripcap.AggregationAverage, tripcap.OperatorGreaterThan, 1_000_000, "PT1S", "PT5M")
	if r.Grain() != time.Second {
		t.Fatalf("grain of a PT1S rule = %s, want 1s", r.Grain())
	}
	l := newLab(t, r)
	l.feed("h1", tripcap.MetricNetworkOutBytes, "", 0, 10*60, constant(20_000))
	if got := l.taken(); len(got) != 0 {
		t.Fatalf("a PT1S rule fired on a 20 kB/s mean against 1 MB: %+v", got)
	}
}

// TestEvaluationLagCounted: every evaluation Run does is counted in
// Stats' lag histogram once per take, from the first notification (however
// many coalesced into it) to the evaluation's end.
func TestEvaluationLagCounted(t *testing.T) {
	st, err := metricstore.New(metricstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	ev, err := New(Config{Source: st, Workers: 1,
		Hosts: func(context.Context, string) (*tripcap.Host, error) {
			<-release // the first evaluation waits, so notifications pile up behind it
			return &tripcap.Host{ID: "h1", Name: "vm1"}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ev.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	now := time.Now()
	ev.Notify("h1", now)
	time.Sleep(50 * time.Millisecond) // taken: busy in Hosts
	for i := range 5 {
		ev.Notify("h1", now.Add(time.Duration(i+1)*time.Second)) // coalesce into one more take
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for ev.Stats().EvaluationLag.Count < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("lag counted %d times, want 2", ev.Stats().EvaluationLag.Count)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	lag := ev.Stats().EvaluationLag
	if lag.Count != 2 {
		t.Fatalf("lag counted %d times, want 2 (the second take coalesces five notifications)", lag.Count)
	}
	// Both waited for the release: at least 100 ms each, well under 5 s.
	if lag.SumSeconds < 0.2 || lag.SumSeconds > 10 {
		t.Fatalf("lag sum %.3f s, want about 0.25 s", lag.SumSeconds)
	}
}
