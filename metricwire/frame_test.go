package metricwire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/metricstore"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// hostSecond is one sampled second of a host with two interfaces: 15 host
// series and 8 per interface, moving integer values and a few floats (a
// spread increase).
func hostSecond(sec int64, seed int) []tripcap.MetricPoint {
	at := time.Unix(sec, 0).UTC()
	var out []tripcap.MetricPoint
	i := 0
	for _, d := range tripcap.MetricDefinitions() {
		ifaces := []string{""}
		if d.PerInterface {
			ifaces = append(ifaces, "eth0", "ens5")
		}
		for _, n := range ifaces {
			i++
			v := float64((seed*7919 + i*104729) % 250_000)
			if i%11 == 0 {
				v = v / 3 // a share of a spread increase
			}
			out = append(out, tripcap.MetricPoint{Metric: d.ID, Interface: n, Time: at, Value: v})
		}
	}
	return out
}

func TestPointsRoundTrip(t *testing.T) {
	pts := hostSecond(t0.Unix(), 1)
	pts = append(pts,
		tripcap.MetricPoint{Metric: tripcap.MetricInboundFlows, Time: t0, Value: math.Copysign(0, -1)},
		tripcap.MetricPoint{Metric: tripcap.MetricInboundFlows, Time: t0, Value: -(1 << 53)},
		tripcap.MetricPoint{Metric: tripcap.MetricInboundFlows, Time: t0, Value: 1<<53 + 2},
		tripcap.MetricPoint{Metric: tripcap.MetricInboundFlows, Time: t0, Value: math.MaxFloat64},
		tripcap.MetricPoint{Metric: tripcap.MetricInboundFlows, Time: t0, Value: 5e-324},
	)
	b, err := AppendPoints(nil, t0.Unix(), pts)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewDecoder(bytes.NewReader(b)).Next()
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind != KindPoints || f.Sec != t0.Unix() || len(f.Points) != len(pts) {
		t.Fatalf("decoded %v at %d with %d points", f.Kind, f.Sec, len(f.Points))
	}
	for i := range pts {
		p, q := pts[i], f.Points[i]
		if p.Metric != q.Metric || p.Interface != q.Interface || !p.Time.Equal(q.Time) || math.Float64bits(p.Value) != math.Float64bits(q.Value) {
			t.Errorf("point %d: sent %+v, got %+v", i, p, q)
		}
	}
	// 31 series of integers below 2^18: a few bytes each.
	if one, _ := AppendPoints(nil, t0.Unix(), hostSecond(t0.Unix(), 2)); len(one) > 31*6 {
		t.Errorf("a host's second takes %d bytes", len(one))
	}
}

