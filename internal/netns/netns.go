//go:build linux

// Package netns builds throwaway test networks: network namespaces joined by
// veth pairs, addressed from 198.18.0.0/15 (RFC 2544 benchmarking space) and
// optionally fd00::/8, all removed when the test ends. It needs root and the
// ip command; tests that use it skip on a laptop and fail under CI=true
// without them. Links get only connected routes, so nothing a test sends
// can leave the namespaces it created.
package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tripcap/tripcap/internal/testenv"
)

// commandTimeout bounds every ip command the lab runs.
const commandTimeout = 20 * time.Second

// Lab is a set of namespaces and links created by one test.
type Lab struct {
	t  testing.TB
	ip string
	// id is random: it names everything the lab creates, so labs of
	// tests running at the same time never collide.
	id string
	// subnet is the lab's /24 in 198.18.0.0/15; links get /30s in it.
	subnet netip.Prefix
	// ula is the lab's /48 in fd00::/8; links get /64s in it.
	ula netip.Prefix

	mu    sync.Mutex
	nsSeq int
	links int
}

// Namespace is a network namespace of the lab.
type Namespace struct {
	lab  *Lab
	Name string
}

// End is one side of a link.
type End struct {
	// NS is nil for the root namespace.
	NS   *Namespace
	Name string
	MAC  net.HardwareAddr
	// Addr is the IPv4 address with its prefix length; Addr6 the IPv6
	// one, invalid unless the link was made with IPv6.
	Addr  netip.Prefix
	Addr6 netip.Prefix
}

// Link is a veth pair.
type Link struct {
	A, B End
}

// LinkOptions tune a veth pair.
type LinkOptions struct {
	// IPv6 adds fd00::/8 addresses; otherwise IPv6 is disabled on both
	// ends so the link carries no router solicitations or MLD reports.
	IPv6 bool
	// DynamicNeighbours leaves ARP/ND on; by default each end knows the
	// other's MAC statically, so no ARP packet appears in captures.
	DynamicNeighbours bool
}

// New returns an empty lab; everything it creates is deleted in t.Cleanup.
func New(t testing.TB) *Lab {
	t.Helper()
	testenv.RequireRoot(t)
	ip := testenv.RequireBinary(t, "ip")
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("netns: random lab id: %v", err)
	}
	// 9 bits of the random bytes pick one of the 512 /24s in 198.18.0.0/15.
	n := binary.BigEndian.Uint16(b[:2]) & 0x1ff
	l := &Lab{
		t:      t,
		ip:     ip,
		id:     hex.EncodeToString(b[2:]),
		subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(n>>8), byte(n), 0}), 24),
		ula:    netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0x00, b[2], b[3], b[4], 0}), 48),
	}
	return l
}

// ID is the lab's random id, which every namespace and interface name contains.
func (l *Lab) ID() string { return l.id }

// Namespace creates a namespace with its loopback up.
func (l *Lab) Namespace() *Namespace {
	l.t.Helper()
	l.mu.Lock()
	l.nsSeq++
	name := fmt.Sprintf("tc-%s-%d", l.id, l.nsSeq)
	l.mu.Unlock()
	l.must("netns", "add", name)
	l.t.Cleanup(func() { l.run("netns", "del", name) })
	l.must("-n", name, "link", "set", "lo", "up")
	return &Namespace{lab: l, Name: name}
}

