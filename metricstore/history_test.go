package metricstore

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// sameGrainAnswers checks that b answers as a does at every grain rules use:
// 1-second windows over the recent raw seconds, 1-minute grains over the
// rollups, and chart queries of both.
func sameGrainAnswers(t *testing.T, a, b *Store, end time.Time) {
	t.Helper()
	if got, want := b.Keys(), a.Keys(); len(got) != len(want) {
		t.Fatalf("%d series, want %d", len(got), len(want))
	}
	for _, k := range a.Keys() {
		for _, w := range []time.Duration{time.Second, 5 * time.Second, 3 * time.Minute, 10 * time.Minute, 59 * time.Minute} {
			ga, gb := a.SummarizeGrain(k, end, w, time.Second), b.SummarizeGrain(k, end, w, time.Second)
			if ga != gb {
				t.Fatalf("%v over %s at 1s: %+v, want %+v", k, w, gb, ga)
			}
		}
		for _, w := range []time.Duration{time.Minute, 5 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour} {
			ga, gb := a.SummarizeGrain(k, end, w, time.Minute), b.SummarizeGrain(k, end, w, time.Minute)
			if ga != gb {
				t.Fatalf("%v over %s at 1m: %+v, want %+v", k, w, gb, ga)
			}
		}
		for _, q := range []Query{
			{Host: k.Host, Metric: k.Metric, Interface: k.Interface, End: end, Window: 5 * time.Minute, Interval: time.Second},
			{Host: k.Host, Metric: k.Metric, Interface: k.Interface, End: end, Window: 3 * time.Hour, Interval: time.Minute},
		} {
			ra, err := a.Query(q)
			if err != nil {
				t.Fatal(err)
			}
			rb, err := b.Query(q)
			if err != nil {
				t.Fatal(err)
			}
			for i := range ra.Points {
				if ra.Points[i] != rb.Points[i] {
					t.Fatalf("%v query %s/%s point %d: %+v, want %+v", k, q.Window, q.Interval, i, rb.Points[i], ra.Points[i])
				}
			}
		}
	}
}

func TestHistoryBackfilledGivesTheSameAnswers(t *testing.T) {
	// An end on a minute and one inside a minute (the raw ring then holds
	// part of its oldest minute, which goes as a rollup).
	for _, extra := range []time.Duration{0, 30 * time.Second} {
		end := t0.Add(2*time.Hour + extra)
		c := newClock(end)
		a := newStore(t, Config{}, c)
		fill(t, a)
		if extra > 0 {
			var b tripcap.MetricBatch
			for sec := time.Second; sec <= extra; sec += time.Second {
				b.Points = append(b.Points, pt("web.example.com", tripcap.MetricNetworkOutBytes, t0.Add(2*time.Hour+sec), 5))
			}
			if _, err := a.Append(b); err != nil {
				t.Fatal(err)
			}
		}
		b := newStore(t, Config{}, c)
		var hooked []string
		b.OnAppend(func(host string, newest time.Time) { hooked = append(hooked, host+"@"+newest.Format(time.TimeOnly)) })
		for _, host := range a.Hosts() {
			h := a.History(host, time.Time{})
			for _, sh := range h {
				for i := 1; i < len(sh.Raw); i++ {
					if sh.Raw[i].Sec <= sh.Raw[i-1].Sec {
						t.Fatalf("%v raw not oldest first at %d", sh.Key, i)
					}
				}
				if len(sh.Raw) > 0 && len(sh.Rollups) > 0 {
					last := sh.Rollups[len(sh.Rollups)-1]
					// Only the minute the raw window starts in may overlap.
					if last.Minute+rollupStep >= sh.Raw[0].Sec && floorDiv(sh.Raw[0].Sec-1, rollupStep)*rollupStep != last.Minute {
						t.Fatalf("%v rollup minute %d overlaps raw from %d", sh.Key, last.Minute, sh.Raw[0].Sec)
					}
				}
			}
			res, err := b.Backfill(host, h)
			if err != nil {
				t.Fatal(err)
			}
			if res.Stored == 0 || res.Duplicates+res.TooOld+res.TooNew+res.OverLimit != 0 {
				t.Fatalf("Backfill(%s) = %+v", host, res)
			}
		}
		sameGrainAnswers(t, a, b, end)
		for _, host := range a.Hosts() {
			na, _ := a.Newest(host)
			nb, _ := b.Newest(host)
			if !na.Equal(nb) {
				t.Fatalf("newest of %s: %v, want %v", host, nb, na)
			}
		}
		if len(hooked) != 2 {
			t.Fatalf("hooks called %v", hooked)
		}
		// Backfilled again, everything is a duplicate and nothing changes.
		for _, host := range a.Hosts() {
			h := a.History(host, time.Time{})
			res, err := b.Backfill(host, h)
			if err != nil || res.Stored != 0 || res.Duplicates == 0 {
				t.Fatalf("second Backfill(%s) = %+v, %v", host, res, err)
			}
		}
		sameGrainAnswers(t, a, b, end)
	}
}

