package metricwire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/metricstore"
)

// Frame is one decoded frame; which fields mean something depends on Kind.
type Frame struct {
	Kind Kind
	// Sec is the second of KindPoints, the start of KindHistoryRequest
	// (unix seconds) and the second acknowledged by KindAck.
	Sec int64
	// Points (KindPoints) all have Time Sec and no Host: the server files
	// them under the agent's host.
	Points []tripcap.MetricPoint
	// History (KindHistory): series with Key.Host empty.
	History []metricstore.SeriesHistory
	// Stored and Refused (KindAck) count the acknowledged frame's points.
	Stored, Refused uint64
}

// AppendPoints appends a KindPoints frame of pts, which must all be
// stamped sec (their Host is not sent).
func AppendPoints(dst []byte, sec int64, pts []tripcap.MetricPoint) ([]byte, error) {
	if len(pts) > MaxSeries {
		return dst, fmt.Errorf("metricwire: %d series in one frame; at most %d", len(pts), MaxSeries)
	}
	var tbl [4]string // a host's interfaces, without allocating
	ifaces := tbl[:0]
	body, start := begin(dst, KindPoints)
	body = binary.AppendVarint(body, sec)
	for _, p := range pts {
		if p.Interface != "" && !slices.Contains(ifaces, p.Interface) {
			ifaces = append(ifaces, p.Interface)
		}
	}
	if len(ifaces) > MaxInterfaces {
		return dst, fmt.Errorf("metricwire: %d interfaces in one frame; at most %d", len(ifaces), MaxInterfaces)
	}
	body = appendIfaces(body, ifaces)
	body = binary.AppendUvarint(body, uint64(len(pts)))
	for i, p := range pts {
		if p.Time.Unix() != sec {
			return dst, fmt.Errorf("metricwire: points[%d].time: %s is not the frame's second %d", i, p.Time.UTC().Format(time.RFC3339), sec)
		}
		var err error
		if body, err = appendSeries(body, p.Metric, p.Interface, ifaces); err != nil {
			return dst, fmt.Errorf("metricwire: points[%d]: %w", i, err)
		}
		body = appendValue(body, p.Value)
	}
	return end(body, start)
}

// AppendHistory appends a KindHistory frame of h (Key.Host is not sent).
// Callers split a host's history into frames of at most MaxHistorySeries
// series and within MaxFrameBytes; one series per frame always fits for
// the default windows (an hour of seconds, a day of minutes).
func AppendHistory(dst []byte, h []metricstore.SeriesHistory) ([]byte, error) {
	if len(h) > MaxHistorySeries {
		return dst, fmt.Errorf("metricwire: %d series in one history frame; at most %d", len(h), MaxHistorySeries)
	}
	var ifaces []string
	for _, s := range h {
		if s.Key.Interface != "" && !slices.Contains(ifaces, s.Key.Interface) {
			ifaces = append(ifaces, s.Key.Interface)
		}
	}
	if len(ifaces) > MaxInterfaces {
		return dst, fmt.Errorf("metricwire: %d interfaces in one frame; at most %d", len(ifaces), MaxInterfaces)
	}
	body, start := begin(dst, KindHistory)
	body = appendIfaces(body, ifaces)
	body = binary.AppendUvarint(body, uint64(len(h)))
	for i, s := range h {
		var err error
		if body, err = appendSeries(body, s.Key.Metric, s.Key.Interface, ifaces); err != nil {
			return dst, fmt.Errorf("metricwire: history[%d]: %w", i, err)
		}
		if len(s.Raw) > MaxRawPoints || len(s.Rollups) > MaxRollups {
			return dst, fmt.Errorf("metricwire: history[%d]: %d raw points and %d rollups; at most %d and %d", i, len(s.Raw), len(s.Rollups), MaxRawPoints, MaxRollups)
		}
		body = binary.AppendUvarint(body, uint64(len(s.Raw)))
		for j, p := range s.Raw {
			if j == 0 {
				body = binary.AppendVarint(body, p.Sec)
			} else if d := p.Sec - s.Raw[j-1].Sec; d > 0 {
				body = binary.AppendUvarint(body, uint64(d-1))
			} else {
				return dst, fmt.Errorf("metricwire: history[%d].raw[%d].sec: %d is not after the point before", i, j, p.Sec)
			}
			body = appendValue(body, p.Value)
		}
		body = binary.AppendUvarint(body, uint64(len(s.Rollups)))
		for j, r := range s.Rollups {
			if r.Minute%60 != 0 {
				return dst, fmt.Errorf("metricwire: history[%d].rollups[%d].minute: %d is not the start of a minute", i, j, r.Minute)
			}
			if j == 0 {
				body = binary.AppendVarint(body, r.Minute/60)
			} else if d := (r.Minute - s.Rollups[j-1].Minute) / 60; d > 0 {
				body = binary.AppendUvarint(body, uint64(d-1))
			} else {
				return dst, fmt.Errorf("metricwire: history[%d].rollups[%d].minute: %d is not after the bucket before", i, j, r.Minute)
			}
			body = binary.AppendUvarint(body, uint64(r.Count))
			body = appendValue(body, r.Sum)
			body = appendValue(body, r.Min)
			body = appendValue(body, r.Max)
		}
	}
	return end(body, start)
}

