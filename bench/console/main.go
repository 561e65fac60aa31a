// Command console measures the web console's server time per page on a
// large installation: a SQLite store seeded through the store's own API
// with -hosts hosts (default 10,000), -captures stored captures (default
// 100,000, spread over the hosts, terminal so no watcher limit applies),
// rules, alerts and audit events, served by the same stack `tripcap server`
// runs (control plane, monitor, responders, identities, audit, the API
// server with the console mounted at "/"). A signed-in browser-like client
// asks each page -n times in turn (A B C … A B C …, so a noisy moment of
// the shared machine hits every page alike) after one warm-up round; the
// server time of each answer is measured around the whole handler
// (authentication, audit, the page), and the p50, p95 and max are printed
// per page, with a failure when a p95 passes -budget (50 ms).
//
// Run: go run ./bench/console [-hosts 10000] [-captures 100000] [-n 200] [-json out.json]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/audit"
	"github.com/tripcap/tripcap/console"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/filestore"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/identity"
	"github.com/tripcap/tripcap/responder"
	"github.com/tripcap/tripcap/seal"
	"github.com/tripcap/tripcap/sqlite"
)

type pageResult struct {
	Page     string  `json:"page"`
	Path     string  `json:"path"`
	Requests int     `json:"requests"`
	P50ms    float64 `json:"p50ms"`
	P95ms    float64 `json:"p95ms"`
	MaxMs    float64 `json:"maxMs"`
	Bytes    int     `json:"bytes"`
}

type report struct {
	Hosts, Captures, Alerts, AuditEvents int
	SeedSeconds                          float64
	BudgetMs                             float64
	LoadBefore, LoadAfter                string
	Pages                                []pageResult
}

func main() {
	hosts := flag.Int("hosts", 10_000, "hosts to seed")
	captures := flag.Int("captures", 100_000, "stored captures to seed")
	alerts := flag.Int("alerts", 2_000, "alerts to seed")
	events := flag.Int("audit-events", 20_000, "audit events to seed")
	n := flag.Int("n", 200, "requests per page")
	budget := flag.Duration("budget", 50*time.Millisecond, "the p95 each page must stay under")
	dir := flag.String("dir", "", "data directory (default: a new temporary one, removed after)")
	out := flag.String("json", "", "write the report as JSON to this file")
	only := flag.String("only", "", "measure only the pages whose name contains this")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measured requests to this file")
	flag.Parse()
	if err := run(*hosts, *captures, *alerts, *events, *n, *budget, *dir, *out, *only, *cpuprofile); err != nil {
		fmt.Fprintln(os.Stderr, "bench/console:", err)
		os.Exit(1)
	}
}

