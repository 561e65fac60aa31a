//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/promtest"
	"github.com/tripcap/tripcap/internal/testenv"
	"github.com/tripcap/tripcap/responder/payload"
)

// Loopback ports of the control namespace (a lab's own), for the peers.
const (
	prometheusPort   = "19090"
	alertmanagerPort = "19093"
)

// TestResponderPrometheusAlertmanager: stock Prometheus scrapes the
// agents' /metrics, a rule on rate(tripcap_network_out_bytes_total[…])
// fires when h1 floods h2, and stock Alertmanager's webhook_config posts to
// the responder's function URL with its key: the capture runs on h1 only.
func TestResponderPrometheusAlertmanager(t *testing.T) {
	testenv.RequireBinary(t, "prometheus")
	testenv.RequireBinary(t, "prometheus-alertmanager")
	l := newLab(t)
	h1, h2 := l.addHost("h1"), l.addHost("h2")
	l.link(h1, h2)
	// Agents' /metrics on their control links, where Prometheus (in the
	// control namespace) reaches them.
	var targets []string
	for _, h := range []*host{h1, h2} {
		addr := h.ctlLink.B.Addr.Addr().String() + ":9465"
		l.stopAgent(h, syscall.SIGTERM)
		l.startAgent(h, "--metrics-listen", addr)
		targets = append(targets, addr)
	}
	l.cli(nil, "responder", "create", "pc", "--time-limit", "5s", "--filter", "protocol=UDP,remotePort=7100")
	var key tripcap.ResponderKey
	if err := l.cliJSON(&key, "responder", "keys", "create", "pc", "alertmanager"); err != nil || key.Secret == "" {
		t.Fatalf("key: %+v %v", key, err)
	}

	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tj, _ := json.Marshal(targets)
	rules := write("rules.yml", `groups:
- name: tripcap
  interval: 1s
  rules:
  - alert: NetworkOutHigh
    expr: max by (host, instance) (rate(tripcap_network_out_bytes_total[5s])) > 200000
    annotations:
      summary: "{{ $labels.host }} sends {{ $value }} B/s"
`)
	promCfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
- job_name: tripcap-agent
  static_configs:
  - targets: %s
alerting:
  alertmanagers:
  - static_configs:
    - targets: ["127.0.0.1:%s"]
`, rules, tj, alertmanagerPort)
	amCfg := write("alertmanager.yml", fmt.Sprintf(`route:
  receiver: tripcap
  group_by: [host]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: tripcap
  webhook_configs:
  - url: "https://127.0.0.1:%s/api/functions/pc?code=%s"
    send_resolved: true
    http_config:
      tls_config:
        ca_file: %q
`, serverPort, key.Secret, l.caFile()))
	start := func(name string, argv ...string) {
		cmd := l.ctl.Command(context.Background(), argv...)
		out := l.logFile(name)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	}
	start("alertmanager", "prometheus-alertmanager", "--config.file="+amCfg, "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address=127.0.0.1:"+alertmanagerPort, "--cluster.listen-address=")
	// Prometheus listens in the control namespace, which the test
	// reaches through the service address.
	promtest.Run(t, promtest.Options{Config: promCfg, Command: l.ctl.Command, Log: l.logFile("prometheus"),
		Listen: "0.0.0.0:" + prometheusPort, URL: "http://" + l.net.ServiceAddr().String() + ":" + prometheusPort})
	// Let Prometheus see both targets and a few samples before the flood.
	time.Sleep(5 * time.Second)

	stop := l.flood(h1, h2, 7100)
	defer stop()
	var runs []*tripcap.ResponderRun
	l.eventually("Alertmanager's post and the capture", 60*time.Second, func() bool {
		if l.cliJSON(&runs, "responder", "runs", "pc") != nil {
			return false
		}
		for _, r := range runs {
			if r.Decision == tripcap.DecisionStarted {
				return true
			}
		}
		return false
	})
	for _, r := range runs {
		if r.Source != "http" || r.Format != string(payload.FormatAlertmanager) {
			t.Fatalf("run %s: source %s format %s", r.ID, r.Source, r.Format)
		}
		for _, rh := range r.Hosts {
			if rh.Decision == tripcap.DecisionStarted && rh.HostName != "h1" {
				t.Fatalf("captured on %s, want only h1", rh.HostName)
			}
		}
	}
	var caps []*tripcap.PacketCapture
	if err := l.cliJSON(&caps, "capture", "list"); err != nil {
		t.Fatal(err)
	}
	var h1Host tripcap.Host
	if err := l.cliJSON(&h1Host, "host", "show", "h1"); err != nil {
		t.Fatal(err)
	}
	if len(caps) != 1 || caps[0].HostID != h1Host.ID {
		t.Fatalf("captures: %d, want one, on h1", len(caps))
	}
	l.eventually("the capture to run", 10*time.Second, func() bool {
		c := l.capture(caps[0].Name)
		return c.Status == tripcap.StatusRunning || c.Status == tripcap.StatusStopped
	})
}
