package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/tlscert"
)

func openTestControlPlane(t *testing.T, o *serverOptions, log *slog.Logger) (*controlPlane, error) {
	t.Helper()
	o.heartbeat, o.maxCaptures = 10*time.Second, tripcap.DefaultParallelCapturesPerWatcher
	if o.data == "" {
		o.data = t.TempDir()
	}
	cp, err := openControlPlane(t.Context(), o, log)
	if err == nil {
		t.Cleanup(func() { _ = cp.Close() })
	}
	return cp, err
}

// TestServerTLSByDefault: with no TLS flag the server serves HTTPS from the
// CA it creates, join tokens carry that CA's fingerprint, and the CLI
// trusts it through the client config `up` writes.
func TestServerTLSByDefault(t *testing.T) {
	cp, err := openTestControlPlane(t, &serverOptions{listen: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cp.url, "https://127.0.0.1:") || cp.plaintextBeyondLoopback {
		t.Fatalf("url %s, plaintext warning %v", cp.url, cp.plaintextBeyondLoopback)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- cp.Run(ctx) }()
	defer func() { cancel(); <-done }()

	cfg := filepath.Join(t.TempDir(), "config.json")
	t.Setenv("TRIPCAP_CONFIG", cfg)
	t.Setenv("TRIPCAP_SERVER", "")
	t.Setenv("TRIPCAP_TOKEN", "")
	t.Setenv("TRIPCAP_CA_FILE", "")
	run := func(args ...string) (string, error) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		err := root.ExecuteContext(t.Context())
		return out.String(), err
	}
	// Without the CA the CLI refuses the server, and says what to give.
	if _, err := writeClientConfig(clientConfig{Server: cp.url, Token: cp.adminToken}); err != nil {
		t.Fatal(err)
	}
	if _, err := run("host", "list"); err == nil || !strings.Contains(err.Error(), "--ca-file") {
		t.Fatalf("no CA: %v", err)
	}
	if _, err := writeClientConfig(clientConfig{Server: cp.url, Token: cp.adminToken, CA: string(tlscert.EncodePEM(cp.tls.Anchor()))}); err != nil {
		t.Fatal(err)
	}
	out, err := run("host", "join-token", "create", "-o", "json")
	if err != nil {
		t.Fatalf("with the config's CA: %v: %s", err, out)
	}
	if !strings.Contains(out, "."+tlscert.Fingerprint(cp.tls.Anchor())) {
		t.Fatalf("the join token does not carry the CA fingerprint: %s", out)
	}
	// Given --server and --token, the config's CA for that server still counts.
	if out, err := run("--server", cp.url, "--token", cp.adminToken, "host", "list"); err != nil {
		t.Fatalf("explicit --server with the config's CA: %v: %s", err, out)
	}
	// --ca-file works the same, whatever the config holds.
	if _, err := writeClientConfig(clientConfig{Server: cp.url, Token: cp.adminToken}); err != nil {
		t.Fatal(err)
	}
	if out, err := run("--ca-file", filepath.Join(cp.tls.(*tlscert.Authority).Dir(), tlscert.CACertFile), "host", "list"); err != nil {
		t.Fatalf("--ca-file: %v: %s", err, out)
	}
}

// TestServerPlaintextIsExplicitAndLoud: plain HTTP only with
// --insecure-plaintext; beyond loopback the server warns at start (and
// every hour); on loopback it does not.
func TestServerPlaintextIsExplicitAndLoud(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	dataDir := t.TempDir()
	cp, err := openTestControlPlane(t, &serverOptions{listen: "127.0.0.1:0", data: dataDir, tls: tlsOptions{insecurePlaintext: true}}, log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cp.url, "http://") || cp.plaintextBeyondLoopback {
		t.Fatalf("loopback plaintext: url %s, warning %v", cp.url, cp.plaintextBeyondLoopback)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "tls")); err == nil {
		t.Error("a plaintext server created a PKI")
	}
	cp.Close()

	cp, err = openTestControlPlane(t, &serverOptions{listen: "0.0.0.0:0", tls: tlsOptions{insecurePlaintext: true}}, log)
	if err != nil {
		t.Fatal(err)
	}
	if !cp.plaintextBeyondLoopback {
		t.Fatal("plaintext on 0.0.0.0 is not warned about")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- cp.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "INSECURE") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if !strings.Contains(logs.String(), "level=WARN msg=\"INSECURE: serving plain HTTP beyond loopback") {
		t.Fatalf("no loud warning at start: %s", logs.String())
	}
}

func TestServerTLSFlags(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		tls  tlsOptions
		want string
	}{
		{tlsOptions{cert: "c.pem"}, "--tls-cert and --tls-key: give both or neither"},
		{tlsOptions{key: "k.pem"}, "--tls-cert and --tls-key: give both or neither"},
		{tlsOptions{cert: "c.pem", key: "k.pem", insecurePlaintext: true}, "--insecure-plaintext: cannot be given with --tls-cert"},
		{tlsOptions{cert: "/nonexistent/c.pem", key: "/nonexistent/k.pem"}, "TLS file"},
	} {
		if _, err := openTestControlPlane(t, &serverOptions{listen: "127.0.0.1:0", tls: tc.tls}, log); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.tls, err, tc.want)
		}
	}

	// An operator's pair: served, and join tokens pin its chain's top.
	pki, err := tlscert.OpenAuthority(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	chain := filepath.Join(t.TempDir(), "chain.pem")
	leaf, _ := os.ReadFile(filepath.Join(pki.Dir(), tlscert.ServerCertFile))
	if err := os.WriteFile(chain, append(leaf, tlscert.EncodePEM(pki.Anchor())...), 0o644); err != nil {
		t.Fatal(err)
	}
	cp, err := openTestControlPlane(t, &serverOptions{listen: "127.0.0.1:0", tls: tlsOptions{cert: chain, key: filepath.Join(pki.Dir(), tlscert.ServerKeyFile)}}, log)
	if err != nil {
		t.Fatal(err)
	}
	if got := tlscert.Fingerprint(cp.tls.Anchor()); got != tlscert.Fingerprint(pki.Anchor()) {
		t.Fatalf("anchor %s, want the chain's CA", got)
	}
}

func TestIsLoopback(t *testing.T) {
	for listen, want := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:8080": true, "localhost:8080": true, "127.1.2.3:0": true,
		"0.0.0.0:8080": false, ":8080": false, "[::]:8080": false, "198.18.0.1:8080": false, "example.org:80": false, "nonsense": false,
	} {
		if got := isLoopback(listen); got != want {
			t.Errorf("isLoopback(%q) = %v", listen, got)
		}
	}
}

// TestClientConfigWrittenPrivate: the client config holds a token, so it is
// written 0600 even over an older file of a wider mode.
func TestClientConfigWrittenPrivate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	t.Setenv("TRIPCAP_CONFIG", p)
	if err := os.WriteFile(p, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := writeClientConfig(clientConfig{Server: "https://127.0.0.1:8443", Token: "tc_pat_secret"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("client config: %v, %v; want mode 0600", fi.Mode(), err)
	}
	cfg, _, err := readClientConfig()
	if err != nil || cfg.Token != "tc_pat_secret" {
		t.Fatalf("read back: %+v, %v", cfg, err)
	}
}
