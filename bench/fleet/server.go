package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tripcap/tripcap"
)

// serverProc is a `tripcap server` child process.
type serverProc struct {
	cmd        *exec.Cmd
	url        string
	pprofURL   string // the profiling server's pprof, "" for the real binary
	adminToken string
	logPath    string
	log        *slog.Logger
	exited     chan struct{}
}

// serverConfig says how to start the server.
type serverConfig struct {
	bin       string // the tripcap binary
	dataDir   string
	db        string // the --db URL
	heartbeat time.Duration
	// inproc runs the profiling server (this executable, -serve) instead of bin.
	inproc bool
}

func startServer(ctx context.Context, cfg serverConfig, log *slog.Logger) (*serverProc, error) {
	if err := os.MkdirAll(cfg.dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("server data directory: %w", err)
	}
	// A token file written beforehand is registered as the admin credential,
	// so the bench knows it whatever the database held.
	tokenFile := filepath.Join(cfg.dataDir, "admin.token")
	token := tripcap.NewSecret(tripcap.SecretPrefixAdmin)
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("admin token file: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logPath := filepath.Join(cfg.dataDir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	args := []string{"server", "--listen", addr, "--data", cfg.dataDir, "--db", cfg.db,
		"--admin-token-file", tokenFile, "--heartbeat", cfg.heartbeat.String(),
		// h2c on loopback, as the in-process server below and the numbers so far.
		"--insecure-plaintext"}
	bin := cfg.bin
	var pprofURL string
	if cfg.inproc {
		if bin, err = os.Executable(); err != nil {
			return nil, err
		}
		pport, err := freePort()
		if err != nil {
			return nil, err
		}
		pprofAddr := "127.0.0.1:" + strconv.Itoa(pport)
		pprofURL = "http://" + pprofAddr
		args = serveConfig{listen: addr, pprofListen: pprofAddr, data: cfg.dataDir, db: cfg.db,
			tokenFile: tokenFile, heartbeat: cfg.heartbeat}.args()
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: a Ctrl-C to the bench reaches the server only through stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &serverProc{cmd: cmd, url: "http://" + addr, pprofURL: pprofURL, adminToken: token, logPath: logPath, log: log, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()
	if err := s.waitHealthy(ctx, 60*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *serverProc) pid() int { return s.cmd.Process.Pid }

func (s *serverProc) waitHealthy(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-s.exited:
			return errors.New("the server exited during startup")
		case <-ctx.Done():
			return fmt.Errorf("the server did not become healthy: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// alive reports whether the server is still running.
func (s *serverProc) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop shuts the server down gracefully (it closes long polls after 5 s), then kills it.
func (s *serverProc) stop() {
	if !s.alive() {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		s.log.Warn("the server did not stop in 20 s; killing it")
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// logCount counts the server log's lines that contain substr.
func (s *serverProc) logCount(substr string) (int, error) {
	f, err := os.Open(s.logPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(substr)) {
			n++
		}
	}
	return n, sc.Err()
}

// routeStats is one route's requests in a window, from the server's own
// request histogram (tripcap_http_request_duration_seconds).
type routeStats struct {
	Count  uint64 `json:"count"`
	Errors uint64 `json:"errors"` // answers with a status of 400 or more
	// P50 and P99 are the upper bounds of the histogram buckets they fall in,
	// in milliseconds: "at most".
	P50ms float64 `json:"p50LeMs"`
	P99ms float64 `json:"p99LeMs"`
}

// histogram is one route's cumulative buckets.
type histogram struct {
	count   uint64
	errors  uint64
	buckets map[float64]uint64 // upper bound (s) → cumulative count
}

// scrape is one read of the server's /metrics.
type scrape struct {
	routes     map[string]*histogram
	goroutines float64
	// hists are the label-less histograms (the metric path's); values the
	// gauges and counters, a labelled one as "name{label=value}".
	hists  map[string]*histogram
	values map[string]float64
}

// scrapeMetrics reads the server's /metrics: the request histogram by route,
// its goroutine count, the metric path's histograms and the monitor's gauges.
func (s *serverProc) scrapeMetrics(ctx context.Context) (*scrape, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("scrape metrics: %s: %s", resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	routes := map[string]*histogram{}
	if fam := fams["tripcap_http_request_duration_seconds"]; fam != nil {
		for _, m := range fam.GetMetric() {
			var route string
			var code int
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "route":
					route = l.GetValue()
				case "code":
					code, _ = strconv.Atoi(l.GetValue())
				}
			}
			h := routes[route]
			if h == nil {
				h = &histogram{buckets: map[float64]uint64{}}
				routes[route] = h
			}
			hist := m.GetHistogram()
			h.count += hist.GetSampleCount()
			if code >= 400 {
				h.errors += hist.GetSampleCount()
			}
			for _, b := range hist.GetBucket() {
				h.buckets[b.GetUpperBound()] += b.GetCumulativeCount()
			}
		}
	}
	sc := &scrape{routes: routes, hists: map[string]*histogram{}, values: map[string]float64{}}
	if fam := fams["go_goroutines"]; fam != nil && len(fam.GetMetric()) > 0 {
		sc.goroutines = fam.GetMetric()[0].GetGauge().GetValue()
	}
	for name, fam := range fams {
		if !strings.HasPrefix(name, "tripcap_") || name == "tripcap_http_request_duration_seconds" {
			continue
		}
		for _, m := range fam.GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.GetHistogram() != nil:
				h := &histogram{count: m.GetHistogram().GetSampleCount(), buckets: map[float64]uint64{}}
				for _, b := range m.GetHistogram().GetBucket() {
					h.buckets[b.GetUpperBound()] = b.GetCumulativeCount()
				}
				sc.hists[key] = h
			case m.GetGauge() != nil:
				sc.values[key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				sc.values[key] = m.GetCounter().GetValue()
			}
		}
	}
	return sc, nil
}

// histDelta is a histogram's observations between two scrapes: their
// count, how many fell over bound (seconds), and the bucket bounds (ms)
// p50 and p99 fall under (-1: above the largest).
func histDelta(before, after *histogram, bound float64) (n, over uint64, p50, p99 float64) {
	if after == nil {
		return 0, 0, 0, 0
	}
	if before == nil {
		before = &histogram{buckets: map[float64]uint64{}}
	}
	n = after.count - before.count
	over = n - (after.buckets[bound] - before.buckets[bound])
	return n, over, after.quantileSince(before, n, 0.5), after.quantileSince(before, n, 0.99)
}

// quantileSince is the upper bound (ms) of the bucket the q-quantile of
// the n observations since before falls in; -1 above the largest bucket.
func (a *histogram) quantileSince(b *histogram, n uint64, q float64) float64 {
	if n == 0 {
		return 0
	}
	bounds := make([]float64, 0, len(a.buckets))
	for ub := range a.buckets {
		bounds = append(bounds, ub)
	}
	slices.Sort(bounds)
	want := uint64(q*float64(n) + 0.999999)
	for _, ub := range bounds {
		if a.buckets[ub]-b.buckets[ub] >= want {
			return ub * 1000
		}
	}
	return -1
}

// routeDelta turns two scrapes into per-route stats for the window between them.
func routeDelta(before, after map[string]*histogram) map[string]routeStats {
	out := map[string]routeStats{}
	for route, a := range after {
		b := before[route]
		if b == nil {
			b = &histogram{buckets: map[float64]uint64{}}
		}
		n := a.count - b.count
		if n == 0 {
			continue
		}
		out[route] = routeStats{Count: n, Errors: a.errors - b.errors, P50ms: a.quantileSince(b, n, 0.50), P99ms: a.quantileSince(b, n, 0.99)}
	}
	return out
}
