//go:build linux

package afpacket

import (
	"encoding/binary"
	"syscall"
	"testing"
)

// FuzzParseLink: any netlink link message is parsed without a panic.
func FuzzParseLink(f *testing.F) {
	// ifinfomsg, then IFLA_IFNAME "eth0" and IFLA_LINKINFO{IFLA_INFO_KIND "veth"}.
	msg := make([]byte, syscall.SizeofIfInfomsg)
	binary.NativeEndian.PutUint16(msg[2:], arphrdEther)
	binary.NativeEndian.PutUint32(msg[4:], 3)
	attr := func(typ uint16, v []byte) []byte {
		b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(v)))
		b = binary.NativeEndian.AppendUint16(b, typ)
		b = append(b, v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	msg = append(msg, attr(syscall.IFLA_IFNAME, []byte("eth0\x00"))...)
	msg = append(msg, attr(syscall.IFLA_LINKINFO, attr(1, []byte("veth\x00")))...)
	f.Add(msg)
	f.Fuzz(func(t *testing.T, data []byte) {
		m := syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: syscall.RTM_NEWLINK, Len: uint32(syscall.NLMSG_HDRLEN + len(data))}, Data: data}
		if ni, ok := parseLink(&m); ok && ni.Name == "" {
			t.Fatal("a link without a name was accepted")
		}
		linkKind(data)
	})
}
