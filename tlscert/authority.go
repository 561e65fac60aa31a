package tlscert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/tripcap/tripcap/atomicfile"
)

// Lifetimes of what an Authority issues. The CA lives long because agents
// pin it; the serving certificate is short and renewed well before it ends.
const (
	CALifetime      = 20 * 365 * 24 * time.Hour
	ServingLifetime = 90 * 24 * time.Hour
	RenewBefore     = 30 * 24 * time.Hour
	// maxExtraIPs bounds the certificates issued for addresses a wildcard
	// listener is reached on that were not known at start.
	maxExtraIPs = 256
)

// The files of a created PKI, in its directory (<data>/tls).
const (
	CACertFile     = "ca.pem"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.pem"
	ServerKeyFile  = "server.key"
)

// Authority is a CA kept in a directory and the serving certificate it
// issues for the server's names and addresses. Replicas share it by sharing
// ca.pem and ca.key; each issues its own serving certificate.
type Authority struct {
	dir   string
	ca    *x509.Certificate
	caKey crypto.Signer
	names []string
	ips   []netip.Addr
	now   func() time.Time

	mu      sync.Mutex
	serving *tls.Certificate
	// extra holds certificates for local addresses the SANs lacked (a
	// wildcard listener reached on an address added after start).
	extra map[netip.Addr]*tls.Certificate
}

// OpenAuthority loads the CA in dir, creating it on first use, and a serving
// certificate for sans (host names or IP addresses; localhost, 127.0.0.1
// and ::1 are always in), issuing a new one when the one on disk is missing,
// due for renewal or lacks a SAN. now may be nil (time.Now).
func OpenAuthority(dir string, sans []string, now func() time.Time) (*Authority, error) {
	if now == nil {
		now = time.Now
	}
	a := &Authority{dir: dir, now: now, extra: map[netip.Addr]*tls.Certificate{}}
	for _, s := range append([]string{"localhost", "127.0.0.1", "::1"}, sans...) {
		if ip, err := netip.ParseAddr(s); err == nil {
			if !slices.Contains(a.ips, ip.Unmap()) {
				a.ips = append(a.ips, ip.Unmap())
			}
		} else if s != "" && !slices.Contains(a.names, s) {
			a.names = append(a.names, s)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create TLS directory: %w", err)
	}
	if err := a.loadOrCreateCA(); err != nil {
		return nil, err
	}
	if err := a.loadOrIssueServing(); err != nil {
		return nil, err
	}
	return a, nil
}

// Anchor is the CA.
func (a *Authority) Anchor() *x509.Certificate { return a.ca }

// Dir is where the PKI's files are.
func (a *Authority) Dir() string { return a.dir }

func (a *Authority) path(name string) string { return filepath.Join(a.dir, name) }

func (a *Authority) loadOrCreateCA() error {
	cert, key, err := loadPair(a.path(CACertFile), a.path(CAKeyFile))
	switch {
	case err == nil:
		if !cert.IsCA {
			return fmt.Errorf("%s: not a CA certificate", a.path(CACertFile))
		}
		a.ca, a.caKey = cert, key
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate CA key: %w", err)
	}
	key = ecKey
	now := a.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "tripcap CA " + now.UTC().Format("2006-01-02"), Organization: []string{"tripcap"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("create CA certificate: %w", err)
	}
	if a.ca, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	a.caKey = key
	// The key first: a ca.pem without its key would be taken for an
	// operator's CA on the next start and fail there.
	if err := writeKey(a.path(CAKeyFile), ecKey); err != nil {
		return err
	}
	return atomicfile.Write(a.path(CACertFile), EncodePEM(a.ca), 0o644)
}

func (a *Authority) loadOrIssueServing() error {
	cert, key, err := loadPair(a.path(ServerCertFile), a.path(ServerKeyFile))
	if err == nil && a.fresh(cert) && a.covers(cert) && cert.CheckSignatureFrom(a.ca) == nil {
		a.serving = &tls.Certificate{Certificate: [][]byte{cert.Raw, a.ca.Raw}, PrivateKey: key, Leaf: cert}
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return a.renew()
}

// renew issues a serving certificate and writes it; a.mu held or not yet shared.
func (a *Authority) renew() error {
	c, err := a.issue(a.names, a.ips)
	if err != nil {
		return err
	}
	if err := writeKey(a.path(ServerKeyFile), c.PrivateKey.(*ecdsa.PrivateKey)); err != nil {
		return err
	}
	if err := atomicfile.Write(a.path(ServerCertFile), EncodePEM(c.Leaf), 0o644); err != nil {
		return err
	}
	a.serving = c
	clear(a.extra)
	return nil
}

func (a *Authority) fresh(c *x509.Certificate) bool {
	return a.now().Before(c.NotAfter.Add(-RenewBefore))
}

func (a *Authority) covers(c *x509.Certificate) bool {
	for _, n := range a.names {
		if !slices.Contains(c.DNSNames, n) {
			return false
		}
	}
	for _, ip := range a.ips {
		if !hasIP(c, ip) {
			return false
		}
	}
	return true
}

func hasIP(c *x509.Certificate, ip netip.Addr) bool {
	return slices.ContainsFunc(c.IPAddresses, func(x net.IP) bool {
		a, ok := netip.AddrFromSlice(x)
		return ok && a.Unmap() == ip
	})
}

// issue signs a serving certificate for names and ips with a new key.
func (a *Authority) issue(names []string, ips []netip.Addr) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate serving key: %w", err)
	}
	now := a.now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "tripcap server", Organization: []string{"tripcap"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(ServingLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.ca, key.Public(), a.caKey)
	if err != nil {
		return nil, fmt.Errorf("issue serving certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der, a.ca.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// GetCertificate returns the serving certificate, renewed first when due.
// A connection that reached the server on a local address the certificate
// lacks (a wildcard listener, an address added after start) gets one that
// adds it: the address is the server's own, never the client's word (SNI).
func (a *Authority) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.fresh(a.serving.Leaf) {
		if err := a.renew(); err != nil {
			return nil, err
		}
	}
	ip, ok := localIP(hello)
	if !ok || hasIP(a.serving.Leaf, ip) {
		return a.serving, nil
	}
	if c := a.extra[ip]; c != nil && a.fresh(c.Leaf) {
		return c, nil
	}
	if len(a.extra) >= maxExtraIPs {
		clear(a.extra)
	}
	c, err := a.issue(a.names, append(slices.Clone(a.ips), ip))
	if err != nil {
		return nil, err
	}
	a.extra[ip] = c
	return c, nil
}

func localIP(hello *tls.ClientHelloInfo) (netip.Addr, bool) {
	if hello == nil || hello.Conn == nil {
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(hello.Conn.LocalAddr().String())
	if err != nil {
		return netip.Addr{}, false
	}
	ip := ap.Addr().Unmap().WithZone("")
	return ip, ip.IsValid() && !ip.IsUnspecified()
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return n
}

// loadPair reads a PEM certificate (the first of the file) and its key.
func loadPair(certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	pair, err := tls.X509KeyPair(cb, kb)
	if err != nil {
		return nil, nil, fmt.Errorf("%s and %s: %w", certFile, keyFile, err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%s: the key cannot sign", keyFile)
	}
	return pair.Leaf, signer, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	return atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}
