package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// ReloadInterval is how often a FileSource looks at its files' mtimes, at
// most: on a handshake, never from a goroutine of its own.
const ReloadInterval = 2 * time.Second

// FileSource serves an operator's certificate and key files (--tls-cert,
// --tls-key), reloaded when either changes, so a renewal by an ACME client
// or cert-manager needs no restart. A pair that fails to load is logged and
// the last good one kept.
type FileSource struct {
	certFile, keyFile string
	log               *slog.Logger
	interval          time.Duration

	mu        sync.Mutex
	cert      *tls.Certificate
	anchor    *x509.Certificate
	stamp     [2]time.Time
	checkedAt time.Time
}

// OpenFiles loads certFile (the leaf first, then its chain) and keyFile.
func OpenFiles(certFile, keyFile string, log *slog.Logger) (*FileSource, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &FileSource{certFile: certFile, keyFile: keyFile, log: log.With("component", "tls"), interval: ReloadInterval}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *FileSource) load() error {
	stamp, err := s.mtimes()
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("--tls-cert %s / --tls-key %s: %w", s.certFile, s.keyFile, err)
	}
	top, err := x509.ParseCertificate(pair.Certificate[len(pair.Certificate)-1])
	if err != nil {
		return fmt.Errorf("--tls-cert %s: %w", s.certFile, err)
	}
	s.cert, s.anchor, s.stamp = &pair, top, stamp
	return nil
}

func (s *FileSource) mtimes() ([2]time.Time, error) {
	var out [2]time.Time
	for i, f := range []string{s.certFile, s.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return out, fmt.Errorf("TLS file: %w", err)
		}
		out[i] = fi.ModTime()
	}
	return out, nil
}

// GetCertificate returns the current pair, reloading it first when a file
// changed since the last look (at most every ReloadInterval).
func (s *FileSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maybeReload()
	return s.cert, nil
}

// Anchor is the last certificate of the chain file: what join tokens pin.
func (s *FileSource) Anchor() *x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maybeReload()
	return s.anchor
}

func (s *FileSource) maybeReload() {
	now := time.Now()
	if now.Sub(s.checkedAt) < s.interval {
		return
	}
	s.checkedAt = now
	stamp, err := s.mtimes()
	if err != nil || stamp == s.stamp {
		return
	}
	old := s.anchor
	if err := s.load(); err != nil {
		s.log.Error("reloading the TLS certificate failed; serving the previous one", "err", err)
		s.stamp = stamp // retried when the files change again
		return
	}
	s.log.Info("TLS certificate reloaded", "certFile", s.certFile, "notAfter", s.cert.Leaf.NotAfter, "anchorChanged", Fingerprint(old) != Fingerprint(s.anchor))
}
