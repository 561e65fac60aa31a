package remotewrite

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"

	"github.com/tripcap/tripcap"
)

// receiver is an httptest remote-write endpoint answering statuses in
// turn (the last one from then on) and keeping what it was sent.
type receiver struct {
	t        *testing.T
	mu       sync.Mutex
	statuses []int
	headers  []http.Header
	bodies   [][]decodedSeries
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		rc.t.Errorf("snappy: %v", err)
	}
	series, err := decodeWriteRequest(raw)
	if err != nil {
		rc.t.Errorf("protobuf: %v", err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.headers = append(rc.headers, r.Header.Clone())
	rc.bodies = append(rc.bodies, series)
	status := rc.statuses[min(len(rc.headers), len(rc.statuses))-1]
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
}

func (rc *receiver) requests() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.headers)
}

func testHosts(_ context.Context, id string) (*tripcap.Host, error) {
	if id == "gone" {
		return nil, tripcap.Errorf(tripcap.ENOTFOUND, "no host %s", id)
	}
	return &tripcap.Host{ID: id, Name: "web.example.com", Labels: map[string]string{"team": "net", "other": "x"}}, nil
}

func newTestWriter(t *testing.T, url string, mod func(*Config)) *Writer {
	t.Helper()
	keys, err := ParseLabelKeys("keys", []string{"team"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{URL: url, Hosts: testHosts, LabelKeys: keys, FlushEvery: 20 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxRetry: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// run runs w until the test ends.
func run(t *testing.T, w *Writer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func points(n int, start time.Time) []tripcap.MetricPoint {
	var ps []tripcap.MetricPoint
	for i := range n {
		ps = append(ps, tripcap.MetricPoint{Metric: tripcap.MetricNetworkInBytes, Interface: "eth0", Time: start.Add(time.Duration(i) * time.Second), Value: float64(100 * i)})
	}
	return ps
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRetryAfter500: a 500 is retried and the retry, answered 204, counts
// the samples sent; the request carries the spec's headers.
func TestRetryAfter500(t *testing.T) {
	rc := &receiver{t: t, statuses: []int{500, 204}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	w := newTestWriter(t, srv.URL+"/api/v1/write", nil)
	run(t, w)
	start := time.Unix(1_700_000_000, 0)
	w.SinkPoints("h-1", points(3, start))
	waitFor(t, "the samples sent", func() bool { return w.Stats().Sent == 3 })
	st := w.Stats()
	if st.Retries != 1 || st.Failed != 0 || st.Dropped != 0 || rc.requests() != 2 {
		t.Fatalf("stats %+v, %d requests; want 1 retry, 2 requests", st, rc.requests())
	}
	h := rc.headers[1]
	for k, v := range map[string]string{"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf", "X-Prometheus-Remote-Write-Version": "0.1.0"} {
		if h.Get(k) != v {
			t.Errorf("%s: %q, want %q", k, h.Get(k), v)
		}
	}
	if h.Get("User-Agent") == "" {
		t.Error("no User-Agent")
	}
	if len(rc.bodies[1]) != 1 {
		t.Fatalf("series: %+v", rc.bodies[1])
	}
	ts := rc.bodies[1][0]
	want := []label{{"__name__", "tripcap_network_in_bytes_per_second"}, {"host", "web.example.com"}, {"host_id", "h-1"}, {"interface", "eth0"}, {"label_team", "net"}}
	if len(ts.labels) != len(want) {
		t.Fatalf("labels %v, want %v", ts.labels, want)
	}
	for i := range want {
		if ts.labels[i] != want[i] {
			t.Fatalf("labels %v, want %v", ts.labels, want)
		}
	}
	for i, s := range ts.samples {
		if s.ms != start.Add(time.Duration(i)*time.Second).UnixMilli() || s.value != float64(100*i) {
			t.Fatalf("samples %+v", ts.samples)
		}
	}
}

// TestNoRetryOn400: the store refusing the data is not retried; the
// request is halved down to single samples (Prometheus refuses a request
// with one bad sample whole), here all refused.
func TestNoRetryOn400(t *testing.T) {
	rc := &receiver{t: t, statuses: []int{400}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	w := newTestWriter(t, srv.URL, nil)
	run(t, w)
	w.SinkPoints("h-1", points(4, time.Unix(1_700_000_000, 0)))
	waitFor(t, "the samples failed", func() bool { return w.Stats().Failed == 4 })
	time.Sleep(100 * time.Millisecond)
	if st := w.Stats(); st.Retries != 0 || st.Sent != 0 || st.Splits != 3 || rc.requests() != 7 {
		t.Fatalf("stats %+v, %d requests; want 3 splits, 7 requests", st, rc.requests())
	}
}

// TestForbiddenNotSplit: a 4xx other than 400 (auth) is neither retried nor split.
func TestForbiddenNotSplit(t *testing.T) {
	rc := &receiver{t: t, statuses: []int{403}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	w := newTestWriter(t, srv.URL, nil)
	run(t, w)
	w.SinkPoints("h-1", points(4, time.Unix(1_700_000_000, 0)))
	waitFor(t, "the samples failed", func() bool { return w.Stats().Failed == 4 })
	time.Sleep(100 * time.Millisecond)
	if st := w.Stats(); st.Retries != 0 || st.Splits != 0 || rc.requests() != 1 {
		t.Fatalf("stats %+v, %d requests", st, rc.requests())
	}
}

// TestRetry429: 429 is retried, after its Retry-After (bounded by MaxBackoff).
func TestRetry429(t *testing.T) {
	rc := &receiver{t: t, statuses: []int{429, 429, 200}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	w := newTestWriter(t, srv.URL, nil)
	run(t, w)
	w.SinkPoints("h-1", points(2, time.Unix(1_700_000_000, 0)))
	waitFor(t, "the samples sent", func() bool { return w.Stats().Sent == 2 })
	if st := w.Stats(); st.Retries != 2 || rc.requests() != 3 {
		t.Fatalf("stats %+v, %d requests", st, rc.requests())
	}
}

// TestGiveUpAfterMaxRetry: a store that keeps failing costs the batch,
// counted failed, once MaxRetry has passed.
func TestGiveUpAfterMaxRetry(t *testing.T) {
	rc := &receiver{t: t, statuses: []int{503}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	w := newTestWriter(t, srv.URL, func(c *Config) { c.MaxRetry = 300 * time.Millisecond })
	run(t, w)
	w.SinkPoints("h-1", points(5, time.Unix(1_700_000_000, 0)))
	waitFor(t, "the samples failed", func() bool { return w.Stats().Failed == 5 })
	if st := w.Stats(); st.Sent != 0 || st.Retries < 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestFullQueueDrops: with nothing sending, points beyond the queue are
// dropped and counted, and SinkPoints returns at once.
func TestFullQueueDrops(t *testing.T) {
	w := newTestWriter(t, "http://127.0.0.1:1/api/v1/write", func(c *Config) { c.QueueSize, c.Shards = 10, 1 })
	begin := time.Now()
	w.SinkPoints("h-1", points(7, time.Unix(1_700_000_000, 0)))
	w.SinkPoints("h-1", points(7, time.Unix(1_700_000_100, 0)))
	if d := time.Since(begin); d > time.Second {
		t.Fatalf("SinkPoints took %s", d)
	}
	if st := w.Stats(); st.Queued != 10 || st.Dropped != 4 || st.Capacity != 10 {
		t.Fatalf("stats %+v; want 10 queued, 4 dropped", st)
	}
}

// TestUnknownHostFails: points of a host that cannot be looked up are
// counted failed, the others sent.
func TestUnknownHostFails(t *testing.T) {
	rc := &receiver{t: t, statuses: []int{204}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	w := newTestWriter(t, srv.URL, func(c *Config) { c.Shards = 1 })
	run(t, w)
	w.SinkPoints("gone", points(2, time.Unix(1_700_000_000, 0)))
	w.SinkPoints("h-1", points(3, time.Unix(1_700_000_000, 0)))
	waitFor(t, "the batch", func() bool { st := w.Stats(); return st.Sent+st.Failed == 5 })
	if st := w.Stats(); st.Sent != 3 || st.Failed != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestAuth: the bearer token is read from its file for each request
// (a rotated one is used at once); basic auth is sent as such.
func TestAuth(t *testing.T) {
	rc := &receiver{t: t, statuses: []int{204}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := newTestWriter(t, srv.URL, func(c *Config) { c.HTTP.BearerTokenFile = tok })
	run(t, w)
	w.SinkPoints("h-1", points(1, time.Unix(1_700_000_000, 0)))
	waitFor(t, "one request", func() bool { return w.Stats().Sent == 1 })
	if err := os.WriteFile(tok, []byte("rotated"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.SinkPoints("h-1", points(1, time.Unix(1_700_000_010, 0)))
	waitFor(t, "two requests", func() bool { return w.Stats().Sent == 2 })
	if a, b := rc.headers[0].Get("Authorization"), rc.headers[1].Get("Authorization"); a != "Bearer s3cret" || b != "Bearer rotated" {
		t.Fatalf("authorization %q then %q", a, b)
	}

	wb := newTestWriter(t, srv.URL, func(c *Config) { c.HTTP.Username, c.HTTP.Password = "u", "p" })
	run(t, wb)
	wb.SinkPoints("h-1", points(1, time.Unix(1_700_000_020, 0)))
	waitFor(t, "the basic-auth request", func() bool { return wb.Stats().Sent == 1 })
	if got := rc.headers[2].Get("Authorization"); got != "Basic dTpw" {
		t.Fatalf("authorization %q", got)
	}
}

func TestConfigRefuses(t *testing.T) {
	for name, c := range map[string]Config{
		"credentials in the URL": {URL: "http://u:p@127.0.0.1/api/v1/write", Hosts: testHosts},
		"not http":               {URL: "ftp://127.0.0.1/", Hosts: testHosts},
		"token and basic":        {URL: "http://127.0.0.1/", Hosts: testHosts, HTTP: HTTPConfig{BearerTokenFile: "/dev/null", Username: "u"}},
		"missing token file":     {URL: "http://127.0.0.1/", Hosts: testHosts, HTTP: HTTPConfig{BearerTokenFile: "/nonexistent/token"}},
		"password alone":         {URL: "http://127.0.0.1/", Hosts: testHosts, HTTP: HTTPConfig{Password: "p"}},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%s: no error", name)
		} else if name == "credentials in the URL" && strings.Contains(err.Error(), "u:p") {
			t.Errorf("%s: the error shows the credentials: %v", name, err)
		}
	}
}

// BenchmarkSinkPoints is the cost remote write adds to ingest: one host's
// second (31 points) queued, the queue drained as a sender would.
func BenchmarkSinkPoints(b *testing.B) {
	w, err := New(Config{URL: "http://127.0.0.1:1/api/v1/write", Hosts: testHosts, QueueSize: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	pts := make([]tripcap.MetricPoint, 31)
	for i := range pts {
		pts[i] = tripcap.MetricPoint{Metric: tripcap.MetricNetworkInBytes, Interface: "eth0", Time: time.Unix(1_700_000_000, 0), Value: float64(i)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		w.SinkPoints("host-"+strconv.Itoa(i%1000), pts)
		if i%1000 == 999 {
			for _, sh := range w.shards {
				sh.take(sh.len())
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pts)), "ns/point")
}

// BenchmarkBuildAndEncode is a sender's CPU per sample in the steady
// state: a batch of 5,000 samples (161 hosts' second of 31 series, series
// already known) grouped into series, encoded and compressed. cpu-ns/sample
// is the process's CPU time (wall time means little on a shared machine).
func BenchmarkBuildAndEncode(b *testing.B) {
	w, err := New(Config{URL: "http://127.0.0.1:1/api/v1/write", Hosts: testHosts, Shards: 1})
	if err != nil {
		b.Fatal(err)
	}
	var batch []entry
	for h := 0; len(batch) < DefaultBatchSize; h++ {
		for _, d := range tripcap.MetricDefinitions() {
			for _, iface := range []string{"", "eth0", "eth1"} {
				if iface == "" || d.PerInterface {
					batch = append(batch, entry{host: "host-" + strconv.Itoa(h), metric: d.ID, iface: iface, ms: 1_700_000_000_000, value: float64(len(batch))})
				}
			}
		}
	}
	batch = batch[:DefaultBatchSize]
	sh := w.shards[0]
	b.ReportAllocs()
	var bytes int
	cpu0 := cpuTime(b)
	for b.Loop() {
		for i := range batch {
			batch[i].ms += 1000
		}
		series, _, stale := w.buildSeries(context.Background(), sh, batch)
		if stale > 0 {
			b.Fatal("stale samples")
		}
		bytes = len(encodeRequest(series))
	}
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N*len(batch)), "cpu-ns/sample")
	b.ReportMetric(float64(bytes)/float64(len(batch)), "bytes/sample")
}

// cpuTime is the process's user and system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestHostLabelsChange: a host's new name and labels are written once
// they are looked up again; series keep their encoded labels meanwhile.
func TestHostLabelsChange(t *testing.T) {
	rc := &receiver{t: t, statuses: []int{204}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	var team atomic.Value
	team.Store("net")
	var lookups atomic.Int32
	w := newTestWriter(t, srv.URL, func(c *Config) {
		c.HostRefresh = 200 * time.Millisecond
		c.Hosts = func(_ context.Context, id string) (*tripcap.Host, error) {
			lookups.Add(1)
			return &tripcap.Host{ID: id, Name: "web.example.com", Labels: map[string]string{"team": team.Load().(string)}}, nil
		}
	})
	run(t, w)
	start := time.Unix(1_700_000_000, 0)
	w.SinkPoints("h-1", points(1, start))
	waitFor(t, "the first sample", func() bool { return w.Stats().Sent == 1 })
	w.SinkPoints("h-1", points(1, start.Add(time.Second)))
	waitFor(t, "the second sample", func() bool { return w.Stats().Sent == 2 })
	if n := lookups.Load(); n != 1 {
		t.Fatalf("%d lookups within the refresh, want 1", n)
	}
	team.Store("storage")
	time.Sleep(300 * time.Millisecond)
	w.SinkPoints("h-1", points(1, start.Add(2*time.Second)))
	waitFor(t, "the third sample", func() bool { return w.Stats().Sent == 3 })
	rc.mu.Lock()
	defer rc.mu.Unlock()
	label := func(i int) string {
		for _, l := range rc.bodies[i][0].labels {
			if l.name == "label_team" {
				return l.value
			}
		}
		return ""
	}
	if a, b, c := label(0), label(1), label(2); a != "net" || b != "net" || c != "storage" {
		t.Fatalf("label_team: %q, %q, %q", a, b, c)
	}
}
