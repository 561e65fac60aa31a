package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestCaptureRunStreamRefused: with -w -, options that need files are
// refused naming both flags, before any capture starts and with nothing on
// standard output (the packet stream). Runs without root: the refusal comes
// first. afpacket's TestCLIStream* run the real stream.
func TestCaptureRunStreamRefused(t *testing.T) {
	for _, tc := range []struct{ flag, want string }{
		{"--continuous", "--continuous and -w -"},
		{"--metadata", "--metadata and -w -"},
	} {
		root := newRootCmd()
		var stdout, stderr bytes.Buffer
		root.SetOut(&stdout)
		root.SetErr(&stderr)
		root.SetArgs([]string{"capture", "run", tc.flag, "-w", "-", "-i", "tc-none0"})
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != 1 || stdout.Len() != 0 {
			t.Errorf("%s -w -: %v (exit %d), stdout %q; want %q, exit 1, nothing on stdout", tc.flag, err, exitCode(err), stdout.String(), tc.want)
		}
	}
}
