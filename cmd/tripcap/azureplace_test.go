package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

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
