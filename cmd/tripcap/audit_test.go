package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/audit"
)

// TestAuditRetentionSetting: --audit-retention defaults to 90 days, is
// read from the config file like every flag, and refuses what is not a
// duration.
func TestAuditRetentionSetting(t *testing.T) {
	cmd := newServerCmd()
	if got := cmd.Flags().Lookup("audit-retention").DefValue; got != audit.DefaultRetention.String() {
		t.Fatalf("default %s, want %s", got, audit.DefaultRetention)
	}
	cfg := filepath.Join(t.TempDir(), "server.yaml")
	if err := os.WriteFile(cfg, []byte("audit-retention: P30D\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.SetErr(&bytes.Buffer{})
	if err := cmd.ParseFlags([]string{"--config", cfg}); err != nil {
		t.Fatal(err)
	}
	if err := cmd.PreRunE(cmd, nil); err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Lookup("audit-retention").Value.String(); got != (30 * 24 * time.Hour).String() {
		t.Fatalf("from the config file: %s", got)
	}
	if err := newServerCmd().ParseFlags([]string{"--audit-retention", "soon"}); err == nil || !strings.Contains(err.Error(), "audit-retention") {
		t.Fatalf("--audit-retention soon: %v", err)
	}
}

func TestAuditListTable(t *testing.T) {
	var out bytes.Buffer
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	printAuditList(&out, []*tripcap.AuditEvent{
		{Time: at, PrincipalName: "admin", PrincipalKind: tripcap.PrincipalBootstrap, Action: "createCapture", Resource: "captures/pc", RemoteAddr: "127.0.0.1:5000", Result: tripcap.AuditSuccess, Status: 201},
		{Time: at, Action: "listHosts", Resource: "hosts", Result: tripcap.AuditDenied, Status: 401, Detail: "no credential"},
	})
	text := out.String()
	for _, want := range []string{"PRINCIPAL", "admin (bootstrap)", "captures/pc", "success 201", "denied 401", "no credential"} {
		if !strings.Contains(text, want) {
			t.Fatalf("table lacks %q:\n%s", want, text)
		}
	}
}
