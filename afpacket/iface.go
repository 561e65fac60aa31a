//go:build linux

package afpacket

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/pcapfile"
)

// ARPHRD_* device types (linux/if_arp.h) the engine knows how to capture on.
const (
	arphrdEther    = 1
	arphrdPPP      = 512
	arphrdRawIP    = 519
	arphrdTunnel   = 768
	arphrdTunnel6  = 769
	arphrdSit      = 776
	arphrdIPGRE    = 778
	arphrdLoopback = 772
	arphrdIP6GRE   = 823
	arphrdNone     = 65534
)

// framing says what a captured packet starts with.
type framing int

const (
	framingEthernet framing = iota + 1
	// framingRawIP is for layer-3 devices (tun, wireguard, IP tunnels): the
	// socket is SOCK_DGRAM, so packets start at the IP header.
	framingRawIP
)

func (f framing) String() string {
	if f == framingEthernet {
		return "Ethernet"
	}
	return "raw IP"
}

func (f framing) pcapLinkType() pcapfile.LinkType {
	if f == framingEthernet {
		return pcapfile.LinkTypeEthernet
	}
	return pcapfile.LinkTypeRaw
}

// netInterface is an interface as the kernel describes it.
type netInterface struct {
	Name     string
	Index    int
	Up       bool
	Loopback bool
	ARPHRD   uint16
	Framing  framing // 0 when the device type is not supported
	// Master is the bridge or bond the interface is a port of (0: none);
	// Link the interface it is stacked on or, for a veth, its peer (0:
	// none, or in another namespace when LinkNetNS); Kind the driver
	// ("veth", "vlan", "bridge", "bond", …) from IFLA_LINKINFO.
	Master    int
	Link      int
	LinkNetNS bool
	Kind      string
	// dirs are the directions captured on it (see dedupe); 0 means both.
	dirs direction
}

// direction is a set of packet directions.
type direction uint8

const (
	dirIn direction = 1 << iota
	dirOut
	dirBoth = dirIn | dirOut
)

// allows reports whether a packet of the given direction is captured.
func (d direction) allows(outgoing bool) bool {
	if d == 0 || d == dirBoth {
		return true
	}
	if outgoing {
		return d&dirOut != 0
	}
	return d&dirIn != 0
}

func (d direction) String() string {
	switch d {
	case dirIn:
		return "incoming only"
	case dirOut:
		return "outgoing only"
	case 0:
		return "none"
	}
	return "both directions"
}

// listInterfaces reads the interfaces of the calling thread's network
// namespace from an RTM_GETLINK dump (netlink rather than /sys, whose view
// belongs to the namespace that mounted it).
func listInterfaces() ([]netInterface, error) {
	rib, err := syscall.NetlinkRIB(syscall.RTM_GETLINK, syscall.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces from netlink: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return nil, fmt.Errorf("parsing the netlink interface dump: %w", err)
	}
	out := make([]netInterface, 0, len(msgs))
	for i := range msgs {
		if ni, ok := parseLink(&msgs[i]); ok {
			out = append(out, ni)
		}
	}
	return out, nil
}

// parseLink reads an RTM_NEWLINK message.
func parseLink(m *syscall.NetlinkMessage) (netInterface, bool) {
	if m.Header.Type != syscall.RTM_NEWLINK || len(m.Data) < syscall.SizeofIfInfomsg {
		return netInterface{}, false
	}
	// struct ifinfomsg: family u8, pad u8, type u16, index s32, flags u32, change u32.
	ni := netInterface{
		ARPHRD: binary.NativeEndian.Uint16(m.Data[2:4]),
		Index:  int(int32(binary.NativeEndian.Uint32(m.Data[4:8]))),
	}
	flags := binary.NativeEndian.Uint32(m.Data[8:12])
	ni.Up = flags&syscall.IFF_UP != 0
	ni.Loopback = flags&syscall.IFF_LOOPBACK != 0
	// Attributes are read here rather than by syscall.ParseNetlinkRouteAttr,
	// which panics on some malformed lengths.
	forAttrs(m.Data[syscall.SizeofIfInfomsg:], func(typ uint16, v []byte) {
		switch typ {
		case syscall.IFLA_IFNAME:
			ni.Name = strings.TrimRight(string(v), "\x00")
		case syscall.IFLA_MASTER:
			ni.Master = attrInt(v)
		case syscall.IFLA_LINK:
			ni.Link = attrInt(v)
		case unix.IFLA_LINK_NETNSID:
			ni.LinkNetNS = true
		case syscall.IFLA_LINKINFO:
			ni.Kind = linkKind(v)
		}
	})
	if ni.Link == ni.Index {
		ni.Link = 0 // a physical device may name itself
	}
	switch ni.ARPHRD {
	case arphrdEther, arphrdLoopback:
		ni.Framing = framingEthernet
	case arphrdNone, arphrdPPP, arphrdRawIP, arphrdTunnel, arphrdTunnel6, arphrdSit, arphrdIPGRE, arphrdIP6GRE:
		ni.Framing = framingRawIP
	}
	return ni, ni.Name != ""
}

func attrInt(b []byte) int {
	if len(b) < 4 {
		return 0
	}
	return int(int32(binary.NativeEndian.Uint32(b)))
}

