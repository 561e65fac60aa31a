package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// alertingTests are the AlertStore subtests Run registers.
var alertingTests = []struct {
	name string
	fn   func(t *testing.T, s tripcap.Store)
}{
	{"Alerting/RuleRoundTrip", testAlertRuleRoundTrip},
	{"Alerting/RuleNames", testAlertRuleNames},
	{"Alerting/RuleDelete", testAlertRuleDelete},
	{"Alerting/RuleUpdate", testAlertRuleUpdate},
	{"Alerting/ActionGroupUpdate", testActionGroupUpdate},
	{"Alerting/Silences", testSilences},
	{"Alerting/ActionGroupRoundTrip", testActionGroupRoundTrip},
	{"Alerting/ActionGroupNames", testActionGroupNames},
	{"Alerting/AlertUpsert", testAlertUpsert},
	{"Alerting/AlertFind", testAlertFind},
	{"Alerting/FenceActive", testFenceActive},
	{"Alerting/FenceRace", testFenceRace},
	{"Alerting/Deliveries", testDeliveries},
	{"Alerting/DeliveriesConcurrent", testDeliveriesConcurrent},
	{"Alerting/InvalidInput", testAlertingInvalid},
}

// fullRule returns a rule with every field set, one criterion of each kind,
// times outside UTC.
func fullRule(name string) *tripcap.AlertRule {
	ignore := base.Add(-48 * time.Hour)
	return &tripcap.AlertRule{
		ID:                  tripcap.NewID(),
		Name:                name,
		Description:         "egress ✓ \"quoted\" <b>",
		Severity:            new(1),
		Enabled:             new(false),
		Scopes:              []tripcap.Scope{tripcap.ScopeAll, "label:role=frontend", tripcap.Scope(tripcap.VMResourceID("Sub-0001", "RG-Web", "web-1"))},
		EvaluationFrequency: "PT1M",
		WindowSize:          "PT5M",
		Criteria: tripcap.Criteria{ODataType: tripcap.CriteriaMultipleResource, AllOf: []tripcap.Criterion{
			{Static: &tripcap.StaticCriterion{
				MetricCriterion: tripcap.MetricCriterion{CriterionType: tripcap.StaticThresholdCriterion, Name: "Metric1", MetricName: "Network Out Total",
					MetricNamespace: tripcap.MetricNamespace, TimeAggregation: tripcap.AggregationAverage,
					Dimensions: []tripcap.Dimension{{Name: "interface", Operator: "Include", Values: []string{"eth0", "eth1"}}}},
				Operator: tripcap.OperatorGreaterThan, Threshold: 3.25,
			}},
			{Dynamic: &tripcap.DynamicCriterion{
				MetricCriterion: tripcap.MetricCriterion{CriterionType: tripcap.DynamicThresholdCriterion, Name: "Metric2", MetricName: "TCP Segments Sent",
					MetricNamespace: tripcap.MetricNamespace, TimeAggregation: tripcap.AggregationTotal,
					Dimensions: []tripcap.Dimension{{Name: "interface", Operator: "Exclude", Values: []string{"docker0"}}}},
				Operator: tripcap.OperatorGreaterOrLessThan, AlertSensitivity: tripcap.SensitivityHigh,
				FailingPeriods:   tripcap.FailingPeriods{NumberOfEvaluationPeriods: 4, MinFailingPeriodsToAlert: 3},
				IgnoreDataBefore: &ignore,
			}},
		}},
		AutoMitigate:         new(false),
		Actions:              []tripcap.Action{{ActionGroupID: tripcap.NewID(), WebHookProperties: map[string]string{"team": "net", "runbook": "https://example.invalid/rb"}}},
		TargetResourceRegion: "westeurope",
		AzurePlacement:       tripcap.AzurePlacement{SubscriptionID: "Sub-0001", ResourceGroup: "RG-Monitor", Tags: map[string]string{"team": "net"}},
		CreatedAt:            base,
		UpdatedAt:            base.Add(time.Second),
		Version:              1, // what CreateAlertRule sets
	}
}