// AppendHistoryEnd appends the frame that ends a history answer.
func AppendHistoryEnd(dst []byte) []byte {
	b, _ := end(begin(dst, KindHistoryEnd))
	return b
}

// AppendHistoryRequest appends a request for the history at or after since.
func AppendHistoryRequest(dst []byte, since int64) []byte {
	body, start := begin(dst, KindHistoryRequest)
	b, _ := end(binary.AppendVarint(body, since), start)
	return b
}

// AppendAck appends an acknowledgement of the points frames up to sec.
func AppendAck(dst []byte, sec int64, stored, refused uint64) []byte {
	body, start := begin(dst, KindAck)
	body = binary.AppendVarint(body, sec)
	body = binary.AppendUvarint(body, stored)
	body = binary.AppendUvarint(body, refused)
	b, _ := end(body, start)
	return b
}

func appendIfaces(b []byte, ifaces []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ifaces)))
	for _, n := range ifaces {
		b = binary.AppendUvarint(b, uint64(len(n)))
		b = append(b, n...)
	}
	return b
}

// appendSeries writes a series' metric code and interface index (0 the
// host's series, i+1 the table's i-th interface).
func appendSeries(b []byte, m tripcap.MetricID, iface string, ifaces []string) ([]byte, error) {
	c, err := metricCode(m)
	if err != nil {
		return b, err
	}
	if iface != "" && !validIfaceName(iface) {
		return b, fmt.Errorf("interface: %q is not a valid interface name", clip(iface))
	}
	b = append(b, c)
	return binary.AppendUvarint(b, uint64(slices.Index(ifaces, iface)+1)), nil
}

// lenRoom is the room begin leaves for a frame's length: a uvarint of at
// most MaxFrameBytes.
const lenRoom = 3

// begin starts a frame of kind at the end of dst, in place: room for its
// length, then the body's first bytes. end finishes it; start is where it
// began.
func begin(dst []byte, kind Kind) (body []byte, start int) {
	start = len(dst)
	return append(dst, 0, 0, 0, Version, byte(kind)), start
}

// end writes the length of the frame begun at start and moves the body up
// to it; a frame over MaxFrameBytes is taken back off (dst as it was).
func end(b []byte, start int) ([]byte, error) {
	n := len(b) - start - lenRoom
	if n > MaxFrameBytes {
		return b[:start], fmt.Errorf("metricwire: frame of %d bytes; at most %d", n, MaxFrameBytes)
	}
	var l [lenRoom]byte
	k := binary.PutUvarint(l[:], uint64(n))
	copy(b[start+k:], b[start+lenRoom:])
	copy(b[start:], l[:k])
	return b[:len(b)-(lenRoom-k)], nil
}

