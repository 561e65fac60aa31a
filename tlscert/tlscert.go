// Package tlscert is tripcap's small PKI: the certificate authority and
// serving certificate a server creates in its data directory, the reloader
// of an operator's own certificate files, and the client side's trust: a
// CA file, or a CA pinned by the SHA-256 fingerprint a join token carries
// (as kubeadm's --discovery-token-ca-cert-hash does).
package tlscert

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Source gives a server its certificate and says which certificate agents
// should trust (the one join tokens pin).
type Source interface {
	// GetCertificate is tls.Config.GetCertificate.
	GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
	// Anchor is the certificate at the top of the chain the server
	// presents: the CA for a created PKI, the last certificate of the
	// chain file for --tls-cert.
	Anchor() *x509.Certificate
}

// Fingerprint is the lowercase hex SHA-256 of a certificate's DER, as
// `openssl x509 -noout -fingerprint -sha256` prints it (without colons).
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// ServerConfig is the TLS configuration of a server whose certificate
// comes from src; ALPN (h2, http/1.1) is added by net/http.
func ServerConfig(src Source) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: src.GetCertificate}
}

// ClientConfig trusts the certificates in pool (nil: the system roots).
func ClientConfig(pool *x509.CertPool) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
}

// PinnedConfig trusts the server whose presented chain holds a certificate
// with this fingerprint, and verifies the rest of the chain (host name
// included) against that certificate. The default verification is off
// only because VerifyConnection does it against the pinned anchor instead;
// onPinned is called with the anchor once it matched.
func PinnedConfig(fingerprint string, onPinned func(*x509.Certificate)) *tls.Config {
	fingerprint = strings.ToLower(fingerprint)
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection's pin check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			anchor, err := VerifyPinned(cs.PeerCertificates, cs.ServerName, fingerprint)
			if err != nil {
				return err
			}
			if onPinned != nil {
				onPinned(anchor)
			}
			return nil
		},
	}
}

// ErrFingerprintMismatch is returned (wrapped) when a server's chain holds
// no certificate with the expected fingerprint.
var ErrFingerprintMismatch = errors.New("the server's CA does not match the join token's fingerprint")

// VerifyPinned finds in chain the certificate with fingerprint and verifies
// chain[0] for serverName against it alone; it returns that certificate.
func VerifyPinned(chain []*x509.Certificate, serverName, fingerprint string) (*x509.Certificate, error) {
	if len(chain) == 0 {
		return nil, errors.New("the server presented no certificate")
	}
	var anchor *x509.Certificate
	var got []string
	for _, c := range chain {
		fp := Fingerprint(c)
		got = append(got, fp)
		if fp == fingerprint {
			anchor = c
		}
	}
	if anchor == nil {
		return nil, fmt.Errorf("%w: expected sha256 %s, the server presented %s", ErrFingerprintMismatch, fingerprint, strings.Join(got, ", "))
	}
	roots := x509.NewCertPool()
	roots.AddCert(anchor)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: serverName, Roots: roots, Intermediates: inter}); err != nil {
		return nil, fmt.Errorf("verify the server's certificate against the pinned CA %s: %w", fingerprint, err)
	}
	return anchor, nil
}

// LoadPool reads PEM certificates from a file into a pool.
func LoadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	return PoolFromPEM(b, file)
}

// PoolFromPEM makes a pool of the certificates in PEM text; what names
// where the text came from, for errors.
func PoolFromPEM(b []byte, what string) (*x509.CertPool, error) {
	certs, err := ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// ParseCertificates parses every CERTIFICATE block of PEM text; there must
// be at least one.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return out, nil
}

// EncodePEM is a certificate as PEM text.
func EncodePEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// IsVerificationError reports whether err is a server that failed
// verification (a pin mismatch, an unknown CA, a certificate for another
// name): retrying will not help.
func IsVerificationError(err error) bool {
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.Is(err, ErrFingerprintMismatch) || errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}
