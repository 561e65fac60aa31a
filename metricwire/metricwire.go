// Package metricwire is the compact binary encoding of the metrics an
// agent ships (agent protocol version 2): a stream of frames, each one
// sampled second of a host's series, a run of its history, or a message
// between agent and server on the same stream (acknowledgements, a request
// for history). JSON spends ~90 bytes on a point; a frame spends 2 bytes
// on its series and 1 to 3 on an integer value (counters' increases and
// gauges are whole numbers), so 1-second points from a fleet cost little
// to send and to parse. Floats travel exactly (8 bytes); nothing is lossy.
//
// A frame is a uvarint length then that many bytes of body; a body starts
// with the encoding's Version and the frame's Kind. Interfaces are named
// once per frame in a table that series point into, so every frame stands
// alone: a stream that reconnects, or a frame POSTed on its own, needs no
// state from earlier frames. Decoding is bounded (frame size, series,
// interfaces, points) and every malformed input is an error naming what is
// wrong, since frames come from agents.
package metricwire

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/tripcap/tripcap"
)

// Version is the encoding's version, the first byte of every frame body.
// A decoder refuses other versions: bump it with any change of layout.
const Version = 1

// ContentType names the encoding in requests and answers.
const ContentType = "application/vnd.tripcap.metricwire.v1"

// Bounds on what one frame may hold, so a peer cannot make the decoder
// allocate without limit. A host has 15 host series and 8 per interface;
// a history frame holds one series (an hour of seconds, a day of minutes).
const (
	MaxFrameBytes = 1 << 20
	MaxSeries     = 2048
	MaxInterfaces = 64
	MaxRawPoints  = 100_000
	MaxRollups    = 100_000
	// MaxHistorySeries bounds the series of one history frame.
	MaxHistorySeries = 64
)

// Kind says what a frame carries.
type Kind uint8

const (
	// KindPoints (agent → server): one second of the host's series.
	KindPoints Kind = 1
	// KindHistory (agent → server): raw points and rollup buckets the
	// agent holds, answering a KindHistoryRequest.
	KindHistory Kind = 2
	// KindHistoryEnd (agent → server): the last frame of a history answer.
	KindHistoryEnd Kind = 3
	// KindHistoryRequest (server → agent): send the history held at or
	// after Since.
	KindHistoryRequest Kind = 4
	// KindAck (server → agent): every points frame up to second Sec was
	// received. One ack may cover several frames (a server coalesces
	// them): Stored and Refused count the points of the frames it covers,
	// those since the previous ack.
	KindAck Kind = 5
)

func (k Kind) String() string {
	switch k {
	case KindPoints:
		return "points"
	case KindHistory:
		return "history"
	case KindHistoryEnd:
		return "history-end"
	case KindHistoryRequest:
		return "history-request"
	case KindAck:
		return "ack"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// metricCodes are the wire codes of the metrics. A code is never reused:
// add new metrics at the end.
var metricCodes = []tripcap.MetricID{
	1:  tripcap.MetricNetworkInBytes,
	2:  tripcap.MetricNetworkOutBytes,
	3:  tripcap.MetricNetworkInPackets,
	4:  tripcap.MetricNetworkOutPackets,
	5:  tripcap.MetricNetworkInDrops,
	6:  tripcap.MetricNetworkOutDrops,
	7:  tripcap.MetricNetworkInErrors,
	8:  tripcap.MetricNetworkOutErrors,
	9:  tripcap.MetricInboundFlows,
	10: tripcap.MetricOutboundFlows,
	11: tripcap.MetricTCPSegmentsSent,
	12: tripcap.MetricTCPSegmentsReceived,
	13: tripcap.MetricTCPRetransmittedSegment,
	14: tripcap.MetricTCPResetsSent,
	15: tripcap.MetricTCPEstablishedResets,
}

var codeOf = func() map[tripcap.MetricID]byte {
	m := make(map[tripcap.MetricID]byte, len(metricCodes))
	for c, id := range metricCodes {
		if id != "" {
			m[id] = byte(c)
		}
	}
	return m
}()

// perInterface[c]: code c's metric has per-interface series (a table:
// decoding asks it of every interface's point).
var perInterface = func() []bool {
	t := make([]bool, len(metricCodes))
	for c, id := range metricCodes {
		if d, ok := id.Definition(); ok {
			t[c] = d.PerInterface
		}
	}
	return t
}()

// metricCode is m's wire code.
func metricCode(m tripcap.MetricID) (byte, error) {
	c, ok := codeOf[m]
	if !ok {
		return 0, fmt.Errorf("metric %q has no wire code", clip(string(m)))
	}
	return c, nil
}

// Values: a uvarint tag. An even tag is an integer, zigzag-encoded and
// shifted left once; tag 1 is a float64 whose 8 little-endian bytes
// follow. Integers are what the kernel's counters and counts are; any
// other value (a spread increase, a rollup's sum of shares) goes as bits.
const (
	tagFloat = 1
	// maxExactInt bounds integers sent as such: every one of them is a
	// float64 exactly, so decoding gives back the value sent.
	maxExactInt = 1 << 53
)

func appendValue(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) <= maxExactInt && !(v == 0 && math.Signbit(v)) {
		i := int64(v)
		z := uint64(i<<1) ^ uint64(i>>63)
		return binary.AppendUvarint(b, z<<1)
	}
	b = append(b, tagFloat)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// validIfaceName is the rule of tripcap.MetricBatch.Validate: the
// kernel's names are at most 15 bytes.
func validIfaceName(s string) bool {
	return s != "" && len(s) <= 15 && !strings.ContainsAny(s, "/ \t\n\x00")
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
