package agent_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/agent"
	"github.com/tripcap/tripcap/tlscert"
)

// TestAgentPinsTheCAByFingerprint: over https the join token's fingerprint
// pins the server's CA on first contact; the CA is saved in the state
// directory and verifies the server after a restart, with no token.
func TestAgentPinsTheCAByFingerprint(t *testing.T) {
	dir := t.TempDir()
	pki, err := tlscert.OpenAuthority(filepath.Join(dir, "tls"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServerTLS(t, dir, "127.0.0.1:0", nil, time.Second, pki)
	token := enrolled(t, srv)
	if _, fp, _ := tripcap.ParseJoinToken(token); fp != tlscert.Fingerprint(pki.Anchor()) {
		t.Fatalf("join token %q does not carry the CA fingerprint", token)
	}
	state := filepath.Join(dir, "state")
	stop := runAgent(t, srv, state, token)
	waitFor(t, "web1 online", 10*time.Second, func() bool {
		h, err := srv.admin.GetHost(context.Background(), "web1")
		return err == nil && h.State == tripcap.HostOnline
	})
	stop()
	fi, err := os.Stat(filepath.Join(state, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("ca.pem mode %v", fi.Mode().Perm())
	}
	saved, err := os.ReadFile(filepath.Join(state, "ca.pem"))
	if err != nil || string(saved) != string(tlscert.EncodePEM(pki.Anchor())) {
		t.Fatalf("ca.pem is not the server's CA: %v", err)
	}
	// Restarted without a token: the saved CA verifies the server.
	before, _ := srv.admin.GetHost(context.Background(), "web1")
	runAgent(t, srv, state, "")
	waitFor(t, "a heartbeat after the restart", 10*time.Second, func() bool {
		h, err := srv.admin.GetHost(context.Background(), "web1")
		return err == nil && h.LastSeen.After(before.LastSeen)
	})
}

// TestAgentRefusesAWrongFingerprint: enrollment fails at once, naming the
// expected and the received fingerprints, and spends no join token.
func TestAgentRefusesAWrongFingerprint(t *testing.T) {
	dir := t.TempDir()
	pki, err := tlscert.OpenAuthority(filepath.Join(dir, "tls"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlscert.OpenAuthority(filepath.Join(dir, "other"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServerTLS(t, dir, "127.0.0.1:0", nil, time.Second, pki)
	secret, _, _ := tripcap.ParseJoinToken(enrolled(t, srv))
	wrong := tlscert.Fingerprint(other.Anchor())
	state := filepath.Join(dir, "state")
	a, err := agent.New(agent.Config{Server: srv.url, JoinToken: tripcap.JoinTokenString(secret, wrong), Name: "web1", StateDir: state,
		Engine: fileEngine{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = a.Run(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run: %v (ctx %v); want a prompt refusal", err, ctx.Err())
	}
	for _, want := range []string{wrong, tlscert.Fingerprint(pki.Anchor()), "fingerprint"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(state, "ca.pem")); err == nil {
		t.Error("a CA was saved from a server that did not match")
	}
	tokens, err := srv.admin.ListJoinTokens(context.Background())
	if err != nil || len(tokens) != 1 || tokens[0].UsesLeft != 1 {
		t.Errorf("the join token was spent (or listing failed: %v): %+v", err, tokens)
	}
}

// TestAgentWithCAFile: an organisation's CA file verifies the server; an
// old-style token (no fingerprint) suffices.
func TestAgentWithCAFile(t *testing.T) {
	dir := t.TempDir()
	pki, err := tlscert.OpenAuthority(filepath.Join(dir, "tls"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServerTLS(t, dir, "127.0.0.1:0", nil, time.Second, pki)
	secret, _, _ := tripcap.ParseJoinToken(enrolled(t, srv))
	a, err := agent.New(agent.Config{Server: srv.url, JoinToken: secret, CAFile: filepath.Join(pki.Dir(), tlscert.CACertFile), Name: "web1",
		StateDir: filepath.Join(dir, "state"), Engine: fileEngine{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "web1 online", 10*time.Second, func() bool {
		h, err := srv.admin.GetHost(context.Background(), "web1")
		return err == nil && h.State == tripcap.HostOnline
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Without the CA file or a fingerprint, the system roots refuse it.
	b, _ := agent.New(agent.Config{Server: srv.url, JoinToken: secret, Name: "web2", StateDir: filepath.Join(dir, "state2"),
		Engine: fileEngine{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := b.Run(ctx2); err == nil || ctx2.Err() != nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("no CA: %v", err)
	}
}
