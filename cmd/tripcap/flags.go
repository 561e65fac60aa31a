package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
)

// isoDuration accepts Go's "1m" or ISO 8601's "PT1M" and returns the ISO
// form the API takes; the error names the flag.
func isoDuration(flag, v string) (string, error) {
	if strings.HasPrefix(strings.ToUpper(v), "P") {
		if _, err := tripcap.ParseISODuration(flag, v); err != nil {
			return "", err
		}
		return strings.ToUpper(v), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d%time.Second != 0 {
		return "", fmt.Errorf("%s: %q is not a whole number of seconds like 30s, 5m or PT5M", flag, v)
	}
	return tripcap.FormatISODuration(d), nil
}

// spanFlag reads a duration flag given as "15m" or "PT15M".
func spanFlag(flag, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	iso, err := isoDuration("--"+flag, v)
	if err != nil {
		return 0, err
	}
	return tripcap.ParseISODuration("--"+flag, iso)
}

// keyValue splits a NAME=VALUE flag value.
func keyValue(flag, v string) (string, string, error) {
	k, val, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" || val == "" {
		return "", "", fmt.Errorf("--%s: %q is not NAME=VALUE", flag, v)
	}
	return k, val, nil
}

// readJSONFile decodes a JSON file ("-" for standard input) strictly.
func readJSONFile(cmd *cobra.Command, path string, v any) error {
	var r io.Reader = cmd.InOrStdin()
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		defer f.Close()
		r = f
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("--file %s: %w", path, err)
	}
	return nil
}