// fullGroup returns an action group with every field set.
func fullGroup(name string) *tripcap.ActionGroup {
	return &tripcap.ActionGroup{
		ID:             tripcap.NewID(),
		Name:           name,
		GroupShortName: "ops",
		Enabled:        new(true),
		EmailReceivers: []tripcap.EmailReceiver{{Name: "oncall", EmailAddress: "oncall@example.invalid", UseCommonAlertSchema: true}},
		WebhookReceivers: []tripcap.WebhookReceiver{{Name: "fn", ServiceURI: "https://fn.example.invalid/api/alert?code=k", UseCommonAlertSchema: true,
			FunctionName: "alert", FunctionAppResourceID: "/subscriptions/Sub-0001/resourceGroups/RG-Fn/providers/Microsoft.Web/sites/fn"}},
		ResponderReceivers: []tripcap.ResponderReceiver{{Name: "capture", ResponderID: "r1",
			FunctionAppResourceID: "/subscriptions/Sub-0001/resourceGroups/RG-Fn/providers/Microsoft.Web/sites/pcap", UseCommonAlertSchema: true}},
		AzurePlacement:   tripcap.AzurePlacement{SubscriptionID: "Sub-0001", ResourceGroup: "RG-Monitor", Tags: map[string]string{"team": "net"}},
		SigningSecret:    "0123456789abcdef0123456789abcdef",
		SigningSecretSet: true,
		CreatedAt:        base,
		UpdatedAt:        base.Add(time.Second),
		Version:          1, // what CreateActionGroup sets
	}
}

// fullAlert returns a resolved alert with every field set.
func fullAlert(ruleID, hostID string, fired time.Time) *tripcap.Alert {
	lower, upper := 390.5, 617.25
	eval := func(c tripcap.MonitorCondition, at time.Time, v float64, met bool) tripcap.AlertEvaluation {
		return tripcap.AlertEvaluation{MonitorCondition: c, Time: at, WindowStartTime: at.Add(-5 * time.Minute), WindowEndTime: at,
			AllOf: []tripcap.ConditionResult{{
				Name: "Metric1", MetricName: "Network Out Total", MetricNamespace: tripcap.MetricNamespace, Metric: tripcap.MetricNetworkOutBytes,
				Operator: tripcap.OperatorGreaterThan, TimeAggregation: tripcap.AggregationAverage,
				Dimensions:  []tripcap.DimensionValue{{Name: "interface", Value: "eth0"}},
				MetricValue: v, Threshold: 3, Met: met, AlertSensitivity: tripcap.SensitivityHigh,
				FailingPeriods: &tripcap.FailingPeriods{NumberOfEvaluationPeriods: 4, MinFailingPeriodsToAlert: 3},
				LowerBound:     &lower, UpperBound: &upper, FailedPeriods: 3,
			}}}
	}
	fe, re := eval(tripcap.ConditionFired, fired, 1234.5, true), eval(tripcap.ConditionResolved, fired.Add(time.Minute), 0.5, false)
	resolved := fired.Add(time.Minute)
	return &tripcap.Alert{
		ID: tripcap.NewID(), RuleID: ruleID, RuleName: "high-egress", Description: "egress above 3", Severity: 1,
		HostID: hostID, HostName: "web-1", TargetResourceID: tripcap.VMResourceID("Sub-0001", "RG-Web", "web-1"),
		SubscriptionID: "Sub-0001", ResourceGroup: "RG-Web", Location: "westeurope",
		ConditionType: tripcap.ConditionTypeStatic, WindowSize: "PT5M", MonitorCondition: tripcap.ConditionResolved,
		FiredAt: fired, ResolvedAt: &resolved, Condition: re, History: []tripcap.AlertEvaluation{fe, re},
		Actions: []tripcap.Action{{ActionGroupID: tripcap.NewID(), WebHookProperties: map[string]string{"k": "v"}}},
	}
}

// firedAlert returns a minimal fired alert.
func firedAlert(ruleID, hostID string, fired time.Time) *tripcap.Alert {
	ev := tripcap.AlertEvaluation{MonitorCondition: tripcap.ConditionFired, Time: fired, WindowStartTime: fired.Add(-time.Minute), WindowEndTime: fired}
	return &tripcap.Alert{ID: tripcap.NewID(), RuleID: ruleID, RuleName: "r", HostID: hostID, HostName: "h", Severity: 3,
		MonitorCondition: tripcap.ConditionFired, FiredAt: fired, Condition: ev, History: []tripcap.AlertEvaluation{ev}}
}

// utcCopy returns a deep copy of v (a pointer) with every time in UTC, as
// stores return them.
func utcCopy[T any](v *T) *T {
	c := deepCopy(reflect.ValueOf(v)).Interface().(*T)
	return c
}

