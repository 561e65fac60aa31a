package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/actiongroup/webhooktest"
	"github.com/tripcap/tripcap/capturefile"
	"github.com/tripcap/tripcap/tlscert"
)

// runWithConfig runs `tripcap ARGS` up to the command's action, which is
// replaced by one that returns the command's flags: what the command would
// run with. The log goes to the returned buffer.
func runWithConfig(t *testing.T, args ...string) (*pflag.FlagSet, string, error) {
	t.Helper()
	root := newRootCmd()
	sub, _, err := root.Find(args[:1])
	if err != nil {
		t.Fatal(err)
	}
	var got *pflag.FlagSet
	sub.RunE = func(cmd *cobra.Command, _ []string) error { got = cmd.Flags(); return nil }
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err = root.Execute()
	return got, out.String(), err
}

func writeConfig(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func flagValue(fs *pflag.FlagSet, name string) string {
	f := fs.Lookup(name)
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return strings.Join(sv.GetSlice(), ",")
	}
	return f.Value.String()
}

// TestConfigFilePrecedence: the command line beats the file, the file beats
// the default, and no environment variable beats either: the ones the
// command does not read are named in a warning, and every setting that is
// not a default is logged with where it came from, credentials masked.
func TestConfigFilePrecedence(t *testing.T) {
	cfg := writeConfig(t, "server.yaml", `# a fleet's control plane
listen: 0.0.0.0:8080
data: /var/lib/tripcap
db: postgres://tripcap:hunter2@db.internal/tripcap?sslmode=require
heartbeat: 3s
max-captures: 7
storage:
  - s3=s3://captures/tripcap?endpoint=http://minio:9000&secret=topsecret
  - local=file:///var/lib/tripcap/storage
public-url: https://tripcap.example.com
log-level: debug
`)
	t.Setenv("TRIPCAP_LISTEN", "127.0.0.1:1")
	t.Setenv("TRIPCAP_SMTP_PASSWORD", "smtp-secret")
	fs, logs, err := runWithConfig(t, "server", "--config", cfg, "--listen", "127.0.0.1:9999", "--max-captures", "2")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"listen":         "127.0.0.1:9999", // the command line wins
		"max-captures":   "2",
		"data":           "/var/lib/tripcap", // the file beats the default
		"heartbeat":      "3s",
		"storage":        "s3=s3://captures/tripcap?endpoint=http://minio:9000&secret=topsecret,local=file:///var/lib/tripcap/storage",
		"public-url":     "https://tripcap.example.com",
		"log-level":      "debug",
		"resource-group": "", // neither: the default
	} {
		if got := flagValue(fs, name); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
	for _, want := range []string{
		`flag=listen value=127.0.0.1:9999 from="command line"`,
		`flag=heartbeat value=3s from="config ` + cfg + `"`,
		`flag=db value="postgres://tripcap:REDACTED@db.internal/tripcap?sslmode=require"`,
		`value="[s3=s3://captures/tripcap?endpoint=http://minio:9000&secret=REDACTED local=file:///var/lib/tripcap/storage]"`,
		`level=WARN msg="environment variable ignored: ` + "`tripcap server`" + ` takes its settings from flags and the config file" component=config variable=TRIPCAP_LISTEN`,
		`msg="setting from the environment" component=config variable=TRIPCAP_SMTP_PASSWORD`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not say %s:\n%s", want, logs)
		}
	}
	for _, secret := range []string{"hunter2", "topsecret", "smtp-secret"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log shows the secret %q:\n%s", secret, logs)
		}
	}
}

// TestAgentConfigFile: the agent's file, in JSON, sets its flags; its join
// token is never logged; TRIPCAP_SERVER (the CLI's) does not reach it.
func TestAgentConfigFile(t *testing.T) {
	cfg := writeConfig(t, "agent.json", `{"server": "https://tripcap.example.com", "join-token": "tc_join_abcdef0123456789",
		"label": ["team=a", "rack=r12"], "pre-trigger-seconds": 10, "state-dir": "/var/lib/tripcap"}`)
	t.Setenv("TRIPCAP_SERVER", "http://127.0.0.1:1")
	fs, logs, err := runWithConfig(t, "agent", "--config", cfg, "--label", "zone=z1")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"server": "https://tripcap.example.com", "join-token": "tc_join_abcdef0123456789",
		"label": "zone=z1", "pre-trigger-seconds": "10", "state-dir": "/var/lib/tripcap",
	} {
		if got := flagValue(fs, name); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
	if strings.Contains(logs, "abcdef0123456789") || !strings.Contains(logs, "flag=join-token value=**** from") {
		t.Errorf("the join token is not masked in the log:\n%s", logs)
	}
	if !strings.Contains(logs, "variable=TRIPCAP_SERVER") {
		t.Errorf("TRIPCAP_SERVER ignored silently:\n%s", logs)
	}
}

