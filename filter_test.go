package tripcap

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func addrRange(from, to string) AddrRange {
	return AddrRange{netip.MustParseAddr(from), netip.MustParseAddr(to)}
}

func addr1(a string) AddrRange { return addrRange(a, a) }

func TestParseFilter(t *testing.T) {
	cases := []struct {
		in   PacketCaptureFilter
		want ParsedFilter
	}{
		{PacketCaptureFilter{}, ParsedFilter{}},
		{PacketCaptureFilter{Protocol: "Any"}, ParsedFilter{}},
		{PacketCaptureFilter{Protocol: "tcp"}, ParsedFilter{Protocol: FilterTCP}},
		{PacketCaptureFilter{Protocol: " UDP "}, ParsedFilter{Protocol: FilterUDP}},
		{PacketCaptureFilter{LocalIPAddress: "10.0.0.4"}, ParsedFilter{LocalAddrs: AddrSet{addr1("10.0.0.4")}}},
		{PacketCaptureFilter{LocalIPAddress: "10.0.0.1-10.0.0.255"}, ParsedFilter{LocalAddrs: AddrSet{addrRange("10.0.0.1", "10.0.0.255")}}},
		{PacketCaptureFilter{LocalIPAddress: "10.0.0.1;10.0.0.5;"}, ParsedFilter{LocalAddrs: AddrSet{addr1("10.0.0.1"), addr1("10.0.0.5")}}},
		{PacketCaptureFilter{RemoteIPAddress: "2001:db8::1 - 2001:db8::ff"}, ParsedFilter{RemoteAddrs: AddrSet{addrRange("2001:db8::1", "2001:db8::ff")}}},
		{PacketCaptureFilter{RemoteIPAddress: "10.0.0.1; 2001:db8::1"}, ParsedFilter{RemoteAddrs: AddrSet{addr1("10.0.0.1"), addr1("2001:db8::1")}}},
		{PacketCaptureFilter{RemoteIPAddress: "::ffff:10.0.0.1"}, ParsedFilter{RemoteAddrs: AddrSet{addr1("::ffff:10.0.0.1")}}},
		{PacketCaptureFilter{LocalIPAddress: "10.0.0.1-10.0.0.1"}, ParsedFilter{LocalAddrs: AddrSet{addr1("10.0.0.1")}}},
		{PacketCaptureFilter{LocalPort: "80"}, ParsedFilter{LocalPorts: PortSet{{80, 80}}}},
		{PacketCaptureFilter{LocalPort: "80-85"}, ParsedFilter{LocalPorts: PortSet{{80, 85}}}},
		{PacketCaptureFilter{RemotePort: "80;443;"}, ParsedFilter{RemotePorts: PortSet{{80, 80}, {443, 443}}}},
		{PacketCaptureFilter{RemotePort: "0-65535"}, ParsedFilter{RemotePorts: PortSet{{0, 65535}}}},
		{PacketCaptureFilter{RemotePort: "080"}, ParsedFilter{RemotePorts: PortSet{{80, 80}}}},
		{PacketCaptureFilter{RemotePort: "53;"}, ParsedFilter{RemotePorts: PortSet{{53, 53}}}},
		// IPv4 on one side and a mixed list on the other can still match.
		{PacketCaptureFilter{LocalIPAddress: "10.0.0.1", RemoteIPAddress: "2001:db8::1;10.0.0.2"},
			ParsedFilter{LocalAddrs: AddrSet{addr1("10.0.0.1")}, RemoteAddrs: AddrSet{addr1("2001:db8::1"), addr1("10.0.0.2")}}},
	}
	for _, tc := range cases {
		got, err := tc.in.Parse()
		if err != nil {
			t.Errorf("Parse(%+v): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseFilterErrors(t *testing.T) {
	cases := []struct {
		in   PacketCaptureFilter
		want string
	}{
		{PacketCaptureFilter{Protocol: "ICMP"}, `protocol: "ICMP" is not one of TCP, UDP, Any`},
		{PacketCaptureFilter{LocalPort: "90-80"}, `localPort: "90-80" is a reversed range`},
		{PacketCaptureFilter{LocalPort: "80-90;100"}, `localPort: "80-90;100" mixes a range with a list`},
		{PacketCaptureFilter{LocalPort: "80-90-100"}, `localPort: "80-90-100" has more than one range`},
		{PacketCaptureFilter{LocalPort: "80-"}, `localPort: "80-" is a range with a missing end`},
		{PacketCaptureFilter{LocalPort: "-80"}, `localPort: "-80" is a range with a missing end`},
		{PacketCaptureFilter{RemotePort: "65536"}, `remotePort: port "65536" is outside 0..65535`},
		{PacketCaptureFilter{RemotePort: "99999999999999999999"}, `remotePort: port "99999999999999999999" is outside 0..65535`},
		{PacketCaptureFilter{RemotePort: "http"}, `remotePort: "http" is not a port number`},
		{PacketCaptureFilter{RemotePort: "+80"}, `remotePort: "+80" is not a port number`},
		{PacketCaptureFilter{RemotePort: "80;;443"}, `remotePort: "80;;443" has an empty list item at position 2`},
		{PacketCaptureFilter{RemotePort: ";80"}, `remotePort: ";80" has an empty list item at position 1`},
		{PacketCaptureFilter{RemotePort: ";"}, `remotePort: ";" has an empty list item at position 1`},
		{PacketCaptureFilter{RemotePort: "80;;"}, `remotePort: "80;;" has an empty list item at position 2`},
		{PacketCaptureFilter{LocalIPAddress: "10.0.0.256"}, `localIPAddress: "10.0.0.256" is not an IP address`},
		{PacketCaptureFilter{LocalIPAddress: "10.0.0.0/24"}, `localIPAddress: "10.0.0.0/24" is a prefix; prefixes are not supported`},
		{PacketCaptureFilter{LocalIPAddress: "fe80::1%eth0"}, `localIPAddress: "fe80::1%eth0" has a zone`},
		{PacketCaptureFilter{LocalIPAddress: "10.0.0.1-2001:db8::1"}, `localIPAddress: "10.0.0.1-2001:db8::1" mixes IPv4 and IPv6 in one range`},
		{PacketCaptureFilter{LocalIPAddress: "10.0.0.9-10.0.0.1"}, `localIPAddress: "10.0.0.9-10.0.0.1" is a reversed range`},
		{PacketCaptureFilter{LocalIPAddress: "10.0.0.1;10.0.0.2-10.0.0.3"}, `localIPAddress: "10.0.0.1;10.0.0.2-10.0.0.3" mixes a range with a list`},
		{PacketCaptureFilter{LocalIPAddress: "10.0.0.1", RemoteIPAddress: "2001:db8::1"},
			`remoteIPAddress: has only IPv6 addresses but localIPAddress only IPv4 ones, so no packet can match`},
	}
	for _, tc := range cases {
		_, err := tc.in.Parse()
		if err == nil || ErrorCode(err) != EINVALID || !strings.HasPrefix(ErrorMessage(err), tc.want) {
			t.Errorf("Parse(%+v) = %v, want EINVALID starting %q", tc.in, err, tc.want)
		}
	}
}

func TestValidateFilters(t *testing.T) {
	if err := ValidateFilters(nil); err != nil {
		t.Errorf("ValidateFilters(nil) = %v", err)
	}
	good := PacketCaptureFilter{Protocol: "TCP", RemoteIPAddress: "198.18.0.2", RemotePort: "80;443"}
	if err := ValidateFilters([]PacketCaptureFilter{good, {}}); err != nil {
		t.Errorf("ValidateFilters: %v", err)
	}
	err := ValidateFilters([]PacketCaptureFilter{good, {LocalPort: "90-80"}})
	if want := `filters[1].localPort: "90-80" is a reversed range`; ErrorCode(err) != EINVALID || ErrorMessage(err) != want {
		t.Errorf("ValidateFilters = %v, want %q", err, want)
	}
	// Validate carries the check too.
	p := PacketCaptureParameters{Target: "vm1", StorageLocation: StorageLocation{LocalPath: "/var/captures/a.cap"},
		Filters: []PacketCaptureFilter{{RemotePort: "x"}}}
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "filters[0].remotePort") {
		t.Errorf("Validate = %v, want a filters[0].remotePort error", err)
	}
}

func TestParseFilterFlag(t *testing.T) {
	got, err := ParseFilterFlag("protocol=tcp,remoteIPAddress=198.18.0.2,remotePort=80;443")
	want := PacketCaptureFilter{Protocol: "TCP", RemoteIPAddress: "198.18.0.2", RemotePort: "80;443"}
	if err != nil || got != want {
		t.Errorf("ParseFilterFlag = %+v, %v; want %+v", got, err, want)
	}
	got, err = ParseFilterFlag(" LOCALPORT = 80-85 , localipaddress=2001:db8::1 ")
	want = PacketCaptureFilter{LocalPort: "80-85", LocalIPAddress: "2001:db8::1"}
	if err != nil || got != want {
		t.Errorf("ParseFilterFlag = %+v, %v; want %+v", got, err, want)
	}
	for in, msg := range map[string]string{
		"":                           "filter: empty",
		"  ":                         "filter: empty",
		"protocol=TCP,":              `filter: "protocol=TCP," has an empty key=value pair`,
		"protocol":                   `filter: "protocol" has no '='`,
		"proto=TCP":                  `filter: unknown key "proto"; keys are protocol, localIPAddress, localPort, remoteIPAddress, remotePort`,
		"localPort=80,LocalPort=81":  "filter: key localPort given twice",
		"localPort=":                 "filter: key localPort has an empty value",
		"remotePort=70000":           `remotePort: port "70000" is outside 0..65535`,
		"protocol=TCP,localPort=9-8": `localPort: "9-8" is a reversed range`,
	} {
		_, err := ParseFilterFlag(in)
		if ErrorCode(err) != EINVALID || !strings.HasPrefix(ErrorMessage(err), msg) {
			t.Errorf("ParseFilterFlag(%q) = %v, want EINVALID starting %q", in, err, msg)
		}
	}
}

func TestMatch(t *testing.T) {
	host, peer := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("198.18.0.2")
	in := func(proto uint8, peerPort, hostPort uint16) FilterPacket {
		return FilterPacket{Protocol: proto, Src: peer, Dst: host, SrcPort: peerPort, DstPort: hostPort, HasPorts: true}
	}
	out := func(proto uint8, hostPort, peerPort uint16) FilterPacket {
		return FilterPacket{Outgoing: true, Protocol: proto, Src: host, Dst: peer, SrcPort: hostPort, DstPort: peerPort, HasPorts: true}
	}
	noPorts := func(p FilterPacket) FilterPacket { p.HasPorts, p.SrcPort, p.DstPort = false, 0, 0; return p }
	parse := func(f PacketCaptureFilter) ParsedFilter {
		p, err := f.Parse()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	web := parse(PacketCaptureFilter{Protocol: "TCP", LocalPort: "80"})
	dns := parse(PacketCaptureFilter{RemotePort: "53"})
	udpPeer := parse(PacketCaptureFilter{Protocol: "UDP", RemoteIPAddress: "198.18.0.2"})
	cases := []struct {
		name string
		f    ParsedFilter
		pkt  FilterPacket
		want bool
	}{
		{"request to local port 80", web, in(6, 5000, 80), true},
		{"reply from local port 80", web, out(6, 80, 5000), true},
		{"request from the host to a remote port 80", web, out(6, 5000, 80), false},
		{"UDP to local port 80", web, in(17, 5000, 80), false},
		{"Any with a port matches UDP", dns, out(17, 40000, 53), true},
		{"Any with a port matches TCP", dns, out(6, 40000, 53), true},
		{"Any with a port does not match ICMP", dns, out(1, 40000, 53), false},
		{"a port filter drops a non-first fragment", dns, noPorts(out(17, 40000, 53)), false},
		{"a filter without ports keeps it", udpPeer, noPorts(out(17, 40000, 53)), true},
		{"non-IP never matches a constrained filter", udpPeer, FilterPacket{}, false},
		{"non-IP matches an unconstrained filter", ParsedFilter{}, FilterPacket{}, true},
		{"remote address of an incoming packet is its source", udpPeer, in(17, 1, 2), true},
		{"remote address of an outgoing packet is its destination", udpPeer, out(17, 1, 2), true},
		{"HasPorts on a non-TCP/UDP packet does not count", dns, out(132, 40000, 53), false},
	}
	for _, tc := range cases {
		if got := tc.f.Match(tc.pkt); got != tc.want {
			t.Errorf("%s: Match = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !MatchFilters(nil, FilterPacket{}) {
		t.Error("MatchFilters(nil) must match everything")
	}
	if !MatchFilters([]ParsedFilter{dns, web}, in(6, 5000, 80)) || MatchFilters([]ParsedFilter{dns, web}, in(6, 80, 5000)) {
		t.Error("MatchFilters must OR its filters")
	}
}

func TestParsedFilterRoundTrip(t *testing.T) {
	in := PacketCaptureFilter{Protocol: "udp", LocalIPAddress: " 10.0.0.1;10.0.0.5; ", LocalPort: "80-85",
		RemoteIPAddress: "198.18.0.1-198.18.0.9;", RemotePort: "53;"}
	_, err := in.Parse()
	if err == nil {
		t.Fatal("a range with a trailing ';' is a range in a list")
	}
	in.RemoteIPAddress = "198.18.0.1 - 198.18.0.9"
	p, err := in.Parse()
	if err != nil {
		t.Fatal(err)
	}
	want := PacketCaptureFilter{Protocol: "UDP", LocalIPAddress: "10.0.0.1;10.0.0.5", LocalPort: "80-85",
		RemoteIPAddress: "198.18.0.1-198.18.0.9", RemotePort: "53"}
	if got := p.Filter(); got != want {
		t.Errorf("Filter() = %+v, want %+v", got, want)
	}
}
