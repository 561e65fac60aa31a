//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/tlscert"
)

// identityServer is a `tripcap server` on loopback and the CLI against it.
type identityServer struct {
	t                *testing.T
	dir, url, caFile string
	tokenFile        string
}

func startIdentityServer(t *testing.T) *identityServer {
	t.Helper()
	dir := t.TempDir()
	s := &identityServer{t: t, dir: dir, tokenFile: filepath.Join(dir, "server", "admin.token"), caFile: filepath.Join(dir, "server", "tls", tlscert.CACertFile)}
	s.url, _ = startLoopbackServer(t, dir, "server")
	waitFile(t, s.tokenFile)
	return s
}

// startLoopbackServer runs `tripcap server` on a loopback port with its
// data in dir/server and the extra args, logging to dir/NAME.log, and
// returns its URL and a stop that ends it (at the test's end otherwise).
func startLoopbackServer(t *testing.T, dir, name string, args ...string) (url string, stop func()) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"server", "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "server")}, args...)...)
	cmd.Env = cliEnv(nil)
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
			if t.Failed() {
				b, _ := os.ReadFile(logf.Name())
				t.Logf("--- %s ---\n%s", name, b)
			}
		})
	}
	t.Cleanup(stop)
	return waitListening(t, logf.Name()), stop
}

// cliEnv is the environment of a CLI run: the test's, without any TRIPCAP_
// setting but those given.
func cliEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRIPCAP_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// run runs the CLI with -o json and a client config of its own (config
// names a file in the test's directory), and returns its standard output.
func (s *identityServer) run(config, stdin string, args ...string) (string, error) {
	s.t.Helper()
	cmd := exec.Command(binary, append([]string{"-o", "json"}, args...)...)
	cmd.Env = cliEnv([]string{"TRIPCAP_CONFIG=" + filepath.Join(s.dir, config)})
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), err
	}
	return out.String(), nil
}

