package actiongroup

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/tripcap/tripcap"
)

// Targets says where webhooks may be posted. By default no webhook may
// reach a loopback, link-local (169.254.0.0/16, fe80::/10: cloud metadata
// services), unspecified, multicast or broadcast address, nor the server's
// own API: a webhook URL is chosen by whoever may write an action group,
// and the server posting to it must not become their way into what only
// the server can reach. Allow lists the operator's exceptions.
//
// The check is made twice: on the URL when a receiver is created (a clear
// error naming the field), and on the address actually dialed (the
// webhook client's dialer), so a name that resolves, or later rebinds, to
// a refused address is refused too. Redirects are not followed.
type Targets struct {
	// Allow are addresses webhooks may target though they are special
	// (--allow-webhook-target): an internal receiver on loopback, say.
	Allow []netip.Prefix
	// Own are the server's own addresses, host:port: its listeners and
	// its public URL's host. An unspecified host (0.0.0.0:8080) stands for
	// every address of this machine at that port.
	Own []string
}

// ParseTargetPrefixes reads --allow-webhook-target values: CIDRs
// (127.0.0.0/8) or single addresses (::1); field names them in errors.
func ParseTargetPrefixes(field string, vals []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(vals))
	for _, v := range vals {
		v = strings.TrimSpace(v)
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, tripcap.Errorf(tripcap.EINVALID, "%s: %q is not a CIDR (127.0.0.0/8) or an IP address", field, v)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// TargetError is a webhook target refused by Targets.
type TargetError struct {
	Target string
	Reason string
}

func (e *TargetError) Error() string {
	return fmt.Sprintf("%s is %s; webhooks may not target it unless the server allows it (--allow-webhook-target)", e.Target, e.Reason)
}

// CheckURL says whether a webhook may post to raw; the error, EINVALID,
// names field. A host name is checked as a name (localhost, the server's
// own), not resolved: the dialer checks what it resolves to.
func (t Targets) CheckURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return tripcap.Errorf(tripcap.EINVALID, "%s: %q is not an absolute URL", field, raw)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	var terr error
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		terr = t.checkAddr(a.WithZone(""), port)
	} else {
		terr = t.checkName(host, port)
	}
	var te *TargetError
	if errors.As(terr, &te) {
		return tripcap.Errorf(tripcap.EINVALID, "%s: %s", field, te.Error())
	}
	return terr
}

// checkName refuses localhost and the server's own names.
func (t Targets) checkName(host, port string) error {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		if t.allowed(netip.MustParseAddr("127.0.0.1")) {
			return nil
		}
		return &TargetError{Target: host, Reason: "a loopback name"}
	}
	for _, own := range t.Own {
		oh, op, err := net.SplitHostPort(own)
		if err == nil && strings.EqualFold(strings.TrimSuffix(oh, "."), h) && op == port {
			return &TargetError{Target: net.JoinHostPort(host, port), Reason: "this server's own address"}
		}
	}
	return nil
}

// checkAddr refuses a special address, or the server's own, not allowed.
func (t Targets) checkAddr(a netip.Addr, port string) error {
	a = a.Unmap()
	if t.allowed(a) {
		return nil
	}
	if reason := special(a); reason != "" {
		return &TargetError{Target: a.String(), Reason: reason}
	}
	if t.own(a, port) {
		return &TargetError{Target: net.JoinHostPort(a.String(), port), Reason: "this server's own address"}
	}
	return nil
}

func (t Targets) allowed(a netip.Addr) bool {
	for _, p := range t.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// own says whether a:port is one of the server's listeners.
func (t Targets) own(a netip.Addr, port string) bool {
	for _, own := range t.Own {
		oh, op, err := net.SplitHostPort(own)
		if err != nil || op != port {
			continue
		}
		oa, err := netip.ParseAddr(oh)
		if err != nil {
			continue // a name: checked as a name, at creation
		}
		if oa.Unmap() == a {
			return true
		}
		if oa.IsUnspecified() && localAddr(a) {
			return true
		}
	}
	return false
}

// localAddr says whether a is an address of this machine's interfaces.
func localAddr(a netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a {
				return true
			}
		}
	}
	return false
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	thisNet   = netip.MustParsePrefix("0.0.0.0/8")
	broadcast = netip.MustParseAddr("255.255.255.255")
	// Cloud metadata services outside link-local: AWS's IPv6 one and
	// Alibaba's.
	metadata = []netip.Addr{netip.MustParseAddr("fd00:ec2::254"), netip.MustParseAddr("100.100.100.200")}
)

// special names what kind of address a is when webhooks may not target it
// by default; "" when they may.
func special(a netip.Addr) string {
	if nat64.Contains(a) {
		// A NAT64 address reaches the IPv4 address it embeds.
		b := a.As16()
		a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsLinkLocalUnicast():
		return "a link-local address (cloud metadata services live there)"
	case a.IsUnspecified() || thisNet.Contains(a):
		return "an unspecified address"
	case a.IsMulticast():
		return "a multicast address"
	case a == broadcast:
		return "the broadcast address"
	}
	for _, m := range metadata {
		if a == m {
			return "a cloud metadata service's address"
		}
	}
	return ""
}

// control is the webhook dialer's Control: it runs on the address about
// to be connected to, after name resolution, before any packet is sent.
func (t Targets) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook target %s: %w", address, err)
	}
	return t.checkAddr(ap.Addr(), fmt.Sprint(ap.Port()))
}

// client is the HTTP client webhooks are posted with: its dialer checks
// every address it connects to, it goes straight to the target (no proxy
// from the environment, whose address is all the dialer would see), and it
// does not follow redirects (the body and its signature are for the URL
// the group names, and a redirect could point anywhere).
func (t Targets) client() *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: t.control}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, ForceAttemptHTTP2: true, MaxIdleConns: 100,
			IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second, ExpectContinueTimeout: time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
