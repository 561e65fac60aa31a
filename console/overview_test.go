package console_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// sendMetrics posts n seconds of network_out_bytes ending now, as h's agent.
func (f *fixture) sendMetrics(t testing.TB, h *tripcap.Host, n int, value float64) {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	var b tripcap.MetricBatch
	for i := n; i > 0; i-- {
		b.Points = append(b.Points, tripcap.MetricPoint{Metric: tripcap.MetricNetworkOutBytes, Time: now.Add(-time.Duration(i) * time.Second), Value: value})
	}
	if _, err := f.monitor.IngestMetrics(f.agentCtx(t, h), b); err != nil {
		t.Fatal(err)
	}
}

func egressRule(threshold float64) *tripcap.AlertRule {
	return &tripcap.AlertRule{Name: "high-egress", Scopes: []tripcap.Scope{"host:web1"}, EvaluationFrequency: "PT1S", WindowSize: "PT5S",
		Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{
			MetricCriterion: tripcap.MetricCriterion{MetricName: "Network Out Total", TimeAggregation: tripcap.AggregationTotal},
			Operator:        tripcap.OperatorGreaterThan, Threshold: threshold}}}}}
}

func TestOverviewShowsFleet(t *testing.T) {
	f := newFixture(t)
	h := f.host(t, "web1", "eastus", nil)
	f.online(t, h)
	f.host(t, "web2", "eastus", nil)
	if _, err := f.store.MarkHostsOffline(f.adminCtx, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	f.online(t, h)
	pc, err := f.svc.CreateCapture(f.adminCtx, controlplane.CreateCaptureRequest{Name: "c1", Parameters: tripcap.PacketCaptureParameters{Target: "web1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.monitor.CreateRule(f.adminCtx, egressRule(5000)); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.signIn("alice", f.user(t, "alice", tripcap.RoleReader))
	var body string
	for deadline := time.Now().Add(15 * time.Second); ; {
		f.sendMetrics(t, h, 6, 2000)
		p := b.get("/")
		if p.StatusCode != 200 {
			t.Fatalf("overview: %s\n%s", p.Status, p.body)
		}
		body = p.body
		if strings.Contains(body, "alert high-egress fired on web1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the alert did not show on the overview:\n%s", body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, want := range []string{
		`<span class="n">1</span> hosts online`, `<span class="n">1</span> hosts offline`,
		`<span class="n">1</span> alerts firing`, `<span class="n">1</span> captures running`,
		`href="/captures/` + pc.ID + `">c1</a>`, "capture c1 created",
		"local", "reachable",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the overview lacks %q", want)
		}
	}
}

func TestHostLiveChartsAndThresholds(t *testing.T) {
	f := newFixture(t)
	h := f.host(t, "web1", "eastus", nil)
	f.online(t, h)
	if _, err := f.monitor.CreateRule(f.adminCtx, egressRule(1e9)); err != nil {
		t.Fatal(err)
	}
	f.sendMetrics(t, h, 10, 1234)
	b := f.browser(t)
	b.signIn("alice", f.user(t, "alice", tripcap.RoleReader))
	p := b.get("/hosts/web1")
	// A Total of 1e9 over 5 s is drawn at 2e8 a second.
	if !strings.Contains(p.body, `&#34;perSecond&#34;:200000000`) || !strings.Contains(p.body, "high-egress") {
		t.Fatalf("the host page does not carry the rule's threshold:\n%s", p.body)
	}
	data := b.events("/hosts/web1/live", 1)[0]
	var v struct {
		State  string
		Charts map[string][][]*float64
	}
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatal(err)
	}
	net := v.Charts["net"]
	if v.State != "Online" || len(net) != 3 || len(net[0]) < 100 || len(net[2]) != len(net[0]) {
		t.Fatalf("live event: state %s, net chart %d columns", v.State, len(net))
	}
	got := 0
	for _, x := range net[2] {
		if x != nil && *x == 1234 {
			got++
		}
	}
	if got != 10 {
		t.Fatalf("the chart's out column has %d points of 1234, want 10", got)
	}
}

// TestHostLiveCaptures: the host page's live event lists the host's
// captures as they come, with a stop control only for whom may stop them.
func TestHostLiveCaptures(t *testing.T) {
	f := newFixture(t)
	pc := f.capture(t, "web1", "c1")
	event := func(b *browser) string { return b.events("/hosts/web1/live", 1)[0] }
	owner := f.browser(t)
	owner.signInToken(f.admin)
	if e := event(owner); !strings.Contains(e, `"id":"`+pc.ID+`","name":"c1","status":"NotStarted"`) || !strings.Contains(e, `"stop":true`) {
		t.Errorf("the owner's event: %s", e)
	}
	reader := f.browser(t)
	reader.signIn("rita", f.user(t, "rita", tripcap.RoleReader))
	if e := event(reader); !strings.Contains(e, `"name":"c1"`) || strings.Contains(e, `"stop":true`) {
		t.Errorf("a Reader's event: %s", e)
	}
}
