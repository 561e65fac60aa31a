package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tripcap/tripcap/tlscert"
)

// replicaSet runs tripcap servers as replicas do (docs/security.md): on
// one PostgreSQL database, with one admin token, master key, storage and
// CA. The first replica writes the CA; each later one gets a copy before
// its first start, so agents and clients pinned to it trust every replica.
type replicaSet struct {
	t                   *testing.T
	dir, dsn, tokenFile string
	args                []string // added to every replica's command line
	first               string   // the replica whose CA the others copy
}

// replica is one running server.
type replica struct {
	name string
	cmd  *exec.Cmd
	url  string
	log  string
}

func newReplicaSet(t *testing.T, dsn string, args ...string) *replicaSet {
	dir := t.TempDir()
	return &replicaSet{t: t, dir: dir, dsn: dsn, tokenFile: filepath.Join(dir, "admin.token"), args: args}
}

// start starts replica name listening on listen and waits until it
// serves; it is stopped (SIGTERM) when the test ends, its log's tail shown
// if the test failed.
func (rs *replicaSet) start(name, listen string) *replica {
	t := rs.t
	t.Helper()
	if rs.first == "" {
		rs.first = name
	} else {
		rs.copyCA(name)
	}
	r := &replica{name: name, log: filepath.Join(rs.dir, name+".log")}
	r.cmd = exec.Command(binary, append([]string{"server", "--listen", listen, "--data", filepath.Join(rs.dir, name), "--db", rs.dsn,
		"--admin-token-file", rs.tokenFile, "--master-key-file", filepath.Join(rs.dir, "master.key"),
		"--storage", "local=file://" + filepath.Join(rs.dir, "shared-storage")}, rs.args...)...)
	logf, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		_ = r.cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(r.log)
			t.Logf("--- %s (tail) ---\n%s", name, b[max(0, len(b)-12000):])
		}
	})
	r.url = waitListening(t, r.log)
	waitFile(t, rs.tokenFile)
	return r
}

// copyCA gives replica name the first replica's CA.
func (rs *replicaSet) copyCA(name string) {
	t := rs.t
	t.Helper()
	if err := os.MkdirAll(filepath.Join(rs.dir, name, "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{tlscert.CACertFile, tlscert.CAKeyFile} {
		b, err := os.ReadFile(filepath.Join(rs.dir, rs.first, "tls", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(rs.dir, name, "tls", f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// token is the replicas' admin token.
func (rs *replicaSet) token() string {
	b, err := os.ReadFile(rs.tokenFile)
	if err != nil {
		rs.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// caFile is the replicas' CA certificate.
func (rs *replicaSet) caFile() string {
	return filepath.Join(rs.dir, rs.first, "tls", tlscert.CACertFile)
}
