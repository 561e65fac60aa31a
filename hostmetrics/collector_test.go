package hostmetrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tripcap/tripcap"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type seriesKey struct {
	metric tripcap.MetricID
	iface  string
}

// sums adds up a batch's points per series.
func sums(b tripcap.MetricBatch) map[seriesKey]float64 {
	out := map[seriesKey]float64{}
	for _, p := range b.Points {
		out[seriesKey{p.Metric, p.Interface}] += p.Value
	}
	return out
}

func mustRead(t *testing.T, root string) *Reading {
	t.Helper()
	r, err := read(root)
	if err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestFixtureReading(t *testing.T) {
	r := mustRead(t, "testdata/proc1")
	if got := r.Interfaces["eth0"]; got != (InterfaceCounters{RxBytes: 100000, RxPackets: 1000, RxDropped: 3, TxBytes: 200000, TxPackets: 2000, TxErrors: 1}) {
		t.Errorf("eth0 = %+v", got)
	}
	if r.TCP != (TCPCounters{OutSegs: 2000, InSegs: 1000, RetransSegs: 40, OutRsts: 9, EstabResets: 7}) {
		t.Errorf("tcp = %+v", r.TCP)
	}
	// Inbound: ssh (22), http over IPv6 (80), a connected UDP socket on
	// bound port 53. Outbound: https (IPv4), a SYN_SENT over IPv6, a DNS
	// query from port 45000. Not counted: listeners, TIME_WAIT, loopback
	// peers (IPv4 and v4-mapped), the unconnected UDP socket.
	if r.Flows != (FlowCount{Inbound: 3, Outbound: 3}) {
		t.Errorf("flows = %+v", r.Flows)
	}
	if _, err := read("testdata/nonexistent"); err == nil {
		t.Error("reading a missing root succeeded")
	}
}

func TestPointsFromFixtures(t *testing.T) {
	c, err := New(Config{Host: "vm1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.add(t0.Unix(), mustRead(t, "testdata/proc1")); err != nil {
		t.Fatal(err)
	}
	first := c.Drain(0)
	// The first sample has gauges only: counters need a previous reading.
	if got := sums(first); len(got) != 2 || got[seriesKey{tripcap.MetricInboundFlows, ""}] != 3 || got[seriesKey{tripcap.MetricOutboundFlows, ""}] != 3 {
		t.Fatalf("first sample points %v", got)
	}
	if err := c.add(t0.Unix()+1, mustRead(t, "testdata/proc2")); err != nil {
		t.Fatal(err)
	}
	b := c.Drain(0)
	for _, p := range b.Points {
		if !p.Time.Equal(t0.Add(time.Second)) || p.Host != "" {
			t.Fatalf("point %+v", p)
		}
	}
	if err := b.Validate(); err != nil {
		t.Fatalf("batch does not validate: %v", err)
	}
	want := map[seriesKey]float64{
		{tripcap.MetricNetworkInBytes, "eth0"}: 1000, {tripcap.MetricNetworkOutBytes, "eth0"}: 2000,
		{tripcap.MetricNetworkInPackets, "eth0"}: 10, {tripcap.MetricNetworkOutPackets, "eth0"}: 20,
		{tripcap.MetricNetworkInDrops, "eth0"}: 1, {tripcap.MetricNetworkOutDrops, "eth0"}: 0,
		{tripcap.MetricNetworkInErrors, "eth0"}: 0, {tripcap.MetricNetworkOutErrors, "eth0"}: 2,
		{tripcap.MetricNetworkInBytes, "eth1"}: 100, {tripcap.MetricNetworkOutBytes, "eth1"}: 0,
		{tripcap.MetricNetworkInPackets, "eth1"}: 1, {tripcap.MetricNetworkOutPackets, "eth1"}: 0,
		{tripcap.MetricNetworkInDrops, "eth1"}: 0, {tripcap.MetricNetworkOutDrops, "eth1"}: 0,
		{tripcap.MetricNetworkInErrors, "eth1"}: 0, {tripcap.MetricNetworkOutErrors, "eth1"}: 0,
		// Host totals leave loopback out.
		{tripcap.MetricNetworkInBytes, ""}: 1100, {tripcap.MetricNetworkOutBytes, ""}: 2000,
		{tripcap.MetricNetworkInPackets, ""}: 11, {tripcap.MetricNetworkOutPackets, ""}: 20,
		{tripcap.MetricNetworkInDrops, ""}: 1, {tripcap.MetricNetworkOutDrops, ""}: 0,
		{tripcap.MetricNetworkInErrors, ""}: 0, {tripcap.MetricNetworkOutErrors, ""}: 2,
		{tripcap.MetricTCPSegmentsSent, ""}: 30, {tripcap.MetricTCPSegmentsReceived, ""}: 25,
		{tripcap.MetricTCPRetransmittedSegment, ""}: 2, {tripcap.MetricTCPResetsSent, ""}: 1,
		{tripcap.MetricTCPEstablishedResets, ""}: 1,
		{tripcap.MetricInboundFlows, ""}:         3, {tripcap.MetricOutboundFlows, ""}: 3,
	}
	got := sums(b)
	if len(got) != len(want) || len(b.Points) != len(want) {
		t.Errorf("%d series in %d points; want %d", len(got), len(b.Points), len(want))
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s/%s = %v (present %v); want %v", k.metric, k.iface, g, ok, v)
		}
	}
}

func TestGapsSpreadAndResets(t *testing.T) {
	c, _ := New(Config{Host: "vm1"})
	r1, r2 := mustRead(t, "testdata/proc1"), mustRead(t, "testdata/proc2")
	_ = c.add(t0.Unix(), r1)
	c.Drain(0)
	// Three seconds late: the increase is spread over the three seconds.
	_ = c.add(t0.Unix()+3, r2)
	b := c.Drain(0)
	var secs []int64
	for _, p := range b.Points {
		if p.Metric == tripcap.MetricTCPSegmentsSent {
			secs = append(secs, p.Time.Unix()-t0.Unix())
			if p.Value != 10 {
				t.Errorf("spread point %+v", p)
			}
		}
	}
	if len(secs) != 3 || secs[0] != 1 || secs[2] != 3 {
		t.Fatalf("spread over seconds %v", secs)
	}
	// A sample in the same second is ignored.
	_ = c.add(t0.Unix()+3, r1)
	if n, _ := c.Buffered(); n != 0 {
		t.Fatalf("same-second sample buffered %d points", n)
	}
	// Counters going down (proc2 → proc1: interfaces recreated, say) give no points.
	_ = c.add(t0.Unix()+4, r1)
	got := sums(c.Drain(0))
	if _, ok := got[seriesKey{tripcap.MetricNetworkInBytes, "eth0"}]; ok {
		t.Error("eth0 point after its counter went down")
	}
	if _, ok := got[seriesKey{tripcap.MetricNetworkInBytes, ""}]; ok {
		t.Error("host total after an interface counter went down")
	}
	if _, ok := got[seriesKey{tripcap.MetricTCPSegmentsSent, ""}]; ok {
		t.Error("tcp point after its counter went down")
	}
	if got[seriesKey{tripcap.MetricInboundFlows, ""}] != 3 {
		t.Error("gauges must still be reported")
	}
}

func TestBufferBoundsAndShip(t *testing.T) {
	c, _ := New(Config{Host: "vm1", MaxBuffered: 5})
	_ = c.add(t0.Unix(), mustRead(t, "testdata/proc1"))   // 2 points
	_ = c.add(t0.Unix()+1, mustRead(t, "testdata/proc2")) // 2 + 27 more
	n, dropped := c.Buffered()
	if n != 5 || dropped == 0 {
		t.Fatalf("buffered %d dropped %d", n, dropped)
	}
	b := c.Drain(2)
	if len(b.Points) != 2 {
		t.Fatalf("Drain(2) gave %d", len(b.Points))
	}
	c.Requeue(b)
	if n, _ := c.Buffered(); n != 5 {
		t.Fatalf("after requeue %d", n)
	}
	var calls atomic.Int32
	var shipped atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Ship(ctx, 10*time.Millisecond, func(_ context.Context, b tripcap.MetricBatch) error {
			if calls.Add(1) == 1 {
				return errors.New("server away")
			}
			shipped.Add(int32(len(b.Points)))
			return nil
		})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for shipped.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if shipped.Load() != 5 || calls.Load() < 2 {
		t.Fatalf("shipped %d points in %d calls", shipped.Load(), calls.Load())
	}
}

// TestShipOnSample: a sample's points leave at once, not at the next tick of
// the shipping interval (the alert path's latency starts at the sample).
func TestShipOnSample(t *testing.T) {
	c, _ := New(Config{Host: "vm1"})
	shipped := make(chan int, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Ship(ctx, time.Hour, func(_ context.Context, b tripcap.MetricBatch) error {
			shipped <- len(b.Points)
			return nil
		})
	}()
	defer func() { cancel(); <-done }()
	for i, dir := range []string{"testdata/proc1", "testdata/proc2"} {
		_ = c.add(t0.Unix()+int64(i), mustRead(t, dir))
		select {
		case n := <-shipped:
			if n == 0 {
				t.Fatalf("sample %d: an empty batch", i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("sample %d: not shipped within 5 s with a 1 h interval", i)
		}
	}
}

func TestPrometheusCollector(t *testing.T) {
	c, _ := New(Config{Host: "vm1"})
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	if mfs, err := reg.Gather(); err != nil || len(mfs) != 0 {
		t.Fatalf("before a sample: %d families, %v", len(mfs), err)
	}
	_ = c.add(t0.Unix(), mustRead(t, "testdata/proc2"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// series renders each sample as name{label="value",...} value.
	got := map[string]float64{}
	types := map[string]dto.MetricType{}
	for _, mf := range mfs {
		types[mf.GetName()] = mf.GetType()
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			got[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	want := map[string]float64{
		`tripcap_flows{direction="inbound",host="vm1"}`:                 3,
		`tripcap_flows{direction="outbound",host="vm1"}`:                3,
		`tripcap_network_out_bytes_total{host="vm1"}`:                   202600,
		`tripcap_network_out_bytes_total{host="vm1",interface="eth0"}`:  202000,
		`tripcap_network_out_bytes_total{host="vm1",interface="eth1"}`:  600,
		`tripcap_network_in_bytes_total{host="vm1"}`:                    101600,
		`tripcap_network_in_packets_total{host="vm1",interface="eth0"}`: 1010,
		`tripcap_network_out_packets_total{host="vm1"}`:                 2026,
		`tripcap_tcp_segments_sent_total{host="vm1"}`:                   2030,
		`tripcap_tcp_segments_received_total{host="vm1"}`:               1025,
		`tripcap_tcp_retransmitted_segments_total{host="vm1"}`:          42,
		`tripcap_network_in_drops_total{host="vm1",interface="eth0"}`:   4,
		`tripcap_network_out_errors_total{host="vm1"}`:                  3,
		`tripcap_tcp_resets_sent_total{host="vm1"}`:                     10,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v); want %v", k, g, ok, v)
		}
	}
	for k := range got {
		if strings.Contains(k, `interface="lo"`) {
			t.Errorf("loopback series %s without IncludeLoopback", k)
		}
	}
	if types["tripcap_flows"] != dto.MetricType_GAUGE || types["tripcap_tcp_segments_sent_total"] != dto.MetricType_COUNTER {
		t.Errorf("types %v", types)
	}
}

// A Config.Read source replaces the kernel: the collector turns its
// readings into points as it does /proc's (a benchmark drives it so).
func TestReadSource(t *testing.T) {
	now := t0
	var n uint64
	c, err := New(Config{
		Host: "bench-1",
		Now:  func() time.Time { return now },
		Read: func(ctx context.Context) (Reading, error) {
			n++
			return Reading{
				Interfaces: map[string]InterfaceCounters{"eth0": {RxBytes: 1000 * n, TxBytes: 10 * n}},
				TCP:        TCPCounters{OutSegs: 5 * n},
				Flows:      FlowCount{Inbound: int(n)},
			}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := c.Sample(context.Background()); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
	}
	s := sums(c.Drain(0))
	if got := s[seriesKey{tripcap.MetricNetworkInBytes, "eth0"}]; got != 2000 {
		t.Errorf("eth0 in bytes over two seconds = %v, want 2000", got)
	}
	if got := s[seriesKey{tripcap.MetricTCPSegmentsSent, ""}]; got != 10 {
		t.Errorf("tcp segments sent = %v, want 10", got)
	}
	if got := s[seriesKey{tripcap.MetricInboundFlows, ""}]; got != 1+2+3 {
		t.Errorf("inbound flows summed = %v, want 6", got)
	}
	boom := errors.New("source down")
	c2, _ := New(Config{Host: "h", Read: func(context.Context) (Reading, error) { return Reading{}, boom }})
	if err := c2.Sample(context.Background()); !errors.Is(err, boom) {
		t.Errorf("Sample with a failing source = %v, want it wrapped", err)
	}
}
