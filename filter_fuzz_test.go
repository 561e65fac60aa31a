package tripcap

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseFilter checks that Parse never panics, fails only with EINVALID
// naming a field, agrees with ValidateFilters, and that what it accepts is
// well formed, prints back to an equal filter, and matches a packet at the
// ends of its ranges. Seeds are in testdata/fuzz/FuzzParseFilter.
func FuzzParseFilter(f *testing.F) {
	f.Fuzz(func(t *testing.T, proto, laddr, lport, raddr, rport string) {
		in := PacketCaptureFilter{proto, laddr, lport, raddr, rport}
		p, err := in.Parse()
		verr := ValidateFilters([]PacketCaptureFilter{in})
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("Parse: %v is not EINVALID", err)
			}
			msg := ErrorMessage(err)
			if field, _, _ := strings.Cut(msg, ": "); !strings.Contains(" protocol localIPAddress localPort remoteIPAddress remotePort ", " "+field+" ") {
				t.Fatalf("Parse error %q names no field", msg)
			}
			if verr == nil || ErrorMessage(verr) != "filters[0]."+msg {
				t.Fatalf("ValidateFilters = %v, Parse = %v", verr, err)
			}
			return
		}
		if verr != nil {
			t.Fatalf("ValidateFilters = %v, but Parse accepts", verr)
		}
		for _, s := range []AddrSet{p.LocalAddrs, p.RemoteAddrs} {
			for _, r := range s {
				if !r.From.IsValid() || r.From.Zone() != "" || r.From.BitLen() != r.To.BitLen() || r.From.Compare(r.To) > 0 {
					t.Fatalf("bad address range %v", r)
				}
			}
		}
		for _, s := range []PortSet{p.LocalPorts, p.RemotePorts} {
			for _, r := range s {
				if r.From > r.To {
					t.Fatalf("bad port range %v", r)
				}
			}
		}
		again, err := p.Filter().Parse()
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("%+v prints as %+v, which parses to %+v, %v", p, p.Filter(), again, err)
		}

		// A packet at the top of every range matches, in both directions.
		pkt := FilterPacket{Protocol: IPProtoTCP, HasPorts: true}
		if p.Protocol == FilterUDP {
			pkt.Protocol = IPProtoUDP
		}
		local, remote := pick(p.LocalAddrs, p.RemoteAddrs)
		pkt.Dst, pkt.Src = local, remote
		if len(p.LocalPorts) > 0 {
			pkt.DstPort = p.LocalPorts[len(p.LocalPorts)-1].To
		}
		if len(p.RemotePorts) > 0 {
			pkt.SrcPort = p.RemotePorts[0].To
		}
		if !p.Match(pkt) {
			t.Fatalf("%+v does not match incoming %+v", p, pkt)
		}
		pkt.Outgoing, pkt.Src, pkt.Dst, pkt.SrcPort, pkt.DstPort = true, pkt.Dst, pkt.Src, pkt.DstPort, pkt.SrcPort
		if !p.Match(pkt) {
			t.Fatalf("%+v does not match outgoing %+v", p, pkt)
		}
	})
}

// pick returns a local and a remote address of one family from the sets:
// the top of the last range of that family, or any address for an empty set.
func pick(local, remote AddrSet) (l, r netip.Addr) {
	for _, v6 := range []bool{false, true} {
		lt, lok := top(local, v6)
		rt, rok := top(remote, v6)
		if lok && rok {
			return lt, rt
		}
	}
	panic("a valid filter's address sets share a family")
}

func top(s AddrSet, v6 bool) (netip.Addr, bool) {
	if len(s) == 0 {
		if v6 {
			return netip.IPv6Loopback(), true
		}
		return netip.AddrFrom4([4]byte{192, 0, 2, 1}), true
	}
	for i := len(s) - 1; i >= 0; i-- {
		if !s[i].From.Is4() == v6 {
			return s[i].To, true
		}
	}
	return netip.Addr{}, false
}

// FuzzParseFilterFlag checks that ParseFilterFlag never panics, fails only
// with EINVALID, and that what it returns is valid and survives being
// written back in the flag form.
func FuzzParseFilterFlag(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseFilterFlag(s)
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("ParseFilterFlag: %v is not EINVALID", err)
			}
			return
		}
		if err := ValidateFilters([]PacketCaptureFilter{got}); err != nil {
			t.Fatalf("ParseFilterFlag returned an invalid filter: %v", err)
		}
		var pairs []string
		for _, kv := range [][2]string{{"protocol", got.Protocol}, {"localIPAddress", got.LocalIPAddress},
			{"localPort", got.LocalPort}, {"remoteIPAddress", got.RemoteIPAddress}, {"remotePort", got.RemotePort}} {
			if kv[1] != "" {
				pairs = append(pairs, kv[0]+"="+kv[1])
			}
		}
		again, err := ParseFilterFlag(strings.Join(pairs, ","))
		if err != nil || again != got {
			t.Fatalf("%+v written back parses to %+v, %v", got, again, err)
		}
	})
}