// admin runs the CLI with the admin token given as flags.
func (s *identityServer) admin(args ...string) string {
	s.t.Helper()
	token, _ := os.ReadFile(s.tokenFile)
	out, err := s.run("admin.json", "", append([]string{"--server", s.url, "--token", strings.TrimSpace(string(token)), "--ca-file", s.caFile}, args...)...)
	if err != nil {
		s.t.Fatalf("tripcap %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestIdentityCLI: an admin creates a user with Reader on team=a hosts and
// a service principal; the user logs in (password on stdin), lists what a
// reader may and is refused a capture; personal tokens and a service
// principal's JWT authenticate; the admin token rotates.
func TestIdentityCLI(t *testing.T) {
	s := startIdentityServer(t)
	pwFile := filepath.Join(s.dir, "pw")
	if err := os.WriteFile(pwFile, []byte("correct horse battery\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var user tripcap.PrincipalRecord
	mustJSON(t, s.admin("principal", "create-user", "alice", "--password-file", pwFile), &user)
	var a tripcap.RoleAssignment
	mustJSON(t, s.admin("role", "assign", "alice", "reader", "--scope", "label:team=a"), &a)
	if a.Role != tripcap.RoleReader || a.Scope != "label:team=a" || a.PrincipalID != user.ID {
		t.Fatalf("assignment: %+v", a)
	}
	var sp tripcap.PrincipalRecord
	mustJSON(t, s.admin("principal", "create-service", "ci-bot"), &sp)
	var principals []tripcap.PrincipalRecord
	mustJSON(t, s.admin("principal", "list"), &principals)
	if len(principals) != 2 || strings.Contains(s.admin("principal", "list"), sp.ClientSecret) {
		t.Fatalf("principal list: %+v", principals)
	}

	// A host with team=a, enrolled through the API as an agent would.
	token, _ := os.ReadFile(s.tokenFile)
	api := s.apiClient(strings.TrimSpace(string(token)))
	jt, err := api.CreateJoinToken(t.Context(), time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.Enroll(t.Context(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web-a", Labels: map[string]string{"team": "a"}}); err != nil {
		t.Fatal(err)
	}

	// Login: the password comes from stdin (not a terminal), never a flag.
	out, err := s.run("alice.json", "wrong password!\n", "login", "--server", s.url, "--user", "alice", "--ca-file", s.caFile)
	if err == nil || !strings.Contains(out, "user name or password is wrong") {
		t.Fatalf("a wrong password: %v\n%s", err, out)
	}
	out, err = s.run("alice.json", "correct horse battery\n", "login", "--server", s.url, "--user", "alice", "--ca-file", s.caFile)
	if err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	if strings.Contains(out, tripcap.SecretPrefixToken) {
		t.Fatalf("login printed the token: %s", out)
	}
	cfgPath := filepath.Join(s.dir, "alice.json")
	fi, err := os.Stat(cfgPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("client config: %v, %v", fi, err)
	}
	var cfg struct{ Server, Token, CA string }
	b, _ := os.ReadFile(cfgPath)
	mustJSON(t, string(b), &cfg)
	if cfg.Server != s.url || !strings.HasPrefix(cfg.Token, tripcap.SecretPrefixToken) || !strings.Contains(cfg.CA, "BEGIN CERTIFICATE") {
		t.Fatalf("client config after login: server %q, token %.10q…, CA %d bytes", cfg.Server, cfg.Token, len(cfg.CA))
	}

	// As alice, from the client config alone.
	asAlice := func(args ...string) (string, error) { return s.run("alice.json", "", args...) }
	if out, err := asAlice("token", "list"); err != nil || !strings.Contains(out, `"login"`) {
		t.Fatalf("alice's token list: %v\n%s", err, out)
	}
	if out, err := asAlice("role", "list", "--principal", "alice"); err != nil || !strings.Contains(out, a.ID) {
		t.Fatalf("alice's roles: %v\n%s", err, out)
	}
	if out, err := asAlice("principal", "list"); err == nil || !strings.Contains(out, "may not access/write") {
		t.Fatalf("alice listing principals: %v\n%s", err, out)
	}
	if out, err := asAlice("capture", "create", "c1", "--host", "web-a"); err == nil || !strings.Contains(out, "may not captures/write") {
		t.Fatalf("a Reader created a capture: %v\n%s", err, out)
	}
	// A Reader at a label scope lists captures (those of hosts in scope).
	if out, err := asAlice("capture", "list"); err != nil {
		t.Fatalf("a Reader listing captures: %v\n%s", err, out)
	}

	// A personal token: created, used, revoked.
	var pat tripcap.APIToken
	out, err = asAlice("token", "create", "--name", "script", "--expires", "P30D")
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	mustJSON(t, out, &pat)
	if _, err := asAlice("token", "create", "--expires", "9000h"); err == nil {
		t.Fatal("a token living more than a year was created")
	}
	withPAT := func(args ...string) (string, error) {
		return s.run("none.json", "", append([]string{"--server", s.url, "--ca-file", s.caFile, "--token", pat.Token}, args...)...)
	}
	if out, err := withPAT("token", "list"); err != nil || !strings.Contains(out, pat.ID) || strings.Contains(out, pat.Token) {
		t.Fatalf("token list with the personal token: %v\n%s", err, out)
	}
	if out, err := asAlice("token", "revoke", pat.ID); err != nil {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	if out, err := withPAT("token", "list"); err == nil || !strings.Contains(out, "not valid") {
		t.Fatalf("a revoked token: %v\n%s", err, out)
	}

	// The service principal's JWT, from the token endpoint.
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.ClientID}, "client_secret": {sp.ClientSecret}}
	resp, err := s.httpClient().PostForm(s.url+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || strings.Count(tok.AccessToken, ".") != 2 || tok.ExpiresIn != 3600 {
		t.Fatalf("token endpoint: %d %+v %v", resp.StatusCode, tok, err)
	}
	out, err = s.run("none.json", "", "--server", s.url, "--ca-file", s.caFile, "--token", tok.AccessToken, "role", "list", "--principal", "ci-bot")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("role list with the JWT: %v\n%s", err, out)
	}
	var disc struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
		JWKSURI       string `json:"jwks_uri"`
	}
	resp, err = s.httpClient().Get(s.url + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if err != nil || disc.Issuer != s.url || disc.TokenEndpoint != s.url+"/oauth2/token" || disc.JWKSURI != s.url+"/.well-known/jwks.json" {
		t.Fatalf("discovery: %+v %v", disc, err)
	}

	// Rotating the admin token from a client config holding it.
	old := strings.TrimSpace(string(token))
	adminCfg, _ := json.Marshal(map[string]string{"server": s.url, "token": old})
	if err := os.WriteFile(filepath.Join(s.dir, "admin.json"), adminCfg, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = s.run("admin.json", "", "--ca-file", s.caFile, "admin-token", "rotate")
	if err != nil {
		t.Fatalf("rotate: %v\n%s", err, out)
	}
	var rotated struct{ Token, ClientConfigUpdated string }
	mustJSON(t, out, &rotated)
	fileNow, _ := os.ReadFile(s.tokenFile)
	if rotated.Token == old || strings.TrimSpace(string(fileNow)) != rotated.Token || rotated.ClientConfigUpdated == "" {
		t.Fatalf("after rotation: %+v, the file holds %.12q…", rotated, fileNow)
	}
	if out, err := s.run("admin.json", "", "--ca-file", s.caFile, "principal", "list"); err != nil {
		t.Fatalf("the rotated token from the updated config: %v\n%s", err, out)
	}
	if out, err := s.run("none.json", "", "--server", s.url, "--ca-file", s.caFile, "--token", old, "principal", "list"); err == nil || !strings.Contains(out, "not valid") {
		t.Fatalf("the old admin token: %v\n%s", err, out)
	}
}

// TestWeakAdminTokenRefused: a server whose token file holds tc_admin_x
// does not start, and says why.
func TestWeakAdminTokenRefused(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(file, []byte("tc_admin_x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "server", "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "data"), "--admin-token-file", file)
	cmd.Env = cliEnv(nil)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("the server started with a weak admin token")
	}
	if err == nil || !strings.Contains(string(out), "too short") || !strings.Contains(string(out), file) {
		t.Fatalf("server with tc_admin_x: %v\n%s", err, out)
	}
}

func (s *identityServer) httpClient() *http.Client {
	pool, err := tlscert.LoadPool(s.caFile)
	if err != nil {
		s.t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tlscert.ClientConfig(pool)}, Timeout: 10 * time.Second}
}

func (s *identityServer) apiClient(token string) *tchttp.Client {
	pool, err := tlscert.LoadPool(s.caFile)
	if err != nil {
		s.t.Fatal(err)
	}
	c, err := tchttp.NewClient(s.url, token, tchttp.WithTLSConfig(tlscert.ClientConfig(pool)))
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
}