func TestHistorySince(t *testing.T) {
	end := t0.Add(2 * time.Hour)
	c := newClock(end)
	s := newStore(t, Config{}, c)
	fill(t, s)
	h := s.History("web.example.com", end.Add(-5*time.Minute+time.Second))
	if len(h) != 2 {
		t.Fatalf("%d series", len(h))
	}
	for _, sh := range h {
		if len(sh.Rollups) != 0 || len(sh.Raw) != 300 || sh.Raw[0].Sec != end.Unix()-299 {
			t.Fatalf("%v: %d rollups, %d raw from %d", sh.Key, len(sh.Rollups), len(sh.Raw), sh.Raw[0].Sec)
		}
	}
	// Since 90 minutes ago: the rollups of the minutes 90..60 minutes ago
	// (the minute holding since included), then the raw hour.
	h = s.History("web.example.com", end.Add(-90*time.Minute+time.Second))
	for _, sh := range h {
		if len(sh.Rollups) != 30 || sh.Rollups[0].Minute != end.Unix()-90*60 || len(sh.Raw) != 3600 {
			t.Fatalf("%v: %d rollups from %d, %d raw", sh.Key, len(sh.Rollups), sh.Rollups[0].Minute, len(sh.Raw))
		}
	}
	if h := s.History("nobody", time.Time{}); len(h) != 0 {
		t.Fatalf("history of an unknown host: %v", h)
	}
}

func TestBackfillNeverOverwrites(t *testing.T) {
	end := t0.Add(2 * time.Hour)
	c := newClock(end)
	s := newStore(t, Config{}, c)
	k := Key{"web.example.com", tripcap.MetricNetworkOutBytes, ""}
	// The store has seconds 31..60 of the last minute (value 1) and the
	// rollup of a minute 90 minutes ago.
	var b tripcap.MetricBatch
	for sec := 31; sec <= 60; sec++ {
		b.Points = append(b.Points, pt(k.Host, k.Metric, end.Add(time.Duration(sec-60)*time.Second), 1))
	}
	old := end.Add(-90 * time.Minute)
	b.Points = append(b.Points, pt(k.Host, k.Metric, old.Add(time.Second), 7))
	if _, err := s.Append(b); err != nil {
		t.Fatal(err)
	}
	// History says 2 for every second of the last minute, and offers the
	// old minute and the one before it as rollups, and raw seconds of
	// minutes beyond the raw window: one the store has, one it has not.
	h := SeriesHistory{Key: Key{Metric: k.Metric}}
	for sec := 1; sec <= 60; sec++ {
		h.Raw = append(h.Raw, RawPoint{Sec: end.Unix() - 60 + int64(sec), Value: 2})
	}
	h.Rollups = []RollupBucket{
		{Minute: old.Unix(), Sum: 100, Min: 10, Max: 90, Count: 3},
		{Minute: old.Unix() - 60, Sum: 100, Min: 10, Max: 90, Count: 3},
	}
	// Raw seconds older than the raw window: into the store's minute (a
	// duplicate) and into a minute it lacks (builds that minute's rollup).
	h.Raw = append([]RawPoint{{Sec: old.Unix() + 2, Value: 5}, {Sec: old.Unix() + 62, Value: 5}, {Sec: old.Unix() + 63, Value: 6}}, h.Raw...)
	res, err := s.Backfill(k.Host, []SeriesHistory{h})
	if err != nil {
		t.Fatal(err)
	}
	want := AppendResult{Stored: 30 + 2 + 1, Duplicates: 30 + 1 + 1}
	if res != want {
		t.Fatalf("Backfill = %+v, want %+v", res, want)
	}
	last := s.Summarize(k, end, time.Minute)
	if last.Count != 60 || last.Sum != 30*1+30*2 || last.Min != 1 || last.Max != 2 {
		t.Fatalf("last minute = %+v", last.Summary)
	}
	// The minute's rollup agrees with its raw seconds: the window that
	// ends a second later reads 59 of them raw and none from the rollup.
	if w := s.Summarize(k, end, 59*time.Second); w.Count != 59 || w.Sum != 30*1+29*2 {
		t.Fatalf("last 59 s = %+v", w.Summary)
	}
	kept := s.Summarize(k, old.Add(time.Minute), time.Minute)
	if kept.Summary != (tripcap.Summary{Count: 1, Sum: 7, Min: 7, Max: 7}) {
		t.Fatalf("the store's own old minute was overwritten: %+v", kept.Summary)
	}
	built := s.Summarize(k, old.Add(2*time.Minute), time.Minute)
	if built.Summary != (tripcap.Summary{Count: 2, Sum: 11, Min: 5, Max: 6}) {
		t.Fatalf("the minute built from old raw seconds: %+v", built.Summary)
	}
	given := s.Summarize(k, old, time.Minute)
	if given.Summary != (tripcap.Summary{Count: 3, Sum: 100, Min: 10, Max: 90}) {
		t.Fatalf("the rollup taken as given: %+v", given.Summary)
	}
}