// TestConfigFilesSplitSecrets: --config repeats, so a secret can live in a
// file of its own (a mounted Secret); a key set in two files is refused.
func TestConfigFilesSplitSecrets(t *testing.T) {
	shared := writeConfig(t, "agent.yaml", "server: https://tripcap.example.com\nlabel: [team=a]\n")
	secret := writeConfig(t, "join.yaml", "join-token: tc_join_abcdef0123456789\n")
	fs, _, err := runWithConfig(t, "agent", "--config", shared, "--config", secret)
	if err != nil {
		t.Fatal(err)
	}
	if flagValue(fs, "server") != "https://tripcap.example.com" || flagValue(fs, "join-token") != "tc_join_abcdef0123456789" || flagValue(fs, "label") != "team=a" {
		t.Errorf("server %q, join-token %q, label %q", flagValue(fs, "server"), flagValue(fs, "join-token"), flagValue(fs, "label"))
	}
	again := writeConfig(t, "again.yaml", "server: https://other.example.com\n")
	_, _, err = runWithConfig(t, "agent", "--config", shared, "--config", again)
	if err == nil || !strings.Contains(err.Error(), "server: also set in "+shared) || !strings.Contains(err.Error(), again) {
		t.Errorf("a key in two files: %v", err)
	}
}

// TestConfigFileUnknownKey: a key that is not one of the command's flags
// is an error naming it and the file, the CLI's own flags included.
func TestConfigFileUnknownKey(t *testing.T) {
	for _, c := range []struct{ command, text, key string }{
		{"server", "listen: 127.0.0.1:8080\nlisen: 0.0.0.0:8080\n", "lisen"},
		{"server", "token: tc_admin_x\n", "token"},         // the CLI client's, inherited from the root
		{"server", "output: json\n", "output"},             // likewise
		{"server", "config: /etc/other.yaml\n", "config"},  // no nesting
		{"agent", "public-url: https://x\n", "public-url"}, // a server flag
		{"up", "join-token: x\n", "join-token"},            // up enrolls its own agent
	} {
		cfg := writeConfig(t, "c.yaml", c.text)
		_, _, err := runWithConfig(t, c.command, "--config", cfg)
		if err == nil || !strings.Contains(err.Error(), cfg) || !strings.Contains(err.Error(), c.key+": unknown key") {
			t.Errorf("%s with %q: %v; want an unknown key error naming %s and the file", c.command, c.text, err, c.key)
		}
	}
}

// TestConfigFileWrongType: a value of the wrong kind, or one the flag
// cannot parse, is an error naming the key and the file.
func TestConfigFileWrongType(t *testing.T) {
	for _, c := range []struct{ command, text, key, says string }{
		{"server", "heartbeat: 10\n", "heartbeat", "want a duration"},
		{"server", "heartbeat: soon\n", "heartbeat", "invalid"},
		{"server", "max-captures: many\n", "max-captures", "want a number"},
		{"server", "max-captures: 1.5\n", "max-captures", "want a number"},
		{"server", "listen: 8080\n", "listen", "want a string"},
		{"server", "listen: [a, b]\n", "listen", "got a list"},
		{"server", "listen:\n", "listen", "got nothing"},
		{"server", "storage: local=file:///x\n", "storage", "want a list"},
		{"server", "storage: [1]\n", "storage", "a list holds strings only"},
		{"server", "data: {path: /x}\n", "data", "not a mapping"},
		{"agent", "pre-trigger-seconds: \"10\"\n", "pre-trigger-seconds", "want a number"},
		{"agent", "spool-max-bytes: 10Gi\n", "spool-max-bytes", "want a number"},
		{"agent", "name: &a h1\nlocation: *a\n", "name", "anchors"},
		{"agent", "name: h1\nname: h2\n", "name", "given twice"},
	} {
		cfg := writeConfig(t, "c.yaml", c.text)
		_, _, err := runWithConfig(t, c.command, "--config", cfg)
		if err == nil || !strings.Contains(err.Error(), cfg) || !strings.Contains(err.Error(), c.key+": ") || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s with %q: %v; want an error naming %s and the file, saying %q", c.command, c.text, err, c.key, c.says)
		}
	}
	// Not a mapping at all, or not YAML.
	for _, text := range []string{"- listen\n", "listen: [\n", "a: 1\n---\nb: 2\n"} {
		cfg := writeConfig(t, "c.yaml", text)
		if _, _, err := runWithConfig(t, "server", "--config", cfg); err == nil || !strings.Contains(err.Error(), cfg) {
			t.Errorf("server with %q: %v; want an error naming the file", text, err)
		}
	}
}