func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		c := reflect.New(v.Elem().Type())
		c.Elem().Set(deepCopy(v.Elem()))
		return c
	case reflect.Struct:
		if t, ok := v.Interface().(time.Time); ok {
			return reflect.ValueOf(t.UTC())
		}
		c := reflect.New(v.Type()).Elem()
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				c.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
		return c
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			c.Index(i).Set(deepCopy(v.Index(i)))
		}
		return c
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			c.SetMapIndex(it.Key(), deepCopy(it.Value()))
		}
		return c
	}
	return v
}

func testAlertRuleRoundTrip(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	r := fullRule("High-Egress")
	want := utcCopy(r)
	must(t, s.CreateAlertRule(ctx, r))
	got, err := s.FindAlertRule(ctx, tripcap.AlertRuleFilter{ID: &r.ID})
	must(t, err)
	wantEqual(t, "rule by id", got, want)
	got, err = s.FindAlertRule(ctx, tripcap.AlertRuleFilter{Name: new("high-EGRESS")})
	must(t, err)
	wantEqual(t, "rule by name in another case", got, want)

	// Zero times become now.
	before := time.Now().Add(-time.Second)
	m := &tripcap.AlertRule{ID: tripcap.NewID(), Name: "minimal"}
	must(t, s.CreateAlertRule(ctx, m))
	got, err = s.FindAlertRule(ctx, tripcap.AlertRuleFilter{ID: &m.ID})
	must(t, err)
	if got.CreatedAt.Before(before) || !got.UpdatedAt.Equal(got.CreatedAt) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("minimal rule times: created %v updated %v", got.CreatedAt, got.UpdatedAt)
	}
}

func testAlertRuleNames(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	for _, n := range []string{"b-rule", "A-rule", "c-rule"} {
		must(t, s.CreateAlertRule(ctx, fullRule(n)))
	}
	wantCode(t, s.CreateAlertRule(ctx, fullRule("B-RULE")), tripcap.ECONFLICT)
	r := fullRule("d-rule")
	must(t, s.CreateAlertRule(ctx, r))
	dup := fullRule("e-rule")
	dup.ID = r.ID
	wantCode(t, s.CreateAlertRule(ctx, dup), tripcap.ECONFLICT)
	all, err := s.FindAlertRules(ctx, tripcap.AlertRuleFilter{})
	must(t, err)
	var names []string
	for _, r := range all {
		names = append(names, r.Name)
	}
	wantEqual(t, "rules by name", names, []string{"A-rule", "b-rule", "c-rule", "d-rule"})
	_, err = s.FindAlertRule(ctx, tripcap.AlertRuleFilter{Name: new("nope")})
	wantCode(t, err, tripcap.ENOTFOUND)
	none, err := s.FindAlertRules(ctx, tripcap.AlertRuleFilter{Name: new("nope")})
	must(t, err)
	if len(none) != 0 {
		t.Fatalf("listing an unknown name: %d rules", len(none))
	}
}

func testAlertRuleDelete(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	r := fullRule("doomed")
	must(t, s.CreateAlertRule(ctx, r))
	a := firedAlert(r.ID, tripcap.NewID(), base)
	must(t, s.UpsertAlert(ctx, a))
	must(t, s.DeleteAlertRule(ctx, r.ID))
	_, err := s.FindAlertRule(ctx, tripcap.AlertRuleFilter{ID: &r.ID})
	wantCode(t, err, tripcap.ENOTFOUND)
	wantCode(t, s.DeleteAlertRule(ctx, r.ID), tripcap.ENOTFOUND)
	// The name is free again; the rule's alerts stay.
	must(t, s.CreateAlertRule(ctx, fullRule("doomed")))
	if _, err := s.FindAlert(ctx, a.ID); err != nil {
		t.Fatalf("alert of a deleted rule: %v", err)
	}
}

func testActionGroupRoundTrip(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	g := fullGroup("Ops")
	wantPopulated(t, g)
	want := utcCopy(g)
	must(t, s.CreateActionGroup(ctx, g))
	got, err := s.FindActionGroup(ctx, tripcap.ActionGroupFilter{ID: &g.ID})
	must(t, err)
	wantEqual(t, "group by id (signing secret included)", got, want)
	got, err = s.FindActionGroup(ctx, tripcap.ActionGroupFilter{Name: new("OPS")})
	must(t, err)
	wantEqual(t, "group by name in another case", got, want)
}

