//go:build linux

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/agent"
	"github.com/tripcap/tripcap/internal/trafficgen"
)

// TestTriggerLatency measures, on netns hosts, how long an alert takes to
// become a Running capture, over repeated trials (TRIPCAP_TRIGGER_TRIALS,
// default 3; bench/trigger/run.sh runs 20), and reports p50 and p95:
//
//   - internal path: from the start of a burst (the breach) to the capture
//     Running, through a Network Out Total rule evaluated every second, its
//     action group and a responder with preTriggerSeconds 10; with a
//     trickle of matching traffic before the burst it also reports how long
//     before the alert the file starts;
//   - inbound path: from an Alertmanager webhook POST to
//     /api/functions/{responder} to the capture Running.
//
// The limits asserted are generous (the machine may be shared); the
// figures are what docs/performance.md records.
func TestTriggerLatency(t *testing.T) {
	trials := 3
	if v := os.Getenv("TRIPCAP_TRIGGER_TRIALS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("TRIPCAP_TRIGGER_TRIALS=%q", v)
		}
		trials = n
	}
	l := newLab(t)
	h1, h2 := l.addHost("h1"), l.addHost("h2")
	l.link(h1, h2)
	for _, h := range []*host{h1, h2} {
		l.stopAgent(h, syscall.SIGTERM)
		l.startAgent(h, "--pre-trigger-seconds", "15")
	}
	l.eventually("h1 Online again", 10*time.Second, func() bool {
		var got tripcap.Host
		return l.cliJSON(&got, "host", "show", "h1") == nil && got.State == tripcap.HostOnline
	})
	api := l.api()
	ctx := t.Context()

	// The trickle goes to 7101, the burst to 7100: the file holds both.
	l.cli(nil, "responder", "create", "pc", "--pre-trigger", "10s", "--time-limit", "2s", "--filter", "protocol=UDP,remotePort=7100-7101")
	l.cli(nil, "action-group", "create", "capture", "--responder", "cap=pc")
	l.cli(nil, "rule", "create", "high-egress", "--metric", "Network Out Total", "--aggregation", "Average",
		"--operator", "GreaterThan", "--threshold", "200000", "--frequency", "1s", "--window", "5s", "--action-group", "capture")
	l.eventually("h1's metrics on the server", 20*time.Second, func() bool { return l.points("h1") > 0 })

	// running waits for the newest run's capture to be Running (or
	// already Stopped: a 2 s capture may end between two polls) and
	// returns when it was first seen so.
	running := func(responder string, after time.Time) (time.Time, *tripcap.PacketCapture) {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			runs, err := api.ListResponderRuns(ctx, responder, 1)
			if err == nil && len(runs) == 1 && runs[0].ReceivedAt.After(after) && len(runs[0].Hosts) > 0 && runs[0].Hosts[0].CaptureID != "" {
				c, err := api.GetCapture(ctx, "", runs[0].Hosts[0].CaptureID)
				if err == nil && (c.Status == tripcap.StatusRunning || c.Status == tripcap.StatusStopped) {
					return time.Now(), c
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no Running capture of %s", responder)
		return time.Time{}, nil
	}

	// internal is from the burst's start, which includes the rule's own
	// window filling up (an Average over 5 s crosses 200 kB/s only after
	// enough of the burst is in it); fromBreach is from the breach as the
	// metric records it: the end of the second whose point crossed the
	// threshold, the alert's firedDateTime.
	var internal, fromBreach, leads []time.Duration
	for i := range trials {
		// A trickle of matching traffic (well under the threshold) for 12 s,
		// then the burst.
		trickle := l.trickle(h1, h2, 7101)
		// 12 s of trickle, plus a random part of the agents' metric
		// shipping period, so trials do not lock onto one phase of it.
		time.Sleep(12*time.Second + rand.N(agent.MetricsShipInterval))
		burst := time.Now()
		stop := l.flood(h1, h2, 7100)
		seen, c := running("pc", burst)
		internal = append(internal, seen.Sub(burst))
		stop()
		trickle()
		// The capture ends (2 s) and is stored; its file's first packet
		// against the alert's firedDateTime.
		l.eventually("the stored file", 30*time.Second, func() bool {
			c2, err := api.GetCapture(ctx, "", c.ID)
			return err == nil && c2.Status == tripcap.StatusStopped && len(c2.Files) > 0 && c2.Files[0].Stored
		})
		alerts := l.alerts()
		if len(alerts) == 0 {
			t.Fatal("no alert")
		}
		f := l.download(c.ID)
		out, err := exec.Command("tshark", "-r", f, "-T", "fields", "-e", "frame.time_epoch", "-c", "1").Output()
		if err != nil {
			t.Fatalf("tshark: %v", err)
		}
		sec, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			t.Fatalf("first packet time %q: %v", out, err)
		}
		leads = append(leads, alerts[0].FiredAt.Sub(time.Unix(0, int64(sec*1e9))))
		fromBreach = append(fromBreach, seen.Sub(alerts[0].FiredAt))
		t.Logf("internal trial %d: breach → Running %s; burst start → Running %s; file starts %s before the alert", i+1,
			fromBreach[i].Round(time.Millisecond), internal[i].Round(time.Millisecond), leads[i].Round(time.Millisecond))
		// The alert resolves before the next trial, so the next burst fires anew.
		l.eventually("the alert to resolve", 60*time.Second, func() bool {
			as := l.alerts()
			return len(as) > 0 && as[0].MonitorCondition == tripcap.ConditionResolved
		})
	}

	// Inbound: Alertmanager payloads posted to the function URL.
	l.cli(nil, "responder", "create", "inbound", "--time-limit", "2s", "--name-conflict", "unique", "--filter", "protocol=UDP,remotePort=7100")
	var key tripcap.ResponderKey
	if err := l.cliJSON(&key, "responder", "keys", "create", "inbound"); err != nil {
		t.Fatal(err)
	}
	var inbound []time.Duration
	for i := range trials {
		body := fmt.Sprintf(`{"version":"4","status":"firing","receiver":"tripcap","alerts":[{"status":"firing","labels":{"alertname":"NetworkOutHigh","host":"h1"},
			"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z","fingerprint":"fp%d"}]}`, time.Now().UTC().Format(time.RFC3339Nano), i)
		sent := time.Now()
		resp, err := l.httpClient().Post(l.apiURL+"/api/functions/inbound?code="+key.Secret, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST: %s", resp.Status)
		}
		seen, _ := running("inbound", sent.Add(-time.Millisecond))
		inbound = append(inbound, seen.Sub(sent))
		t.Logf("inbound trial %d: POST → Running %s", i+1, inbound[i].Round(time.Millisecond))
		time.Sleep(3 * time.Second) // the previous 2 s capture ends
	}

	p50b, p95b := percentiles(fromBreach)
	p50i, p95i := percentiles(internal)
	p50n, p95n := percentiles(inbound)
	p50l, _ := percentiles(leads)
	t.Logf("RESULT trials=%d breach_p50=%s breach_p95=%s burst_p50=%s burst_p95=%s inbound_p50=%s inbound_p95=%s pretrigger_lead_p50=%s pretrigger_lead_min=%s",
		trials, p50b.Round(time.Millisecond), p95b.Round(time.Millisecond), p50i.Round(time.Millisecond), p95i.Round(time.Millisecond), p50n.Round(time.Millisecond), p95n.Round(time.Millisecond),
		p50l.Round(time.Millisecond), slices.Min(leads).Round(time.Millisecond))
	if p95i > 10*time.Second || p95n > 5*time.Second {
		t.Fatalf("trigger latency far off: internal p95 %s, inbound p95 %s", p95i, p95n)
	}
	if slices.Min(leads) <= 0 {
		t.Fatalf("a file did not start before its alert: %v", leads)
	}
}

// percentiles returns the p50 and p95 of ds (nearest rank).
func percentiles(ds []time.Duration) (p50, p95 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return rank(0.50), rank(0.95)
}

// trickle sends 20 small datagrams a second from one host to another
// (far under any egress threshold) until stop.
func (l *lab) trickle(from, to *host, port uint16) (stop func()) {
	l.t.Helper()
	dst := netip.AddrPortFrom(to.data[from.name], port)
	var sink *trafficgen.Sink
	if err := to.ns.Do(func() (err error) { sink, err = trafficgen.Listen("udp", dst); return err }); err != nil {
		l.t.Fatalf("listening on %s in %s: %v", dst, to.name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = from.ns.Do(func() error {
			_, err := trafficgen.Send(ctx, trafficgen.Flow{Network: "udp", Src: netip.AddrPortFrom(from.data[to.name], 0), Dst: dst,
				Count: 100_000, PayloadSize: 64, Interval: 50 * time.Millisecond, ID: 9})
			return err
		})
	}()
	return func() { cancel(); <-done; sink.Close() }
}