// Decoder reads frames from a stream.
type Decoder struct {
	r   *bufio.Reader
	buf []byte
	n   int // frames read, for errors
	sc  scratch
}

// scratch is what a Decoder reuses from frame to frame: a points frame's
// Points, its interface table, and the interface names seen (a host's
// names are the same every second: reusing them saves a string each).
type scratch struct {
	pts    []tripcap.MetricPoint
	ifaces []string
	names  []string
}

// name returns b as a string: one seen before (seen) when there is one.
func (sc *scratch) name(b []byte) (n string, seen bool) {
	for _, n := range sc.names {
		if n == string(b) {
			return n, true
		}
	}
	return string(b), false
}

// keep remembers a valid name, within MaxInterfaces: a stream whose names
// keep changing allocates for the new ones.
func (sc *scratch) keep(n string) {
	if len(sc.names) < MaxInterfaces {
		sc.names = append(sc.names, n)
	}
}

// NewDecoder returns a decoder reading r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, 16<<10)}
}

// Next reads the next frame: io.EOF at a clean end of the stream, an
// error naming the frame and what is wrong otherwise. A points frame's
// Points are valid until the next call (the decoder reuses them, so a
// stream costs no allocation per frame); a history frame's slices are
// its own.
func (d *Decoder) Next() (Frame, error) {
	n, err := binary.ReadUvarint(d.r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Frame{}, io.EOF
		}
		return Frame{}, d.readError("length", err)
	}
	if n > MaxFrameBytes {
		return Frame{}, d.errorf("length: %d bytes; at most %d", n, MaxFrameBytes)
	}
	if cap(d.buf) < int(n) {
		d.buf = make([]byte, n)
	}
	b := d.buf[:n]
	if _, err := io.ReadFull(d.r, b); err != nil {
		return Frame{}, d.readError("body", err)
	}
	f, err := decode(b, &d.sc)
	if err != nil {
		return Frame{}, d.errorf("%v", err)
	}
	d.n++
	return f, nil
}

func (d *Decoder) errorf(format string, args ...any) error {
	return tripcap.Errorf(tripcap.EINVALID, "metricwire: frame %d: %s", d.n, fmt.Sprintf(format, args...))
}

// readError: a stream cut inside a frame, or a frame length that
// overflows, is malformed input; another error is the connection's.
func (d *Decoder) readError(field string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return d.errorf("%s: %v", field, io.ErrUnexpectedEOF)
	}
	if err.Error() == "binary: varint overflows a 64-bit integer" {
		return d.errorf("%s: %v", field, err)
	}
	return fmt.Errorf("metricwire: reading frame %d: %w", d.n, err)
}

// DecodeAll decodes every frame of b (a request body of frames).
func DecodeAll(b []byte, max int) ([]Frame, error) {
	var out []Frame
	for i := 0; len(b) > 0; i++ {
		if i >= max {
			return nil, tripcap.Errorf(tripcap.EINVALID, "metricwire: more than %d frames", max)
		}
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, tripcap.Errorf(tripcap.EINVALID, "metricwire: frame %d: length: not a uvarint", i)
		}
		if n > MaxFrameBytes || n > uint64(len(b)-k) {
			return nil, tripcap.Errorf(tripcap.EINVALID, "metricwire: frame %d: length: %d bytes, %d left", i, n, len(b)-k)
		}
		f, err := Decode(b[k : k+int(n)])
		if err != nil {
			return nil, tripcap.Errorf(tripcap.EINVALID, "metricwire: frame %d: %v", i, err)
		}
		out = append(out, f)
		b = b[k+int(n):]
	}
	return out, nil
}

// Decode decodes one frame body (without its length); the frame's slices
// are its own.
func Decode(b []byte) (Frame, error) { return decode(b, nil) }

