package metricstore

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tripcap/tripcap"
)

// ringSeries is the store's previous representation, a plain ring of
// float64 seconds and a ring of rollups, kept as the oracle the compact
// series must agree with point for point.
type ringSeries struct {
	raw         []float64
	rawHead     int64
	sum, lo, hi []float64
	count       []uint32
	rollHead    int64
}

func newRingSeries(rawLen, rollLen int64) *ringSeries {
	r := &ringSeries{raw: make([]float64, rawLen), sum: make([]float64, rollLen), lo: make([]float64, rollLen), hi: make([]float64, rollLen), count: make([]uint32, rollLen)}
	for i := range r.raw {
		r.raw[i] = math.NaN()
	}
	return r
}

func (s *ringSeries) add(sec int64, v float64) addOutcome {
	rawLen := int64(len(s.raw))
	if sec > s.rawHead {
		for t := max(s.rawHead+1, sec-rawLen+1); t <= sec; t++ {
			s.raw[mod(t, rawLen)] = math.NaN()
		}
		s.rawHead = sec
	}
	inRaw := sec > s.rawHead-rawLen
	if inRaw {
		slot := mod(sec, rawLen)
		if !math.IsNaN(s.raw[slot]) {
			return addDuplicate
		}
		s.raw[slot] = v
	}
	b := floorDiv(sec-1, rollupStep)
	rollLen := int64(len(s.count))
	if b > s.rollHead {
		for t := max(s.rollHead+1, b-rollLen+1); t <= b; t++ {
			i := mod(t, rollLen)
			s.sum[i], s.lo[i], s.hi[i], s.count[i] = 0, 0, 0, 0
		}
		s.rollHead = b
	}
	if b <= s.rollHead-rollLen {
		if inRaw {
			return addStored
		}
		return addTooOld
	}
	i := mod(b, rollLen)
	if s.count[i] == 0 || v < s.lo[i] {
		s.lo[i] = v
	}
	if s.count[i] == 0 || v > s.hi[i] {
		s.hi[i] = v
	}
	s.count[i]++
	s.sum[i] += v
	return addStored
}

func (s *ringSeries) summarize(from, to int64) tripcap.Summary {
	var sum tripcap.Summary
	if to < from {
		return sum
	}
	raw := func(from, to int64) {
		rawLen := int64(len(s.raw))
		for t := max(from, s.rawHead-rawLen+1); t <= min(to, s.rawHead); t++ {
			if v := s.raw[mod(t, rawLen)]; !math.IsNaN(v) {
				sum.Add(v)
			}
		}
	}
	firstFull, lastFull := ceilDiv(from-1, rollupStep), floorDiv(to, rollupStep)-1
	if firstFull > lastFull {
		raw(from, to)
		return sum
	}
	raw(from, firstFull*rollupStep)
	rollLen := int64(len(s.count))
	for b := firstFull; b <= lastFull; b++ {
		if b > s.rollHead || b <= s.rollHead-rollLen {
			continue
		}
		if i := mod(b, rollLen); s.count[i] > 0 {
			sum.Merge(tripcap.Summary{Count: int64(s.count[i]), Sum: s.sum[i], Min: s.lo[i], Max: s.hi[i]})
		}
	}
	raw((lastFull+1)*rollupStep+1, to)
	return sum
}

// TestSeriesAgreesWithTheRing appends points in order, late, repeated,
// after gaps and jumps longer than the windows, of integer, fractional,
// huge and negative values, to a compact series and to the ring, and asks
// both the same windows.
func TestSeriesAgreesWithTheRing(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 3))
		rawLen, rollLen := int64(60*(1+rng.IntN(5))), int64(64*(1+rng.IntN(3))+rng.IntN(64))
		rollLen = max(rollLen, rawLen/60)
		s, ref := newSeries(rawLen, rollLen), newRingSeries(rawLen, rollLen)
		value := func() float64 {
			switch rng.IntN(10) {
			case 0:
				return rng.NormFloat64() * 1e3 // fractional
			case 1:
				return float64(rng.Int64N(1<<60)) - 1<<59 // beyond exact integers
			case 2:
				return math.Copysign(0, -1)
			}
			return float64(rng.IntN(2000) - 100)
		}
		sec := int64(1_000_000 + rng.IntN(1000))
		for op := range 20000 {
			switch r := rng.IntN(100); {
			case r < 70:
				sec++
			case r < 80:
				sec += int64(rng.IntN(200)) // a gap
			case r < 81:
				sec += int64(rng.IntN(int(rollLen * 90))) // past the windows
			}
			at := sec
			if rng.IntN(8) == 0 {
				at -= int64(rng.IntN(int(rawLen) * 3)) // late, maybe beyond the raw window
			}
			v := value()
			if got, want := s.add(at, v), ref.add(at, v); got != want {
				t.Fatalf("seed %d op %d: add(%d) = %v, ring %v", seed, op, at, got, want)
			}
			if op%50 == 0 {
				for range 5 {
					end := sec - int64(rng.IntN(int(rollLen*60)))
					win := int64(1 + rng.IntN(int(rollLen*60)))
					if rng.IntN(2) == 0 {
						win = int64(1 + rng.IntN(int(rawLen)+120))
						end = sec - int64(rng.IntN(90))
					}
					var rd reader
					got, want := s.summarize(&rd, end-win+1, end), ref.summarize(end-win+1, end)
					if !sameSummary(got, want) {
						t.Fatalf("seed %d op %d: (%d, %d]: %+v, ring %+v", seed, op, end-win, end, got, want)
					}
				}
				// Grains of whole minutes in one pass, as summarize per grain.
				per := int64(1 + rng.IntN(10))
				last := floorDiv(sec, rollupStep) - int64(rng.IntN(30))
				first := last - per*int64(1+rng.IntN(40)) + 1
				grains := map[int64]tripcap.Summary{}
				var rd reader
				var all tripcap.Summary
				s.minuteGrains(&rd, first, last, per, &all, func(i int64, sum tripcap.Summary) { grains[i] = sum })
				if want := ref.summarize(first*rollupStep+1, (last+1)*rollupStep); !sameSummary(all, want) {
					t.Fatalf("seed %d op %d: minutes %d to %d merged: %+v, ring %+v", seed, op, first, last, all, want)
				}
				for i := int64(0); first+i*per <= last; i++ {
					want := ref.summarize((first+i*per)*rollupStep+1, (first+(i+1)*per)*rollupStep)
					if got := grains[i]; !sameSummary(got, want) {
						t.Fatalf("seed %d op %d: grain %d of %d minutes from minute %d: %+v, ring %+v", seed, op, i, per, first, got, want)
					}
				}
			}
		}
		if s.newest() != max(ref.rawHead, ref.rollHead*rollupStep+rollupStep) {
			t.Fatalf("seed %d: newest %d", seed, s.newest())
		}
	}
}

// sameSummary compares bit for bit (a -0 minimum is not 0).
func sameSummary(a, b tripcap.Summary) bool {
	return a.Count == b.Count && math.Float64bits(a.Sum) == math.Float64bits(b.Sum) &&
		(a.Count == 0 || math.Float64bits(a.Min) == math.Float64bits(b.Min) && math.Float64bits(a.Max) == math.Float64bits(b.Max))
}