func TestBatchFramesBySecond(t *testing.T) {
	var b tripcap.MetricBatch
	for s := int64(2); s >= 0; s-- {
		b.Points = append(b.Points, hostSecond(t0.Unix()+s, int(s))...)
	}
	enc, secs, err := AppendBatch(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(secs, []int64{t0.Unix(), t0.Unix() + 1, t0.Unix() + 2}) {
		t.Fatalf("frames at %v", secs)
	}
	frames, err := DecodeAll(enc, 10)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, f := range frames {
		if f.Sec != secs[i] {
			t.Errorf("frame %d at %d", i, f.Sec)
		}
		n += len(f.Points)
	}
	if n != len(b.Points) {
		t.Errorf("%d points decoded of %d", n, len(b.Points))
	}
	if _, err := DecodeAll(enc, 2); err == nil {
		t.Error("three frames decoded with a bound of two")
	}
}

func TestHistoryRoundTrip(t *testing.T) {
	h := []metricstore.SeriesHistory{
		{Key: metricstore.Key{Metric: tripcap.MetricNetworkOutBytes, Interface: "eth0"},
			Raw:     []metricstore.RawPoint{{Sec: t0.Unix(), Value: 5}, {Sec: t0.Unix() + 1, Value: 2.5}, {Sec: t0.Unix() + 9, Value: 1 << 40}},
			Rollups: []metricstore.RollupBucket{{Minute: t0.Unix() - 3600, Sum: 10, Min: 0, Max: 7, Count: 60}, {Minute: t0.Unix() - 60, Sum: 0.75, Min: 0.25, Max: 0.5, Count: 2}}},
		{Key: metricstore.Key{Metric: tripcap.MetricTCPResetsSent}, Raw: []metricstore.RawPoint{{Sec: -5, Value: -1}}},
		{Key: metricstore.Key{Metric: tripcap.MetricInboundFlows}},
	}
	b, err := AppendHistory(nil, h)
	if err != nil {
		t.Fatal(err)
	}
	b = AppendHistoryEnd(b)
	b = AppendHistoryRequest(b, t0.Unix()-86400)
	b = AppendAck(b, t0.Unix(), 31, 2)
	d := NewDecoder(bytes.NewReader(b))
	f, err := d.Next()
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind != KindHistory || !reflect.DeepEqual(f.History, h) {
		t.Errorf("history: got %+v", f.History)
	}
	want := []Frame{{Kind: KindHistoryEnd}, {Kind: KindHistoryRequest, Sec: t0.Unix() - 86400}, {Kind: KindAck, Sec: t0.Unix(), Stored: 31, Refused: 2}}
	for _, w := range want {
		f, err := d.Next()
		if err != nil || !reflect.DeepEqual(f, w) {
			t.Errorf("got %+v, %v; want %+v", f, err, w)
		}
	}
	if _, err := d.Next(); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}

func TestEncodeRefuses(t *testing.T) {
	at := t0.Unix()
	for name, pts := range map[string][]tripcap.MetricPoint{
		"metric":    {{Metric: "cpu", Time: t0}},
		"interface": {{Metric: tripcap.MetricNetworkInBytes, Interface: "a/b", Time: t0}},
		"time":      {{Metric: tripcap.MetricNetworkInBytes, Time: t0.Add(time.Second)}},
	} {
		if _, err := AppendPoints(nil, at, pts); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, h := range map[string]metricstore.SeriesHistory{
		"raw[1].sec":         {Key: metricstore.Key{Metric: tripcap.MetricNetworkInBytes}, Raw: []metricstore.RawPoint{{Sec: 5}, {Sec: 5}}},
		"rollups[0].minute":  {Key: metricstore.Key{Metric: tripcap.MetricNetworkInBytes}, Rollups: []metricstore.RollupBucket{{Minute: 61, Count: 1}}},
		"rollups[1].minute:": {Key: metricstore.Key{Metric: tripcap.MetricNetworkInBytes}, Rollups: []metricstore.RollupBucket{{Minute: 120, Count: 1}, {Minute: 60, Count: 1}}},
	} {
		if _, err := AppendHistory(nil, []metricstore.SeriesHistory{h}); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Every malformed frame is an error naming what is wrong.
func TestDecodeErrors(t *testing.T) {
	good, _ := AppendPoints(nil, t0.Unix(), hostSecond(t0.Unix(), 1)[:3])
	_, k := binary.Uvarint(good)
	body := good[k:]
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), body...)) }
	cases := map[string][]byte{
		"version":             mut(func(b []byte) []byte { b[0] = 2; return b }),
		"kind: 9":             mut(func(b []byte) []byte { b[1] = 9; return b }),
		"sec":                 {Version, byte(KindPoints)},
		"interfaces":          {Version, byte(KindPoints), 0, 0xff, 0xff, 0xff},
		"interfaces[0]":       {Version, byte(KindPoints), 0, 1, 3, 'a', ' ', 'b'},
		"named twice":         {Version, byte(KindPoints), 0, 2, 1, 'a', 1, 'a'},
		"series: 5000":        append(binary.AppendUvarint([]byte{Version, byte(KindPoints), 0, 0}, 5000), make([]byte, 5000)...),
		"series: 3 entries":   {Version, byte(KindPoints), 0, 0, 3, 1},
		"series[0].metric":    {Version, byte(KindPoints), 0, 0, 1, 99, 0, 0},
		"series[0].interface": {Version, byte(KindPoints), 0, 0, 1, 1, 1, 0},
		"no per-interface":    {Version, byte(KindPoints), 0, 1, 1, 'a', 1, 9, 1, 0},
		"value: tag 3":        {Version, byte(KindPoints), 0, 0, 1, 1, 0, 3},
		"float: missing":      {Version, byte(KindPoints), 0, 0, 1, 1, 0, 1, 0, 0},
		"finite":              append([]byte{Version, byte(KindPoints), 0, 0, 1, 1, 0, 1}, binary.LittleEndian.AppendUint64(nil, math.Float64bits(math.NaN()))...),
		"after the frame":     append(append([]byte(nil), body...), 0),
		"count: 61":           {Version, byte(KindHistory), 0, 1, 1, 0, 0, 1, 0, 61, 0, 0, 0},
		"above max":           {Version, byte(KindHistory), 0, 1, 1, 0, 0, 1, 0, 1, 0, 4, 2},
		"history: 65":         append([]byte{Version, byte(KindHistory), 0, 65}, make([]byte, 70)...),
		"raw[1].sec":          {Version, byte(KindHistory), 0, 1, 1, 0, 2, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0},
	}
	for want, b := range cases {
		_, err := Decode(b)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
	// The stream's framing.
	for want, b := range map[string][]byte{
		"length: 2000000": binary.AppendUvarint(nil, 2_000_000),
		"body":            {5, Version},
		"length":          {0x80},
	} {
		_, err := NewDecoder(bytes.NewReader(b)).Next()
		if err == nil || !strings.Contains(err.Error(), want) || tripcap.ErrorCode(err) != tripcap.EINVALID {
			t.Errorf("%s: got %v", want, err)
		}
	}
	if _, err := NewDecoder(bytes.NewReader(nil)).Next(); !errors.Is(err, io.EOF) {
		t.Errorf("empty stream: %v", err)
	}
}

// FuzzDecode: whatever the bytes, decoding returns a frame or an error,
// never panics nor allocates beyond the bounds; a decoded frame encodes
// again to a frame that decodes the same.
func FuzzDecode(f *testing.F) {
	p, _ := AppendPoints(nil, t0.Unix(), hostSecond(t0.Unix(), 3))
	h, _ := AppendHistory(nil, []metricstore.SeriesHistory{{Key: metricstore.Key{Metric: tripcap.MetricNetworkInBytes, Interface: "eth0"},
		Raw: []metricstore.RawPoint{{Sec: 100, Value: 1}, {Sec: 102, Value: 0.5}}, Rollups: []metricstore.RollupBucket{{Minute: 0, Sum: 3, Min: 1, Max: 2, Count: 2}}}})
	for _, seed := range [][]byte{p, h, AppendHistoryEnd(nil), AppendHistoryRequest(nil, 77), AppendAck(nil, 5, 1, 2)} {
		_, k := binary.Uvarint(seed)
		f.Add(seed[k:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			return
		}
		enc, err := AppendFrame(nil, fr)
		if err != nil {
			t.Fatalf("re-encoding a decoded %v frame: %v", fr.Kind, err)
		}
		again, err := NewDecoder(bytes.NewReader(enc)).Next()
		if err != nil {
			t.Fatalf("decoding a re-encoded frame: %v", err)
		}
		if !reflect.DeepEqual(fr, again) {
			t.Fatalf("frame changed on a round trip:\n%+v\n%+v", fr, again)
		}
	})
}

// FuzzDecoderReuse: a Decoder reusing its buffers from frame to frame
// decodes each frame of a stream as Decode does the frame alone, whatever
// came before it.
func FuzzDecoderReuse(f *testing.F) {
	p1, _ := AppendPoints(nil, t0.Unix(), hostSecond(t0.Unix(), 3))
	p2, _ := AppendPoints(nil, t0.Unix()+1, hostSecond(t0.Unix()+1, 4)[:9])
	lo, _ := AppendPoints(nil, t0.Unix(), []tripcap.MetricPoint{{Metric: tripcap.MetricNetworkInBytes, Interface: "lo", Time: t0, Value: 1}})
	body := func(b []byte) []byte { _, k := binary.Uvarint(b); return b[k:] }
	f.Add(body(p1), body(p2))
	f.Add(body(p2), body(p1))
	f.Add(body(lo), body(p1))
	f.Add(body(p1), body(AppendAck(nil, 5, 1, 2)))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var stream []byte
		for _, x := range [][]byte{a, b, a} {
			stream = binary.AppendUvarint(stream, uint64(len(x)))
			stream = append(stream, x...)
		}
		d := NewDecoder(bytes.NewReader(stream))
		for i, x := range [][]byte{a, b, a} {
			want, wantErr := Decode(x)
			got, err := d.Next()
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("frame %d: the decoder says %v, Decode %v", i, err, wantErr)
			}
			if err != nil {
				return // the stream is over at a malformed frame
			}
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("frame %d: decoded in a stream\n%+v\nalone\n%+v", i, got, want)
			}
		}
	})
}

