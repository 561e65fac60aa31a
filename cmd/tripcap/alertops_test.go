package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// cliJSON runs a command with -o json and decodes what it prints into v.
func cliJSON(t *testing.T, url, token string, v any, args ...string) {
	t.Helper()
	out, err := cli(t, url, token, append(args, "-o", "json")...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// rule update changes only the flags given; enable and disable flip
// rules, action groups and responders in place (same id, same secret).
func TestRuleGroupResponderUpdateCLI(t *testing.T) {
	url, token := startServer(t)
	if out, err := cli(t, url, token, "action-group", "create", "ops", "--webhook", "fn=https://hooks.example.invalid/a"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var created struct {
		ID      string `json:"id"`
		Version int64  `json:"version"`
	}
	cliJSON(t, url, token, &created, "rule", "create", "egress", "--metric", "Network Out Total", "--threshold", "1000",
		"--window", "5m", "--frequency", "1m", "--severity", "2", "--action-group", "ops", "--description", "kept")
	var r struct {
		ID          string `json:"id"`
		Version     int64  `json:"version"`
		Description string `json:"description"`
		Severity    int    `json:"severity"`
		Enabled     *bool  `json:"enabled"`
		WindowSize  string `json:"windowSize"`
		Frequency   string `json:"evaluationFrequency"`
		Criteria    struct {
			AllOf []struct {
				Threshold  float64 `json:"threshold"`
				MetricName string  `json:"metricName"`
			} `json:"allOf"`
		} `json:"criteria"`
		Actions []struct {
			ActionGroupID string `json:"actionGroupId"`
		} `json:"actions"`
	}
	cliJSON(t, url, token, &r, "rule", "update", "egress", "--threshold", "5000000", "--window", "10m")
	if r.ID != created.ID || r.Version != 2 || r.Criteria.AllOf[0].Threshold != 5000000 || r.WindowSize != "PT10M" ||
		r.Frequency != "PT1M" || r.Severity != 2 || r.Description != "kept" || r.Criteria.AllOf[0].MetricName != "Network Out Total" || len(r.Actions) != 1 {
		t.Fatalf("rule after update: %+v", r)
	}
	if out, err := cli(t, url, token, "rule", "disable", "egress"); err != nil || !strings.Contains(out, "rule egress disabled") {
		t.Fatalf("rule disable: %v %s", err, out)
	}
	cliJSON(t, url, token, &r, "rule", "show", "egress")
	if r.Enabled == nil || *r.Enabled || r.Version != 3 || r.Criteria.AllOf[0].Threshold != 5000000 {
		t.Fatalf("rule after disable: %+v", r)
	}
	if _, err := cli(t, url, token, "rule", "enable", "egress"); err != nil {
		t.Fatal(err)
	}
	cliJSON(t, url, token, &r, "rule", "show", "egress")
	if r.Enabled == nil || !*r.Enabled {
		t.Fatalf("rule after enable: %+v", r)
	}
	if out, err := cli(t, url, token, "rule", "update", "nope", "--threshold", "1"); err == nil {
		t.Fatalf("updating an unknown rule: %s", out)
	}

	var g struct {
		ID      string `json:"id"`
		Enabled *bool  `json:"enabled"`
		Short   string `json:"groupShortName"`
		Hooks   []struct {
			Name string `json:"name"`
		} `json:"webhookReceivers"`
	}
	cliJSON(t, url, token, &g, "action-group", "update", "ops", "--short-name", "opsy")
	if g.Short != "opsy" || len(g.Hooks) != 1 || g.Hooks[0].Name != "fn" {
		t.Fatalf("group after update: %+v", g)
	}
	if _, err := cli(t, url, token, "action-group", "disable", "ops"); err != nil {
		t.Fatal(err)
	}
	cliJSON(t, url, token, &g, "action-group", "show", "ops")
	if g.Enabled == nil || *g.Enabled || g.Short != "opsy" {
		t.Fatalf("group after disable: %+v", g)
	}

	if out, err := cli(t, url, token, "responder", "create", "pc"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := cli(t, url, token, "responder", "disable", "pc"); err != nil || !strings.Contains(out, "responder pc disabled") {
		t.Fatalf("responder disable: %v %s", err, out)
	}
	var rs struct {
		Enabled *bool `json:"enabled"`
		Version int64 `json:"version"`
	}
	cliJSON(t, url, token, &rs, "responder", "show", "pc")
	if rs.Enabled == nil || *rs.Enabled || rs.Version != 2 {
		t.Fatalf("responder after disable: %+v", rs)
	}
	if _, err := cli(t, url, token, "responder", "enable", "pc"); err != nil {
		t.Fatal(err)
	}
	cliJSON(t, url, token, &rs, "responder", "show", "pc")
	if rs.Enabled == nil || !*rs.Enabled {
		t.Fatalf("responder after enable: %+v", rs)
	}
}

// silence create (author: the caller's credential), list, expire.
func TestSilenceCLI(t *testing.T) {
	url, token := startServer(t)
	if out, err := cli(t, url, token, "rule", "create", "egress", "--preset", "seed"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := cli(t, url, token, "silence", "create", "--for", "2h", "--comment", "x"); err == nil || !strings.Contains(err.Error(), "matchers") {
		t.Fatalf("a silence without matchers: %v %s", err, out)
	}
	if out, err := cli(t, url, token, "silence", "create", "--rule", "egress", "--comment", "x"); err == nil || !strings.Contains(err.Error(), "--for") {
		t.Fatalf("a silence without --for: %v %s", err, out)
	}
	var sl struct {
		ID        string   `json:"id"`
		Rule      string   `json:"rule"`
		Labels    []string `json:"labels"`
		CreatedBy string   `json:"createdBy"`
		Comment   string   `json:"comment"`
	}
	cliJSON(t, url, token, &sl, "silence", "create", "--rule", "egress", "--label", "role=web", "--for", "2h", "--comment", "deploy")
	if sl.ID == "" || sl.Rule == "" || len(sl.Labels) != 1 || sl.Labels[0] != "label:role=web" || sl.CreatedBy != "admin" || sl.Comment != "deploy" {
		t.Fatalf("created silence: %+v", sl)
	}
	out, err := cli(t, url, token, "silence", "list")
	if err != nil || !strings.Contains(out, sl.ID) || !strings.Contains(out, "deploy") {
		t.Fatalf("silence list: %v\n%s", err, out)
	}
	if out, err := cli(t, url, token, "silence", "expire", sl.ID); err != nil || !strings.Contains(out, "expired") {
		t.Fatalf("silence expire: %v %s", err, out)
	}
	if out, _ := cli(t, url, token, "silence", "list"); strings.Contains(out, sl.ID) {
		t.Fatalf("an expired silence is listed:\n%s", out)
	}
	if out, _ := cli(t, url, token, "silence", "list", "--all"); !strings.Contains(out, sl.ID) {
		t.Fatalf("silence list --all leaves out the expired one:\n%s", out)
	}
}
