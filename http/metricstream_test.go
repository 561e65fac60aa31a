package http_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
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
// each second is acknowledged, the first one attaches the
// host and the server asks for its history on the stream; the history the
// agent sends lands under its own host. Acknowledgements are coalesced.
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
			// Both acknowledged by one ack (coalesced: within
			// streamAckDelay), counting both frames' points.
			if a := next(); a.Kind != metricwire.KindAck || a.Sec != now.Unix()+1 || a.Stored != 2 || a.Refused != 2 {
				t.Fatalf("answer %+v, want the next second's ack: 2 points stored, the repeat's 2 refused", a)
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
			// The agent ending its side gets the acknowledgement still
			// due, then the end of the stream.
			if _, err := pw.Write(second(t, now.Add(2*time.Second))); err != nil {
				t.Fatal(err)
			}
			pw.Close()
			if a := next(); a.Kind != metricwire.KindAck || a.Sec != now.Unix()+2 || a.Stored != 2 {
				t.Fatalf("answer %+v, want the last second's ack", a)
			}
			if fr, err := st.Next(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the last ack: %+v %v, want the end of the stream", fr, err)
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
	// One ack for the POST's frames, counting all their points.
	if len(answers) != 2 || answers[0].Kind != metricwire.KindAck || answers[0].Sec != now.Unix()+1 || answers[0].Stored != 4 ||
		answers[1].Kind != metricwire.KindHistoryRequest {
		t.Fatalf("answers %+v, want an ack of both frames, then the history request", answers)
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

// BenchmarkMetricStream is the server's metric path from an agent's frame
// to the store: hosts streaming over h2c on loopback, each sending one
// second of a host with one interface (23 series) per round. "burst"
// sends the rounds as fast as the server takes them (100 hosts); "paced"
// sends a round a second (200 hosts), as a fleet's agents do, so what is
// coalesced or moved on by time (acknowledgements, deadlines) costs what
// it does in a fleet, and cpu-ns/frame is CPU per host-second. It reports
// the process's CPU per frame (the client's side included: one process),
// the acknowledgements per frame and, with -benchmem, allocations per
// frame; every frame is acknowledged before the clock stops.
//
//	go test ./http/ -run '^$' -bench MetricStream/burst -benchmem -benchtime 20000x -count 6
//	go test ./http/ -run '^$' -bench MetricStream/paced -benchmem -benchtime 2000x -count 6
func BenchmarkMetricStream(b *testing.B) {
	b.Run("burst", func(b *testing.B) { benchmarkMetricStream(b, 100, false) })
	b.Run("paced", func(b *testing.B) { benchmarkMetricStream(b, 200, true) })
}

func benchmarkMetricStream(b *testing.B, hosts int, paced bool) {
	f := newFixtureWith(b, fixtureOptions{limits: &tchttp.Limits{}})
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	jt, err := f.admin.CreateJoinToken(ctx, time.Hour, hosts)
	if err != nil {
		b.Fatal(err)
	}
	type stream struct {
		pw    *io.PipeWriter
		acked atomic.Int64
		acks  atomic.Int64
	}
	streams := make([]*stream, hosts)
	for i := range streams {
		resp, err := f.admin.Enroll(ctx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: "bench" + strconv.Itoa(i)})
		if err != nil {
			b.Fatal(err)
		}
		pr, pw := io.Pipe()
		defer pw.Close()
		st, err := f.admin.WithToken(resp.Credential).OpenMetricStream(ctx, pr)
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		s := &stream{pw: pw}
		streams[i] = s
		go func() {
			for {
				fr, err := st.Next()
				if err != nil {
					return
				}
				if fr.Kind == metricwire.KindAck {
					s.acked.Store(max(s.acked.Load(), fr.Sec))
					s.acks.Add(1)
				}
			}
		}()
	}
	// A day back: room for the seconds of any b.N within the store's
	// window, none of them in the future.
	start := time.Now().Add(-24 * time.Hour).Add(time.Minute).Truncate(time.Second)
	// The client's part kept small: one frame's points and bytes, reused.
	var pts []tripcap.MetricPoint
	for _, d := range tripcap.MetricDefinitions() {
		p := tripcap.MetricPoint{Metric: d.ID}
		if d.PerInterface {
			p.Interface = "eth0"
		}
		pts = append(pts, p)
	}
	var buf []byte
	send := func(i int, sec int64) {
		at := time.Unix(sec, 0)
		for j := range pts {
			pts[j].Time, pts[j].Value = at, float64(sec%1000)
		}
		if buf, err = metricwire.AppendPoints(buf[:0], sec, pts); err != nil {
			b.Fatal(err)
		}
		if _, err := streams[i].pw.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	waitAcked := func(sec int64) {
		for i, s := range streams {
			for s.acked.Load() < sec {
				if ctx.Err() != nil {
					b.Fatalf("host %d: not acknowledged up to %d", i, sec)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	// Every host attached (and asked its history, which it does not send)
	// before the clock starts.
	for i := range streams {
		send(i, start.Unix())
	}
	waitAcked(start.Unix())
	acks := func() (n int64) {
		for _, s := range streams {
			n += s.acks.Load()
		}
		return n
	}
	var before, after syscall.Rusage
	runtime.GC()
	// What the process spends idle (its services' loops), per second: the
	// net figure leaves it out.
	idleStart := time.Now()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	time.Sleep(time.Second)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	idle := float64(cpuOf(after)-cpuOf(before)) / float64(time.Since(idleStart))
	acks0 := acks()
	t0 := time.Now()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	// Not b.Loop: the clock (and -benchmem) must run until the server
	// has taken every frame.
	n := b.N
	for i := range n {
		round := i / hosts
		if paced && i%hosts == 0 {
			time.Sleep(time.Until(t0.Add(time.Duration(round) * time.Second)))
		}
		send(i%hosts, start.Unix()+1+int64(round))
	}
	// The agents end their streams, so the last acknowledgements come at
	// once rather than after a delay the process idles through.
	for _, s := range streams {
		s.pw.Close()
	}
	waitAcked(start.Unix() + int64(n/hosts))
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := float64(cpuOf(after) - cpuOf(before))
	b.ReportMetric(cpu/float64(n), "cpu-ns/frame")
	b.ReportMetric(max(0, cpu-idle*float64(time.Since(t0)))/float64(n), "net-cpu-ns/frame")
	b.ReportMetric(float64(acks()-acks0)/float64(n), "acks/frame")
}

// cpuOf is the user and system CPU of a Getrusage, in nanoseconds.
func cpuOf(r syscall.Rusage) int64 { return r.Utime.Nano() + r.Stime.Nano() }