// TestDecoderReuses: a stream of a host's seconds costs the decoder no
// allocation per frame once the first is read.
func TestDecoderReuses(t *testing.T) {
	var stream []byte
	for i := range 102 { // one read first, one AllocsPerRun warms up with, 100 counted
		b, err := AppendPoints(stream, t0.Unix()+int64(i), hostSecond(t0.Unix()+int64(i), i))
		if err != nil {
			t.Fatal(err)
		}
		stream = b
	}
	d := NewDecoder(bytes.NewReader(stream))
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations a frame, want none", allocs)
	}
}

// BenchmarkHostSecond compares one host's sampled second (31 series) as a
// metricwire frame with today's JSON MetricBatch: encode and decode cost
// and bytes per point.
func BenchmarkHostSecond(b *testing.B) {
	pts := hostSecond(t0.Unix(), 4)
	b.Run("metricwire", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var err error
			if buf, err = AppendPoints(buf[:0], t0.Unix(), pts); err != nil {
				b.Fatal(err)
			}
			if _, err := DecodeAll(buf, 1); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(buf))/float64(len(pts)), "B/point")
	})
	b.Run("json", func(b *testing.B) {
		var n int
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			enc, err := json.Marshal(tripcap.MetricBatch{Points: pts})
			if err != nil {
				b.Fatal(err)
			}
			var back tripcap.MetricBatch
			if err := json.Unmarshal(enc, &back); err != nil {
				b.Fatal(err)
			}
			n = len(enc)
		}
		b.ReportMetric(float64(n)/float64(len(pts)), "B/point")
	})
}

