package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap/controlplane"
)

// The remote store's flags are checked before anything opens, each
// error naming its flag and never showing a secret.
func TestMetricsOptionsRefuse(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, tc := range map[string]struct {
		o    metricsOptions
		want string
	}{
		"credentials in the URL": {metricsOptions{writeURL: "http://u:hunter2@prom:9090/api/v1/write", queue: 10}, "--remote-write-url"},
		"not http":               {metricsOptions{readURL: "prom:9090"}, "--remote-read-url"},
		"keys without a URL":     {metricsOptions{labelKeys: []string{"team"}}, "--remote-write-label-keys"},
		"colliding keys":         {metricsOptions{writeURL: "http://prom/api/v1/write", labelKeys: []string{"a.b", "a-b"}, queue: 10}, "--remote-write-label-keys"},
		"empty queue":            {metricsOptions{writeURL: "http://prom/api/v1/write", queue: 0}, "--remote-write-queue"},
		"raw not minutes":        {metricsOptions{raw: 90 * time.Second}, "--metrics-raw"},
		"rollup below raw":       {metricsOptions{raw: time.Hour, rollup: time.Minute}, "--metrics-rollup"},
		"histories negative":     {metricsOptions{attachHistories: -1}, "--metrics-attach-histories"},
		"histories too many":     {metricsOptions{attachHistories: 1 << 20}, "--metrics-attach-histories"},
		"hold under a second":    {metricsOptions{attachHold: 10 * time.Millisecond}, "--metrics-attach-hold"},
		"hold too long":          {metricsOptions{attachHold: time.Hour}, "--metrics-attach-hold"},
		"missing token file":     {metricsOptions{writeURL: "http://prom/api/v1/write", queue: 10, tokenFile: "/nonexistent/token"}, "--remote-write-url"},
	} {
		_, err := tc.o.open(nil, log)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v, want an error naming %s (and no password)", name, err, tc.want)
		}
	}
}

func TestMetricsOptionsConfigure(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("t0ken"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := metricsOptions{raw: 2 * time.Minute, rollup: time.Hour, writeURL: "https://prom:9090/api/v1/write", readURL: "https://prom:9090",
		tokenFile: tok, labelKeys: []string{"team"}, queue: 1000, attachHistories: 64, attachHold: 20 * time.Second}
	p, err := o.open(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var cfg controlplane.MonitorConfig
	p.configure(&cfg)
	if cfg.Metrics.Raw != 2*time.Minute || cfg.Metrics.Rollup != time.Hour || cfg.Sink == nil || cfg.RemoteRead == nil || cfg.RemoteRead.Name() != "https://prom:9090" ||
		cfg.AttachHistories != 64 || cfg.AttachHold != 20*time.Second {
		t.Fatalf("config %+v", cfg)
	}
	if len(p.collectors()) == 0 {
		t.Fatal("no collectors")
	}
	// Without flags (as `up` runs): the defaults, no sink, no reader.
	p, err = (&metricsOptions{}).open(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg = controlplane.MonitorConfig{}
	p.configure(&cfg)
	if cfg.Sink != nil || cfg.RemoteRead != nil || cfg.Metrics.Raw != 0 || cfg.AttachHistories != 0 || cfg.AttachHold != 0 {
		t.Fatalf("config %+v", cfg)
	}
}
