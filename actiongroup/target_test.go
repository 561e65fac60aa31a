package actiongroup

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tripcap/tripcap"
)

// loopback allows the httptest receivers these tests post to, as a server
// allows them with --allow-webhook-target 127.0.0.0/8.
var loopback = Targets{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}

// A webhook may not target a special address or the server's own, at
// creation (EINVALID naming the field) unless the operator allows it.
func TestCheckWebhookTargets(t *testing.T) {
	def := Targets{Own: []string{"198.18.0.1:8443", "tripcap.example.test:443", "0.0.0.0:9443"}}
	allowed := def
	allowed.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("169.254.169.254/32")}
	for _, c := range []struct {
		t    Targets
		url  string
		want string // "" accepted
	}{
		{def, "http://169.254.169.254/latest/meta-data/", "link-local"},
		{def, "http://[fe80::1%25eth0]:80/", "link-local"},
		{def, "http://127.0.0.1:9000/hook", "loopback"},
		{def, "http://127.1.2.3/hook", "loopback"},
		{def, "http://[::1]/hook", "loopback"},
		{def, "http://[::ffff:169.254.169.254]/", "link-local"},
		{def, "http://[64:ff9b::a9fe:a9fe]/", "link-local"},
		{def, "http://localhost:8080/", "loopback name"},
		{def, "http://api.localhost/", "loopback name"},
		{def, "http://0.0.0.0/", "unspecified"},
		{def, "http://[::]/", "unspecified"},
		{def, "http://224.0.0.1/", "multicast"},
		{def, "http://[ff02::1]/", "multicast"},
		{def, "http://255.255.255.255/", "broadcast"},
		{def, "http://[fd00:ec2::254]/", "metadata"},
		{def, "https://198.18.0.1:8443/api/v1/hosts", "this server's own address"},
		{def, "https://tripcap.example.test/api/functions/pc", "this server's own address"},
		{def, "https://TRIPCAP.example.test:443/", "this server's own address"},
		// Not special: private and test-net addresses, other ports of the
		// server's host, other names.
		{def, "https://198.18.0.1:9000/hook", ""},
		{def, "https://10.1.2.3/hook", ""},
		{def, "https://[fd00::5]/hook", ""},
		{def, "https://hooks.example.test/a", ""},
		{def, "https://tripcap.example.test:8443/", ""},
		// The operator's allowances.
		{allowed, "http://127.0.0.1:9000/hook", ""},
		{allowed, "http://localhost:9000/hook", ""},
		{allowed, "http://169.254.169.254/", ""},
		{allowed, "http://169.254.1.1/", "link-local"},
	} {
		err := c.t.CheckURL("webhookReceivers[0].serviceUri", c.url)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v, want accepted", c.url, err)
			}
			continue
		}
		if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.HasPrefix(tripcap.ErrorMessage(err), "webhookReceivers[0].serviceUri: ") ||
			!strings.Contains(tripcap.ErrorMessage(err), c.want) || !strings.Contains(tripcap.ErrorMessage(err), "--allow-webhook-target") {
			t.Errorf("%s: %v, want EINVALID naming the field and %q", c.url, err, c.want)
		}
	}
}

// The dial-time check sees the address actually connected to, after name
// resolution: 169.254.169.254 and the server's own listener are refused
// before a packet is sent (Control runs between socket and connect).
func TestDialControlRefuses(t *testing.T) {
	tg := Targets{Own: []string{"0.0.0.0:8443", "198.18.0.1:9443"}}
	for _, addr := range []string{"169.254.169.254:80", "[fe80::1%lo]:80", "127.0.0.1:80", "[::ffff:127.0.0.1]:80", "198.18.0.1:9443"} {
		var te *TargetError
		if err := tg.control("tcp", addr, nil); !errors.As(err, &te) {
			t.Errorf("dial %s: %v, want a TargetError", addr, err)
		}
	}
	if err := tg.control("tcp", "198.18.0.1:80", nil); err != nil {
		t.Errorf("another port of an own address: %v", err)
	}
}

// A webhook whose URL passed creation (a name) but that dials a refused
// address is refused by the dialer: no request reaches the receiver, and
// the failure is final (not retried). The receiver here is on loopback,
// which a server refuses by default; a name resolving to
// 169.254.169.254 meets the same Control check.
func TestWebhookDialRefused(t *testing.T) {
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	n, err := New(Config{Retry: fastRetry()})
	if err != nil {
		t.Fatal(err)
	}
	// Notify is called on a group no creation check saw, as a name that
	// resolved elsewhere at creation and rebinds later would reach it.
	g := &tripcap.ActionGroup{ID: "ag1", Name: "g", WebhookReceivers: []tripcap.WebhookReceiver{{Name: "w", ServiceURI: "http://127.0.0.1:" + port + "/hook"}}}
	ds := n.Notify(context.Background(), g, seedAlert(), nil)
	if len(ds) != 1 || ds[0].Success || !ds[0].Final || !strings.Contains(ds[0].Error, "loopback") {
		t.Fatalf("deliveries %+v, want one final refusal naming loopback", ds)
	}
	if got.Load() != 0 {
		t.Fatalf("the receiver got %d requests", got.Load())
	}
	// Allowed, the same receiver gets it.
	ok, _ := New(Config{Retry: fastRetry(), Targets: loopback})
	if ds := ok.Notify(context.Background(), g, seedAlert(), nil); len(ds) != 1 || !ds[0].Success || got.Load() != 1 {
		t.Fatalf("allowed: deliveries %+v, requests %d", ds, got.Load())
	}
}

// A receiver's redirect is not followed: it could point anywhere.
func TestWebhookRedirectNotFollowed(t *testing.T) {
	var followed atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Add(1) }))
	defer target.Close()
	redir := httptest.NewServer(http.RedirectHandler(target.URL+"/elsewhere", http.StatusTemporaryRedirect))
	defer redir.Close()
	n, _ := New(Config{Retry: fastRetry(), Targets: loopback})
	g := &tripcap.ActionGroup{ID: "ag1", Name: "g", WebhookReceivers: []tripcap.WebhookReceiver{{Name: "w", ServiceURI: redir.URL}}}
	ds := n.Notify(context.Background(), g, seedAlert(), nil)
	if len(ds) != 1 || ds[0].Success || ds[0].StatusCode != http.StatusTemporaryRedirect || followed.Load() != 0 {
		t.Fatalf("deliveries %+v, followed %d", ds, followed.Load())
	}
}

func TestParseTargetPrefixes(t *testing.T) {
	ps, err := ParseTargetPrefixes("--allow-webhook-target", []string{"127.0.0.0/8", "::1", "10.1.2.3/8"})
	if err != nil || len(ps) != 3 || ps[1].String() != "::1/128" || ps[2].String() != "10.0.0.0/8" {
		t.Fatalf("%v %v", ps, err)
	}
	if _, err := ParseTargetPrefixes("--allow-webhook-target", []string{"localhost"}); err == nil || !strings.Contains(err.Error(), "--allow-webhook-target") {
		t.Fatalf("bad value: %v", err)
	}
}
