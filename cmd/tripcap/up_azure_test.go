package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// TestUpPrintsAzureTenantAndSubscription: up's start lines carry what an
// Azure client needs beside the ARM endpoint: the tenant id (the one the
// token endpoints serve; a derived one flagged as such) and the
// subscription id.
func TestUpPrintsAzureTenantAndSubscription(t *testing.T) {
	const tenant, subscription = "7d3c1e2a-5b4f-4a6e-9c8d-0e1f2a3b4c5d", "5e7c9d1a-1b2c-4d3e-8f90-a1b2c3d4e5f6"
	for _, pinned := range []bool{true, false} {
		o := &serverOptions{listen: "127.0.0.1:0", data: t.TempDir(), heartbeat: 10 * time.Second, maxCaptures: tripcap.DefaultParallelCapturesPerWatcher, subscription: subscription}
		if pinned {
			o.tenantID = tenant
		}
		cp, err := openControlPlane(t.Context(), o, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		out := cp.armLines(pinned)
		cp.Close()
		want := []string{"Azure Resource Manager API: " + cp.url + "/subscriptions/", "Azure tenant id: " + cp.tenantID, "Azure subscription id: " + subscription + "\n"}
		if pinned && cp.tenantID != tenant {
			t.Errorf("tenant %s, want the pinned %s", cp.tenantID, tenant)
		}
		if !pinned && (!tripcap.IsGUID(cp.tenantID) || !strings.Contains(out, "--tenant-id")) {
			t.Errorf("a derived tenant %q is not flagged: %q", cp.tenantID, out)
		}
		if pinned && strings.Contains(out, "--tenant-id") {
			t.Errorf("a pinned tenant is flagged: %q", out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("up printed %q, want %q", out, w)
			}
		}
	}
}

// TestServerRefusesMalformedAzurePlace: a --subscription that is no GUID
// or a --resource-group outside Azure's rule stops the server at start,
// naming the flag, before hosts get malformed ids.
func TestServerRefusesMalformedAzurePlace(t *testing.T) {
	for flag, o := range map[string]*serverOptions{
		"--subscription":   {subscription: "not-a-guid"},
		"--resource-group": {group: "rg/../x"},
	} {
		o.listen, o.data, o.heartbeat, o.maxCaptures = "127.0.0.1:0", t.TempDir(), 10*time.Second, tripcap.DefaultParallelCapturesPerWatcher
		cp, err := openControlPlane(t.Context(), o, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil {
			cp.Close()
			t.Fatalf("%s accepted", flag)
		}
		if !strings.Contains(err.Error(), flag+": ") {
			t.Fatalf("%s: %v does not name the flag", flag, err)
		}
	}
}