// A frame is written in place after what dst holds, whatever its length
// takes (1 to 3 bytes); one too long is taken back off.
func TestFrameInPlace(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 16381, 16382, 16383, MaxFrameBytes - 3, MaxFrameBytes - 2} {
		b, start := begin([]byte("xy"), KindAck)
		for range n {
			b = append(b, 0x55)
		}
		b, err := end(b, start)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		l, k := binary.Uvarint(b[2:])
		if string(b[:2]) != "xy" || l != uint64(n+2) || len(b) != 2+k+n+2 || b[2+k] != Version || b[3+k] != byte(KindAck) ||
			(n > 0 && (b[4+k] != 0x55 || b[len(b)-1] != 0x55)) {
			t.Fatalf("%d bytes: length %d (%d bytes), frame of %d", n, l, k, len(b))
		}
	}
	b, start := begin([]byte("xy"), KindAck)
	b = append(b, make([]byte, MaxFrameBytes)...)
	if b, err := end(b, start); err == nil || string(b) != "xy" {
		t.Errorf("a frame over MaxFrameBytes: %q… %v, want it taken back off", b[:min(len(b), 8)], err)
	}
	buf := make([]byte, 0, 4096)
	pts := hostSecond(t0.Unix(), 1)
	if allocs := testing.AllocsPerRun(100, func() {
		buf, _ = AppendPoints(buf[:0], t0.Unix(), pts)
		buf = AppendAck(buf, t0.Unix(), 31, 0)
	}); allocs != 0 {
		t.Errorf("encoding into room: %v allocations, want none", allocs)
	}
}