// Veth creates a veth pair between a and b (nil for the root namespace),
// addressed, with static neighbours unless opts say otherwise, and up.
func (l *Lab) Veth(a, b *Namespace, opts LinkOptions) *Link {
	l.t.Helper()
	l.mu.Lock()
	l.links++
	seq := l.links
	l.mu.Unlock()
	if seq > 63 {
		l.t.Fatalf("netns: a lab has room for 63 links")
	}
	base := l.subnet.Addr().As4()
	base[3] = byte(seq * 4)
	ula := l.ula.Addr().As16()
	binary.BigEndian.PutUint16(ula[6:8], uint16(seq))
	link := &Link{
		// Interface names are at most 15 bytes: "tc" + 6 hex + "-" + n + a/b.
		A: End{NS: a, Name: fmt.Sprintf("tc%s-%d%s", l.id[:6], seq, "a"), MAC: l.mac(seq, 1)},
		B: End{NS: b, Name: fmt.Sprintf("tc%s-%d%s", l.id[:6], seq, "b"), MAC: l.mac(seq, 2)},
	}
	ends := []*End{&link.A, &link.B}
	for i, e := range ends {
		host := base
		host[3] += byte(i + 1)
		e.Addr = netip.PrefixFrom(netip.AddrFrom4(host), 30)
		if opts.IPv6 {
			h := ula
			h[15] = byte(i + 1)
			e.Addr6 = netip.PrefixFrom(netip.AddrFrom16(h), 64)
		}
	}
	args := []string{"link", "add", link.A.Name, "address", link.A.MAC.String()}
	if a != nil {
		args = append(args, "netns", a.Name)
	}
	args = append(args, "type", "veth", "peer", "name", link.B.Name, "address", link.B.MAC.String())
	if b != nil {
		args = append(args, "netns", b.Name)
	}
	l.must(args...)
	// Deleting a namespace deletes its ends; a root-namespace end goes
	// with its peer, and is deleted by name in case both are in the root.
	l.t.Cleanup(func() {
		for _, e := range ends {
			if e.NS == nil {
				l.run("link", "del", e.Name)
			}
		}
	})
	for i, e := range ends {
		peer := ends[1-i]
		if !opts.IPv6 {
			l.sysctl(e, "net.ipv6.conf."+e.Name+".disable_ipv6", "1")
		} else {
			// No link-local address: no router solicitations, no DAD.
			l.sysctl(e, "net.ipv6.conf."+e.Name+".addr_gen_mode", "1")
		}
		l.must(nsArgs(e.NS, "addr", "add", e.Addr.String(), "dev", e.Name)...)
		if opts.IPv6 {
			l.must(nsArgs(e.NS, "addr", "add", e.Addr6.String(), "dev", e.Name, "nodad")...)
		}
		if !opts.DynamicNeighbours {
			l.must(nsArgs(e.NS, "neigh", "replace", peer.Addr.Addr().String(), "lladdr", peer.MAC.String(), "dev", e.Name, "nud", "permanent")...)
			if opts.IPv6 {
				l.must(nsArgs(e.NS, "neigh", "replace", peer.Addr6.Addr().String(), "lladdr", peer.MAC.String(), "dev", e.Name, "nud", "permanent")...)
			}
		}
	}
	for _, e := range ends {
		l.must(nsArgs(e.NS, "link", "set", e.Name, "up")...)
	}
	return link
}

// mac returns a locally administered unicast MAC unique to the lab and link.
func (l *Lab) mac(seq, side int) net.HardwareAddr {
	id, _ := hex.DecodeString(l.id[:6])
	return net.HardwareAddr{0x02, id[0], id[1], id[2], byte(seq), byte(side)}
}

func (l *Lab) sysctl(e *End, key, value string) {
	l.t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	if e.NS == nil {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			l.t.Fatalf("netns: sysctl %s=%s: %v", key, value, err)
		}
		return
	}
	if err := e.NS.Do(func() error { return os.WriteFile(path, []byte(value), 0o644) }); err != nil {
		l.t.Fatalf("netns: sysctl %s=%s in %s: %v", key, value, e.NS.Name, err)
	}
}

func nsArgs(ns *Namespace, args ...string) []string {
	if ns == nil {
		return args
	}
	return append([]string{"-n", ns.Name}, args...)
}

// must runs ip with args and fails the test on error.
func (l *Lab) must(args ...string) {
	l.t.Helper()
	if out, err := l.run(args...); err != nil {
		l.t.Fatalf("netns: ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (l *Lab) run(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return exec.CommandContext(ctx, l.ip, args...).CombinedOutput()
}

// Command returns a command that runs argv inside the namespace (ip netns exec).
func (ns *Namespace) Command(ctx context.Context, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, ns.lab.ip, append([]string{"netns", "exec", ns.Name}, argv...)...)
}

// Exec runs argv inside the namespace and returns its standard output; the
// error includes its standard error.
func (ns *Namespace) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	cmd := ns.Command(ctx, argv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s in %s: %w: %s", strings.Join(argv, " "), ns.Name, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// Do runs fn on an OS thread that has entered the namespace, so sockets fn
// opens belong to it (they stay there when used from other threads). The
// thread is discarded afterwards rather than returned to the runtime.
func (ns *Namespace) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine, so no
		// other goroutine ever runs in the namespace by accident.
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + ns.Name)
		if err != nil {
			errc <- fmt.Errorf("opening namespace %s: %w", ns.Name, err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering namespace %s: %w", ns.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