func testActionGroupNames(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	for _, n := range []string{"beta", "Alpha"} {
		must(t, s.CreateActionGroup(ctx, fullGroup(n)))
	}
	wantCode(t, s.CreateActionGroup(ctx, fullGroup("ALPHA")), tripcap.ECONFLICT)
	all, err := s.FindActionGroups(ctx, tripcap.ActionGroupFilter{})
	must(t, err)
	if len(all) != 2 || all[0].Name != "Alpha" || all[1].Name != "beta" {
		t.Fatalf("groups by name: %v", all)
	}
	must(t, s.DeleteActionGroup(ctx, all[0].ID))
	wantCode(t, s.DeleteActionGroup(ctx, all[0].ID), tripcap.ENOTFOUND)
	_, err = s.FindActionGroup(ctx, tripcap.ActionGroupFilter{ID: &all[0].ID})
	wantCode(t, err, tripcap.ENOTFOUND)
}

func testAlertUpsert(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	full := fullAlert(tripcap.NewID(), tripcap.NewID(), base)
	// Fired first, as the evaluator writes it, then the resolved alert.
	fired := utcCopy(full)
	fired.MonitorCondition, fired.ResolvedAt, fired.Condition, fired.History = tripcap.ConditionFired, nil, full.History[0], full.History[:1]
	must(t, s.UpsertAlert(ctx, fired))
	got, err := s.FindAlert(ctx, full.ID)
	must(t, err)
	wantEqual(t, "fired alert", got, utcCopy(fired))
	want := utcCopy(full)
	must(t, s.UpsertAlert(ctx, full))
	got, err = s.FindAlert(ctx, full.ID)
	must(t, err)
	wantEqual(t, "resolved alert", got, want)
	all, err := s.FindAlerts(ctx, tripcap.AlertFilter{})
	must(t, err)
	if len(all) != 1 {
		t.Fatalf("an upserted alert is listed %d times", len(all))
	}
	_, err = s.FindAlert(ctx, tripcap.NewID())
	wantCode(t, err, tripcap.ENOTFOUND)
}

