package main

import (
	"strings"
	"testing"
)

// The API's limits and webhook allowances are flags, so a config file sets
// them by the same names.
func TestLimitsInConfigFile(t *testing.T) {
	cfg := writeConfig(t, "server.yaml", `read-timeout: 30s
write-timeout: 2m
max-unauthenticated-per-address: 256
auth-failure-limit: 10
allow-webhook-target:
  - 127.0.0.0/8
  - ::1
`)
	fs, _, err := runWithConfig(t, "server", "--config", cfg, "--allow-webhook-target", "10.9.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"read-timeout": "30s", "write-timeout": "2m0s", "read-header-timeout": "10s", "idle-timeout": "2m0s",
		"max-unauthenticated-per-address": "256", "auth-failure-limit": "10", "auth-failure-window": "1m0s", "auth-failure-name-limit": "100",
		"allow-webhook-target": "10.9.0.0/16", // the command line wins
	} {
		if got := flagValue(fs, name); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
}

// The server's own listener and public URL are refused webhook targets,
// allowances are CIDRs, and a bad one is named.
func TestWebhookTargetsOfServer(t *testing.T) {
	tg, err := webhookTargets([]string{"127.0.0.0/8"}, "0.0.0.0:8443", "https://tripcap.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.CheckURL("w", "https://tripcap.example.test/api/v1/hosts"); err == nil || !strings.Contains(err.Error(), "own address") {
		t.Errorf("public URL as a target: %v", err)
	}
	if err := tg.CheckURL("w", "http://127.0.0.1:9000/hook"); err != nil {
		t.Errorf("allowed loopback: %v", err)
	}
	if err := tg.CheckURL("w", "http://169.254.169.254/"); err == nil {
		t.Error("metadata address allowed")
	}
	if _, err := webhookTargets([]string{"not-a-cidr"}, "127.0.0.1:1", ""); err == nil || !strings.Contains(err.Error(), "--allow-webhook-target") {
		t.Errorf("bad allowance: %v", err)
	}
}
