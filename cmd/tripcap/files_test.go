package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseFileTime(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]string{
		"":                          "",
		"2026-01-01T00:00:00+02:00": "2025-12-31T22:00:00Z",
		"2h":                        "2026-01-02T01:04:05Z",
		"P1D":                       "2026-01-01T03:04:05Z",
	} {
		got, err := parseFileTime("since", in, now)
		if err != nil || got != want {
			t.Errorf("parseFileTime(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-2h", "2026-13-01T00:00:00Z"} {
		if _, err := parseFileTime("since", in, now); err == nil || !strings.Contains(err.Error(), "--since") {
			t.Errorf("parseFileTime(%q): %v, want an error naming --since", in, err)
		}
	}
}

func FuzzParseFileTime(f *testing.F) {
	for _, s := range []string{"", "2h", "P1D", "PT1H30M", "2026-01-01T00:00:00Z", "-1s", "P"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseFileTime("since", s, now)
		if err != nil || got == "" {
			return
		}
		if _, err := time.Parse(time.RFC3339Nano, got); err != nil {
			t.Fatalf("parseFileTime(%q) = %q, not RFC 3339: %v", s, got, err)
		}
	})
}

func TestFileRetentionFlag(t *testing.T) {
	var d time.Duration
	v := retentionValue{&d}
	for in, want := range map[string]time.Duration{"0": 0, "720h": 720 * time.Hour, "P90D": 90 * 24 * time.Hour} {
		if err := v.Set(in); err != nil || d != want {
			t.Errorf("--file-retention %s: %v, %v; want %v", in, d, err, want)
		}
	}
	for _, in := range []string{"-1h", "forever", ""} {
		if err := v.Set(in); err == nil {
			t.Errorf("--file-retention %q accepted", in)
		}
	}
}
