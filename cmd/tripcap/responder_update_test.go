package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/tlscert"
)

// startServer runs the real control plane (SQLite, file storage) on a free
// port for the test, and returns its URL and admin credential.
func startServer(t *testing.T) (url, token string) {
	t.Helper()
	// Webhooks to loopback (the tests' receivers) allowed, as an operator
	// with a receiver on the server's host would.
	return startServerWith(t, &serverOptions{listen: "127.0.0.1:0", data: t.TempDir(), heartbeat: 10 * time.Second, maxCaptures: tripcap.DefaultParallelCapturesPerWatcher,
		allowWebhookTargets: []string{"127.0.0.0/8"}})
}

// startServerWith runs the control plane with the options o.
func startServerWith(t *testing.T, o *serverOptions) (url, token string) {
	t.Helper()
	cp := startControlPlane(t, o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return cp.url, cp.adminToken
}

// startControlPlane runs the control plane with the options o, logging to log.
func startControlPlane(t *testing.T, o *serverOptions, log *slog.Logger) *controlPlane {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cp, err := openControlPlane(ctx, o, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	// The CLI trusts the CA the server created, as an operator's would.
	t.Setenv("TRIPCAP_CA_FILE", filepath.Join(o.data, "tls", "ca.pem"))
	done := make(chan error, 1)
	go func() { done <- errors.Join(cp.Run(ctx), cp.Close()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return cp
}

// apiClient is a client of the server startServer runs, trusting its CA as
// the CLI does.
func apiClient(t *testing.T, url, token string) *tchttp.Client {
	t.Helper()
	pool, err := tlscert.LoadPool(os.Getenv("TRIPCAP_CA_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := tchttp.NewClient(url, token, tchttp.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// cli runs the tripcap command line against the server and returns what it
// printed.
func cli(t *testing.T, url, token string, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"--server", url, "--token", token}, args...))
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

// cliResponder runs a command with -o json and decodes the responder it prints.
func cliResponder(t *testing.T, url, token string, args ...string) *tripcap.Responder {
	t.Helper()
	out, err := cli(t, url, token, append(args, "-o", "json")...)
	if err != nil {
		t.Fatalf("tripcap %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var r tripcap.Responder
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("tripcap %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return &r
}

// `tripcap responder update` changes the flags given and nothing else.
func TestResponderUpdateCommand(t *testing.T) {
	t.Setenv("TRIPCAP_CONFIG", filepath.Join(t.TempDir(), "none.json"))
	url, token := startServer(t)
	before := cliResponder(t, url, token, "responder", "create", "pc", "--capture-name", "cap1", "--time-limit", "45s",
		"--filter", "protocol=TCP,localIPAddress=${host.address},localPort=443", "--cooldown", "5", "--limit", "50",
		"--stop-on-resolved", "--target-label", "instance", "--description", "web tier")
	// The placeholder is kept for the server to fill in per host.
	if fs := before.Capture.Filters; len(fs) != 1 || fs[0].LocalIPAddress != tripcap.PlaceholderHostAddress || fs[0].LocalPort != "443" {
		t.Fatalf("created filters: %+v", fs)
	}
	if _, err := cli(t, url, token, "responder", "keys", "create", "pc"); err != nil {
		t.Fatal(err)
	}

	// One flag: only that field (and the version) changes.
	got := cliResponder(t, url, token, "responder", "update", "pc", "--limit", "7")
	want := *before
	want.Limit, want.Version, want.UpdatedAt = 7, 2, got.UpdatedAt
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("update --limit:\n got %+v\nwant %+v", got, &want)
	}
	if shown := cliResponder(t, url, token, "responder", "show", "pc"); !reflect.DeepEqual(shown, got) {
		t.Fatalf("show after update:\n got %+v\nwant %+v", shown, got)
	}

	// The ring of files: turned on with the flags' defaults, then one of them changed.
	got = cliResponder(t, url, token, "responder", "update", "pc", "--continuous", "--file-count", "3")
	cs := got.Capture.CaptureSettings
	if got.Capture.ContinuousCapture == nil || !*got.Capture.ContinuousCapture || cs == nil || *cs.FileCount != 3 ||
		*cs.FileSizeInBytes != tripcap.DefaultFileSizeInBytes || got.Capture.TimeLimitInSeconds != 45 || got.Limit != 7 {
		t.Fatalf("update --continuous: %+v %+v", got.Capture, cs)
	}
	got = cliResponder(t, url, token, "responder", "update", "pc", "--file-size", "8192")
	if cs := got.Capture.CaptureSettings; *cs.FileCount != 3 || *cs.FileSizeInBytes != 8192 {
		t.Fatalf("update --file-size: %+v", cs)
	}
	got = cliResponder(t, url, token, "responder", "update", "pc", "--continuous=false")
	if *got.Capture.ContinuousCapture || got.Capture.CaptureSettings != nil {
		t.Fatalf("update --continuous=false: %+v", got.Capture)
	}

	// Enabled, filters, name.
	if got = cliResponder(t, url, token, "responder", "update", "pc", "--disabled"); got.IsEnabled() {
		t.Fatal("--disabled left it enabled")
	}
	if got = cliResponder(t, url, token, "responder", "update", "pc", "--enabled"); !got.IsEnabled() {
		t.Fatal("--enabled left it disabled")
	}
	got = cliResponder(t, url, token, "responder", "update", "pc", "--clear-filters", "--rename", "pc2", "--notify", "")
	if got.Name != "pc2" || len(got.Capture.Filters) != 0 || got.ID != before.ID || got.Capture.Name != "cap1" || got.Description != "web tier" {
		t.Fatalf("update --clear-filters --rename: %+v", got)
	}
	out, err := cli(t, url, token, "responder", "keys", "list", "pc2")
	if err != nil || !strings.Contains(out, "default") {
		t.Fatalf("keys after the update: %v\n%s", err, out)
	}

	// Text output.
	out, err = cli(t, url, token, "responder", "update", "pc2", "--cooldown", "1")
	if err != nil || !strings.Contains(out, "responder pc2 updated (version ") {
		t.Fatalf("text output: %v\n%s", err, out)
	}

	// -f replaces every setting with the file's.
	file := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(file, []byte(`{"limit": 11, "capture": {"timeLimitInSeconds": 20}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	got = cliResponder(t, url, token, "responder", "update", "pc2", "-f", file)
	if got.Name != "pc2" || got.Limit != 11 || got.Capture.TimeLimitInSeconds != 20 || got.Capture.Name != tripcap.DefaultResponderCaptureName ||
		got.CooldownMinutes != 0 || got.StopOnResolved || got.Description != "" {
		t.Fatalf("update -f: %+v", got)
	}

	// Refused, with the reason, changing nothing.
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--name-conflict", "merge"}, "nameConflict"},
		{[]string{"--enabled", "--disabled"}, "give one"},
		{[]string{"--file-count", "2"}, "--continuous"},
		{[]string{"--interface", "eth0"}, "every interface"},
		{[]string{"--notify", "nobody"}, "notifyActionGroup"},
	} {
		out, err := cli(t, url, token, append([]string{"responder", "update", "pc2"}, c.args...)...)
		if err == nil || !strings.Contains(tripcapErrorText(err), c.msg) {
			t.Errorf("update %v: %v (%s), want an error mentioning %q", c.args, err, out, c.msg)
		}
	}
	if _, err := cli(t, url, token, "responder", "update", "nobody", "--limit", "1"); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Errorf("update of an unknown responder: %v", err)
	}
	if final := cliResponder(t, url, token, "responder", "show", "pc2"); final.Version != got.Version {
		t.Fatalf("a refused update changed the responder: version %d, was %d", final.Version, got.Version)
	}
}

// The responder's own receivers come from --notify-webhook and --notify-email,
// and an update that names either replaces that list only.
func TestResponderOwnReceiversFlags(t *testing.T) {
	t.Setenv("TRIPCAP_CONFIG", filepath.Join(t.TempDir(), "none.json"))
	url, token := startServer(t)
	r := cliResponder(t, url, token, "responder", "create", "pc", "--notify-webhook", "hook=https://hooks.example/pc",
		"--notify-email", "oncall=oncall@example.test")
	// Answers show a webhook URL's host only (it is write-only); the
	// update below sends it back so and keeps the stored one.
	wantHooks := []tripcap.WebhookReceiver{{Name: "hook", ServiceURI: "https://hooks.example/REDACTED", UseCommonAlertSchema: true}}
	if !reflect.DeepEqual(r.NotifyWebhookReceivers, wantHooks) || len(r.NotifyEmailReceivers) != 1 || r.NotifyEmailReceivers[0].EmailAddress != "oncall@example.test" {
		t.Fatalf("created receivers: %+v %+v", r.NotifyWebhookReceivers, r.NotifyEmailReceivers)
	}
	r = cliResponder(t, url, token, "responder", "update", "pc", "--notify-email", "dev=dev@example.test")
	if !reflect.DeepEqual(r.NotifyWebhookReceivers, wantHooks) || len(r.NotifyEmailReceivers) != 1 || r.NotifyEmailReceivers[0].Name != "dev" {
		t.Fatalf("updated receivers: %+v %+v", r.NotifyWebhookReceivers, r.NotifyEmailReceivers)
	}
	if out, err := cli(t, url, token, "responder", "update", "pc", "--notify-webhook", "no-equals-sign"); err == nil || !strings.Contains(err.Error()+out, "notify-webhook") {
		t.Fatalf("a malformed --notify-webhook: %v\n%s", err, out)
	}
}

// TestControlPlaneRunReportsAFailure: a service that fails ends Run with its
// error, named, and stops the others; Close then releases the store.
func TestControlPlaneRunReportsAFailure(t *testing.T) {
	o := &serverOptions{listen: "127.0.0.1:0", data: t.TempDir(), heartbeat: 10 * time.Second, maxCaptures: tripcap.DefaultParallelCapturesPerWatcher}
	cp, err := openControlPlane(t.Context(), o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	// The listener closed under the API server is a failure of that service.
	cp.listener.Close()
	done := make(chan error, 1)
	go func() { done <- cp.Run(t.Context()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "API server") {
			t.Fatalf("Run = %v, want the API server's failure", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not end when the API server failed")
	}
	if err := cp.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := cp.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}

// TestControlPlaneOpenFailureIsAnError: a database that cannot be opened
// (here: not a database at all) ends the start with the reason, not a panic
// in the cleanup of what was opened so far.
func TestControlPlaneOpenFailureIsAnError(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "tripcap.db")
	if err := os.WriteFile(db, []byte("not a database, but a file someone put here"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := &serverOptions{listen: "127.0.0.1:0", data: dir, db: "sqlite://" + db, heartbeat: 10 * time.Second, maxCaptures: tripcap.DefaultParallelCapturesPerWatcher}
	cp, err := openControlPlane(t.Context(), o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		cp.Close()
		t.Fatal("a file that is not a database opened as one")
	}
	if !strings.Contains(err.Error(), "open database") {
		t.Fatalf("err = %v, want the database's", err)
	}
}
