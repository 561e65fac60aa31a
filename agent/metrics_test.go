package agent_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/agent"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/hostmetrics"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
)

// monitorServer is a server with the monitor (metric ingest and alerts)
// on dir's database, serving HTTP/1.1 and h2c on addr.
type monitorServer struct {
	url   string
	admin *tchttp.Client
	mon   *controlplane.Monitor
	stop  func()
}

func startMonitorServer(t *testing.T, dir, addr string) *monitorServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	store.SetSealer(storetest.NewSealer(t))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := controlplane.New(store, controlplane.Config{HeartbeatInterval: time.Second}, log)
	token, err := svc.EnsureAdmin(ctx, filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	mon, err := controlplane.NewMonitor(store, log, controlplane.MonitorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	for i := 0; ; i++ {
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		} else if i == 50 {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); _ = svc.Run(ctx) }()
	go func() { defer wg.Done(); _ = mon.Run(ctx) }()
	go func() { defer wg.Done(); _ = tchttp.NewServer(svc, log, tchttp.WithMonitor(mon)).Serve(ctx, l) }()
	admin, _ := tchttp.NewClient("http://"+l.Addr().String(), token)
	s := &monitorServer{url: "http://" + l.Addr().String(), admin: admin, mon: mon}
	var once sync.Once
	s.stop = func() { once.Do(func() { cancel(); wg.Wait(); store.Close() }) }
	t.Cleanup(s.stop)
	return s
}

// counterSource is a host whose eth0 receives 1000 bytes a second: every
// second's point of network_in_bytes is 1000.
func counterSource() func(context.Context) (hostmetrics.Reading, error) {
	start := time.Now()
	return func(context.Context) (hostmetrics.Reading, error) {
		n := uint64(time.Since(start) / time.Second)
		return hostmetrics.Reading{Interfaces: map[string]hostmetrics.InterfaceCounters{"eth0": {RxBytes: 1000 * n, RxPackets: n}}}, nil
	}
}

// TestMetricsSurviveServerRestart: the agent streams its seconds to the
// server (agent protocol 2); the server stops mid-stream and comes back
// on the same database with an empty metric store. The agent reconnects,
// sends what was not acknowledged, and the server, attaching the host,
// asks for its history: every second from the first to the last is there.
func TestMetricsSurviveServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startMonitorServer(t, dir, "127.0.0.1:0")
	addr := srv.url[len("http://"):]
	jt, err := srv.admin.CreateJoinToken(context.Background(), time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	hm, err := hostmetrics.New(hostmetrics.Config{Host: "web1", Read: counterSource()})
	if err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	a, err := agent.New(agent.Config{Server: srv.url, JoinToken: jt.Token, Name: "web1", StateDir: stateDir,
		CaptureDir: filepath.Join(stateDir, "captures"), Engine: fileEngine{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		HeartbeatInterval: 200 * time.Millisecond, PollWait: 5 * time.Second, Metrics: hm})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })

	seconds := func(s *monitorServer) (first, last time.Time, holes int) {
		res, err := s.admin.QueryMetrics(context.Background(), controlplane.MetricsQuery{Host: "web1", Metric: string(tripcap.MetricNetworkInBytes),
			Interface: "eth0", Window: 90 * time.Second, Interval: time.Second, Aggregation: "Total"})
		if err != nil {
			return
		}
		var lastSeen time.Time
		for _, p := range res.Points {
			if p.Count == 0 {
				if !first.IsZero() {
					holes++
				}
				continue
			}
			if first.IsZero() {
				first = p.Time
			}
			last, lastSeen = p.Time, p.Time
		}
		// Seconds after the last point are not holes.
		for _, p := range res.Points {
			if p.Count == 0 && p.Time.After(lastSeen) {
				holes--
			}
		}
		return
	}
	waitFor(t, "4 seconds of points", 15*time.Second, func() bool {
		first, last, _ := seconds(srv)
		return !first.IsZero() && last.Sub(first) >= 4*time.Second
	})
	if st := srv.mon.Stats(); st.Attach.Attaches == 0 {
		t.Errorf("the host was never attached: %+v", st.Attach)
	}
	first, _, _ := seconds(srv)

	// The server goes away for 3 seconds: the agent buffers.
	srv.stop()
	time.Sleep(3 * time.Second)
	srv2 := startMonitorServer(t, dir, addr)
	waitFor(t, "points after the restart and the history before it", 20*time.Second, func() bool {
		f, l, holes := seconds(srv2)
		return !f.IsZero() && !f.After(first) && l.Sub(f) >= 10*time.Second && holes == 0 && srv2.mon.Stats().Attach.HistoryEnds > 0
	})
	f, l, holes := seconds(srv2)
	if holes != 0 || f.After(first) {
		t.Fatalf("after the restart: points from %s to %s with %d holes; the first was at %s", f, l, holes, first)
	}
	if st := srv2.mon.Stats(); st.Attach.Backfilled == 0 {
		t.Errorf("no history was backfilled: %+v", st.Attach)
	}
}
