package http_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/metricstore"
	"github.com/tripcap/tripcap/metricwire"
)

// second is one second of web1's network_out_bytes, host and eth0.
func second(t *testing.T, at time.Time) []byte {
	t.Helper()
	b, err := metricwire.AppendPoints(nil, at.Unix(), []tripcap.MetricPoint{
		{Metric: tripcap.MetricNetworkOutBytes, Time: at, Value: 7},
		{Metric: tripcap.MetricNetworkOutBytes, Interface: "eth0", Time: at, Value: 7},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// history is the 30 seconds before at of the host's network_out_bytes.
func history(t *testing.T, at time.Time) []byte {
	t.Helper()
	h := metricstore.SeriesHistory{Key: metricstore.Key{Host: "someone-else", Metric: tripcap.MetricNetworkOutBytes}}
	for s := at.Unix() - 30; s < at.Unix(); s++ {
		h.Raw = append(h.Raw, metricstore.RawPoint{Sec: s, Value: 7})
	}
	b, err := metricwire.AppendHistoryAnswer(nil, []metricstore.SeriesHistory{h})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// outTotal is web1's network_out_bytes over the 40 s up to end: points
// and total (summed over 1-second intervals: query intervals are aligned).
func outTotal(t *testing.T, f *fixture, end time.Time) (int64, float64) {
	t.Helper()
	res, err := f.admin.QueryMetrics(t.Context(), controlplane.MetricsQuery{Host: "web1", Metric: string(tripcap.MetricNetworkOutBytes),
		Window: 40 * time.Second, Interval: time.Second, Aggregation: "Total", End: end})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	var total float64
	for _, p := range res.Points {
		n, total = n+p.Count, total+p.Value
	}
	return n, total
}

// TestMetricStream: over HTTP/2 (h2c and TLS) one streaming request
// carries the agent's frames and the server's answers both ways at once:
// each second is acknowledged as it arrives, the first one attaches the
// host and the server asks for its history on the stream; the history the
// agent sends lands under its own host.
func TestMetricStream(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"h2c", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixtureWith(t, fixtureOptions{limits: &tchttp.Limits{}, tls: tc.tls})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			pr, pw := io.Pipe()
			defer pw.Close()
			st, err := f.agent.OpenMetricStream(ctx, pr)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if v := f.agent.ServerProtocol(); v != tripcap.AgentProtocolVersion {
				t.Errorf("server protocol %d", v)
			}
			next := func() metricwire.Frame {
				t.Helper()
				fr, err := st.Next()
				if err != nil {
					t.Fatal(err)
				}
				return fr
			}
			now := time.Now().Truncate(time.Second)
			if _, err := pw.Write(second(t, now)); err != nil {
				t.Fatal(err)
			}
			// The answer comes while the request is still open.
			if a := next(); a.Kind != metricwire.KindAck || a.Sec != now.Unix() || a.Stored != 2 || a.Refused != 0 {
				t.Fatalf("first answer %+v, want the second's ack", a)
			}
			ask := next()
			// A host never seen here, in no rule's scope: a chart's
			// default window of history (controlplane monitor_attach.go).
			if back := now.Unix() - ask.Sec; ask.Kind != metricwire.KindHistoryRequest || back < 15*60 || back > 15*60+2 {
				t.Fatalf("second answer %+v, want a request for 15 minutes of history (a host never seen here, of no rule)", ask)
			}
			if _, err := pw.Write(history(t, now)); err != nil {
				t.Fatal(err)
			}
			if _, err := pw.Write(second(t, now.Add(time.Second))); err != nil {
				t.Fatal(err)
			}
			// The same second again: stored once, the repeat refused.
			if _, err := pw.Write(second(t, now.Add(time.Second))); err != nil {
				t.Fatal(err)
			}
			if a := next(); a.Kind != metricwire.KindAck || a.Sec != now.Unix()+1 || a.Stored != 2 {
				t.Fatalf("answer %+v, want the next second's ack", a)
			}
			if a := next(); a.Kind != metricwire.KindAck || a.Stored != 0 || a.Refused != 2 {
				t.Fatalf("answer %+v, want the repeat refused", a)
			}
			if n, total := outTotal(t, f, now.Add(2*time.Second)); n != 32 || total != 32*7 {
				t.Errorf("web1 holds %d points totalling %v, want 30 of history and 2 live", n, total)
			}
			m := ""
			if !tc.tls { // the scrape's plain client does not trust the test CA
				m = scrape(t, f)
			}
			for _, want := range []string{`tripcap_metric_points_refused_total{reason="duplicate"} 2`, "tripcap_metric_host_attaches_total 1", "tripcap_metric_history_backfilled_total 30"} {
				if !tc.tls && !strings.Contains(m, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
			// Only agents stream.
			if _, err := f.admin.OpenMetricStream(ctx, strings.NewReader("")); tripcap.ErrorCode(err) != tripcap.EFORBIDDEN {
				t.Errorf("an admin opening a stream: %v", err)
			}
		})
	}
}

func scrape(t *testing.T, f *fixture) string {
	t.Helper()
	r := f.request(t, "GET", "/metrics", f.token, nil)
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// TestMetricFramesOverHTTP1: where the stream cannot be held (HTTP/1.1
// only), the stream is refused so the agent POSTs frames instead, and the
// POSTs' answers carry the same acks and history request.
func TestMetricFramesOverHTTP1(t *testing.T) {
	f := newFixture(t) // httptest: HTTP/1.1 only
	ctx := t.Context()
	if _, err := f.agent.OpenMetricStream(ctx, strings.NewReader("")); !errors.Is(err, tchttp.ErrNoMetricStream) {
		t.Fatalf("opening the stream over HTTP/1.1: %v, want ErrNoMetricStream", err)
	}
	now := time.Now().Truncate(time.Second)
	answers, err := f.agent.PostMetricFrames(ctx, append(second(t, now), second(t, now.Add(time.Second))...))
	if err != nil {
		t.Fatal(err)
	}
	if len(answers) != 3 || answers[0].Kind != metricwire.KindAck || answers[1].Kind != metricwire.KindHistoryRequest ||
		answers[2].Kind != metricwire.KindAck || answers[2].Sec != now.Unix()+1 {
		t.Fatalf("answers %+v, want an ack, the history request, an ack", answers)
	}
	if answers, err := f.agent.PostMetricFrames(ctx, history(t, now)); err != nil || len(answers) != 0 {
		t.Fatalf("posting history: %+v %v", answers, err)
	}
	if n, total := outTotal(t, f, now.Add(2*time.Second)); n != 32 || total != 32*7 {
		t.Errorf("web1 holds %d points totalling %v, want 30 of history and 2 posted", n, total)
	}
	// Malformed frames: refused whole, naming the frame and field.
	bad := second(t, now.Add(2*time.Second))
	bad[len(bad)-1] = 3 // a value tag that is none
	_, err = f.agent.PostMetricFrames(ctx, bad)
	if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(err.Error(), "frame 0") || !strings.Contains(err.Error(), "value") {
		t.Errorf("a malformed frame: %v", err)
	}
	// A server's frame sent by an agent is refused.
	if _, err := f.agent.PostMetricFrames(ctx, metricwire.AppendAck(nil, 1, 0, 0)); tripcap.ErrorCode(err) != tripcap.EINVALID {
		t.Errorf("an agent sending an ack: %v", err)
	}
}

// TestMetricsFromVersion1Agent: an agent at protocol version 1 still
// POSTs JSON batches, filed under its own host whatever they say.
func TestMetricsFromVersion1Agent(t *testing.T) {
	f := newFixture(t)
	now := time.Now().Truncate(time.Second)
	body := `{"points":[{"host":"not-me","metric":"network_out_bytes","time":"` + now.UTC().Format(time.RFC3339) + `","value":7}]}`
	r := f.request(t, "POST", "/api/v1/agent/metrics", f.credential, strings.NewReader(body),
		"Content-Type", "application/json", tripcap.AgentProtocolHeader, "1")
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK || !strings.Contains(string(b), `"stored":1`) {
		t.Fatalf("%s %s", r.Status, b)
	}
	if v := r.Header.Get(tripcap.AgentProtocolHeader); v != strconv.Itoa(tripcap.AgentProtocolVersion) {
		t.Errorf("answer version %q", v)
	}
	if n, _ := outTotal(t, f, now.Add(time.Second)); n != 1 {
		t.Errorf("web1 holds %d points, want the one posted", n)
	}
}
