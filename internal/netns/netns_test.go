//go:build linux

package netns

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap/internal/trafficgen"
)

// TestLab builds two namespaces with a dual-stack link, sends across it
// both ways, and checks that everything is gone after the test.
func TestLab(t *testing.T) {
	var lab *Lab
	var names []string
	t.Run("build", func(t *testing.T) {
		lab = New(t)
		a, b := lab.Namespace(), lab.Namespace()
		names = []string{a.Name, b.Name}
		link := lab.Veth(a, b, LinkOptions{IPv6: true})
		if !lab.subnet.Contains(link.A.Addr.Addr()) || !netip.MustParsePrefix("198.18.0.0/15").Contains(link.B.Addr.Addr()) ||
			!netip.MustParsePrefix("fd00::/8").Contains(link.B.Addr6.Addr()) {
			t.Fatalf("addresses %v %v %v outside the test ranges", link.A.Addr, link.B.Addr, link.B.Addr6)
		}
		if len(link.A.Name) > 15 || !strings.Contains(a.Name, lab.ID()) {
			t.Errorf("names %q, %q", link.A.Name, a.Name)
		}
		out, err := b.Exec(context.Background(), "ip", "-o", "addr", "show", "dev", link.B.Name)
		if err != nil || !strings.Contains(string(out), link.B.Addr.String()) || !strings.Contains(string(out), link.B.Addr6.String()) {
			t.Fatalf("ip addr in %s: %v\n%s", b.Name, err, out)
		}
		for _, dst := range []netip.Addr{link.B.Addr.Addr(), link.B.Addr6.Addr()} {
			to := netip.AddrPortFrom(dst, 7000)
			var sink *trafficgen.Sink
			if err := b.Do(func() (err error) { sink, err = trafficgen.Listen("tcp", to); return err }); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := a.Do(func() error {
				res, err := trafficgen.Send(ctx, trafficgen.Flow{Network: "tcp", Dst: to, Count: 3, PayloadSize: 32})
				if err == nil && res.Sent != 3 {
					t.Errorf("sent %d of 3", res.Sent)
				}
				return err
			})
			cancel()
			sink.Close()
			if err != nil {
				t.Fatalf("TCP to %v across the link: %v", to, err)
			}
		}
		// The root namespace has no route to the namespaces' link.
		if out, err := exec.Command("ip", "route", "get", link.B.Addr.Addr().String()).CombinedOutput(); err == nil &&
			strings.Contains(string(out), link.A.Name) {
			t.Errorf("the root namespace routes to the lab: %s", out)
		}
	})
	if lab == nil {
		return
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.Contains(string(out), n) {
			t.Errorf("namespace %s survived its test", n)
		}
	}
}
