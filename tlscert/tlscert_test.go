package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve runs a TLS server for src on addr (loopback) answering one byte per
// connection, until the test ends.
func serve(t *testing.T, addr string, src Source) string {
	t.Helper()
	l, err := tls.Listen("tcp", addr, ServerConfig(src))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
				_, _ = c.Write([]byte{1})
			}()
		}
	}()
	return l.Addr().String()
}

// dial handshakes with addr under cfg and returns the server's leaf.
func dial(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

func TestAuthorityCreatesFilesAndReusesThem(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	a, err := OpenAuthority(dir, []string{"tripcap.example", "198.18.0.1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{CACertFile: 0o644, CAKeyFile: 0o600, ServerCertFile: 0o644, ServerKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	leaf := a.serving.Leaf
	for _, want := range []string{"localhost", "tripcap.example"} {
		if err := leaf.VerifyHostname(want); err != nil {
			t.Errorf("serving certificate: %v", err)
		}
	}
	for _, want := range []string{"127.0.0.1", "::1", "198.18.0.1"} {
		if err := leaf.VerifyHostname(want); err != nil {
			t.Errorf("serving certificate: %v", err)
		}
	}
	if !a.ca.IsCA || a.ca.NotAfter.Sub(a.ca.NotBefore) < 10*365*24*time.Hour {
		t.Errorf("CA: IsCA %v, lifetime %s", a.ca.IsCA, a.ca.NotAfter.Sub(a.ca.NotBefore))
	}

	b, err := OpenAuthority(dir, []string{"tripcap.example", "198.18.0.1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(b.Anchor()) != Fingerprint(a.Anchor()) {
		t.Error("the CA changed across a restart")
	}
	if b.serving.Leaf.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Error("a fresh serving certificate was reissued across a restart")
	}
	// A new SAN reissues the serving certificate under the same CA.
	c, err := OpenAuthority(dir, []string{"tripcap.example", "198.18.0.1", "other.example"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(c.Anchor()) != Fingerprint(a.Anchor()) || c.serving.Leaf.VerifyHostname("other.example") != nil {
		t.Error("a new --tls-san did not reissue the serving certificate under the same CA")
	}
}

func TestAuthorityRenewsBeforeExpiry(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	a, err := OpenAuthority(t.TempDir(), nil, clock)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := a.GetCertificate(&tls.ClientHelloInfo{})
	now = now.Add(ServingLifetime - RenewBefore - time.Hour)
	if c, _ := a.GetCertificate(&tls.ClientHelloInfo{}); c != first {
		t.Fatal("renewed before it was due")
	}
	now = now.Add(2 * time.Hour)
	renewed, err := a.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if renewed == first || !renewed.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Fatal("not renewed within RenewBefore of its expiry")
	}
	if err := renewed.Leaf.CheckSignatureFrom(a.Anchor()); err != nil {
		t.Fatalf("renewed certificate: %v", err)
	}
	onDisk, err := tls.LoadX509KeyPair(filepath.Join(a.Dir(), ServerCertFile), filepath.Join(a.Dir(), ServerKeyFile))
	if err != nil || onDisk.Leaf.SerialNumber.Cmp(renewed.Leaf.SerialNumber) != 0 {
		t.Fatalf("the renewed certificate is not the one on disk: %v", err)
	}
}

func TestPinnedConfig(t *testing.T) {
	a, err := OpenAuthority(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, "127.0.0.1:0", a)
	var pinned *x509.Certificate
	cfg := PinnedConfig(Fingerprint(a.Anchor()), func(c *x509.Certificate) { pinned = c })
	cfg.ServerName = "127.0.0.1"
	if _, err := dial(addr, cfg); err != nil {
		t.Fatalf("right fingerprint: %v", err)
	}
	if pinned == nil || Fingerprint(pinned) != Fingerprint(a.Anchor()) {
		t.Fatal("onPinned did not get the CA")
	}

	other, err := OpenAuthority(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	wrong := Fingerprint(other.Anchor())
	cfg = PinnedConfig(wrong, nil)
	cfg.ServerName = "127.0.0.1"
	_, err = dial(addr, cfg)
	if !errors.Is(err, ErrFingerprintMismatch) || !strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), Fingerprint(a.Anchor())) {
		t.Fatalf("wrong fingerprint: %v; want a mismatch naming %s and %s", err, wrong, Fingerprint(a.Anchor()))
	}

	// The pin does not excuse a certificate for another name.
	cfg = PinnedConfig(Fingerprint(a.Anchor()), nil)
	cfg.ServerName = "elsewhere.example"
	if _, err := dial(addr, cfg); err == nil || !strings.Contains(err.Error(), "elsewhere.example") {
		t.Fatalf("wrong host name: %v", err)
	}

	// The saved CA then verifies by the ordinary path.
	pool := x509.NewCertPool()
	pool.AddCert(pinned)
	cfg = ClientConfig(pool)
	cfg.ServerName = "127.0.0.1"
	if _, err := dial(addr, cfg); err != nil {
		t.Fatalf("with the pinned CA as root: %v", err)
	}
	if _, err := dial(addr, &tls.Config{ServerName: "127.0.0.1"}); err == nil {
		t.Fatal("the system roots trusted a tripcap CA")
	}
}

// A wildcard listener reached on an address its SANs lack gets a
// certificate for that address, still under the CA.
func TestAuthorityCoversTheLocalAddress(t *testing.T) {
	a, err := OpenAuthority(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, "127.0.0.2:0", a)
	pool := x509.NewCertPool()
	pool.AddCert(a.Anchor())
	cfg := ClientConfig(pool)
	cfg.ServerName = "127.0.0.2"
	leaf, err := dial(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.VerifyHostname("127.0.0.2") != nil || leaf.VerifyHostname("127.0.0.1") != nil {
		t.Fatalf("SANs %v", leaf.IPAddresses)
	}
	again, err := dial(addr, cfg)
	if err != nil || again.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Fatalf("the certificate for 127.0.0.2 was not reused: %v", err)
	}
}

func TestFileSourceReloadsChangedFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	// Two operator CAs, as a renewal that also changed issuer would bring.
	put := func() *Authority {
		a, err := OpenAuthority(t.TempDir(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		chain, _ := os.ReadFile(filepath.Join(a.Dir(), ServerCertFile))
		chain = append(chain, EncodePEM(a.Anchor())...)
		key, _ := os.ReadFile(filepath.Join(a.Dir(), ServerKeyFile))
		if err := os.WriteFile(certFile, chain, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, key, 0o600); err != nil {
			t.Fatal(err)
		}
		return a
	}
	first := put()
	s, err := OpenFiles(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.interval = 10 * time.Millisecond
	if Fingerprint(s.Anchor()) != Fingerprint(first.Anchor()) {
		t.Fatal("the anchor is not the chain file's last certificate")
	}
	addr := serve(t, "127.0.0.1:0", s)
	if _, err := dial(addr, PinnedConfig(Fingerprint(first.Anchor()), nil)); err != nil {
		t.Fatal(err)
	}

	second := put()
	later := time.Now().Add(time.Minute)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := dial(addr, PinnedConfig(Fingerprint(second.Anchor()), nil)); err != nil {
		t.Fatalf("after the files changed: %v", err)
	}

	// A broken pair keeps the last good one in service.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	evenLater := later.Add(time.Minute)
	_ = os.Chtimes(keyFile, evenLater, evenLater)
	time.Sleep(20 * time.Millisecond)
	if _, err := dial(addr, PinnedConfig(Fingerprint(second.Anchor()), nil)); err != nil {
		t.Fatalf("after a broken key was written: %v", err)
	}
}

func TestLoadPool(t *testing.T) {
	a, err := OpenAuthority(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPool(filepath.Join(a.Dir(), CACertFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPool(filepath.Join(a.Dir(), CAKeyFile)); err == nil || !strings.Contains(err.Error(), "no PEM CERTIFICATE") {
		t.Fatalf("a key file as CA file: %v", err)
	}
}

func FuzzParseCertificates(f *testing.F) {
	a, err := OpenAuthority(f.TempDir(), nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(EncodePEM(a.Anchor()))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		certs, err := ParseCertificates(b)
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificate")
		}
	})
}
