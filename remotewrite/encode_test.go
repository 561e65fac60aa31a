package remotewrite

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/tripcap/tripcap"
	"google.golang.org/protobuf/encoding/protowire"
)

// decodeWriteRequest reads a WriteRequest with protowire alone, field by
// field, as a receiver would; unknown fields are an error here, so the
// encoder writes nothing but what the spec names.
func decodeWriteRequest(b []byte) ([]decodedSeries, error) {
	var out []decodedSeries
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return fmt.Errorf("WriteRequest: field %d type %d", num, typ)
		}
		var ts decodedSeries
		err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			switch {
			case num == 1 && typ == protowire.BytesType:
				var l label
				err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
					switch {
					case num == 1 && typ == protowire.BytesType:
						l.name = string(v)
					case num == 2 && typ == protowire.BytesType:
						l.value = string(v)
					default:
						return fmt.Errorf("Label: field %d type %d", num, typ)
					}
					return nil
				})
				ts.labels = append(ts.labels, l)
				return err
			case num == 2 && typ == protowire.BytesType:
				var s sample
				err := fields(v, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
					switch {
					case num == 1 && typ == protowire.Fixed64Type:
						s.value = math.Float64frombits(x)
					case num == 2 && typ == protowire.VarintType:
						s.ms = int64(x)
					default:
						return fmt.Errorf("Sample: field %d type %d", num, typ)
					}
					return nil
				})
				ts.samples = append(ts.samples, s)
				return err
			}
			return fmt.Errorf("TimeSeries: field %d type %d", num, typ)
		})
		out = append(out, ts)
		return err
	})
	return out, err
}

// decodedSeries is a TimeSeries as a receiver reads it.
type decodedSeries struct {
	labels  []label
	samples []sample
}

// fields calls fn for each field of a message: bytes fields' contents in
// v, varint and fixed64 fields' values in x.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		default:
			return fmt.Errorf("field %d: wire type %d", num, typ)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

func TestEncodeWriteRequestDecodes(t *testing.T) {
	want := []decodedSeries{
		{labels: []label{{"__name__", "tripcap_network_in_bytes_per_second"}, {"host", "web.example.com"}, {"host_id", "h-1"}, {"interface", "eth0"}},
			samples: []sample{{1_700_000_000_000, 1500}, {1_700_000_001_000, 0}, {1_700_000_002_000, math.Inf(1)}}},
		{labels: []label{{"__name__", "tripcap_flows"}, {"direction", "inbound"}, {"host_id", "h-2"}, {"label_team", "é"}},
			samples: []sample{{0, -2.5}}},
		{labels: []label{{"__name__", "x"}, {"host_id", ""}}},
	}
	var in []timeSeries
	for _, d := range want {
		in = append(in, timeSeries{labels: appendLabels(nil, d.labels), samples: d.samples})
	}
	raw := appendWriteRequest(nil, in)
	compressed := snappy.Encode(nil, raw)
	back, err := snappy.Decode(nil, compressed)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, raw) {
		t.Fatal("snappy round trip changed the body")
	}
	got, err := decodeWriteRequest(back)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if n := len(appendWriteRequest(nil, nil)); n != 0 {
		t.Fatalf("empty request: %d bytes", n)
	}
}

func TestSeriesLabelsSortedAndNamed(t *testing.T) {
	keys, err := ParseLabelKeys("keys", []string{"team", "azure.resourceGroup"})
	if err != nil {
		t.Fatal(err)
	}
	hl := hostLabels{id: "h-1", name: "web.example.com", extra: []label{{"label_azure_resourceGroup", "rg"}, {"label_team", "net"}}}
	if keys[0].Name != "label_azure_resourceGroup" || keys[1].Name != "label_team" {
		t.Fatalf("keys: %+v", keys)
	}
	for _, d := range []struct {
		def   string
		iface string
	}{{"network_out_bytes", "eth0"}, {"inbound_flows", ""}} {
		def, _ := tripcap.MetricID(d.def).Definition()
		ls := seriesLabels(hl, def, d.iface)
		for i := 1; i < len(ls); i++ {
			if ls[i-1].name >= ls[i].name {
				t.Fatalf("%s: labels not sorted: %v", d.def, ls)
			}
		}
		for _, l := range ls {
			if !validLabelName(l.name) {
				t.Fatalf("%s: invalid label name %q", d.def, l.name)
			}
		}
		t.Logf("%s: %v", d.def, ls)
	}
}

func validLabelName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

func TestParseLabelKeysRefuses(t *testing.T) {
	for _, keys := range [][]string{{""}, {"a.b", "a_b"}, {string(make([]byte, 64))}, {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}} {
		if _, err := ParseLabelKeys("--remote-write-label-keys", keys); err == nil {
			t.Errorf("%q: no error", keys)
		}
	}
}

func FuzzParseLabelKeys(f *testing.F) {
	f.Add("team,azure.resourceGroup")
	f.Add("a.b,a_b")
	f.Add("\xff,ü-x")
	f.Fuzz(func(t *testing.T, s string) {
		var keys []string
		for i, start := 0, 0; i <= len(s); i++ {
			if i == len(s) || s[i] == ',' {
				keys = append(keys, s[start:i])
				start = i + 1
			}
		}
		out, err := ParseLabelKeys("keys", keys)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, k := range out {
			if !validLabelName(k.Name) || seen[k.Name] {
				t.Fatalf("%q: label name %q invalid or repeated", s, k.Name)
			}
			seen[k.Name] = true
		}
	})
}