// decode decodes a frame body, into sc's slices when sc is not nil.
func decode(b []byte, sc *scratch) (Frame, error) {
	r := reader{b: b, sc: sc}
	if v := r.byte(top("version")); r.err == nil && v != Version {
		return Frame{}, fmt.Errorf("version: %d; this build reads version %d", v, Version)
	}
	f := Frame{Kind: Kind(r.byte(top("kind")))}
	if r.err != nil {
		return Frame{}, r.err
	}
	switch f.Kind {
	case KindPoints:
		f.Sec = r.varint(top("sec"))
		ifaces := r.ifaces()
		n := r.count(top("series"), MaxSeries)
		if r.err == nil {
			if sc != nil && sc.pts != nil && cap(sc.pts) >= n {
				f.Points = sc.pts[:0]
			} else {
				f.Points = make([]tripcap.MetricPoint, 0, n)
				if sc != nil {
					sc.pts = f.Points
				}
			}
		}
		t := time.Unix(f.Sec, 0).UTC()
		if t.IsZero() && r.err == nil {
			// The one second tripcap.MetricBatch.Validate refuses as no time.
			r.fail(top("sec"), fmt.Sprintf("%d is no time", f.Sec))
		}
		for i := 0; i < n && r.err == nil; i++ {
			at := elem("series", i)
			m, iface := r.series(ifaces, at)
			v := r.value(at.leafed(".value"))
			f.Points = append(f.Points, tripcap.MetricPoint{Metric: m, Interface: iface, Time: t, Value: v})
		}
	case KindHistory:
		ifaces := r.ifaces()
		n := r.count(top("history"), MaxHistorySeries)
		for i := 0; i < n && r.err == nil; i++ {
			at := elem("history", i)
			m, iface := r.series(ifaces, at)
			s := metricstore.SeriesHistory{Key: metricstore.Key{Metric: m, Interface: iface}}
			if nr := r.count(at.leafed(".raw"), MaxRawPoints); nr > 0 {
				s.Raw = make([]metricstore.RawPoint, nr)
				for j := range s.Raw {
					if j == 0 {
						s.Raw[j].Sec = r.varint(at.in(".raw", 0, ".sec"))
					} else {
						s.Raw[j].Sec = r.after(s.Raw[j-1].Sec, 1, at.in(".raw", j, ".sec"))
					}
					s.Raw[j].Value = r.value(at.in(".raw", j, ".value"))
					if r.err != nil {
						break
					}
				}
			}
			if nb := r.count(at.leafed(".rollups"), MaxRollups); nb > 0 {
				s.Rollups = make([]metricstore.RollupBucket, nb)
				for j := range s.Rollups {
					f := at.in(".rollups", j, "")
					b := &s.Rollups[j]
					if j == 0 {
						if m := r.varint(f.leafed(".minute")); m > math.MaxInt64/60 || m < math.MinInt64/60 {
							r.fail(f.leafed(".minute"), "out of range")
						} else {
							b.Minute = m * 60
						}
					} else {
						b.Minute = r.after(s.Rollups[j-1].Minute, 60, f.leafed(".minute"))
					}
					c := r.uvarint(f.leafed(".count"))
					b.Sum, b.Min, b.Max = r.value(f.leafed(".sum")), r.value(f.leafed(".min")), r.value(f.leafed(".max"))
					if r.err != nil {
						break
					}
					switch {
					case c == 0 || c > 60:
						r.fail(f.leafed(".count"), fmt.Sprintf("%d; a minute holds 1 to 60 points", c))
					case b.Min > b.Max:
						r.fail(f.leafed(".min"), fmt.Sprintf("%v is above max %v", b.Min, b.Max))
					}
					b.Count = uint32(c)
				}
			}
			f.History = append(f.History, s)
		}
	case KindHistoryEnd:
	case KindHistoryRequest:
		f.Sec = r.varint(top("since"))
	case KindAck:
		f.Sec = r.varint(top("sec"))
		f.Stored = r.uvarint(top("stored"))
		f.Refused = r.uvarint(top("refused"))
	default:
		return Frame{}, fmt.Errorf("kind: %d is not a frame kind", uint8(f.Kind))
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail(top(f.Kind.String()), fmt.Sprintf("%d bytes after the frame's end", len(r.b)))
	}
	if r.err != nil {
		return Frame{}, r.err
	}
	return f, nil
}

