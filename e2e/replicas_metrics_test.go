//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/pgtest"
	"github.com/tripcap/tripcap/internal/testenv"
	"github.com/tripcap/tripcap/internal/trafficgen"
	"github.com/tripcap/tripcap/tlscert"
)

// TestReplicasShareMetricsAndAlerts: two replicas on one PostgreSQL behind
// a TCP balancer, agents on dotted-name hosts spread across them, a rule
// whose one-minute window (Minimum of Network Out Total above 100 kB/s,
// every second) needs a full minute of flood. web-2.example.com's alert
// fires on replica A; web-1.example.com's breach starts on A; A is killed
// (SIGKILL) 20 s into web-1's breach. The agents reconnect through the
// balancer to B, and:
//
//   - web-1's alert fires once, on B, in time: its flood stops 65 s after
//     it began, so B fires only if the window's first 20 s (seen by A) and
//     the seconds of the handoff reach it with the agent's history: B
//     alone, with 48 of 60 seconds needed for a window, would never see a
//     full window of flood. The alert's responder captures on web-1 and
//     the file is stored.
//   - web-2's alert, fired by A, is not fired again by B (the database's
//     fence, or B's reload of the host's alerts on attach) and B resolves
//     it when the flood stops.
func TestReplicasShareMetricsAndAlerts(t *testing.T) {
	testenv.RequireRoot(t)
	dsn := pgtest.FreshDatabase(t)
	dir := t.TempDir()
	lab := netns.New(t)
	// The balancer listens at the lab's service address in the root
	// namespace; every host routes it over its own link.
	lab.AddService(nil)
	svc := lab.ServiceAddr()
	sink := lab.Namespace()
	type host struct {
		name string
		ns   *netns.Namespace
		ctl  *netns.Link
		data *netns.Link // to sink
	}
	var hosts []*host
	for _, name := range []string{"web-1.example.com", "web-3.example.com", "web-2.example.com"} {
		ns := lab.Namespace()
		h := &host{name: name, ns: ns, ctl: lab.Veth(nil, ns, netns.LinkOptions{}), data: lab.Veth(ns, sink, netns.LinkOptions{})}
		lab.RouteService(h.ctl.B, h.ctl.A)
		hosts = append(hosts, h)
	}
	web1, web3, web2 := hosts[0], hosts[1], hosts[2]

	rs := newReplicaSet(t, dsn, "--heartbeat", "1s", "--tls-san", svc.String(), "--log-level", "debug")
	a := rs.start("replica-a", "127.0.0.1:0")
	token := rs.token()
	caFile := rs.caFile()
	cli := func(url string, v any, args ...string) {
		t.Helper()
		out, err := exec.Command(binary, append([]string{"--server", url, "--token", token, "--ca-file", caFile, "-o", "json"}, args...)...).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				out = append(out, ee.Stderr...)
			}
			t.Fatalf("tripcap %s: %v: %s", strings.Join(args, " "), err, out)
		}
		if v != nil {
			if err := json.Unmarshal(out, v); err != nil {
				t.Fatalf("tripcap %s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
	}
	// The rule and its responder exist before B starts, so both load them.
	cli(a.url, nil, "responder", "create", "pc", "--time-limit", "5s", "--filter", "protocol=UDP,remotePort=7100")
	cli(a.url, nil, "action-group", "create", "capture", "--responder", "cap=pc")
	var rule tripcap.AlertRule
	cli(a.url, &rule, "rule", "create", "sustained-egress", "--metric", "Network Out Total", "--aggregation", "Minimum",
		"--operator", "GreaterThan", "--threshold", "100000", "--frequency", "1s", "--window", "1m", "--action-group", "capture")
	b := rs.start("replica-b", "127.0.0.1:0")

	lb := startBalancer(t, netip.AddrPortFrom(svc, 8443), []string{hostPort(t, a.url), hostPort(t, b.url)})
	pool, err := tlscert.LoadPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	api, err := tchttp.NewClient(b.url, token, tchttp.WithTLSConfig(tlscert.ClientConfig(pool)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	jt, err := api.CreateJoinToken(ctx, time.Hour, len(hosts))
	if err != nil {
		t.Fatal(err)
	}
	// One at a time, so the balancer's round robin puts web-1 and web-2
	// on A and web-3 on B.
	for _, h := range hosts {
		agent := h.ns.Command(context.Background(), binary, "agent", "--server", "https://"+lb.addr.String(), "--join-token", jt.Token,
			"--name", h.name, "--state-dir", filepath.Join(dir, h.name, "state"), "--capture-dir", filepath.Join(dir, h.name, "captures"),
			"--metrics-listen", "", "--log-level", "debug")
		logPath := filepath.Join(dir, "agent-"+h.name+".log")
		alog, _ := os.Create(logPath)
		agent.Stdout, agent.Stderr = alog, alog
		if err := agent.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = agent.Process.Signal(syscall.SIGTERM)
			_ = agent.Wait()
			if t.Failed() {
				b, _ := os.ReadFile(logPath)
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("--- agent %s (tail) ---\n%s", h.name, b)
			}
		})
		eventually(t, h.name+" online", 15*time.Second, func() bool {
			got, err := api.GetHost(ctx, h.name)
			return err == nil && got.State == tripcap.HostOnline && lb.backendOf(h.ctl.B.Addr.Addr()) >= 0
		})
	}
	for _, c := range []struct {
		h    *host
		want int
	}{{web1, 0}, {web3, 1}, {web2, 0}} {
		if got := lb.backendOf(c.h.ctl.B.Addr.Addr()); got != c.want {
			t.Fatalf("%s connected through replica %d, want %d", c.h.name, got, c.want)
		}
	}
	alertsOn := func(h *host) []*tripcap.Alert {
		as, err := api.ListAlerts(ctx, controlplane.AlertQuery{Rule: rule.ID, Host: h.name})
		if err != nil {
			t.Logf("listing %s's alerts: %v", h.name, err)
			return nil
		}
		return as
	}

	// web-2's breach: its alert fires on A.
	stop2 := floodFor(t, web2.ns, sink, web2.data, 150*time.Second)
	time.Sleep(40 * time.Second)
	// web-1's breach starts while its agent is on A.
	web1Start := time.Now()
	stop1 := floodFor(t, web1.ns, sink, web1.data, 65*time.Second)
	eventually(t, "web-2's alert to fire on A", 60*time.Second, func() bool { return len(alertsOn(web2)) == 1 })
	fired2 := alertsOn(web2)[0]
	if len(alertsOn(web1)) != 0 {
		t.Fatal("web-1's alert fired before its window was complete")
	}
	if d := 20*time.Second - time.Since(web1Start); d > 0 {
		time.Sleep(d)
	}
	if len(alertsOn(web1)) != 0 {
		t.Fatal("web-1's alert fired before its window was complete")
	}
	killedAt := time.Now()
	_ = a.cmd.Process.Kill()
	_, _ = a.cmd.Process.Wait()
	t.Logf("replica A killed %s into web-1's breach", killedAt.Sub(web1Start).Round(time.Millisecond))
	eventually(t, "web-1 and web-2 to reconnect through B", 20*time.Second, func() bool {
		return lb.backendOf(web1.ctl.B.Addr.Addr()) == 1 && lb.backendOf(web2.ctl.B.Addr.Addr()) == 1
	})
	reconnected := time.Now()
	t.Logf("agents on B %s after the kill", reconnected.Sub(killedAt).Round(time.Millisecond))

	// web-1: one alert, on time, and the responder's capture on web-1.
	eventually(t, "web-1's alert to fire on B", 75*time.Second-time.Since(web1Start), func() bool { return len(alertsOn(web1)) > 0 })
	fired1 := alertsOn(web1)
	if len(fired1) != 1 || fired1[0].HostName != web1.name || fired1[0].MonitorCondition != tripcap.ConditionFired {
		t.Fatalf("web-1's alerts: %+v, want one Fired", fired1)
	}
	t.Logf("web-1's alert fired %s after its breach began", fired1[0].FiredAt.Sub(web1Start).Round(time.Second))
	var capture *tripcap.PacketCapture
	eventually(t, "the responder's capture on web-1 to be stored", 40*time.Second, func() bool {
		caps, err := api.ListCaptures(ctx, "", web1.name)
		if err != nil || len(caps) == 0 {
			return false
		}
		capture = caps[0]
		return len(caps) == 1 && capture.Status.Terminal() && len(capture.Files) == 1 && capture.Files[0].Stored
	})
	if h, err := api.GetHost(ctx, web1.name); err != nil || capture.HostID != h.ID || capture.Status != tripcap.StatusStopped {
		t.Fatalf("capture %s on host %s (%s), want web-1's, Stopped", capture.Name, capture.HostID, capture.Status)
	}
	stop1()

	// web-2: B keeps A's alert (no second one, however long the flood
	// lasts on B alone) and resolves it when the flood stops.
	if d := 55*time.Second - time.Since(reconnected); d > 0 {
		time.Sleep(d)
	}
	stop2()
	eventually(t, "web-2's alert to resolve on B", 30*time.Second, func() bool {
		as := alertsOn(web2)
		return len(as) != 1 || as[0].MonitorCondition == tripcap.ConditionResolved
	})
	as := alertsOn(web2)
	if len(as) != 1 || as[0].ID != fired2.ID || len(as[0].History) != 2 {
		t.Fatalf("web-2's alerts: %d (%+v); want A's alert %s, Fired then Resolved", len(as), as, fired2.ID)
	}
	if as := alertsOn(web1); len(as) != 1 {
		t.Fatalf("web-1's alerts at the end: %d, want 1", len(as))
	}
	if as := alertsOn(web3); len(as) != 0 {
		t.Fatalf("web-3 (idle) has %d alerts", len(as))
	}
	// Nothing was delivered twice: web-2's alert started one capture (A's).
	if caps, err := api.ListCaptures(ctx, "", web2.name); err != nil || len(caps) != 1 {
		t.Fatalf("web-2's captures: %d (%v), want the one its alert started on A", len(caps), err)
	}
}

// hostPort is a server URL's host:port.
func hostPort(t *testing.T, url string) string {
	t.Helper()
	_, hp, ok := strings.Cut(url, "://")
	if !ok {
		t.Fatalf("server URL %q", url)
	}
	hp, _, _ = strings.Cut(hp, "/")
	return hp
}

// floodFor sends about 1.2 MB/s of UDP from a host over its data link to
// a sink in to (a closed port would refuse the flow) for at most d, until stop.
func floodFor(t *testing.T, from, to *netns.Namespace, link *netns.Link, d time.Duration) (stop func()) {
	t.Helper()
	dst := netip.AddrPortFrom(link.B.Addr.Addr(), 7100)
	var sink *trafficgen.Sink
	if err := to.Do(func() (err error) { sink, err = trafficgen.Listen("udp", dst); return err }); err != nil {
		t.Fatalf("listening on %s: %v", dst, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	done := make(chan error, 1)
	go func() {
		done <- from.Do(func() error {
			_, err := trafficgen.Send(ctx, trafficgen.Flow{Network: "udp", Src: netip.AddrPortFrom(link.A.Addr.Addr(), 0), Dst: dst,
				Count: int(d / time.Millisecond), PayloadSize: 1200, Interval: time.Millisecond, ID: 7})
			return err
		})
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && ctx.Err() == nil {
				t.Errorf("flooding: %v", err)
			}
			sink.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// balancer is a TCP load balancer as users put in front of replicas (a
// Kubernetes Service with ClientIP affinity): a new client goes to the
// next live backend in turn and stays there while it lives; a backend
// that refuses a connection is dead, and its clients' connections break,
// so they reconnect to another.
type balancer struct {
	t        *testing.T
	addr     netip.AddrPort
	backends []string

	mu       sync.Mutex
	dead     []bool
	next     int
	affinity map[netip.Addr]int
	// open counts each client's open connections per backend.
	open map[netip.Addr]map[int]int
}

func startBalancer(t *testing.T, addr netip.AddrPort, backends []string) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{t: t, addr: addr, backends: backends, dead: make([]bool, len(backends)), affinity: map[netip.Addr]int{}, open: map[netip.Addr]map[int]int{}}
	var wg sync.WaitGroup
	var connsMu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		connsMu.Lock()
		for c := range conns {
			c.Close()
		}
		connsMu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connsMu.Lock()
			conns[c] = true
			connsMu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				b.serve(c)
				connsMu.Lock()
				delete(conns, c)
				connsMu.Unlock()
			}()
		}
	}()
	return b
}

// serve proxies one client connection to its backend.
func (b *balancer) serve(c net.Conn) {
	defer c.Close()
	client := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	var up net.Conn
	idx := -1
	for range len(b.backends) {
		idx = b.pick(client)
		if idx < 0 {
			return
		}
		var err error
		if up, err = net.DialTimeout("tcp", b.backends[idx], 2*time.Second); err == nil {
			break
		}
		b.markDead(idx)
		up = nil
	}
	if up == nil {
		return
	}
	defer up.Close()
	b.count(client, idx, 1)
	defer b.count(client, idx, -1)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done // either side ending ends both
}

func (b *balancer) pick(client netip.Addr) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i, ok := b.affinity[client]; ok && !b.dead[i] {
		return i
	}
	for range len(b.backends) {
		i := b.next
		b.next = (b.next + 1) % len(b.backends)
		if !b.dead[i] {
			b.affinity[client] = i
			return i
		}
	}
	return -1
}

func (b *balancer) markDead(i int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.dead[i] {
		b.dead[i] = true
		b.t.Logf("balancer: backend %d (%s) is dead", i, b.backends[i])
	}
}

func (b *balancer) count(client netip.Addr, backend, delta int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open[client] == nil {
		b.open[client] = map[int]int{}
	}
	b.open[client][backend] += delta
}

// backendOf is the backend a client has open connections to, -1 for none.
func (b *balancer) backendOf(client netip.Addr) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, n := range b.open[client] {
		if n > 0 {
			return i
		}
	}
	return -1
}