// TestConfigFileMissing: --config names a file that must exist; the
// default path is read only when present; an empty file sets nothing.
func TestConfigFileMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.yaml")
	if _, _, err := runWithConfig(t, "server", "--config", missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("--config of a missing file: %v", err)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.String("listen", "d", "")
	if _, err := applyConfigFiles(fs, func(string) bool { return true }, []string{missing}, false); err != nil {
		t.Errorf("a missing default file: %v", err)
	}
	fs2, _, err := runWithConfig(t, "server", "--config", writeConfig(t, "empty.yaml", "# nothing yet\n"))
	if err != nil || flagValue(fs2, "listen") != "127.0.0.1:8080" {
		t.Errorf("an empty config file: %v", err)
	}
}

// TestEveryFlagSettableInConfig: every flag of server, agent and up, those
// added later included, can be set in the file by its own name.
func TestEveryFlagSettableInConfig(t *testing.T) {
	for _, command := range []string{"server", "agent", "up"} {
		root := newRootCmd()
		sub, _, _ := root.Find([]string{command})
		var lines []string
		var names []string
		sub.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name == configFlag || f.Name == "help" {
				return
			}
			names = append(names, f.Name)
			var v string
			switch typ := f.Value.Type(); {
			case typ == "bool":
				v = "true"
			case typ == "duration":
				v = `"7s"`
			case strings.HasPrefix(typ, "int") || strings.HasPrefix(typ, "uint"):
				v = "7"
			case strings.HasSuffix(typ, "Array") || strings.HasSuffix(typ, "Slice"):
				v = `["k=v"]`
			default:
				v = `"x"`
			}
			lines = append(lines, f.Name+": "+v)
		})
		cfg := writeConfig(t, command+".yaml", strings.Join(lines, "\n")+"\n")
		fs, _, err := runWithConfig(t, command, "--config", cfg)
		if err != nil {
			t.Fatalf("%s: %v\n%s", command, err, strings.Join(lines, "\n"))
		}
		for _, n := range names {
			if !fs.Changed(n) {
				t.Errorf("%s: --%s not set from the config file", command, n)
			}
		}
		if len(names) < 5 {
			t.Errorf("%s: only %d flags: %v", command, len(names), names)
		}
	}
}

// FuzzConfigFile: no file makes the parser or the flag setting panic, and
// what is accepted sets only the command's flags.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{"listen: 0.0.0.0:8080\nstorage: [a=file:///x]\n", `{"heartbeat": "3s", "max-captures": 3}`,
		"a: &x 1\nb: *x\n", "- 1\n", "listen: !!binary aGk=\n", "? [a]\n: b\n", "listen: 1\n---\n", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := parseConfig(b)
		if err != nil {
			return
		}
		cmd := newServerCmd()
		fs := cmd.Flags()
		for _, e := range entries {
			if err := setFromConfig(fs, func(string) bool { return true }, e); err != nil {
				return
			}
			if fs.Lookup(e.key) == nil {
				t.Fatalf("set %q, not a flag", e.key)
			}
		}
	})
}