// field names what a decoding error is about, built only when one is
// reported: formatting a name per value would cost more than decoding it.
type field struct {
	list string
	i    int // -1: not an element
	sub  string
	j    int // -1: no sub-element
	leaf string
}

func top(name string) field           { return field{list: name, i: -1, j: -1} }
func elem(list string, i int) field   { return field{list: list, i: i, j: -1} }
func (f field) leafed(l string) field { f.leaf = l; return f }
func (f field) in(sub string, j int, leaf string) field {
	f.sub, f.j, f.leaf = sub, j, leaf
	return f
}

func (f field) String() string {
	s := f.list
	if f.i >= 0 {
		s += "[" + strconv.Itoa(f.i) + "]"
	}
	s += f.sub
	if f.j >= 0 {
		s += "[" + strconv.Itoa(f.j) + "]"
	}
	return s + f.leaf
}

// reader decodes a body; its first error sticks, and later reads return
// zero values.
type reader struct {
	b   []byte
	err error
	sc  *scratch // nil: nothing reused
}

func (r *reader) fail(field field, why string) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %s", field, why)
	}
	r.b = nil
}

func (r *reader) byte(field field) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail(field, "missing (the frame ends)")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint(field field) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(field, "not a uvarint (the frame ends or it overflows)")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(field field) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(field, "not a varint (the frame ends or it overflows)")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a length of at most max, also bounded by the bytes left
// (every entry takes at least one), so a length cannot make the decoder
// allocate beyond the frame.
func (r *reader) count(field field, max int) int {
	v := r.uvarint(field)
	if r.err != nil {
		return 0
	}
	if v > uint64(max) {
		r.fail(field, fmt.Sprintf("%d entries; at most %d", v, max))
		return 0
	}
	if v > uint64(len(r.b)) {
		r.fail(field, fmt.Sprintf("%d entries in %d bytes", v, len(r.b)))
		return 0
	}
	return int(v)
}

// after reads a gap and returns prev + (gap+1)*step, refusing overflow.
func (r *reader) after(prev, step int64, field field) int64 {
	g := r.uvarint(field)
	if r.err != nil {
		return 0
	}
	if g >= uint64(math.MaxInt64/step) || prev > math.MaxInt64-int64(g+1)*step {
		r.fail(field, "out of range")
		return 0
	}
	return prev + int64(g+1)*step
}

func (r *reader) ifaces() []string {
	n := r.count(top("interfaces"), MaxInterfaces)
	var out []string
	if r.sc != nil {
		out = r.sc.ifaces[:0]
		defer func() { r.sc.ifaces = out[:0] }()
	}
	for i := 0; i < n && r.err == nil; i++ {
		field := elem("interfaces", i)
		l := r.uvarint(field)
		if r.err != nil {
			break
		}
		if l > uint64(len(r.b)) {
			r.fail(field, fmt.Sprintf("%d bytes, %d left", l, len(r.b)))
			break
		}
		var name string
		seen := false
		if r.sc != nil {
			name, seen = r.sc.name(r.b[:l])
		} else {
			name = string(r.b[:l])
		}
		r.b = r.b[l:]
		if !seen {
			if !validIfaceName(name) {
				r.fail(field, fmt.Sprintf("%q is not a valid interface name", clip(name)))
				break
			}
			if r.sc != nil {
				r.sc.keep(name)
			}
		}
		if slices.Contains(out, name) {
			r.fail(field, fmt.Sprintf("%q is named twice", name))
			break
		}
		out = append(out, name)
	}
	return out
}