func TestBackfillOutsideTheWindows(t *testing.T) {
	end := t0.Add(30 * time.Hour)
	c := newClock(end)
	s := newStore(t, Config{}, c)
	var hooks int
	s.OnAppend(func(string, time.Time) { hooks++ })
	h := []SeriesHistory{{Key: Key{Metric: tripcap.MetricNetworkOutBytes}, Raw: []RawPoint{
		{Sec: end.Unix() - 24*3600, Value: 1},     // the rollup window's oldest edge: out
		{Sec: end.Unix() + 2*60, Value: 1},        // beyond MaxFuture
		{Sec: end.Unix() - 24*3600 + 1, Value: 1}, // the oldest second still kept
	}, Rollups: []RollupBucket{
		{Minute: end.Unix() - 25*3600, Sum: 1, Min: 1, Max: 1, Count: 1}, // out
		{Minute: end.Unix() + 5*60, Sum: 1, Min: 1, Max: 1, Count: 1},    // in the future
	}}}
	res, err := s.Backfill("web.example.com", h)
	if err != nil {
		t.Fatal(err)
	}
	if want := (AppendResult{Stored: 1, TooOld: 2, TooNew: 2}); res != want {
		t.Fatalf("Backfill = %+v, want %+v", res, want)
	}
	if hooks != 1 {
		t.Fatalf("%d hook calls", hooks)
	}
	// Nothing stored: no hook.
	res, err = s.Backfill("db.example.com", h[:0])
	if err != nil || res != (AppendResult{}) || hooks != 1 {
		t.Fatalf("empty Backfill = %+v, %v (%d hooks)", res, err, hooks)
	}
}

func TestBackfillLimits(t *testing.T) {
	end := t0.Add(time.Hour)
	c := newClock(end)
	s := newStore(t, Config{MaxSeries: 3, MaxInterfaces: 2}, c)
	raw := []RawPoint{{Sec: end.Unix() - 1, Value: 1}, {Sec: end.Unix(), Value: 2}}
	var h []SeriesHistory
	for _, ifc := range []string{"eth0", "eth1", "eth2"} {
		h = append(h, SeriesHistory{Key: Key{Metric: tripcap.MetricNetworkOutBytes, Interface: ifc}, Raw: raw})
	}
	res, err := s.Backfill("web.example.com", h)
	if err != nil {
		t.Fatal(err)
	}
	if want := (AppendResult{Stored: 4, OverLimit: 2}); res != want {
		t.Fatalf("MaxInterfaces: Backfill = %+v, want %+v", res, want)
	}
	h = []SeriesHistory{
		{Key: Key{Metric: tripcap.MetricNetworkInBytes}, Raw: raw},
		{Key: Key{Metric: tripcap.MetricNetworkOutBytes}, Raw: raw},
	}
	res, err = s.Backfill("web.example.com", h)
	if err != nil {
		t.Fatal(err)
	}
	if want := (AppendResult{Stored: 2, OverLimit: 2}); res != want {
		t.Fatalf("MaxSeries: Backfill = %+v, want %+v", res, want)
	}
	if st := s.Stats(); st.Series != 3 {
		t.Fatalf("%d series with MaxSeries 3", st.Series)
	}
}

func TestBackfillValidation(t *testing.T) {
	s := newStore(t, Config{}, newClock(t0))
	m := tripcap.MetricNetworkOutBytes
	for _, tc := range []struct {
		h    SeriesHistory
		want string
	}{
		{SeriesHistory{Key: Key{Host: "db.example.com", Metric: m}}, "history[0].key.host"},
		{SeriesHistory{Key: Key{Metric: "Nope"}}, "history[0].key"},
		{SeriesHistory{Key: Key{Metric: m, Interface: "a/b"}}, "interface"},
		{SeriesHistory{Key: Key{Metric: m}, Raw: []RawPoint{{Sec: t0.Unix(), Value: math.NaN()}}}, "history[0].raw[0].value"},
		{SeriesHistory{Key: Key{Metric: m}, Raw: []RawPoint{{Sec: 0, Value: 1}}}, "history[0].raw[0].sec"},
		{SeriesHistory{Key: Key{Metric: m}, Rollups: []RollupBucket{{Minute: t0.Unix() + 1, Count: 1}}}, "history[0].rollups[0].minute"},
		{SeriesHistory{Key: Key{Metric: m}, Rollups: []RollupBucket{{Minute: t0.Unix()}}}, "history[0].rollups[0].count"},
		{SeriesHistory{Key: Key{Metric: m}, Rollups: []RollupBucket{{Minute: t0.Unix(), Count: 1, Min: 2, Max: 1}}}, "history[0].rollups[0].min"},
	} {
		_, err := s.Backfill("web.example.com", []SeriesHistory{tc.h})
		if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want EINVALID naming %s", tc.h, err, tc.want)
		}
	}
	if _, err := s.Backfill("", nil); tripcap.ErrorCode(err) != tripcap.EINVALID {
		t.Errorf("no host: %v", err)
	}
	if st := s.Stats(); st.Series != 0 {
		t.Fatalf("refused history made %d series", st.Series)
	}
}
