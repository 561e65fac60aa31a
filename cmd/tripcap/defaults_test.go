package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// TestHelpShowsStoredDefaults: what --help calls the default is what is
// stored when the flag is left out.
func TestHelpShowsStoredDefaults(t *testing.T) {
	root := newRootCmd()
	for _, path := range [][]string{{"responder", "create"}, {"responder", "update"}} {
		cmd, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		want := (tripcap.DefaultResponderTimeLimit * time.Second).String()
		if got := cmd.Flags().Lookup("time-limit").DefValue; got != want {
			t.Errorf("%v --time-limit default %s, want the responder's %s", path, got, want)
		}
	}
}

// TestEmptyListIsJSONArray: -o json prints [] for an empty listing.
func TestEmptyListIsJSONArray(t *testing.T) {
	cmd, _, err := newRootCmd().Find([]string{"host", "list"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.SetOut(&out)
	if err := cmd.ParseFlags([]string{"-o", "json"}); err != nil {
		t.Fatal(err)
	}
	var hosts []*tripcap.Host
	if err := render(cmd, hosts, nil); err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.([]any); !ok {
		t.Fatalf("empty listing printed %s, want []", out.String())
	}
}

func TestMetricValueIsReadable(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		m    tripcap.MetricID
		want string
	}{
		{6335115, tripcap.MetricNetworkOutBytes, "6335115 (6.3 MB)"},
		{20.8, tripcap.MetricNetworkOutBytes, "20.8"},
		{1.0 / 3, tripcap.MetricInboundFlows, "0.333"},
		{250000, tripcap.MetricTCPSegmentsSent, "250000"},
	} {
		if got := metricValue(tc.v, tc.m); got != tc.want {
			t.Errorf("metricValue(%v, %s) = %q, want %q", tc.v, tc.m, got, tc.want)
		}
	}
}

// TestRuleShowNamesItsActionGroups: rule show names action groups, and
// says the rule's grain.
func TestRuleShowNamesItsActionGroups(t *testing.T) {
	url, token := startServer(t)
	if _, err := cli(t, url, token, "action-group", "create", "oncall", "--webhook", "pager=http://127.0.0.1:9/hook"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, url, token, "rule", "create", "egress", "--preset", "seed", "--action-group", "oncall"); err != nil {
		t.Fatal(err)
	}
	out, err := cli(t, url, token, "rule", "show", "egress")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "oncall (") || !strings.Contains(out, "1 minute, as in Azure") {
		t.Fatalf("rule show:\n%s", out)
	}
}

// TestResponderTakesAnExpression: a responder's captures take a tcpdump
// expression from the command line, as capture run and create do; update
// changes or clears it, and a bad one is refused naming the token.
func TestResponderTakesAnExpression(t *testing.T) {
	url, token := startServer(t)
	var r tripcap.Responder
	out, err := cli(t, url, token, "-o", "json", "responder", "create", "pc", "--expression", "udp port 53 and host ${host.address}")
	if err != nil {
		t.Fatalf("responder create: %v\n%s", err, out)
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Capture.FilterExpression != "udp port 53 and host ${host.address}" {
		t.Fatalf("created %+v, %v", r.Capture, err)
	}
	out, err = cli(t, url, token, "-o", "json", "responder", "update", "pc", "--expression", "")
	if err != nil {
		t.Fatalf("responder update: %v\n%s", err, out)
	}
	var cleared tripcap.Responder
	if err := json.Unmarshal([]byte(out), &cleared); err != nil || cleared.Capture.FilterExpression != "" {
		t.Fatalf("after clearing: %+v, %v", cleared.Capture, err)
	}
	if out, err := cli(t, url, token, "responder", "create", "bad", "--expression", "udp prot 53"); err == nil || !strings.Contains(out+err.Error(), "prot") {
		t.Fatalf("a bad expression: %v\n%s", err, out)
	}
}
