package triage

import (
	"context"
	"os"
	"testing"
)

// BenchmarkAnalyzeFile analyzes the capture named by $TRIAGE_BENCH_FILE
// (bench/triage/gen writes one); it is skipped without it.
func BenchmarkAnalyzeFile(b *testing.B) {
	path := os.Getenv("TRIAGE_BENCH_FILE")
	if path == "" {
		b.Skip("TRIAGE_BENCH_FILE is not set")
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AnalyzeFiles(context.Background(), []string{path}, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
