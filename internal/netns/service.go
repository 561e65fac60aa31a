//go:build linux

package netns

import (
	"net/netip"
)

// ServiceAddr is an address reserved in the lab's subnet (the last /30, which
// no link gets) for a service every namespace must reach at one address, such
// as a storage server whose URLs are signed for one host name. Put it on a
// namespace with AddService and route the others to it with RouteService.
func (l *Lab) ServiceAddr() netip.Addr {
	a := l.subnet.Addr().As4()
	a[3] = 254
	return netip.AddrFrom4(a)
}

// AddService puts the service address on ns's loopback (nil: the root namespace).
func (l *Lab) AddService(ns *Namespace) {
	l.t.Helper()
	l.must(nsArgs(ns, "addr", "add", l.ServiceAddr().String()+"/32", "dev", "lo")...)
}

// RouteService routes the service address from one end of a link to the other.
func (l *Lab) RouteService(from, to End) {
	l.t.Helper()
	l.must(nsArgs(from.NS, "route", "add", l.ServiceAddr().String()+"/32", "via", to.Addr.Addr().String(), "dev", from.Name)...)
}
