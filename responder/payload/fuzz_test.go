package payload_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/responder/payload"
)

// FuzzParse feeds arbitrary bodies to the parser: it must never panic, must
// reject with EINVALID only, and whatever it accepts must be a usable
// trigger (a known format and condition).
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"schemaId":null}`, `{"version":"4","alerts":null}`,
		`{"status":"Resolved","context":null}`, `{"targetVM":"","timeLimit":"1e3"}`,
		`{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":null}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ts, err := payload.Parse(body)
		if err != nil {
			if tripcap.ErrorCode(err) != tripcap.EINVALID {
				t.Fatalf("non-EINVALID error %v", err)
			}
			return
		}
		if len(ts) == 0 {
			t.Fatal("accepted with no triggers")
		}
		for _, tr := range ts {
			switch tr.Condition {
			case tripcap.ConditionFired, tripcap.ConditionResolved:
			default:
				t.Fatalf("condition %q", tr.Condition)
			}
			if tr.Format == "" {
				t.Fatal("no format")
			}
			_ = tr.IdempotencyKey()
			_ = payload.LabelCandidates(tr.Targets.Labels, nil)
		}
	})
}
