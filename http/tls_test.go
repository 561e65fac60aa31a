package http_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
	"github.com/tripcap/tripcap/tlscert"
)

// countingListener counts the connections a server accepted.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// TestServeTLS: over https the join token carries the CA's fingerprint, an
// agent that pins it enrolls and then makes every call on one HTTP/2
// connection (ALPN), a wrong fingerprint fails before anything is sent, and
// a client without the CA is refused by its own verification.
func TestServeTLS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	store.SetSealer(storetest.NewSealer(t))
	t.Cleanup(func() { store.Close() })
	pki, err := tlscert.OpenAuthority(filepath.Join(dir, "tls"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fp := tlscert.Fingerprint(pki.Anchor())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := controlplane.New(store, controlplane.Config{CAFingerprint: func() string { return fp }}, log)
	go func() { _ = svc.Run(ctx) }()
	token, err := svc.EnsureAdmin(ctx, filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &countingListener{Listener: inner}
	srv := tchttp.NewServer(svc, log, tchttp.WithTLS(tlscert.ServerConfig(pki)))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()
	url := "https://" + l.Addr().String()

	pool := x509.NewCertPool()
	pool.AddCert(pki.Anchor())
	admin, err := tchttp.NewClient(url, token, tchttp.WithTLSConfig(tlscert.ClientConfig(pool)))
	if err != nil {
		t.Fatal(err)
	}
	jt, err := admin.CreateJoinToken(ctx, time.Hour, 2)
	if err != nil {
		t.Fatal(err)
	}
	secret, gotFP, err := tripcap.ParseJoinToken(jt.Token)
	if err != nil || gotFP != fp {
		t.Fatalf("join token %q: fingerprint %q, want %q (%v)", jt.Token, gotFP, fp, err)
	}

	// A wrong pin: the handshake fails, naming both fingerprints.
	wrong := strings.Repeat("ab", 32)
	bad, _ := tchttp.NewClient(url, "", tchttp.WithTLSConfig(tlscert.PinnedConfig(wrong, nil)))
	_, err = bad.Enroll(ctx, tripcap.EnrollRequest{JoinToken: secret, Name: "intruder"})
	if !errors.Is(err, tlscert.ErrFingerprintMismatch) || !strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), fp) {
		t.Fatalf("enroll with a wrong fingerprint: %v", err)
	}
	// No CA at all: the system roots do not know this server.
	plain, _ := tchttp.NewClient(url, token)
	if _, err := plain.ListHosts(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without the CA: %v", err)
	}

	before := l.n.Load()
	var pinned atomic.Pointer[x509.Certificate]
	agentClient, _ := tchttp.NewClient(url, "", tchttp.WithTLSConfig(tlscert.PinnedConfig(gotFP, func(c *x509.Certificate) { pinned.Store(c) })))
	resp, err := agentClient.Enroll(ctx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	if c := pinned.Load(); c == nil || tlscert.Fingerprint(c) != fp {
		t.Fatal("the pinned CA was not handed over")
	}
	agent := agentClient.WithToken(resp.Credential)
	as, err := agent.Assignments(ctx, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A long poll open while heartbeats go: over HTTP/1.1 that takes two
	// connections, over HTTP/2 one.
	polled := make(chan error, 1)
	go func() { _, err := agent.Assignments(ctx, as.Revision, time.Second); polled <- err }()
	for range 3 {
		if _, err := agent.Heartbeat(ctx, tripcap.Heartbeat{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-polled; err != nil {
		t.Fatal(err)
	}
	if n := l.n.Load() - before; n != 1 {
		t.Errorf("the agent opened %d connections, want 1 (HTTP/2 by ALPN)", n)
	}
	if agent.ServerProtocol() != tripcap.AgentProtocolVersion {
		t.Errorf("server protocol %d", agent.ServerProtocol())
	}
	cancel()
	if err := <-served; err != nil && !strings.Contains(err.Error(), "closed") {
		t.Fatalf("serve: %v", err)
	}
}