func testAlertFind(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	r1, r2, h1, h2 := tripcap.NewID(), tripcap.NewID(), tripcap.NewID(), tripcap.NewID()
	var ids []string // newest first
	for i, rh := range [][2]string{{r1, h1}, {r1, h2}, {r2, h1}, {r2, h2}, {r1, h1}} {
		a := firedAlert(rh[0], rh[1], base.Add(time.Duration(i)*time.Minute))
		switch i {
		case 0:
			// r1 fires on h1 again at i == 4: a rule without autoMitigate,
			// which released this one (the store keeps one active alert).
			a.Released = true
		case 1:
			a.MonitorCondition = tripcap.ConditionResolved
		}
		must(t, s.UpsertAlert(ctx, a))
		ids = append([]string{a.ID}, ids...)
	}
	list := func(f tripcap.AlertFilter) []string {
		t.Helper()
		as, err := s.FindAlerts(ctx, f)
		must(t, err)
		out := []string{}
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	wantEqual(t, "all, newest first", list(tripcap.AlertFilter{}), ids)
	wantEqual(t, "limit 2", list(tripcap.AlertFilter{Limit: 2}), ids[:2])
	wantEqual(t, "rule r1", list(tripcap.AlertFilter{RuleID: &r1}), []string{ids[0], ids[3], ids[4]})
	wantEqual(t, "host h2", list(tripcap.AlertFilter{HostID: &h2}), []string{ids[1], ids[3]})
	wantEqual(t, "rule r1 on h1", list(tripcap.AlertFilter{RuleID: &r1, HostID: &h1}), []string{ids[0], ids[4]})
	wantEqual(t, "resolved", list(tripcap.AlertFilter{MonitorCondition: new(tripcap.ConditionResolved)}), []string{ids[3]})
	wantEqual(t, "fired", list(tripcap.AlertFilter{MonitorCondition: new(tripcap.ConditionFired)}), []string{ids[0], ids[1], ids[2], ids[4]})
	wantEqual(t, "by id", list(tripcap.AlertFilter{ID: &ids[2]}), []string{ids[2]})
}

func delivery(alertID string, attempt int, at time.Time) *tripcap.Delivery {
	return &tripcap.Delivery{AlertID: alertID, MonitorCondition: tripcap.ConditionFired, ActionGroupID: tripcap.NewID(),
		Receiver: "fn", ReceiverKind: "webhook", Attempt: attempt, Time: at, Duration: 0.012345, StatusCode: 503,
		Success: false, Error: "webhook answered 503 Service Unavailable: \"busy\"", Final: attempt == 3}
}

func testDeliveries(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	a := firedAlert(tripcap.NewID(), tripcap.NewID(), base)
	must(t, s.UpsertAlert(ctx, a))
	var want []*tripcap.Delivery
	// Recorded out of time order: the log keeps the order of recording.
	for i, at := range []time.Time{base.Add(2 * time.Second), base, base.Add(time.Second)} {
		d := delivery(a.ID, i+1, at)
		want = append(want, utcCopy(d))
		must(t, s.AppendDelivery(ctx, d))
	}
	got, err := s.FindDeliveries(ctx, a.ID)
	must(t, err)
	wantEqual(t, "deliveries", got, want)
	// An upsert of the alert keeps its log.
	a.MonitorCondition = tripcap.ConditionResolved
	must(t, s.UpsertAlert(ctx, a))
	got, err = s.FindDeliveries(ctx, a.ID)
	must(t, err)
	if len(got) != 3 {
		t.Fatalf("after an upsert: %d deliveries, want 3", len(got))
	}
	wantCode(t, s.AppendDelivery(ctx, delivery(tripcap.NewID(), 1, base)), tripcap.ENOTFOUND)
	none, err := s.FindDeliveries(ctx, tripcap.NewID())
	must(t, err)
	if len(none) != 0 {
		t.Fatalf("deliveries of an unknown alert: %d", len(none))
	}
}

// Receivers are delivered to in parallel, each recording its attempts.
func testDeliveriesConcurrent(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	a := firedAlert(tripcap.NewID(), tripcap.NewID(), base)
	must(t, s.UpsertAlert(ctx, a))
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				d := delivery(a.ID, i+1, base)
				d.Receiver = fmt.Sprint("r", w)
				if err := s.AppendDelivery(ctx, d); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := s.FindDeliveries(ctx, a.ID)
	must(t, err)
	if len(got) != writers*each {
		t.Fatalf("%d deliveries recorded, want %d", len(got), writers*each)
	}
	// Each receiver's attempts are in its own order.
	next := map[string]int{}
	for _, d := range got {
		next[d.Receiver]++
		if d.Attempt != next[d.Receiver] {
			t.Fatalf("receiver %s: attempt %d recorded in place of %d", d.Receiver, d.Attempt, next[d.Receiver])
		}
	}
}

func testAlertingInvalid(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	r := fullRule("x")
	r.ID = ""
	wantCode(t, s.CreateAlertRule(ctx, r), tripcap.EINVALID)
	r = fullRule("")
	wantCode(t, s.CreateAlertRule(ctx, r), tripcap.EINVALID)
	r = fullRule("bad\x00name")
	wantCode(t, s.CreateAlertRule(ctx, r), tripcap.EINVALID)
	g := fullGroup("y")
	g.ID = "not an id!"
	wantCode(t, s.CreateActionGroup(ctx, g), tripcap.EINVALID)
	wantCode(t, s.CreateActionGroup(ctx, fullGroup(" ")), tripcap.EINVALID)
	_, err := s.FindAlertRules(ctx, tripcap.AlertRuleFilter{ID: new("bad id")})
	wantCode(t, err, tripcap.EINVALID)
	_, err = s.FindActionGroups(ctx, tripcap.ActionGroupFilter{ID: new("")})
	wantCode(t, err, tripcap.EINVALID)
	wantCode(t, s.DeleteAlertRule(ctx, "bad id"), tripcap.EINVALID)
	wantCode(t, s.DeleteActionGroup(ctx, ""), tripcap.EINVALID)
	a := firedAlert(tripcap.NewID(), tripcap.NewID(), base)
	a.MonitorCondition = "Acknowledged"
	wantCode(t, s.UpsertAlert(ctx, a), tripcap.EINVALID)
	a = firedAlert("", tripcap.NewID(), base)
	wantCode(t, s.UpsertAlert(ctx, a), tripcap.EINVALID)
	_, err = s.FindAlerts(ctx, tripcap.AlertFilter{HostID: new("x y")})
	wantCode(t, err, tripcap.EINVALID)
	_, err = s.FindAlerts(ctx, tripcap.AlertFilter{Limit: -1})
	wantCode(t, err, tripcap.EINVALID)
	_, err = s.FindAlert(ctx, "")
	wantCode(t, err, tripcap.EINVALID)
	wantCode(t, s.AppendDelivery(ctx, delivery("", 1, base)), tripcap.EINVALID)
	_, err = s.FindDeliveries(ctx, "?")
	wantCode(t, err, tripcap.EINVALID)
}
