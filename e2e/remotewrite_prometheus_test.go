//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/internal/promtest"
	"github.com/tripcap/tripcap/metricstore"
)

// remoteWritePort is Prometheus's in the control namespace (a lab's own).
const remoteWritePort = "19091"

// TestRemoteWritePrometheus: the real server, with a one-minute raw
// window, writes an agent's points to stock Prometheus by remote write;
// Prometheus holds the values tripcap's API shows, under tripcap's names
// and labels; and a chart of a window that has left memory is answered
// from Prometheus with the values memory had.
func TestRemoteWritePrometheus(t *testing.T) {
	var promURL string
	l := newLabWith(t, func(l *lab) {
		promURL = promtest.Run(t, promtest.Options{RemoteWrite: true, Command: l.ctl.Command, Log: l.logFile("prometheus"),
			Listen: "0.0.0.0:" + remoteWritePort, URL: "http://" + l.net.ServiceAddr().String() + ":" + remoteWritePort})
		local := "http://127.0.0.1:" + remoteWritePort
		l.serverArgs = append(l.serverArgs, "--remote-write-url", local+"/api/v1/write", "--remote-read-url", local,
			"--remote-write-label-keys", "team", "--metrics-raw", "1m")
	})
	h := l.newHost("web.example.com")
	l.startAgent(h, "--join-token", l.joinToken(), "--label", "team=net")
	var host tripcap.Host
	l.eventually("web.example.com to be Online", 10*time.Second, func() bool {
		return l.cliJSON(&host, "host", "show", "web.example.com") == nil && host.State == tripcap.HostOnline
	})

	// The series, under tripcap's names and labels.
	l.eventually("the host's series in Prometheus", 30*time.Second, func() bool {
		r := promQuery(t, promURL, `tripcap_network_in_bytes_per_second{host="web.example.com",interface=""}`, time.Now())
		return len(r) == 1
	})
	seen := time.Now() // the host's first points are older than this
	sel := fmt.Sprintf(`{host="web.example.com",host_id=%q,label_team="net",interface=""}`, host.ID)
	for _, name := range []string{"tripcap_network_in_bytes_per_second", "tripcap_tcp_segments_sent_per_second"} {
		if r := promQuery(t, promURL, name+sel, time.Now()); len(r) != 1 {
			t.Fatalf("%s%s: %d series", name, sel, len(r))
		}
	}
	if r := promQuery(t, promURL, `tripcap_flows{direction="inbound",host="web.example.com"}`, time.Now()); len(r) != 1 {
		t.Fatalf("tripcap_flows: %d series", len(r))
	}
	if r := promQuery(t, promURL, `count(tripcap_network_in_bytes_per_second{host="web.example.com",interface!=""})`, time.Now()); len(r) != 1 {
		t.Fatal("no per-interface series")
	}

	// Let 30 s of points gather; then a window of them, from memory.
	time.Sleep(30 * time.Second)
	end := time.Now().Add(-2 * time.Second).Truncate(10 * time.Second)
	q := controlplane.MetricsQuery{Host: "web.example.com", Metric: "Network In Total", Window: 30 * time.Second, Interval: 10 * time.Second, End: end}
	mem, err := l.api().QueryMetrics(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	have := 0
	for _, p := range mem.Points {
		if p.Count > 0 {
			have++
		}
	}
	if have == 0 {
		t.Fatalf("no data in memory: %+v", mem.Points)
	}
	// Prometheus holds the same, interval by interval.
	l.eventually("Prometheus to hold what the API shows", 15*time.Second, func() bool {
		for _, p := range mem.Points {
			at := p.Time.Add(10 * time.Second)
			r := promQuery(t, promURL, "count_over_time(tripcap_network_in_bytes_per_second"+sel+"[9999ms])", at)
			s := promQuery(t, promURL, "sum_over_time(tripcap_network_in_bytes_per_second"+sel+"[9999ms])", at)
			if p.Count == 0 {
				if len(r) != 0 {
					return false
				}
				continue
			}
			if len(r) != 1 || len(s) != 1 || r[0] != float64(p.Count) || s[0] != p.Value {
				t.Logf("at %s: Prometheus %v points summing to %v; tripcap %d points, %g", at, r, s, p.Count, p.Value)
				return false
			}
		}
		return true
	})
	var metrics string
	l.eventually("the server's remote-write metrics", 10*time.Second, func() bool {
		metrics = l.serverMetrics()
		return metricValue(metrics, "tripcap_remote_write_samples_sent_total") > 0
	})
	if v := metricValue(metrics, "tripcap_remote_write_samples_dropped_total"); v != 0 {
		t.Fatalf("dropped %g points", v)
	}

	// Once the window has left the one-minute raw window, the same query
	// is Prometheus's, and answers what memory did.
	time.Sleep(time.Until(end.Add(-30 * time.Second).Add(time.Minute + 5*time.Second)))
	old, err := l.api().QueryMetrics(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !samePoints(old.Points, mem.Points) {
		t.Fatalf("from Prometheus %+v, memory had %+v", old.Points, mem.Points)
	}
	if v := metricValue(l.serverMetrics(), "tripcap_remote_read_queries_total"); v < 1 {
		t.Fatalf("remote reads: %g", v)
	}
	// The CLI's chart of the last two minutes has data before the raw window too.
	// The host's first points must have left the one-minute raw window by
	// a whole 10 s interval: the wait above ends at a 10 s boundary after
	// `end`, which may be as little as 55 s after the first points.
	time.Sleep(time.Until(seen.Add(time.Minute + 15*time.Second)))
	// (The server's raw window starts after horizon: its clock reads later.)
	horizon := time.Now().Add(-time.Minute)
	var chart metricstore.Result
	if err := l.cliJSON(&chart, "metrics", "web.example.com", "Network In Total", "--window", "2m", "--interval", "10s"); err != nil {
		t.Fatal(err)
	}
	older := 0
	for _, p := range chart.Points {
		if p.Count > 0 && p.Time.Before(horizon) {
			older++
		}
	}
	if older == 0 {
		t.Fatalf("no interval before %s has data: %+v", horizon, chart.Points)
	}
}

func samePoints(a, b []metricstore.Point) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Time.Equal(b[i].Time) || a[i].Count != b[i].Count || (a[i].Count > 0 && a[i].Value != b[i].Value) {
			return false
		}
	}
	return true
}

// promQuery runs an instant query and returns its values.
func promQuery(t *testing.T, base, query string, at time.Time) []float64 {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {query}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || a.Status != "success" {
		t.Fatalf("%s: %v %s", query, err, a.Error)
	}
	var out []float64
	for _, r := range a.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%s: value %v", query, r.Value)
		}
		out = append(out, v)
	}
	return out
}

// serverMetrics is the server's /metrics text.
func (l *lab) serverMetrics() string {
	l.t.Helper()
	req, _ := http.NewRequest("GET", l.apiURL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+l.token)
	resp, err := l.httpClient().Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		l.t.Fatal(err)
	}
	return string(b)
}

// metricValue is an unlabelled metric's value in /metrics text (NaN if absent).
func metricValue(text, name string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return math.NaN()
}
