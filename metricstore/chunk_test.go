package metricstore

import (
	"encoding/binary"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// roundTrip encodes a block and reads every value back, bit for bit.
func roundTrip(t *testing.T, slots int, mask uint64, cols ...[]float64) int {
	t.Helper()
	b := encodeBlock(slots, mask, cols...)
	var bl block
	if err := parseBlock(b, slots, len(cols), &bl); err != nil {
		t.Fatalf("parse: %v", err)
	}
	if bl.mask != mask {
		t.Fatalf("mask %x, want %x", bl.mask, mask)
	}
	for c, vals := range cols {
		for j, v := range vals {
			if got := bl.cols[c].at(j); math.Float64bits(got) != math.Float64bits(v) {
				t.Fatalf("column %d value %d: %v (%x), want %v (%x)", c, j, got, math.Float64bits(got), v, math.Float64bits(v))
			}
		}
	}
	return len(b)
}

func TestBlocksAreLossless(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	kinds := []func() float64{
		func() float64 { return float64(rng.IntN(100000)) + 1e6 },
		func() float64 { return 0 },
		func() float64 { return rng.NormFloat64() },
		func() float64 { return math.Copysign(0, -1) },
		func() float64 { return float64(maxExact) },
		func() float64 { return -float64(maxExact) },
		func() float64 { return float64(maxExact) + 2 },
		func() float64 { return math.MaxFloat64 },
		func() float64 { return -math.SmallestNonzeroFloat64 },
		func() float64 { return float64(rng.Int64()) },
		func() float64 { return math.Inf(1) },
		func() float64 { return math.NaN() },
	}
	for range 3000 {
		slots := 1 + rng.IntN(64)
		mask := rng.Uint64() & fullMask(slots)
		if rng.IntN(3) == 0 {
			mask = fullMask(slots)
		}
		if mask == 0 {
			mask = 1
		}
		n := bits.OnesCount64(mask)
		cols := make([][]float64, 1+rng.IntN(4))
		for c := range cols {
			a, b := kinds[rng.IntN(len(kinds))], kinds[rng.IntN(len(kinds))]
			for range n {
				if rng.IntN(10) == 0 {
					cols[c] = append(cols[c], b())
				} else {
					cols[c] = append(cols[c], a())
				}
			}
		}
		roundTrip(t, slots, mask, cols...)
	}
}

func TestIntegerBlocksAreSmall(t *testing.T) {
	vals := make([]float64, 60)
	for i := range vals {
		vals[i] = 250_000 + float64(i%7)*1000 // offsets up to 6000: 13 bits
	}
	if n := roundTrip(t, 60, fullMask(60), vals); n > 1+1+4+(60*13+7)/8 {
		t.Fatalf("a minute of 13-bit offsets takes %d bytes", n)
	}
	for i := range vals {
		vals[i] = 0
	}
	if n := roundTrip(t, 60, fullMask(60), vals); n != 3 {
		t.Fatalf("a minute of zeros takes %d bytes", n)
	}
	if n := roundTrip(t, 60, 1<<59|1, vals[:2]); n > 12 {
		t.Fatalf("a minute of two zeros takes %d bytes", n)
	}
}

// FuzzBlock: any bytes parse as a block or give an error, never a panic or
// a read out of bounds; and values made of the bytes survive a round trip.
func FuzzBlock(f *testing.F) {
	f.Add(encodeBlock(60, fullMask(60), []float64{1, 2, 3}[:0]), uint8(60), uint8(1))
	f.Add(encodeBlock(4, 0b1011, []float64{1, 2.5, 3}, []float64{7, 7, 7}), uint8(4), uint8(2))
	f.Add(encodeBlock(64, 1<<63, []float64{-1e300}, []float64{3}, []float64{0}, []float64{math.Pi}), uint8(64), uint8(4))
	f.Fuzz(func(t *testing.T, b []byte, slots, cols uint8) {
		s, c := 1+int(slots)%64, 1+int(cols)%4
		var bl block
		if parseBlock(b, s, c, &bl) == nil {
			for i := range c {
				for j := range bits.OnesCount64(bl.mask) {
					_ = bl.cols[i].at(j)
				}
			}
		}
		// The bytes as values: a mask, then float64s.
		if len(b) < 8 {
			return
		}
		mask := binary.LittleEndian.Uint64(b) & fullMask(s)
		if mask == 0 {
			return
		}
		n := bits.OnesCount64(mask)
		vals := make([][]float64, c)
		rest := b[8:]
		for i := range vals {
			for range n {
				var v float64
				if len(rest) >= 8 {
					v, rest = math.Float64frombits(binary.LittleEndian.Uint64(rest)), rest[8:]
				} else if len(rest) > 0 {
					v, rest = float64(int8(rest[0])), rest[1:]
				}
				vals[i] = append(vals[i], v)
			}
		}
		roundTrip(t, s, mask, vals...)
	})
}

func TestBlockRingCompacts(t *testing.T) {
	r := newBlockRing(8)
	blk := make([]byte, 100)
	for k := int64(1); k <= 10_000; k++ {
		r.advance(k)
		blk[0] = byte(k)
		r.set(k, blk)
		r.set(k-1, blk[:50]) // replaced: the old bytes are dead
		if len(r.buf) > 2*8*100+256 {
			t.Fatalf("key %d: buffer of %d bytes for 8 blocks of 100", k, len(r.buf))
		}
		if b := r.get(k); len(b) != 100 || b[0] != byte(k) {
			t.Fatalf("key %d: block %v", k, b[:1])
		}
	}
	if r.get(10_000-8) != nil || r.get(10_000-7) == nil || r.get(10_001) != nil {
		t.Fatal("the ring holds keys outside (head-8, head]")
	}
}