// TestPublicURLInNotificationLinks: behind a load balancer, the links in a
// capture's completion notification are built on --public-url, not on the
// address the server listens on.
func TestPublicURLInNotificationLinks(t *testing.T) {
	rc := webhooktest.Start(t)
	url, token := startServerWith(t, &serverOptions{listen: "127.0.0.1:0", data: t.TempDir(), heartbeat: 10 * time.Second,
		maxCaptures: tripcap.DefaultParallelCapturesPerWatcher, publicURL: "https://tripcap.lb.example:8443/",
		// The receiver is on loopback, refused unless allowed.
		allowWebhookTargets: []string{"127.0.0.0/8"}})
	ctx := t.Context()
	c := apiClient(t, url, token)
	jt, err := c.CreateJoinToken(ctx, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	enrolled, err := c.Enroll(ctx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cli(t, url, token, "responder", "create", "pc", "--notify-webhook", "done="+rc.URL+"/done"); err != nil {
		t.Fatalf("responder create: %v\n%s", err, out)
	}
	key, err := c.CreateResponderKey(ctx, "pc", "")
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"targetVM": %q}`, enrolled.Host.ResourceID())
	pool, err := tlscert.LoadPool(os.Getenv("TRIPCAP_CA_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	alertSource := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := alertSource.Post(url+"/api/functions/pc?code="+key.Secret, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("function call: %s", resp.Status)
	}
	// The test plays the host's agent: the capture (named for its host)
	// runs, ends with a file, and the file is stored through the server,
	// as the agent's sender stores it.
	var capture *tripcap.PacketCapture
	deadline := time.Now().Add(20 * time.Second)
	for {
		capture, err = c.GetCapture(ctx, "", "PSAzureFunction-"+enrolled.Host.Name)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the responder's capture: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	agentAPI := apiClient(t, url, enrolled.Credential)
	file := filepath.Join(t.TempDir(), "web.cap")
	if err := os.WriteFile(file, []byte("packets"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if _, err := agentAPI.Report(ctx, []tripcap.SessionReport{{CaptureID: capture.ID, Status: tripcap.StatusStopped, StopReason: tripcap.StopManuallyStopped,
		StartTime: &now, StopTime: &now, Files: []tripcap.CaptureFile{{Name: "web.cap", Size: 7, LocalPath: file, CreatedAt: now}}}}); err != nil {
		t.Fatalf("agent report: %v", err)
	}
	if _, err := (&capturefile.Sender{Server: agentAPI}).Send(ctx, capture.ID, "web.cap", file, nil, nil); err != nil {
		t.Fatalf("storing the file: %v", err)
	}
	for len(rc.Accepted("/done")) == 0 {
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatal("no completion notification")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var n actiongroup.CommonAlert
	if err := json.Unmarshal(rc.Accepted("/done")[0].Body, &n); err != nil {
		t.Fatal(err)
	}
	want := "https://tripcap.lb.example:8443/api/v1/captures/" + capture.ID + "/file"
	if got := n.Data.CustomProperties["downloadUrl"]; got != want {
		t.Fatalf("downloadUrl = %q, want %q (all: %v)", got, want, n.Data.CustomProperties)
	}
}

// TestPublicURLChecked: a --public-url links could not be built on is refused, naming the flag.
func TestPublicURLChecked(t *testing.T) {
	for _, bad := range []string{"tripcap.example.com", "ftp://x", "https://", "https://u:p@x", "https://x/?a=b", "https://x/#f"} {
		if _, err := checkPublicURL(bad); err == nil || !strings.Contains(err.Error(), "--public-url") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	for in, want := range map[string]string{"https://x.example/": "https://x.example", "http://lb:8080/tripcap/": "http://lb:8080/tripcap"} {
		if got, err := checkPublicURL(in); err != nil || got != want {
			t.Errorf("%q = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestDeployConfigFiles: the example config files in deploy/config and
// those the Kubernetes ConfigMaps carry are accepted by the commands they
// are for.
func TestDeployConfigFiles(t *testing.T) {
	files := map[string]string{} // path → command
	for _, command := range []string{"server", "agent"} {
		files[filepath.Join("..", "..", "deploy", "config", command+".yaml")] = command
	}
	manifests, err := filepath.Glob(filepath.Join("..", "..", "deploy", "kubernetes", "*.yaml"))
	if err != nil || len(manifests) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, m := range manifests {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var obj struct {
				Kind string            `yaml:"kind"`
				Data map[string]string `yaml:"data"`
			}
			if err := dec.Decode(&obj); err != nil {
				break
			}
			if obj.Kind != "ConfigMap" {
				continue
			}
			for key, text := range obj.Data {
				command := strings.TrimSuffix(key, ".yaml")
				files[writeConfig(t, key, text)] = command
			}
		}
	}
	if len(files) < 4 {
		t.Fatalf("found %d config files: %v", len(files), files)
	}
	for path, command := range files {
		if _, _, err := runWithConfig(t, command, "--config", path); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}
