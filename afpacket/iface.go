//go:build linux

package afpacket

import (
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"syscall"

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
}

// listInterfaces reads the interfaces of the calling thread's network
// namespace. The device type comes from netlink rather than /sys, whose
// view belongs to the namespace that mounted it.
func listInterfaces() ([]netInterface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	types, err := linkTypes()
	if err != nil {
		return nil, err
	}
	out := make([]netInterface, 0, len(ifs))
	for _, ifc := range ifs {
		ni := netInterface{
			Name:     ifc.Name,
			Index:    ifc.Index,
			Up:       ifc.Flags&net.FlagUp != 0,
			Loopback: ifc.Flags&net.FlagLoopback != 0,
			ARPHRD:   types[ifc.Index],
		}
		switch ni.ARPHRD {
		case arphrdEther, arphrdLoopback:
			ni.Framing = framingEthernet
		case arphrdNone, arphrdPPP, arphrdRawIP, arphrdTunnel, arphrdTunnel6, arphrdSit, arphrdIPGRE, arphrdIP6GRE:
			ni.Framing = framingRawIP
		}
		out = append(out, ni)
	}
	return out, nil
}

// linkTypes maps interface index to ARPHRD device type from an RTM_GETLINK dump.
func linkTypes() (map[int]uint16, error) {
	rib, err := syscall.NetlinkRIB(syscall.RTM_GETLINK, syscall.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("reading interface types from netlink: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return nil, fmt.Errorf("parsing netlink interface dump: %w", err)
	}
	types := make(map[int]uint16, len(msgs))
	for _, m := range msgs {
		if m.Header.Type != syscall.RTM_NEWLINK || len(m.Data) < syscall.SizeofIfInfomsg {
			continue
		}
		// struct ifinfomsg: family u8, pad u8, type u16, index s32, ...
		typ := binary.NativeEndian.Uint16(m.Data[2:4])
		idx := int(int32(binary.NativeEndian.Uint32(m.Data[4:8])))
		types[idx] = typ
	}
	return types, nil
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
