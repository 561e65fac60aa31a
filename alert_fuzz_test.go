package tripcap

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzParseISODuration checks the duration parser never panics, fails only
// with EINVALID naming its field, and that what it accepts (whole seconds,
// at most a year) prints back to a string that parses to the same value.
// Seeds are in testdata/fuzz/FuzzParseISODuration.
func FuzzParseISODuration(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseISODuration("windowSize", s)
		if err != nil {
			if ErrorCode(err) != EINVALID || !strings.HasPrefix(ErrorMessage(err), "windowSize: ") {
				t.Fatalf("error %v does not name the field", err)
			}
			return
		}
		if d < 0 || d > 366*24*time.Hour || d%time.Second != 0 {
			t.Fatalf("%q parsed to %v", s, d)
		}
		back, err := ParseISODuration("x", FormatISODuration(d))
		if err != nil || back != d {
			t.Fatalf("%q → %v → %q → %v, %v", s, d, FormatISODuration(d), back, err)
		}
	})
}

// FuzzAlertRuleJSON decodes arbitrary rule JSON, applies defaults and
// validates: never a panic, errors are EINVALID naming a field of the rule,
// and a valid rule survives a JSON round trip still valid and equal in its
// evaluation settings. Seeds are in testdata/fuzz/FuzzAlertRuleJSON.
func FuzzAlertRuleJSON(f *testing.F) {
	fields := []string{"name", "description", "severity", "scopes", "evaluationFrequency", "windowSize", "criteria", "actions", "criterionType"}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r AlertRule
		if err := json.Unmarshal(data, &r); err != nil {
			return
		}
		r.ApplyDefaults()
		err := r.Validate()
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("Validate: %v is not EINVALID", err)
			}
			msg := ErrorMessage(err)
			named := false
			for _, f := range fields {
				if strings.HasPrefix(msg, f) {
					named = true
				}
			}
			if !named {
				t.Fatalf("Validate error %q names no field", msg)
			}
			return
		}
		js, err := json.Marshal(&r)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		var back AlertRule
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatalf("round trip: %v\n%s", err, js)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("round trip invalid: %v\n%s", err, js)
		}
		if back.Frequency() != r.Frequency() || back.Window() != r.Window() || len(back.Criteria.AllOf) != len(r.Criteria.AllOf) || back.SeverityLevel() != r.SeverityLevel() {
			t.Fatalf("round trip changed the rule:\n%s", js)
		}
	})
}

// FuzzParseMetric checks metric names resolve only to known metrics and
// fail with EINVALID naming the field. Seeds are in testdata/fuzz/FuzzParseMetric.
func FuzzParseMetric(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMetric("metric", s)
		if err != nil {
			if ErrorCode(err) != EINVALID || !strings.HasPrefix(ErrorMessage(err), "metric: ") {
				t.Fatalf("error %v does not name the field", err)
			}
			return
		}
		d, ok := m.Definition()
		if !ok {
			t.Fatalf("%q resolved to unknown %q", s, m)
		}
		if again, err := ParseMetric("metric", string(d.ID)); err != nil || again != m {
			t.Fatalf("id %q does not parse back", d.ID)
		}
	})
}
