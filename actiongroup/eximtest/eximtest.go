// Package eximtest runs a real mail server for tests that send email: a
// private exim on 127.0.0.1 that delivers everything for example.test into
// one mailbox the test reads.
package eximtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap/internal/testenv"
)

// Server is a private exim (Debian's exim4-daemon-light, installed by
// scripts/install-alerting-peers) on 127.0.0.1: STARTTLS with a test
// certificate, AUTH PLAIN for Username/Password after TLS, accepting mail
// for example.test into one mbox file.
type Server struct {
	// Addr is host:port of its SMTP listener.
	Addr string
	// Pool holds the certificate authority of its TLS certificate.
	Pool    *x509.CertPool
	mailbox string
}

// The credentials the server accepts.
const (
	Username = "alerts"
	Password = "s3cret"
)

const eximConf = `primary_hostname = tripcap-test.localhost
qualify_domain = example.test
local_interfaces = 127.0.0.1
daemon_smtp_ports = {{PORT}}
spool_directory = {{DIR}}/spool
log_file_path = {{DIR}}/log/%slog
pid_file_path = {{DIR}}/exim.pid
exim_user = root
exim_group = root
never_users =
keep_environment =
tls_advertise_hosts = *
tls_certificate = {{DIR}}/cert.pem
tls_privatekey = {{DIR}}/key.pem
auth_advertise_hosts = ${if eq{$tls_in_cipher}{}{}{*}}
acl_smtp_rcpt = acl_check_rcpt
begin acl
acl_check_rcpt:
  accept domains = example.test
  deny message = relay not permitted
begin routers
mailbox:
  driver = accept
  domains = example.test
  transport = mailbox_file
begin transports
mailbox_file:
  driver = appendfile
  file = {{DIR}}/mail/mailbox
  envelope_to_add = true
  user = nobody
  mode = 0644
begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if and {{eq{$auth2}{alerts}}{eq{$auth3}{s3cret}}}}
  server_set_id = $auth2
`

// Start runs a server for the test's duration. It needs root and exim4:
// without them the test is skipped, or fails under CI.
func Start(t *testing.T) *Server {
	t.Helper()
	testenv.RequireRoot(t)
	exim := testenv.RequireBinary(t, "exim4")
	dir, err := os.MkdirTemp("", "tripcap-exim-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The delivery runs as nobody, which must reach the mailbox directory.
	for _, d := range []string{dir, dir + "/spool", dir + "/log", dir + "/mail"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(d, 0o755)
	}
	_ = os.Chmod(dir+"/mail", 0o777)
	pool := writeCert(t, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := strings.NewReplacer("{{PORT}}", fmt.Sprint(port), "{{DIR}}", dir).Replace(eximConf)
	if err := os.WriteFile(dir+"/exim.conf", []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(exim, "-C", dir+"/exim.conf", "-bdf")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(dir + "/log/mainlog")
			t.Fatalf("exim did not listen on %s: %v\n%s\n%s", addr, err, out.String(), log)
		}
	}
	return &Server{Addr: addr, Pool: pool, mailbox: dir + "/mail/mailbox"}
}

func writeCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// WaitMail waits for the mailbox to hold n messages and returns them (all
// of them: there may be more).
func (e *Server) WaitMail(t *testing.T, n int) []*mail.Message {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		data, _ := os.ReadFile(e.mailbox)
		// mbox: each message starts with a "From " line.
		parts := strings.Split("\n"+string(data), "\nFrom ")[1:]
		var bad error
		if len(parts) >= n {
			var out []*mail.Message
			for _, p := range parts {
				_, rest, _ := strings.Cut(p, "\n")
				m, err := mail.ReadMessage(strings.NewReader(rest))
				if err != nil {
					// Read while exim appends it: read again.
					bad = err
					break
				}
				out = append(out, m)
			}
			if bad == nil {
				return out
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailbox has %d messages; want %d (%v)", len(parts), n, bad)
		}
	}
}