func (r *reader) series(ifaces []string, at field) (tripcap.MetricID, string) {
	c := r.byte(at.leafed(".metric"))
	idx := r.uvarint(at.leafed(".interface"))
	if r.err != nil {
		return "", ""
	}
	if int(c) >= len(metricCodes) || metricCodes[c] == "" {
		r.fail(at.leafed(".metric"), fmt.Sprintf("code %d is not a metric", c))
		return "", ""
	}
	m := metricCodes[c]
	if idx > uint64(len(ifaces)) {
		r.fail(at.leafed(".interface"), fmt.Sprintf("index %d; the frame names %d interfaces", idx, len(ifaces)))
		return "", ""
	}
	if idx == 0 {
		return m, ""
	}
	if !perInterface[c] {
		r.fail(at.leafed(".interface"), fmt.Sprintf("%s has no per-interface series", m))
		return "", ""
	}
	return m, ifaces[idx-1]
}

func (r *reader) value(field field) float64 {
	t := r.uvarint(field)
	if r.err != nil {
		return 0
	}
	switch {
	case t&1 == 0:
		z := t >> 1
		i := int64(z>>1) ^ -int64(z&1)
		if i > maxExactInt || i < -maxExactInt {
			r.fail(field, "integer out of the exact range")
			return 0
		}
		return float64(i)
	case t == tagFloat:
		if len(r.b) < 8 {
			r.fail(field, "float: missing (the frame ends)")
			return 0
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
		r.b = r.b[8:]
		if math.IsNaN(v) || math.IsInf(v, 0) {
			r.fail(field, "must be a finite number")
			return 0
		}
		return v
	}
	r.fail(field, fmt.Sprintf("tag %d is not a value", t))
	return 0
}

// AppendBatch appends b's points as KindPoints frames, one per second in
// time order (several when a second has more than MaxSeries series), and
// returns the seconds of the frames appended.
func AppendBatch(dst []byte, b tripcap.MetricBatch) ([]byte, []int64, error) {
	pts := slices.Clone(b.Points)
	slices.SortStableFunc(pts, func(x, y tripcap.MetricPoint) int { return x.Time.Compare(y.Time) })
	var secs []int64
	for len(pts) > 0 {
		sec := pts[0].Time.Unix()
		n := 1
		for n < len(pts) && n < MaxSeries && pts[n].Time.Unix() == sec {
			n++
		}
		var err error
		if dst, err = AppendPoints(dst, sec, pts[:n]); err != nil {
			return dst, secs, err
		}
		secs = append(secs, sec)
		pts = pts[n:]
	}
	return dst, secs, nil
}

// AppendFrame appends f, whatever its kind.
func AppendFrame(dst []byte, f Frame) ([]byte, error) {
	switch f.Kind {
	case KindPoints:
		return AppendPoints(dst, f.Sec, f.Points)
	case KindHistory:
		return AppendHistory(dst, f.History)
	case KindHistoryEnd:
		return AppendHistoryEnd(dst), nil
	case KindHistoryRequest:
		return AppendHistoryRequest(dst, f.Sec), nil
	case KindAck:
		return AppendAck(dst, f.Sec, f.Stored, f.Refused), nil
	}
	return dst, fmt.Errorf("metricwire: %v is not a frame kind", f.Kind)
}

// historyChunk bounds the raw points or rollups of one series in one
// history frame: 20,000 of either stays under MaxFrameBytes whatever the
// values.
const historyChunk = 20_000

// AppendHistoryAnswer appends a whole history answer: KindHistory frames
// of h (one series per frame, a long series split over several) and the
// KindHistoryEnd that ends it.
func AppendHistoryAnswer(dst []byte, h []metricstore.SeriesHistory) ([]byte, error) {
	for _, s := range h {
		raw, rollups := s.Raw, s.Rollups
		for first := true; first || len(raw) > 0 || len(rollups) > 0; first = false {
			part := metricstore.SeriesHistory{Key: s.Key}
			part.Key.Host = ""
			part.Raw, raw = raw[:min(len(raw), historyChunk)], raw[min(len(raw), historyChunk):]
			part.Rollups, rollups = rollups[:min(len(rollups), historyChunk)], rollups[min(len(rollups), historyChunk):]
			var err error
			if dst, err = AppendHistory(dst, []metricstore.SeriesHistory{part}); err != nil {
				return dst, err
			}
		}
	}
	return AppendHistoryEnd(dst), nil
}