func run(nHosts, nCaptures, nAlerts, nEvents, n int, budget time.Duration, dir, out, only, cpuprofile string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if dir == "" {
		d, err := os.MkdirTemp("", "tripcap-bench-console-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sealer, err := seal.Load(filepath.Join(dir, "master.key"), "", log)
	if err != nil {
		return err
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "tripcap.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	store.SetSealer(sealer)
	rep := report{Hosts: nHosts, Captures: nCaptures, Alerts: nAlerts, AuditEvents: nEvents, BudgetMs: ms(budget), LoadBefore: loadavg()}

	t0 := time.Now()
	fmt.Fprintf(os.Stderr, "seeding %d hosts, %d captures, %d alerts, %d audit events…\n", nHosts, nCaptures, nAlerts, nEvents)
	// A -dir seeded before is used as it is (seeding takes minutes).
	seedFile := filepath.Join(dir, "seeded.json")
	var seeded *seeded
	if b, err := os.ReadFile(seedFile); err == nil {
		if err := json.Unmarshal(b, &seeded); err != nil {
			return fmt.Errorf("%s: %w", seedFile, err)
		}
		fmt.Fprintf(os.Stderr, "using the store seeded before in %s\n", dir)
	} else if seeded, err = seed(ctx, store, nHosts, nCaptures, nAlerts, nEvents); err != nil {
		return err
	} else if b, err := json.Marshal(seeded); err != nil {
		return err
	} else if err := os.WriteFile(seedFile, b, 0o644); err != nil {
		return err
	}
	rep.SeedSeconds = time.Since(t0).Seconds()
	fmt.Fprintf(os.Stderr, "seeded in %.0f s\n", rep.SeedSeconds)

	blobs, err := filestore.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		return err
	}
	svc := controlplane.New(store, controlplane.Config{Storage: map[string]tripcap.BlobStore{"local": blobs}, DefaultStorage: "local"}, log)
	go func() { _ = svc.Run(ctx) }()
	token, err := svc.EnsureAdmin(ctx, filepath.Join(dir, "admin.token"))
	if err != nil {
		return err
	}
	rsp, err := responder.New(svc.ResponderDeps(), log, responder.Config{})
	if err != nil {
		return err
	}
	go func() { _ = rsp.Run(ctx) }()
	mon, err := controlplane.NewMonitor(store, log, controlplane.MonitorConfig{Responder: rsp, WebhookTargets: actiongroup.Targets{}})
	if err != nil {
		return err
	}
	go func() { _ = mon.Run(ctx) }()
	rec := audit.New(store, log, audit.Config{Retention: -1})
	defer rec.Close()
	ts := httptest.NewUnstartedServer(nil)
	ids, err := identity.New(store, identity.Config{Issuer: "http://" + ts.Listener.Addr().String()}, log)
	if err != nil {
		return err
	}
	svc.SetIdentities(ids)
	srv := tchttp.NewServer(svc, log, tchttp.WithMonitor(mon), tchttp.WithResponders(rsp), tchttp.WithIdentity(ids), tchttp.WithAudit(rec))
	c, err := console.New(console.Config{Service: svc, Monitor: mon, Responders: rsp, Identity: ids, Audit: rec}, log)
	if err != nil {
		return err
	}
	srv.MountConsole(func(g tchttp.ConsoleGate) http.Handler { return c.Handler(g) })
	timer := &serverTimer{}
	ts.Config.Handler = timer.wrap(srv)
	ts.Start()
	defer ts.Close()

	b, err := signIn(ts.URL, token)
	if err != nil {
		return err
	}
	pages := []struct{ name, path string }{
		{"overview", "/"},
		{"hosts", "/hosts"},
		{"hosts filtered by name", "/hosts?name=" + url.QueryEscape(seeded.Host.Name)},
		{"hosts filtered by label", "/hosts?label=" + url.QueryEscape("team=t7")},
		{"hosts, 5,000 deep", "/hosts?cursor=" + url.QueryEscape(seeded.HostsCursor)},
		{"host", "/hosts/" + seeded.Host.Name},
		{"captures", "/captures"},
		{"captures of a host", "/captures?host=" + seeded.Host.Name},
		{"capture", "/captures/" + seeded.Capture},
		{"rules", "/rules"},
		{"rule editor", "/rules/" + seeded.Rule},
		{"new rule (seed preset)", "/rules/new?preset=seed"},
		{"alerts", "/alerts"},
		{"incident", "/alerts/" + seeded.Alert},
		{"incident series", "/alerts/" + seeded.Alert + "/series"},
		{"responders", "/responders"},
		{"responder", "/responders/pc"},
		{"action groups", "/action-groups"},
		{"storage", "/storage"},
		{"audit log", "/audit"},
		{"audit log filtered", "/audit?action=createCapture"},
		{"access", "/access"},
	}
	pages = slices.DeleteFunc(pages, func(p struct{ name, path string }) bool { return !strings.Contains(p.name, only) })
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	times := make([][]time.Duration, len(pages))
	sizes := make([]int, len(pages))
	for round := -1; round < n; round++ {
		for i, p := range pages {
			d, size, err := timer.get(b, ts.URL+p.path)
			if err != nil {
				return fmt.Errorf("%s (%s): %w", p.name, p.path, err)
			}
			if round >= 0 { // the first round warms caches up
				times[i] = append(times[i], d)
			}
			sizes[i] = size
		}
	}
	rep.LoadAfter = loadavg()
	failed := 0
	fmt.Printf("console page server time, %d hosts, %d stored captures, %d requests each (load %s → %s)\n", nHosts, nCaptures, n, rep.LoadBefore, rep.LoadAfter)
	fmt.Printf("%-26s %9s %9s %9s %9s  %s\n", "page", "p50 ms", "p95 ms", "max ms", "KiB", "path")
	for i, p := range pages {
		ds := times[i]
		slices.Sort(ds)
		r := pageResult{Page: p.name, Path: p.path, Requests: len(ds), P50ms: ms(quantile(ds, 0.50)), P95ms: ms(quantile(ds, 0.95)), MaxMs: ms(ds[len(ds)-1]), Bytes: sizes[i]}
		rep.Pages = append(rep.Pages, r)
		mark := ""
		if quantile(ds, 0.95) >= budget {
			mark = "  OVER BUDGET"
			failed++
		}
		fmt.Printf("%-26s %9.2f %9.2f %9.2f %9.1f  %s%s\n", p.name, r.P50ms, r.P95ms, r.MaxMs, float64(r.Bytes)/1024, p.path, mark)
	}
	if out != "" {
		js, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(out, js, 0o644); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d pages have a p95 over %s", failed, budget)
	}
	fmt.Printf("every page's p95 is under %s\n", budget)
	return nil
}

// serverTimer measures each answer's time inside the server: from the
// handler's start to the end of its writing.
type serverTimer struct {
	mu   sync.Mutex
	last time.Duration
}

func (s *serverTimer) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		d := time.Since(start)
		s.mu.Lock()
		s.last = d
		s.mu.Unlock()
	})
}

// get asks for a page (one request at a time) and returns its server time.
func (s *serverTimer) get(c *http.Client, u string) (time.Duration, int, error) {
	resp, err := c.Get(u)
	if err != nil {
		return 0, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("%s: %.300s", resp.Status, body)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, len(body), nil
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs in as the bootstrap admin (an Owner: every page, every control).
func signIn(base, token string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(base + "/signin")
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfInput.FindSubmatch(body)
	if m == nil {
		return nil, fmt.Errorf("no CSRF token on the sign-in page")
	}
	resp, err = c.PostForm(base+"/signin", url.Values{"csrf": {string(m[1])}, "token": {token}})
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("sign in: %s", resp.Status)
	}
	return c, nil
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)-1) + 0.5)
	return sorted[min(i, len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
