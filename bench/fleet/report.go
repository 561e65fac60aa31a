package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// printReports prints the tables of saved -json results.
func printReports(w io.Writer, files []string) error {
	for i, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		var res runResult
		if err := json.Unmarshal(b, &res); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		printTable(w, &res)
	}
	return nil
}

// printTable prints one run as Markdown tables: the fleet, then the API.
func printTable(w io.Writer, res *runResult) {
	fmt.Fprintf(w, "### %s — heartbeat %s, %d captures running, %s windows, probe %g req/s + %g full lists/s\n\n",
		res.Backend, res.Heartbeat, res.Captures, res.Window, res.ProbeRate, res.ListAll)
	fmt.Fprintln(w, "| agents | enroll/s | idle: server CPU | idle: req/s | idle sustained | load: server CPU | load: bench CPU | machine busy | load: req/s | server RSS MiB / fds | agent failures | Offline | sustained |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|:---|---:|---:|---:|---:|---:|---:|---:|:---|")
	for _, st := range res.Steps {
		idleCPU, idleReq, idleVerdict := "–", "–", "–"
		if st.Idle != nil {
			idleCPU, idleReq = cores(st.Idle.CPU), fmt.Sprintf("%.0f", st.Idle.RequestsPerSecond)
			idleVerdict = verdict(st.IdleSustained, st.IdleFailed)
		}
		loadCPU, benchCPU, busy, loadReq, rss, fails, offline := "–", "–", "–", "–", "–", "–", "–"
		if l := st.Load; l != nil {
			loadCPU, benchCPU = cores(l.CPU), fmt.Sprintf("%.2f", l.CPU.Bench)
			busy = fmt.Sprintf("%.0f%%", 100*l.CPU.Machine)
			loadReq, rss = fmt.Sprintf("%.0f", l.RequestsPerSecond), fmt.Sprintf("%d / %d", l.ServerRSS, l.ServerFDs)
		}
		if l := firstWindow(st); l != nil {
			fails, offline = fmt.Sprintf("%d", total(st)), fmt.Sprintf("%d", offlineOf(st))
			if st.Load == nil {
				busy = fmt.Sprintf("%.0f%%", 100*l.CPU.Machine)
				rss = fmt.Sprintf("%d / %d", l.ServerRSS, l.ServerFDs)
			}
		}
		fmt.Fprintf(w, "| %d | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			st.Agents, st.EnrollPerSecond, idleCPU, idleReq, idleVerdict, loadCPU, benchCPU, busy, loadReq, rss, fails, offline,
			verdict(st.Sustained, st.Failed))
	}
	fmt.Fprintf(w, "\nLargest sustained fleet: **%d agents** with %d captures running and the API probed; **%d agents** idle (heartbeats and long polls only).\n\n",
		res.Sustained, res.Captures, res.SustainedIdle)

	fmt.Fprintln(w, "API latency in the load window, p50 / p99 (ms), client-side:")
	fmt.Fprintln(w)
	fmt.Fprint(w, "| agents |")
	for _, op := range reportedOps {
		fmt.Fprintf(w, " %s |", op)
	}
	fmt.Fprint(w, "\n|---:|")
	for range reportedOps {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, st := range res.Steps {
		if st.API == nil {
			continue
		}
		fmt.Fprintf(w, "| %d |", st.Agents)
		for _, op := range reportedOps {
			l := st.API[op]
			cell := fmt.Sprintf(" %.1f / %.1f", l.P50ms, l.P99ms)
			if l.Errors > 0 {
				cell += fmt.Sprintf(" (%d err)", l.Errors)
			}
			fmt.Fprintf(w, "%s (n=%d) |", cell, l.N)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Agent-protocol routes in the load window, server-side (count; p50 / p99 as histogram bucket bounds, ms; long polls by count only):")
	fmt.Fprintln(w)
	routes := []string{"agentHeartbeat", "agentAssignments", "agentReports", "agentEnroll"}
	if res.Metrics {
		routes = append(routes, "agentPostMetrics") // per-second POSTs; the metric stream is one long request
	}
	fmt.Fprintf(w, "| agents | %s |\n|---:|%s\n", strings.Join(routes, " | "), strings.Repeat("---:|", len(routes)))
	for _, st := range res.Steps {
		l := st.Load
		if l == nil {
			l = st.Idle
		}
		if l == nil {
			continue
		}
		fmt.Fprintf(w, "| %d |", st.Agents)
		for _, r := range routes {
			rs, ok := l.Routes[r]
			if !ok {
				fmt.Fprint(w, " – |")
				continue
			}
			cell := fmt.Sprintf(" %d; ≤%s / ≤%s", rs.Count, bound(rs.P50ms), bound(rs.P99ms))
			if r == "agentAssignments" {
				cell = fmt.Sprintf(" %d", rs.Count) // they wait up to 30 s by design
			}
			if rs.Errors > 0 {
				cell += fmt.Sprintf(" (%d err)", rs.Errors)
			}
			fmt.Fprintf(w, "%s |", cell)
		}
		fmt.Fprintln(w)
	}
	if res.Metrics {
		printMetricsTable(w, res)
	}
	fmt.Fprintf(w, "\nMachine: %d CPUs (%s), %d GiB, Linux %s, %s. %s, started %s. Command: `%s`\n",
		res.Machine.CPUs, res.Machine.CPUModel, res.Machine.MemoryGiB, res.Machine.Kernel, res.Machine.Go,
		res.Note, res.Started.Format(time.RFC3339), res.Command)
}

func cores(u cpuUsage) string {
	if u.DB > 0 {
		return fmt.Sprintf("%.2f + db %.2f", u.Server, u.DB)
	}
	return fmt.Sprintf("%.2f", u.Server)
}

func bound(ms float64) string {
	if ms < 0 {
		return "60000+"
	}
	return fmt.Sprintf("%g", ms)
}

func firstWindow(st stepResult) *window {
	if st.Load != nil {
		return st.Load
	}
	return st.Idle
}

// total counts the agents' failures over the step's windows.
func total(st stepResult) int64 {
	var n int64
	for _, w := range []*window{st.Idle, st.Load} {
		if w == nil {
			continue
		}
		for _, v := range w.AgentFailures {
			n += v
		}
	}
	return n
}

// offlineOf counts the hosts that went Offline over the step's windows.
func offlineOf(st stepResult) int {
	n := 0
	for _, w := range []*window{st.Idle, st.Load} {
		if w != nil {
			n += w.WentOffline
		}
	}
	return n
}

func verdict(ok bool, failed []string) string {
	if ok {
		return "yes"
	}
	return "**no**: " + strings.Join(failed, "; ")
}

// printMetricsTable prints the metric path's windows (-metrics).
func printMetricsTable(w io.Writer, res *runResult) {
	fmt.Fprintf(w, "\nMetric path (-metrics: %d series a host a second, %d rules on every host, %.1f %% of hosts breaching a minute in the load window; delay and lag are server-side histogram bucket bounds, ms):\n\n",
		seriesPerHost, res.Rules, 100*res.BreachRate)
	fmt.Fprintln(w, "| agents | window | points/s stored / sent | late > 1 s | delay p50 / p99 | agents' sampling p99 | refused | agent dropped | evaluations | lag > 1 s | lag p50 / p99 | breaches captured | breach → Running p50 / p95 / max ms | server RSS KiB/host | store KiB/host |")
	fmt.Fprintln(w, "|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, st := range res.Steps {
		for _, x := range []struct {
			name string
			w    *window
		}{{"idle", st.Idle}, {"load", st.Load}} {
			if x.w == nil || x.w.Metrics == nil {
				continue
			}
			m := x.w.Metrics
			var refused uint64
			for _, v := range m.Refused {
				refused += v
			}
			breach := "–"
			if m.Breaches.Scheduled > 0 {
				breach = fmt.Sprintf("%.0f / %.0f / %.0f", m.Breaches.P50ms, m.Breaches.P95ms, m.Breaches.MaxMs)
			}
			fmt.Fprintf(w, "| %d | %s | %.0f / %.0f | %d | ≤%s / ≤%s | ≤%s | %d | %d | %d | %d | ≤%s / ≤%s | %d of %d | %s | %.0f | %.1f |\n",
				st.Agents, x.name, m.PointsPerSecond, m.ExpectedPerSecond, m.Late, bound(m.DelayP50ms), bound(m.DelayP99ms), bound(m.SampledP99ms), refused,
				m.AgentDropped, m.Evaluations, m.LagOver1s, bound(m.LagP50ms), bound(m.LagP99ms), m.Breaches.Captured, m.Breaches.Scheduled,
				breach, m.ServerRSSKiBPerHost, m.StoreKiBPerHost)
		}
	}
}