// linkKind finds IFLA_INFO_KIND in the nested IFLA_LINKINFO attributes.
func linkKind(b []byte) string {
	var kind string
	forAttrs(b, func(typ uint16, v []byte) {
		if typ == unix.IFLA_INFO_KIND {
			kind = strings.TrimRight(string(v), "\x00")
		}
	})
	return kind
}

// forAttrs calls fn with each netlink attribute (struct rtattr: length u16,
// type u16, value padded to 4 bytes) of b, stopping at a malformed one.
func forAttrs(b []byte, fn func(typ uint16, v []byte)) {
	for len(b) >= 4 {
		n := int(binary.NativeEndian.Uint16(b[0:2]))
		if n < 4 || n > len(b) {
			return
		}
		fn(binary.NativeEndian.Uint16(b[2:4])&^unix.NLA_F_NESTED, b[4:n])
		b = b[min((n+3)&^3, len(b)):]
	}
}

// dedupe decides what a whole-host capture takes from each interface so that
// no packet is recorded twice, and leaves out the interfaces that would add
// nothing (reported in skipped, with why). "Twice" means the same frame seen
// at two taps of one layer-2 path inside the host:
//   - a VLAN sub-interface repeats its parent's tagged frames: when the
//     parent is captured, the sub-interface is left out;
//   - a bridge port or bond slave hands its frames to its master, and the
//     master's frames go out through its ports: ports are captured incoming
//     only and the master outgoing only, so every frame is recorded once,
//     where it enters the bridge or bond (a master without captured ports is
//     captured both ways);
//   - a veth pair with both ends here carries each frame out of one end and
//     into the other: the direction one end already records is dropped
//     from the other (so of a plain pair only one end is captured).
//
// A packet the host routes from one interface to another is two packets (a
// new link-layer header, a lower TTL) and is recorded on both.
func dedupe(sel []netInterface) (kept []netInterface, skipped []string) {
	at := make(map[int]int, len(sel)) // index → position in sel
	for i := range sel {
		at[sel[i].Index] = i
		sel[i].dirs = dirBoth
	}
	for i := range sel {
		n := &sel[i]
		if n.Kind == "vlan" && !n.LinkNetNS {
			if _, ok := at[n.Link]; ok {
				n.dirs = 0
			}
		}
	}
	for i := range sel {
		n := &sel[i]
		if j, ok := at[n.Master]; ok && n.Master != 0 {
			n.dirs &^= dirOut
			sel[j].dirs &^= dirIn
		}
	}
	for i := range sel {
		a := &sel[i]
		if a.Kind != "veth" || a.LinkNetNS || a.Link == 0 {
			continue
		}
		j, ok := at[a.Link]
		if !ok || sel[j].Index < a.Index {
			continue // each pair once, from its lower index
		}
		b := &sel[j]
		if a.dirs&dirOut != 0 {
			b.dirs &^= dirIn
		}
		if a.dirs&dirIn != 0 {
			b.dirs &^= dirOut
		}
	}
	for _, n := range sel {
		if n.dirs == 0 {
			skipped = append(skipped, n.Name)
			continue
		}
		kept = append(kept, n)
	}
	return kept, skipped
}

// selectInterfaces resolves the session's interface names. With none given,
// it takes every up, non-loopback interface of a supported type; a pcap file
// holds a single link type, so then only those of the most common framing
// (Ethernet on a tie) are taken and the rest reported in skipped.
func selectInterfaces(all []netInterface, names []string, format string) (sel []netInterface, skipped []string, err error) {
	if len(names) > 0 {
		for _, name := range names {
			i := slices.IndexFunc(all, func(n netInterface) bool { return n.Name == name })
			if i < 0 {
				return nil, nil, tripcap.Errorf(tripcap.EINVALID, "interface %q: no such interface on this host", name)
			}
			if all[i].Framing == 0 {
				return nil, nil, tripcap.Errorf(tripcap.EINVALID, "interface %q: device type %d is not supported (Ethernet, loopback and IP tunnels are)", name, all[i].ARPHRD)
			}
			if slices.ContainsFunc(sel, func(n netInterface) bool { return n.Name == name }) {
				continue
			}
			sel = append(sel, all[i])
		}
		if format != tripcap.FormatPcapng {
			for _, n := range sel[1:] {
				if n.Framing != sel[0].Framing {
					return nil, nil, tripcap.Errorf(tripcap.EINVALID,
						"interfaces %q (%s) and %q (%s) have different link types and a pcap file holds one; use format pcapng or capture them separately",
						sel[0].Name, sel[0].Framing, n.Name, n.Framing)
				}
			}
		}
		return sel, nil, nil
	}

	for _, n := range all {
		if n.Up && !n.Loopback && n.Framing != 0 {
			sel = append(sel, n)
		}
	}
	if len(sel) == 0 {
		return nil, nil, tripcap.Errorf(tripcap.EINVALID, "no interface to capture on: none is up apart from loopback")
	}
	if format != tripcap.FormatPcapng {
		eth := 0
		for _, n := range sel {
			if n.Framing == framingEthernet {
				eth++
			}
		}
		keep := framingEthernet
		if eth*2 < len(sel) {
			keep = framingRawIP
		}
		kept := sel[:0]
		for _, n := range sel {
			if n.Framing == keep {
				kept = append(kept, n)
			} else {
				skipped = append(skipped, n.Name)
			}
		}
		sel = kept
	}
	return sel, skipped, nil
}
