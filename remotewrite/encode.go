package remotewrite

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The remote-write 1.0 messages (prometheus/prompb), encoded by hand:
//
//	message WriteRequest { repeated TimeSeries timeseries = 1; }
//	message TimeSeries  { repeated Label labels = 1; repeated Sample samples = 2; }
//	message Label       { string name = 1; string value = 2; }
//	message Sample      { double value = 1; int64 timestamp = 2; } // ms since the epoch

// sample is one point: milliseconds since the epoch and its value.
type sample struct {
	ms    int64
	value float64
}

// timeSeries is one series of a WriteRequest: its labels, sorted and
// already encoded (appendLabels: a writer encodes a series' labels once,
// not once per request), and samples in time order.
type timeSeries struct {
	labels  []byte
	samples []sample
}

func labelSize(l label) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(len(l.name)) + protowire.SizeTag(2) + protowire.SizeBytes(len(l.value))
}

// appendLabels appends the TimeSeries fields of labels (repeated Label
// labels = 1).
func appendLabels(b []byte, labels []label) []byte {
	for _, l := range labels {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(labelSize(l)))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, l.name)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, l.value)
	}
	return b
}

func sampleSize(s sample) int {
	// Value and timestamp are written even when zero (proto3 would leave
	// them out; a decoder reads the same either way).
	return protowire.SizeTag(1) + protowire.SizeFixed64() + protowire.SizeTag(2) + protowire.SizeVarint(uint64(s.ms))
}

func seriesSize(ts timeSeries) int {
	n := len(ts.labels)
	for _, s := range ts.samples {
		n += protowire.SizeTag(2) + protowire.SizeBytes(sampleSize(s))
	}
	return n
}

// appendWriteRequest appends the WriteRequest of series to b.
func appendWriteRequest(b []byte, series []timeSeries) []byte {
	for _, ts := range series {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(seriesSize(ts)))
		b = append(b, ts.labels...)
		for _, s := range ts.samples {
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(sampleSize(s)))
			b = protowire.AppendTag(b, 1, protowire.Fixed64Type)
			b = protowire.AppendFixed64(b, math.Float64bits(s.value))
			b = protowire.AppendTag(b, 2, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(s.ms))
		}
	}
	return b
}
